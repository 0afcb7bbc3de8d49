"""Counts and fractions of classes per image, per well and per plate; plate layouts; exports.

The input is the tidy per-object table of a prediction (or of the annotations), one row per
object keyed by ``(image, label)``::

    image     label  class   confidence  well
    A01_1.png     3  alive         0.97  A01
    A01_1.png     7  dead          0.88  A01

Counting is a ``groupby`` on that table, so the order of its rows never matters. Plates are
described by their number of wells (:data:`PLATE_LAYOUTS`); a well is named by its row letters and
its two-digit column number ("A01", "P24", "AF48"), and addressed by a 0-based row index and a
1-based column number, as :class:`svetlana_core.io.Well` does.

Per-well tables with a layout keep every well of the plate: a well with no image has NaN counts
(nothing was measured there), an imaged well where no object was found has zeros. Images without a
well are left out of the per-well table and listed in its ``attrs["images_without_well"]``, so the
app can say how many were left out instead of inventing a well for them.

This module needs only numpy and pandas at import; scikit-learn, scipy and openpyxl are imported by
the functions that use them.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from svetlana_core import io
from svetlana_core.errors import InputError

__all__ = [
    "PLATE_LAYOUTS",
    "add_wells",
    "agreement",
    "counts_per_image",
    "counts_per_plate",
    "counts_per_well",
    "export_tables",
    "infer_layout",
    "parse_well_name",
    "plate_heatmap",
    "plate_wells",
    "well_name",
    "write_csv",
]

#: Number of wells -> (rows, columns) of the standard microplates.
PLATE_LAYOUTS: dict[int, tuple[int, int]] = {96: (8, 12), 384: (16, 24), 1536: (32, 48)}

# "A01", "a1", "AF48", "B007": one or two row letters, then the column number.
_WELL_PATTERN = re.compile(r"([A-Z]{1,2})0*([1-9][0-9]{0,2})")

# Count columns of the per-image table that are not per class; class names that would
# produce the same column name are refused.
_RESERVED_CLASS_NAMES = ("objects", "images", "wells")

# Characters Excel refuses in a sheet name, and its length limit.
_SHEET_FORBIDDEN = set("[]:*?/\\")
_SHEET_MAX_LENGTH = 31


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
    ``_A01_s1_``) are the job of :func:`svetlana_core.io.parse_well`.

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
        f"wells {_preview(outside)} do not fit on the largest plate "
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
        ``row`` and ``column`` attributes (such as :class:`svetlana_core.io.Well`), or None.
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
    _require_columns(objects, ("image",), "objects")
    if not isinstance(well_of_image, Mapping):
        raise InputError(
            f"well_of_image must be a mapping from image name to well, "
            f"got {type(well_of_image).__name__}"
        )
    wells = objects["image"].map(dict(well_of_image))
    return objects.assign(well=_canonical_wells(wells, "well_of_image"))


# --------------------------------------------------------------------------- counting


def counts_per_image(
    objects: pd.DataFrame,
    classes: Sequence[str],
    images: pd.DataFrame | Mapping[str, Any] | Sequence[str] | None = None,
) -> pd.DataFrame:
    """Number and fraction of objects of each class in each image.

    Parameters
    ----------
    objects : pandas.DataFrame
        Per-object table, one row per ``(image, label)``, with columns ``image``, ``label``,
        ``class`` and optionally ``well`` and ``plate`` (other columns are ignored). Its row
        order does not matter.
    classes : sequence of str
        All class names, in the order the columns should follow. Classes never seen in
        `objects` get zero counts.
    images : DataFrame, Mapping or sequence of str, optional
        Images to report even when they have no object (they get zeros): a list of names, a
        mapping name -> well, or a table with an ``image`` column and optional ``well`` and
        ``plate`` columns. Wells given here fill in or must agree with those of `objects`.

    Returns
    -------
    pandas.DataFrame
        One row per image, sorted by image name, with columns ``image``, ``plate`` (only when
        a plate column was given), ``well`` (canonical name, or missing), ``n_objects``,
        ``n_<class>`` for every class (int64) and ``frac_<class>`` (float64; 0 for an image
        with no object).

    Raises
    ------
    InputError
        Missing columns, a class name not in `classes`, an object with no class or image, a
        duplicated ``(image, label)`` key, a value that is not a well name, or an image given
        two different wells or plates.

    Examples
    --------
    >>> objects = pd.DataFrame({"image": ["a", "a", "b"], "label": [1, 2, 1],
    ...                         "class": ["dead", "alive", "alive"]})
    >>> table = counts_per_image(objects, ["alive", "dead"], images=["a", "b", "c"])
    >>> table[["image", "n_objects", "n_alive", "n_dead", "frac_alive"]]
      image  n_objects  n_alive  n_dead  frac_alive
    0     a          2        1       1         0.5
    1     b          1        1       0         1.0
    2     c          0        0       0         0.0
    """
    classes = _check_classes(classes)
    _check_objects(objects, classes)
    per_image = _image_attributes(objects, images)

    codes = pd.DataFrame(
        {
            "image": pd.Categorical(objects["image"], categories=per_image.index),
            "class": pd.Categorical(objects["class"], categories=classes),
        }
    )
    # observed=False keeps every (image, class) pair of the categories, so images and classes
    # without objects come out as zeros, in category order.
    counts = codes.groupby(["image", "class"], observed=False).size().unstack("class")
    # reindex, not set_axis: with no image at all the unstacked frame has no class column
    counts = counts.reindex(index=per_image.index, columns=classes, fill_value=0)
    counts = counts.set_axis(_count_columns(classes), axis=1).astype(np.int64)
    n_objects = counts.sum(axis=1).rename("n_objects")
    table = pd.concat([per_image, n_objects, counts], axis=1).reset_index()
    return _with_fractions(table, classes)


def counts_per_well(
    objects: pd.DataFrame,
    classes: Sequence[str],
    layout: int | None = None,
    images: pd.DataFrame | Mapping[str, Any] | Sequence[str] | None = None,
) -> pd.DataFrame:
    """Number of images and of objects of each class in each well.

    Parameters
    ----------
    objects : pandas.DataFrame
        Per-object table as for :func:`counts_per_image`; wells come from its ``well`` column
        and/or from `images`.
    classes : sequence of str
        All class names, in column order.
    layout : {96, 384, 1536}, optional
        Plate layout. When given, every well of the plate is a row, in plate order, and wells
        with no image have NaN counts and fractions. When None, only imaged wells appear.
    images : DataFrame, Mapping or sequence of str, optional
        Images to count even when they have no object, as for :func:`counts_per_image`.

    Returns
    -------
    pandas.DataFrame
        One row per well in row-major plate order (A01, A02, ..., B01, ...), or per
        ``(plate, well)`` when a plate column was given (plates sorted), with columns
        ``plate`` (if any), ``well``, ``row`` (0-based index), ``column`` (1-based number),
        ``n_images``, ``n_objects``, ``n_<class>``, ``frac_<class>``. Counts are int64
        without a layout and float64 (NaN = well not imaged) with one; an imaged well with no
        object has zero counts and zero fractions.

        Images without a well (or, with plates, without a plate) are not counted; their names
        are in ``result.attrs["images_without_well"]`` (and ``"images_without_plate"``).

    Raises
    ------
    InputError
        As :func:`counts_per_image`; also a layout not in :data:`PLATE_LAYOUTS` or a well
        outside the layout.

    Examples
    --------
    >>> objects = pd.DataFrame({"image": ["a", "a", "b"], "label": [1, 2, 1],
    ...                         "class": ["dead", "alive", "alive"], "well": ["A01", "A01", "A02"]})
    >>> table = counts_per_well(objects, ["alive", "dead"], layout=96)
    >>> len(table), table.loc[0, "n_alive"], table.loc[2, "n_alive"]
    (96, np.float64(1.0), np.float64(nan))
    """
    if layout is not None:
        _layout_shape(layout, "layout")
    per_image = counts_per_image(objects, classes, images)
    classes = list(classes)
    keys = ["plate", "well"] if "plate" in per_image.columns else ["well"]
    placed = per_image[keys].notna().all(axis=1)
    count_columns = ["n_objects", *_count_columns(classes)]

    grouped = per_image[placed].groupby(keys, sort=False)
    table = grouped[count_columns].sum()
    table.insert(0, "n_images", grouped.size())
    imaged_wells = table.index.get_level_values("well")
    if layout is not None:
        _check_in_layout(imaged_wells, layout, "the well column")
        plates = sorted(table.index.get_level_values("plate").unique()) if "plate" in keys else None
        all_wells = plate_wells(layout)
        full_index = (
            pd.MultiIndex.from_product([plates, all_wells], names=keys)
            if plates is not None
            else pd.Index(all_wells, name="well")
        )
        table = table.reindex(full_index).astype(np.float64)
    table = table.reset_index()

    rows, columns = _positions(pd.Index(table["well"]), "the well column")
    table.insert(len(keys), "row", rows)
    table.insert(len(keys) + 1, "column", columns)
    if layout is None:
        table = table.sort_values([*keys[:-1], "row", "column"], ignore_index=True)
    table = _with_fractions(table, classes)

    table.attrs["images_without_well"] = per_image.loc[per_image["well"].isna(), "image"].tolist()
    if "plate" in keys:
        without_plate = per_image["plate"].isna()
        table.attrs["images_without_plate"] = per_image.loc[without_plate, "image"].tolist()
    return table


def counts_per_plate(
    objects: pd.DataFrame,
    classes: Sequence[str],
    images: pd.DataFrame | Mapping[str, Any] | Sequence[str] | None = None,
) -> pd.DataFrame:
    """Number of wells, images and objects of each class on each plate.

    Parameters
    ----------
    objects : pandas.DataFrame
        Per-object table as for :func:`counts_per_image`, with a ``plate`` column here or in
        `images`.
    classes : sequence of str
        All class names, in column order.
    images : DataFrame, Mapping or sequence of str, optional
        Images to count even when they have no object; a table may carry ``plate``.

    Returns
    -------
    pandas.DataFrame
        One row per plate (sorted) with columns ``plate``, ``n_wells`` (distinct imaged wells),
        ``n_images``, ``n_objects``, ``n_<class>``, ``frac_<class>``. Images without a plate
        are not counted; their names are in ``result.attrs["images_without_plate"]``.

    Raises
    ------
    InputError
        If there is no ``plate`` column, and as :func:`counts_per_image`.
    """
    per_image = counts_per_image(objects, classes, images)
    if "plate" not in per_image.columns:
        raise InputError(
            "counts_per_plate needs a 'plate' column in objects or images; "
            f"objects has columns {list(objects.columns)}"
        )
    classes = list(classes)
    placed = per_image["plate"].notna()
    grouped = per_image[placed].groupby("plate", sort=True)
    table = grouped[["n_objects", *_count_columns(classes)]].sum()
    table.insert(0, "n_images", grouped.size())
    table.insert(0, "n_wells", grouped["well"].nunique())
    table = _with_fractions(table.reset_index(), classes)
    table.attrs["images_without_plate"] = per_image.loc[~placed, "image"].tolist()
    return table


def plate_heatmap(counts: pd.DataFrame, value: str, layout: int | None = None) -> pd.DataFrame:
    """One value per well laid out as the plate: rows A, B, ... by columns 1, 2, ...

    Parameters
    ----------
    counts : pandas.DataFrame
        A per-well table such as :func:`counts_per_well` returns, with a ``well`` column and
        one row per well, of a single plate.
    value : str
        Column to lay out, e.g. ``"n_objects"`` or ``"frac_dead"``.
    layout : {96, 384, 1536}, optional
        Plate layout; by default the smallest one that holds all wells (:func:`infer_layout`).

    Returns
    -------
    pandas.DataFrame
        Shape ``(rows, columns)`` of the plate, float64, index of row letters (named ``row``),
        columns of column numbers 1.. (named ``column``), NaN where `counts` has no row or a
        missing value. Ready for ``plotly.express.imshow`` or ``go.Heatmap``.

    Raises
    ------
    InputError
        Missing columns, several plates, a row without a well, a duplicated well, a
        non-numeric `value` column, or a well outside the layout.

    Examples
    --------
    >>> counts = pd.DataFrame({"well": ["A01", "B05"], "n_objects": [3, 4]})
    >>> grid = plate_heatmap(counts, "n_objects", 96)
    >>> grid.shape, grid.loc["B", 5], grid.loc["A", 2]
    ((8, 12), np.float64(4.0), np.float64(nan))
    """
    _require_columns(counts, ("well", value), "counts")
    if "plate" in counts.columns and counts["plate"].nunique() > 1:
        raise InputError(
            f"counts holds {counts['plate'].nunique()} plates "
            f"{_preview(sorted(counts['plate'].dropna().unique()))}: pass the rows of one plate"
        )
    if counts["well"].isna().any():
        raise InputError(f"counts has {int(counts['well'].isna().sum())} row(s) without a well")
    wells = pd.Index(_canonical_wells(counts["well"], "counts column 'well'"))
    if wells.has_duplicates:
        duplicated = wells[wells.duplicated()].unique()
        raise InputError(f"counts has duplicated wells {_preview(duplicated)}")
    values = counts[value]
    if not (pd.api.types.is_numeric_dtype(values) or values.isna().all()):
        raise InputError(f"counts column {value!r} must be numeric, got dtype {values.dtype}")
    if layout is None:
        layout = infer_layout(wells) if len(wells) else min(PLATE_LAYOUTS)
    n_rows, n_columns = _layout_shape(layout, "layout")
    _check_in_layout(wells, layout, "counts column 'well'")

    rows, columns = _positions(wells, "counts column 'well'")
    grid = np.full((n_rows, n_columns), np.nan)
    grid[rows, columns - 1] = values.to_numpy(dtype=np.float64, na_value=np.nan)
    row_names = [well_name(row, 1)[:-2] for row in range(n_rows)]
    return pd.DataFrame(
        grid,
        index=pd.Index(row_names, name="row"),
        columns=pd.Index(range(1, n_columns + 1), name="column"),
    )


# --------------------------------------------------------------------------- agreement


def agreement(
    predicted: pd.Series | np.ndarray | Sequence[float],
    reference: pd.Series | np.ndarray | Sequence[float],
) -> dict[str, float | int]:
    """How well predicted counts (or fractions) match reference ones.

    Two Series are paired by index (image or well names); anything else is paired by position.
    Pairs where either value is missing (NaN) are left out, e.g. wells that were not imaged.

    Parameters
    ----------
    predicted, reference : pandas.Series or array-like, shape (n,)
        Numeric values.

    Returns
    -------
    dict
        ``n`` (pairs used), ``r2`` (coefficient of determination of `predicted` against
        `reference`, :func:`sklearn.metrics.r2_score`; 1 for a perfect match, 0 when the
        reference is constant and not matched exactly), ``mae`` (mean absolute error) and
        ``pearson_r`` (Pearson correlation; NaN when either side is constant).

    Raises
    ------
    InputError
        Two Series whose indexes differ (the message names the keys missing on each side), a
        duplicated index, different lengths, non-numeric values, or fewer than 2 pairs.

    Examples
    --------
    >>> reference = pd.Series([1, 2, 3, 4], index=["a", "b", "c", "d"])
    >>> predicted = pd.Series([5, 3, 2, 2], index=["d", "c", "b", "a"])
    >>> result = agreement(predicted, reference)
    >>> result["n"], result["r2"], result["mae"]
    (4, 0.6, 0.5)
    """
    # Imported here: scikit-learn and scipy take about a second to import, which the app's
    # pages that never compare counts should not pay.
    from scipy.stats import ConstantInputWarning, pearsonr
    from sklearn.metrics import mean_absolute_error, r2_score

    predicted_values, reference_values = _paired_values(predicted, reference)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantInputWarning)
        pearson = float(pearsonr(predicted_values, reference_values).statistic)
    return {
        "n": int(len(predicted_values)),
        "r2": float(r2_score(reference_values, predicted_values)),
        "mae": float(mean_absolute_error(reference_values, predicted_values)),
        "pearson_r": pearson,
    }


# --------------------------------------------------------------------------- export


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
    """
    path = Path(out_path)
    if path.suffix.lower() != ".xlsx":
        raise InputError(f"export_tables writes .xlsx files, got out_path {str(path)!r}")
    _check_sheets(sheets)

    def write(handle) -> None:
        with pd.ExcelWriter(handle, engine="openpyxl") as writer:
            for name, table in sheets.items():
                table.to_excel(writer, sheet_name=name, index=_index_is_data(table))

    return io.atomic_write(path, write)


