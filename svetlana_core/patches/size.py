"""The automatic patch size: the box that most objects fit in, with room for context."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from svetlana_core.errors import InputError
from svetlana_core.objects import SPATIAL_AXES

# auto_patch_size: the bbox extent that 95 % of objects fit in, times room for context.
_SIZE_PERCENTILE = 95.0
_CONTEXT_FACTOR = 1.5
# The largest automatic sizes are a memory and speed budget, measured with
# bench/train_memory.py on the 2-core CPU (cnn, width 32, batch 64): 256² needs 2.2 GB and
# 11 s a step; 48³ needs 3.5 GB and 9 s a step, where 128³ (UroCell's mitochondria) would need
# 67 GB. Bigger objects are cropped to their middle; a patch size can always be given.
_SIZE_LIMITS = {2: (16, 256), 3: (8, 48)}
#: The largest automatic patch side, by number of spatial axes (the Train page names it).
AUTO_MAX = {ndim: limits[1] for ndim, limits in _SIZE_LIMITS.items()}


def auto_patch_size(table: pd.DataFrame, ndim: int) -> tuple[int, ...]:
    """A square (cubic) patch size that holds nearly every object with some context around it.

    The size is the 95th percentile over objects of their largest bounding-box extent, times 1.5
    for context, rounded up to a multiple of 8 and clipped to [16, 256] in 2D, [8, 48] in 3D
    (:data:`AUTO_MAX`: a memory and speed budget).
    A percentile rather than the maximum keeps a few giant objects (merged cells, debris, a
    segmentation error) from inflating every patch, which would shrink the typical object to a
    few pixels and multiply memory; those few giants are cropped instead. Multiples of 8 suit the
    stride-2 poolings of the networks.

    Parameters
    ----------
    table : pandas.DataFrame
        An :func:`~svetlana_core.objects.object_table` (needs the ``bbox_*_start/stop`` columns).
    ndim : {2, 3}
        Number of spatial axes.

    Returns
    -------
    size : tuple of int, length ``ndim``
        Equal sizes along (planes,) rows and columns. An empty table gives the smallest size.

    Raises
    ------
    InputError
        If ``ndim`` is not 2 or 3, or the table lacks bounding-box columns.

    Examples
    --------
    >>> from svetlana_core.objects import object_table
    >>> mask = np.zeros((5, 5), dtype=np.uint8)
    >>> mask[1:4, 1:4] = 1
    >>> auto_patch_size(object_table(mask), 2)
    (16, 16)
    """
    if ndim not in _SIZE_LIMITS:
        raise InputError(f"ndim must be 2 or 3; got {ndim!r}")
    smallest, largest = _SIZE_LIMITS[ndim]
    axes = SPATIAL_AXES[ndim]
    needed = [f"bbox_{axis}_{end}" for axis in axes for end in ("start", "stop")]
    missing = [column for column in needed if column not in table.columns]
    if missing:
        raise InputError(f"table has no column(s) {missing}; pass an object_table of the mask")
    if len(table) == 0:
        return (smallest,) * ndim
    extents = np.stack(
        [table[f"bbox_{axis}_stop"].to_numpy() - table[f"bbox_{axis}_start"].to_numpy()
         for axis in axes]
    )
    typical = np.percentile(extents.max(axis=0), _SIZE_PERCENTILE) * _CONTEXT_FACTOR
    size = int(np.clip(8 * math.ceil(typical / 8), smallest, largest))
    return (size,) * ndim
