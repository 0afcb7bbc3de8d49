"""The job API the app calls: submit a training or a prediction, follow it, cancel it.

:func:`submit_training` and :func:`submit_prediction` check their arguments, record a
``queued`` run in the project and start a worker process (:mod:`svetlana_core.jobs.worker`)
that does the rest; they return the run id at once. The store is the truth about a run:
:func:`job_status` and :func:`wait` read it, :func:`request_cancel` writes its cancel flag,
:func:`reap_dead_jobs` marks the runs of vanished workers failed, and :func:`shutdown_workers`
stops this process's workers when it exits.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from svetlana_core import store
from svetlana_core.errors import InputError
from svetlana_core.models import read_model_meta
from svetlana_core.jobs.sources import (
    PredictionSource,
    TrainingSource,
    _check_inside_roots,
    prediction_source,
    training_source,
)
from svetlana_core.store import Project

#: A queued or running run whose heartbeat is older than this (seconds) is dead.
STALE_AFTER_S = 120.0
FINAL_STATUSES = ("done", "failed", "stopped")
JOB_KINDS = ("cnn", "rf")

# Workers started by this process: (project folder, run id) -> Process.
_WORKERS: dict[tuple[str, int], _WorkerProcess] = {}
_WORKERS_LOCK = threading.Lock()


def submit_training(
    project_dir: str | os.PathLike,
    config_dict: Mapping[str, Any],
    source: TrainingSource | Mapping[str, Any] | None = None,
    out_name: str | None = None,
    author: str = "",
    kind: str = "cnn",
    sweep: Mapping[str, Any] | None = None,
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
    source : ProjectSource, FoldersSource or mapping, optional
        What to train on (:mod:`svetlana_core.jobs.sources`); default the project's current
        labels. The dict forms ``{"kind": "project"}`` and ``{"kind": "folders", "images":
        dir or None, "masks": dir, "labels": csv, "axes": None}`` are accepted too. Either
        may set ``group_pattern``. When ``$SVETLANA_DATA_ROOT`` is set, folders and files
        outside the data roots are refused (:mod:`svetlana_core.store.roots`).
    out_name : str, optional
        Model folder name under ``models/`` (default ``run<id>-<time>``).
    author : str
    kind : {"cnn", "rf"}
        The CNN of :mod:`svetlana_core.training`, or the random-forest baseline.
    sweep : mapping, optional
        ``{"id": str, "cell": {key: value}}`` when the run is a cell of a sweep
        (:func:`submit_sweep`); kept in the run's record.

    Returns
    -------
    int
        The run id; poll :func:`job_status` or :func:`wait` on it.

    Raises
    ------
    InputError
        Unknown kind or source, a config that is not a mapping, a bad model folder name, a
        folder outside the data roots.
    """
    if kind not in JOB_KINDS:
        raise InputError(f"job kind {kind!r} is not valid; choose one of {', '.join(JOB_KINDS)}")
    if not isinstance(config_dict, Mapping):
        raise InputError(f"config_dict must be a mapping, got {type(config_dict).__name__}")
    if out_name is not None and (not isinstance(out_name, str) or not out_name.strip()
                                 or Path(out_name).name != out_name or out_name.startswith(".")):
        raise InputError(f"out_name={out_name!r} is not valid: give a plain folder name")
    source = training_source(source)
    _check_roots(source)
    config_paths_inside_roots(config_dict)
    project = Project.open(project_dir)
    run_id = project.create_run(
        "train" if kind == "cnn" else "train-rf",
        {"kind": kind, "config": dict(config_dict), "source": source.to_dict(),
         "out_name": out_name, **({"sweep": dict(sweep)} if sweep else {})},
        author=author,
    )
    _start_worker(project, run_id, f"svetlana-train-{run_id}")
    return run_id


def submit_sweep(
    project_dir: str | os.PathLike,
    base_config: Mapping[str, Any],
    grid: Mapping[str, list[Any]],
    source: TrainingSource | Mapping[str, Any] | None = None,
    author: str = "",
) -> tuple[str, list[int]]:
    """Queue one training run per cell of ``grid`` (:mod:`svetlana_core.training.sweep`).

    Every cell's config is checked before the first is queued. The runs wait for the device
    one after another (the workers share its lock), each an ordinary run that can be opened,
    predicted with or deleted; their record names the sweep and the cell.

    Returns
    -------
    sweep_id, run_ids : str, list of int
    """
    import uuid

    from svetlana_core.training import sweep

    planned = sweep.configs(base_config, grid)
    sweep_id = uuid.uuid4().hex[:8]
    return sweep_id, [
        submit_training(project_dir, config, source, author=author,
                        sweep={"id": sweep_id, "cell": cell, "grid": dict(grid)})
        for cell, config in planned
    ]


