"""The train/validation split: stratified and grouped, no image in both sets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from svetlana_core.errors import InputError
from svetlana_core.values import is_number


def split_train_val(
    y: np.ndarray, groups: np.ndarray | None, val_fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split objects into training and validation sets, stratified by class, grouped by image.

    scikit-learn's ``StratifiedGroupKFold`` with ``round(1 / val_fraction)`` folds (at most one
    per group); among its folds that keep every class in the training set and hold the most
    classes, ``seed`` picks the validation set (so seeds 0, 1, ... walk through the folds of a
    cross-validation, in a seeded order). With a
    single group (or when no grouped fold keeps every class in training) the split is
    stratified by class only (:func:`_split_with_note` says so).

    Parameters
    ----------
    y : ndarray of int, shape (N,)
        Class of each object.
    groups : ndarray, shape (N,), or None
        Group of each object (image name, source slide...). None: every object its own group.
    val_fraction : float
        In [0, 0.9). 0 gives an empty validation set.
    seed : int
        Shuffles the folds.

    Returns
    -------
    train_idx, val_idx : ndarray of int64
        Sorted indices into ``y``.

    Examples
    --------
    >>> y = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    >>> groups = np.array(["a", "a", "a", "a", "b", "b", "b", "b"])
    >>> train_idx, val_idx = split_train_val(y, groups, 0.5)
    >>> sorted(set(groups[train_idx]) & set(groups[val_idx]))
    []
    """
    return _split_with_note(y, groups, val_fraction, seed)[:2]


def _split_with_note(
    y: np.ndarray, groups: np.ndarray | None, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, str]:
    from sklearn.model_selection import StratifiedGroupKFold

    y = np.asarray(y)
    n = len(y)
    if not is_number(val_fraction) or not 0 <= val_fraction < 0.9:
        raise InputError(f"val_fraction={val_fraction!r} is not valid; give a number in [0, 0.9)")
    everything = np.arange(n, dtype=np.int64)
    if val_fraction == 0 or n < 2:
        return everything, everything[:0], "no validation set (val_fraction = 0)"
    groups = everything.astype(str) if groups is None else np.asarray(groups).astype(str)
    if len(groups) != n:
        raise InputError(f"groups has {len(groups)} values but there are {n} objects")
    classes = np.unique(y)
    n_groups = len(np.unique(groups))
    n_splits = min(max(2, round(1 / val_fraction)), n_groups)
    if n_groups >= 2:
        import warnings

        folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        with warnings.catch_warnings():  # "least populated class has only k members"
            warnings.simplefilter("ignore", UserWarning)
            candidates = [val for _, val in folds.split(np.zeros(n), y, groups)]
        # StratifiedGroupKFold places groups greedily by their class mix, so its folds barely
        # depend on the seed: the seed picks the fold instead, among those that keep every
        # class in training and hold as many classes as any fold does.
        valid = []
        for val in candidates:
            train_mask = np.ones(n, dtype=bool)
            train_mask[val] = False
            if len(val) and len(np.unique(y[train_mask])) == len(classes):
                valid.append(val)
        best = None
        if valid:
            most = max(len(np.unique(y[val])) for val in valid)
            pool = [val for val in valid if len(np.unique(y[val])) == most]
            best = pool[np.random.default_rng(seed).integers(len(pool))]
        if best is not None:
            train_mask = np.ones(n, dtype=bool)
            train_mask[best] = False
            note = (
                f"grouped split: {n_groups - len(np.unique(groups[best]))} group(s) for training, "
                f"{len(np.unique(groups[best]))} for validation"
            )
            return everything[train_mask], np.sort(best).astype(np.int64), note
        why = "no grouped split keeps every class in training"
    else:
        why = "there is only one group (image)"
    # Stratified by class only: per class, a share of its objects (never its last one).
    rng = np.random.default_rng(seed)
    val_parts = []
    for c in classes:
        members = rng.permutation(np.flatnonzero(y == c))
        k = min(int(round(val_fraction * len(members))), len(members) - 1)
        val_parts.append(members[:k])
    val = np.sort(np.concatenate(val_parts)).astype(np.int64)
    train_mask = np.ones(n, dtype=bool)
    train_mask[val] = False
    note = (
        f"stratified split NOT grouped ({why}): objects of one image are in both sets, so the "
        "validation figures are optimistic"
    )
    return everything[train_mask], val, note


#: Fewer validation objects than this in a class and its recall moves by ≥ 3 % per object:
#: the Train page warns (issue 12: 8 validation objects from one image gave macro-F1 1.000).
FEW_VALIDATION_OBJECTS = 30


@dataclass(frozen=True)
class SplitPreview:
    """What a training's validation split will hold, computed before the run (no torch).

    Attributes
    ----------
    grouped : bool
        False when the split falls back to stratified only (one group, or no grouped fold
        keeps every class in training): the scores are then optimistic.
    note : str
        The split's own sentence (as the run's summary will say it).
    n_groups : int
        Groups (images, or name-pattern keys) among the labelled objects.
    val_groups : list of str
        The groups held out for validation.
    train_per_class, val_per_class : dict of str to int
        Objects of each class in each set, in the order of the classes given.
    """

    grouped: bool
    note: str
    n_groups: int
    val_groups: list[str]
    train_per_class: dict[str, int]
    val_per_class: dict[str, int]

    @property
    def n_val(self) -> int:
        return sum(self.val_per_class.values())

    def thin_classes(self, at_least: int = FEW_VALIDATION_OBJECTS) -> list[str]:
        """Classes with fewer than ``at_least`` validation objects."""
        return [c for c, n in self.val_per_class.items() if n < at_least]


def preview_split(
    classes: Sequence[str], images: Sequence[str], val_fraction: float, seed: int = 0,
    group_by: Callable[[str], Any] | None = None,
) -> SplitPreview:
    """The split :func:`split_train_val` will make of labelled objects, as numbers.

    Parameters
    ----------
    classes, images : sequence of str, one per labelled object
        Its class and its image name.
    val_fraction, seed : as :func:`split_train_val`.
    group_by : callable, optional
        ``image name -> group`` (:func:`svetlana_core.io.group_by_pattern`); default the image.

    Examples
    --------
    >>> p = preview_split(["a", "b"] * 4, ["x", "x", "y", "y", "z", "z", "w", "w"], 0.25)
    >>> p.grouped, p.n_groups, p.val_per_class, len(p.val_groups)
    (True, 4, {'a': 1, 'b': 1}, 1)
    """
    from svetlana_core.training.dataset import _group_keys

    names = np.asarray(list(classes), dtype=str)
    order = list(dict.fromkeys(names.tolist()))
    y = np.array([order.index(c) for c in names], dtype=np.int64)
    groups = _group_keys(np.asarray(list(images), dtype=object), group_by)
    train, val, note = _split_with_note(y, groups, val_fraction, seed)

    def per_class(index: np.ndarray) -> dict[str, int]:
        counts = np.bincount(y[index], minlength=len(order))
        return {name: int(counts[k]) for k, name in enumerate(order)}

    return SplitPreview(
        grouped=note.startswith("grouped") or val_fraction == 0, note=note,
        n_groups=len(np.unique(groups)), val_groups=sorted(np.unique(groups[val]).tolist()),
        train_per_class=per_class(train), val_per_class=per_class(val),
    )
