"""Data roots, safe paths and the current project/image of a browser session.

The store on disk is the source of truth; session state holds only ids, names and widget
values (STYLE.md habit 12). The current project and image are mirrored in the URL query
(``?project=…&image=…``) so a reload or a shared link lands on the same place.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from svetlana_core.errors import InputError
from svetlana_core.store import Project

#: Environment variable with the data roots, separated by ``os.pathsep`` (":" on Linux).
DATA_ROOT_ENV = "SVETLANA_DATA_ROOT"
DEFAULT_DATA_ROOT = "./workspace"
PROJECTS_FOLDER = "projects"
DEMO_NAME = "demo"


def data_roots() -> list[Path]:
    """The folders the server may read from and write projects into (resolved, created)."""
    raw = os.environ.get(DATA_ROOT_ENV, DEFAULT_DATA_ROOT)
    roots = []
    for part in raw.split(os.pathsep):
        if part.strip():
            root = Path(part.strip()).expanduser().resolve()
            roots.append(root)
    if not roots:
        roots = [Path(DEFAULT_DATA_ROOT).resolve()]
    roots[0].mkdir(parents=True, exist_ok=True)
    return roots


def projects_dir() -> Path:
    """Where projects live: ``<first data root>/projects``."""
    folder = data_roots()[0] / PROJECTS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def resolve_inside_roots(path: str | Path, roots: list[Path] | None = None) -> Path:
    """Resolve a user-given path and refuse it unless it stays inside a data root.

    Relative paths are taken from the first root. ``..``, absolute paths elsewhere and
    symlinks that lead out of the roots are refused with :class:`InputError`.
    """
    roots = roots or data_roots()
    candidate = Path(path).expanduser()
    if not candidate.is_absolute():
        candidate = roots[0] / candidate
    resolved = candidate.resolve()
    for root in roots:
        if resolved == root or root in resolved.parents:
            return resolved
    shown = ", ".join(str(r) for r in roots)
    raise InputError(f"folder {path} is outside the data roots ({shown})")


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
    """Who is labelling: the logged-in user, a trusted proxy header, or the name typed in."""
    try:
        if getattr(st, "user", None) is not None and st.user.get("is_logged_in"):
            return str(st.user.get("email") or st.user.get("name") or "")
    except Exception:  # st.user raises when auth is not configured; then fall through
        pass
    header = os.environ.get("SVETLANA_USER_HEADER")
    if header:
        value = st.context.headers.get(header)
        if value:
            return value
    return st.session_state.get("author", "")
