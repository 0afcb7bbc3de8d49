"""Random-forest baseline on hand-crafted object features (the ilastik-style reference).

The Svetlana paper compares its CNNs with ilastik's object classification: a random forest on
per-object shape and intensity statistics. This module is that reference, in 2D and 3D, with
the same train / predict / evaluate / save surface as the CNN so the app and the CLI can score
both on the same split (:func:`svetlana_core.metrics.classification_metrics` for both).

No torch here: the baseline imports and runs without it.

Features (:func:`object_features`, one row per label, float64, pixel / voxel units, never
absolute position or orientation):

============================  =====  =======================================================
column                        dims   meaning
============================  =====  =======================================================
``area``                      2D 3D  pixel / voxel count
``perimeter``                 2D     scikit-image ``perimeter`` (4-connected contour length)
``circularity``               2D     4 pi area / perimeter^2 (about 1 for a disk)
``eccentricity``              2D     of the ellipse with the same second moments (0 = disk)
``solidity``                  2D 3D  area / convex-hull area, as scikit-image counts it
``extent``                    2D 3D  area / bounding-box area
``axis_major_length``         2D 3D  from the inertia tensor, as scikit-image
``axis_intermediate_length``  3D     the middle axis, same formula
``axis_minor_length``         2D 3D
``axis_ratio``                2D 3D  minor / major (1 = round, towards 0 = elongated)
``axis_ratio_intermediate``   3D     intermediate / major (low with ``axis_ratio`` = rod)
``equivalent_diameter_area``  2D 3D  diameter of the disk / ball of the same area
``euler_number``              2D 3D  objects minus holes (3D: plus cavities minus tunnels)
``surface_area``              3D     count of voxel faces between the object and anything else
``sphericity``                3D     pi^(1/3) (6 volume)^(2/3) / ``surface_area``
``ch{c}_mean``, ``_std``,     image  statistics of channel ``c`` inside the object
``_min``, ``_max``, ``_sum``,        (``std`` is the population std, ``p50`` the median,
``_p10``, ``_p50``, ``_p90``         percentiles interpolate linearly as ``np.percentile``)
``ch{c}_ring_mean``           image  mean of channel ``c`` on the background within
                                     ``ring_width`` pixels of the object
``ch{c}_contrast``            image  ``ch{c}_mean - ch{c}_ring_mean``
============================  =====  =======================================================

A value that is undefined for an object is NaN (the circularity of a one-pixel object, the ring
of an object with no background around it); the forest handles NaN (scikit-learn >= 1.4).

Saving. A fitted forest is stored as ``model.json`` (classes, feature names, parameters,
metrics, versions, the SHA-256 of the arrays) and ``forest.npz`` (the node arrays of every tree,
concatenated). It is predicted by :class:`Forest`, a small numpy traversal written here, so that
nothing is ever unpickled: a pickled or joblib'd estimator runs arbitrary code when loaded, and
model folders are shared between users of the app. ``forest.npz`` is read with
``allow_pickle=False`` and every array is checked before use.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import ConvexHull
from skimage.measure import regionprops_table
from skimage.segmentation import expand_labels

from svetlana_core.errors import InputError
from svetlana_core.metrics import classification_metrics

__all__ = [
    "SHAPE_FEATURES_2D",
    "SHAPE_FEATURES_3D",
    "INTENSITY_STATISTICS",
    "BaselineModel",
    "Forest",
    "object_features",
    "train_baseline",
    "load_baseline",
]

SHAPE_FEATURES_2D = (
    "area",
    "perimeter",
    "circularity",
    "eccentricity",
    "solidity",
    "extent",
    "axis_major_length",
    "axis_minor_length",
    "axis_ratio",
    "equivalent_diameter_area",
    "euler_number",
)
SHAPE_FEATURES_3D = (
    "area",
    "solidity",
    "extent",
    "axis_major_length",
    "axis_intermediate_length",
    "axis_minor_length",
    "axis_ratio",
    "axis_ratio_intermediate",
    "equivalent_diameter_area",
    "euler_number",
    "surface_area",
    "sphericity",
)
INTENSITY_STATISTICS = ("mean", "std", "min", "max", "sum", "p10", "p50", "p90")
_PERCENTILES = {"p10": 10.0, "p50": 50.0, "p90": 90.0}

FORMAT_VERSION = 1
MODEL_FILE = "model.json"
FOREST_FILE = "forest.npz"
_FOREST_ARRAYS = (
    "children_left",
    "children_right",
    "feature",
    "threshold",
    "value",
    "missing_go_to_left",
    "roots",
)


# --------------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------------


def _check_mask(mask: Any) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim not in (2, 3):
        raise InputError(
            f"mask must be 2D (rows, columns) or 3D (planes, rows, columns), got shape {mask.shape}"
        )
    if mask.dtype == bool or not np.issubdtype(mask.dtype, np.integer):
        raise InputError(
            f"mask must hold integer labels (0 = background), got dtype {mask.dtype}"
        )
    if mask.size and mask.min() < 0:
        raise InputError(f"mask has negative labels (minimum {mask.min()}); labels must be >= 0")
    return mask


def _check_image(image: Any, mask: np.ndarray) -> np.ndarray | None:
    if image is None:
        return None
    image = np.asarray(image)
    if image.ndim != mask.ndim + 1 or image.shape[1:] != mask.shape:
        layout = "(C, rows, columns)" if mask.ndim == 2 else "(C, planes, rows, columns)"
        raise InputError(
            f"image has shape {image.shape} but mask has {mask.shape}: the image must be "
            f"channel-first {layout} with the spatial shape of the mask"
        )
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)
            or image.dtype == bool):
        raise InputError(f"image must be numeric, got dtype {image.dtype}")
    return image


def _shape_features_2d(mask: np.ndarray) -> pd.DataFrame:
    props = (
        "label", "area", "perimeter", "eccentricity", "solidity", "extent",
        "axis_major_length", "axis_minor_length", "equivalent_diameter_area", "euler_number",
    )
    table = pd.DataFrame(regionprops_table(mask, properties=props)).set_index("label")
    with np.errstate(divide="ignore", invalid="ignore"):
        perimeter = table["perimeter"].to_numpy(float)
        table["circularity"] = np.where(
            perimeter > 0, 4 * np.pi * table["area"] / perimeter**2, np.nan
        )
        major = table["axis_major_length"].to_numpy(float)
        table["axis_ratio"] = np.where(major > 0, table["axis_minor_length"] / major, np.nan)
    return table


def _surface_faces(mask: np.ndarray, n_labels: int) -> np.ndarray:
    """Voxel faces between each label and anything else (other labels, background, outside).

    One pass of array comparisons per axis and a ``bincount``: no loop over objects. A face
    count over-estimates the area of a smooth surface (by 1.5 on average for a ball, depending
    on orientation) but is computed the same way for every object, which is what a classifier
    needs; marching cubes per object would cost a loop and seconds per volume.
    """
    faces = np.zeros(n_labels, dtype=np.int64)
    for axis in range(mask.ndim):
        low = mask[tuple(slice(0, -1) if a == axis else slice(None) for a in range(mask.ndim))]
        high = mask[tuple(slice(1, None) if a == axis else slice(None) for a in range(mask.ndim))]
        differ = low != high
        faces += np.bincount(low[differ], minlength=n_labels)[:n_labels]
        faces += np.bincount(high[differ], minlength=n_labels)[:n_labels]
        # The faces on the border of the volume: outside counts as background.
        for index in (0, mask.shape[axis] - 1):
            faces += np.bincount(np.take(mask, index, axis=axis).ravel(), minlength=n_labels)[
                :n_labels
            ]
    return faces


def _convex_volumes(mask: np.ndarray, labels: np.ndarray, tolerance: float = 1e-10) -> np.ndarray:
    """Voxel count of the convex hull of each label, as scikit-image's ``solidity`` counts it.

    scikit-image takes the hull of the face centres of the object's voxels and counts the voxel
    centres inside it (border included), by rasterising the hull with a point-in-simplex test:
    15 s for 83 objects in a 256^3 volume here. This gives the same count faster:

    - only voxels on the rims of an object can carry hull vertices, and their face centres are
      found for all objects at once (on a grid of doubled coordinates, where voxel ``i`` has
      its centre at ``2 i + 1`` and its faces at ``2 i`` and ``2 i + 2``);
    - Qhull gives the hull as half-spaces ``n . x + d <= 0``; along each line of voxels
      (fixed planes and rows) every half-space bounds the column from one side, so the voxels
      inside are one interval per line, counted without visiting voxels.

    Qhull takes one point set at a time, hence the loop over objects (about 0.5 s for 83
    objects in a 256^3 volume).
    """
    ndim = mask.ndim
    padded = np.pad(mask, 1)
    # A voxel whose two neighbours along some axis belong to its object has all its face
    # centres between those of its neighbours: none can be a hull vertex, so it is left out.
    # Only voxels on the object's rims remain (several times fewer than the surface voxels).
    candidate = padded != 0
    for axis in range(ndim):
        inner = [slice(1, -1) if a == axis else slice(None) for a in range(ndim)]
        before = [slice(0, -2) if a == axis else slice(None) for a in range(ndim)]
        after = [slice(2, None) if a == axis else slice(None) for a in range(ndim)]
        centre = padded[tuple(inner)]
        between = (centre == padded[tuple(before)]) & (centre == padded[tuple(after)])
        candidate[tuple(inner)] &= ~between
    voxels = np.nonzero(candidate)
    owners = np.repeat(padded[voxels], 2 * ndim)
    grid = tuple(2 * n + 1 for n in padded.shape)
    steps = np.concatenate([np.eye(ndim, dtype=np.int64), -np.eye(ndim, dtype=np.int64)])
    faces = tuple((2 * v[:, None] + 1 + steps[None, :, a]).ravel() for a, v in enumerate(voxels))
    # A face shared by two voxels of an object is one point: a 1D unique on flat indices keeps
    # Qhull's input small (a unique over (n, 3) rows costs more than the hull itself).
    flat = np.ravel_multi_index(faces, grid)
    order = np.lexsort((flat, owners))
    flat, owners = flat[order], owners[order]
    keep = np.ones(flat.size, dtype=bool)
    keep[1:] = (flat[1:] != flat[:-1]) | (owners[1:] != owners[:-1])
    flat, owners = flat[keep], owners[keep]
    points = np.stack(np.unravel_index(flat, grid), axis=1)
    starts = np.searchsorted(owners, labels, side="left")
    stops = np.searchsorted(owners, labels, side="right")
    counts = np.zeros(labels.size)
    for i, (start, stop) in enumerate(zip(starts, stops, strict=True)):
        own = points[start:stop]
        equations = ConvexHull(own.astype(np.float64)).equations  # (facets, ndim + 1)
        # Qhull splits flat faces into triangles with one (rounded) equation each.
        # (Rounded only to find the duplicates: rounding the equations used would move
        # voxel centres that lie exactly on the hull across it.)
        equations = equations[np.unique(np.round(equations, 9), axis=0, return_index=True)[1]]
        low, high = own.min(axis=0), own.max(axis=0)
        # Lines along the longest axis of the bounding box: the fewest lines to bound.
        line = int(np.argmax(high - low))
        across = [a for a in range(ndim) if a != line]
        # Voxel centres (odd doubled coordinates) of the bounding box across the lines.
        grids = np.meshgrid(*[np.arange(low[a] + 1, high[a], 2) for a in across], indexing="ij")
        centres = np.stack([g.ravel() for g in grids], axis=1).astype(np.float64)
        # Each half-space n . x + d <= tolerance bounds the line coordinate t: n_line t <= slack.
        slack = tolerance - equations[:, ndim] - centres @ equations[:, across].T
        n_line = equations[:, line]
        up, down, parallel = n_line > 0, n_line < 0, n_line == 0
        upper = (slack[:, up] / n_line[up]).min(axis=1)
        lower = (slack[:, down] / n_line[down]).max(axis=1)
        inside = (slack[:, parallel] >= 0).all(axis=1)
        # voxel centres 2 j + 1 in [lower, upper]
        n = np.floor((upper - 1) / 2) - np.ceil((lower - 1) / 2) + 1
        counts[i] = np.clip(n[inside], 0, None).sum()
    return counts


def _shape_features_3d(mask: np.ndarray, convex_hull: bool) -> pd.DataFrame:
    props = (
        "label", "area", "extent", "inertia_tensor_eigvals", "equivalent_diameter_area",
        "euler_number",
    )
    table = pd.DataFrame(regionprops_table(mask, properties=props)).set_index("label")
    labels = table.index.to_numpy()
    # scikit-image gives only the major and minor axes in 3D; the three lengths come from the
    # inertia eigenvalues with its formula (axis = sqrt(10 (sum of the other two - this one))).
    ev = table[[f"inertia_tensor_eigvals-{i}" for i in range(3)]].to_numpy(float)
    total = ev.sum(axis=1, keepdims=True)
    lengths = np.sqrt(10 * np.clip(total - 2 * ev, 0, None))  # ev sorted descending
    table = table.drop(columns=[f"inertia_tensor_eigvals-{i}" for i in range(3)])
    table["axis_major_length"] = lengths[:, 2]
    table["axis_intermediate_length"] = lengths[:, 1]
    table["axis_minor_length"] = lengths[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        major = lengths[:, 2]
        table["axis_ratio"] = np.where(major > 0, lengths[:, 0] / major, np.nan)
        table["axis_ratio_intermediate"] = np.where(major > 0, lengths[:, 1] / major, np.nan)
    faces = _surface_faces(mask, int(labels.max()) + 1)[labels].astype(float)
    table["surface_area"] = faces
    volume = table["area"].to_numpy(float)
    table["sphericity"] = np.pi ** (1 / 3) * (6 * volume) ** (2 / 3) / faces
    if convex_hull:
        table["solidity"] = volume / _convex_volumes(mask, labels)
    else:
        table["solidity"] = np.nan
    return table


def _intensity_features(
    image: np.ndarray, mask: np.ndarray, labels: np.ndarray, ring_width: float
) -> pd.DataFrame:
    """Per-channel statistics inside each object (and on a background ring around it).

    Vectorised over objects: the pixels of all objects are sorted once per channel by (label,
    value), so each object's pixels form a sorted run; min, max and percentiles are read at
    run offsets, sums come from ``bincount``.
    """
    selected = np.isin(mask, labels)
    codes = np.searchsorted(labels, mask[selected])  # labels is sorted: dense 0..n-1
    counts = np.bincount(codes, minlength=labels.size)
    starts = np.cumsum(counts) - counts
    ring_codes = None
    if ring_width > 0:
        grown = expand_labels(mask, distance=ring_width)
        ring = (mask == 0) & np.isin(grown, labels)
        ring_codes = np.searchsorted(labels, grown[ring])
        ring_counts = np.bincount(ring_codes, minlength=labels.size)
    columns: dict[str, np.ndarray] = {}
    for c, channel in enumerate(image):
        values = channel[selected].astype(np.float64)
        total = np.bincount(codes, weights=values, minlength=labels.size)
        mean = total / counts
        deviation = values - mean[codes]
        std = np.sqrt(np.bincount(codes, weights=deviation**2, minlength=labels.size) / counts)
        ordered = values[np.lexsort((values, codes))]
        stats = {"mean": mean, "std": std, "min": ordered[starts],
                 "max": ordered[starts + counts - 1], "sum": total}
        for name, q in _PERCENTILES.items():
            position = starts + q / 100 * (counts - 1)
            low = np.floor(position).astype(np.int64)
            high = np.minimum(low + 1, starts + counts - 1)
            fraction = position - low
            stats[name] = ordered[low] + fraction * (ordered[high] - ordered[low])
        for name in INTENSITY_STATISTICS:
            columns[f"ch{c}_{name}"] = stats[name]
        if ring_codes is not None:
            ring_total = np.bincount(
                ring_codes, weights=channel[ring].astype(np.float64), minlength=labels.size
            )
            with np.errstate(divide="ignore", invalid="ignore"):
                ring_mean = np.where(ring_counts > 0, ring_total / ring_counts, np.nan)
            columns[f"ch{c}_ring_mean"] = ring_mean
            columns[f"ch{c}_contrast"] = mean - ring_mean
    return pd.DataFrame(columns, index=pd.Index(labels, name="label"))


def object_features(
    image: np.ndarray | None,
    mask: np.ndarray,
    labels: Sequence[int] | None = None,
    *,
    ring_width: float = 3,
    convex_hull: bool = True,
) -> pd.DataFrame:
    """Hand-crafted shape and intensity features of the objects of a label mask.

    Parameters
    ----------
    image : ndarray or None
        Channel-first image, ``(C, rows, columns)`` or ``(C, planes, rows, columns)``, any
        numeric dtype; intensities are used as they are (normalise first to compare images
        taken with different settings). ``None`` for mask-only data: shape features only.
    mask : ndarray of int, shape (rows, columns) or (planes, rows, columns)
        Labels >= 0, 0 = background; labels are kept as they are (gaps allowed).
    labels : sequence of int, optional
        The objects to describe, in the order of the output rows. Default: every label of the
        mask, ascending.
    ring_width : float
        Width in pixels of the background ring around each object for ``ch{c}_ring_mean`` and
        ``ch{c}_contrast``; background pixels go to the nearest object
        (:func:`skimage.segmentation.expand_labels`). 0 leaves these columns out, and saves a
        Euclidean distance transform of the whole mask (3 to 10 s for 256^3 on 2 cores).
    convex_hull : bool
        3D only: compute ``solidity``, equal to scikit-image's but about 10 times faster (one
        Qhull call per object, 0.5 to 1.5 s for 80 objects in a 256^3 volume), and finite for
        flat objects, where scikit-image's Qhull call fails and gives inf; if False the column
        is NaN. 2D solidity is always computed.

    Returns
    -------
    pandas.DataFrame
        One row per object, index ``label``, float64 columns ``SHAPE_FEATURES_2D`` or
        ``SHAPE_FEATURES_3D`` (module docstring), then for each image channel ``c`` the
        ``ch{c}_<statistic>`` columns (``INTENSITY_STATISTICS``, then ``ring_mean`` and
        ``contrast`` when ``ring_width > 0``). No rows for a mask with no objects.

    Raises
    ------
    InputError
        For a mask that is not 2D / 3D integer with labels >= 0, an image whose shape does not
        match the mask, or a requested label that is 0 or absent from the mask.

    Notes
    -----
    Shape features come from :func:`skimage.measure.regionprops_table`, which loops over
    objects internally (on their bounding boxes); it is fast enough for a baseline (about
    0.2 s for 80 objects in a 256^3 volume). Intensity features are vectorised over objects.

    Examples
    --------
    >>> mask = np.zeros((5, 5), dtype=np.uint8)
    >>> mask[1:4, 1:4] = 7
    >>> f = object_features(np.full((1, 5, 5), 2.0), mask)
    >>> f.loc[7, ["area", "extent", "ch0_mean"]].tolist()
    [9.0, 1.0, 2.0]
    """
    mask = _check_mask(mask)
    image = _check_image(image, mask)
    present = np.unique(mask)
    present = present[present != 0]
    if labels is None:
        wanted = present
    else:
        wanted = np.asarray(list(labels))
        if wanted.size and not np.issubdtype(wanted.dtype, np.integer):
            raise InputError(f"labels must be integers, got {wanted[:5].tolist()}")
        unknown = np.setdiff1d(wanted, present)
        if unknown.size:
            raise InputError(
                f"labels {unknown[:10].tolist()} are not objects of the mask "
                f"(it has {present.size} labels between {present.min(initial=0)} and "
                f"{present.max(initial=0)})"
            )
    unique_wanted = np.unique(wanted)
    shape_columns = SHAPE_FEATURES_2D if mask.ndim == 2 else SHAPE_FEATURES_3D
    if unique_wanted.size == 0:
        shape = pd.DataFrame(columns=list(shape_columns), dtype=float)
    else:
        # Shape features do not depend on the other objects: drop the unrequested ones so that
        # regionprops only visits what was asked for.
        own = mask if unique_wanted.size == present.size else np.where(
            np.isin(mask, unique_wanted), mask, 0
        )
        if mask.ndim == 2:
            shape = _shape_features_2d(own)
        else:
            shape = _shape_features_3d(own, convex_hull)
    shape = shape.reindex(columns=list(shape_columns)).astype(float)
    shape.index = pd.Index(shape.index.to_numpy(dtype=np.int64), name="label")
    table = shape
    if image is not None:
        if unique_wanted.size:
            intensity = _intensity_features(image, mask, unique_wanted, ring_width)
        else:
            names = [f"ch{c}_{s}" for c in range(image.shape[0]) for s in INTENSITY_STATISTICS
                     + (("ring_mean", "contrast") if ring_width > 0 else ())]
            intensity = pd.DataFrame(columns=names, dtype=float)
        intensity.index = pd.Index(intensity.index.to_numpy(dtype=np.int64), name="label")
        table = shape.join(intensity)
    table = table.loc[wanted.astype(np.int64)] if wanted.size else table.iloc[:0]
    table.index.name = "label"
    return table


# --------------------------------------------------------------------------------------------
# The forest as plain arrays
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Forest:
    """The trees of a fitted random forest as flat node arrays, predicted with numpy.

    All trees are concatenated: tree ``t`` starts at node ``roots[t]``; child indices are
    global. ``n_nodes`` is the total node count, ``n_classes`` the model's class count.

    Attributes
    ----------
    children_left, children_right : ndarray of int64, shape (n_nodes,)
        Child node of each node; -1 at leaves. A child always comes after its parent.
    feature : ndarray of int64, shape (n_nodes,)
        Column compared at each internal node (ignored at leaves).
    threshold : ndarray of float64, shape (n_nodes,)
        A sample goes left when ``x <= threshold`` (``x`` rounded to float32 first, as
        scikit-learn does).
    value : ndarray of float64, shape (n_nodes, n_classes)
        Class probabilities at each leaf.
    missing_go_to_left : ndarray of bool, shape (n_nodes,)
        Where a NaN goes at each internal node.
    roots : ndarray of int64, shape (n_trees,)
        First node of each tree.
    """

    children_left: np.ndarray
    children_right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    value: np.ndarray
    missing_go_to_left: np.ndarray
    roots: np.ndarray

    @classmethod
    def from_sklearn(cls, estimator: Any, n_classes: int) -> Forest:
        """Take the node arrays out of a fitted ``RandomForestClassifier``.

        The estimator must have been fitted on integer class codes ``0 .. n_classes - 1``
        (some may be absent: their probability is 0 everywhere).
        """
        parts: dict[str, list[np.ndarray]] = {name: [] for name in _FOREST_ARRAYS}
        offset = 0
        codes = np.asarray(estimator.classes_, dtype=np.int64)
        for tree in estimator.estimators_:
            t = tree.tree_
            left = t.children_left.astype(np.int64)
            right = t.children_right.astype(np.int64)
            parts["children_left"].append(np.where(left >= 0, left + offset, -1))
            parts["children_right"].append(np.where(right >= 0, right + offset, -1))
            parts["feature"].append(np.where(left >= 0, t.feature, 0).astype(np.int64))
            parts["threshold"].append(t.threshold.astype(np.float64))
            # The normalisation DecisionTreeClassifier.predict_proba applies, done once here.
            raw = t.value[:, 0, : codes.size].astype(np.float64)
            normaliser = raw.sum(axis=1)[:, None]
            normaliser[normaliser == 0.0] = 1.0
            value = np.zeros((t.node_count, n_classes))
            value[:, codes] = raw / normaliser
            parts["value"].append(value)
            parts["missing_go_to_left"].append(t.missing_go_to_left.astype(bool))
            parts["roots"].append(np.array([offset], dtype=np.int64))
            offset += t.node_count
        return cls(**{name: np.concatenate(arrays) for name, arrays in parts.items()})

    @property
    def n_trees(self) -> int:
        return int(self.roots.size)

    @property
    def n_classes(self) -> int:
        return int(self.value.shape[1])

    def _tree_leaves(self, tree: int, x: np.ndarray) -> np.ndarray:
        """Leaf of tree ``tree`` reached by each row of float32 ``x``, shape (n_samples,)."""
        node = np.full(x.shape[0], self.roots[tree], dtype=np.int64)
        pending = np.arange(x.shape[0])
        # One step down per iteration for all the samples not yet at a leaf: as many
        # iterations as the tree is deep, never one per sample. It ends because a child always
        # has a higher index than its parent, inside the same tree (checked on load).
        while pending.size:
            current = node[pending]
            left = self.children_left[current]
            internal = np.flatnonzero(left >= 0)
            pending, current, left = pending[internal], current[internal], left[internal]
            values = x[pending, self.feature[current]]
            go_left = (values <= self.threshold[current]) | (
                np.isnan(values) & self.missing_go_to_left[current]
            )
            node[pending] = np.where(go_left, left, self.children_right[current])
        return node

    def leaves(self, x: np.ndarray) -> np.ndarray:
        """Leaf reached by every sample in every tree.

        Parameters
        ----------
        x : ndarray, shape (n_samples, n_features)

        Returns
        -------
        ndarray of int64, shape (n_samples, n_trees)
        """
        x = self._as_float32(x)
        return np.stack([self._tree_leaves(t, x) for t in range(self.n_trees)], axis=1)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, the mean of the trees' leaf probabilities.

        Parameters
        ----------
        x : ndarray, shape (n_samples, n_features)

        Returns
        -------
        ndarray of float64, shape (n_samples, n_classes)
        """
        x = self._as_float32(x)
        proba = np.zeros((x.shape[0], self.n_classes))
        # Tree by tree (a tree's nodes stay in cache; memory is one node per sample), added
        # then divided in scikit-learn's order, so the result is bit-for-bit that of
        # RandomForestClassifier.predict_proba with n_jobs=1.
        for t in range(self.n_trees):
            proba += self.value[self._tree_leaves(t, x)]
        proba /= self.n_trees
        return proba

    @staticmethod
    def _as_float32(x: np.ndarray) -> np.ndarray:
        # scikit-learn compares float32 features with float64 thresholds; do the same so that
        # a value equal to a threshold after rounding goes the same way.
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2:
            raise InputError(f"features must be 2D (samples, features), got shape {x.shape}")
        return x

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in _FOREST_ARRAYS}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], n_features: int, n_classes: int,
                    source: str = FOREST_FILE) -> Forest:
        """Build a forest from saved arrays, checking every array (a bad file -> InputError)."""
        missing = [name for name in _FOREST_ARRAYS if name not in arrays]
        if missing:
            raise InputError(f"{source} has no array {missing[0]!r}")

        def bad(name: str, why: str) -> InputError:
            return InputError(f"{source} array {name!r} {why}")

        checked: dict[str, np.ndarray] = {}
        kinds = {"children_left": "i", "children_right": "i", "feature": "i", "roots": "i",
                 "threshold": "f", "value": "f", "missing_go_to_left": "b"}
        for name, kind in kinds.items():
            array = np.asarray(arrays[name])
            if array.dtype.kind != kind and not (kind == "b" and array.dtype.kind in "iu"):
                raise bad(name, f"has dtype {array.dtype}")
            checked[name] = array
        n_nodes = checked["children_left"].shape[0] if checked["children_left"].ndim == 1 else -1
        for name in ("children_left", "children_right", "feature", "threshold",
                     "missing_go_to_left"):
            if checked[name].shape != (n_nodes,):
                raise bad(name, f"has shape {checked[name].shape}, expected ({n_nodes},)")
        if checked["value"].shape != (n_nodes, n_classes):
            raise bad("value", f"has shape {checked['value'].shape}, expected "
                               f"({n_nodes}, {n_classes}) for {n_classes} classes")
        roots = checked["roots"].astype(np.int64)
        if roots.ndim != 1 or roots.size == 0 or roots[0] != 0 or np.any(np.diff(roots) <= 0) \
                or roots[-1] >= n_nodes:
            raise bad("roots", "is not an increasing list of tree starts")
        left = checked["children_left"].astype(np.int64)
        right = checked["children_right"].astype(np.int64)
        node = np.arange(n_nodes)
        internal = left >= 0
        if np.any((right >= 0) != internal) or np.any(left[~internal] != -1):
            raise bad("children_right", "does not match children_left (leaves have -1 in both)")
        # Children after their parent, inside the parent's tree: every path ends at a leaf.
        tree_end = np.append(roots[1:], n_nodes)[np.searchsorted(roots, node, side="right") - 1]
        for name, child in (("children_left", left), ("children_right", right)):
            if np.any(internal & ((child <= node) | (child >= tree_end))):
                raise bad(name, "points to a node that is not a later node of the same tree")
        feature = checked["feature"].astype(np.int64)
        if np.any(internal & ((feature < 0) | (feature >= n_features))):
            raise bad("feature", f"has indices outside 0..{n_features - 1}")
        threshold = checked["threshold"].astype(np.float64)
        if np.any(internal & ~np.isfinite(threshold)):
            raise bad("threshold", "has non-finite values")
        value = checked["value"].astype(np.float64)
        if not np.all(np.isfinite(value)) or np.any(value < 0):
            raise bad("value", "has negative or non-finite probabilities")
        return cls(children_left=left, children_right=right, feature=feature,
                   threshold=threshold, value=value,
                   missing_go_to_left=checked["missing_go_to_left"].astype(bool), roots=roots)


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


