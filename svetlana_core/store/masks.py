"""Replacing an image's mask and carrying its labels over (a mixin of ``Project``).

The old mask stays listed in the ``masks`` table (with what the transfer did), its labels and
predictions stay in their tables under the old segmentation number: nothing is deleted, and
only the new mask's rows are read from then on.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from typing import Any

import pandas as pd

from svetlana_core import io
from svetlana_core.errors import InputError
from svetlana_core.objects.transfer import Matching, check_fraction, match_objects
from svetlana_core.store.schema import _CURRENT_SQL
from svetlana_core.store.values import _author, _frame, _to_json, utc_now


@dataclass(frozen=True)
class TransferReport:
    """What :meth:`_Masks.replace_mask` did with the labels of the old mask.

    Attributes
    ----------
    transferred : DataFrame
        ``old_label, new_label`` (int64), ``class``, ``iou``: the labels carried over, sorted by
        ``old_label``.
    lost : DataFrame
        ``old_label, class``: labelled objects with no partner in the new mask.
    ambiguous : DataFrame
        ``old_label, class, why, new_labels``: labelled objects that were split
        (``why`` ``"split into 21, 22"``) or merged with others into one new object
        (``"merged into 34"``); ``new_labels`` lists those new objects. Not carried over.
    n_old, n_new : int
        Objects in the old and the new mask.
    n_matched : int
        Object pairs found, labelled or not.
    min_iou : float
        The threshold the pairs were found with.
    """

    transferred: pd.DataFrame
    lost: pd.DataFrame
    ambiguous: pd.DataFrame
    n_old: int
    n_new: int
    n_matched: int
    min_iou: float

    def summary(self) -> str:
        """One line, e.g. ``"12 label(s) transferred, 1 lost (no match), 2 ambiguous (split
        or merged); 40 -> 43 objects, 38 matched"``."""
        return (f"{len(self.transferred)} label(s) transferred, {len(self.lost)} lost "
                f"(no match), {len(self.ambiguous)} ambiguous (split or merged); "
                f"{self.n_old} -> {self.n_new} objects, {self.n_matched} matched")

    def counts(self) -> dict[str, int]:
        """Labels ``transferred``, ``lost``, ``ambiguous`` (which add up to ``labelled``), and
        objects ``old_objects``, ``new_objects``, ``matched``."""
        counts = {"transferred": len(self.transferred), "lost": len(self.lost),
                  "ambiguous": len(self.ambiguous)}
        return {**counts, "labelled": sum(counts.values()), "old_objects": self.n_old,
                "new_objects": self.n_new, "matched": self.n_matched}

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON values: ``min_iou``, the :meth:`counts`, and the rows of
        ``transferred``, ``lost`` and ``ambiguous`` (as lists under ``*_labels``)."""
        return {"min_iou": self.min_iou, **self.counts(),
                "transferred_labels": self.transferred.values.tolist(),
                "lost_labels": self.lost.values.tolist(),
                "ambiguous_labels": self.ambiguous.values.tolist()}


def transfer_report(matching: Matching, labels: pd.DataFrame, min_iou: float) -> TransferReport:
    """What becomes of ``labels`` (``label, class`` of the old mask) under ``matching``.

    Parameters
    ----------
    matching : Matching
        From :func:`svetlana_core.objects.transfer.match_objects`.
    labels : DataFrame
        ``label, class``: the labelled objects of the old mask (one row each).
    min_iou : float
        Recorded in the report.
    """
    labelled = (labels[["label", "class"]].rename(columns={"label": "old_label"})
                .astype({"old_label": "int64"}))
    pairs = matching.pairs.rename(columns={"old": "old_label", "new": "new_label"})
    transferred = labelled.merge(pairs, on="old_label")[["old_label", "new_label", "class",
                                                         "iou"]]
    why = _ambiguity(matching.pieces)
    unpaired = labelled[~labelled["old_label"].isin(transferred["old_label"])]
    ambiguous = unpaired.merge(why[["why", "new_labels"]], left_on="old_label",
                               right_index=True)
    lost = unpaired[~unpaired["old_label"].isin(why.index)]
    return TransferReport(
        transferred.sort_values("old_label").reset_index(drop=True),
        lost.sort_values("old_label").reset_index(drop=True),
        ambiguous.sort_values("old_label").reset_index(drop=True),
        n_old=len(matching.lost) + len(matching.pairs),
        n_new=len(matching.new_only) + len(matching.pairs),
        n_matched=len(matching.pairs), min_iou=float(min_iou))


def _ambiguity(pieces: pd.DataFrame) -> pd.DataFrame:
    """``why, new_labels`` of each old object of a split or merge, indexed by its label."""
    if pieces.empty:
        return pd.DataFrame({"why": pd.Series(dtype=object),
                             "new_labels": pd.Series(dtype=object)},
                            index=pd.Index([], dtype="int64"))
    # An old object is the whole of a split, or one piece of a merge (pieces are sorted).
    grouped = pieces.groupby("old", sort=True)
    new_labels = grouped["new"].agg(lambda n: n.tolist())
    role = grouped["kind"].first().map({"split": "split into ", "merged": "merged into "})
    text = new_labels.map(lambda n: ", ".join(map(str, n)))
    return pd.DataFrame({"why": (role + text).astype(object), "new_labels": new_labels})


class _Masks:
    """Replacing masks (a mixin of ``Project``)."""

    __slots__ = ()

    def replace_mask(self, image: str | int, new_mask: str | os.PathLike[str], *,
                     min_iou: float = 0.5, author: str = "") -> TransferReport:
        """Give an image a new mask and carry its labels to the objects that match.

        Old and new objects are paired one to one by overlap
        (:func:`svetlana_core.objects.transfer.match_objects`, which also defines split and
        merged objects); each labelled old object with a partner gives its class to the
        partner (source ``transfer``, one action: one :meth:`undo_last` leaves the new objects
        unlabelled again). In one transaction the old mask is listed in ``masks`` with the
        report, the image points to the new file and its segmentation number grows, so the old
        labels and predictions stay in the project, unread.

        Parameters
        ----------
        image : str or int
            Image name or id.
        new_mask : str or path-like
            The new mask file (any format :func:`svetlana_core.io.read_mask` reads), of the
            same shape as the image's mask; stored as an absolute path.
        min_iou : float in (0, 1], default 0.5
            Smallest intersection over union of a matched pair.
        author : str
            Recorded on the transferred labels.

        Returns
        -------
        TransferReport

        Raises
        ------
        InputError
            An unknown image, `min_iou` outside (0, 1], a missing or unreadable mask, the
            image's current mask file again, a new mask of another shape, or an image whose
            mask another user replaced meanwhile; the project is unchanged then.
        """
        author, min_iou = _author(author), check_fraction(min_iou)
        with self._read() as conn:
            image_id = self._image_id(conn, image)
            name, old_path, segmentation = conn.execute(
                "SELECT name, mask_path, segmentation FROM images WHERE id = ?",
                (image_id,)).fetchone()
        new_path = os.path.abspath(os.fspath(new_mask))
        if os.path.exists(old_path) and os.path.exists(new_path) \
                and os.path.samefile(old_path, new_path):
            raise InputError(f"mask {new_mask} is already the mask of image {name}")
        old, new = io.read_mask(old_path), io.read_mask(new_path)
        if old.shape != new.shape:
            raise InputError(f"mask {new_mask} has shape {new.shape} but image {name}'s mask "
                             f"{old_path} has {old.shape}: it is not a mask of that image")
        matching = match_objects(old, new, min_iou)
        with self._write() as conn:
            now = conn.execute("SELECT mask_path, segmentation FROM images WHERE id = ?",
                               (image_id,)).fetchone()
            if tuple(now) != (old_path, segmentation):
                raise InputError(f"the mask of image {name} was replaced meanwhile (now "
                                 f"{now[0]}); nothing was changed: try again")
            labels = _frame(conn.execute(_CURRENT_SQL.format(where="WHERE a0.image_id = ?")
                                         + " ORDER BY a.label", (image_id,)), {"label": "int64"})
            report = transfer_report(matching, labels, min_iou)
            conn.execute("INSERT INTO masks (image_id, segmentation, mask_path, replaced_at,"
                         " report) VALUES (?, ?, ?, ?, ?)",
                         (image_id, segmentation, old_path, utc_now(), _to_json(
                             {**report.to_dict(), "author": author, "new_mask": new_path},
                             "the transfer report")))
            conn.execute("UPDATE images SET mask_path = ?, segmentation = ? WHERE id = ?",
                         (new_path, segmentation + 1, image_id))
            self._write_transfer(conn, image_id, report.transferred, author)
        return report

    def _write_transfer(self, conn: sqlite3.Connection, image_id: int,
                        transferred: pd.DataFrame, author: str) -> None:
        """The transferred labels as one action on the image's (new) current mask."""
        if transferred.empty:
            return
        classes = dict(conn.execute("SELECT name, id FROM classes").fetchall())
        records = zip([image_id] * len(transferred), transferred["new_label"].tolist(),
                      transferred["class"].map(classes).tolist())
        # One action, named after its first row's id, as annotate_many(one_action=True) does.
        action = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM annotations").fetchone()[0]
        self._insert_annotations(conn, records, author, "transfer", action)

    def mask_history(self, image: str | int) -> pd.DataFrame:
        """The masks an image had before its current one, oldest first.

        Returns
        -------
        pandas.DataFrame
            ``segmentation`` (int64; the annotations and predictions of that mask carry this
            number), ``mask_path``, ``replaced_at`` (ISO-8601 UTC) and ``report`` (the dict of
            :meth:`TransferReport.to_dict` plus ``author`` and ``new_mask``).
        """
        with self._read() as conn:
            image_id = self._image_id(conn, image)
            cursor = conn.execute(
                "SELECT segmentation, mask_path, replaced_at, report FROM masks"
                " WHERE image_id = ? ORDER BY segmentation", (image_id,))
            frame = _frame(cursor, {"segmentation": "int64"})
        frame["report"] = [json.loads(text) if text else {} for text in frame["report"]]
        return frame