def write_csv(path: str | os.PathLike, table: pd.DataFrame) -> Path:
    """Write a table to a UTF-8 CSV file atomically (temporary file, then rename).

    Parameters
    ----------
    path : str or PathLike
        Destination; its folder must exist.
    table : pandas.DataFrame
        The table. Its index is written only when it is named, as in :func:`export_tables`.

    Returns
    -------
    pathlib.Path
        `path`.
    """
    if not isinstance(table, pd.DataFrame):
        raise InputError(f"write_csv needs a pandas DataFrame, got {type(table).__name__}")
    path = Path(path)
    index = _index_is_data(table)
    return io.atomic_write(path, lambda handle: table.to_csv(
        handle, index=index, lineterminator="\n", encoding="utf-8"))


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


def _preview(values: Iterable[Any], limit: int = 5) -> str:
    """The first `limit` values as a list, and how many more there are."""
    values = list(values)
    text = repr([v.item() if isinstance(v, np.generic) else v for v in values[:limit]])
    return text if len(values) <= limit else f"{text} (and {len(values) - limit} more)"


def _require_columns(table: Any, required: Sequence[str], argument: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise InputError(f"{argument} must be a pandas DataFrame, got {type(table).__name__}")
    missing = [column for column in required if column not in table.columns]
    if missing:
        raise InputError(
            f"{argument} lacks column(s) {missing}; it has columns {list(table.columns)}"
        )


def _check_classes(classes: Any) -> list[str]:
    if isinstance(classes, str) or not isinstance(classes, Iterable):
        raise InputError(f"classes must be a list of class names, got {classes!r}")
    classes = list(classes)
    if not classes:
        raise InputError("classes must name at least one class, got an empty list")
    not_text = [name for name in classes if not isinstance(name, str) or not name]
    if not_text:
        raise InputError(f"classes must be non-empty strings, got {_preview(not_text)}")
    duplicated = sorted({name for name in classes if classes.count(name) > 1})
    if duplicated:
        raise InputError(f"classes lists {duplicated} more than once")
    reserved = [name for name in classes if name in _RESERVED_CLASS_NAMES]
    if reserved:
        raise InputError(
            f"class name(s) {reserved} would clash with the count columns "
            f"{['n_' + name for name in reserved]}; rename the class"
        )
    return classes


def _check_objects(objects: Any, classes: list[str]) -> None:
    _require_columns(objects, ("image", "label", "class"), "objects")
    no_image = objects["image"].isna()
    if no_image.any():
        raise InputError(f"objects has {int(no_image.sum())} row(s) with no image name")
    no_class = objects["class"].isna()
    if no_class.any():
        examples = objects.loc[no_class, ["image", "label"]].head(3)
        raise InputError(
            f"objects has {int(no_class.sum())} row(s) with no class, e.g. (image, label) "
            f"{_preview(examples.itertuples(index=False, name=None))}"
        )
    found = pd.unique(objects["class"])
    known = set(classes)
    unknown = [name for name in found if name not in known]
    if unknown:
        raise InputError(
            f"objects has class(es) {_preview(unknown)} that are not in classes {classes}"
        )
    duplicated = objects.duplicated(["image", "label"])
    if duplicated.any():
        keys = objects.loc[duplicated, ["image", "label"]].drop_duplicates()
        raise InputError(
            f"objects has {int(duplicated.sum())} duplicated (image, label) key(s): "
            f"{_preview(keys.itertuples(index=False, name=None))}"
        )


def _count_columns(classes: Sequence[str]) -> list[str]:
    return [f"n_{name}" for name in classes]


def _with_fractions(table: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Append ``frac_<class>`` = ``n_<class>`` / ``n_objects`` to a count table."""
    counts = table[_count_columns(classes)]
    # Where n_objects is 0 every class count is 0 too, so dividing by 1 there gives the
    # documented fraction 0 instead of 0/0 = NaN; NaN (unmeasured) rows stay NaN.
    fractions = counts.div(table["n_objects"].clip(lower=1), axis=0).astype(np.float64)
    fractions.columns = [f"frac_{name}" for name in classes]
    return pd.concat([table, fractions], axis=1)


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
        raise InputError(f"{where} has values that are not well names like 'A01': {_preview(bad)}")
    return values.map(names).astype(object).where(values.notna(), None)


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
            f"well(s) {_preview(wells[outside].unique())} in {where} are outside the "
            f"{layout}-well plate ({_layout_extent(layout)})"
        )


def _images_frame(images: Any) -> pd.DataFrame:
    """The `images` argument of the counting functions as a table with an ``image`` column."""
    if isinstance(images, pd.DataFrame):
        _require_columns(images, ("image",), "images")
        return images[[c for c in ("image", "plate", "well") if c in images.columns]]
    if isinstance(images, Mapping):
        return pd.DataFrame(
            {"image": list(images.keys()), "well": list(images.values())}, dtype=object
        )
    if isinstance(images, str) or not isinstance(images, Iterable):
        raise InputError(
            "images must be a list of image names, a mapping image -> well or a table with an "
            f"'image' column, got {images!r}"
        )
    return pd.DataFrame({"image": list(images)}, dtype=object)


def _attributes_of(table: pd.DataFrame, argument: str) -> pd.DataFrame:
    """Plate and well of each image of a table, indexed by image name (sorted)."""
    if table["image"].isna().any():
        n_missing = int(table["image"].isna().sum())
        raise InputError(f"{argument} has {n_missing} row(s) with no image name")
    attributes = [column for column in ("plate", "well") if column in table.columns]
    table = table[["image", *attributes]]
    if "well" in attributes:
        table = table.assign(well=_canonical_wells(table["well"], f"{argument} column 'well'"))
    if not attributes:
        return pd.DataFrame(index=pd.Index(table["image"].unique(), name="image").sort_values())
    grouped = table.groupby("image", sort=True)
    distinct = grouped[attributes].nunique(dropna=False)
    for column in attributes:
        conflicting = distinct.index[distinct[column] > 1]
        if len(conflicting):
            raise InputError(
                f"{argument}: image(s) {_preview(conflicting)} have more than one {column}"
            )
    # Each image has a single value (possibly missing); first() returns it, or NaN when missing.
    return grouped[attributes].first()


def _image_attributes(objects: pd.DataFrame, images: Any) -> pd.DataFrame:
    """Plate (if any) and well of every image of `objects` and `images`, indexed by name."""
    found = _attributes_of(objects, "objects")
    if images is not None:
        given = _attributes_of(_images_frame(images), "images")
        index = found.index.union(given.index).sort_values()
        found, given = found.reindex(index), given.reindex(index)
        for column in ("plate", "well"):
            if column in found.columns and column in given.columns:
                both = found[column].notna() & given[column].notna()
                differ = both & (found[column] != given[column])
                if differ.any():
                    raise InputError(
                        f"images {_preview(index[differ])} have a {column} in objects "
                        f"({_preview(found.loc[differ, column])}) that differs from images "
                        f"({_preview(given.loc[differ, column])})"
                    )
                found[column] = given[column].where(given[column].notna(), found[column])
            elif column in given.columns:
                found[column] = given[column]
    if "well" not in found.columns:
        found["well"] = None
    found["well"] = found["well"].astype(object).where(found["well"].notna(), None)
    found.index.name = "image"
    return found[[column for column in ("plate", "well") if column in found.columns]]


def _paired_values(predicted: Any, reference: Any) -> tuple[np.ndarray, np.ndarray]:
    """Float arrays of the pairs to compare, aligned, with missing pairs dropped."""
    if isinstance(predicted, pd.Series) and isinstance(reference, pd.Series):
        for argument, series in (("predicted", predicted), ("reference", reference)):
            if series.index.has_duplicates:
                duplicated = series.index[series.index.duplicated()].unique()
                raise InputError(f"{argument} has duplicated index keys {_preview(duplicated)}")
        not_in_reference = predicted.index.difference(reference.index)
        not_in_predicted = reference.index.difference(predicted.index)
        if len(not_in_reference) or len(not_in_predicted):
            raise InputError(
                "predicted and reference must have the same index keys: "
                f"missing from reference {_preview(not_in_reference)}, "
                f"missing from predicted {_preview(not_in_predicted)}"
            )
        reference = reference.reindex(predicted.index)
    arrays = []
    for argument, values in (("predicted", predicted), ("reference", reference)):
        try:
            array = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            found = _preview(np.asarray(values, dtype=object).ravel())
            raise InputError(f"{argument} must hold numbers, got {found}") from None
        if array.ndim != 1:
            raise InputError(f"{argument} must be one-dimensional, got shape {array.shape}")
        arrays.append(array)
    predicted_values, reference_values = arrays
    if len(predicted_values) != len(reference_values):
        raise InputError(
            f"predicted has {len(predicted_values)} values "
            f"but reference has {len(reference_values)}"
        )
    kept = ~(np.isnan(predicted_values) | np.isnan(reference_values))
    if kept.sum() < 2:
        raise InputError(
            "agreement needs at least 2 pairs of values present on both sides, "
            f"got {int(kept.sum())}"
        )
    return predicted_values[kept], reference_values[kept]


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


def _index_is_data(table: pd.DataFrame) -> bool:
    """Whether a table's index carries data worth writing: it has a name."""
    return any(name is not None for name in table.index.names)


