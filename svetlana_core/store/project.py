"""The :class:`Project`: opening and creating a project, its connections and migrations.

The package docstring (:mod:`svetlana_core.store`) says how the project is stored and why.

Design: one mixin per table group
---------------------------------
``Project`` is the one object callers use, but its methods are written one table group per
module, each a mixin class holding no state (``__slots__ = ()``):

* :mod:`~svetlana_core.store.images` — ``images``;
* :mod:`~svetlana_core.store.classes` — ``classes``;
* :mod:`~svetlana_core.store.annotations` — the annotation log and the labels CSV exchange;
* :mod:`~svetlana_core.store.runs` — ``runs`` and ``epochs``;
* :mod:`~svetlana_core.store.predictions` — ``predictions``.

This module keeps what they all stand on: the folder path (the only state), creating and
opening, the per-call connections (:meth:`Project._read`, :meth:`Project._write`) and the
schema migration. Mixins rather than one repository object per table so that the public API
stays ``project.annotate(...)``, and so that a transaction can span table groups (an import
registers images, creates classes and appends annotations in one ``_write``): a mixin method
calls its siblings' ``_image_id`` or ``_add_classes`` on the same connection.
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from svetlana_core.errors import InputError, StorageError
from svetlana_core.store.annotations import _Annotations
from svetlana_core.store.classes import _Classes
from svetlana_core.store.current_model import _CurrentModel
from svetlana_core.store.connection import (
    BUSY_TIMEOUT_S,
    DB_NAME,
    SYNCHRONOUS,
    _begin,
    _keep_open,
    _keepers,
    _keepers_lock,
    database_error,
)
from svetlana_core.store.images import _Images
from svetlana_core.store.masks import _Masks
from svetlana_core.store.predictions import _Predictions
from svetlana_core.store.runs import _Runs
from svetlana_core.store.schema import _MIGRATIONS, SCHEMA_VERSION


class Project(_Images, _Classes, _Annotations, _Runs, _Predictions, _Masks, _CurrentModel):
    """A Svetlana project: a folder with ``project.sqlite``, ``models/`` and ``outputs/``.

    Create one with :meth:`create`, :meth:`open` or :meth:`open_or_create`. The object holds
    only the folder path, so it can be shared between threads and sent to worker processes;
    every method opens its own short-lived connection and runs in one transaction.

    Images and classes are named by the user; methods that take ``image`` accept either the
    image name (the file name, the key of the labels CSV) or its integer id.

    Examples
    --------
    >>> import tempfile
    >>> project = Project.create(tempfile.mkdtemp())
    >>> image = project.add_image("images/A01.png", "masks/A01.tif")
    >>> project.add_class("mitotic")
    1
    >>> project.annotate("A01.png", 7, "mitotic")
    1
    >>> project.labels()[["image", "label", "class"]].to_dict("records")
    [{'image': 'A01.png', 'label': 7, 'class': 'mitotic'}]
    """

    __slots__ = ("_folder",)

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        # Use the class methods: this only records the path and checks nothing.
        self._folder = Path(folder).expanduser().absolute()

    def __repr__(self) -> str:
        return f"Project({str(self._folder)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Project) and other._folder == self._folder

    def __hash__(self) -> int:
        return hash(self._folder)

    def __getstate__(self) -> str:
        return str(self._folder)

    def __setstate__(self, state: str) -> None:
        self._folder = Path(state)

    @classmethod
    def create(cls, folder: str | os.PathLike[str], exist_ok: bool = False) -> Project:
        """Create a project in ``folder`` (made if missing; may already hold other files).

        Parameters
        ----------
        folder : str or path-like
            Where the project lives.
        exist_ok : bool
            If ``folder`` is already a project, open it instead of raising.

        Returns
        -------
        Project

        Raises
        ------
        InputError
            If ``folder`` is already a project and ``exist_ok`` is false, or is a file.
        """
        project = cls(folder)
        if project.db_path.exists() and not exist_ok:
            raise InputError(f"folder {project.folder} is already a Svetlana project")
        if project.folder.exists() and not project.folder.is_dir():
            raise InputError(f"cannot create a project in {project.folder}: it is a file")
        project.folder.mkdir(parents=True, exist_ok=True)
        project._initialise()
        return project

    @classmethod
    def open(cls, folder: str | os.PathLike[str]) -> Project:
        """Open the existing project in ``folder``, upgrading its schema if it is older.

        Raises
        ------
        InputError
            If ``folder`` holds no ``project.sqlite``, the file is not a database, or it was
            written by a newer version of Svetlana.
        """
        project = cls(folder)
        if not project.db_path.is_file():
            raise InputError(f"folder {project.folder} is not a Svetlana project (no {DB_NAME})")
        project._initialise()
        return project

    @classmethod
    def open_or_create(cls, folder: str | os.PathLike[str]) -> Project:
        """Open the project in ``folder``, creating it first if needed."""
        return cls.create(folder, exist_ok=True)

    @property
    def folder(self) -> Path:
        """The project folder (absolute)."""
        return self._folder

    @property
    def db_path(self) -> Path:
        """The SQLite database, ``<folder>/project.sqlite``."""
        return self._folder / DB_NAME

    @property
    def models_dir(self) -> Path:
        """Where trained models are saved, ``<folder>/models``."""
        return self._folder / "models"

    @property
    def outputs_dir(self) -> Path:
        """Where exports and class maps are written, ``<folder>/outputs``."""
        return self._folder / "outputs"

    @property
    def schema_version(self) -> int:
        """The schema version of the database (``PRAGMA user_version``)."""
        with self._read() as conn:
            return conn.execute("PRAGMA user_version").fetchone()[0]

    def close(self) -> None:
        """Close this process's idle connection to the database.

        Not needed in normal use (it is closed at exit). Call it before copying the project
        folder with file tools: while any connection is open, recent transactions may sit in
        ``project.sqlite-wal`` rather than in ``project.sqlite``.
        """
        with _keepers_lock:
            keeper = _keepers.pop(self._uri(), None)
        if keeper is not None:
            keeper.close()

    @property
    def read_only(self) -> bool:
        """Whether this process cannot write the project (a read-only folder, disk or file):
        it is then opened for reading only, and every write says so in one line."""
        return not os.access(self._folder, os.W_OK) or (
            self.db_path.exists() and not os.access(self.db_path, os.W_OK))

    def _initialise(self) -> None:
        if self.read_only:
            self._check_read_only()
            return
        self.models_dir.mkdir(exist_ok=True)
        self.outputs_dir.mkdir(exist_ok=True)
        try:
            conn = self._connect(create=True)
        except sqlite3.DatabaseError as error:
            raise InputError(f"cannot open project database {self.db_path}: {error}") from None
        try:
            # WAL is a property of the file: set once, every later connection uses it.
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            # Opening an up-to-date project (every page run does) takes no write lock.
            if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    self._migrate(conn)
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        except sqlite3.DatabaseError as error:
            raise InputError(f"cannot open project database {self.db_path}: {error}") from None
        finally:
            conn.close()
        try:
            _keep_open(self._uri())
        except sqlite3.DatabaseError as error:
            raise InputError(f"cannot open project database {self.db_path}: {error}") from None

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Apply the migrations the database lacks (inside the caller's transaction)."""
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise InputError(
                f"project {self.folder} has schema version {version}, newer than this "
                f"Svetlana understands ({SCHEMA_VERSION}); upgrade Svetlana"
            )
        for statements in _MIGRATIONS[version:]:
            for statement in statements:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _check_read_only(self) -> None:
        """Open a project that cannot be written: it must exist and be up to date."""
        if not self.db_path.is_file():
            raise StorageError(f"cannot create project {self.folder}: the folder is read-only")
        with self._read() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION:
            raise StorageError(f"project {self.folder} is read-only and has schema version "
                               f"{version}: it must be opened once where it can be written to "
                               f"be upgraded to {SCHEMA_VERSION}")

    def _uri(self, create: bool = False) -> str:
        path = urllib.parse.quote(str(self.db_path))
        if not create and self.read_only:
            # WAL needs to write its -shm file even to read: a project nobody can write (a
            # read-only share, an archive) is read as immutable instead, which needs none.
            return f"file:{path}?mode=ro&immutable=1"
        mode = "rwc" if create else "rw"  # only create() may make a database file
        return f"file:{path}?mode={mode}"

    def _connect(self, create: bool = False) -> sqlite3.Connection:
        try:
            if not create:
                _keep_open(self._uri())  # a dict look-up once the keeper exists
            # isolation_level=None: no implicit transactions; we issue BEGIN/COMMIT ourselves.
            conn = sqlite3.connect(
                self._uri(create), uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None
            )
        except sqlite3.OperationalError as error:  # e.g. the folder was deleted meanwhile
            raise InputError(f"cannot open project database {self.db_path}: {error}") from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute(f"PRAGMA synchronous = {SYNCHRONOUS}")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as error:
            conn.close()
            raise database_error(error, self.db_path) from None
        except BaseException:
            conn.close()
            raise
        return conn

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        """One write transaction: all or nothing, the write lock taken at BEGIN."""
        return self._transaction("BEGIN IMMEDIATE")

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        """One read transaction: a consistent snapshot across its statements."""
        return self._transaction("BEGIN")

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        conn = self._connect()
        try:
            _begin(conn, begin, self.db_path)
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:  # SQLite may have rolled back already (disk full, ...)
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as error:
            raise database_error(error, self.db_path) from None
        finally:
            conn.close()
