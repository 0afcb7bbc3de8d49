"""A fitted random forest as plain arrays: saved without pickle, predicted with numpy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from svetlana_core.errors import InputError

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
        """Leaf reached by every sample in every tree: ``(n_samples, n_trees)`` int64 node
        indices, for features `x` of shape ``(n_samples, n_features)``."""
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
        """Build a forest from saved arrays, checking every array (a bad file -> InputError).

        Parameters
        ----------
        arrays : dict of str to ndarray
            The arrays of ``forest.npz`` (:meth:`to_arrays`).
        n_features, n_classes : int
            What ``model.json`` says the forest reads and predicts.
        source : str
            The file, named in the messages.

        Raises
        ------
        InputError
            Naming `source` and the array: a missing array, a wrong dtype or shape, roots that
            do not start trees, a child that is not a later node of its tree (which would loop),
            a feature index out of range, a NaN threshold, or probabilities that are negative
            or not finite.
        """
        missing = [name for name in _FOREST_ARRAYS if name not in arrays]
        if missing:
            raise InputError(f"{source} has no array {missing[0]!r}")
        checked = _typed_arrays(arrays, n_classes, source)
        _check_trees(checked, source)
        internal = checked["children_left"] >= 0
        if np.any(internal & ((checked["feature"] < 0) | (checked["feature"] >= n_features))):
            raise _bad(source, "feature", f"has indices outside 0..{n_features - 1}")
        # +inf is a real threshold: scikit-learn's split of "missing or not" sends every
        # present value left (on CoNSeP, 27 nodes on ring features NaN for crowded nuclei).
        if np.any(internal & np.isnan(checked["threshold"])):
            raise _bad(source, "threshold", "has NaN values")
        value = checked["value"]
        if not np.all(np.isfinite(value)) or np.any(value < 0):
            raise _bad(source, "value", "has negative or non-finite probabilities")
        return cls(**checked)


# What each array of forest.npz holds: integer indices, float values, booleans.
_KINDS = {"children_left": "i", "children_right": "i", "feature": "i", "roots": "i",
          "threshold": "f", "value": "f", "missing_go_to_left": "b"}
_TYPES = {"i": np.int64, "f": np.float64, "b": bool}


def _bad(source: str, name: str, why: str) -> InputError:
    return InputError(f"{source} array {name!r} {why}")


def _typed_arrays(arrays: dict[str, np.ndarray], n_classes: int,
                  source: str) -> dict[str, np.ndarray]:
    """The forest's arrays with their dtypes and shapes checked, cast to int64, float64, bool."""
    for name, kind in _KINDS.items():
        dtype = np.asarray(arrays[name]).dtype
        if dtype.kind != kind and not (kind == "b" and dtype.kind in "iu"):
            raise _bad(source, name, f"has dtype {dtype}")
    left = np.asarray(arrays["children_left"])
    n_nodes = left.shape[0] if left.ndim == 1 else -1
    for name in ("children_left", "children_right", "feature", "threshold",
                 "missing_go_to_left"):
        shape = np.asarray(arrays[name]).shape
        if shape != (n_nodes,):
            raise _bad(source, name, f"has shape {shape}, expected ({n_nodes},)")
    shape = np.asarray(arrays["value"]).shape
    if shape != (n_nodes, n_classes):
        raise _bad(source, "value", f"has shape {shape}, expected "
                                    f"({n_nodes}, {n_classes}) for {n_classes} classes")
    return {name: np.asarray(arrays[name]).astype(_TYPES[kind]) for name, kind in _KINDS.items()}


def _check_trees(checked: dict[str, np.ndarray], source: str) -> None:
    """Roots start trees and every child is a later node of its parent's tree.

    So every path from a root ends at a leaf, and :meth:`Forest._tree_leaves` ends.
    """
    roots, left, right = checked["roots"], checked["children_left"], checked["children_right"]
    n_nodes = left.shape[0]
    if roots.ndim != 1 or roots.size == 0 or roots[0] != 0 or np.any(np.diff(roots) <= 0) \
            or roots[-1] >= n_nodes:
        raise _bad(source, "roots", "is not an increasing list of tree starts")
    node = np.arange(n_nodes)
    internal = left >= 0
    if np.any((right >= 0) != internal) or np.any(left[~internal] != -1):
        raise _bad(source, "children_right",
                   "does not match children_left (leaves have -1 in both)")
    tree_end = np.append(roots[1:], n_nodes)[np.searchsorted(roots, node, side="right") - 1]
    for name, child in (("children_left", left), ("children_right", right)):
        if np.any(internal & ((child <= node) | (child >= tree_end))):
            raise _bad(source, name, "points to a node that is not a later node of the same tree")
