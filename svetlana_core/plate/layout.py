"""Plate layouts (96, 384, 1536 wells): the wells of a plate, the smallest layout holding some."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from svetlana_core.errors import InputError, preview, require_columns
from svetlana_core.plate.wells import _well_of, canonical_wells, well_name

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
    rows, columns = layout_shape(n_wells, "n_wells")
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
    rows, columns = well_positions(pd.Index(names), "wells")
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
    return objects.assign(well=canonical_wells(wells, "well_of_image"))


def layout_shape(layout: Any, argument: str = "layout") -> tuple[int, int]:
    """(rows, columns) of a plate layout.

    Parameters
    ----------
    layout : int
        Number of wells, one of the keys of :data:`PLATE_LAYOUTS`.
    argument : str
        Name of the argument, for the error message.

    Raises
    ------
    InputError
        If `layout` is not a known layout (``True`` and ``"96"`` are not).

    Examples
    --------
    >>> layout_shape(384)
    (16, 24)
    """
    if isinstance(layout, bool) or layout not in PLATE_LAYOUTS:
        raise InputError(
            f"{argument} must be one of {sorted(PLATE_LAYOUTS)} wells, got {layout!r}"
        )
    return PLATE_LAYOUTS[int(layout)]


def well_positions(wells: pd.Index, argument: str = "wells") -> tuple[np.ndarray, np.ndarray]:
    """Row indices and column numbers of well names, each of shape (n,).

    Parameters
    ----------
    wells : pandas.Index
        Well names (or Well-like objects), without missing values.
    argument : str
        What `wells` is, for the error message.

    Raises
    ------
    InputError
        Naming `argument`, if a value is not a well name.

    Examples
    --------
    >>> rows, columns = well_positions(pd.Index(["A01", "b7", "A01"]))
    >>> rows.tolist(), columns.tolist()
    ([0, 1, 0], [1, 7, 1])
    """
    try:
        # One parse per distinct well (at most a plate's worth), not per object.
        parsed = {name: _well_of(name) for name in wells.unique()}
    except InputError as error:
        raise InputError(f"{argument}: {error}") from None
    positions = np.array([parsed[name] for name in wells], dtype=np.int64).reshape(-1, 2)
    return positions[:, 0], positions[:, 1]


def check_on_layout(wells: pd.Index, layout: int, argument: str = "wells") -> None:
    """Raise :class:`InputError` naming the wells of `wells` that lie off a `layout` plate.

    Examples
    --------
    >>> check_on_layout(pd.Index(["A01", "H12"]), 96)
    >>> check_on_layout(pd.Index(["I01"]), 96)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    svetlana_core.errors.InputError: well(s) ['I01'] in wells are outside the 96-well plate ...
    """
    n_rows, n_columns = layout_shape(layout)
    rows, columns = well_positions(wells, argument)
    outside = (rows >= n_rows) | (columns > n_columns)
    if outside.any():
        raise InputError(
            f"well(s) {preview(wells[outside].unique())} in {argument} are outside the "
            f"{layout}-well plate ({_layout_extent(layout)})"
        )


def _layout_extent(layout: int) -> str:
    """Human description of a layout's rows and columns, e.g. 'rows A-H, columns 01-12'."""
    n_rows, n_columns = PLATE_LAYOUTS[layout]
    last = well_name(n_rows - 1, n_columns)
    return f"rows A-{last[:-2]}, columns 01-{last[-2:]}"
