"""The ``annotations`` log: who gave which object which class, and the labels CSV exchange.

The log is append-only. Every click is a new row; the current class of an object is its row
with the highest id (``NULL`` class = removed), and an undo appends a row that names the row
it undoes, so the history of every object survives. :class:`_Annotations` is one of the
mixins :class:`svetlana_core.store.Project` is built from.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from svetlana_core import io
from svetlana_core.errors import InputError, listing
from svetlana_core.store.schema import _CURRENT_SQL, _IMAGE_IDS_SQL
from svetlana_core.values import rgb
from svetlana_core.store.values import (
    _author,
    _class_name,
    _frame,
    _index,
    _positive_label,
    _source,
    utc_now,
)

# A row belongs to its image's current mask (segmentation); ``action`` groups the rows of one
# user action for undo (NULL: a row on its own).
_INSERT_SQL = (
    "INSERT INTO annotations (image_id, label, class_id, author, source, created_at, action,"
    " segmentation) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,"
    " (SELECT segmentation FROM images WHERE id = ?1))"
)


@dataclass(frozen=True)
class TrainingSet:
    """A project as :func:`svetlana_core.training.dataset_from_files` takes it.

    Attributes
    ----------
    files : dict
        image name -> (image path or None for mask-only, mask path).
    labels : DataFrame
        The current labels, ``image, label, class, ...``.
    classes : list of str
        Classes with at least one labelled object, in project order.
    axes : dict
        image name -> axes of the image file, or None.
    """

    files: dict[str, tuple[str | None, str]]
    labels: pd.DataFrame
    classes: list[str]
    axes: dict[str, str | None]


class _Annotations:
    """Labelling objects, reading the current labels and their history (a mixin of ``Project``)."""

    __slots__ = ()

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
                _INSERT_SQL, (image_id, label, class_id, author, source, utc_now(), None)
            ).lastrowid

    def annotate_many(
        self,
        rows: Iterable[tuple[str | int, int, str | None]],
        author: str = "",
        source: str = "manual",
        one_action: bool = False,
    ) -> int:
        """Set the class of many objects in one transaction (all or nothing).

        Parameters
        ----------
        rows : iterable of (image, label, class_name), or DataFrame
            As for :meth:`annotate` (a DataFrame needs columns ``image``, ``label``,
            ``class``); later rows win over earlier rows for the same object.
        author, source : str
            As for :meth:`annotate`, for every row.
        one_action : bool, default False
            The rows are one user action (a rectangle, a selection on the object map):
            :meth:`undo_last` takes them back together.

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
            records = self._annotation_records(conn, rows)
            action = None
            if one_action and records:  # the action is named after its first row's id
                action = (conn.execute("SELECT COALESCE(MAX(id), 0) FROM annotations")
                          .fetchone()[0] + 1)
            self._insert_annotations(conn, records, author, source, action)
            return len(records)

    def _annotation_records(
        self, conn: sqlite3.Connection, rows: Iterable[Any]
    ) -> list[tuple[int, int, int | None]]:
        """``(image id, label, class id)`` of each row, checked against images and classes."""
        names = dict(conn.execute(_IMAGE_IDS_SQL).fetchall())
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
            else:
                image_id = _index(image) if _index(image) in ids else None
            if image_id is None:
                raise InputError(
                    f"rows item {position}: no image {image!r} in project {self.folder}"
                )
            label = _positive_label(label, f"rows item {position}: label")
            class_id = None
            if class_name is not None:
                class_id = classes.get(_class_name(class_name, f"rows item {position}: class"))
                if class_id is None:
                    raise InputError(
                        f"rows item {position}: no class named {class_name!r} in project "
                        f"{self.folder}; add it first"
                    )
            records.append((image_id, label, class_id))
        return records

    @staticmethod
    def _insert_annotations(
        conn: sqlite3.Connection,
        records: Iterable[tuple[int, int, int | None]],
        author: str,
        source: str,
        action: int | None = None,
    ) -> None:
        now = utc_now()
        conn.executemany(_INSERT_SQL,
                         ((*record, author, source, now, action) for record in records))

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
                sql = _CURRENT_SQL.format(where="WHERE a0.image_id = ?")
                parameters = (self._image_id(conn, image),)
            cursor = conn.execute(sql + " ORDER BY i.name, a.label", parameters)
            return _frame(cursor, {"label": "int64"})

    def training_set(self) -> TrainingSet:
        """What a training reads from the project: files, current labels, class order, axes.

        The classes are those of :meth:`classes` that have a labelled object, in the project's
        order (which sets the class indices of a model).

        Raises
        ------
        InputError
            If no object of the project is labelled.
        """
        labels = self.labels()
        if labels.empty:
            raise InputError(f"project {self.folder} has no labelled objects to train on")
        present = set(labels["class"])
        classes = [c for c in self.classes()["name"] if c in present]
        files, axes = self.training_files()
        return TrainingSet(files, labels, classes, axes)

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
                where, parameters = "WHERE a.image_id = ?", (self._image_id(conn, image),)
            # With MAX(), SQLite takes the bare column class_id from the row holding the
            # maximum; the covering index answers it without reading the table.
            cursor = conn.execute(
                f"""SELECT c.name AS class, COUNT(current.id) AS n
                FROM classes AS c
                LEFT JOIN (SELECT MAX(a.id) AS id, a.class_id AS class_id FROM annotations AS a
                           JOIN images AS i ON i.id = a.image_id
                                AND a.segmentation = i.segmentation
                                AND i.removed_at IS NULL {where}
                           GROUP BY a.image_id, a.label) AS current
                ON current.class_id = c.id
                GROUP BY c.id ORDER BY c.position, c.id""",
                parameters,
            )
            return _frame(cursor, {"n": "int64"})

    def label_version(self, image: str | int) -> int:
        """A number that changes whenever a label of ``image`` changes: the highest annotation
        id of the image (0 when none), for pages that poll for colleagues' labels.

        One query on the ``annotations_object`` index (image id first), no table read.
        """
        with self._read() as conn:
            return conn.execute(
                "SELECT COALESCE(MAX(id), 0) FROM annotations WHERE image_id = ?",
                (self._image_id(conn, image),)).fetchone()[0]

    def undo_last(
        self, author: str = "", image: str | int | None = None, skip: Iterable[int] = ()
    ) -> tuple[str, int, str | None] | None:
        """Undo ``author``'s most recent action that is not undone yet.

        An action is one annotation, or the rows stored together as one (a rectangle, a
        selection on the object map: ``annotate_many(..., one_action=True)``), which are undone
        together. Each object gets back the class it had just before (None if it had none)
        through a new row, so the history is kept. Calling it again undoes the author's
        previous action, and so on. Only the image's current mask counts.

        Parameters
        ----------
        author : str
            Whose action to undo.
        image : str or int, optional
            Only consider annotations of this image.
        skip : iterable of int
            Annotation ids to pass over: the ``rows`` of an :class:`UndoConflict` already shown
            to the user, so that the next undo takes back the action before it.

        Returns
        -------
        tuple of (str, int, str or None) or None
            ``(image name, label, restored class)`` of the action's first object, or None when
            there is nothing to undo.

        Raises
        ------
        UndoConflict
            If someone else has changed one of those objects since (naming who, to which
            class and when); nothing is undone then, the colleague's label stays.
        """
        author = _author(author)
        skip = sorted({int(row) for row in skip})
        with self._write() as conn:
            target = self._undo_target(conn, author, image, skip)
            if target is None:
                return None
            rows = [target[:4]]
            if target[4] is not None:  # every row of the action that is not undone yet
                rows = conn.execute(
                    """SELECT a.id, a.image_id, a.label, a.source FROM annotations AS a
                    WHERE a.action = ? AND a.author = ? AND a.undoes IS NULL
                      AND NOT EXISTS (SELECT 1 FROM annotations AS u WHERE u.undoes = a.id)
                    ORDER BY a.id""", (target[4], author)).fetchall()
            names = dict(conn.execute("SELECT id, name FROM images").fetchall())
            for row_id, image_id, label, _ in rows:
                _refuse_if_changed_by_others(conn, [row[0] for row in rows], row_id, image_id,
                                             label, author, names[image_id])
            action = rows[0][0] if len(rows) > 1 else None
            restored = [self._undo_row(conn, row, author, action) for row in rows]
            image_id, label, class_name = restored[0]
            return names[image_id], label, class_name

    @staticmethod
    def _undo_row(conn: sqlite3.Connection, row: tuple[int, int, int, str], author: str,
                  action: int | None) -> tuple[int, int, str | None]:
        """Give one object back the class it had before row ``row``; (image id, label, class)."""
        row_id, image_id, label, source = row
        previous = conn.execute(
            "SELECT class_id, source FROM annotations WHERE image_id = ? AND label = ? AND id < ?"
            " AND segmentation = (SELECT segmentation FROM annotations WHERE id = ?)"
            " ORDER BY id DESC LIMIT 1",
            (image_id, label, row_id, row_id),
        ).fetchone()
        class_id, source = previous if previous is not None else (None, source)
        conn.execute(
            "INSERT INTO annotations (image_id, label, class_id, author, source, created_at,"
            " undoes, action, segmentation) SELECT ?, ?, ?, ?, ?, ?, ?, ?, segmentation"
            " FROM annotations WHERE id = ?",
            (image_id, label, class_id, author, source, utc_now(), row_id, action, row_id),
        )
        if class_id is None:
            return image_id, label, None
        return image_id, label, conn.execute(
            "SELECT name FROM classes WHERE id = ?", (class_id,)).fetchone()[0]

    def _undo_target(
        self, conn: sqlite3.Connection, author: str, image: str | int | None,
        skip: list[int],
    ) -> tuple[int, int, int, str, int | None] | None:
        """``(row id, image id, label, source, action)`` of the author's latest row not undone
        yet and not in ``skip``, on its image's current mask."""
        where, parameters = "", [author]
        if image is not None:
            where = "AND a.image_id = ?"
            parameters.append(self._image_id(conn, image))
        if skip:
            where += f" AND a.id NOT IN ({', '.join('?' * len(skip))})"
            parameters += skip
        return conn.execute(
            f"""SELECT a.id, a.image_id, a.label, a.source, a.action FROM annotations AS a
            JOIN images AS i ON i.id = a.image_id AND a.segmentation = i.segmentation
                 AND i.removed_at IS NULL
            WHERE a.author = ? AND a.undoes IS NULL {where}
              AND NOT EXISTS (SELECT 1 FROM annotations AS u WHERE u.undoes = a.id)
            ORDER BY a.id DESC LIMIT 1""",
            parameters,
        ).fetchone()

    def history(self, image: str | int, label: int) -> pd.DataFrame:
        """Every annotation of one object of the image's current mask, oldest first.

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
                WHERE a.image_id = ? AND a.label = ?
                  AND a.segmentation = (SELECT segmentation FROM images WHERE id = ?)
                ORDER BY a.id""",
                (image_id, label, image_id),
            )
            return _frame(cursor, {"id": "int64", "undoes": "Int64"})

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
        return self.import_labels(io.read_labels_csv(path), origin=f"labels file {path}",
                                  source=source, author=author, images=images)

    def import_labels(
        self,
        table: pd.DataFrame,
        *,
        origin: str,
        source: str = "import",
        author: str = "",
        images: Iterable[Any] | None = None,
    ) -> int:
        """Store a labels table ``image, label, class`` in one transaction (all or nothing).

        The table is what :func:`svetlana_core.io.read_labels_csv` returns (or a QuPath
        GeoJSON or napari-svetlana import gives): labels are positive int64, each object has
        one class. Classes that do not exist yet are created (in alphabetical order).

        Parameters
        ----------
        table : DataFrame
            ``image`` (project image names), ``label``, ``class``; extra columns ignored.
        origin : str
            What the labels come from, for messages (``"labels file x.csv"``).
        source, author, images
            As :meth:`import_labels_csv`.

        Returns
        -------
        int
            How many objects were given a label (the rows of `table`).

        Raises
        ------
        InputError
            Unknown image names or too many classes, naming `origin`. The project is
            unchanged then.
        """
        author, source = _author(author), _source(source)
        table = table[["image", "label", "class"]]
        with self._write() as conn:
            if images is not None:
                self._add_images(conn, images)
            names = dict(conn.execute(_IMAGE_IDS_SQL).fetchall())
            image_ids = table["image"].map(names)
            unknown = sorted(table.loc[image_ids.isna(), "image"].unique())
            if unknown:
                raise InputError(
                    f"{origin} names {len(unknown)} images that are not in the "
                    f"project: {listing(unknown)}"
                )
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
        io.write_csv(path, table)
        return len(table)

    def export_labels_geojson(self, folder: str | os.PathLike[str]) -> int:
        """Write the current labels as QuPath GeoJSON, one file per labelled image.

        ``<folder>/<image stem>.geojson`` holds one detection per labelled object: its outline
        from the mask, its class with the project's colour (:mod:`svetlana_core.io.geojson`).
        One mask is in memory at a time.

        Returns
        -------
        int
            The number of objects written.
        """
        from svetlana_core.io import geojson

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        labels = self.labels()[["image", "label", "class"]]
        colours = dict(self.classes()[["name", "colour"]].values)
        masks = dict(self.images()[["name", "mask_path"]].values)
        for name, table in labels.groupby("image", sort=True):
            collection = geojson.mask_to_features(
                io.read_mask(masks[name]), table, {k: rgb(c) for k, c in colours.items()},
                image=name)
            geojson.write_geojson(folder / f"{io.image_stem(name)}.geojson", collection)
        return len(labels)


