"""The project on disk: one folder, one SQLite database, model files beside it.

A project is a folder holding

* ``project.sqlite`` — images, classes, the annotation log, training runs, epoch metrics and
  per-object predictions;
* ``models/`` — one sub-folder per trained model (weights + ``model.json``);
* ``outputs/`` — class maps, tables and other exports.

Storage choices, and why
------------------------
* **A new connection per public call.** ``sqlite3`` connections must not cross threads or
  processes, and Streamlit runs every script run in a thread of its own while jobs run in spawned
  processes. A :class:`Project` therefore holds only its folder path (it pickles, and it can be
  shared by every thread); each public method opens a connection, does its work in one
  transaction and closes it. Opening a connection costs ~0.1 ms. One idle "keeper" connection
  per database and process stays open, so that closing the per-call connection is never the
  last close, which would checkpoint the WAL with two ``fsync`` calls and delete it: with the
  keeper ``annotate`` takes ~0.25 ms, without it 1.5 ms on an idle disk and 20-30 ms on a busy
  one. :meth:`Project.close` closes the keeper (before copying the folder with file tools).
* **WAL journal, ``busy_timeout`` of 10 s, ``BEGIN IMMEDIATE`` for every write.** Readers never
  block the writer and never see half a write; writers queue behind each other instead of failing.
  Taking the write lock at ``BEGIN`` (not on the first write) avoids the ``SQLITE_BUSY`` that a
  deferred read-then-write transaction gets when another process committed in between, which
  the busy timeout cannot resolve.
* **``synchronous=NORMAL``.** In WAL mode a commit appends the transaction to the ``-wal`` file
  with ``write()`` before ``COMMIT`` returns; only the ``fsync`` is deferred to the next
  checkpoint. Once :meth:`Project.annotate` has returned, the annotation is therefore in the
  operating system's page cache and survives a crash or ``SIGKILL`` of the writing process (a test
  kills a writer and checks). What ``NORMAL`` can lose is the last few transactions on a power
  cut or kernel panic — never a corrupt database. ``FULL`` would close that gap at the price of an
  ``fsync`` per click (milliseconds on a local SSD, tens of milliseconds on a busy or network
  disk); for a log of mouse clicks that the user sees on screen the trade is not worth it.
  (WAL needs the project on a local disk anyway: SQLite's WAL does not work over NFS/SMB.)
* **Append-only annotation log.** Every click is a new row; the current class of an object is its
  row with the highest id (``NULL`` class = removed). Undo appends a row too, so the history of
  every object survives, including who changed what and when.
* **Writes from outside a run's worker are single conditional statements** (a cancel request,
  marking a dead worker's run failed), so they never undo what the worker wrote meanwhile
  (:mod:`svetlana_core.store.runs`).
* **Timestamps** are ISO-8601 UTC strings with microseconds (``2024-05-01T12:00:00.123456+00:00``);
  they sort as text, so tables keep them as strings.
* **Schema versions** live in ``PRAGMA user_version``. :data:`svetlana_core.store.schema._MIGRATIONS` lists the statements
  that take the schema from version *i* to *i + 1*; opening a project applies the missing ones in
  one transaction. Later features append a migration; they never edit an old one.

:class:`Project` is assembled from one mixin per table group (``images``, ``classes``,
``annotations``, ``runs``, ``predictions`` modules); :mod:`svetlana_core.store.project` says why.
:mod:`svetlana_core.store.roots` holds the data-root rules (which folders a server may read).

Only the standard library ``sqlite3`` and pandas are used (no torch, no streamlit).
"""

from svetlana_core.store.connection import BUSY_TIMEOUT_S, DB_NAME, SYNCHRONOUS
from svetlana_core.store.schema import SCHEMA_VERSION
from svetlana_core.store.values import MAX_CLASSES, PALETTE, RUN_STATUSES, SOURCES, utc_now
from svetlana_core.store.project import Project
from svetlana_core.store.roots import DATA_ROOT_ENV, DEFAULT_DATA_ROOT, Roots, check_files_inside_roots, configured_roots, data_roots, is_inside_roots, pairs_inside_roots, resolve_inside_roots
from svetlana_core.store.annotations import TrainingSet

__all__ = [
    'BUSY_TIMEOUT_S',
    'DATA_ROOT_ENV',
    'DB_NAME',
    'DEFAULT_DATA_ROOT',
    'MAX_CLASSES',
    'PALETTE',
    'Project',
    'RUN_STATUSES',
    'Roots',
    'SCHEMA_VERSION',
    'SOURCES',
    'SYNCHRONOUS',
    'TrainingSet',
    'check_files_inside_roots',
    'configured_roots',
    'data_roots',
    'is_inside_roots',
    'pairs_inside_roots',
    'resolve_inside_roots',
    'utc_now',
]
