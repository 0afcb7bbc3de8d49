"""Well names: the one parser and the one writer of the names of plate wells.

A well is addressed by a 0-based row index and a 1-based column number and written, by
:func:`well_name` only, as its row letters and a two-digit column: ``"A01"``, ``"P24"``,
``"AF48"``. Rows past ``Z`` continue as spreadsheet columns do (``AA``, ``AB``, ...), as on
1536-well plates (rows ``A`` to ``AF``). The same letters-to-row rule reads every name.

Accepted forms
--------------
A well name (:func:`parse_well_name`: a plate map, a ``well`` column, a user's argument) is one
or two row letters, in any case, and a column number with or without leading zeros:
``"A01"``, ``"a1"``, ``"B007"``, ``"AF48"``, ``" H12 "``. Anything else (``"r01c01"``,
``"A0"``, ``"ABC01"``) is refused. A name need not fit a plate: ``"AG01"`` is row 32, and the
layout functions say it lies outside a 1536-well plate.

A file name (:func:`parse_well`) holds a well as, first, an Opera Phenix / Operetta token
``r<row>c<column>`` (``r01c01f01p01-ch1.tiff``, ``r2c3.tif``: 1-based row and column, any
case), otherwise as the first token ``<row letters><column number>`` such as ``A01``, ``A1``,
``P24`` or ``AF48`` that lies on a 1536-well plate (rows ``A`` to ``AF``, columns 1 to 48).
Tokens with a two-digit column win over one-digit ones, so ``Plate_A01_S1_W1.tif`` is ``A01``.
A token must stand alone: at the start or end of the name or between characters that are
neither letters nor digits (``_``, ``-``, ``.``, space). Only upper-case letters are read as
rows in file names, because ``s1``, ``w1``, ``t1``, ``z1`` name sites, wavelengths, time points
and planes in microscope file names; a well name typed by a person (``a1``) is read in any case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from svetlana_core.errors import InputError, preview

_MAX_ROWS = 32  # a 1536-well plate: rows A..AF
_MAX_COLUMNS = 48

# One or two row letters, then the column number: what every well name is made of.
_ROW_LETTERS = r"([A-Z]{1,2})"
_WELL_NAME = re.compile(_ROW_LETTERS + r"(0*[1-9][0-9]{0,2})")
# In a file name: standing alone, upper case, one or two column digits (B123 is no well).
_LETTER_WELL = re.compile(r"(?<![A-Za-z0-9])" + _ROW_LETTERS + r"(\d{1,2})(?![A-Za-z0-9])")
_PHENIX_WELL = re.compile(r"(?<![A-Za-z0-9])r(\d{1,2})c(\d{1,2})(?!\d)", re.IGNORECASE)


@dataclass(frozen=True, order=True)
class Well:
    """A well of a multi-well plate (up to 1536 wells: 32 rows by 48 columns).

    Parameters
    ----------
    row : int
        0-based row index: 0 is row ``A``, 26 is ``AA``, 31 is ``AF``.
    column : int
        1-based column number, as printed on the plate.

    Examples
    --------
    >>> Well(row=0, column=1).name
    'A01'
    >>> Well(row=27, column=48).name
    'AB48'
    """

    row: int
    column: int

    def __post_init__(self) -> None:
        if not 0 <= self.row < _MAX_ROWS:
            raise InputError(f"well row must be 0..{_MAX_ROWS - 1} (A..AF), got {self.row}")
        if not 1 <= self.column <= _MAX_COLUMNS:
            raise InputError(f"well column must be 1..{_MAX_COLUMNS}, got {self.column}")

    @property
    def row_letter(self) -> str:
        """Row as printed on the plate: ``"A"`` .. ``"Z"``, then ``"AA"`` .. ``"AF"``."""
        return _row_letters(self.row)

    @property
    def name(self) -> str:
        """Row letter(s) and two-digit column, e.g. ``"A01"``, ``"P24"``, ``"AF48"``."""
        return well_name(self.row, self.column)


def well_name(row: int, column: int) -> str:
    """Name of the well at a 0-based row index and a 1-based column number.

    Rows past Z continue as in spreadsheets (AA, AB, ...), as on 1536-well plates.

    Parameters
    ----------
    row : int
        Row index, 0 for row A.
    column : int
        Column number as printed on the plate, 1 for the first column.

    Returns
    -------
    str
        The well name with a two-digit column, e.g. ``"B07"``.

    Raises
    ------
    InputError
        If `row` is not an integer >= 0 or `column` not an integer >= 1.

    Examples
    --------
    >>> well_name(0, 1), well_name(1, 7), well_name(31, 48)
    ('A01', 'B07', 'AF48')
    """
    if isinstance(row, bool) or not isinstance(row, (int, np.integer)) or row < 0:
        raise InputError(f"well row must be an integer >= 0 (0 = row A), got {row!r}")
    if isinstance(column, bool) or not isinstance(column, (int, np.integer)) or column < 1:
        raise InputError(f"well column must be an integer >= 1, got {column!r}")
    return f"{_row_letters(int(row))}{int(column):02d}"


def parse_well_name(name: str) -> tuple[int, int]:
    """Row index and column number of a well name such as ``"B07"``, ``"b7"`` or ``"AF48"``.

    See the module docstring for the accepted forms; file names (``r01c01``, ``_A01_s1_``) are
    read by :func:`parse_well`.

    Parameters
    ----------
    name : str
        The well name.

    Returns
    -------
    tuple of int
        ``(row, column)``: 0-based row index, 1-based column number.

    Raises
    ------
    InputError
        If `name` is not a well name.

    Examples
    --------
    >>> parse_well_name("B07"), parse_well_name("a1"), parse_well_name("AF48")
    ((1, 7), (0, 1), (31, 48))
    """
    match = _WELL_NAME.fullmatch(name.strip().upper()) if isinstance(name, str) else None
    if match is None:
        raise InputError(
            f"well name must look like 'B07' (row letters, column number), got {name!r}"
        )
    return _position(*match.groups())


def parse_well(name: str) -> Well | None:
    """Read the plate well from a file name.

    See the module docstring for the rules: an Opera Phenix ``r01c01`` token first, then the
    first stand-alone upper-case ``A01`` / ``A1`` token (two-digit columns first), rows ``A`` ..
    ``AF``, columns 1 .. 48.

    Parameters
    ----------
    name : str
        File name (a path works too; only its last part is read).

    Returns
    -------
    Well or None
        None when the name holds no valid well.

    Examples
    --------
    >>> parse_well("Plate_B03_s1_w1.tif").name
    'B03'
    >>> parse_well("r02c05f01p01-ch1sk1fk1fl1.tiff").name
    'B05'
    >>> parse_well("train_1_000.png") is None
    True
    """
    name = Path(name).name
    for match in _PHENIX_WELL.finditer(name):
        row, column = int(match[1]) - 1, int(match[2])
        if _on_plate(row, column):
            return Well(row, column)
    found = []
    for match in _LETTER_WELL.finditer(name):
        row, column = _position(*match.groups())
        if _on_plate(row, column):
            found.append((len(match[2]) != 2, match.start(), Well(row, column)))
    return min(found)[2] if found else None


def canonical_wells(values: pd.Series, argument: str = "wells") -> pd.Series:
    """Canonical names (``"A01"``) of a column of wells; missing values stay missing.

    Parameters
    ----------
    values : pandas.Series
        Well names (any form :func:`parse_well_name` reads), anything with integer ``row`` and
        ``column`` attributes (such as :class:`Well`), or missing values.
    argument : str
        What `values` is, for the error message (e.g. ``"counts column 'well'"``).

    Returns
    -------
    pandas.Series
        Object dtype, the index of `values`, None where a value is missing.

    Raises
    ------
    InputError
        Naming `argument` and the values that are not wells.

    Examples
    --------
    >>> canonical_wells(pd.Series(["b7", "A01", None])).tolist()
    ['B07', 'A01', None]
    """
    names: dict[Any, str] = {}
    bad = []
    # One parse per distinct well (at most a plate's worth), not per object.
    for value in pd.unique(values.dropna()):
        try:
            names[value] = well_name(*_well_of(value))
        except InputError:
            bad.append(value)
    if bad:
        raise InputError(
            f"{argument} has values that are not well names like 'A01': {preview(bad)}"
        )
    return values.map(names).astype(object).where(values.notna(), None)


def _row_letters(row: int) -> str:
    """Row letters of a 0-based row index: bijective base 26, 0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    n = row + 1
    while n:
        n, rest = divmod(n - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _position(letters: str, column: str) -> tuple[int, int]:
    """(row index, column number) of upper-case row letters and column digits."""
    row = 0
    for letter in letters:
        row = row * 26 + (ord(letter) - ord("A") + 1)
    return row - 1, int(column)


def _on_plate(row: int, column: int) -> bool:
    """Whether a position lies on a 1536-well plate, the largest there is."""
    return 0 <= row < _MAX_ROWS and 1 <= column <= _MAX_COLUMNS


def _well_of(value: Any) -> tuple[int, int]:
    """(row, column) of a well name or of a Well-like object with row and column."""
    if not isinstance(value, str) and hasattr(value, "row") and hasattr(value, "column"):
        well_name(value.row, value.column)  # validates both numbers
        return int(value.row), int(value.column)
    return parse_well_name(value)
