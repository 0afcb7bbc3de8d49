"""Two-dimensional maps of objects from their features: the numeric feature matrix of a table
and its first two principal components, with numpy alone (no scikit-learn import: the
object map page opens without it).

>>> features = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.1]])
>>> np.round(pca_2d(features)[:, 0], 2)
array([-1.88, -0.64,  0.61,  1.92])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from svetlana_core.errors import InputError


def feature_matrix(table: pd.DataFrame, columns: Sequence[str] | None = None
                   ) -> tuple[np.ndarray, list[str]]:
    """The numeric columns of a feature table as a float64 matrix.

    Columns that are not numeric, hold no finite value or are constant are dropped (they
    place no object apart); a missing or infinite value takes its column's median.

    Parameters
    ----------
    table : DataFrame
        One row per object (e.g. :func:`~svetlana_core.objects.object_features`).
    columns : sequence of str, optional
        The columns to use (default: every numeric one).

    Returns
    -------
    matrix : ndarray, shape (objects, features)
    names : list of str
        The columns kept, in order.
    """
    chosen = list(columns) if columns is not None else [
        c for c in table.columns if pd.api.types.is_numeric_dtype(table[c])
        and not pd.api.types.is_bool_dtype(table[c])]
    values = table[chosen].to_numpy(dtype=np.float64, copy=True) if chosen else \
        np.empty((len(table), 0))
    finite = np.isfinite(values)
    keep = []
    for k in range(values.shape[1]):  # one pass per column: a few dozen features
        column = values[:, k]
        if not finite[:, k].any():
            continue
        column[~finite[:, k]] = np.median(column[finite[:, k]])
        if np.ptp(column) > 0:
            keep.append(k)
    return values[:, keep], [chosen[k] for k in keep]


def pca_2d(features: np.ndarray) -> np.ndarray:
    """The first two principal components of standardised features.

    Each column is centred and scaled to unit standard deviation (constant columns dropped),
    then projected on the two leading eigenvectors of the (features × features) covariance,
    which costs one pass over the rows: 100,000 objects × 40 features in milliseconds. The
    sign of each axis is fixed (its largest loading is positive), so the same data always
    give the same map.

    Parameters
    ----------
    features : ndarray, shape (objects, features)

    Returns
    -------
    ndarray of float64, shape (objects, 2)
        With one informative feature the second column is zeros.

    Raises
    ------
    InputError
        Fewer than 2 objects, or no feature that varies.
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise InputError(f"a map needs at least 2 objects with features, got shape "
                         f"{features.shape}")
    spread = features.std(axis=0)
    varying = spread > 0
    if not varying.any():
        raise InputError(f"none of the {features.shape[1]} features varies between the "
                         f"{features.shape[0]} objects: there is nothing to map")
    scaled = (features[:, varying] - features[:, varying].mean(axis=0)) / spread[varying]
    covariance = scaled.T @ scaled / (len(scaled) - 1)
    values, vectors = np.linalg.eigh(covariance)
    order = np.argsort(values)[::-1][:2]
    axes = vectors[:, order]
    flip = np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(axes.shape[1])])
    coordinates = scaled @ (axes * np.where(flip == 0, 1.0, flip))
    if coordinates.shape[1] == 1:
        coordinates = np.column_stack([coordinates, np.zeros(len(coordinates))])
    return coordinates
