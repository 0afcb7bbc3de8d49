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
* **Timestamps** are ISO-8601 UTC strings with microseconds (``2024-05-01T12:00:00.123456+00:00``);
  they sort as text, so tables keep them as strings.
* **Schema versions** live in ``PRAGMA user_version``. :data:`_MIGRATIONS` lists the statements
  that take the schema from version *i* to *i + 1*; opening a project applies the missing ones in
  one transaction. Later features append a migration; they never edit an old one.

Only the standard library ``sqlite3`` and pandas are used (no torch, no streamlit).
"""

from __future__ import annotations

import json
import math
import operator
import os
import sqlite3
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
import pandas as pd
from svetlana_core import io
from svetlana_core.errors import InputError, listing
from svetlana_core.store.connection import BUSY_TIMEOUT_S, DB_NAME, SYNCHRONOUS, _keep_open, _keepers, _keepers_lock
from svetlana_core.store.values import MAX_CLASSES, PALETTE, RUN_STATUSES, _author, _class_name, _colour, _frame, _positive_label, _source, _to_json, utc_now
from svetlana_core.store.schema import SCHEMA_VERSION, _CURRENT_SQL, _MIGRATIONS, _RUN_COLUMNS, _RUN_JSON, _RUN_UPDATABLE

class Project:
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

    # ------------------------------------------------------------------ opening

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

    def _initialise(self) -> None:
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

    def _uri(self, create: bool = False) -> str:
        mode = "rwc" if create else "rw"  # only create() may make a database file
        return f"file:{urllib.parse.quote(str(self.db_path))}?mode={mode}"

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
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all or nothing, the write lock taken at BEGIN."""
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:  # SQLite may have rolled back already (disk full, ...)
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: a consistent snapshot across its statements."""
        conn = self._connect()
        try:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")
        finally:
            conn.close()

    # ------------------------------------------------------------------ images

    def add_image(
        self,
        image_path: str | os.PathLike[str] | None,
        mask_path: str | os.PathLike[str],
        axes: str | None = None,
        well: str | None = None,
        name: str | None = None,
    ) -> int:
        """Register an image and its mask; only the paths are stored, no pixel is read.

        Parameters
        ----------
        image_path : str, path-like or None
            The raw image, or None for a mask-only data set (3D EM masks without the volume).
        mask_path : str or path-like
            The instance mask (integer labels, 0 = background).
        axes : str, optional
            Axis order of the image file (e.g. ``"YXC"``), for :func:`svetlana_core.io.read_image`.
        well : str, optional
            Plate well, e.g. ``"A01"``.
        name : str, optional
            The image's name in the project and in label CSVs. Defaults to the file name of
            ``image_path`` (of ``mask_path`` when there is no image).

        Returns
        -------
        int
            The image id. Registering the same name with the same paths again returns the
            existing id (``axes`` and ``well`` are updated when given).

        Raises
        ------
        InputError
            If the name is already registered with other paths.
        """
        with self._write() as conn:
            return self._add_image(conn, image_path, mask_path, axes, well, name)

    def add_images(self, pairs: Iterable[Any]) -> list[int]:
        """Register many images in one transaction (all or nothing).

        Parameters
        ----------
        pairs : iterable
            Each item is an :class:`svetlana_core.io.Pair` (``.image``, ``.mask``), a mapping
            with the keyword arguments of :meth:`add_image`, or a tuple
            ``(image_path, mask_path[, axes[, well[, name]]])``.

        Returns
        -------
        list of int
            The image ids, in the order of ``pairs``.
        """
        with self._write() as conn:
            return self._add_images(conn, pairs)

    def _add_images(self, conn: sqlite3.Connection, pairs: Iterable[Any]) -> list[int]:
        ids = []
        for position, pair in enumerate(pairs):
            if isinstance(pair, Mapping):
                arguments = dict(pair)
            elif hasattr(pair, "image") and hasattr(pair, "mask"):
                arguments = {"image_path": pair.image, "mask_path": pair.mask}
            elif isinstance(pair, (tuple, list)) and 2 <= len(pair) <= 5:
                keys = ("image_path", "mask_path", "axes", "well", "name")
                arguments = dict(zip(keys, pair))
            else:
                raise InputError(
                    f"pairs item {position} must be a Pair, a mapping or a tuple "
                    f"(image_path, mask_path, ...); got {pair!r}"
                )
            try:
                ids.append(self._add_image(conn, **arguments))
            except TypeError as error:
                raise InputError(f"pairs item {position}: {error}") from None
        return ids

    def _add_image(
        self,
        conn: sqlite3.Connection,
        image_path: str | os.PathLike[str] | None,
        mask_path: str | os.PathLike[str],
        axes: str | None = None,
        well: str | None = None,
        name: str | None = None,
    ) -> int:
        if mask_path is None:
            raise InputError(f"mask_path is required (image {image_path})")
        path = None if image_path is None else os.path.abspath(os.fspath(image_path))
        mask = os.path.abspath(os.fspath(mask_path))
        if name is None:
            name = Path(path if path is not None else mask).name
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"image name must be a non-empty string, got {name!r}")
        name = name.strip()
        for what, value in (("axes", axes), ("well", well)):
            if value is not None and not isinstance(value, str):
                raise InputError(f"{what} of image {name} must be a string, got {value!r}")
        row = conn.execute(
            "SELECT id, path, mask_path FROM images WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            return conn.execute(
                "INSERT INTO images (name, path, mask_path, axes, well, added_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (name, path, mask, axes, well, utc_now()),
            ).lastrowid
        image_id, old_path, old_mask = row
        if (old_path, old_mask) != (path, mask):
            raise InputError(
                f"image {name} is already in the project with image {old_path} and mask "
                f"{old_mask}, not image {path} and mask {mask}; give it another name"
            )
        conn.execute(
            "UPDATE images SET axes = coalesce(?, axes), well = coalesce(?, well) WHERE id = ?",
            (axes, well, image_id),
        )
        return image_id

    def images(self) -> pd.DataFrame:
        """All registered images, sorted by id.

        Returns
        -------
        pandas.DataFrame
            Columns ``id``, ``name``, ``path`` (None for mask-only images), ``mask_path``,
            ``axes``, ``well``; one row per image.
        """
        with self._read() as conn:
            cursor = conn.execute(
                "SELECT id, name, path, mask_path, axes, well FROM images ORDER BY id"
            )
            return _frame(cursor, {"id": "int64"})

    def training_files(self) -> tuple[dict[str, tuple[str | None, str]], dict[str, str | None]]:
        """The project as training and evaluation read it: files and axes by image name.

        Returns
        -------
        files : dict
            ``{image name: (image path or None for mask-only, mask path)}``.
        axes : dict
            ``{image name: axes of the image file or None}``.
        """
        images = self.images()
        files, axes = {}, {}
        for row in images.itertuples(index=False):
            path = None if row.path is None or pd.isna(row.path) else str(row.path)
            files[str(row.name)] = (path, str(row.mask_path))
            axes[str(row.name)] = None if row.axes is None or pd.isna(row.axes) else str(row.axes)
        return files, axes

    def image_id(self, image: str | int) -> int:
        """The id of an image given by name or id.

        Raises
        ------
        InputError
            If there is no such image in the project.
        """
        with self._read() as conn:
            return self._image_id(conn, image)

    def _image_id(self, conn: sqlite3.Connection, image: str | int) -> int:
        if isinstance(image, str):
            row = conn.execute("SELECT id FROM images WHERE name = ?", (image.strip(),)).fetchone()
            if row is None:
                raise InputError(f"no image named {image!r} in project {self.folder}")
            return row[0]
        if isinstance(image, bool):
            raise InputError(f"image must be a name or an integer id, got {image!r}")
        try:
            image_id = operator.index(image)
        except TypeError:
            raise InputError(f"image must be a name or an integer id, got {image!r}") from None
        if conn.execute("SELECT 1 FROM images WHERE id = ?", (image_id,)).fetchone() is None:
            raise InputError(f"no image with id {image_id} in project {self.folder}")
        return image_id

    # ------------------------------------------------------------------ classes

    def add_class(self, name: str, colour: str | None = None) -> int:
        """Add a class (or return the id of the class of that name).

        Parameters
        ----------
        name : str
            Class name; surrounding white space is stripped. Commas and quotes are fine.
        colour : str, optional
            ``"#rrggbb"``. Defaults to the first colour of :data:`PALETTE` no class uses yet.
            For an existing class a given colour replaces the old one.

        Returns
        -------
        int
            The class id.

        Raises
        ------
        InputError
            For an empty name, a malformed colour, or a 21st class (:data:`MAX_CLASSES`).
        """
        name = _class_name(name)
        colour = None if colour is None else _colour(colour)
        with self._write() as conn:
            class_id = self._add_classes(conn, [name], f"class {name!r}")[name]
            if colour is not None:
                conn.execute("UPDATE classes SET colour = ? WHERE id = ?", (colour, class_id))
            return class_id

    def _add_classes(
        self, conn: sqlite3.Connection, names: list[str], origin: str
    ) -> dict[str, int]:
        """Ids of ``names`` (stripped, unique), creating the missing ones with palette colours."""
        existing = dict(conn.execute("SELECT name, id FROM classes").fetchall())
        missing = [name for name in names if name not in existing]
        if not missing:
            return {name: existing[name] for name in names}
        if len(existing) + len(missing) > MAX_CLASSES:
            raise InputError(
                f"{origin} would make {len(existing) + len(missing)} classes "
                f"({listing(missing)} are new); a project holds at most {MAX_CLASSES}"
            )
        used = {row[0] for row in conn.execute("SELECT colour FROM classes")}
        free = iter([colour for colour in PALETTE if colour not in used] + list(PALETTE))
        position = conn.execute("SELECT coalesce(MAX(position), -1) FROM classes").fetchone()[0]
        for offset, name in enumerate(missing, start=1):
            existing[name] = conn.execute(
                "INSERT INTO classes (name, colour, position) VALUES (?, ?, ?)",
                (name, next(free), position + offset),
            ).lastrowid
        return {name: existing[name] for name in names}

    def set_class(self, name: str, new_name: str | None = None, colour: str | None = None) -> None:
        """Rename a class and/or change its colour; annotations follow the rename.

        Raises
        ------
        InputError
            If the class does not exist, ``new_name`` is taken or empty, or ``colour`` is
            malformed.
        """
        with self._write() as conn:
            class_id = self._class_id(conn, name)
            if new_name is not None:
                new_name = _class_name(new_name, "new_name")
                taken = conn.execute(
                    "SELECT id FROM classes WHERE name = ? AND id != ?", (new_name, class_id)
                ).fetchone()
                if taken is not None:
                    raise InputError(f"cannot rename class {name!r}: {new_name!r} already exists")
                conn.execute("UPDATE classes SET name = ? WHERE id = ?", (new_name, class_id))
            if colour is not None:
                colour = _colour(colour)
                conn.execute("UPDATE classes SET colour = ? WHERE id = ?", (colour, class_id))

    def classes(self) -> pd.DataFrame:
        """All classes in display order.

        Returns
        -------
        pandas.DataFrame
            Columns ``id``, ``name``, ``colour`` (``"#rrggbb"``), ``position``.
        """
        with self._read() as conn:
            cursor = conn.execute(
                "SELECT id, name, colour, position FROM classes ORDER BY position, id"
            )
            return _frame(cursor, {"id": "int64", "position": "int64"})

    def remove_class(self, name: str) -> None:
        """Delete a class that no annotation has ever used.

        The annotation log is append-only, so a class that appears in it (even only in the
        history of relabelled objects) stays; rename it with :meth:`set_class` instead.

        Raises
        ------
        InputError
            If the class does not exist or annotations use it (the message says how many).
        """
        with self._write() as conn:
            class_id = self._class_id(conn, name)
            used = conn.execute(
                "SELECT COUNT(*) FROM annotations WHERE class_id = ?", (class_id,)
            ).fetchone()[0]
            if used:
                current = conn.execute(
                    "SELECT COUNT(*) FROM (SELECT MAX(id), class_id FROM annotations"
                    " GROUP BY image_id, label) WHERE class_id = ?",
                    (class_id,),
                ).fetchone()[0]
                raise InputError(
                    f"cannot remove class {name!r}: {used} annotations use it ({current} objects "
                    "are labelled with it now); relabel them, or rename the class instead"
                )
            conn.execute("DELETE FROM classes WHERE id = ?", (class_id,))

    def _class_id(self, conn: sqlite3.Connection, name: str) -> int:
        name = _class_name(name)
        row = conn.execute("SELECT id FROM classes WHERE name = ?", (name,)).fetchone()
        if row is None:
            known = [row[0] for row in conn.execute("SELECT name FROM classes ORDER BY position")]
            raise InputError(
                f"no class named {name!r} in project {self.folder} "
                f"(classes: {', '.join(map(repr, known)) or 'none yet'}); add it first"
            )
        return row[0]

    # ------------------------------------------------------------------ annotations

    def annotate(
        self,
        image: str | int,
        label: int,
        class_name: str | None,
        author: str = "",
        source: str = "manual",
    ) -> int:
        """Set the class of one object; committed (and durable) when this returns.

        Parameters
        ----------
        image : str or int
            Image name or id.
        label : int
            The object's label in the mask (positive).
        class_name : str or None
            An existing class, or None to remove the object's label.
        author : str
            Who did it.
        source : {"manual", "correction", "import", "guided"}
            How the label was made.

        Returns
        -------
        int
            The id of the new annotation row.

        Raises
        ------
        InputError
            For an unknown image or class (classes are never created here), a label that is
            not a positive integer, or an unknown source.
        """
        label = _positive_label(label)
        author, source = _author(author), _source(source)
        with self._write() as conn:
            image_id = self._image_id(conn, image)
            class_id = None if class_name is None else self._class_id(conn, class_name)
            return conn.execute(
                "INSERT INTO annotations (image_id, label, class_id, author, source, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (image_id, label, class_id, author, source, utc_now()),
            ).lastrowid

    def annotate_many(
        self,
        rows: Iterable[tuple[str | int, int, str | None]],
        author: str = "",
        source: str = "manual",
    ) -> int:
        """Set the class of many objects in one transaction (all or nothing).

        Parameters
        ----------
        rows : iterable of (image, label, class_name), or DataFrame
            As for :meth:`annotate` (a DataFrame needs columns ``image``, ``label``,
            ``class``); later rows win over earlier rows for the same object.
        author, source : str
            As for :meth:`annotate`, for every row.

        Returns
        -------
        int
            The number of rows written.
        """
        author, source = _author(author), _source(source)
        if isinstance(rows, pd.DataFrame):
            # Iterating a DataFrame yields its column names, not its rows.
            missing = [column for column in ("image", "label", "class") if column not in rows]
            if missing:
                raise InputError(f"rows lacks column(s) {', '.join(missing)}")
            rows = rows[["image", "label", "class"]].itertuples(index=False, name=None)
        with self._write() as conn:
            names = dict(conn.execute("SELECT name, id FROM images").fetchall())
            ids = set(names.values())
            classes = dict(conn.execute("SELECT name, id FROM classes").fetchall())
            records = []
            for position, row in enumerate(rows):
                try:
                    image, label, class_name = row
                except (TypeError, ValueError):
                    raise InputError(
                        f"rows item {position} must be (image, label, class), got {row!r}"
                    ) from None
                if isinstance(image, str):
                    image_id = names.get(image.strip())
                elif hasattr(image, "__index__") and not isinstance(image, bool):
                    image_id = operator.index(image) if operator.index(image) in ids else None
                else:
                    image_id = None
                if image_id is None:
                    raise InputError(
                        f"rows item {position}: no image {image!r} in project {self.folder}"
                    )
                label = _positive_label(label, f"rows item {position}: label")
                if class_name is None:
                    class_id = None
                else:
                    class_id = classes.get(_class_name(class_name, f"rows item {position}: class"))
                    if class_id is None:
                        raise InputError(
                            f"rows item {position}: no class named {class_name!r} in project "
                            f"{self.folder}; add it first"
                        )
                records.append((image_id, label, class_id))
            self._insert_annotations(conn, records, author, source)
            return len(records)

    @staticmethod
    def _insert_annotations(
        conn: sqlite3.Connection,
        records: Iterable[tuple[int, int, int | None]],
        author: str,
        source: str,
    ) -> None:
        now = utc_now()
        conn.executemany(
            "INSERT INTO annotations (image_id, label, class_id, author, source, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            ((*record, author, source, now) for record in records),
        )

    def labels(self, image: str | int | None = None) -> pd.DataFrame:
        """The current class of every labelled object.

        Parameters
        ----------
        image : str or int, optional
            Restrict to one image.

        Returns
        -------
        pandas.DataFrame
            Columns ``image`` (name), ``label`` (int64), ``class``, ``author``, ``time``
            (ISO-8601 UTC), ``source``; one row per object whose latest annotation is not a
            removal, sorted by ``(image, label)``.
        """
        with self._read() as conn:
            if image is None:
                sql, parameters = _CURRENT_SQL.format(where=""), ()
            else:
                sql = _CURRENT_SQL.format(where="WHERE image_id = ?")
                parameters = (self._image_id(conn, image),)
            cursor = conn.execute(sql + " ORDER BY i.name, a.label", parameters)
            return _frame(cursor, {"label": "int64"})

    def label_counts(self, image: str | int | None = None) -> pd.DataFrame:
        """How many objects are labelled with each class now.

        Returns
        -------
        pandas.DataFrame
            Columns ``class``, ``n`` (int64); every class in display order, 0 for unused ones.
        """
        with self._read() as conn:
            if image is None:
                where, parameters = "", ()
            else:
                where, parameters = "WHERE image_id = ?", (self._image_id(conn, image),)
            # With MAX(), SQLite takes the bare column class_id from the row holding the
            # maximum; the covering index answers it without reading the table.
            cursor = conn.execute(
                f"""SELECT c.name AS class, COUNT(current.id) AS n
                FROM classes AS c
                LEFT JOIN (SELECT MAX(id) AS id, class_id FROM annotations {where}
                           GROUP BY image_id, label) AS current
                ON current.class_id = c.id
                GROUP BY c.id ORDER BY c.position, c.id""",
                parameters,
            )
            return _frame(cursor, {"n": "int64"})

    def undo_last(
        self, author: str = "", image: str | int | None = None
    ) -> tuple[str, int, str | None] | None:
        """Undo ``author``'s most recent annotation that is not undone yet.

        The object gets back the class it had just before that annotation (None if it had
        none) through a new row, so the history is kept. Calling it again undoes the
        author's previous annotation, and so on.

        Parameters
        ----------
        author : str
            Whose annotation to undo.
        image : str or int, optional
            Only consider annotations of this image.

        Returns
        -------
        tuple of (str, int, str or None) or None
            ``(image name, label, restored class)``, or None when there is nothing to undo.

        Raises
        ------
        InputError
            If someone else has changed that object since; nothing is undone then.
        """
        author = _author(author)
        with self._write() as conn:
            where, parameters = "", [author]
            if image is not None:
                where = "AND a.image_id = ?"
                parameters.append(self._image_id(conn, image))
            target = conn.execute(
                f"""SELECT a.id, a.image_id, a.label, a.source FROM annotations AS a
                WHERE a.author = ? AND a.undoes IS NULL {where}
                  AND NOT EXISTS (SELECT 1 FROM annotations AS u WHERE u.undoes = a.id)
                ORDER BY a.id DESC LIMIT 1""",
                parameters,
            ).fetchone()
            if target is None:
                return None
            row_id, image_id, label, source = target
            others = conn.execute(
                "SELECT DISTINCT author FROM annotations"
                " WHERE image_id = ? AND label = ? AND id > ? AND author != ?",
                (image_id, label, row_id, author),
            ).fetchall()
            name = conn.execute("SELECT name FROM images WHERE id = ?", (image_id,)).fetchone()[0]
            if others:
                raise InputError(
                    f"cannot undo the label of object {label} in image {name}: "
                    f"{listing([row[0] or '(anonymous)' for row in others])} changed it since"
                )
            previous = conn.execute(
                "SELECT class_id, source FROM annotations"
                " WHERE image_id = ? AND label = ? AND id < ? ORDER BY id DESC LIMIT 1",
                (image_id, label, row_id),
            ).fetchone()
            class_id, source = previous if previous is not None else (None, source)
            conn.execute(
                "INSERT INTO annotations"
                " (image_id, label, class_id, author, source, created_at, undoes)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (image_id, label, class_id, author, source, utc_now(), row_id),
            )
            if class_id is None:
                return name, label, None
            row = conn.execute("SELECT name FROM classes WHERE id = ?", (class_id,)).fetchone()
            return name, label, row[0]

    def history(self, image: str | int, label: int) -> pd.DataFrame:
        """Every annotation of one object, oldest first.

        Returns
        -------
        pandas.DataFrame
            Columns ``id``, ``class`` (None = removed), ``author``, ``time``, ``source``,
            ``undoes`` (the id of the row this one undid, else missing).
        """
        label = _positive_label(label)
        with self._read() as conn:
            image_id = self._image_id(conn, image)
            cursor = conn.execute(
                """SELECT a.id AS id, c.name AS class, a.author AS author, a.created_at AS time,
                          a.source AS source, a.undoes AS undoes
                FROM annotations AS a LEFT JOIN classes AS c ON c.id = a.class_id
                WHERE a.image_id = ? AND a.label = ? ORDER BY a.id""",
                (image_id, label),
            )
            return _frame(cursor, {"id": "int64", "undoes": "Int64"})

    # ------------------------------------------------------------------ CSV exchange

    def import_labels_csv(
        self,
        path: str | os.PathLike[str],
        source: str = "import",
        author: str = "",
        images: Iterable[Any] | None = None,
    ) -> int:
        """Import a labels CSV ``image,label,class`` in one transaction (all or nothing).

        ``image`` is an image name of the project, ``label`` a positive integer, ``class`` a
        class name; classes that do not exist yet are created (in alphabetical order). Extra
        columns are ignored, exact duplicate rows are collapsed, and every value is read as
        text, so classes named ``NA`` or ``None`` survive.

        Parameters
        ----------
        path : str or path-like
            The CSV file.
        source : str
            Recorded on every annotation row.
        author : str
            Recorded on every annotation row.
        images : iterable, optional
            Images to register first, as for :meth:`add_images`, in the same transaction: when
            the labels are refused, these images are not added either.

        Returns
        -------
        int
            The number of objects labelled.

        Raises
        ------
        InputError
            Naming the file, for a missing column, unknown image names, labels that are not
            positive integers, empty classes, the same object given two classes, or too many
            classes. The project is unchanged then.
        """
        path = Path(path)
        author, source = _author(author), _source(source)
        table = io.read_labels_csv(path)[["image", "label", "class"]]
        with self._write() as conn:
            if images is not None:
                self._add_images(conn, images)
            names = dict(conn.execute("SELECT name, id FROM images").fetchall())
            image_ids = table["image"].map(names)
            unknown = sorted(table.loc[image_ids.isna(), "image"].unique())
            if unknown:
                raise InputError(
                    f"labels file {path} names {len(unknown)} images that are not in the "
                    f"project: {listing(unknown)}"
                )
            origin = f"labels file {path}"
            classes = self._add_classes(conn, sorted(table["class"].unique()), origin)
            class_ids = table["class"].map(classes)
            records = zip(
                image_ids.astype("int64").tolist(),
                table["label"].tolist(),
                class_ids.astype("int64").tolist(),
            )
            self._insert_annotations(conn, records, author, source)
        return len(table)

    def export_labels_csv(self, path: str | os.PathLike[str]) -> int:
        """Write the current labels as CSV ``image,label,class``, sorted by image and label.

        The file is written next to its destination and moved into place, so a reader never
        sees half a file. Values are quoted where needed (class names may hold commas, quotes
        or new lines).

        Returns
        -------
        int
            The number of rows written.
        """
        path = Path(path)
        table = self.labels()[["image", "label", "class"]]
        path.parent.mkdir(parents=True, exist_ok=True)
        io.atomic_write(path, lambda handle: table.to_csv(
            handle, index=False, lineterminator="\n", encoding="utf-8"))
        return len(table)

    # ------------------------------------------------------------------ runs

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
            datetimes as ISO-8601.

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
        values = {}
        for key, value in fields.items():
            if key in _RUN_JSON and value is not None:
                value = _to_json(value, f"run {key}")
            elif isinstance(value, os.PathLike):
                value = os.fspath(value)
            elif isinstance(value, datetime):
                value = value.astimezone(timezone.utc).isoformat(timespec="microseconds")
            elif hasattr(value, "item") and not isinstance(value, str):
                value = value.item()  # numpy scalars: sqlite3 binds only Python numbers
            values[key] = value
        with self._write() as conn:
            run_id = self._run_id(conn, run_id)
            if values:
                assignments = ", ".join(f"{key} = ?" for key in values)
                conn.execute(
                    f"UPDATE runs SET {assignments} WHERE id = ?", (*values.values(), run_id)
                )

    def _run_id(self, conn: sqlite3.Connection, run_id: int) -> int:
        """``run_id`` as a Python int, checked to exist."""
        try:
            number = None if isinstance(run_id, bool) else operator.index(run_id)
        except TypeError:
            number = None
        if number is not None:
            row = conn.execute("SELECT 1 FROM runs WHERE id = ?", (number,)).fetchone()
        if number is None or row is None:
            raise InputError(f"no run with id {run_id!r} in project {self.folder}")
        return number

    def run(self, run_id: int) -> dict[str, Any]:
        """One run as a dict of its columns, with ``config`` and ``summary`` decoded from JSON."""
        with self._read() as conn:
            run_id = self._run_id(conn, run_id)
            cursor = conn.execute(
                f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs WHERE id = ?", (run_id,)
            )
            record = dict(zip(_RUN_COLUMNS, cursor.fetchone()))
        for key in _RUN_JSON:
            if record[key] is not None:
                record[key] = json.loads(record[key])
        return record

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
            return _frame(cursor, {"id": "int64", "pid": "Int64"})

    def add_epoch(self, run_id: int, epoch: int, metrics: Mapping[str, Any]) -> None:
        """Record (or replace) the metrics of one epoch of a run.

        Parameters
        ----------
        run_id, epoch : int
        metrics : mapping
            JSON-able values; nested dicts such as per-class recall ``{"recall": {"a": 0.9}}``
            are flattened by :meth:`epochs`.
        """
        if isinstance(epoch, bool):
            raise InputError(f"epoch must be an integer, got {epoch!r}")
        try:
            epoch = operator.index(epoch)
        except TypeError:
            raise InputError(f"epoch must be an integer, got {epoch!r}") from None
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

    # ------------------------------------------------------------------ predictions

    def save_predictions(
        self, model_dir: str | os.PathLike[str], image: str | int, table: pd.DataFrame
    ) -> int:
        """Replace the predictions of one model for one image, in one transaction.

        Parameters
        ----------
        model_dir : str or path-like
            The model that predicted (its folder; used as a key, as given).
        image : str or int
            Image name or id.
        table : pandas.DataFrame
            One row per object: ``label`` (positive, unique), ``class``, optional
            ``confidence``, and probabilities either as ``p_<class>`` columns or as a
            ``probabilities`` column of dicts.

        Returns
        -------
        int
            The number of rows stored.
        """
        missing = [column for column in ("label", "class") if column not in table]
        if missing:
            raise InputError(
                f"predictions table lacks column(s) {', '.join(missing)}; it has "
                f"{', '.join(map(str, table.columns))}"
            )
        labels = pd.to_numeric(table["label"], errors="coerce")
        if (labels.isna() | (labels % 1 != 0) | (labels <= 0)).any():
            raise InputError("predictions table: every label must be a positive integer")
        labels = labels.astype("int64")
        if labels.duplicated().any():
            repeated = sorted(labels[labels.duplicated()].unique().tolist())
            raise InputError(f"predictions table repeats label(s) {listing(repeated)}")
        confidence = (
            pd.to_numeric(table["confidence"], errors="coerce").astype("float64")
            if "confidence" in table
            else pd.Series(math.nan, index=table.index)
        )
        probability_columns = [column for column in table.columns if str(column).startswith("p_")]
        if "probabilities" in table:
            probabilities = [
                value if value is None or isinstance(value, str) else _to_json(value, "probability")
                for value in table["probabilities"]
            ]
        elif probability_columns:
            values = table[probability_columns].rename(columns=lambda column: str(column)[2:])
            records = values.to_dict("records")
            probabilities = [_to_json(record, "probabilities") for record in records]
        else:
            probabilities = [None] * len(table)
        classes = [None if pd.isna(value) else str(value) for value in table["class"]]
        now = utc_now()
        key = os.fspath(model_dir)
        with self._write() as conn:
            image_id = self._image_id(conn, image)
            conn.execute(
                "DELETE FROM predictions WHERE model_dir = ? AND image_id = ?", (key, image_id)
            )
            conn.executemany(
                "INSERT INTO predictions (model_dir, image_id, label, class, confidence,"
                " probabilities, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    (key, image_id, label, name, None if math.isnan(value) else value, p, now)
                    for label, name, value, p in zip(
                        labels.tolist(), classes, confidence.tolist(), probabilities
                    )
                ),
            )
        return len(table)

    def predictions(
        self, model_dir: str | os.PathLike[str], image: str | int | None = None
    ) -> pd.DataFrame:
        """Stored predictions of a model, sorted by image name and label.

        Returns
        -------
        pandas.DataFrame
            Columns ``image`` (name), ``label``, ``class``, ``confidence`` and one
            ``p_<class>`` column per stored probability.
        """
        key = os.fspath(model_dir)
        with self._read() as conn:
            where, parameters = "WHERE p.model_dir = ?", [key]
            if image is not None:
                where += " AND p.image_id = ?"
                parameters.append(self._image_id(conn, image))
            cursor = conn.execute(
                f"""SELECT i.name AS image, p.label AS label, p.class AS class,
                           p.confidence AS confidence, p.probabilities AS probabilities
                FROM predictions AS p JOIN images AS i ON i.id = p.image_id
                {where} ORDER BY i.name, p.label""",
                parameters,
            )
            frame = _frame(cursor, {"label": "int64", "confidence": "float64"})
        texts = frame.pop("probabilities")
        if texts.notna().any():
            records = [json.loads(text) if isinstance(text, str) else {} for text in texts]
            if all(isinstance(record, dict) for record in records):
                probabilities = pd.DataFrame(records, index=frame.index).add_prefix("p_")
                frame = pd.concat([frame, probabilities], axis=1)
            else:
                frame["probabilities"] = [
                    json.loads(text) if isinstance(text, str) else None for text in texts
                ]
        return frame
