"""The train/validation split: stratified and grouped, no image in both sets."""

from __future__ import annotations

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
