"""The ``runs`` and ``epochs`` tables: trainings and predictions, their state and metrics.

A worker process owns the row of its run and writes its progress there (status, heartbeat,
summary); the page and other users read it. Two writes come from outside the worker, and
each is one conditional statement so that it can never undo what the worker wrote meanwhile:

* a cancel request sets the ``cancel_requested`` column (:meth:`_Runs.request_cancel`), which
  no other write touches. It used to be a key of the ``summary`` JSON, which the worker
  rewrites on every progress step, so a cancel that landed between the worker's read and
  write of the summary was lost.
* marking a dead worker's run failed (:meth:`_Runs.fail_run`) applies only while the run is
  still queued or running with the heartbeat the caller saw.

:class:`_Runs` is one of the mixins :class:`svetlana_core.store.Project` is built from.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from svetlana_core.errors import InputError
from svetlana_core.store.schema import _RUN_COLUMNS, _RUN_JSON, _RUN_UPDATABLE
from svetlana_core.store.values import RUN_STATUSES, _author, _frame, _index, _to_json, utc_now


class _Runs:
    """Recording runs, their epochs, cancel requests and failures (a mixin of ``Project``)."""

    __slots__ = ()

    def create_run(self, kind: str, config: Mapping[str, Any], author: str = "") -> int:
        """Record a new run (training, prediction, ...) with status ``"queued"``.

        Parameters
        ----------
        kind : str
            What the run does, e.g. ``"train"`` or ``"predict"``.
        config : mapping
            Its parameters; stored as JSON (numpy scalars and paths are converted).
        author : str
            Who started it.

        Returns
        -------
        int
            The run id.
        """
        if not isinstance(kind, str) or not kind.strip():
            raise InputError(f"run kind must be a non-empty string, got {kind!r}")
        if not isinstance(config, Mapping):
            raise InputError(f"run config must be a mapping, got {type(config).__name__}")
        encoded = _to_json(dict(config), "run config")
        with self._write() as conn:
            return conn.execute(
                "INSERT INTO runs (kind, status, config, author, created_at)"
                " VALUES (?, 'queued', ?, ?, ?)",
                (kind.strip(), encoded, _author(author), utc_now()),
            ).lastrowid

    def update_run(self, run_id: int, **fields: Any) -> None:
        """Change fields of a run, e.g. ``status="running", pid=123, started_at=utc_now()``.

        Parameters
        ----------
        run_id : int
        **fields
            Any of ``kind``, ``status``, ``config``, ``model_dir``, ``device``, ``error``,
            ``author``, ``pid``, ``started_at``, ``finished_at``, ``heartbeat_at``, ``summary``.
            ``config`` and ``summary`` (dicts) are stored as JSON; paths as strings;
            datetimes as ISO-8601. Not ``cancel_requested``: see :meth:`request_cancel`.

        Raises
        ------
        InputError
            For an unknown run, an unknown field or an invalid status.
        """
        unknown = sorted(set(fields) - _RUN_UPDATABLE)
        if unknown:
            raise InputError(
                f"update_run got unknown field(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(_RUN_UPDATABLE))}"
            )
        if "status" in fields and fields["status"] not in RUN_STATUSES:
            raise InputError(
                f"run status must be one of {', '.join(RUN_STATUSES)}; got {fields['status']!r}"
            )
        values = {key: _run_value(key, value) for key, value in fields.items()}
        with self._write() as conn:
            run_id = self._run_id(conn, run_id)
            if values:
                assignments = ", ".join(f"{key} = ?" for key in values)
                conn.execute(
                    f"UPDATE runs SET {assignments} WHERE id = ?", (*values.values(), run_id)
                )

    def request_cancel(self, run_id: int) -> bool:
        """Ask a queued or running run to stop: set its ``cancel_requested`` flag.

        One statement that writes the flag only, so no concurrent write of the run (the
        worker's progress in ``summary``, its heartbeat) can lose it.

        Returns
        -------
        bool
            False when the run had already ended (nothing to cancel; nothing written).

        Raises
        ------
        InputError
            For an unknown run.
        """
        with self._write() as conn:
            run_id = self._run_id(conn, run_id)
            cursor = conn.execute(
                "UPDATE runs SET cancel_requested = 1"
                " WHERE id = ? AND status IN ('queued', 'running')",
                (run_id,),
            )
            return cursor.rowcount > 0

    def cancel_requested(self, run_id: int) -> bool:
        """Whether :meth:`request_cancel` was called for the run (one cheap read)."""
        with self._read() as conn:
            run_id = self._run_id(conn, run_id)
            row = conn.execute("SELECT cancel_requested FROM runs WHERE id = ?", (run_id,))
            return bool(row.fetchone()[0])

    def fail_run(self, run_id: int, error: str, *, heartbeat_at: str | None) -> bool:
        """Mark a run whose worker is gone ``failed``, unless the worker wrote meanwhile.

        The check and the change are one ``UPDATE``: it applies only while the run is
        queued or running and its heartbeat is still ``heartbeat_at``, the one the caller
        saw when it judged the worker dead. A worker that finished (or beat) in between
        keeps its own status.

        Parameters
        ----------
        run_id : int
        error : str
            Recorded as the run's error.
        heartbeat_at : str or None
            The run's ``heartbeat_at`` as the caller read it.

        Returns
        -------
        bool
            Whether the run was marked failed.
        """
        with self._write() as conn:
            run_id = self._run_id(conn, run_id)
            cursor = conn.execute(
                "UPDATE runs SET status = 'failed', finished_at = ?, error = ?"
                " WHERE id = ? AND status IN ('queued', 'running') AND heartbeat_at IS ?",
                (utc_now(), error, run_id, heartbeat_at),
            )
            return cursor.rowcount > 0

    def _run_id(self, conn: sqlite3.Connection, run_id: int) -> int:
        """``run_id`` as a Python int, checked to exist."""
        number = _index(run_id)
        if number is not None:
            row = conn.execute("SELECT 1 FROM runs WHERE id = ?", (number,)).fetchone()
        if number is None or row is None:
            raise InputError(f"no run with id {run_id!r} in project {self.folder}")
        return number

    def run(self, run_id: int) -> dict[str, Any]:
        """One run as a dict of its columns, with ``config`` and ``summary`` decoded from JSON.

        ``cancel_requested`` is a bool.
        """
        with self._read() as conn:
            run_id = self._run_id(conn, run_id)
            cursor = conn.execute(
                f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs WHERE id = ?", (run_id,)
            )
            record = dict(zip(_RUN_COLUMNS, cursor.fetchone()))
        for key in _RUN_JSON:
            if record[key] is not None:
                record[key] = json.loads(record[key])
        record["cancel_requested"] = bool(record["cancel_requested"])
        return record

    def delete_run(self, run_id: int) -> str | None:
        """Remove a finished run (a sweep cell not worth keeping, a failed try) from the
        project's runs; returns where its model folder went, or None.

        Nothing made is destroyed: the model folder, when it lies in the project's
        ``models/``, moves to ``deleted_models/`` (move it back and the folder still predicts);
        predictions made with it stay in the store. The run's record and epochs go.

        Raises
        ------
        InputError
            An unknown run, or one still queued or running (stop it first).
        """
        record = self.run(run_id)
        if record["status"] in ("queued", "running"):
            raise InputError(f"run {run_id} is {record['status']}: stop it before deleting it")
        moved = None
        folder = Path(record["model_dir"]) if record.get("model_dir") else None
        if folder is not None and folder.is_dir() and folder.parent == self.models_dir:
            trash = self.folder / "deleted_models"
            trash.mkdir(exist_ok=True)
            target = trash / folder.name
            if target.exists():  # a name deleted before: keep both
                target = trash / f"{folder.name}-run{int(record['id'])}"
            folder.rename(target)  # same file system: atomic, nothing copied
            moved = os.fspath(target)
        with self._write() as conn:
            conn.execute("DELETE FROM epochs WHERE run_id = ?", (int(record["id"]),))
            conn.execute("DELETE FROM runs WHERE id = ?", (int(record["id"]),))
        return moved

    def runs(self) -> pd.DataFrame:
        """All runs, oldest first.

        Returns
        -------
        pandas.DataFrame
            One column per field of :meth:`run`; ``config`` and ``summary`` stay JSON strings
            here (decode one run with :meth:`run`).
        """
        with self._read() as conn:
            cursor = conn.execute(f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs ORDER BY id")
            return _frame(cursor, {"id": "int64", "pid": "Int64", "cancel_requested": "bool"})

    def add_epoch(self, run_id: int, epoch: int, metrics: Mapping[str, Any]) -> None:
        """Record (or replace) the metrics of one epoch of a run.

        Parameters
        ----------
        run_id, epoch : int
        metrics : mapping
            JSON-able values; nested dicts such as per-class recall ``{"recall": {"a": 0.9}}``
            are flattened by :meth:`epochs`.
        """
        number = _index(epoch)
        if number is None:
            raise InputError(f"epoch must be an integer, got {epoch!r}")
        epoch = number
        if not isinstance(metrics, Mapping):
            raise InputError(f"metrics must be a mapping, got {type(metrics).__name__}")
        encoded = _to_json(dict(metrics), f"metrics of epoch {epoch}")
        with self._write() as conn:
            run_id = self._run_id(conn, run_id)
            conn.execute(
                "INSERT INTO epochs (run_id, epoch, metrics, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (run_id, epoch) DO UPDATE SET metrics = excluded.metrics,"
                " created_at = excluded.created_at",
                (run_id, epoch, encoded, utc_now()),
            )

    def epochs(self, run_id: int) -> pd.DataFrame:
        """The metrics of a run, one row per epoch.

        Returns
        -------
        pandas.DataFrame
            ``epoch`` then one column per metric, sorted by epoch. Nested dicts are flattened
            with ``_``: ``{"recall": {"mitotic": 0.9}}`` gives a column ``recall_mitotic``.
            Lists (e.g. a confusion matrix) stay lists. Empty (just ``epoch``) before the first
            epoch.
        """
        with self._read() as conn:
            run_id = self._run_id(conn, run_id)
            rows = conn.execute(
                "SELECT epoch, metrics FROM epochs WHERE run_id = ? ORDER BY epoch", (run_id,)
            ).fetchall()
        if not rows:
            return pd.DataFrame({"epoch": pd.Series(dtype="int64")})
        metrics = pd.json_normalize([json.loads(text) for _, text in rows], sep="_")
        metrics.insert(0, "epoch", pd.Series([epoch for epoch, _ in rows], dtype="int64"))
        return metrics


def _run_value(key: str, value: Any) -> Any:
    """A field of :meth:`_Runs.update_run` as sqlite3 binds it."""
    if key in _RUN_JSON and value is not None:
        return _to_json(value, f"run {key}")
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat(timespec="microseconds")
    if hasattr(value, "item") and not isinstance(value, str):
        return value.item()  # numpy scalars: sqlite3 binds only Python numbers
    return value
