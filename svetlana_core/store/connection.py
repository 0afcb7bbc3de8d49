"""Connections to a project database: WAL, busy timeout, one idle keeper per database."""

from __future__ import annotations

import os
import atexit
import sqlite3
import threading
import time
from pathlib import Path

from svetlana_core.errors import StorageError

DB_NAME = "project.sqlite"
BUSY_TIMEOUT_S = 10.0
#: How long a write waits in all for a database another program keeps locked (SQLite's own
#: busy timeout, retried), before it gives up and says so: a click's label is worth a wait.
LOCK_WAIT_S = 60.0
#: ``PRAGMA synchronous`` of every connection; see the module docstring for why not FULL.
SYNCHRONOUS = "NORMAL"


# One idle connection per database per process, opened lazily and never used for statements.
# When the last connection to a WAL database closes, SQLite checkpoints the WAL (two fsyncs) and
# deletes the -wal and -shm files, and the next connection recreates them: with a connection per
# call that happened on every call (annotate took 1.5 ms on an idle machine and 20-30 ms under
# disk load; with the keeper 0.25 ms). The keeper holds no transaction, so it blocks nobody.
_keepers: dict[str, sqlite3.Connection] = {}
_keepers_lock = threading.Lock()


def _keep_open(database: str) -> None:
    if database in _keepers:
        return
    with _keepers_lock:
        if database in _keepers:
            return
        keeper = sqlite3.connect(
            database, uri=True, check_same_thread=False, timeout=BUSY_TIMEOUT_S
        )
        try:
            keeper.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # opens the WAL
        except sqlite3.Error:
            keeper.close()
            raise
        _keepers[database] = keeper


def _close_keepers() -> None:
    with _keepers_lock:
        for keeper in _keepers.values():
            keeper.close()
        _keepers.clear()


def _forget_keepers_in_child() -> None:
    # SQLite forbids using (closing included) a connection in a process forked after it was
    # opened: the child keeps the inherited keepers out of its cache and out of atexit's reach.
    global _keepers, _keepers_lock
    _inherited_keepers.extend(_keepers.values())
    _keepers, _keepers_lock = {}, threading.Lock()


_inherited_keepers: list[sqlite3.Connection] = []
atexit.register(_close_keepers)
os.register_at_fork(after_in_child=_forget_keepers_in_child)


def _begin(conn: sqlite3.Connection, begin: str, path: Path) -> None:
    """Start a transaction, waiting up to :data:`LOCK_WAIT_S` for a lock held elsewhere.

    Each try waits :data:`BUSY_TIMEOUT_S` inside SQLite; a database locked longer (another
    program's long transaction, a backup tool) is tried again until the bound, then refused
    with one line: nothing was stored.
    """
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            conn.execute(begin)
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) and "busy" not in str(error):
                raise
            if time.monotonic() >= deadline:
                raise StorageError(
                    f"project database {path} is locked by another program (waited "
                    f"{LOCK_WAIT_S:.0f} s); nothing was stored: try again when it is done"
                ) from None


def database_error(error: sqlite3.Error, path: Path) -> StorageError:
    """One line for what SQLite said about the project database ``path``."""
    if isinstance(error, StorageError):
        return error
    text = str(error)
    if "locked" in text or "busy" in text:
        why = "is locked by another program; nothing was stored: try again when it is done"
    elif "malformed" in text or "not a database" in text or "corrupt" in text:
        why = (f"is damaged ({text}): restore project.sqlite and its -wal file from a backup; "
               "nothing was changed")
    elif "readonly" in text or "read-only" in text:
        why = "is read-only for this server: it can be read, nothing can be stored"
    elif "full" in text or "disk I/O" in text:
        why = f"could not be written ({text}): free some disk space; nothing was stored"
    else:
        why = f"failed: {text}"
    return StorageError(f"project database {path} {why}")
