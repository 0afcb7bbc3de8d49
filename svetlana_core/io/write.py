"""Writing outputs: the atomic writer every output goes through, TIFF class maps and CSV tables.

:func:`atomic_write` is the one place a file of the project is written: a temporary file beside
the target, flushed to disk and renamed over it, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import tifffile

from svetlana_core.errors import InputError, storage_error

if TYPE_CHECKING:  # pandas loads in write_csv: reading and writing images do not need it
    import pandas as pd


def write_tiff(
    path: str | os.PathLike[str],
    array: np.ndarray,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write an array to a lossless (zlib) TIFF, atomically.

    The array is stored as it is (no axis reordering, no colour interpretation); `metadata` is
    stored as JSON in the TIFF description and comes back from
    ``tifffile.TiffFile(path).shaped_metadata[0]``. The file is written beside `path` under a
    temporary name and renamed into place, so a reader sees the old file or the new one, never
    half of one.

    Parameters
    ----------
    path : str or path-like
        Target file; its folder must exist. An existing file is replaced.
    array : ndarray
        Integer or float array, e.g. a ``(rows, columns)`` uint8 class map.
    metadata : dict, optional
        JSON-serialisable values, e.g. ``{"classes": ["live", "dead"]}``. The key ``"axes"``
        (e.g. ``"ZYX"``) is understood by tifffile, ImageJ and napari.

    Returns
    -------
    Path
        `path`, through :func:`atomic_write` (which raises :class:`InputError` when the
        folder of `path` does not exist).
    """
    array = np.asarray(array)

    def write(handle: BinaryIO) -> None:
        tifffile.imwrite(
            handle,
            array,
            photometric="minisblack",
            compression="zlib",
            metadata=dict(metadata or {}),
        )

    return atomic_write(Path(path), write)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """:func:`atomic_write` of bytes already in memory: `data` replaces the file `path`.

    Returns `path`; raises :class:`InputError` when its folder does not exist.
    """
    return atomic_write(Path(path), lambda handle: handle.write(data))


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], Any]) -> Path:
    """Write a file atomically: ``write(handle)`` fills a hidden temporary file beside
    `path` (``.<name>.<random>.tmp``), which is flushed to disk and renamed over `path`.

    A reader, or a process killed at any moment, sees the old file or the new one, never half
    of one; every output of the project (TIFFs, CSV, Parquet, XLSX, labels) goes through here.

    Parameters
    ----------
    path : str or path-like
        Target file; its folder must exist. An existing file is replaced.
    write : callable
        Called with a binary file handle (pandas' ``to_csv``, ``to_parquet`` and
        ``ExcelWriter`` accept one).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    InputError
        If the folder of `path` does not exist.
    StorageError
        When the disk refuses the write (full, over quota, read-only, ``ulimit -f``): one line
        naming `path`; the temporary file is removed and an existing `path` is untouched.
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"cannot write {path}: folder {folder} does not exist")
    try:
        descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.",
                                                 suffix=".tmp")
    except OSError as error:
        raise storage_error(error, path) from None
    os.close(descriptor)  # reopened by name: tifffile wants a file object with a path
    try:
        with open(temporary, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates the file readable by its owner only; give it the mode a plain open()
        # would have, so that colleagues sharing the project folder can read it.
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except OSError as error:  # a full disk, a quota, ulimit -f: the old file is kept
        Path(temporary).unlink(missing_ok=True)
        raise storage_error(error, path) from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    """The process umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def write_csv(path: str | os.PathLike, table: pd.DataFrame) -> Path:
    """Write a table to a UTF-8 CSV file atomically (temporary file, then rename).

    Text cells that a spreadsheet would run as formulas get a ``'`` in front
    (:func:`formula_safe`); :func:`svetlana_core.io.read_labels_csv` and the prediction tables
    read them back as they were (:func:`formula_unsafe`).

    Parameters
    ----------
    path : str or PathLike
        Destination; its folder must exist.
    table : pandas.DataFrame
        The table. Its index is written only when it is named, as in :func:`svetlana_core.stats.export_tables`.

    Returns
    -------
    pathlib.Path
        `path`.
    """
    import pandas as pd

    if not isinstance(table, pd.DataFrame):
        raise InputError(f"write_csv needs a pandas DataFrame, got {type(table).__name__}")
    path = Path(path)
    index = index_is_data(table)
    table = _formula_safe_table(table)
    return atomic_write(path, lambda handle: table.to_csv(
        handle, index=index, lineterminator="\n", encoding="utf-8"))


def csv_text(table: pd.DataFrame) -> str:
    """The CSV text :func:`write_csv` writes (formula-safe, ``\\n`` line ends, the index
    only when named), for a download that is not a file."""
    return _formula_safe_table(table).to_csv(index=index_is_data(table), lineterminator="\n")


# A text cell starting with one of these is run as a formula by Excel, LibreOffice and Google
# Sheets when a CSV is opened (OWASP "CSV injection"): an image named "=HYPERLINK(...).tif".
# A sign is a formula too ("-2+3", "+cmd|..."), unless the whole text is one number ("-1.5e3").
_FORMULA = r"^(?:[=@\t\r]|[+-](?![0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?$))"


def formula_safe(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula, with a ``'`` in front (which makes it
    text); anything else as it is. Numbers written as text (``-1``, ``+2.5``) stay.

    Examples
    --------
    >>> formula_safe("=2+3.tif"), formula_safe("-2+3"), formula_safe("-1"), formula_safe("live")
    ("'=2+3.tif", "'-2+3", '-1', 'live')
    """
    return "'" + value if isinstance(value, str) and re.match(_FORMULA, value) else value


def formula_unsafe(value: Any) -> Any:
    """The text :func:`formula_safe` protected, as it was (``'=x`` -> ``=x``); reading a CSV
    written here gives back the names that were written."""
    if isinstance(value, str) and value.startswith("'") and re.match(_FORMULA, value[1:]):
        return value[1:]
    return value


def _formula_safe_table(table: pd.DataFrame) -> pd.DataFrame:
    """The table with its text cells made formula-safe (a copy only when one needs it)."""
    import pandas as pd

    text = [c for c in table.columns if table[c].dtype == object
            or pd.api.types.is_string_dtype(table[c].dtype)]
    risky = [c for c in text if table[c].astype(str).str.match(_FORMULA).any()]
    if not risky:
        return table
    table = table.copy()
    for column in risky:
        table[column] = table[column].map(formula_safe)
    return table


def index_is_data(table: pd.DataFrame) -> bool:
    """Whether a table's index carries data worth writing: it has a name."""
    return any(name is not None for name in table.index.names)
