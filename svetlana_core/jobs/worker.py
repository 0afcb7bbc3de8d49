"""The worker process: it queues for its device, runs its task, and records the outcome.

A worker process (a fresh ``python``, started by :mod:`~svetlana_core.jobs.submit`) runs
:func:`_run_job` for one run: it beats a heartbeat (:class:`_Heartbeat`)
from start to end, takes the machine-wide lock of its device (:func:`_device_lock`), runs the
task of :mod:`svetlana_core.jobs.tasks` with a :class:`_CancelFlag` as its stop event, and
writes the final status, whatever happens. What the task does is not this module's business.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from svetlana_core import models
from svetlana_core.errors import InputError
from svetlana_core.jobs.tasks import _TASKS
from svetlana_core.store import Project, utc_now

LOCK_DIR_ENV = "SVETLANA_LOCK_DIR"
#: A worker writes ``heartbeat_at`` at least this often (seconds), also while queued.
HEARTBEAT_S = 2.0
#: Seconds between two looks at the store for a cancel request.
POLL_S = 0.5


def lock_dir() -> Path:
    """The machine-wide folder of device lock files (``$SVETLANA_LOCK_DIR`` or a temp folder)."""
    folder = Path(os.environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / "svetlana-locks")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class _CancelFlag:
    """``is_set()`` for the tasks: a signal, or the run's ``cancel_requested`` column.

    Looks at the store at most every :data:`POLL_S` seconds, so a call between batches costs
    nothing measurable.
    """

    def __init__(self, project: Project, run_id: int) -> None:
        self.project = project
        self.run_id = run_id
        self._set = False
        self._polled = 0.0

    def set(self) -> None:
        self._set = True

    def is_set(self, fresh: bool = False) -> bool:
        """Whether to stop; ``fresh`` reads the store now instead of at most every POLL_S."""
        now = time.monotonic()
        if not self._set and (fresh or now - self._polled >= POLL_S):
            self._polled = now
            self._set = self.project.cancel_requested(self.run_id)
        return self._set


class _Heartbeat:
    """A thread that writes ``heartbeat_at`` every :data:`HEARTBEAT_S` seconds while it runs.

    A thread rather than a write between batches, so that a worker that spends minutes reading
    images or queueing for the device is not taken for dead. It is stopped and joined on exit
    (a thread alive at interpreter exit is what aborts processes that use torch).
    """

    def __init__(self, project: Project, run_id: int) -> None:
        self.project = project
        self.run_id = run_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="svetlana-heartbeat")

    def _beat(self) -> None:
        while True:
            try:
                self.project.update_run(self.run_id, heartbeat_at=utc_now())
            except Exception:  # a busy or vanished store must not kill the training
                pass
            if self._stop.wait(HEARTBEAT_S):
                return

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def _lock_name(device: Any) -> str:
    name = str(device)
    if name == "cuda":
        name = "cuda:0"
    return re.sub(r"[^A-Za-z0-9_-]", "", name.replace(":", "")) or "device"


@contextlib.contextmanager
def _device_lock(device: Any, flag: _CancelFlag) -> Iterator[bool]:
    """Hold the machine-wide lock of ``device``; yields False when cancelled while waiting."""
    path = lock_dir() / f"{_lock_name(device)}.lock"
    with open(path, "a+") as handle:
        while True:
            # Cancelled while queued (also SIGTERM when the submitting process exits): never
            # start, even if the device has just become free.
            if flag.is_set():
                yield False
                return
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                time.sleep(0.2)
                continue
            if flag.is_set(fresh=True):  # a cancel that came while the device was busy
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
                yield False
                return
            break
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _run_job(project_dir: str, run_id: int) -> None:
    """Entry point of the worker process: queue, work, record the outcome."""
    project = Project.open(project_dir)
    flag = _CancelFlag(project, run_id)
    # Stop gracefully (save the model, status "stopped") on SIGTERM from shutdown_workers and
    # on Ctrl-C, which a terminal sends to the whole process group.
    signal.signal(signal.SIGTERM, lambda *_: flag.set())
    signal.signal(signal.SIGINT, lambda *_: flag.set())
    with _Heartbeat(project, run_id):
        _run(project, run_id, flag)


def _run(project: Project, run_id: int, flag: _CancelFlag) -> None:
    try:
        spec = project.run(run_id)["config"]
        kind = spec.get("kind", "cnn")
        work = _TASKS[kind]
        device = _job_device(spec)  # a bad config fails here, without queueing for the device
    except BaseException as error:  # before the lock: record and leave
        _record_failure(project, run_id, error)
        return
    with _device_lock(device, flag) as acquired:
        if not acquired:
            project.update_run(run_id, status="stopped", finished_at=utc_now(),
                               error=None, device=device)
            return
        project.update_run(run_id, status="running", pid=os.getpid(), device=device,
                           started_at=utc_now(), heartbeat_at=utc_now())
        try:
            outcome = work(project, run_id, spec, flag)
            summary = dict(project.run(run_id)["summary"] or {})
            summary.update(outcome["summary"])
            fields = {"model_dir": outcome["model_dir"]} if outcome["model_dir"] else {}
            project.update_run(run_id, status=outcome["status"], summary=summary,
                               error=outcome.get("error"), finished_at=utc_now(),
                               heartbeat_at=utc_now(), **fields)
        except BaseException as error:  # anything: the run must not stay "running"
            _record_failure(project, run_id, error)


def _job_device(spec: dict[str, Any]) -> str:
    """The device a run's task will use, resolved (``"cpu"``, ``"cuda:0"``, ...)."""
    kind = spec.get("kind", "cnn")
    if kind == "predict":  # ONNX Runtime on the CPU: no torch imported to say so
        return models.prediction_device(spec.get("device", "auto"))
    if kind == "cnn":
        from svetlana_core import training

        return str(models.resolve_device(training.TrainConfig.from_dict(spec["config"]).device))
    return "cpu"  # the random forest


def _record_failure(project: Project, run_id: int, error: BaseException) -> None:
    message = str(error) if isinstance(error, InputError) else \
        f"{type(error).__name__}: {error}"
    project.update_run(run_id, status="failed", error=message, finished_at=utc_now())
