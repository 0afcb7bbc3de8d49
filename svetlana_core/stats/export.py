"""Export result tables as one XLSX workbook, a sheet each.

CSV files of single tables are :func:`svetlana_core.io.write_csv`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from io import BytesIO
from pathlib import Path
from typing import Any

import pandas as pd

from svetlana_core import io
from svetlana_core.errors import InputError
from svetlana_core.io import index_is_data

# Characters Excel refuses in a sheet name, and its length limit.
_SHEET_FORBIDDEN = set("[]:*?/\\")
_SHEET_MAX_LENGTH = 31


def export_tables(out_path: str | os.PathLike, sheets: Mapping[str, pd.DataFrame]) -> Path:
    """Write tables to one Excel workbook, one sheet each, atomically.

    The workbook is written to a hidden temporary file in the same folder and then renamed
    over `out_path`, so a reader never sees half a file and a failed export leaves any
    previous file intact.

    Parameters
    ----------
    out_path : str or PathLike
        Path of the ``.xlsx`` file; its folder must exist.
    sheets : Mapping of str to pandas.DataFrame
        Sheet name -> table, in sheet order. A table's index is written only when it is named
        (e.g. the row letters of :func:`plate_heatmap`); a plain 0..n-1 index is not.

    Returns
    -------
    pathlib.Path
        `out_path`.

    Raises
    ------
    InputError
        Not an ``.xlsx`` path, a missing folder, no sheets, a value that is not a DataFrame,
        or a sheet name Excel refuses (empty, over 31 characters, one of ``[]:*?/\\``, a
        leading or trailing apostrophe, or the same name twice ignoring case).

    Notes
    -----
    No cell is a formula: text starting with ``=`` is written as text (:func:`_no_formulas`).
    """
    path = Path(out_path)
    if path.suffix.lower() != ".xlsx":
        raise InputError(f"export_tables writes .xlsx files, got out_path {str(path)!r}")
    _check_sheets(sheets)

    # Built in memory (a workbook is small: the objects sheet stops at 5,000 rows), then
    # written: a full disk fails on plain bytes, not inside openpyxl's open zip file.
    buffer = BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for name, table in sheets.items():
            table.to_excel(writer, sheet_name=name, index=index_is_data(table))
            _no_formulas(writer.sheets[name])
    return io.atomic_write_bytes(path, buffer.getvalue())


def _no_formulas(sheet: Any) -> None:
    """Every cell as text or number: openpyxl stores a string that starts with ``=`` as a
    formula, so an image named ``=HYPERLINK(...).tif`` would be live in the workbook. Our
    tables hold data only; such cells are typed back to strings (shown as written)."""
    for row in sheet.iter_rows():
        for cell in row:
            if cell.data_type == "f":
                cell.data_type = "s"


def _check_sheets(sheets: Any) -> None:
    if not isinstance(sheets, Mapping) or not sheets:
        raise InputError(
            f"sheets must be a non-empty mapping of sheet name -> DataFrame, got {sheets!r}"
        )
    seen: set[str] = set()
    for name, table in sheets.items():
        if not isinstance(name, str) or not name or len(name) > _SHEET_MAX_LENGTH:
            raise InputError(
                f"sheet name must have 1 to {_SHEET_MAX_LENGTH} characters, got {name!r}"
            )
        if _SHEET_FORBIDDEN & set(name) or name[0] == "'" or name[-1] == "'":
            raise InputError(
                f"sheet name {name!r} has a character Excel refuses "
                f"({''.join(sorted(_SHEET_FORBIDDEN))} or a leading/trailing ')"
            )
        if name.lower() in seen:
            raise InputError(f"sheet name {name!r} is used twice (Excel ignores case)")
        seen.add(name.lower())
        if not isinstance(table, pd.DataFrame):
            raise InputError(
                f"sheet {name!r} must be a pandas DataFrame, got {type(table).__name__}"
            )


