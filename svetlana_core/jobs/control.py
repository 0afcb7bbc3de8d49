"""What a worker and its submitter share: the lock folder, the heartbeat and the cancel flag."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
import re
import threading
import time
from collections.abc import Iterator
from typing import Any
from svetlana_core.store import Project, utc_now
import tempfile
import fcntl


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
    """``is_set()`` for :func:`svetlana_core.training.train`: a signal or a cancel request.

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
            summary = self.project.run(self.run_id)["summary"] or {}
            self._set = bool(summary.get("cancel_requested"))
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


class _Cancelled(Exception):
    """Raised from a progress callback to abandon work that has no stop event."""
