"""The ``images`` table: which image and mask files a project holds, by name.

Only paths are stored, never pixels: a project points at the lab's files where they are.
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
from svetlana_core.store.values import _frame, _index, utc_now


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
        image_id = _index(image)
        if image_id is None:
            raise InputError(f"image must be a name or an integer id, got {image!r}")
        if conn.execute("SELECT 1 FROM images WHERE id = ?", (image_id,)).fetchone() is None:
            raise InputError(f"no image with id {image_id} in project {self.folder}")
        return image_id
