"""The ``images`` table: which image and mask files a project holds, by name.

Only paths are stored, never pixels: a project points at the lab's files where they are.

Removing an image (:meth:`_Images.remove_image`) keeps its row, labels, predictions and masks
and marks it removed (who, when; ``image_removals`` logs it): every reader leaves it out, and
:meth:`_Images.image_id` refuses it, naming who removed it. Adding the same image and mask
files again (or :meth:`_Images.restore_image`) brings it back with its labels; adding other
files under its name gives the name to them, and the removed image keeps its history under
``"<name> (removed, id <id>)"``.
:class:`_Images` is one of the mixins :class:`svetlana_core.store.Project` is built from; its
methods run on the connections of :meth:`Project._read` and :meth:`Project._write`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from svetlana_core import io
from svetlana_core.errors import InputError
from svetlana_core.store.schema import _CURRENT_SQL
from svetlana_core.store.values import _author, _frame, _index, utc_now


class _Images:
    """Registering images and looking them up by name or id (a mixin of ``Project``)."""

    __slots__ = ()

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
            existing id (``axes`` and ``well`` are updated when given), and brings back a
            removed image with its labels.

        Raises
        ------
        InputError
            If the name is already in the project with other paths (a removed image gives
            its name up instead: see the module docstring).
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

    def _add_image(self, conn: sqlite3.Connection, image_path: Any, mask_path: Any,
                   axes: Any = None, well: Any = None, name: Any = None) -> int:
        """:meth:`add_image` on ``conn``; the arguments are checked here (they may come from
        a mapping or a tuple of :meth:`add_images`)."""
        if mask_path is None:
            raise InputError(f"mask_path is required (image {image_path})")
        path = None if image_path is None else os.path.abspath(os.fspath(image_path))
        mask = os.path.abspath(os.fspath(mask_path))
        if name is None:
            name = io.image_name(path if path is not None else mask)
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"image name must be a non-empty string, got {name!r}")
        name = name.strip()
        for what, value in (("axes", axes), ("well", well)):
            if value is not None and not isinstance(value, str):
                raise InputError(f"{what} of image {name} must be a string, got {value!r}")
        row = conn.execute(
            "SELECT id, path, mask_path, removed_at FROM images WHERE name = ?", (name,)
        ).fetchone()
        if row is not None and row[3] is not None and (row[1], row[2]) != (path, mask):
            # Other files under a removed image's name: the new files are another image (its
            # objects are others), so the old one keeps its labels under a name of its own.
            conn.execute("UPDATE images SET name = ? WHERE id = ?",
                         (_removed_name(name, row[0]), row[0]))
            row = None
        if row is None:
            return conn.execute(
                "INSERT INTO images (name, path, mask_path, axes, well, added_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (name, path, mask, axes, well, utc_now()),
            ).lastrowid
        image_id, old_path, old_mask, removed_at = row
        if removed_at is not None:
            self._restore(conn, image_id)
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
        """The images of the project (removed ones left out), sorted by id.

        Returns
        -------
        pandas.DataFrame
            Columns ``id``, ``name``, ``path`` (None for mask-only images), ``mask_path``,
            ``axes``, ``well``; one row per image.
        """
        with self._read() as conn:
            cursor = conn.execute(
                "SELECT id, name, path, mask_path, axes, well FROM images"
                " WHERE removed_at IS NULL ORDER BY id"
            )
            return _frame(cursor, {"id": "int64"})

    def remove_image(self, image: str | int, author: str = "") -> int:
        """Take an image out of the project; its labels stay in the history.

        Nothing is deleted and no file is touched: the image is marked removed (who, when) and
        every reader leaves it out. Adding the same files again, or :meth:`restore_image`,
        brings it back with its labels.

        Parameters
        ----------
        image : str or int
            Image name or id.
        author : str
            Who removed it.

        Returns
        -------
        int
            How many labelled objects it had (kept in the history).

        Raises
        ------
        InputError
            For an unknown or already removed image.
        """
        author = _author(author)
        with self._write() as conn:
            image_id = self._image_id(conn, image)
            labelled = len(conn.execute(_CURRENT_SQL.format(where="WHERE a0.image_id = ?"),
                                        (image_id,)).fetchall())
            now = utc_now()
            conn.execute("UPDATE images SET removed_at = ?, removed_by = ? WHERE id = ?",
                         (now, author, image_id))
            conn.execute("INSERT INTO image_removals (image_id, name, removed_at, removed_by)"
                         " SELECT id, name, ?, ? FROM images WHERE id = ?",
                         (now, author, image_id))
            return labelled

    def restore_image(self, image: str | int) -> int:
        """Bring a removed image back, with its labels.

        Parameters
        ----------
        image : str or int
            The removed image's name (as :meth:`removed_images` lists it) or id.

        Returns
        -------
        int
            Its id.

        Raises
        ------
        InputError
            If there is no such removed image, or its image or mask file is gone.
        """
        with self._write() as conn:
            image_id = self._image_id(conn, image, removed=True)
            removed_at, path, mask = conn.execute(
                "SELECT removed_at, path, mask_path FROM images WHERE id = ?",
                (image_id,)).fetchone()
            if removed_at is None:
                raise InputError(f"image {image!r} is in project {self.folder}: it was not "
                                 "removed")
            # Its uploaded files may have been removed since: an image without files would
            # fail on every page instead of here.
            for gone in (p for p in (path, mask) if p is not None and not os.path.exists(p)):
                raise InputError(f"cannot bring image {image!r} back: its file {gone} no "
                                 "longer exists")
            self._restore(conn, image_id)
            return image_id

    @staticmethod
    def _restore(conn: sqlite3.Connection, image_id: int) -> None:
        conn.execute("UPDATE images SET removed_at = NULL, removed_by = NULL WHERE id = ?",
                     (image_id,))
        conn.execute("UPDATE image_removals SET restored_at = ? WHERE image_id = ?"
                     " AND restored_at IS NULL", (utc_now(), image_id))

    def removed_images(self) -> pd.DataFrame:
        """The images removed from the project, most recently removed first.

        Returns
        -------
        pandas.DataFrame
            Columns ``id``, ``name``, ``path``, ``mask_path``, ``removed_at`` (ISO-8601 UTC),
            ``removed_by``.
        """
        with self._read() as conn:
            cursor = conn.execute(
                "SELECT id, name, path, mask_path, removed_at, removed_by FROM images"
                " WHERE removed_at IS NOT NULL ORDER BY removed_at DESC, id")
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

    def _image_id(self, conn: sqlite3.Connection, image: str | int,
                  removed: bool = False) -> int:
        """The id of `image`; a removed image is refused (naming who removed it and when)
        unless `removed`."""
        if isinstance(image, str):
            row = conn.execute("SELECT id, removed_at, removed_by FROM images WHERE name = ?",
                               (image.strip(),)).fetchone()
            if row is None:
                raise InputError(f"no image named {image!r} in project {self.folder}")
        else:
            image_id = _index(image)
            if image_id is None:
                raise InputError(f"image must be a name or an integer id, got {image!r}")
            row = conn.execute("SELECT id, removed_at, removed_by FROM images WHERE id = ?",
                               (image_id,)).fetchone()
            if row is None:
                raise InputError(f"no image with id {image_id} in project {self.folder}")
        image_id, removed_at, removed_by = row
        if removed_at is not None and not removed:
            raise InputError(
                f"image {image!r} was removed from project {self.folder} by "
                f"{removed_by or '(anonymous)'} at {removed_at[:19].replace('T', ' ')} UTC; "
                "add its files again to bring it back with its labels")
        return image_id


def _removed_name(name: str, image_id: int) -> str:
    """The name a removed image takes when other files are added under its name."""
    return f"{name} (removed, id {image_id})"
