"""Long work (training, batch prediction) in a worker process that reports to the project store.

The app never trains in its own process: a thread of the Streamlit server slows every click
(FIELD-NOTES), so :func:`submit_training` (and :func:`submit_prediction`) starts a *spawned*
process and returns a run id at once. The worker writes everything to the store (status, pid,
device, one row per epoch, heartbeat, the model folder, the error) and the page polls the
store; the store, not the process object, is the truth, so a reloaded page or another user
sees the same job.

Life of a run (``runs.status``)::

    queued --(device lock acquired)--> running --> done | stopped | failed
    queued --(cancelled while waiting)--> stopped
    queued | running --(worker gone, reap_dead_jobs)--> failed "worker died"

One queue per device
--------------------
Two trainings on one GPU (or on the two cores of a small server) are slower together than one
after the other, and can run out of memory. A worker therefore takes an exclusive
``fcntl.flock`` on ``<lock dir>/<device>.lock`` before it starts, and holds it until its final
status is written. The lock dir is ``$SVETLANA_LOCK_DIR``, by default
``<system temp dir>/svetlana-locks``: one folder for the whole machine, so jobs of *different
projects* on one GPU queue too. The kernel drops the lock when the process dies, so a crashed
worker never blocks the queue. Locks are per machine (POSIX only). Waiting workers poll the
lock, so with several waiting the first to find the device free takes it, not necessarily the
first submitted; a worker cancelled while waiting never starts, even when the device frees
at the same moment.

Cancelling
----------
:func:`request_cancel` marks the run in the store (``summary["cancel_requested"]``; the runs
table has no cancel column yet); the worker polls the store at most every
:data:`POLL_S` seconds between batches, so training stops within one batch, saves the best
weights so far and ends ``stopped``. ``SIGTERM`` and ``SIGINT`` do the same.

Exit of the submitting process
------------------------------
:func:`shutdown_workers` is registered with :mod:`atexit`: it sends ``SIGTERM`` to the workers
this process started (they stop and save), waits for them, and kills what is left. Without it
multiprocessing would wait for a non-daemon worker at exit, and a daemonic one would be killed
without saving.

No torch here at import time: the worker imports :mod:`svetlana_core.training` itself.
"""

from __future__ import annotations

import atexit
import json
import multiprocessing
import multiprocessing.util  # registers its atexit join first, so ours runs before it
import os
import re
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from svetlana_core.errors import InputError
from svetlana_core.store import Project, utc_now
from svetlana_core.jobs.worker import _run_prediction_job, _run_training_job

#: A queued or running run whose heartbeat is older than this (seconds) is dead.
STALE_AFTER_S = 120.0
FINAL_STATUSES = ("done", "failed", "stopped")
SOURCE_KINDS = ("project", "folders")
JOB_KINDS = ("cnn", "rf")
PREDICT_SOURCE_KINDS = ("project", "folder")

# Workers started by this process: (project folder, run id) -> Process.
_WORKERS: dict[tuple[str, int], multiprocessing.process.BaseProcess] = {}
_WORKERS_LOCK = threading.Lock()




def _check_source(source: Mapping[str, Any] | None) -> dict[str, Any]:
    source = {"kind": "project"} if source is None else dict(source)
    kind = source.get("kind")
    if kind not in SOURCE_KINDS:
        raise InputError(
            f"source kind {kind!r} is not valid; choose one of {', '.join(SOURCE_KINDS)}"
        )
    if kind == "folders":
        allowed = {"kind", "images", "masks", "labels", "axes", "group_pattern"}
        unknown = sorted(set(source) - allowed)
        if unknown:
            raise InputError(
                f"folders source got unknown key(s) {unknown}; valid: {sorted(allowed)}"
            )
        for key in ("masks", "labels"):
            if not source.get(key):
                raise InputError(f"folders source needs {key!r} (a path)")
        source = {k: (os.fspath(v) if isinstance(v, os.PathLike) else v) for k, v in source.items()}
    else:
        allowed = {"kind", "group_pattern"}
        unknown = sorted(set(source) - allowed)
        if unknown:
            raise InputError(
                f"project source got unknown key(s) {unknown}; valid: {sorted(allowed)}"
            )
    pattern = source.get("group_pattern")
    if pattern is not None:
        try:
            re.compile(pattern)
        except (re.error, TypeError) as error:
            raise InputError(
                f"group_pattern {pattern!r} is not a valid regular expression: {error}"
            ) from None
    return source


