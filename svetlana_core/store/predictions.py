"""The ``predictions`` table: per-object classes and probabilities of a model, by image.

Keyed by the model folder (as given) and the image, so the Correct page can show a model's
guesses next to the user's labels. :class:`_Predictions` is one of the mixins
:class:`svetlana_core.store.Project` is built from.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import pandas as pd

from svetlana_core.errors import InputError, listing
from svetlana_core.store.values import _frame, _to_json, utc_now


class _Predictions:
    """Storing and reading a model's predictions (a mixin of ``Project``)."""

    __slots__ = ()

    def save_predictions(
        self, model_dir: str | os.PathLike[str], image: str | int, table: pd.DataFrame
    ) -> int:
        """Replace the predictions of one model for one image, in one transaction.

        Parameters
        ----------
        model_dir : str or path-like
            The model that predicted (its folder; used as a key, as given).
        image : str or int
            Image name or id.
        table : pandas.DataFrame
            One row per object: ``label`` (positive, unique), ``class``, optional
            ``confidence``, and probabilities either as ``p_<class>`` columns or as a
            ``probabilities`` column of dicts.

        Returns
        -------
        int
            The number of rows stored.
        """
        rows = _prediction_rows(table)
        now = utc_now()
        key = os.fspath(model_dir)
        with self._write() as conn:
            image_id = self._image_id(conn, image)
            segmentation = conn.execute("SELECT segmentation FROM images WHERE id = ?",
                                        (image_id,)).fetchone()[0]
            conn.execute(  # the predictions of earlier masks stay, with their segmentation
                "DELETE FROM predictions WHERE model_dir = ? AND image_id = ?"
                " AND segmentation = ?", (key, image_id, segmentation)
            )
            conn.executemany(
                "INSERT INTO predictions (model_dir, image_id, label, class, confidence,"
                " probabilities, created_at, segmentation) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                ((key, image_id, *row, now, segmentation) for row in rows),
            )
        return len(table)

    def predictions(
        self, model_dir: str | os.PathLike[str], image: str | int | None = None
    ) -> pd.DataFrame:
        """Stored predictions of a model, sorted by image name and label.

        Only the predictions of each image's current mask are read (see
        :meth:`replace_mask`), and none of removed images.

        Returns
        -------
        pandas.DataFrame
            Columns ``image`` (name), ``label``, ``class``, ``confidence`` and one
            ``p_<class>`` column per stored probability.
        """
        key = os.fspath(model_dir)
        with self._read() as conn:
            where, parameters = "WHERE p.model_dir = ?", [key]
            if image is not None:
                where += " AND p.image_id = ?"
                parameters.append(self._image_id(conn, image))
            cursor = conn.execute(
                f"""SELECT i.name AS image, p.label AS label, p.class AS class,
                           p.confidence AS confidence, p.probabilities AS probabilities
                FROM predictions AS p
                JOIN images AS i ON i.id = p.image_id AND p.segmentation = i.segmentation
                     AND i.removed_at IS NULL
                {where} ORDER BY i.name, p.label""",
                parameters,
            )
            frame = _frame(cursor, {"label": "int64", "confidence": "float64"})
        texts = frame.pop("probabilities")
        if texts.notna().any():
            records = [json.loads(text) if isinstance(text, str) else {} for text in texts]
            if all(isinstance(record, dict) for record in records):
                probabilities = pd.DataFrame(records, index=frame.index).add_prefix("p_")
                frame = pd.concat([frame, probabilities], axis=1)
            else:
                frame["probabilities"] = [
                    json.loads(text) if isinstance(text, str) else None for text in texts
                ]
        return frame


def _prediction_rows(table: pd.DataFrame) -> list[tuple[int, str | None, float | None, Any]]:
    """``(label, class, confidence, probabilities JSON)`` per row of a predictions table.

    Raises
    ------
    InputError
        A missing ``label`` or ``class`` column, labels that are not positive integers or
        repeat.
    """
    missing = [column for column in ("label", "class") if column not in table]
    if missing:
        raise InputError(
            f"predictions table lacks column(s) {', '.join(missing)}; it has "
            f"{', '.join(map(str, table.columns))}"
        )
    labels = pd.to_numeric(table["label"], errors="coerce")
    if (labels.isna() | (labels % 1 != 0) | (labels <= 0)).any():
        raise InputError("predictions table: every label must be a positive integer")
    labels = labels.astype("int64")
    if labels.duplicated().any():
        repeated = sorted(labels[labels.duplicated()].unique().tolist())
        raise InputError(f"predictions table repeats label(s) {listing(repeated)}")
    confidence = (
        pd.to_numeric(table["confidence"], errors="coerce").astype("float64")
        if "confidence" in table
        else pd.Series(math.nan, index=table.index)
    )
    classes = [None if pd.isna(value) else str(value) for value in table["class"]]
    return [
        (label, name, None if math.isnan(value) else value, p)
        for label, name, value, p in zip(
            labels.tolist(), classes, confidence.tolist(), _probabilities_json(table)
        )
    ]


def _probabilities_json(table: pd.DataFrame) -> list[str | None]:
    """Each row's probabilities as JSON, from a ``probabilities`` column or ``p_`` columns."""
    if "probabilities" in table:
        return [
            value if value is None or isinstance(value, str) else _to_json(value, "probability")
            for value in table["probabilities"]
        ]
    probability_columns = [column for column in table.columns if str(column).startswith("p_")]
    if probability_columns:
        values = table[probability_columns].rename(columns=lambda column: str(column)[2:])
        return [_to_json(record, "probabilities") for record in values.to_dict("records")]
    return [None] * len(table)
