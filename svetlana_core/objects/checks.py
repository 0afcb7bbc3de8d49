"""Checks of instance masks shared by every module that reads objects."""

from __future__ import annotations

import numpy as np
from svetlana_core.errors import InputError

_SPATIAL_AXES = {2: ("row", "column"), 3: ("plane", "row", "column")}


def _check_mask(mask: np.ndarray, name: str = "mask") -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype == bool or not np.issubdtype(mask.dtype, np.integer):
        raise InputError(
            f"{name} has dtype {mask.dtype}; expected integer labels "
            "(0 = background, one integer per object)"
        )
    if mask.ndim not in _SPATIAL_AXES:
        raise InputError(
            f"{name} has shape {mask.shape}; expected 2D (rows, columns) "
            "or 3D (planes, rows, columns)"
        )
    return mask
