"""Counts and fractions of classes per image, per well and per plate."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from svetlana_core.errors import InputError, preview, require_columns
from svetlana_core.plate import (
    PLATE_LAYOUTS,
    canonical_wells,
    check_on_layout,
    infer_layout,
    layout_shape,
    plate_wells,
    well_name,
    well_positions,
)

# Count columns of the per-image table that are not per class; class names that would
# produce the same column name are refused.
_RESERVED_CLASS_NAMES = ("objects", "images", "wells")


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
        layout_shape(layout, "layout")
    per_image = counts_per_image(objects, classes, images)
    classes = list(classes)
    keys = ["plate", "well"] if "plate" in per_image.columns else ["well"]
    table = _sum_per(per_image, keys, classes, sort=False)
    if layout is not None:
        table = _on_whole_plates(table, layout)
    table = table.reset_index()
    rows, columns = well_positions(pd.Index(table["well"]), "the well column")
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

    `objects`, `classes` and `images` are as for :func:`counts_per_image`; the ``plate``
    column comes from `objects` or from an `images` table.

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

    Examples
    --------
    >>> objects = pd.DataFrame({"image": ["a", "b"], "label": [1, 1], "class": ["x", "x"],
    ...                         "plate": ["P1", "P1"], "well": ["A01", "A02"]})
    >>> counts_per_plate(objects, ["x"])[["plate", "n_wells", "n_images", "n_x"]]
      plate  n_wells  n_images  n_x
    0    P1        2         2    2
    """
    per_image = counts_per_image(objects, classes, images)
    if "plate" not in per_image.columns:
        raise InputError(
            "counts_per_plate needs a 'plate' column in objects or images; "
            f"objects has columns {list(objects.columns)}"
        )
    classes = list(classes)
    table = _sum_per(per_image, ["plate"], classes, sort=True)
    placed = per_image["plate"].notna()
    table.insert(0, "n_wells", per_image[placed].groupby("plate")["well"].nunique())
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
    require_columns(counts, ("well", value), "counts")
    if "plate" in counts.columns and counts["plate"].nunique() > 1:
        raise InputError(
            f"counts holds {counts['plate'].nunique()} plates "
            f"{preview(sorted(counts['plate'].dropna().unique()))}: pass the rows of one plate"
        )
    if counts["well"].isna().any():
        raise InputError(f"counts has {int(counts['well'].isna().sum())} row(s) without a well")
    wells = pd.Index(canonical_wells(counts["well"], "counts column 'well'"))
    if wells.has_duplicates:
        duplicated = wells[wells.duplicated()].unique()
        raise InputError(f"counts has duplicated wells {preview(duplicated)}")
    values = counts[value]
    if not (pd.api.types.is_numeric_dtype(values) or values.isna().all()):
        raise InputError(f"counts column {value!r} must be numeric, got dtype {values.dtype}")
    if layout is None:
        layout = infer_layout(wells) if len(wells) else min(PLATE_LAYOUTS)
    n_rows, n_columns = layout_shape(layout, "layout")
    check_on_layout(wells, layout, "counts column 'well'")

    rows, columns = well_positions(wells, "counts column 'well'")
    grid = np.full((n_rows, n_columns), np.nan)
    grid[rows, columns - 1] = values.to_numpy(dtype=np.float64, na_value=np.nan)
    row_names = [well_name(row, 1)[:-2] for row in range(n_rows)]
    return pd.DataFrame(
        grid,
        index=pd.Index(row_names, name="row"),
        columns=pd.Index(range(1, n_columns + 1), name="column"),
    )


