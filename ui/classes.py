"""The class editor of the Project page: the edits of the classes table (``st.data_editor``)
and the colour pickers, applied to the project store."""

from __future__ import annotations

import re

import pandas as pd
import streamlit as st

from svetlana_core.errors import InputError
from svetlana_core.store import Project

MAX_CLASSES = 20
#: What the store takes as a colour (``Project.set_class``); the editor's column checks it too.
COLOUR_PATTERN = r"^#[0-9a-fA-F]{6}$"


def check_colours(classes: pd.DataFrame, changes: dict) -> None:
    """Refuse the editor's changes, before any is saved, when a colour is not ``#rrggbb``.

    Raises
    ------
    InputError
        Naming the class and the colour found (one line).

    Examples
    --------
    >>> classes = pd.DataFrame({"name": ["live"], "colour": ["#009e73"]})
    >>> check_colours(classes, {"edited_rows": {0: {"colour": "green"}}})
    Traceback (most recent call last):
    ...
    svetlana_core.errors.InputError: colour of class 'live' must be like #1f77b4, got 'green'
    """
    edits = [(classes.iloc[int(position)]["name"], edit.get("colour"))
             for position, edit in changes.get("edited_rows", {}).items()]
    edits += [((row.get("name") or "").strip(), row.get("colour"))
              for row in changes.get("added_rows", [])]
    for name, colour in edits:
        if colour and not re.match(COLOUR_PATTERN, str(colour).strip()):
            raise InputError(f"colour of class {name!r} must be like #1f77b4, got {colour!r}")


def apply_class_edits(project: Project, classes: pd.DataFrame, changes: dict) -> None:
    """Rename, recolour, add and remove classes as the data editor's ``changes`` say.

    Parameters
    ----------
    classes : DataFrame
        The table shown in the editor (``Project.classes()``), positions as the editor saw them.
    changes : dict
        ``st.session_state[<editor key>]``: ``edited_rows`` {position: {column: value}},
        ``added_rows`` [{column: value}], ``deleted_rows`` [position].
    """
    n_after = len(classes) - len(changes.get("deleted_rows", [])) + len(
        changes.get("added_rows", []))
    if n_after > MAX_CLASSES:
        raise InputError(f"a project has at most {MAX_CLASSES} classes, the table has {n_after}")
    check_colours(classes, changes)
    for position, edit in changes.get("edited_rows", {}).items():
        old = classes.iloc[int(position)]
        new_name = edit.get("name")
        project.set_class(old["name"], new_name=new_name if new_name != old["name"] else None,
                          colour=edit.get("colour") or None)
    for row in changes.get("added_rows", []):
        name = (row.get("name") or "").strip()
        if name:
            project.add_class(name, row.get("colour") or None)
    for position in changes.get("deleted_rows", []):
        project.remove_class(classes.iloc[int(position)]["name"])


def colour_pickers(project: Project, classes: pd.DataFrame, per_row: int = 5) -> None:
    """One colour picker per class; a colour picked is saved at once
    (``Project.set_class(name, colour=...)``) and the page is drawn again with it.

    A picker's key holds the stored colour, so a colour changed elsewhere (the table, another
    user) opens a fresh picker on it instead of one that keeps its old value.
    """
    if classes.empty:
        return
    columns = st.columns(min(per_row, len(classes)))
    for k, (name, colour) in enumerate(zip(classes["name"], classes["colour"])):
        picked = columns[k % len(columns)].color_picker(
            name, value=colour, key=f"class_colour_{name}_{colour}")
        if picked.lower() != colour.lower():
            try:
                project.set_class(name, colour=picked)
            except InputError as error:  # the class was removed or renamed meanwhile
                st.error(str(error))
                return
            st.rerun()
