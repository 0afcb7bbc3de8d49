"""Connections to a project database: WAL, busy timeout, one idle keeper per database."""

from __future__ import annotations

import os
import atexit
import sqlite3
import threading

DB_NAME = "project.sqlite"
BUSY_TIMEOUT_S = 10.0
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
