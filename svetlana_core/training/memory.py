"""How much memory a training will need, estimated before it starts, and how much there is.

A run holds two large things: the cropped patches of every labelled object (float32,
``objects × (channels + 1) × patch``, kept in memory: see :mod:`svetlana_core.training`), and
one training step: the activations a batch leaves for the backward pass, their gradients,
and the weights with their gradients and Adam's two moments. A config that does not fit
used to end in a traceback from deep inside torch (issue 13: UroCell's automatic 128³
patches at batch 64 asked for one 17 GB allocation); :func:`check_fits` refuses it first,
in one line that names what to lower.

The step's figures were measured with ``bench/train_memory.py`` (peak RSS of two Adam steps
on the CPU, torch 2.14): for the ``cnn``, the peak is 4.0 times
``batch × width × patch voxels × 4 bytes`` (2D and 3D, depth 3 to 5, within 10 %: the
first block's convolution, normalisation, activation and their gradients at full size
dominate); for the torchvision networks, a factor times ``batch × patch pixels × 4 bytes``
plus 16 bytes a weight.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from svetlana_core.errors import InputError

#: cnn: peak step bytes / (batch × width × patch voxels × 4 bytes), measured.
CNN_STEP_FACTOR = 4.2
#: Other architectures: (step bytes per batch × patch pixels × 4 bytes, weights in millions),
#: measured at 72 × 72, batch 64 (32 for the largest), 4 channels.
TORCHVISION_STEPS = {
    "resnet18": (155, 11.7), "resnet34": (250, 21.8), "resnet50": (460, 25.6),
    "resnet101": (480, 44.5), "resnet152": (530, 60.2), "densenet121": (750, 8.0),
    "densenet161": (1100, 28.7), "densenet169": (800, 14.1), "densenet201": (830, 20.0),
    "alexnet": (30, 61.1),
}
#: Bytes a weight costs in training: itself, its gradient and Adam's two moments (float32).
BYTES_PER_WEIGHT = 16
#: What the worker itself takes besides (torch, the interpreter): measured ~200 MB.
BASELINE_BYTES = 300 * 2**20
#: Share of the free memory a run may plan to use (the rest: the OS, the app, other jobs).
USABLE_SHARE = 0.8


def step_bytes(arch: str, arch_params: Mapping[str, Any] | None,
               patch_shape: Sequence[int], batch_size: int) -> int:
    """Peak bytes of one training step (forward, backward, Adam) of a batch.

    >>> round(step_bytes("cnn", {"width": 32}, (128, 128, 128), 64) / 2**30)
    67
    >>> round(step_bytes("cnn", {"width": 32}, (48, 48, 48), 64) / 2**30, 1)
    3.5
    """
    voxels = math.prod(int(s) for s in patch_shape)
    if arch == "cnn":
        width = int((arch_params or {}).get("width", 32))
        return int(CNN_STEP_FACTOR * batch_size * width * voxels * 4)
    factor, weights_m = TORCHVISION_STEPS.get(arch, max(TORCHVISION_STEPS.values()))
    return int(factor * batch_size * voxels * 4 + weights_m * 1e6 * BYTES_PER_WEIGHT)


def patches_bytes(n_objects: int, in_channels: int, patch_shape: Sequence[int]) -> int:
    """Bytes of the cropped patches of ``n_objects`` (float32, image channels + mask)."""
    return int(n_objects) * int(in_channels) * math.prod(int(s) for s in patch_shape) * 4


def free_memory() -> int | None:
    """Bytes this process may still use: the cgroup's limit minus its use when there is
    one (a container, a job scheduler), else the system's available memory; None where
    neither can be read (no check is made then)."""
    for limit_file, used_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                  ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                   "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = Path(limit_file).read_text().strip()
            used = int(Path(used_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2**60:  # "max", or v1's "no limit" huge number
            cgroup_free = int(limit) - used
            return min(cgroup_free, _available() or cgroup_free)
    return _available()


def _available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:  # macOS, Windows
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def _gb(n: float) -> str:
    return f"{n / 2**30:.1f} GB"


def check_fits(arch: str, arch_params: Mapping[str, Any] | None, patch_shape: Sequence[int],
               batch_size: int, n_objects: int, in_channels: int,
               free: int | None = None, step_on_cpu: bool = True) -> int:
    """Refuse a training that would not fit in memory; return its estimated bytes.

    Parameters
    ----------
    arch, arch_params, batch_size : as in :class:`~svetlana_core.training.TrainConfig`.
    patch_shape : sequence of int
        Spatial patch shape.
    n_objects, in_channels : int
        Labelled objects, and a patch's channels (image channels + the mask).
    free : int, optional
        Bytes available (default :func:`environment_free`; no check when it is unknown).
    step_on_cpu : bool
        False when the step runs on a GPU (checked there by :func:`check_gpu_fits`): only
        the patches then count here.

    Raises
    ------
    InputError
        One line: the estimate, its parts, what is free, and what to lower.
    """
    data = patches_bytes(n_objects, in_channels, patch_shape)
    step = step_bytes(arch, arch_params, patch_shape, batch_size) if step_on_cpu else 0
    need = data + step + BASELINE_BYTES
    free = environment_free() if free is None else free
    if free is None or need <= USABLE_SHARE * free:
        return need
    shape = "×".join(str(int(s)) for s in patch_shape)
    lower = []
    if step > data:
        lower.append(f"the batch size (now {batch_size}; --batch-size)")
        if arch == "cnn":
            lower.append(f"the width (now {int((arch_params or {}).get('width', 32))}; "
                         "--arch-param width=)")
    lower.append(f"the patch size (now {shape}; --patch-size)")
    raise InputError(
        f"this training needs about {_gb(need)} of memory ({_gb(data)} for the {n_objects} "
        f"patches of {shape}, {_gb(step)} for a batch of {batch_size}) but "
        f"{_gb(free)} are free: lower {', '.join(lower)}"
    )


def check_gpu_fits(arch: str, arch_params: Mapping[str, Any] | None,
                   patch_shape: Sequence[int], batch_size: int, free: int) -> None:
    """As :func:`check_fits` for the step alone, against a GPU's free memory."""
    step = step_bytes(arch, arch_params, patch_shape, batch_size)
    if step > USABLE_SHARE * free:
        shape = "×".join(str(int(s)) for s in patch_shape)
        raise InputError(
            f"a training step with a batch of {batch_size} patches of {shape} needs about "
            f"{_gb(step)} of GPU memory but {_gb(free)} are free: lower the batch size or the "
            "patch size" + (" or the width" if arch == "cnn" else "")
        )


def environment_free() -> int | None:
    """:func:`free_memory`, or ``$SVETLANA_MEMORY_GB`` when set (a lab that shares a
    server may give training less than the machine has)."""
    value = os.environ.get("SVETLANA_MEMORY_GB")
    if value:
        try:
            return int(float(value) * 2**30)
        except ValueError:
            raise InputError(f"SVETLANA_MEMORY_GB={value!r} is not a number of gigabytes") \
                from None
    return free_memory()
