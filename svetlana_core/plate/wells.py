"""Well names: parse them from file names, write them in one canonical form."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
import numpy as np
from svetlana_core.errors import InputError, preview
import pandas as pd

_MAX_ROWS = 32  # a 1536-well plate: rows A..AF
_MAX_COLUMNS = 48

# --------------------------------------------------------------------------------------------
# wells
# --------------------------------------------------------------------------------------------


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
        if self.row < 26:
            return chr(ord("A") + self.row)
        return "A" + chr(ord("A") + self.row - 26)

    @property
    def name(self) -> str:
        """Row letter(s) and two-digit column, e.g. ``"A01"``, ``"P24"``, ``"AF48"``."""
        return f"{self.row_letter}{self.column:02d}"


_PHENIX_WELL = re.compile(r"(?<![A-Za-z0-9])r(\d{1,2})c(\d{1,2})(?!\d)", re.IGNORECASE)
_LETTER_WELL = re.compile(r"(?<![A-Za-z0-9])([A-Z]{1,2})(\d{1,2})(?![A-Za-z0-9])")


def parse_well(name: str) -> Well | None:
    """Read the plate well from a file name.

    See the module docstring for the rules: an Opera Phenix ``r01c01`` token first, then the first
    stand-alone upper-case ``A01`` / ``A1`` token (two-digit columns first), rows ``A`` .. ``AF``,
    columns 1 .. 48.

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
        if _valid_well(row, column):
            return Well(row, column)
    found = []
    for match in _LETTER_WELL.finditer(name):
        letters, digits = match[1], match[2]
        row = ord(letters[-1]) - ord("A") + (26 if len(letters) == 2 else 0)
        if len(letters) == 2 and letters[0] != "A":
            continue
        if _valid_well(row, int(digits)):
            found.append((len(digits) != 2, match.start(), Well(row, int(digits))))
    return min(found)[2] if found else None


def _valid_well(row: int, column: int) -> bool:
    return 0 <= row < _MAX_ROWS and 1 <= column <= _MAX_COLUMNS

# "A01", "a1", "AF48", "B007": one or two row letters, then the column number.
_WELL_PATTERN = re.compile(r"([A-Z]{1,2})0*([1-9][0-9]{0,2})")


# --------------------------------------------------------------------------- wells and layouts


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

    Examples
    --------
    >>> well_name(0, 1), well_name(1, 7), well_name(31, 48)
    ('A01', 'B07', 'AF48')
    """
    if isinstance(row, bool) or not isinstance(row, (int, np.integer)) or row < 0:
        raise InputError(f"well row must be an integer >= 0 (0 = row A), got {row!r}")
    if isinstance(column, bool) or not isinstance(column, (int, np.integer)) or column < 1:
        raise InputError(f"well column must be an integer >= 1, got {column!r}")
    letters = ""
    # Bijective base 26, as spreadsheet columns: 0 -> A, 25 -> Z, 26 -> AA.
    n = int(row) + 1
    while n:
        n, rest = divmod(n - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return f"{letters}{int(column):02d}"


def parse_well_name(name: str) -> tuple[int, int]:
    """Row index and column number of a well name.

    Accepts one or two row letters (any case) and a column number with or without leading
    zeros: ``"B07"``, ``"b7"``, ``"AF48"``. File-name conventions (``r01c01``,
    ``_A01_s1_``) are the job of :func:`svetlana_core.plate.parse_well`.

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
    match = _WELL_PATTERN.fullmatch(name.strip().upper()) if isinstance(name, str) else None
    if match is None:
        raise InputError(
            f"well name must look like 'B07' (row letters, column number), got {name!r}"
        )
    letters, column = match.groups()
    row = 0
    for letter in letters:
        row = row * 26 + (ord(letter) - ord("A") + 1)
    return row - 1, int(column)


def _well_of(value: Any) -> tuple[int, int]:
    """(row, column) of a well name or of a Well-like object with row and column."""
    if not isinstance(value, str) and hasattr(value, "row") and hasattr(value, "column"):
        well_name(value.row, value.column)  # validates both numbers
        return int(value.row), int(value.column)
    return parse_well_name(value)


def _canonical_wells(values: pd.Series, where: str) -> pd.Series:
    """Canonical names ("A01") for a column of well names; missing values stay missing."""
    names: dict[Any, str] = {}
    bad = []
    # One parse per distinct well (at most a plate's worth), not per object.
    for value in pd.unique(values.dropna()):
        try:
            names[value] = well_name(*_well_of(value))
        except InputError:
            bad.append(value)
    if bad:
        raise InputError(f"{where} has values that are not well names like 'A01': {preview(bad)}")
    return values.map(names).astype(object).where(values.notna(), None)
