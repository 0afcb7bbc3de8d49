"""The one exception type for bad user input.

Every function of :mod:`svetlana_core` that reads a file or takes a user value raises
:class:`InputError` when the input is wrong, with a message that names the file or the argument
and says what was found. The CLI turns it into exit code 2 and one line on stderr; the app shows
it as an error box. Anything else that escapes is a bug.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


class InputError(ValueError):
    """Bad user input: the message names the file or value and what is wrong with it."""


def listing(items: list, limit: int = 5) -> str:
    """The first ``limit`` items of a message, then how many more: ``"a, b, c and 7 more"``."""
    shown = ", ".join(str(item) for item in items[:limit])
    more = len(items) - limit
    return f"{shown} and {more} more" if more > 0 else shown


def byte_size(n_bytes: int) -> str:
    """A size for a message, in decimal units: ``1.8 GB``, ``2.05 kB``, ``130 bytes``."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.3g} {unit}"
    return f"{n_bytes} bytes"


def preview(values: Iterable[Any], limit: int = 5) -> str:
    """The first ``limit`` values as a Python list, and how many more: ``"[1, 2] (and 3 more)"``."""
    values = list(values)
    shown = [v.item() if hasattr(v, "item") and hasattr(v, "dtype") else v for v in values[:limit]]
    text = repr(shown)
    return text if len(values) <= limit else f"{text} (and {len(values) - limit} more)"


def require_columns(table: Any, required: Sequence[str], argument: str) -> None:
    """Raise :class:`InputError` unless ``table`` is a DataFrame with the ``required`` columns."""
    import pandas as pd  # here, so that importing the errors stays free

    if not isinstance(table, pd.DataFrame):
        raise InputError(f"{argument} must be a pandas DataFrame, got {type(table).__name__}")
    missing = [column for column in required if column not in table.columns]
    if missing:
        raise InputError(
            f"{argument} lacks column(s) {missing}; it has columns {list(table.columns)}"
        )
