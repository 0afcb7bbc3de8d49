"""The ``classes`` table: the classes of a project, their colours and display order.

At most :data:`~svetlana_core.store.MAX_CLASSES` classes; new ones take the first free colour
of :data:`~svetlana_core.store.PALETTE`. :class:`_Classes` is one of the mixins
:class:`svetlana_core.store.Project` is built from.
"""

from __future__ import annotations

import sqlite3

import pandas as pd

from svetlana_core.errors import InputError, listing
from svetlana_core.store.values import MAX_CLASSES, PALETTE, _class_name, _colour, _frame


class _Classes:
    """Adding, renaming, recolouring and removing classes (a mixin of ``Project``)."""

    __slots__ = ()

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
