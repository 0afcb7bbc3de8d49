"""The per-object table of an instance mask, in one vectorised pass, 2D and 3D."""

from __future__ import annotations

import numpy as np
import pandas as pd

from svetlana_core.objects.checks import SPATIAL_AXES, check_labels, check_mask


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of equal, nonzero value along the last axis, in raster order.

    Returns ``(values, starts, stops)``: each run covers flat indices ``starts:stops`` of the
    C-ordered mask and holds ``values``.
    """
    # ravel copies only when the mask is not C-contiguous (e.g. a transposed view).
    flat = np.ravel(mask)
    n_columns = mask.shape[-1]
    if flat.size == 0:
        empty = np.empty(0, dtype=np.intp)
        return flat[:0], empty, empty
    changes = flat[1:] != flat[:-1]
    # A run never continues onto the next row (or plane): mark every row end as a change.
    changes[n_columns - 1 :: n_columns] = True
    boundaries = np.flatnonzero(changes) + 1
    starts = np.concatenate([[0], boundaries])
    stops = np.concatenate([boundaries, [flat.size]])
    values = flat[starts]
    keep = values != 0
    values, starts, stops = values[keep], starts[keep], stops[keep]
    check_labels(values)  # on the runs, far fewer than the pixels
    return values, starts, stops


def labels_of(mask: np.ndarray) -> np.ndarray:
    """Sorted unique nonzero labels of a mask.

    Parameters
    ----------
    mask : ndarray of int, shape (rows, columns) or (planes, rows, columns)
        Label mask, 0 = background.

    Returns
    -------
    labels : ndarray of the mask's dtype, shape (n_objects,)
        The labels present, ascending, without 0.

    Raises
    ------
    InputError
        For what :func:`~svetlana_core.objects.check_mask` refuses, and negative labels.

    Examples
    --------
    >>> mask = np.zeros((5, 5), dtype=np.uint16)
    >>> mask[0, 0] = 42
    >>> mask[2:4, 1:3] = 7
    >>> labels_of(mask)
    array([ 7, 42], dtype=uint16)
    """
    mask = check_mask(mask)
    values, _, _ = _runs(mask)
    # Sorting the runs (not the pixels) keeps this cheap even for huge, sparse label values.
    return np.unique(values)


def object_table(mask: np.ndarray) -> pd.DataFrame:
    """One row per object of a label mask: label, area, centroid and bounding box.

    Parameters
    ----------
    mask : ndarray of int, shape (rows, columns) or (planes, rows, columns)
        Label mask, 0 = background. Not modified.

    Returns
    -------
    table : pandas.DataFrame, one row per label, sorted by label
        Columns, in order: ``label`` (int64, as in the mask), ``area`` (int64, pixel or voxel
        count), ``centroid_plane`` (3D only), ``centroid_row``, ``centroid_column`` (float64, the
        mean pixel coordinate), ``bbox_plane_start``, ``bbox_plane_stop`` (3D only),
        ``bbox_row_start``, ``bbox_row_stop``, ``bbox_column_start``, ``bbox_column_stop``
        (int64; stop is exclusive, so ``mask[start:stop]`` slices the object). An empty mask gives
        an empty table with these columns.

    Raises
    ------
    InputError
        If the mask is not an integer array, not 2D/3D, or holds negative labels.

    Examples
    --------
    >>> mask = np.zeros((5, 5), dtype=np.uint8)
    >>> mask[1:4, 1:3] = 3
    >>> mask[4, 4] = 7
    >>> object_table(mask)[["label", "area", "centroid_row", "centroid_column"]]
       label  area  centroid_row  centroid_column
    0      3     6           2.0              1.5
    1      7     1           4.0              4.0
    >>> object_table(mask).loc[0, ["bbox_row_start", "bbox_row_stop"]].tolist()
    [1, 4]
    """
    mask = check_mask(mask)
    axes = SPATIAL_AXES[mask.ndim]
    values, starts, stops = _runs(mask)
    labels, index = np.unique(values, return_inverse=True)
    n_objects = labels.size

    n_columns = mask.shape[-1]
    line = starts // n_columns  # index over all rows of all planes
    column_start = starts - line * n_columns
    column_stop = stops - line * n_columns
    length = stops - starts
    area = np.bincount(index, weights=length, minlength=n_objects)

    # Position of each run along the other axes: (row,) in 2D, (plane, row) in 3D.
    if mask.ndim == 2:
        leading = [line]
    else:
        leading = list(np.divmod(line, mask.shape[1]))

    columns: dict[str, np.ndarray] = {
        "label": labels.astype(np.int64),
        "area": area.astype(np.int64),
    }
    for axis, position in zip(axes[:-1], leading):
        columns[f"centroid_{axis}"] = (
            np.bincount(index, weights=position * length, minlength=n_objects) / area
        )
    # Sum of column coordinates over a run start..stop-1 is length * (start + stop - 1) / 2.
    column_sum = length * (column_start + column_stop - 1) / 2
    columns["centroid_column"] = (
        np.bincount(index, weights=column_sum, minlength=n_objects) / area
    )
    for axis, first, last in zip(
        axes, leading + [column_start], leading + [column_stop - 1]
    ):
        start = np.full(n_objects, np.iinfo(np.int64).max, dtype=np.int64)
        stop = np.full(n_objects, -1, dtype=np.int64)
        np.minimum.at(start, index, first)
        np.maximum.at(stop, index, last)
        columns[f"bbox_{axis}_start"] = start
        columns[f"bbox_{axis}_stop"] = stop + 1
    return pd.DataFrame(columns)