def submit_prediction(
    project_dir: str | os.PathLike,
    model_dir: str | os.PathLike,
    source: PredictionSource | Mapping[str, Any],
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
    source : ProjectSource, FolderSource or mapping
        ``ProjectSource(images=[names] or None (all))`` or ``FolderSource(images, masks=None,
        axes=None)``; or the dict forms ``{"kind": "project", "images": ...}`` and
        ``{"kind": "folder", "images": dir, "masks": dir or None, "axes": None}``. When
        ``$SVETLANA_DATA_ROOT`` is set, a folder (or a file in it) outside the data roots is
        refused (:mod:`svetlana_core.store.roots`).
    out_dir : path
        Output folder of :func:`~svetlana_core.predict.predict_many` (it resumes there).
    force : bool
        Redo images whose outputs are up to date.
    author, device : str

    Returns
    -------
    int
        The run id. Cancel with :func:`request_cancel` (stops after the current image).

    Raises
    ------
    InputError
        An unknown source kind, a folder source without images, a folder outside the data
        roots.
    """
    source = prediction_source(source)
    _check_roots(source)
    project = Project.open(project_dir)
    run_id = project.create_run(
        "predict",
        {"kind": "predict", "model_dir": os.fspath(model_dir), "source": source.to_dict(),
         "out_dir": os.fspath(out_dir), "force": bool(force), "device": device},
        author=author,
    )
    _start_worker(project, run_id, f"svetlana-predict-{run_id}")
    return run_id


#: The config keys that name files a training worker opens: (keys, what the file is).
CONFIG_PATHS = ((("continue_from",), "model folder to continue from"),
                (("arch_params", "pretrained"), "pretrained weights file"))


def config_paths_inside_roots(config: Mapping[str, Any],
                              roots: store.Roots | None = None) -> None:
    """Refuse a training config that names a file outside the data roots.

    ``continue_from`` and ``arch_params.pretrained`` are opened by the worker (a model folder's
    ``model.json``, weights handed to ``torch.load``): a JSON config typed on the Train page
    must not reach the server's other files, nor learn from the errors whether they exist.
    Checked against ``roots``, or the configured roots (``$SVETLANA_DATA_ROOT``) when given
    none; nothing is checked when neither is set (the command line and notebooks).

    Raises
    ------
    InputError
        Naming the key and saying the path is outside the roots (nothing about the file).
    """
    roots = store.configured_roots() if roots is None else roots
    if roots is None:
        return
    for keys, what in CONFIG_PATHS:
        value: Any = config
        for key in keys:
            value = value.get(key) if isinstance(value, Mapping) else None
        if isinstance(value, (str, os.PathLike)) and str(value).strip():
            try:
                store.resolve_inside_roots(os.path.abspath(value), roots, what=what)
            except InputError as error:
                raise InputError(f"config key {'.'.join(keys)}: {error}") from None


def _check_roots(source: TrainingSource | PredictionSource) -> None:
    roots = store.configured_roots()
    if roots is not None:
        _check_inside_roots(source, roots)


class _WorkerProcess:
    """A job's worker process: a fresh interpreter that runs :func:`_run_job`.

    Not multiprocessing's spawn: it re-imports the parent's main script in the child, which
    for the app is Streamlit's own entry point (0.4-0.5 s and ~40 MB per job, before the job's
    own imports). The few methods of :class:`multiprocessing.Process` the module uses.
    """

    def __init__(self, project_dir: str, run_id: int) -> None:
        code = ("import sys; from svetlana_core.jobs.worker import _run_job; "
                "_run_job(sys.argv[1], int(sys.argv[2]))")
        # The child finds svetlana_core where this process found it, wherever it was started.
        package_root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
        self._popen = subprocess.Popen([sys.executable, "-c", code, project_dir, str(run_id)],
                                       env={**os.environ, "PYTHONPATH": path},
                                       stdin=subprocess.DEVNULL)
        self.pid = self._popen.pid

    def is_alive(self) -> bool:
        return self._popen.poll() is None

    def join(self, timeout: float | None = None) -> None:
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    def terminate(self) -> None:
        if self.is_alive():
            self._popen.terminate()

    def kill(self) -> None:
        if self.is_alive():
            self._popen.kill()


def _reap_finished() -> None:
    """Collect the exit status of this process's finished workers (no zombie keeps a pid)."""
    with _WORKERS_LOCK:
        workers = list(_WORKERS.values())
    for process in workers:
        process.is_alive()  # poll() reaps a finished child


