"""Replacing an image's mask and carrying its labels over (a mixin of ``Project``).

The old mask stays listed in the ``masks`` table (with what the transfer did), its labels and
predictions stay in their tables under the old segmentation number: nothing is deleted, and
only the new mask's rows are read from then on.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from svetlana_core import io
from svetlana_core.errors import InputError
from svetlana_core.objects.transfer import match_objects
from svetlana_core.store.values import _author, _frame, utc_now


@dataclass(frozen=True)
class TransferReport:
    """What :meth:`_Masks.replace_mask` did with the labels of the old mask.

    Attributes
    ----------
    transferred : DataFrame
        ``old_label, new_label, class, iou`` of the labels carried over.
    lost : DataFrame
        ``old_label, class``: labelled objects with no partner in the new mask.
    ambiguous : DataFrame
        ``old_label, class, why``: labelled objects that were split, or merged with others
        (``"split"``, ``"merged into <new label>"``), not carried over.
    n_old, n_new : int
        Objects in the old and the new mask.
    """

    transferred: pd.DataFrame
    lost: pd.DataFrame
    ambiguous: pd.DataFrame
    n_old: int
    n_new: int

    def summary(self) -> str:
        """One line: ``"12 labels transferred, 1 lost (no match), 2 ambiguous (split or
        merged); 40 -> 43 objects"``."""
        return (f"{len(self.transferred)} label(s) transferred, {len(self.lost)} lost "
                f"(no match), {len(self.ambiguous)} ambiguous (split or merged); "
                f"{self.n_old} -> {self.n_new} objects")

    def counts(self) -> dict[str, int]:
        return {"transferred": len(self.transferred), "lost": len(self.lost),
                "ambiguous": len(self.ambiguous), "old_objects": self.n_old,
                "new_objects": self.n_new}


def transfer_report(old_mask: np.ndarray, new_mask: np.ndarray, labels: pd.DataFrame,
                    min_iou: float = 0.5) -> TransferReport:
    """What becomes of ``labels`` (``label, class`` of the old mask) on the new mask."""
    matching = match_objects(old_mask, new_mask, min_iou)
    labelled = labels[["label", "class"]].rename(columns={"label": "old_label"})
    transferred = labelled.merge(matching.pairs.rename(columns={"old": "old_label",
                                                                "new": "new_label"}),
                                 on="old_label")[["old_label", "new_label", "class", "iou"]]
    merged_into = _merged_into(old_mask, new_mask, matching.merged)
    why = pd.Series({int(label): "split" for label in matching.split}, dtype=object)
    why = pd.concat([why, pd.Series({o: f"merged into {n}" for o, n in merged_into.items()},
                                    dtype=object)])
    unpaired = labelled[~labelled["old_label"].isin(transferred["old_label"])]
    ambiguous = unpaired[unpaired["old_label"].isin(why.index)]
    ambiguous = ambiguous.assign(why=ambiguous["old_label"].map(why))
    lost = unpaired[~unpaired["old_label"].isin(why.index)]
    return TransferReport(transferred.reset_index(drop=True), lost.reset_index(drop=True),
                          ambiguous.reset_index(drop=True),
                          int(np.unique(old_mask[old_mask > 0]).size),
                          int(np.unique(new_mask[new_mask > 0]).size))


def _merged_into(old: np.ndarray, new: np.ndarray, merged: np.ndarray) -> dict[int, int]:
    """Old label -> the merged new object holding most of it."""
    inside = np.isin(new, merged) & (old > 0)
    if not inside.any():
        return {}
    pairs = pd.DataFrame({"old": old[inside], "new": new[inside]}).value_counts()
    best = pairs.reset_index().sort_values("count", ascending=False).drop_duplicates("old")
    area = pd.Series(old[old > 0]).value_counts()
    best = best[2 * best["count"].to_numpy() > best["old"].map(area).to_numpy()]
    return {int(o): int(n) for o, n in zip(best["old"], best["new"])}


class _Masks:
    """Replacing masks (a mixin of ``Project``)."""

    __slots__ = ()

    def replace_mask(self, image: str | int, new_mask: str | os.PathLike[str], *,
                     min_iou: float = 0.5, author: str = "") -> TransferReport:
        """Give an image a new mask and carry its labels to the objects that match.

        Old and new objects are paired one to one by overlap
        (:func:`svetlana_core.objects.transfer.match_objects`); each labelled old object with a
        partner gives its class to the partner (source ``transfer``, one action: one undo
        takes the whole transfer back). In one transaction the old mask is listed in
        ``masks`` with the report, the image points to the new file and its segmentation
        number grows, so the old labels and predictions stay in the project, unread.

        Raises
        ------
        InputError
            An unknown image, an unreadable mask, a new mask of another shape, `min_iou`
            outside (0, 1]; the project is unchanged then.
        """
        author = _author(author)
        row = self.images().set_index("name").loc[[self._image_name(image)]].iloc[0]
        old = io.read_mask(row["mask_path"])
        new = io.read_mask(new_mask)
        if old.shape != new.shape:
            raise InputError(f"mask {new_mask} has shape {new.shape} but image {row.name}'s mask "
                             f"{row['mask_path']} has {old.shape}: it is not a mask of that image")
        report = transfer_report(old, new, self.labels(row.name), min_iou)
        with self._write() as conn:
            image_id, segmentation, old_path = conn.execute(
                "SELECT id, segmentation, mask_path FROM images WHERE name = ?",
                (row.name,)).fetchone()
            conn.execute("INSERT INTO masks (image_id, segmentation, mask_path, replaced_at,"
                         " report) VALUES (?, ?, ?, ?, ?)",
                         (image_id, segmentation, old_path, utc_now(),
                          json.dumps({"min_iou": min_iou, **report.counts()})))
            conn.execute("UPDATE images SET mask_path = ?, segmentation = ? WHERE id = ?",
                         (os.path.abspath(os.fspath(new_mask)), segmentation + 1, image_id))
            records = self._annotation_records(conn, [
                (image_id, int(label), cls) for label, cls
                in report.transferred[["new_label", "class"]].itertuples(index=False)])
            action = None
            if records:
                action = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM annotations"
                                      ).fetchone()[0]
            self._insert_annotations(conn, records, author, "transfer", action)
        return report

    def mask_history(self, image: str | int) -> pd.DataFrame:
        """The masks an image had before its current one, oldest first: ``segmentation``,
        ``mask_path``, ``replaced_at`` and ``report`` (dict of counts)."""
        with self._read() as conn:
            image_id = self._image_id(conn, image)
            cursor = conn.execute(
                "SELECT segmentation, mask_path, replaced_at, report FROM masks"
                " WHERE image_id = ? ORDER BY segmentation", (image_id,))
            frame = _frame(cursor, {"segmentation": "int64"})
        frame["report"] = [json.loads(text) if text else {} for text in frame["report"]]
        return frame

    def _image_name(self, image: str | int) -> str:
        with self._read() as conn:
            image_id = self._image_id(conn, image)
            return conn.execute("SELECT name FROM images WHERE id = ?", (image_id,)).fetchone()[0]

