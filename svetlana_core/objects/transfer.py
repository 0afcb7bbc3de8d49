"""Match the objects of an old and a new segmentation of one image by overlap, so labels can
follow the objects to the new mask (re-segmented with another Cellpose model, say).

Rules, with ``iou = overlap / (area_old + area_new - overlap)``:

* A new object is a **piece** of an old one when more than half of the new object lies in the
  old one and the overlap is at least ``min_part`` (20 %) of the old object; an old object
  with two pieces or more was **split**. Symmetrically, an old object is a piece of a new one
  when more than half of it lies in the new one and covers at least ``min_part`` of it; a new
  object with two such pieces **merged** them. The ``min_part`` floor keeps a speck cut off an
  object (or swallowed by one) from making it ambiguous.
* Every object that takes part in a split or a merge, whole or piece, is left unpaired, whatever
  its IoU: one label no longer names one object.
* **pairs** are one-to-one matches of the other objects with ``iou >= min_iou``. With
  ``min_iou >= 0.5`` an object has at most one such partner (two would each hold more than half
  of it); below 0.5 the pairs that maximise the total IoU are kept
  (``scipy.optimize.linear_sum_assignment``, on the contested objects only).
* **lost**: old objects without a pair (the split and merged ones included); **new_only**: new
  objects without a pair.

>>> old = np.array([[1, 1, 0, 2, 2]])
>>> new = np.array([[5, 5, 0, 7, 8]])
>>> m = match_objects(old, new)
>>> m.pairs[["old", "new"]].values.tolist(), m.split.tolist(), m.new_only.tolist()
([[1, 5]], [2], [7, 8])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from svetlana_core.errors import InputError

#: The smallest share of an object a piece of a split or a merge must cover.
MIN_PART = 0.2


@dataclass(frozen=True)
class Matching:
    """How the objects of two masks of one image correspond (see the module docstring).

    Attributes
    ----------
    pairs : DataFrame
        ``old``, ``new`` (int64) and ``iou`` (float64), one row per matched pair, sorted by
        ``old``; each object appears at most once.
    lost : ndarray of int64
        Old objects without a pair, sorted.
    new_only : ndarray of int64
        New objects without a pair, sorted.
    split : ndarray of int64
        Old objects cut into two new objects or more, sorted.
    merged : ndarray of int64
        New objects that join two old objects or more, sorted.
    pieces : DataFrame
        ``old``, ``new`` (int64), ``kind`` (``"split"`` or ``"merged"``): the pieces of every
        split (``new`` is a piece of ``old``) and merge (``old`` is a piece of ``new``), sorted
        by ``old, new``.
    """

    pairs: pd.DataFrame
    lost: np.ndarray
    new_only: np.ndarray
    split: np.ndarray
    merged: np.ndarray
    pieces: pd.DataFrame


def check_fraction(value: float, name: str = "min_iou") -> float:
    """`value` as a float in (0, 1].

    Raises
    ------
    InputError
        Naming `name`, for anything else (NaN, text, 0, 1.5).

    Examples
    --------
    >>> check_fraction("0.25")
    0.25
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not 0 < number <= 1:  # False for NaN too
        raise InputError(f"{name} must be in (0, 1], got {value!r}")
    return number


def _areas(mask: np.ndarray) -> pd.Series:
    """Pixels of each object, indexed by label (int64, sorted)."""
    areas = pd.Series(mask[mask > 0]).value_counts().sort_index()
    areas.index = areas.index.astype(np.int64)
    return areas


def overlaps(old_mask: np.ndarray, new_mask: np.ndarray) -> pd.DataFrame:
    """Every pair of an old and a new object that share pixels, from one pass over the pixels.

    Parameters
    ----------
    old_mask, new_mask : ndarray of int, same shape
        Label masks, 0 = background.

    Returns
    -------
    DataFrame
        ``old``, ``new``, ``overlap``, ``area_old``, ``area_new`` (int64) and ``iou``, sorted by
        ``old, new``.

    Examples
    --------
    >>> overlaps(np.array([[1, 1, 2]]), np.array([[3, 0, 3]])).values.tolist()
    [[1.0, 3.0, 1.0, 2.0, 2.0, 0.3333333333333333], [2.0, 3.0, 1.0, 1.0, 2.0, 0.5]]
    """
    return _overlap_table(old_mask, new_mask, _areas(old_mask), _areas(new_mask))


