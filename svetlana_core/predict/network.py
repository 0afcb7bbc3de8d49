"""The torch path of prediction (a GPU, or a model whose ``model.onnx`` is missing): a folded
eval copy of the network per device and the forward pass over batches of patches. The CPU
path runs ONNX Runtime instead (:mod:`~svetlana_core.predict.backends`) and never imports
this module."""

from __future__ import annotations

import copy
import threading
import time
import weakref
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from svetlana_core.models.device import memory_format_for
from svetlana_core.models.export import fold_batchnorm
from svetlana_core.predict.backends import CPU_BATCH_SIZE, GPU_BATCH_SIZE, Batches
from svetlana_core.training.loop import evaluate

if TYPE_CHECKING:
    from svetlana_core.models import LoadedModel


def _device_of(module: torch.nn.Module) -> torch.device:
    parameter = next(module.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


# original module -> (weights stamp, device, inference copy); entries die with the module.
_INFERENCE_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_INFERENCE_LOCK = threading.Lock()


def _stamp(module: nn.Module) -> tuple:
    """Changes whenever a parameter or buffer is replaced or modified in place."""
    return tuple((id(t), t._version) for t in (*module.parameters(), *module.buffers()))


def _inference_module(
    module: nn.Module, device: torch.device, layout: torch.memory_format
) -> nn.Module:
    """A copy of an eval-mode module for prediction, BatchNorm folded into the convolutions
    (:func:`~svetlana_core.models.export.fold_batchnorm`), on ``device`` in ``layout``.

    The copy is kept while the module lives and its weights do not change.
    """
    key = (_stamp(module), str(device), str(layout))
    with _INFERENCE_LOCK:
        cached = _INFERENCE_COPIES.get(module)
        if cached is not None and cached[0] == key:
            return cached[1]
    copy_ = fold_batchnorm(module) if not module.training else copy.deepcopy(module)
    copy_ = copy_.to(device, memory_format=layout)
    with _INFERENCE_LOCK:
        _INFERENCE_COPIES[module] = (key, copy_)
    return copy_


class TorchRunner:
    """Runs a torch model's folded copy on a device (see :func:`_inference_module`)."""

    def __init__(self, model: LoadedModel, device: str | torch.device | None) -> None:
        self.target = _device_of(model.module) if device is None else torch.device(device)
        self.gpu = self.target.type != "cpu"
        self.batch_size = GPU_BATCH_SIZE if self.gpu else CPU_BATCH_SIZE
        # Channels-last in 2D, as load_model lays out the weights: oneDNN and cuDNN run it
        # faster, and batches already in that layout save the network a conversion per layer.
        self.layout = memory_format_for(model.meta["spatial_dims"])
        self.module = _inference_module(model.module, self.target, self.layout)

    def forward(self, batches: Batches, probabilities: np.ndarray, chunk_objects: int,
                timings: dict[str, float]) -> None:
        """Run the network on every batch and write the softmax into ``probabilities`` (N, K).

        Adds the seconds spent to ``timings`` (``crop``, ``forward``, ``collect``). On a GPU
        the batches go through pinned memory and the results come back once per chunk, so the
        device keeps working meanwhile; on a CPU each batch is collected at once.
        """
        cuda = self.target.type == "cuda"
        waiting: list[tuple[slice, torch.Tensor]] = []

        def collect() -> None:
            mark = time.perf_counter()
            for rows, p in waiting:
                probabilities[rows] = p.cpu().numpy()
            waiting.clear()
            timings["collect"] += time.perf_counter() - mark

        with torch.inference_mode():
            for rows, batch, crop_time in batches:
                timings["crop"] += crop_time
                x = torch.from_numpy(batch).contiguous(memory_format=self.layout)
                if cuda:
                    x = x.pin_memory().to(self.target, non_blocking=True)
                mark = time.perf_counter()
                logits = self.module(x)
                timings["forward"] += time.perf_counter() - mark
                mark = time.perf_counter()
                waiting.append((rows, torch.softmax(logits.float(), dim=1)))
                timings["collect"] += time.perf_counter() - mark
                if not cuda or sum(len(p) for _, p in waiting) >= chunk_objects:
                    collect()
            collect()


def torch_patches(loaded: LoadedModel, X: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Softmax of ready-cut patches ``(N, in_channels, *patch_size)`` through a torch model,
    as the training scores them (mixed precision on CUDA)."""
    layout = memory_format_for(loaded.meta["spatial_dims"])
    return evaluate(loaded.module, X, None, loaded.device, batch_size, memory_format=layout)[1]