def _check_classes(classes: Any) -> list[str]:
    if isinstance(classes, str) or not isinstance(classes, Iterable):
        raise InputError(f"classes must be a list of class names, got {classes!r}")
    classes = list(classes)
    if not classes:
        raise InputError("classes must name at least one class, got an empty list")
    not_text = [name for name in classes if not isinstance(name, str) or not name]
    if not_text:
        raise InputError(f"classes must be non-empty strings, got {preview(not_text)}")
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
    require_columns(objects, ("image", "label", "class"), "objects")
    no_image = objects["image"].isna()
    if no_image.any():
        raise InputError(f"objects has {int(no_image.sum())} row(s) with no image name")
    no_class = objects["class"].isna()
    if no_class.any():
        examples = objects.loc[no_class, ["image", "label"]].head(3)
        raise InputError(
            f"objects has {int(no_class.sum())} row(s) with no class, e.g. (image, label) "
            f"{preview(examples.itertuples(index=False, name=None))}"
        )
    found = pd.unique(objects["class"])
    known = set(classes)
    unknown = [name for name in found if name not in known]
    if unknown:
        raise InputError(
            f"objects has class(es) {preview(unknown)} that are not in classes {classes}"
        )
    duplicated = objects.duplicated(["image", "label"])
    if duplicated.any():
        keys = objects.loc[duplicated, ["image", "label"]].drop_duplicates()
        raise InputError(
            f"objects has {int(duplicated.sum())} duplicated (image, label) key(s): "
            f"{preview(keys.itertuples(index=False, name=None))}"
        )


def _count_columns(classes: Sequence[str]) -> list[str]:
    return [f"n_{name}" for name in classes]


def _sum_per(
    per_image: pd.DataFrame, keys: list[str], classes: list[str], sort: bool
) -> pd.DataFrame:
    """Images and objects of each class summed per value of `keys` (images missing one left out).

    Returns a table indexed by `keys` with columns ``n_images``, ``n_objects``, ``n_<class>``.
    """
    placed = per_image[keys].notna().all(axis=1)
    grouped = per_image[placed].groupby(keys, sort=sort)
    table = grouped[["n_objects", *_count_columns(classes)]].sum()
    table.insert(0, "n_images", grouped.size())
    return table


def _on_whole_plates(table: pd.DataFrame, layout: int) -> pd.DataFrame:
    """A per-well table reindexed to every well of the plate(s), float64, NaN where not imaged."""
    check_on_layout(table.index.get_level_values("well"), layout, "the well column")
    all_wells = plate_wells(layout)
    if isinstance(table.index, pd.MultiIndex):  # (plate, well)
        plates = sorted(table.index.get_level_values("plate").unique())
        full_index = pd.MultiIndex.from_product([plates, all_wells], names=table.index.names)
    else:
        full_index = pd.Index(all_wells, name="well")
    return table.reindex(full_index).astype(np.float64)


def _with_fractions(table: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Append ``frac_<class>`` = ``n_<class>`` / ``n_objects`` to a count table."""
    counts = table[_count_columns(classes)]
    # Where n_objects is 0 every class count is 0 too, so dividing by 1 there gives the
    # documented fraction 0 instead of 0/0 = NaN; NaN (unmeasured) rows stay NaN.
    fractions = counts.div(table["n_objects"].clip(lower=1), axis=0).astype(np.float64)
    fractions.columns = [f"frac_{name}" for name in classes]
    return pd.concat([table, fractions], axis=1)


def _images_frame(images: Any) -> pd.DataFrame:
    """The `images` argument of the counting functions as a table with an ``image`` column."""
    if isinstance(images, pd.DataFrame):
        require_columns(images, ("image",), "images")
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
        table = table.assign(well=canonical_wells(table["well"], f"{argument} column 'well'"))
    if not attributes:
        return pd.DataFrame(index=pd.Index(table["image"].unique(), name="image").sort_values())
    grouped = table.groupby("image", sort=True)
    distinct = grouped[attributes].nunique(dropna=False)
    for column in attributes:
        conflicting = distinct.index[distinct[column] > 1]
        if len(conflicting):
            raise InputError(
                f"{argument}: image(s) {preview(conflicting)} have more than one {column}"
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
                        f"images {preview(index[differ])} have a {column} in objects "
                        f"({preview(found.loc[differ, column])}) that differs from images "
                        f"({preview(given.loc[differ, column])})"
                    )
                found[column] = given[column].where(given[column].notna(), found[column])
            elif column in given.columns:
                found[column] = given[column]
    if "well" not in found.columns:
        found["well"] = None
    found["well"] = found["well"].astype(object).where(found["well"].notna(), None)
    found.index.name = "image"
    return found[[column for column in ("plate", "well") if column in found.columns]]


