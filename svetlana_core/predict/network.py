"""The network at inference: a fused eval copy per device, glibc's allocator kept from
returning memory mid-prediction, and the class probabilities of ready-cut patches."""

from __future__ import annotations

import copy
import ctypes
import os
import sys
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from svetlana_core.errors import InputError
from svetlana_core.models.device import memory_format_for
from svetlana_core.training.loop import evaluate

if TYPE_CHECKING:
    from svetlana_core.models import LoadedModel


def _device_of(module: torch.nn.Module) -> torch.device:
    parameter = next(module.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
# original module -> (weights stamp, device, inference copy); entries die with the module.
_INFERENCE_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_INFERENCE_LOCK = threading.Lock()


def _stamp(module: nn.Module) -> tuple:
    """Changes whenever a parameter or buffer is replaced or modified in place."""
    return tuple((id(t), t._version) for t in (*module.parameters(), *module.buffers()))


def _inference_module(
    module: nn.Module, device: torch.device, layout: torch.memory_format
) -> nn.Module:
    """A copy of an eval-mode module for prediction: each BatchNorm that directly follows a
    convolution in a Sequential is folded into that convolution's weights, and the copy is
    put on ``device`` in ``layout``.

    Folding saves one pass over every activation map: the forward pass of the CNNs took
    15-20 % less time on the 2-core CPU (bench/RESULTS.md "## prediction"). Probabilities move
    by about 1e-7. The copy is kept while the module lives and its weights do not change.
    """
    key = (_stamp(module), str(device), str(layout))
    with _INFERENCE_LOCK:
        cached = _INFERENCE_COPIES.get(module)
        if cached is not None and cached[0] == key:
            return cached[1]
    copy_ = copy.deepcopy(module)
    if not copy_.training:
        for parent in copy_.modules():
            if not isinstance(parent, nn.Sequential):
                continue
            names = list(parent._modules)
            for first, second in zip(names, names[1:]):
                conv, norm = parent._modules[first], parent._modules[second]
                if (
                    isinstance(conv, _CONVS)
                    and isinstance(norm, _NORMS)
                    and _CONVS.index(type(conv)) == _NORMS.index(type(norm))
                    and norm.track_running_stats
                    and norm.running_mean is not None
                    and conv.out_channels == norm.num_features
                ):
                    parent._modules[first] = fuse_conv_bn_eval(conv, norm)
                    parent._modules[second] = nn.Identity()
    copy_ = copy_.to(device, memory_format=layout)
    with _INFERENCE_LOCK:
        _INFERENCE_COPIES[module] = (key, copy_)
    return copy_


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


def predict_patches(loaded: LoadedModel, X: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities of patches cut as the model's ``meta`` says.

    Parameters
    ----------
    loaded : LoadedModel
    X : ndarray of float32, shape (N, in_channels, *patch_size)
    batch_size : int

    Returns
    -------
    ndarray of float32, shape (N, n_classes)
        Columns in ``loaded.classes`` order.

    Raises
    ------
    InputError
        When ``X`` does not have the model's channels and patch size.
    """
    X = np.asarray(X, dtype=np.float32)
    expected = (loaded.meta["in_channels"], *loaded.patch_size)
    if X.ndim != len(expected) + 1 or X.shape[1:] != expected:
        raise InputError(f"patches have shape {X.shape[1:]} but the model needs {expected}")
    layout = memory_format_for(loaded.meta["spatial_dims"])
    return evaluate(loaded.module, X, None, loaded.device, batch_size, memory_format=layout)[1]