def submit_training(
    project_dir: str | os.PathLike,
    config_dict: Mapping[str, Any],
    source: Mapping[str, Any] | None = None,
    out_name: str | None = None,
    author: str = "",
    kind: str = "cnn",
) -> int:
    """Queue a training run and start its worker process; returns at once.

    Parameters
    ----------
    project_dir : path
        The project (:class:`svetlana_core.store.Project` folder); the run is recorded there and
        the model is written under its ``models/`` folder.
    config_dict : mapping
        For ``kind="cnn"``: a :class:`svetlana_core.training.TrainConfig` dict (checked by the
        worker: a bad value ends the run ``failed`` with the message). For ``kind="rf"``: the
        keyword arguments of :func:`svetlana_core.baseline.train_baseline` plus
        ``val_fraction`` and ``seed``.
    source : mapping, optional
        ``{"kind": "project"}`` (default: the project's current labels) or
        ``{"kind": "folders", "images": dir or None, "masks": dir, "labels": csv,
        "axes": None}``. Either may add ``"group_pattern"``: a regular expression whose first
        group (or whole match) in the image name is the split group, e.g. ``r"train_(\\d+)_"``
        for CoNSeP source images.
    out_name : str, optional
        Model folder name under ``models/`` (default ``run<id>-<time>``).
    author : str
    kind : {"cnn", "rf"}
        The CNN of :mod:`svetlana_core.training`, or the random-forest baseline.

    Returns
    -------
    int
        The run id; poll :func:`job_status` or :func:`wait` on it.

    Raises
    ------
    InputError
        Unknown kind or source, a config that is not a mapping, a bad model folder name.
    """
    if kind not in JOB_KINDS:
        raise InputError(f"job kind {kind!r} is not valid; choose one of {', '.join(JOB_KINDS)}")
    if not isinstance(config_dict, Mapping):
        raise InputError(f"config_dict must be a mapping, got {type(config_dict).__name__}")
    if out_name is not None and (not isinstance(out_name, str) or not out_name.strip()
                                 or Path(out_name).name != out_name or out_name.startswith(".")):
        raise InputError(f"out_name={out_name!r} is not valid: give a plain folder name")
    source = _check_source(source)
    project = Project.open(project_dir)
    run_id = project.create_run(
        "train" if kind == "cnn" else "train-rf",
        {"kind": kind, "config": dict(config_dict), "source": source, "out_name": out_name},
        author=author,
    )
    _start_worker(project, run_id, _run_training_job, f"svetlana-train-{run_id}")
    return run_id


def _start_worker(project: Project, run_id: int, target: Any, name: str) -> None:
    context = multiprocessing.get_context("spawn")
    process = context.Process(target=target, args=(os.fspath(project.folder), run_id),
                              name=name, daemon=False)
    process.start()
    project.update_run(run_id, pid=process.pid)
    with _WORKERS_LOCK:
        _WORKERS[(os.fspath(project.folder), run_id)] = process


def submit_prediction(
    project_dir: str | os.PathLike,
    model_dir: str | os.PathLike,
    source: Mapping[str, Any],
    out_dir: str | os.PathLike,
    force: bool = False,
    author: str = "",
    device: str = "auto",
) -> int:
    """Queue a batch prediction (:func:`svetlana_core.predict.predict_many`) in a worker process.

    Progress is in the run's ``summary``: ``finished``, ``total``, ``image`` (the last one),
    then ``done``, ``skipped``, ``failed`` (``"<image>: <message>"`` strings) and ``outputs``.
    For project images the per-object predictions are also stored in the project
    (:meth:`Project.save_predictions`, keyed by ``model_dir`` as given).

    Parameters
    ----------
    project_dir : path
    model_dir : path
        A model folder.
    source : mapping
        ``{"kind": "project", "images": [names] or None (all)}`` or
        ``{"kind": "folder", "images": dir, "masks": dir or None, "axes": None}``.
    out_dir : path
        Output folder of :func:`~svetlana_core.predict.predict_many` (it resumes there).
    force : bool
        Redo images whose outputs are up to date.
    author, device : str

    Returns
    -------
    int
        The run id. Cancel with :func:`request_cancel` (stops after the current image).
    """
    source = dict(source) if isinstance(source, Mapping) else source
    if not isinstance(source, dict) or source.get("kind") not in PREDICT_SOURCE_KINDS:
        kind = source.get("kind") if isinstance(source, dict) else source
        raise InputError(f"prediction source kind {kind!r} is not valid; choose one of "
                         f"{', '.join(PREDICT_SOURCE_KINDS)}")
    if source["kind"] == "folder" and not source.get("images"):
        raise InputError("folder source needs 'images' (a folder)")
    source = {k: (os.fspath(v) if isinstance(v, os.PathLike) else v) for k, v in source.items()}
    project = Project.open(project_dir)
    run_id = project.create_run(
        "predict",
        {"kind": "predict", "model_dir": os.fspath(model_dir), "source": source,
         "out_dir": os.fspath(out_dir), "force": bool(force), "device": device},
        author=author,
    )
    _start_worker(project, run_id, _run_prediction_job, f"svetlana-predict-{run_id}")
    return run_id


def request_cancel(project_dir: str | os.PathLike, run_id: int) -> bool:
    """Ask a queued or running job to stop; it ends ``stopped`` with the best model so far.

    Returns
    -------
    bool
        False when the run had already ended (nothing to cancel).
    """
    project = Project.open(project_dir)
    record = project.run(run_id)
    if record["status"] in FINAL_STATUSES:
        return False
    summary = dict(record["summary"] or {})
    summary.update(cancel_requested=True, cancel_requested_at=utc_now())
    project.update_run(run_id, summary=summary)
    return True


