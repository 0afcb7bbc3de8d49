"""svetlana_core.predict.network (the torch path): the folded inference copy of the network;
and glibc's allocator settings while a prediction runs (predict.backends), on both paths."""

from __future__ import annotations

import torch

from svetlana_core import predict
from svetlana_core.predict.network import _inference_module
from tests.predict.scenes import scene


def test_the_network_runs_as_a_folded_copy_and_the_model_is_untouched(torch_model):
    model = torch_model
    image, mask = scene(n=8, size=64)
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    predict.predict_image(model, image, mask)
    copy = _inference_module(model.module, torch.device("cpu"), torch.channels_last)
    assert copy is not model.module
    assert copy is _inference_module(model.module, torch.device("cpu"), torch.channels_last)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in copy.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.module.modules())
    after = model.module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    with torch.no_grad():  # an in-place change of the weights makes a new copy
        model.module.classifier.bias.add_(0.0)
    assert _inference_module(model.module, torch.device("cpu"), torch.channels_last) \
        is not copy



class _FakeLibc:
    def __init__(self):
        self.calls = []

    def mallopt(self, option, value):
        self.calls.append(("mallopt", option, value.value))

    def malloc_trim(self, pad):
        self.calls.append(("malloc_trim", pad.value))


def test_dask_malloc_settings_are_relaxed_during_prediction_and_put_back(model, monkeypatch):
    libc = _FakeLibc()
    monkeypatch.setattr("svetlana_core.predict.backends._glibc", lambda: libc)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    image, mask = scene(n=4, size=48)
    predict.predict_image(model, image, mask)
    assert libc.calls == [
        ("mallopt", -1, 256 << 20), ("mallopt", -3, 32 << 20),   # while predicting
        ("mallopt", -3, 128 << 10), ("mallopt", -1, 65536), ("malloc_trim", 0),  # put back
    ]
    libc.calls.clear()
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    predict.predict_image(model, image, mask)
    assert libc.calls == []  # nothing to undo where the variable is not set
