"""Match the objects of an old and a new segmentation of one image by overlap, so labels can
follow the objects to the new mask (re-segmented with another Cellpose model, say).

Rules (``iou = overlap / (area_old + area_new - overlap)``):

* **pairs**: one-to-one matches with ``iou >= min_iou``. With ``min_iou >= 0.5`` each object
  has at most one such partner (two would each share more than half of it); below 0.5 the
  pairs that maximise the total IoU are kept (``scipy.optimize.linear_sum_assignment``).
* **split**: an old object of which at least two new objects each lie mostly inside it (more
  than half of the new object's pixels).
* **merged**: a new object in which at least two old objects each lie mostly (more than half of
  the old object's pixels).
* **lost**: old objects without a pair; **new_only**: new objects without a pair.

An object that was split or merged is never paired, whatever its IoU: its label would not
mean the same object any more.

>>> old = np.array([[1, 1, 0, 2, 2]])
>>> new = np.array([[5, 5, 0, 7, 8]])
>>> m = match_objects(old, new)
>>> m.pairs.values.tolist(), m.split.tolist(), m.new_only.tolist()
([[1.0, 5.0, 1.0]], [2], [7, 8])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from svetlana_core.errors import InputError


@dataclass(frozen=True)
class Matching:
    """How the objects of two masks of one image correspond (see the module docstring).

    Attributes
    ----------
    pairs : DataFrame
        ``old``, ``new`` (int64) and ``iou``, sorted by ``old``.
    lost, new_only : ndarray of int64
        Old objects without a pair; new objects without a pair.
    split : ndarray of int64
        Old objects cut into several new ones.
    merged : ndarray of int64
        New objects that join several old ones.
    """

    pairs: pd.DataFrame
    lost: np.ndarray
    new_only: np.ndarray
    split: np.ndarray
    merged: np.ndarray


def _overlaps(old: np.ndarray, new: np.ndarray) -> pd.DataFrame:
    """``old, new, overlap, area_old, area_new`` of every pair of objects that touch, in one
    pass over the pixels."""
    both = (old > 0) & (new > 0)
    pairs = pd.DataFrame({"old": old[both].astype(np.int64), "new": new[both].astype(np.int64)})
    counts = pairs.value_counts().rename("overlap").reset_index()
    area_old = pd.Series(old[old > 0]).value_counts()
    area_new = pd.Series(new[new > 0]).value_counts()
    return counts.assign(area_old=counts["old"].map(area_old).to_numpy(np.int64),
                         area_new=counts["new"].map(area_new).to_numpy(np.int64))


def match_objects(old_mask: np.ndarray, new_mask: np.ndarray, min_iou: float = 0.5
                  ) -> Matching:
    """Pair the objects of two masks of the same image by overlap.

    Parameters
    ----------
    old_mask, new_mask : ndarray of int, shape (rows, columns) or (planes, rows, columns)
        Label masks of the same image, 0 = background.
    min_iou : float in (0, 1]
        Smallest intersection over union of a pair.

    Returns
    -------
    Matching

    Raises
    ------
    InputError
        Masks of different shapes, or `min_iou` outside (0, 1].
    """
    old, new = np.asarray(old_mask), np.asarray(new_mask)
    if old.shape != new.shape:
        raise InputError(f"the new mask has shape {new.shape} but the old one has {old.shape}: "
                         "they must be masks of the same image")
    if not 0 < float(min_iou) <= 1:
        raise InputError(f"min_iou must be in (0, 1], got {min_iou!r}")
    table = _overlaps(old, new)
    table["iou"] = table["overlap"] / (table["area_old"] + table["area_new"] - table["overlap"])
    inside_old = table[2 * table["overlap"] > table["area_new"]]  # new object mostly in old
    inside_new = table[2 * table["overlap"] > table["area_old"]]  # old object mostly in new
    split = np.sort(inside_old["old"].value_counts().loc[lambda n: n > 1].index.to_numpy())
    merged = np.sort(inside_new["new"].value_counts().loc[lambda n: n > 1].index.to_numpy())
    candidates = table[(table["iou"] >= min_iou) & ~table["old"].isin(split)
                       & ~table["new"].isin(merged)]
    pairs = _one_to_one(candidates)[["old", "new", "iou"]].sort_values("old")
    old_labels = np.unique(old[old > 0]).astype(np.int64)
    new_labels = np.unique(new[new > 0]).astype(np.int64)
    return Matching(
        pairs=pairs.reset_index(drop=True),
        lost=np.setdiff1d(old_labels, pairs["old"].to_numpy()),
        new_only=np.setdiff1d(new_labels, pairs["new"].to_numpy()),
        split=split.astype(np.int64), merged=merged.astype(np.int64),
    )


def _one_to_one(candidates: pd.DataFrame) -> pd.DataFrame:
    """The candidate pairs that use each object once, with the largest total IoU."""
    if candidates.empty or (not candidates["old"].duplicated().any()
                            and not candidates["new"].duplicated().any()):
        return candidates
    from scipy.optimize import linear_sum_assignment

    olds, rows = np.unique(candidates["old"], return_inverse=True)
    news, columns = np.unique(candidates["new"], return_inverse=True)
    cost = np.zeros((len(olds), len(news)))
    cost[rows, columns] = -candidates["iou"].to_numpy()
    chosen_rows, chosen_columns = linear_sum_assignment(cost)
    keep = cost[chosen_rows, chosen_columns] < 0
    chosen = set(zip(olds[chosen_rows[keep]], news[chosen_columns[keep]]))
    mask = [(o, n) in chosen for o, n in zip(candidates["old"], candidates["new"])]
    return candidates[mask]
