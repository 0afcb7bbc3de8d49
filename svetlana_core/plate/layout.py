"""Plate layouts (96, 384, 1536 wells): the wells of a plate, the smallest layout that holds some."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
import numpy as np
import pandas as pd
from svetlana_core.errors import InputError, preview, require_columns
from svetlana_core.plate.wells import _canonical_wells, _well_of, well_name

#: Number of wells -> (rows, columns) of the standard microplates.
PLATE_LAYOUTS: dict[int, tuple[int, int]] = {96: (8, 12), 384: (16, 24), 1536: (32, 48)}


def plate_wells(n_wells: int) -> list[str]:
    """Names of all wells of a plate, row-major: A01, A02, ..., A12, B01, ...

    Parameters
    ----------
    n_wells : int
        Plate layout, one of the keys of :data:`PLATE_LAYOUTS` (96, 384, 1536).

    Returns
    -------
    list of str
        ``n_wells`` names; rows A..Z then AA..AF on a 1536-well plate.

    Examples
    --------
    >>> wells = plate_wells(96)
    >>> len(wells), wells[:2], wells[11:13], wells[-1]
    (96, ['A01', 'A02'], ['A12', 'B01'], 'H12')
    """
    rows, columns = _layout_shape(n_wells, "n_wells")
    return [well_name(row, column) for row in range(rows) for column in range(1, columns + 1)]


def infer_layout(wells: Iterable[str]) -> int:
    """Smallest standard plate that contains all the given wells.

    Parameters
    ----------
    wells : iterable of str
        Well names; missing values (None, NaN) are skipped.

    Returns
    -------
    int
        96, 384 or 1536.

    Raises
    ------
    InputError
        If there is no well, a value is not a well name, or a well lies outside a 1536-well plate.

    Examples
    --------
    >>> infer_layout(["A01", "H12"]), infer_layout(["A01", "P24"]), infer_layout(["I01"])
    (96, 384, 384)
    """
    names = pd.Series(list(wells), dtype=object).dropna().unique()
    if len(names) == 0:
        raise InputError("infer_layout needs at least one well name, got none")
    rows, columns = _positions(pd.Index(names), "wells")
    for layout, (n_rows, n_columns) in sorted(PLATE_LAYOUTS.items()):
        if rows.max() < n_rows and columns.max() <= n_columns:
            return layout
    n_rows, n_columns = PLATE_LAYOUTS[max(PLATE_LAYOUTS)]
    outside = names[(rows >= n_rows) | (columns > n_columns)]
    raise InputError(
        f"wells {preview(outside)} do not fit on the largest plate "
        f"({max(PLATE_LAYOUTS)} wells, {_layout_extent(max(PLATE_LAYOUTS))})"
    )


def add_wells(objects: pd.DataFrame, well_of_image: Mapping[str, Any]) -> pd.DataFrame:
    """Copy of a per-object table with a ``well`` column looked up from the image name.

    Parameters
    ----------
    objects : pandas.DataFrame
        Per-object table with an ``image`` column.
    well_of_image : Mapping
        Image name -> well, given as a name (``"A1"``, ``"A01"``), as anything with integer
        ``row`` and ``column`` attributes (such as :class:`svetlana_core.plate.Well`), or None.
        Images absent from the mapping get no well.

    Returns
    -------
    pandas.DataFrame
        A new table, the same rows, with ``well`` (canonical names such as ``"A01"``) set or
        replaced. `objects` is not modified.

    Examples
    --------
    >>> objects = pd.DataFrame({"image": ["a.png", "b.png"], "label": [1, 1]})
    >>> add_wells(objects, {"a.png": "B7"})["well"].tolist()
    ['B07', None]
    """
    require_columns(objects, ("image",), "objects")
    if not isinstance(well_of_image, Mapping):
        raise InputError(
            f"well_of_image must be a mapping from image name to well, "
            f"got {type(well_of_image).__name__}"
        )
    wells = objects["image"].map(dict(well_of_image))
    return objects.assign(well=_canonical_wells(wells, "well_of_image"))


# --------------------------------------------------------------------------- helpers


def _layout_shape(layout: Any, argument: str) -> tuple[int, int]:
    """(rows, columns) of a layout, or InputError naming `argument`."""
    if isinstance(layout, bool) or layout not in PLATE_LAYOUTS:
        raise InputError(
            f"{argument} must be one of {sorted(PLATE_LAYOUTS)} wells, got {layout!r}"
        )
    return PLATE_LAYOUTS[int(layout)]


def _layout_extent(layout: int) -> str:
    """Human description of a layout's rows and columns, e.g. 'rows A-H, columns 01-12'."""
    n_rows, n_columns = PLATE_LAYOUTS[layout]
    last = well_name(n_rows - 1, n_columns)
    return f"rows A-{last[:-2]}, columns 01-{last[-2:]}"


def _positions(wells: pd.Index, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Row indices and column numbers, shape (n,), of well names."""
    unique = wells.unique()
    try:
        parsed = {name: _well_of(name) for name in unique}
    except InputError as error:
        raise InputError(f"{where}: {error}") from None
    positions = np.array([parsed[name] for name in wells], dtype=np.int64).reshape(-1, 2)
    return positions[:, 0], positions[:, 1]


def _check_in_layout(wells: pd.Index, layout: int, where: str) -> None:
    n_rows, n_columns = PLATE_LAYOUTS[layout]
    rows, columns = _positions(wells, where)
    outside = (rows >= n_rows) | (columns > n_columns)
    if outside.any():
        raise InputError(
            f"well(s) {preview(wells[outside].unique())} in {where} are outside the "
            f"{layout}-well plate ({_layout_extent(layout)})"
        )
