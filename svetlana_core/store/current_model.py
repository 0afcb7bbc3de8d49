"""The project's current model: the one every page predicts, corrects and maps with unless it
picks another (a mixin of ``Project``).

By default it is the finished training (status ``done``) with the best validation macro-F1,
the newest among equals: never a stopped, failed or prediction run, whose model a user may
still choose by hand. A choice is stored in the ``settings`` table, shared by the whole lab,
and holds while its model folder exists.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from svetlana_core.errors import InputError
from svetlana_core.store.values import _author, utc_now

#: Run kinds that train a model (the others predict with one).
TRAINING_KINDS = ("train", "train-rf")
_KEY = "current_model"


def _usable(model_dir: object) -> bool:
    return isinstance(model_dir, str) and bool(model_dir) and (Path(model_dir) /
                                                               "model.json").is_file()


class _CurrentModel:
    """Choosing the current model (a mixin of ``Project``)."""

    __slots__ = ()

    def current_model(self) -> str | None:
        """The current model folder, or None when the project has no finished training."""
        with self._read() as conn:
            row = conn.execute("SELECT value FROM settings WHERE key = ?", (_KEY,)).fetchone()
        if row is not None and _usable(row[0]):
            return row[0]
        return self.best_model()

    def best_model(self) -> str | None:
        """The finished training with the best validation macro-F1 (newest among equals)."""
        runs = self.runs()
        if runs.empty:
            return None
        done = runs[runs["kind"].isin(TRAINING_KINDS) & (runs["status"] == "done")
                    & runs["model_dir"].map(_usable)]
        if done.empty:
            return None
        scores = done["summary"].map(_macro_f1)
        best = done.assign(score=scores).sort_values(["score", "id"], ascending=False)
        return str(best.iloc[0]["model_dir"])

    def set_current_model(self, model_dir: str | os.PathLike[str] | None,
                          author: str = "") -> None:
        """Make `model_dir` (a model folder of one of the project's runs) the current model;
        None goes back to the default (:meth:`best_model`).

        Raises
        ------
        InputError
            A folder that is no model of this project's runs.
        """
        author = _author(author)
        if model_dir is None:
            with self._write() as conn:
                conn.execute("DELETE FROM settings WHERE key = ?", (_KEY,))
            return
        key = os.fspath(model_dir)
        known = set(self.runs()["model_dir"].dropna())
        if key not in known or not _usable(key):
            raise InputError(f"{key} is not a model folder of project {self.folder}'s runs")
        with self._write() as conn:
            conn.execute("INSERT INTO settings (key, value, author, changed_at) VALUES "
                         "(?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                         " author = excluded.author, changed_at = excluded.changed_at",
                         (_KEY, key, author, utc_now()))


def _macro_f1(summary: object) -> float:
    try:
        value = json.loads(summary).get("macro_f1") if isinstance(summary, str) else None
    except (ValueError, AttributeError):
        value = None
    return float(value) if isinstance(value, (int, float)) else -1.0