def _feature_matrix(features: Any, feature_names: Sequence[str], what: str) -> np.ndarray:
    if not isinstance(features, pd.DataFrame):
        raise InputError(f"{what} must be a pandas DataFrame of features, got "
                         f"{type(features).__name__}")
    missing = [name for name in feature_names if name not in features.columns]
    if missing:
        raise InputError(
            f"{what} lacks {len(missing)} feature column(s) the model was trained on: "
            f"{missing[:5]}{' ...' if len(missing) > 5 else ''} (was it computed with the same "
            f"image channels and dimensionality?)"
        )
    subset = features[list(feature_names)]
    not_numeric = [c for c in subset.columns if not pd.api.types.is_numeric_dtype(subset[c])]
    if not_numeric:
        raise InputError(f"{what} has non-numeric feature column(s) {not_numeric[:5]}")
    x = subset.to_numpy(dtype=np.float64)
    if np.isinf(x).any():
        column = subset.columns[np.isinf(x).any(axis=0)][0]
        raise InputError(f"{what} column {column!r} has infinite values")
    return x


def _versions() -> dict[str, str]:
    import sklearn

    import svetlana_core

    return {"python": platform.python_version(), "numpy": np.__version__,
            "scikit-learn": sklearn.__version__, "svetlana": svetlana_core.__version__}


