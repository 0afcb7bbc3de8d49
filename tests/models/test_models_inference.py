"""svetlana_core.models.export and .inference: every saved model carries its ONNX graph, which
predicts what torch predicts; a tampered, mismatched or missing graph is handled."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from svetlana_core import models
from svetlana_core.errors import InputError
from svetlana_core.models.registry import min_patch_size
from svetlana_core.predict import model_fingerprint, predict_patches
from tests.builders import cnn_model_folder, random_patch

# (arch, spatial_dims, arch_params): every architecture of the registry, the CNN in 2D and 3D.
NETWORKS = [("cnn", 2, {"depth": 2, "width": 8}), ("cnn", 3, {"depth": 2, "width": 4}),
            ("resnet18", 2, {"small_input": True})] + [
    pytest.param(name, 2, {}, marks=pytest.mark.slow)
    for name in models.ARCHITECTURES if name != "cnn"]


def _patches(shape: tuple[int, ...], n: int = 12) -> np.ndarray:
    return np.stack([random_patch(shape, seed=k) * (1 + k % 3) for k in range(n)])


def _trained_statistics(module: torch.nn.Module, x: np.ndarray) -> None:
    """BatchNorm running statistics that are not the initial 0/1, so folding them matters."""
    module.train()
    with torch.no_grad():
        module(torch.from_numpy(x))
    module.eval()


@pytest.mark.parametrize(("arch", "dims", "params"), NETWORKS)
def test_onnx_predicts_what_torch_predicts(arch, dims, params, tmp_path):
    size = 16 if dims == 3 else max(32, min_patch_size(arch, params))
    shape = (3, *(size,) * dims)
    x = _patches(shape)
    module = models.build_model(arch, 3, 4, dims, **params)
    _trained_statistics(module, x)
    meta = _meta(arch, dims, params, size, 4)
    folder = models.save_model(tmp_path / arch, module, meta)
    onnx = models.load_predictor(folder, device="cpu")
    assert isinstance(onnx, models.OnnxModel)
    with torch.inference_mode():
        expected = torch.softmax(module(torch.from_numpy(x)), dim=1).numpy()
    found = predict_patches(onnx, x, batch_size=5)  # batches of other sizes than exported
    np.testing.assert_allclose(found, expected, atol=1e-4)
    np.testing.assert_array_equal(found.argmax(axis=1), expected.argmax(axis=1))


def _meta(arch, dims, params, size, n_classes):
    from tests.builders import model_meta

    return model_meta(arch=arch, arch_params=params, spatial_dims=dims, in_channels=3,
                      image_channels=2, patch_size=[size] * dims,
                      classes=[f"c{k}" for k in range(n_classes)])


@pytest.fixture
def folder(tmp_path):
    return cnn_model_folder(tmp_path / "m", arch_params={"depth": 1, "width": 4},
                            classes=["bright", "dark"])


def test_the_folder_records_its_graph(folder):
    meta = json.loads((folder / "model.json").read_text())
    graph = (folder / models.ONNX_FILE).read_bytes()
    import hashlib

    weights = (folder / "weights.safetensors").read_bytes()
    assert meta["onnx"] == {"file": "model.onnx", "sha256": hashlib.sha256(graph).hexdigest(),
                            "opset": 17, "weights_sha256": hashlib.sha256(weights).hexdigest()}
    # Same weights, same bytes: a re-export is reproducible.
    again = models.export_folder(folder)
    assert again.read_bytes() == graph


def test_a_checkpoint_from_a_state_dict_carries_a_graph_too(folder, tmp_path):
    loaded = models.load_model(folder)
    with torch.no_grad():
        loaded.module.classifier.bias.add_(1.0)
    models.save_model(folder, loaded.module.state_dict(), loaded.meta, replace=True)
    onnx = models.load_onnx(folder)
    x = _patches((2, 16, 16), n=4)
    with torch.inference_mode():
        expected = torch.softmax(loaded.module(torch.from_numpy(x)), dim=1).numpy()
    np.testing.assert_allclose(predict_patches(onnx, x), expected, atol=1e-5)


def test_a_tampered_graph_is_refused(folder):
    path = folder / models.ONNX_FILE
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    with pytest.raises(InputError, match=r"model.onnx does not match the sha256 .*export-onnx"):
        models.load_predictor(folder, device="cpu")


def test_weights_changed_apart_from_the_graph_are_refused(folder, tmp_path):
    """The graph runs, the weights are the model (Grad-CAM, retraining): changed apart, the
    two would disagree silently. (Also what a kill between a checkpoint's weights and its
    model.json leaves; export-onnx makes them agree again.)"""
    other = cnn_model_folder(tmp_path / "other", seed=7, arch_params={"depth": 1, "width": 4},
                             classes=["bright", "dark"])
    shutil.copy(other / "weights.safetensors", folder / "weights.safetensors")
    with pytest.raises(InputError, match=r"weights.safetensors is not the one \S+model.onnx was "
                                         r"exported from .*export-onnx"):
        models.load_predictor(folder, device="cpu")
    models.export_folder(folder)
    onnx = models.load_predictor(folder, device="cpu")
    x = _patches((2, 16, 16), n=4)
    with torch.inference_mode():
        expected = torch.softmax(models.load_model(other).module(torch.from_numpy(x)), 1).numpy()
    np.testing.assert_allclose(predict_patches(onnx, x), expected, atol=1e-5)


def test_another_models_graph_is_refused_even_with_its_hash(folder, tmp_path):
    other = cnn_model_folder(tmp_path / "three", arch_params={"depth": 1, "width": 4},
                             classes=["a", "b", "c"])
    wider = cnn_model_folder(tmp_path / "wide", arch_params={"depth": 1, "width": 4},
                             classes=["bright", "dark"], patch_size=[40, 40])
    for source, message in ((other, r"outputs of shape \['n', 3\] .* 2 classes"),
                            (wider, r"inputs of shape \['n', 2, 40, 40\]")):
        target = shutil.copytree(folder, tmp_path / f"swap-{source.name}")
        shutil.copy(source / models.ONNX_FILE, target / models.ONNX_FILE)
        meta = json.loads((target / "model.json").read_text())
        # The other graph and its hash, claimed to come from these weights.
        meta["onnx"] = {**json.loads((source / "model.json").read_text())["onnx"],
                        "weights_sha256": meta["onnx"]["weights_sha256"]}
        (target / "model.json").write_text(json.dumps(meta))
        with pytest.raises(InputError, match=message):
            models.load_onnx(target)


@pytest.mark.parametrize("record", [
    {"file": "../../etc/passwd", "sha256": "0" * 64, "opset": 17},
    {"file": "model.onnx", "sha256": "not hex", "opset": 17},
    {"file": "model.onnx", "sha256": "0" * 64, "opset": True},
    "model.onnx",
])
def test_a_bad_record_is_refused_naming_the_key(folder, record):
    meta = json.loads((folder / "model.json").read_text())
    meta["onnx"] = record
    (folder / "model.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match=r"model.json key 'onnx' must be null or"):
        models.load_predictor(folder, device="cpu")


def test_a_graph_that_is_not_onnx_is_one_clear_error(folder):
    import hashlib

    garbage = b"not a protobuf at all"
    (folder / models.ONNX_FILE).write_bytes(garbage)
    meta = json.loads((folder / "model.json").read_text())
    meta["onnx"]["sha256"] = hashlib.sha256(garbage).hexdigest()
    (folder / "model.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match=r"model.onnx cannot be loaded by ONNX Runtime"):
        models.load_onnx(folder)


def _make_old(folder):
    """The folder as saved before model.onnx existed."""
    (folder / models.ONNX_FILE).unlink()
    meta = json.loads((folder / "model.json").read_text())
    del meta["onnx"]
    (folder / "model.json").write_text(json.dumps(meta, indent=2))


def test_an_old_folder_is_exported_once_on_first_use(folder):
    _make_old(folder)
    fingerprint = model_fingerprint(folder)
    notes = []
    model = models.load_predictor(folder, device="cpu", note=notes.append)
    assert isinstance(model, models.OnnxModel)
    assert len(notes) == 1 and "exported it once" in notes[0]
    assert (folder / models.ONNX_FILE).is_file()
    assert json.loads((folder / "model.json").read_text())["onnx"]["file"] == "model.onnx"
    models.load_predictor(folder, device="cpu", note=notes.append)
    assert len(notes) == 1
    # The record describes a derived file: predictions made before stay up to date.
    assert model_fingerprint(folder) == fingerprint == model_fingerprint(model)
    assert model_fingerprint(models.load_model(folder)) == fingerprint


def test_an_old_folder_that_cannot_be_written_predicts_with_torch(folder, monkeypatch):
    _make_old(folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def read_only(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("svetlana_core.models.export.export_folder", read_only)
    notes = []
    model = models.load_predictor(folder, device="cpu", note=notes.append)
    assert isinstance(model, models.LoadedModel)
    assert notes == [f"{folder} has no model.onnx and it cannot be written there (Permission "
                     "denied): predicting with torch, which is slower"]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_a_network_the_exporter_cannot_take_is_saved_and_predicted_with_torch(
        folder, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr("svetlana_core.models.export.graph_for", broken)
    monkeypatch.setattr("svetlana_core.models.export.onnx_graph", broken)
    loaded = models.load_model(folder)
    with pytest.warns(RuntimeWarning, match="model.onnx not written .*unsupported operator"):
        saved = models.save_model(tmp_path / "copy", loaded.module, loaded.meta)
    assert json.loads((saved / "model.json").read_text())["onnx"] is None
    assert not (saved / models.ONNX_FILE).exists()
    notes = []
    model = models.load_predictor(saved, device="cpu", note=notes.append)
    assert isinstance(model, models.LoadedModel)
    assert "cannot be exported (RuntimeError: unsupported operator)" in notes[0]


def test_devices(folder):
    with pytest.raises(InputError, match="device='tpu' is not valid"):
        models.load_predictor(folder, device="tpu")
    if not torch.cuda.is_available():  # CI and these machines
        assert models.prediction_device("auto") == "cpu"
        assert isinstance(models.load_predictor(folder, device="auto"), models.OnnxModel)
        with pytest.raises(InputError, match="no CUDA GPU is available"):
            models.load_predictor(folder, device="cuda")
    else:
        assert models.cuda_present() and models.prediction_device("auto") == "cuda"
        assert isinstance(models.load_predictor(folder, device="auto"), models.LoadedModel)