def _overlap_table(old_mask: np.ndarray, new_mask: np.ndarray, area_old: pd.Series,
                   area_new: pd.Series) -> pd.DataFrame:
    both = (old_mask > 0) & (new_mask > 0)
    old, new = old_mask[both].astype(np.int64), new_mask[both].astype(np.int64)
    if old.size and int(old.max()) * (int(new.max()) + 1) + int(new.max()) >= 2**63:
        # Labels too large to share one int64 code: number the present ones 0..n-1 first.
        old_ids, old = np.unique(old, return_inverse=True)
        new_ids, new = np.unique(new, return_inverse=True)
    else:
        old_ids = new_ids = None
    span = int(new.max()) + 1 if new.size else 1
    codes, counts = np.unique(old * span + new, return_counts=True)
    table = pd.DataFrame({"old": codes // span, "new": codes % span, "overlap": counts})
    if old_ids is not None:
        table["old"], table["new"] = old_ids[table["old"]], new_ids[table["new"]]
    table = table.astype(np.int64)
    table["area_old"] = table["old"].map(area_old).to_numpy(np.int64)
    table["area_new"] = table["new"].map(area_new).to_numpy(np.int64)
    table["iou"] = table["overlap"] / (table["area_old"] + table["area_new"] - table["overlap"])
    return table


def _pieces(table: pd.DataFrame, min_part: float) -> pd.DataFrame:
    """``old, new, kind`` of the pieces of every split and merge (see the module docstring)."""
    overlap, area_old, area_new = table["overlap"], table["area_old"], table["area_new"]
    of_old = table[(2 * overlap > area_new) & (overlap >= min_part * area_old)]
    of_new = table[(2 * overlap > area_old) & (overlap >= min_part * area_new)]
    split = of_old[of_old["old"].duplicated(keep=False)].assign(kind="split")
    merged = of_new[of_new["new"].duplicated(keep=False)].assign(kind="merged")
    pieces = pd.concat([split, merged])[["old", "new", "kind"]]
    return pieces.sort_values(["old", "new"]).reset_index(drop=True)


def match_objects(old_mask: np.ndarray, new_mask: np.ndarray, min_iou: float = 0.5, *,
                  min_part: float = MIN_PART) -> Matching:
    """Pair the objects of two masks of the same image by overlap.

    Parameters
    ----------
    old_mask, new_mask : ndarray of int, shape (rows, columns) or (planes, rows, columns)
        Label masks of the same image, 0 = background; labels need not correspond.
    min_iou : float in (0, 1], default 0.5
        Smallest intersection over union of a pair.
    min_part : float in (0, 1], default :data:`MIN_PART`
        Smallest share of an object a piece of a split or merge covers.

    Returns
    -------
    Matching

    Raises
    ------
    InputError
        Masks of different shapes (naming both), or `min_iou` or `min_part` outside (0, 1].
    """
    old, new = np.asarray(old_mask), np.asarray(new_mask)
    if old.shape != new.shape:
        raise InputError(f"the new mask has shape {new.shape} but the old one has {old.shape}: "
                         "they must be masks of the same image")
    min_iou, min_part = check_fraction(min_iou), check_fraction(min_part, "min_part")
    area_old, area_new = _areas(old), _areas(new)
    table = _overlap_table(old, new, area_old, area_new)
    pieces = _pieces(table, min_part)
    candidates = table[(table["iou"] >= min_iou) & ~table["old"].isin(pieces["old"])
                       & ~table["new"].isin(pieces["new"])]
    pairs = _one_to_one(candidates)[["old", "new", "iou"]].sort_values("old")
    old_labels, new_labels = area_old.index.to_numpy(), area_new.index.to_numpy()
    split = pieces.loc[pieces["kind"] == "split", "old"].unique()
    merged = pieces.loc[pieces["kind"] == "merged", "new"].unique()
    return Matching(
        pairs=pairs.reset_index(drop=True),
        lost=np.setdiff1d(old_labels, pairs["old"].to_numpy()).astype(np.int64),
        new_only=np.setdiff1d(new_labels, pairs["new"].to_numpy()).astype(np.int64),
        split=np.sort(split).astype(np.int64),
        merged=np.sort(merged).astype(np.int64),
        pieces=pieces,
    )


def _one_to_one(candidates: pd.DataFrame) -> pd.DataFrame:
    """The candidate pairs that use each object once, with the largest total IoU.

    A pair whose two objects have no other candidate is kept as it is; only the contested
    objects go to the assignment, whose cost matrix would otherwise be objects x objects.
    """
    contested = (candidates["old"].duplicated(keep=False)
                 | candidates["new"].duplicated(keep=False)).to_numpy()
    if not contested.any():
        return candidates
    from scipy.optimize import linear_sum_assignment

    open_ = candidates[contested]
    olds, rows = np.unique(open_["old"].to_numpy(), return_inverse=True)
    news, columns = np.unique(open_["new"].to_numpy(), return_inverse=True)
    cost = np.zeros((len(olds), len(news)))
    cost[rows, columns] = -open_["iou"].to_numpy()
    chosen = np.zeros(cost.shape, bool)
    chosen[linear_sum_assignment(cost)] = True
    keep = contested.copy()
    keep[contested] = chosen[rows, columns]
    return candidates[~contested | keep]
