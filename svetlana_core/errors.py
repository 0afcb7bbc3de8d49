"""The one exception type for bad user input, and the helpers its messages are written with.

Every function of :mod:`svetlana_core` that reads a file or takes a user value raises
:class:`InputError` when the input is wrong, with a message that names the file or the argument
and says what was found. The CLI turns it into exit code 2 and one line on stderr; the app shows
it as an error box. Anything else that escapes is a bug. :func:`listing` (and its list form
:func:`preview`), :func:`byte_size` and :func:`require_columns` keep those messages alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


class InputError(ValueError):
    """Bad user input: the message names the file or value and what is wrong with it."""


class StorageError(InputError):
    """The disk or the project database could not do what was asked (full, read-only, locked
    by another program, damaged): the message names the file, says what happened and that
    nothing stored was changed. An :class:`InputError`, so the CLI and the app show one line.
    """


#: errno values of a write that ran out of room: what happened, and what to do.
_NO_ROOM = {28: ("no space left on the disk", "free some space and run again"),
            122: ("the disk quota is used up", "free some space and run again"),
            27: ("the file is larger than this process may write (ulimit -f)",
                 "raise the limit or write elsewhere")}


def storage_error(error: OSError, path: Any, action: str = "write") -> StorageError:
    """One clear line for an OS error met while reading or writing ``path``.

    Examples
    --------
    >>> str(storage_error(OSError(28, "No space left on device"), "out/objects.csv"))
    'cannot write out/objects.csv: no space left on the disk (nothing was replaced; free some space and run again)'
    """
    if error.errno in _NO_ROOM:
        what, remedy = _NO_ROOM[error.errno]
        return StorageError(f"cannot {action} {path}: {what} (nothing was replaced; {remedy})")
    if error.errno in (13, 30, 1):  # EACCES, EROFS, EPERM
        return StorageError(f"cannot {action} {path}: {error.strerror or 'permission denied'} "
                            "(the folder is read-only for this server)")
    return StorageError(f"cannot {action} {path}: {error.strerror or error}")


def byte_size(n_bytes: int) -> str:
    """A size for a message, in decimal units: ``1.8 GB``, ``2.05 kB``, ``130 bytes``."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.3g} {unit}"
    return f"{n_bytes} bytes"


def listing(items: Iterable[Any], limit: int = 5, *, as_list: bool = False) -> str:
    """The first `limit` items of a message, then how many more.

    Parameters
    ----------
    items : iterable
        What to show; numpy scalars are shown as the Python numbers they hold.
    limit : int
        How many items to show.
    as_list : bool
        False: items joined as text, ``"a, b, c and 7 more"`` (file names, line numbers).
        True: a Python list, ``"['a', 'b'] (and 3 more)"``, so that strings show their quotes
        and spaces (values found in a table); this is :func:`preview`.

    Examples
    --------
    >>> listing(range(8))
    '0, 1, 2, 3, 4 and 3 more'
    >>> listing(["A01", "A 2"], as_list=True)
    "['A01', 'A 2']"
    """
    items = list(items)
    more = len(items) - limit
    if as_list:
        # repr of a numpy scalar is "np.int64(3)" since numpy 2: show the number.
        shown = [v.item() if hasattr(v, "item") and hasattr(v, "dtype") else v
                 for v in items[:limit]]
        return f"{shown!r} (and {more} more)" if more > 0 else repr(shown)
    text = ", ".join(str(item) for item in items[:limit])
    return f"{text} and {more} more" if more > 0 else text


def preview(values: Iterable[Any], limit: int = 5) -> str:
    """The first `limit` values as a Python list, and how many more: ``"[1, 2] (and 3 more)"``.

    :func:`listing` with ``as_list=True``.
    """
    return listing(values, limit, as_list=True)


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
