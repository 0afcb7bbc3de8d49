"""Devices, memory formats and CPU threads: where a network runs and in which layout.

Importable without torch (the training config checks device names with :data:`DEVICES`);
torch is imported by the functions that need it, which only run once a network is built.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from svetlana_core.errors import InputError

if TYPE_CHECKING:
    import torch

#: Device names a config may give (besides ``"cuda:<index>"``).
DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto") -> torch.device:
    """The torch device to train or predict on.

    Parameters
    ----------
    name : str
        ``"auto"`` (CUDA, then Apple MPS, then CPU), ``"cpu"``, ``"cuda"``, ``"cuda:<index>"``
        or ``"mps"``.

    Returns
    -------
    torch.device

    Raises
    ------
    InputError
        For an unknown name, or CUDA / MPS asked for on a machine that has none.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    import torch

    if not isinstance(name, str):
        raise InputError(f"device={name!r} is not valid; choose one of {', '.join(DEVICES)}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not _mps_available():
            raise InputError("device='mps' was asked but Apple MPS is not available here")
        return torch.device("mps")
    match = re.fullmatch(r"cuda(?::(\d+))?", name)
    if match is None:
        raise InputError(
            f"device={name!r} is not valid; choose one of {', '.join(DEVICES)} or 'cuda:<index>'"
        )
    if not torch.cuda.is_available():
        raise InputError(f"device={name!r} was asked but no CUDA GPU is available here")
    index = int(match.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise InputError(
            f"device={name!r} was asked but there are {torch.cuda.device_count()} CUDA GPU(s)"
        )
    return torch.device(name)


def describe_device() -> str:
    """The device ``"auto"`` picks here, for people: the GPU's name, Apple MPS, or the CPU.

    Returns
    -------
    str
        ``"GPU: <name>"``, ``"Apple GPU (MPS)"`` or ``"CPU (<n> cores)"``.
    """
    import torch

    if torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name(0)}"
    if _mps_available():
        return "Apple GPU (MPS)"
    return f"CPU ({os.cpu_count()} cores)"


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def memory_format_for(spatial_dims: int) -> torch.memory_format:
    """Layout for a network's weights and batches: channels-last in 2D.

    oneDNN (CPU) and cuDNN run 2D convolutions faster on channels-last tensors: the default
    CNN trained 1.3x (40 x 40 patches) to 1.7x (72 x 72) faster on the 2-core CPU. 3D stays
    in the default layout.
    """
    import torch

    return torch.channels_last if spatial_dims == 2 else torch.contiguous_format


def cpu_threads() -> int:
    """CPU cores this process may run on (its affinity where the system tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)