class UndoConflict(InputError):
    """An undo that would overwrite a colleague's later change of the same object.

    Attributes
    ----------
    image : str
    label : int
        The first object of the action that someone else changed since.
    changes : list of (author, class or None, time)
        The later rows of that object by others, oldest first.
    rows : tuple of int
        The annotation ids of the action: pass them to ``undo_last(skip=...)`` to take back
        the action before it instead.
    """

    def __init__(self, message: str, image: str, label: int,
                 changes: list[tuple[str, str | None, str]], rows: tuple[int, ...]) -> None:
        super().__init__(message)
        self.image, self.label, self.changes, self.rows = image, label, changes, rows


def _refuse_if_changed_by_others(
    conn: sqlite3.Connection, rows: list[int], row_id: int, image_id: int, label: int,
    author: str, name: str,
) -> None:
    """Raise :class:`UndoConflict` when anyone but ``author`` annotated the object after row
    ``row_id`` of the action made of ``rows``."""
    changes = conn.execute(
        "SELECT a.author, c.name, a.created_at FROM annotations AS a"
        " LEFT JOIN classes AS c ON c.id = a.class_id"
        " WHERE a.image_id = ? AND a.label = ? AND a.id > ? AND a.author != ? ORDER BY a.id",
        (image_id, label, row_id, author),
    ).fetchall()
    if not changes:
        return
    who, class_name, time = changes[-1]
    what = "removed its label" if class_name is None else f"set it to {class_name!r}"
    names = listing(list(dict.fromkeys(row[0] or "(anonymous)" for row in changes)))
    raise UndoConflict(
        f"cannot undo the label of object {label} in image {name}: {names} changed it since"
        f" ({who or '(anonymous)'} {what} at {time[:19].replace('T', ' ')} UTC); that label"
        " is kept", name, label, changes, tuple(rows))