def _start_worker(project: Project, run_id: int, name: str) -> None:
    """Start the worker of a run (``name`` is for people reading a process list)."""
    del name  # the command line names the project folder and the run instead
    process = _WorkerProcess(os.fspath(project.folder), run_id)
    project.update_run(run_id, pid=process.pid)
    with _WORKERS_LOCK:
        _WORKERS[(os.fspath(project.folder), run_id)] = process


def request_cancel(project_dir: str | os.PathLike, run_id: int) -> bool:
    """Ask a queued or running job to stop; it ends ``stopped`` with the best model so far.

    The run's ``cancel_requested`` flag is set in a statement of its own
    (:meth:`Project.request_cancel`); the worker polls it at most every
    :data:`~svetlana_core.jobs.POLL_S` seconds.

    Returns
    -------
    bool
        False when the run had already ended (nothing to cancel).
    """
    return Project.open(project_dir).request_cancel(run_id)


def job_status(project_dir: str | os.PathLike, run_id: int) -> dict[str, Any]:
    """The run's record from the store, plus ``epochs`` (rows so far).

    Returns
    -------
    dict
        ``id, kind, status, config, model_dir, device, error, author, pid, created_at,
        started_at, finished_at, heartbeat_at, summary, cancel_requested, epochs``.
    """
    project = Project.open(project_dir)
    record = project.run(run_id)
    record["epochs"] = len(project.epochs(run_id))
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
    the project folder, whose pid means nothing here). The change is conditional
    (:meth:`Project.fail_run`): a worker that writes its final status (or beats) after the
    run was read here keeps what it wrote.

    Returns
    -------
    list of int
        The run ids marked failed.
    """
    _reap_finished()  # waits for our finished workers, so their pids are free
    project = Project.open(project_dir)
    runs = project.runs()
    reaped = []
    for run_id in runs.loc[runs["status"].isin(["queued", "running"]), "id"].tolist():
        record = project.run(run_id)
        reason = _death(project, record, stale_after_s)
        if reason is None:
            continue
        error = _with_kept_model(reason, record["model_dir"])
        if project.fail_run(record["id"], error, heartbeat_at=record["heartbeat_at"]):
            reaped.append(int(run_id))
    return reaped


def _death(project: Project, record: dict[str, Any], stale_after_s: float) -> str | None:
    """Why the worker of a queued or running run counts as dead, or None while it lives."""
    with _WORKERS_LOCK:
        own = _WORKERS.get((os.fspath(project.folder), int(record["id"])))
    if own is not None:
        alive = own.is_alive()
    else:
        alive = _pid_alive(record["pid"]) or (
            record["pid"] is None and _age_s(record["created_at"]) < stale_after_s
        )
    beat = record["heartbeat_at"] or record["started_at"] or record["created_at"]
    if alive and _age_s(beat) <= stale_after_s:
        return None
    return "worker died" if not alive else f"worker died (no heartbeat for {_age_s(beat):.0f} s)"


def _with_kept_model(reason: str, model_dir: str | None) -> str:
    """A dead worker's error, naming the checkpoint it left in ``model_dir`` (if any)."""
    if not model_dir:
        return reason
    try:
        epoch = read_model_meta(model_dir)["best_epoch"]
    except InputError:  # no checkpoint (yet)
        return reason
    if epoch is None:
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
                project.fail_run(run_id, error, heartbeat_at=record["heartbeat_at"])
        except Exception:  # the project may be gone (a test's temp folder): nothing to record
            pass


# At exit the workers this process started are stopped (they save) rather than left running.
atexit.register(shutdown_workers)