def job_status(project_dir: str | os.PathLike, run_id: int) -> dict[str, Any]:
    """The run's record from the store, plus ``epochs`` (rows so far) and ``cancel_requested``.

    Returns
    -------
    dict
        ``id, kind, status, config, model_dir, device, error, author, pid, created_at,
        started_at, finished_at, heartbeat_at, summary, epochs, cancel_requested``.
    """
    project = Project.open(project_dir)
    record = project.run(run_id)
    record["epochs"] = len(project.epochs(run_id))
    record["cancel_requested"] = bool((record["summary"] or {}).get("cancel_requested"))
    return record


def _age_s(stamp: str | None) -> float:
    if not stamp:
        return float("inf")
    return (datetime.now(timezone.utc) - datetime.fromisoformat(stamp)).total_seconds()


def _pid_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def reap_dead_jobs(
    project_dir: str | os.PathLike, stale_after_s: float = STALE_AFTER_S
) -> list[int]:
    """Mark queued or running runs whose worker is gone as ``failed`` ("worker died").

    A worker is gone when its process no longer exists, or when its heartbeat is older than
    ``stale_after_s`` (a hung or frozen worker; also a worker on another machine that shares
    the project folder, whose pid means nothing here).

    Returns
    -------
    list of int
        The run ids marked failed.
    """
    multiprocessing.active_children()  # joins our finished workers, so their pids are free
    project = Project.open(project_dir)
    runs = project.runs()
    reaped = []
    for run_id in runs.loc[runs["status"].isin(["queued", "running"]), "id"].tolist():
        record = project.run(run_id)
        with _WORKERS_LOCK:
            own = _WORKERS.get((os.fspath(project.folder), int(run_id)))
        if own is not None:
            alive = own.is_alive()
        else:
            alive = _pid_alive(record["pid"]) or (
                record["pid"] is None and _age_s(record["created_at"]) < stale_after_s
            )
        beat = record["heartbeat_at"] or record["started_at"] or record["created_at"]
        if alive and _age_s(beat) <= stale_after_s:
            continue
        reason = "worker died" if not alive else \
            f"worker died (no heartbeat for {_age_s(beat):.0f} s)"
        # Re-read: the worker may have written its final status in between.
        record = project.run(run_id)
        if record["status"] in FINAL_STATUSES:
            continue
        project.update_run(int(run_id), status="failed", finished_at=utc_now(),
                           error=_with_kept_model(reason, record["model_dir"]))
        reaped.append(int(run_id))
    return reaped


def _with_kept_model(reason: str, model_dir: str | None) -> str:
    """A dead worker's error, naming the checkpoint it left in ``model_dir`` (if any)."""
    if not model_dir:
        return reason
    try:
        meta = json.loads((Path(model_dir) / "model.json").read_text(encoding="utf-8"))
        epoch = int(meta["best_epoch"])
    except (OSError, ValueError, KeyError, TypeError):  # no checkpoint (yet)
        return reason
    return f"{reason}; the best model so far (epoch {epoch}) is kept in {model_dir}"


def wait(
    project_dir: str | os.PathLike, run_id: int, timeout: float | None = None, poll_s: float = 0.2
) -> str:
    """Block until a run ends (or ``timeout`` seconds pass); returns its status.

    A worker of this process that exited without a final status is marked ``failed``.
    """
    project = Project.open(project_dir)
    deadline = None if timeout is None else time.monotonic() + timeout
    key = (os.fspath(project.folder), int(run_id))
    while True:
        status = project.run(run_id)["status"]
        if status in FINAL_STATUSES:
            with _WORKERS_LOCK:
                process = _WORKERS.pop(key, None)
            if process is not None:
                process.join(timeout=30)
            return status
        with _WORKERS_LOCK:
            process = _WORKERS.get(key)
        if process is not None and not process.is_alive():
            reap_dead_jobs(project_dir)
            continue
        if deadline is not None and time.monotonic() >= deadline:
            return status
        time.sleep(poll_s)


def shutdown_workers(timeout: float = 20.0) -> None:
    """Stop the workers this process started: SIGTERM (they stop and save), wait, then kill.

    Registered with :mod:`atexit`, so the server or a test session can exit while a job runs.
    Runs whose worker had to be killed are marked ``failed``.
    """
    with _WORKERS_LOCK:
        workers = list(_WORKERS.items())
        _WORKERS.clear()
    for _, process in workers:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + timeout
    for (folder, run_id), process in workers:
        process.join(timeout=max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(timeout=5)
        try:
            project = Project.open(folder)
            record = project.run(run_id)
            if record["status"] not in FINAL_STATUSES:
                error = _with_kept_model("worker stopped when the process that started it "
                                         "exited", record["model_dir"])
                project.update_run(run_id, status="failed", finished_at=utc_now(), error=error)
        except Exception:  # the project may be gone (a test's temp folder): nothing to record
            pass


# atexit runs handlers last-registered first: this one must run before multiprocessing's own,
# which joins non-daemon children and would wait for a training to end.
atexit.register(shutdown_workers)
