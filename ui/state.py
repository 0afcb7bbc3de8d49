"""Data roots, safe paths and the current project/image of a browser session.

The store on disk is the source of truth; session state holds only ids, names and widget
values (STYLE.md habit 12). The current project and image are mirrored in the URL query
(``?project=…&image=…``) so a reload or a shared link lands on the same place.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import unquote

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
#: The cookie that keeps the typed name across reloads and visits (this browser only: a name
#: in the URL would label a colleague's clicks who opened a shared link).
AUTHOR_COOKIE = "svetlana_author"
#: Session-state key of the model this tab picked (a model folder), the ``?model=`` of links.
MODEL_KEY = "predict_model"
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
    for key in ("image", MODEL_KEY):  # both belong to the project left
        st.session_state.pop(key, None)
    if name:
        st.query_params["project"] = name
    else:
        st.query_params.pop("project", None)
    for key in ("image", "model"):
        st.query_params.pop(key, None)


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


def place() -> dict[str, str]:
    """Where this tab is, as the query parameters of a link: ``project``, ``image`` and, when
    the tab picked a model of its own, ``model`` (the model folder's name).

    Streamlit's page links drop the query, so every link carries these and a reload or a
    shared link lands on the same project, image and model.
    """
    where = {"project": st.session_state.get("project"), "image": st.session_state.get("image")}
    model = st.session_state.get(MODEL_KEY)
    # a linked model not yet opened by a model picker stays in the links until one opens it
    where["model"] = Path(model).name if model else st.query_params.get("model")
    return {key: str(value) for key, value in where.items() if value}


def keep_place_in_url() -> None:
    """Write :func:`place` into the URL when it differs (a page reached by a link that lost
    the query, or a choice made in this run), so a reload restores it."""
    for key, value in place().items():
        if st.query_params.get(key) != value:
            st.query_params[key] = value


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
    if AUTHOR_NAME_KEY not in st.session_state:  # a new session: the name of the last visit
        remembered = st.context.cookies.get(AUTHOR_COOKIE)
        # (a test harness without a browser answers with a stand-in object, not a string)
        remembered = unquote(remembered) if isinstance(remembered, str) else ""
        st.session_state[AUTHOR_NAME_KEY] = remembered.strip()[:100]
    st.session_state[AUTHOR_KEY] = st.session_state.get(AUTHOR_NAME_KEY, "")
    st.text_input("Your name (recorded with labels)", key=AUTHOR_KEY, on_change=_keep_name,
                  max_chars=100, help="Recorded with every label you make; this browser "
                                      "remembers it.")
    if st.session_state.pop("_author_changed", False):
        _remember_name(st.session_state[AUTHOR_KEY])


def _keep_name() -> None:
    st.session_state[AUTHOR_NAME_KEY] = st.session_state[AUTHOR_KEY]
    st.session_state["_author_changed"] = True


def _remember_name(name: str) -> None:
    """Store the name in a cookie of this browser (a year), read back by the next session.

    Streamlit reads cookies (``st.context.cookies``) but cannot set them: a line of
    JavaScript does. The name goes in as a JSON string with ``<`` escaped, so a name cannot
    close the script.
    """
    value = json.dumps(name.strip()).replace("<", "\\u003c")
    st.html(f"<script>document.cookie = '{AUTHOR_COOKIE}=' + encodeURIComponent({value}) + "
            "'; path=/; max-age=31536000; SameSite=Strict';</script>",
            unsafe_allow_javascript=True)


def int_param(name: str, default: int) -> int:
    """The integer in query parameter ``name`` (``?run=12``), or ``default`` when it is missing
    or is not a plain integer (a link typed or cut by hand: ``?run=abc``, ``?run=1e3``)."""
    text = str(st.query_params.get(name, "")).strip()
    return int(text) if text.isdigit() and len(text) < 19 else default
