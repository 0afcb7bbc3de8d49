"""Checks and conversions of the values stored in a project."""

from __future__ import annotations

import json
import operator
import os
import re
import sqlite3
from collections.abc import Mapping
from datetime import date, datetime, timezone
from typing import Any
import pandas as pd
from svetlana_core.errors import InputError
from svetlana_core.values import PALETTE  # the default class colours, re-exported

MAX_CLASSES = 20

SOURCES: tuple[str, ...] = ("manual", "correction", "import", "guided", "bulk", "transfer")
RUN_STATUSES: tuple[str, ...] = ("queued", "running", "done", "failed", "stopped")

_COLOUR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


def utc_now() -> str:
    """Return the current time as an ISO-8601 UTC string with microseconds.

    Returns
    -------
    str
        For example ``"2024-05-01T12:00:00.123456+00:00"``; such strings sort in time order.
    """
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays, paths and dates appear in configs and metrics; everything else
    # is a caller error reported by json.dumps as TypeError.
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _to_json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, default=_json_default)
    except (TypeError, ValueError) as error:
        raise InputError(f"{what} cannot be stored as JSON: {error}") from None


def _index(value: Any) -> int | None:
    """``value`` as a Python int if it is an integer (numpy ones too) and not a bool, else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _positive_label(label: Any, what: str = "label") -> int:
    value = _index(label)
    if value is None:
        raise InputError(f"{what} must be a positive integer, got {label!r}")
    if value <= 0:
        raise InputError(f"{what} must be a positive integer, got {value}")
    return value


def _class_name(name: Any, what: str = "class name") -> str:
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"{what} must be a non-empty string, got {name!r}")
    return name.strip()


def _colour(colour: Any) -> str:
    if not isinstance(colour, str) or not _COLOUR_RE.match(colour.strip()):
        raise InputError(f"colour must be a hex colour like '#1f77b4', got {colour!r}")
    return colour.strip().lower()


def _source(source: Any) -> str:
    if source not in SOURCES:
        raise InputError(f"source must be one of {', '.join(SOURCES)}; got {source!r}")
    return source


def _author(author: Any) -> str:
    if author is None:
        return ""
    if not isinstance(author, str):
        raise InputError(f"author must be a string, got {author!r}")
    return author.strip()


def _frame(cursor: sqlite3.Cursor, dtypes: Mapping[str, str] | None = None) -> pd.DataFrame:
    columns = [description[0] for description in cursor.description]
    frame = pd.DataFrame(cursor.fetchall(), columns=columns)
    if dtypes:
        frame = frame.astype({name: dtype for name, dtype in dtypes.items() if name in frame})
    return frame
