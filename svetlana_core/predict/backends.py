"""What runs the network during a prediction, chosen by the kind of model: ONNX Runtime on the
CPU for an :class:`~svetlana_core.models.inference.OnnxModel` (no torch imported), torch for a
:class:`~svetlana_core.models.LoadedModel` (:mod:`~svetlana_core.predict.network`, imported
only then); and glibc's allocator kept from returning memory mid-prediction."""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from svetlana_core.errors import InputError
from svetlana_core.models.inference import OnnxModel

if TYPE_CHECKING:
    from svetlana_core.models import LoadedModel

#: What a runner's ``forward`` takes: ``(table rows, batch of patches, seconds spent cutting
#: it)``, in table order (:func:`~svetlana_core.predict.crop._batches`).
Batches = Iterable[tuple[slice, np.ndarray, float]]

#: Default batch sizes of :func:`~svetlana_core.predict.predict_image`: ONNX Runtime on the
#: CPU, torch on the CPU and torch on a GPU (see its docstring).
ONNX_BATCH_SIZE = 64
CPU_BATCH_SIZE = 16
GPU_BATCH_SIZE = 256


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of float32 logits ``(N, K)``, as float32.

    Examples
    --------
    >>> softmax(np.array([[0.0, 0.0], [0.0, np.log(3.0)]], np.float32)).round(3)
    array([[0.5 , 0.5 ],
           [0.25, 0.75]], dtype=float32)
    """
    shifted = logits.astype(np.float32) - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


class OnnxRunner:
    """Runs an :class:`OnnxModel` on the CPU."""

    gpu = False
    batch_size = ONNX_BATCH_SIZE

    def __init__(self, model: OnnxModel, device: Any = None) -> None:
        if device is not None and str(device) != "cpu":
            raise InputError(
                f"device={device!r}: this model runs on the CPU with ONNX Runtime; load it with "
                "models.load_predictor(folder, device=...) to predict on a GPU"
            )
        self.model = model

    def forward(self, batches: Batches, probabilities: np.ndarray, chunk_objects: int,
                timings: dict[str, float]) -> None:
        """Write the softmax of every batch into ``probabilities`` (N, K); adds the seconds
        spent to ``timings`` (``crop``, ``forward``, ``collect``)."""
        for rows, batch, crop_time in batches:
            timings["crop"] += crop_time
            mark = time.perf_counter()
            logits = self.model.logits(batch)
            timings["forward"] += time.perf_counter() - mark
            mark = time.perf_counter()
            probabilities[rows] = softmax(logits)
            timings["collect"] += time.perf_counter() - mark


def load_for_prediction(
    folder: str | os.PathLike,
    device: str = "auto",
    note: Callable[[str], Any] | None = None,
    threads: int | None = None,
) -> Any:
    """Any model folder, ready for :func:`~svetlana_core.predict.predict_image`: a CNN as
    :func:`~svetlana_core.models.load_predictor` loads it (ONNX Runtime on a CPU), a random
    forest as :func:`~svetlana_core.baseline.load_baseline` does (numpy, on the CPU whatever
    ``device`` says).

    Raises
    ------
    InputError
        As those two loaders.
    """
    from svetlana_core.models.folder import model_kind
    from svetlana_core.models.inference import load_predictor

    if model_kind(folder) == "rf":
        from svetlana_core.baseline import load_baseline

        return load_baseline(folder)
    return load_predictor(folder, device=device, note=note, threads=threads)


def is_forest(model: Any) -> bool:
    """Whether ``model`` is a random-forest baseline (it predicts from object features)."""
    return hasattr(model, "forest") and hasattr(model, "feature_names")


def engine_of(model: Any) -> str:
    """What runs a model, for people: ONNX Runtime, torch on a device, or the forest."""
    if is_forest(model):
        return "random forest (CPU)"
    if isinstance(model, OnnxModel):
        return "ONNX Runtime (CPU)"
    return f"torch ({model.device})"


def runner_for(model: OnnxModel | LoadedModel, device: Any = None) -> Any:
    """The runner of a model: :class:`OnnxRunner`, or torch's ``TorchRunner``."""
    if isinstance(model, OnnxModel):
        return OnnxRunner(model, device)
    from svetlana_core.predict.network import TorchRunner

    return TorchRunner(model, device)


def predict_patches(model: OnnxModel | LoadedModel, X: np.ndarray,
                    batch_size: int = 256) -> np.ndarray:
    """Class probabilities of patches cut as the model's ``meta`` says.

    Parameters
    ----------
    model : OnnxModel or LoadedModel
        From :func:`~svetlana_core.models.load_predictor` or
        :func:`~svetlana_core.models.load_model`.
    X : ndarray of float32, shape (N, in_channels, *patch_size)
    batch_size : int

    Returns
    -------
    ndarray of float32, shape (N, n_classes)
        Columns in ``model.classes`` order.

    Raises
    ------
    InputError
        When ``X`` does not have the model's channels and patch size.
    """
    X = np.asarray(X, dtype=np.float32)
    expected = (model.meta["in_channels"], *model.patch_size)
    if X.ndim != len(expected) + 1 or X.shape[1:] != expected:
        raise InputError(f"patches have shape {X.shape[1:]} but the model needs {expected}")
    if not isinstance(model, OnnxModel):
        from svetlana_core.predict.network import torch_patches

        return torch_patches(model, X, batch_size)
    out = np.empty((len(X), len(model.classes)), dtype=np.float32)
    for start in range(0, len(X), batch_size):
        out[start:start + batch_size] = softmax(model.logits(X[start:start + batch_size]))
    return out


_MALLOC_LOCK = threading.Lock()
_MALLOC_USERS = 0


def _glibc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") else None  # glibc only


@contextmanager
def _freed_memory_kept(limit: int = 256 << 20) -> Iterator[None]:
    """While the block runs, let glibc reuse freed memory instead of giving it back at once.

    Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536`` so that freed memory goes
    back to the system at once; setting it also freezes glibc's mmap threshold at 128 KiB. For
    torch that means every activation map of every batch is mapped, paged in and unmapped
    again: the forward pass ran 3-4x slower in a process with that setting, up to 9x in a Dask
    worker (bench/RESULTS.md "## prediction"). Here both thresholds are raised (to ``limit``
    and glibc's largest mmap threshold, 32 MiB) while at least one prediction runs in the
    process, then put back, with a trim, so the worker behaves as before between tasks.
    Nothing happens where the variable is not set or the C library is not glibc.
    """
    global _MALLOC_USERS
    trim = os.environ.get("MALLOC_TRIM_THRESHOLD_", "")
    libc = _glibc() if trim.isdigit() else None
    if libc is None:
        yield
        return
    trim_threshold, mmap_threshold = -1, -3  # M_TRIM_THRESHOLD, M_MMAP_THRESHOLD (malloc.h)
    mmap_default = os.environ.get("MALLOC_MMAP_THRESHOLD_", "")
    with _MALLOC_LOCK:
        _MALLOC_USERS += 1
        if _MALLOC_USERS == 1:
            libc.mallopt(trim_threshold, ctypes.c_int(limit))
            libc.mallopt(mmap_threshold, ctypes.c_int(32 << 20))
    try:
        yield
    finally:
        with _MALLOC_LOCK:
            _MALLOC_USERS -= 1
            if _MALLOC_USERS == 0:
                restore = int(mmap_default) if mmap_default.isdigit() else 128 << 10
                libc.mallopt(mmap_threshold, ctypes.c_int(restore))
                libc.mallopt(trim_threshold, ctypes.c_int(int(trim)))
                libc.malloc_trim(ctypes.c_size_t(0))