@dataclass(frozen=True)
class BaselineModel:
    """A fitted random forest on object features, with what it needs to predict and describe
    itself.

    Attributes
    ----------
    classes : tuple of str
        Class names in probability-column order.
    feature_names : tuple of str
        The feature columns, in the order the forest uses them.
    forest : Forest
        The trees (numpy arrays; predicting never touches scikit-learn).
    params : dict
        Training parameters (``n_estimators``, ``class_weight``, ``seed``, ...).
    metrics : dict or None
        Evaluation metrics attached with :meth:`with_metrics` (saved in ``model.json``).
    feature_importances : dict
        Impurity-based importance of each feature (sums to 1), for display.
    data : dict
        Training-data summary: ``n`` and ``n_per_class``.
    estimator : RandomForestClassifier or None
        The scikit-learn forest right after training; None once loaded from a folder.
    """

    classes: tuple[str, ...]
    feature_names: tuple[str, ...]
    forest: Forest
    params: dict
    metrics: dict | None = None
    feature_importances: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    estimator: Any = field(default=None, repr=False, compare=False)

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Class probabilities of each row of ``features``.

        Parameters
        ----------
        features : DataFrame, n rows
            Must hold every column of ``feature_names`` (extra columns are ignored).

        Returns
        -------
        ndarray of float64, shape (n, n_classes), columns in ``classes`` order.
        """
        return self.forest.predict_proba(_feature_matrix(features, self.feature_names,
                                                         "features"))

    def predict(self, features: pd.DataFrame) -> list[str]:
        """Most probable class name of each row (the first class on a tie)."""
        proba = self.predict_proba(features)
        return [self.classes[i] for i in proba.argmax(axis=1)]

    def evaluate(self, features: pd.DataFrame, y_true: Sequence[str]) -> dict:
        """:func:`svetlana_core.metrics.classification_metrics` of the predictions of
        ``features`` against ``y_true``."""
        return classification_metrics(list(y_true), self.predict(features), self.classes)

    def with_metrics(self, metrics: dict) -> BaselineModel:
        """A copy carrying ``metrics`` (e.g. from :meth:`evaluate`), to be saved with it."""
        return replace(self, metrics=dict(metrics))

    def save(self, folder: str | Path) -> Path:
        """Write ``model.json`` and ``forest.npz`` into ``folder`` (created if needed).

        Returns the folder. Existing files of those names are replaced.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        forest_path = folder / FOREST_FILE
        np.savez(forest_path, **self.forest.to_arrays())
        meta = {
            "format_version": FORMAT_VERSION,
            "arch": "rf",
            "classes": list(self.classes),
            "feature_names": list(self.feature_names),
            "params": self.params,
            "metrics": self.metrics,
            "feature_importances": self.feature_importances,
            "data": self.data,
            "n_trees": self.forest.n_trees,
            "forest_file": FOREST_FILE,
            "forest_sha256": hashlib.sha256(forest_path.read_bytes()).hexdigest(),
            "versions": _versions(),
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        (folder / MODEL_FILE).write_text(json.dumps(meta, indent=2, allow_nan=True) + "\n")
        return folder


def train_baseline(
    features: pd.DataFrame,
    y: Sequence[str] | pd.Series,
    classes: Sequence[str],
    *,
    n_estimators: int = 200,
    class_weight: str | None = "balanced",  # or "balanced_subsample" or None
    seed: int = 0,
    max_depth: int | None = None,
    min_samples_leaf: int = 1,
    max_features: str | float | None = "sqrt",
    n_jobs: int | None = None,
) -> BaselineModel:
    """Fit a random forest on object features.

    Parameters
    ----------
    features : DataFrame, n rows
        Numeric feature columns (e.g. :func:`object_features` of several images concatenated);
        every column is used, NaN allowed.
    y : sequence of str or Series, length n
        Class name of each row. A Series must have the index of ``features`` (so rows cannot
        be silently misaligned); pass ``list(series)`` to align by position.
    classes : sequence of str
        All class names, in the order of the probability columns. A class absent from ``y``
        gets probability 0.
    n_estimators, class_weight, max_depth, min_samples_leaf, max_features, n_jobs
        As :class:`sklearn.ensemble.RandomForestClassifier` (``class_weight="balanced"``
        weighs classes by inverse frequency, like the CNN's default loss weights).
    seed : int
        ``random_state`` of the forest: same data and seed give the same trees.

    Returns
    -------
    BaselineModel

    Raises
    ------
    InputError
        For a length or index mismatch, missing or unknown class names, fewer than two
        classes in ``y``, repeated class names, or non-numeric / infinite features.
    """
    from sklearn.ensemble import RandomForestClassifier

    class_list = [str(c) for c in classes]
    if len(set(class_list)) != len(class_list):
        raise InputError(f"classes repeats names: {class_list}")
    if class_weight not in ("balanced", "balanced_subsample", None):
        raise InputError(f"class_weight must be 'balanced', 'balanced_subsample' or None, got "
                         f"{class_weight!r}")
    if not isinstance(features, pd.DataFrame):
        raise InputError(f"features must be a pandas DataFrame, got {type(features).__name__}")
    names = [str(c) for c in features.columns]
    if len(set(names)) != len(names):
        raise InputError("features has repeated column names")
    if isinstance(y, pd.Series) and not y.index.equals(features.index):
        raise InputError("y is a Series whose index differs from the index of features; "
                         "align them or pass list(y)")
    y_list = list(y)
    if len(y_list) != len(features):
        raise InputError(f"y has {len(y_list)} values but features has {len(features)} rows")
    missing = np.flatnonzero(pd.isna(np.asarray(y_list, dtype=object)))
    if missing.size:
        raise InputError(f"y has {missing.size} missing class name(s) (first at row {missing[0]})")
    y_names = [str(v) for v in y_list]
    unknown = sorted(set(y_names) - set(class_list))
    if unknown:
        raise InputError(f"y has class name(s) {unknown} that are not in classes {class_list}")
    if len(set(y_names)) < 2:
        raise InputError(f"y has {len(set(y_names))} distinct class(es); a classifier needs at "
                         f"least two")
    x = _feature_matrix(features, names, "features")
    codes = np.array([class_list.index(v) for v in y_names], dtype=np.int64)
    params = {"n_estimators": int(n_estimators), "class_weight": class_weight, "seed": int(seed),
              "max_depth": max_depth, "min_samples_leaf": int(min_samples_leaf),
              "max_features": max_features}
    estimator = RandomForestClassifier(
        n_estimators=n_estimators, class_weight=class_weight, random_state=seed,
        max_depth=max_depth, min_samples_leaf=min_samples_leaf, max_features=max_features,
        n_jobs=n_jobs,
    ).fit(x, codes)
    counts = np.bincount(codes, minlength=len(class_list))
    return BaselineModel(
        classes=tuple(class_list),
        feature_names=tuple(names),
        forest=Forest.from_sklearn(estimator, len(class_list)),
        params=params,
        feature_importances={n: float(v) for n, v in zip(names, estimator.feature_importances_,
                                                         strict=True)},
        data={"n": int(codes.size), "n_per_class": {c: int(k) for c, k in
                                                    zip(class_list, counts, strict=True)}},
        estimator=estimator,
    )


def _read_meta(folder: Path) -> dict:
    path = folder / MODEL_FILE
    if not path.is_file():
        raise InputError(f"{path} not found: not a model folder")
    try:
        meta = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(meta, dict):
        raise InputError(f"{path} must hold a JSON object, got {type(meta).__name__}")
    required = {"format_version": int, "arch": str, "classes": list, "feature_names": list,
                "params": dict, "forest_sha256": str}
    for key, kind in required.items():
        if key not in meta:
            raise InputError(f"{path} has no key {key!r}")
        if not isinstance(meta[key], kind) or (kind is int and isinstance(meta[key], bool)):
            raise InputError(f"{path} key {key!r} must be a {kind.__name__}, got "
                             f"{type(meta[key]).__name__}")
    if meta["format_version"] != FORMAT_VERSION:
        raise InputError(f"{path} key 'format_version' is {meta['format_version']}; this "
                         f"version of Svetlana reads {FORMAT_VERSION}")
    if meta["arch"] != "rf":
        raise InputError(f"{path} key 'arch' is {meta['arch']!r}, not 'rf': this is not a "
                         f"random-forest baseline (load CNNs with svetlana_core.training)")
    for key in ("classes", "feature_names"):
        values = meta[key]
        if not values or not all(isinstance(v, str) and v for v in values) \
                or len(set(values)) != len(values):
            raise InputError(f"{path} key {key!r} must be a non-empty list of distinct names")
    for key, kind in (("metrics", dict), ("feature_importances", dict), ("data", dict)):
        if meta.get(key) is not None and not isinstance(meta[key], kind):
            raise InputError(f"{path} key {key!r} must be a {kind.__name__} or null")
    return meta


def load_baseline(folder: str | Path) -> BaselineModel:
    """Read a model folder written by :meth:`BaselineModel.save`.

    Nothing is unpickled: ``model.json`` is plain JSON, ``forest.npz`` is read with
    ``allow_pickle=False``, must match the SHA-256 recorded in ``model.json``, and every array
    is checked (shapes, dtypes, indices) before use.

    Raises
    ------
    InputError
        Naming the file and the key for a missing folder or file, invalid JSON, a missing or
        mistyped key, another architecture, a checksum mismatch or a malformed array.
    """
    folder = Path(folder)
    meta = _read_meta(folder)
    forest_path = folder / FOREST_FILE
    if not forest_path.is_file():
        raise InputError(f"{forest_path} not found (named by {folder / MODEL_FILE})")
    digest = hashlib.sha256(forest_path.read_bytes()).hexdigest()
    if digest != meta["forest_sha256"]:
        raise InputError(f"{forest_path} does not match key 'forest_sha256' of "
                         f"{folder / MODEL_FILE}: the files were changed or mixed up")
    try:
        with np.load(forest_path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (ValueError, OSError) as error:
        raise InputError(f"{forest_path} cannot be read as arrays: {error}") from None
    forest = Forest.from_arrays(arrays, n_features=len(meta["feature_names"]),
                                n_classes=len(meta["classes"]), source=str(forest_path))
    return BaselineModel(
        classes=tuple(meta["classes"]),
        feature_names=tuple(meta["feature_names"]),
        forest=forest,
        params=meta["params"],
        metrics=meta.get("metrics"),
        feature_importances=meta.get("feature_importances") or {},
        data=meta.get("data") or {},
    )


# --------------------------------------------------------------------------- from files


@dataclass(frozen=True)
class BaselineRun:
    """The result of :func:`train_from_labels`.

    Attributes
    ----------
    model : BaselineModel
        Fitted on the training objects, carrying the validation metrics.
    metrics : dict or None
        :func:`svetlana_core.metrics.classification_metrics` on the validation objects (None
        when ``val_fraction`` is 0).
    n_train, n_val : int
    """

    model: BaselineModel
    metrics: dict | None
    n_train: int
    n_val: int


def train_from_labels(
    files: dict[str, tuple[Any, Any]],
    labels: pd.DataFrame,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    group_by: Any = None,
    axes: str | None = None,
    stop: Any = None,
    **params: Any,
) -> BaselineRun | None:
    """Compute features of the labelled objects, split grouped by image, fit and score.

    The split is :func:`svetlana_core.training.split_train_val` (stratified, grouped), the
    same as the CNN's, so the two are compared on the same kind of split.

    Parameters
    ----------
    files : dict
        image name → (image path or None, mask path).
    labels : DataFrame
        ``image, label, class`` (see :func:`svetlana_core.io.read_labels_csv`).
    val_fraction, seed : float, int
        Split settings.
    group_by : callable, optional
        image name → split group (default: the image).
    axes : str, optional
        Axes of the image files.
    stop : object with ``is_set()``, optional
        Checked between images; returns None when set.
    **params
        Keyword arguments of :func:`train_baseline`.

    Returns
    -------
    BaselineRun, or None when stopped.
    """
    import inspect

    from svetlana_core import io
    from svetlana_core.training import split_train_val

    accepted = [name for name, parameter in inspect.signature(train_baseline).parameters.items()
                if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name != "seed"]
    foreign = sorted(set(params) - set(accepted))
    if foreign:
        raise InputError(f"random-forest config: unknown key(s) {', '.join(foreign)}; valid "
                         f"keys are val_fraction, seed, {', '.join(accepted)}")
    unknown = sorted(set(labels["image"]) - set(files))
    if unknown:
        raise InputError(f"labels name {len(unknown)} image(s) that are not in the folders: "
                         f"{', '.join(unknown[:5])}")
    parts = []
    for name, rows in labels.groupby("image", sort=True):
        # One image at a time bounds memory; features are computed per image.
        image_path, mask_path = files[name]
        image, mask = io.load_pair(image_path, mask_path, axes=axes)
        features = object_features(image, mask, rows["label"].astype(int).tolist())
        parts.append(features.assign(_image=name, _class=rows["class"].astype(str).to_numpy()))
        if stop is not None and stop.is_set():
            return None
    data = pd.concat(parts, ignore_index=True)
    classes = sorted(data["_class"].unique())
    y = np.array([classes.index(c) for c in data["_class"]])
    group = group_by or (lambda name: name)
    groups = np.array([group(n) for n in data["_image"]])
    train_idx, val_idx = split_train_val(y, groups, val_fraction, seed)
    features = data.drop(columns=["_image", "_class"])
    model = train_baseline(features.iloc[train_idx], list(data["_class"].iloc[train_idx]),
                           classes, seed=seed, **params)
    metrics = (model.evaluate(features.iloc[val_idx], list(data["_class"].iloc[val_idx]))
               if len(val_idx) else None)
    return BaselineRun(model.with_metrics(metrics or {}), metrics, int(len(train_idx)),
                       int(len(val_idx)))
