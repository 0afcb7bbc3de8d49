"""Apply the edits of the classes table (``st.data_editor``) to the project store."""

from __future__ import annotations

import pandas as pd

from svetlana_core.errors import InputError
from svetlana_core.store import Project

MAX_CLASSES = 20


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
