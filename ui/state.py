"""Data roots, safe paths and the current project/image of a browser session.

The store on disk is the source of truth; session state holds only ids, names and widget
values (STYLE.md habit 12). The current project and image are mirrored in the URL query
(``?project=…&image=…``) so a reload or a shared link lands on the same place.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from svetlana_core import store
from svetlana_core.errors import InputError
from svetlana_core.store import Project

# The data-root rules are the core's (svetlana_core.store.roots), so that the job API applies
# the same ones; pages keep reaching them through ui.state.
from svetlana_core.store import (  # noqa: F401
    DATA_ROOT_ENV,
    DEFAULT_DATA_ROOT,
    pairs_inside_roots,
    resolve_inside_roots,
)
from ui import auth

#: Environment variable naming the request header a trusted reverse proxy sets to the user.
USER_HEADER_ENV = "SVETLANA_USER_HEADER"
#: Session-state keys of the sidebar's name field and of the name kept across pages.
AUTHOR_KEY, AUTHOR_NAME_KEY = "author", "author_name"
PROJECTS_FOLDER = "projects"
DEMO_NAME = "demo"


def data_roots() -> list[Path]:
    """The folders the server may read from and write projects into (resolved, created).

    The rules live in :mod:`svetlana_core.store.roots`, so the job API applies the same ones.
    """
    return store.data_roots(create=True)


def projects_dir() -> Path:
    """Where projects live: ``<first data root>/projects``."""
    folder = data_roots()[0] / PROJECTS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def list_projects() -> list[str]:
    """Names of the projects under :func:`projects_dir`, sorted."""
    folder = projects_dir()
    return sorted(p.name for p in folder.iterdir() if (p / "project.sqlite").exists())


def valid_project_name(name: str) -> str:
    """A project name is one folder name: letters, digits, ``-``, ``_``, ``.`` and spaces."""
    name = name.strip()
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_. ")
    if not name or name.startswith(".") or set(name) - allowed:
        raise InputError(
            f"project name {name!r} must be letters, digits, spaces, '-', '_' or '.', "
            "and not start with '.'"
        )
    return name


def current_project_name() -> str | None:
    """The project chosen in this tab (URL query first, so reloads keep it)."""
    name = st.query_params.get("project") or st.session_state.get("project")
    if name and name in list_projects():
        st.session_state["project"] = name
        return name
    return None


def set_current_project(name: str | None) -> None:
    st.session_state["project"] = name
    st.session_state.pop("image", None)
    if name:
        st.query_params["project"] = name
    else:
        st.query_params.pop("project", None)
    st.query_params.pop("image", None)


def current_project() -> Project | None:
    """The open :class:`Project`, or None when none is chosen."""
    name = current_project_name()
    return Project.open(projects_dir() / name) if name else None


def current_image(project: Project) -> str | None:
    """Name of the image chosen in this tab (defaults to the project's first image)."""
    names = project.images()["name"].tolist()
    if not names:
        return None
    name = st.query_params.get("image") or st.session_state.get("image")
    if name not in names:
        name = names[0]
    st.session_state["image"] = name
    return name


def set_current_image(name: str) -> None:
    st.session_state["image"] = name
    st.query_params["image"] = name


def author() -> str:
    """Who is labelling, recorded with every label, run and prediction.

    In order: the user logged in with ``st.login`` (:mod:`ui.auth`); the value of the
    request header named by ``SVETLANA_USER_HEADER``, set by a trusted reverse proxy that
    authenticated the user (README: only behind that proxy, the server bound to
    127.0.0.1); the name typed in the sidebar (:func:`author_field`).
    """
    return identified_user() or st.session_state.get(AUTHOR_KEY, "").strip()


def identified_user() -> str:
    """The user the server vouches for (login or trusted proxy header); empty if none."""
    name = auth.user_name()
    if name:
        return name
    header = os.environ.get(USER_HEADER_ENV)
    if header:
        return (st.context.headers.get(header) or "").strip()
    return ""


def author_field() -> None:
    """The sidebar's "Your name" field, or who the server says you are.

    Every page draws the sidebar itself, and Streamlit drops a widget's value when the user
    changes page (``persist_state="session"`` brings it back, but only after the first run
    of the new page). So the name is kept under its own key, :data:`AUTHOR_NAME_KEY`, and
    handed to the widget at the start of every run.
    """
    who = identified_user()
    if who:
        st.caption(f"Labels are recorded as **{who}**")
        return
    st.session_state[AUTHOR_KEY] = st.session_state.get(AUTHOR_NAME_KEY, "")
    st.text_input("Your name (recorded with labels)", key=AUTHOR_KEY, on_change=_keep_name,
                  help="Recorded with every label you make.")


def _keep_name() -> None:
    st.session_state[AUTHOR_NAME_KEY] = st.session_state[AUTHOR_KEY]


def int_param(name: str, default: int) -> int:
    """The integer in query parameter ``name`` (``?run=12``), or ``default`` when it is missing
    or is not a plain integer (a link typed or cut by hand: ``?run=abc``, ``?run=1e3``)."""
    text = str(st.query_params.get(name, "")).strip()
    return int(text) if text.isdigit() and len(text) < 19 else default
