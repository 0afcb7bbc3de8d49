"""GeoJSON exchange with QuPath: object outlines out, classified outlines back in.

QuPath exchanges a ``FeatureCollection``, one ``Feature`` per object: a ``Polygon`` or
``MultiPolygon`` in pixel coordinates, x = column and y = row (pixel ``(r, c)`` covers x in
``[c, c + 1]``, y in ``[r, r + 1]``), with ``properties.objectType``,
``properties.classification`` (``{"name", "color"}``; QuPath refuses one without a colour) and
``properties.measurements`` (flat ``name -> number``). :func:`mask_to_features` and
:func:`write_geojson` export a mask along pixel edges (rasterised back, an outline gives exactly
its object's pixels); :func:`read_features` reads an export, :func:`labels_from_features` turns
it into labels ``image,label,class`` of a mask and :func:`mask_from_features` into a new mask.
A pixel belongs to an outline when its centre ``(c + 0.5, r + 0.5)`` lies inside it or on it.
shapely loads inside the functions, so ``svetlana_core.io`` imports without it.
"""

from __future__ import annotations

import json
import math
import os
import reprlib
import uuid
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from svetlana_core.errors import InputError, listing, preview, require_columns
from svetlana_core.io.write import atomic_write_bytes

if TYPE_CHECKING:  # pandas and shapely load inside the functions that need them
    import pandas as pd

#: Namespace of the feature ids: ``uuid5(_ID_SPACE, "<image>\\0<label>")``, stable across runs
#: (QuPath reads ``id`` as a UUID).
_ID_SPACE = uuid.UUID("5f0e7c53-3a52-5b8e-9a57-2c1e0f2d4b61")
_AREA_TYPES = ("Polygon", "MultiPolygon")
_OTHER_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "GeometryCollection")
_BLOCK_PIXELS = 1 << 20  # pixel centres tested at once when rasterising one outline
_BATCH_OBJECTS = 2048  # objects outlined per GEOS call (bounds the memory of their edges)


@dataclass(frozen=True)
class Feature:
    """One feature of a GeoJSON file: ``index`` (its position in the file, from 0, as
    messages name it), ``name`` (the class, derived QuPath classes joined with ``": "``; None
    when unclassified), ``geometry`` (a shapely Polygon or MultiPolygon in pixel coordinates,
    x = column, y = row; None for a feature without an area, such as a point or a line, which
    is skipped and counted) and ``geometry_type`` (the type in the file, ``"null"`` if none).
    """

    index: int
    name: str | None
    geometry: Any
    geometry_type: str


@dataclass(frozen=True)
class MatchReport:
    """What :func:`labels_from_features` did with one file: ``labelled`` objects (rows of
    the table), skipped ``unclassified`` outlines and ``not_areas`` features (points, lines),
    and the indexes of the classified outlines that are ``unmatched`` (they cover no object)
    or ``ambiguous`` (on several objects, none holding half of their pixels; each still
    labels the object it covers most).
    """

    labelled: int
    unclassified: int
    not_areas: int
    unmatched: tuple[int, ...]
    ambiguous: tuple[int, ...]

    def summary(self) -> str:
        """One line for the CLI and the app: ``"12 object(s) labelled; feature(s) 4, 9 match
        no object"``."""
        parts = [(1, f"{self.labelled} object(s) labelled"),
                 (self.unclassified, f"{self.unclassified} unclassified feature(s) skipped"),
                 (self.not_areas, f"{self.not_areas} feature(s) without an area skipped"),
                 (self.unmatched, f"feature(s) {listing(self.unmatched)} match no object"),
                 (self.ambiguous, f"feature(s) {listing(self.ambiguous)} lie on several "
                                  "objects, each labelling the one it covers most")]
        return "; ".join(text for shown, text in parts if shown)


def mask_to_features(mask: np.ndarray, table: pd.DataFrame | None = None,
                     colours: Mapping[str, Sequence[int]] | None = None, *,
                     image: str = "") -> dict[str, Any]:
    """The objects of a label mask as a GeoJSON FeatureCollection for QuPath.

    Parameters
    ----------
    mask : ndarray of int, shape (rows, columns)
        Label mask, 0 = background. Not modified.
    table : pandas.DataFrame, optional
        This image's rows: ``label`` and optionally ``class``, ``confidence``, ``p_<class>``.
        Only its labels are written; a missing class (NaN, None, "") gives no classification.
        Without a table, every object is written, unclassified.
    colours : mapping, optional
        Class name -> ``(r, g, b)``, integers 0-255; other classes get a colour made from
        their name, the same in every file.
    image : str
        Image name; with the label it makes each feature's ``id``, a stable UUID.

    Returns
    -------
    dict
        A FeatureCollection of plain Python values, a feature per object by label: ``id``, a
        ``Polygon`` along pixel edges (integer vertices, holes kept, exterior counter-clockwise;
        a ``MultiPolygon`` for 4-connected pieces) and ``properties``: ``objectType``,
        ``classification``, ``measurements`` (``label``, ``area`` in pixels, ``confidence``,
        ``p_<class>``; NaN left out) and ``svetlana_label``.

    Raises
    ------
    InputError
        Not 2D integer labels >= 0; a table without ``label``, repeating a label, of several
        images, with labels absent from the mask or non-numeric measurements; a bad colour.

    Examples
    --------
    >>> mask = np.zeros((4, 9), np.int32)
    >>> mask[2:4, 5:9] = 7
    >>> feature = mask_to_features(mask)["features"][0]
    >>> feature["geometry"]["coordinates"]
    [[[9, 2], [9, 4], [5, 4], [5, 2], [9, 2]]]
    >>> feature["properties"]["measurements"]
    {'label': 7, 'area': 8}
    """
    mask = _mask_2d(mask)
    labels, areas, boxes = _boxes(mask)
    rows = _table_rows(table, labels)
    if rows is not None:
        keep = np.isin(labels, list(rows))
        labels, areas, boxes = labels[keep], areas[keep], boxes[keep]
    colours = _check_colours(colours)
    geometries = _geometries_json(_outlines(mask, labels, boxes))
    features = [{"type": "Feature", "id": str(uuid.uuid5(_ID_SPACE, f"{image}\0{label}")),
                 "geometry": geometry,
                 "properties": _properties(label, area, rows.get(label, {}) if rows else {},
                                           colours)}
                for label, area, geometry in zip(labels.tolist(), areas.tolist(), geometries)]
    return {"type": "FeatureCollection", "features": features}


def write_geojson(path: str | os.PathLike[str], collection: Mapping[str, Any]) -> Path:
    """Write a FeatureCollection as compact UTF-8 JSON, atomically; returns `path`.

    Raises :class:`InputError` when `collection` is not a FeatureCollection of JSON values
    (NaN included) or the folder of `path` does not exist."""
    if not isinstance(collection, Mapping) or collection.get("type") != "FeatureCollection":
        raise InputError(f"cannot write {path}: expected a GeoJSON FeatureCollection, got "
                         f"{_what(collection)}")
    try:
        text = json.dumps(collection, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InputError(f"cannot write {path}: not plain JSON: {error}") from None
    return atomic_write_bytes(path, text.encode("utf-8"))


def read_features(path: str | os.PathLike[str]) -> list[Feature]:
    """The features of a GeoJSON file exported by QuPath (or written here), in file order.

    Accepted: a ``FeatureCollection``, a JSON array of Features (QuPath's other layout) or one
    Feature. Classes come from ``{"name": ...}``, derived ``{"names": ["A", "B"]}`` (``"A: B"``,
    as QuPath shows it) or a plain string. The outline is ``geometry`` (a QuPath cell's
    ``nucleusGeometry`` is ignored). Points, lines, collections and null geometries are kept
    with ``geometry=None``, to be skipped and counted. A self-intersecting polygon (common in
    hand-drawn outlines) is repaired with ``shapely.make_valid``, its area parts kept.

    Raises
    ------
    InputError
        Missing, unreadable, non-UTF-8 or non-JSON file; another layout; a feature that is not
        a Feature, or has an unknown geometry type, a malformed ring, a coordinate that is not
        a finite number or a classification of the wrong kind (naming file and feature).
    """
    path = Path(path)
    data = _load_json(path)
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "FeatureCollection" and not isinstance(data.get("features"), list):
        raise InputError(f"GeoJSON file {path}: its FeatureCollection has no list of "
                         f"\"features\" (found {_what(data.get('features'))})")
    if kind not in ("Feature", "FeatureCollection") and not isinstance(data, list):
        raise InputError(f"GeoJSON file {path} holds {_what(data)}, not a FeatureCollection "
                         "(nor a list of Features); export the objects from QuPath with "
                         "File > Export objects as GeoJSON")
    raw = data["features"] if kind == "FeatureCollection" else [data] if kind else data
    return [_read_feature(item, index, path) for index, item in enumerate(raw)]


def labels_from_features(features: Sequence[Feature], mask: np.ndarray, *, image: str,
                         source: str | os.PathLike[str]) -> tuple[pd.DataFrame, MatchReport]:
    """Labels ``image,label,class`` of a mask from classified outlines.

    Each classified outline labels the object covering most of its pixels (a tie goes to the
    lower label); it is *unmatched* when it covers no object and *ambiguous* when it lies on
    several objects and none holds half of its pixels. Unclassified outlines and features
    without an area are skipped and counted. Outlines may share an object if they agree.

    Parameters
    ----------
    features : sequence of Feature
        From :func:`read_features`.
    mask : ndarray of int, shape (rows, columns)
        Label mask of the image the outlines were drawn on, 0 = background. Not modified.
    image, source : str
        The ``image`` column of the result; the GeoJSON file, named in messages.

    Returns
    -------
    labels : pandas.DataFrame
        ``image``, ``label`` (int64), ``class``: one row per labelled object, by label.
    report : MatchReport

    Raises
    ------
    InputError
        The mask is not 2D integer labels; an outline reaches outside the image (naming the
        feature, its extent and the image's shape); two outlines give one object different
        classes (naming the object and both classes).
    """
    import pandas as pd

    mask = _mask_2d(mask, f"mask for {source}")
    _check_inside(features, mask.shape, source)
    claims, unmatched, ambiguous = [], [], []
    for feature in features:
        if feature.geometry is None or feature.name is None:
            continue
        values = np.concatenate([mask[rows, columns][inside] for rows, columns, inside
                                 in _covered(feature.geometry, mask.shape)] or [mask[:0, 0]])
        labels, counts = np.unique(values[values != 0], return_counts=True)
        if labels.size == 0:
            unmatched.append(feature.index)
            continue
        best = int(np.argmax(counts))
        if labels.size > 1 and 2 * counts[best] < values.size:
            ambiguous.append(feature.index)
        claims.append((int(labels[best]), feature.name, feature.index))
    table = _claims_table(claims, image, source)
    areas = [f for f in features if f.geometry is not None]
    report = MatchReport(len(table), sum(f.name is None for f in areas),
                         len(features) - len(areas), tuple(unmatched), tuple(ambiguous))
    labels = pd.DataFrame(table, columns=["image", "label", "class"])
    return labels.astype({"label": "int64"}), report


def mask_from_features(features: Sequence[Feature], shape: tuple[int, int], *,
                       source: str | os.PathLike[str]) -> np.ndarray:
    """A new int32 label mask of `shape` ``(rows, columns)`` from outlines, for images
    without a mask (0 = background).

    Feature ``i`` of the file (``Feature.index``) becomes label ``i + 1``, so a label names its
    feature; features without an area are skipped, classes ignored. Where outlines overlap the
    earlier feature keeps the pixels (an outline hidden entirely by earlier ones gets none).
    Raises :class:`InputError` (naming `source`) when `shape` is not two positive integers or
    an outline reaches outside the image.
    """
    shape = tuple(shape)
    if len(shape) != 2 or not all(isinstance(n, (int, np.integer)) and n > 0 for n in shape):
        raise InputError(f"{source}: image shape {shape} is not (rows, columns) of positive "
                         "integers; GeoJSON outlines are 2D")
    _check_inside(features, shape, source)
    mask = np.zeros(shape, np.int32)
    for feature in features:
        if feature.geometry is None:
            continue
        for rows, columns, inside in _covered(feature.geometry, shape):
            block = mask[rows, columns]
            block[inside & (block == 0)] = feature.index + 1
    return mask


def _mask_2d(mask: Any, name: str = "mask") -> np.ndarray:
    """The mask as a 2D integer array, or an InputError saying why it is not one."""
    mask = np.asarray(mask)
    if mask.dtype == bool or not np.issubdtype(mask.dtype, np.integer):
        raise InputError(f"{name} has dtype {mask.dtype}; expected integer labels "
                         "(0 = background, one integer per object)")
    if mask.ndim != 2:
        raise InputError(f"{name} has shape {mask.shape}; GeoJSON outlines are 2D, so the "
                         "mask must be (rows, columns): export one plane at a time")
    return mask


def _boxes(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels (ascending), pixel counts and boxes ``(top, bottom, left, right)``, stops
    exclusive, from the runs of each row (``scipy.ndimage.find_objects`` would allocate a slot
    for every value up to the largest label: too many for sparse labels such as 4e9)."""
    n_columns = mask.shape[1]
    flat = np.ravel(mask)
    if flat.size == 0:
        return flat[:0], np.zeros(0, np.int64), np.zeros((0, 4), np.int64)
    change = flat[1:] != flat[:-1]
    change[n_columns - 1::n_columns] = True  # a run never continues onto the next row
    starts = np.concatenate([[0], np.flatnonzero(change) + 1])
    stops = np.append(starts[1:], flat.size)
    values = flat[starts]
    keep = values != 0
    values, starts, stops = values[keep], starts[keep], stops[keep]
    if values.size and values.min() < 0:
        raise InputError(f"mask has negative labels (smallest {values.min()}); "
                         "labels must be >= 0")
    labels, index = np.unique(values, return_inverse=True)
    row = starts // n_columns
    area = np.bincount(index, weights=stops - starts, minlength=labels.size)
    boxes = np.tile(np.array([np.iinfo(np.int64).max, -1] * 2), (labels.size, 1))
    for column, value, ufunc in ((0, row, np.minimum), (1, row + 1, np.maximum),
                                 (2, starts - row * n_columns, np.minimum),
                                 (3, stops - row * n_columns, np.maximum)):
        ufunc.at(boxes[:, column], index, value)
    return labels, area.astype(np.int64), boxes


def _edge_runs(steps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(row, start, stop)`` of the maximal runs of one non-zero value in each row of `steps`
    (-1, 0, +1). A run ends where the sign changes, where other edges meet it: noded."""
    padded = np.zeros((steps.shape[0], steps.shape[1] + 2), np.int8)
    padded[:, 1:-1] = steps
    rows, columns = np.nonzero(np.diff(padded, axis=1))
    same_row = rows[1:] == rows[:-1]
    row, start, stop = rows[:-1][same_row], columns[:-1][same_row], columns[1:][same_row]
    edge = padded[row, start + 1] != 0
    return row[edge], start[edge], stop[edge]


def _edges(inside: np.ndarray) -> np.ndarray:
    """The boundary of the True pixels of `inside`: straight pixel-edge segments, ``(n, 2, 2)``
    (segment, end, x/y), in the coordinates of `inside`."""
    box = np.zeros((inside.shape[0] + 2, inside.shape[1] + 2), np.int8)
    box[1:-1, 1:-1] = inside
    h_line, h_start, h_stop = _edge_runs(np.diff(box, axis=0)[:, 1:-1])  # y = line, x range
    v_line, v_start, v_stop = _edge_runs(np.diff(box, axis=1)[1:-1, :].T)  # x = line, y range
    n = h_line.size
    ends = np.empty((n + v_line.size, 2, 2))
    ends[:n, 0, 0], ends[:n, 1, 0], ends[:n, :, 1] = h_start, h_stop, h_line[:, None]
    ends[n:, :, 0], ends[n:, 0, 1], ends[n:, 1, 1] = v_line[:, None], v_start, v_stop
    return ends


def _outlines(mask: np.ndarray, labels: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The pixel-edge outline of each object: a Polygon with holes or a MultiPolygon of its
    4-connected pieces, exterior rings counter-clockwise (RFC 7946).

    By hand because skimage and OpenCV trace pixel centres, and rasterio.features.shapes
    (GDAL) adds ~110 MB and measured slower per object: numpy finds each object's boundary in
    its box, GEOS (shapely.polygonize, per batch) assembles rings, holes and pieces."""
    import shapely

    outlines = np.empty(labels.size, dtype=object)
    for first in range(0, labels.size, _BATCH_OBJECTS):
        batch = slice(first, first + _BATCH_OBJECTS)
        edges = [_edges(mask[top:bottom, left:right] == label) + (left, top) for label,
                 (top, bottom, left, right) in zip(labels[batch].tolist(), boxes[batch].tolist())]
        offsets = (np.arange(0, 2 * sum(map(len, edges)) + 1, 2),
                   np.cumsum([0, *map(len, edges)]))
        lines = shapely.from_ragged_array(shapely.GeometryType.MULTILINESTRING,
                                          np.concatenate(edges).reshape(-1, 2), offsets)
        faces, owner = shapely.get_parts(shapely.polygonize(lines[:, None]), return_index=True)
        # A face is all object or all background: test one point inside it.
        x, y = shapely.get_coordinates(shapely.point_on_surface(faces)).T.astype(np.intp)
        keep = mask[y, x] == labels[batch][owner]
        faces = shapely.orient_polygons(faces[keep], exterior_cw=False)
        owner = owner[keep] + first
        pieces = np.bincount(owner, minlength=labels.size)
        single = pieces[owner] == 1
        outlines[owner[single]] = faces[single]
        several = np.flatnonzero(pieces > 1)
        outlines[several] = shapely.multipolygons(
            faces[~single], indices=np.searchsorted(several, owner[~single]))
    return outlines


def _geometries_json(outlines: np.ndarray) -> list[dict[str, Any]]:
    """Polygons and MultiPolygons of integer vertices as GeoJSON geometries, int positions."""
    import shapely

    if not outlines.size:
        return []
    parts, owner = shapely.get_parts(outlines, return_index=True)
    _, coordinates, (ring_ends, polygon_ends, part_ends) = shapely.to_ragged_array(
        shapely.multipolygons(parts, indices=owner))
    points = coordinates.astype(np.int64).tolist()
    rings = [points[a:b] for a, b in pairwise(ring_ends.tolist())]
    polygons = [rings[a:b] for a, b in pairwise(polygon_ends.tolist())]
    return [{"type": "Polygon", "coordinates": polygons[a]} if b == a + 1 else
            {"type": "MultiPolygon", "coordinates": polygons[a:b]}
            for a, b in pairwise(part_ends.tolist())]


def _table_rows(table: pd.DataFrame | None, labels: np.ndarray) -> dict[int, dict] | None:
    """``label -> {"class": name, measurement: float}`` of `table` (NaN and "" left out),
    checked against the mask's `labels`; None without a table."""
    if table is None:
        return None
    import pandas as pd

    require_columns(table, ["label"], "table")
    if "image" in table and table["image"].nunique() > 1:
        raise InputError(f"table holds rows of {table['image'].nunique()} images "
                         f"({preview(table['image'].unique())}); pass one image's rows")
    numbers = pd.to_numeric(table["label"], errors="coerce")
    bad = numbers.isna() | (numbers % 1 != 0) | (numbers <= 0)
    if bad.any():
        raise InputError(f"table: label must be a positive integer, not "
                         f"{preview(table.loc[bad, 'label'])}")
    numbers = numbers.astype(np.int64)
    for wrong, what in ((numbers.duplicated(), "repeats"), (~numbers.isin(labels), "has")):
        if wrong.any():
            raise InputError(f"table {what} label(s) {listing(numbers[wrong])}"
                             + " that are not in the mask" * (what == "has"))
    columns = [c for c in table.columns if c == "confidence" or str(c).startswith("p_")]
    values = table[columns].apply(pd.to_numeric, errors="coerce")
    for column in columns:
        if (values[column].isna() & table[column].notna()).any():
            raise InputError(f"table column {column!r} holds values that are not numbers: "
                             f"{preview(table.loc[values[column].isna(), column].dropna())}")
    names = table["class"] if "class" in table else pd.Series(None, index=table.index)
    return {label: {**({"class": str(name)} if not pd.isna(name) and name != "" else {}),
                    **{k: v for k, v in record.items() if v == v}}  # v == v: not NaN
            for label, name, record in zip(numbers.tolist(), names.tolist(),
                                           values.to_dict("records"))}


def _check_colours(colours: Mapping[str, Sequence[int]] | None) -> dict[str, list[int]]:
    """The colours as ``name -> [r, g, b]`` of Python ints, or an InputError."""
    for name, colour in (colours or {}).items():
        if (isinstance(colour, str) or not isinstance(colour, (Sequence, np.ndarray))
                or len(colour) != 3 or not all(isinstance(v, (int, np.integer))
                                               and 0 <= v <= 255 for v in colour)):
            raise InputError(f"colours: class {name!r} has colour {colour!r}; expected "
                             "(r, g, b), integers 0-255")
    return {str(name): [int(v) for v in colour] for name, colour in (colours or {}).items()}


def _properties(label: int, area: int, row: Mapping[str, Any],
                colours: Mapping[str, list[int]]) -> dict[str, Any]:
    """The ``properties`` of one exported object (QuPath needs a colour with a class)."""
    properties: dict[str, Any] = {"objectType": "detection"}
    if "class" in row:
        name = row["class"]
        # A colour made from the name (its CRC-32 bytes): the same class looks alike everywhere.
        colour = colours.get(name) or list(zlib.crc32(name.encode()).to_bytes(4, "big")[1:])
        properties["classification"] = {"name": name, "color": colour}
    properties["measurements"] = {"label": label, "area": area,
                                  **{k: float(v) for k, v in row.items() if k != "class"}}
    properties["svetlana_label"] = label
    return properties


def _load_json(path: Path) -> Any:
    """The parsed JSON of a file, or an InputError naming the file and what is wrong."""
    if not path.is_file():
        raise InputError(f"GeoJSON file {path} does not exist")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise InputError(f"cannot read GeoJSON file {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise InputError(f"GeoJSON file {path} is not UTF-8 text ({error.reason} at byte "
                         f"{error.start})") from None
    if not text.strip():
        raise InputError(f"GeoJSON file {path} is empty")
    try:
        return json.loads(text)  # QuPath writes NaN measurements: json accepts NaN
    except json.JSONDecodeError as error:
        raise InputError(f"GeoJSON file {path} is not valid JSON: {error.msg} at line "
                         f"{error.lineno}, column {error.colno}") from None


def _what(value: Any) -> str:
    """A few words on what a JSON value is, for messages: ``a Polygon geometry``."""
    if isinstance(value, dict):
        kind = value.get("type")
        if kind in _AREA_TYPES + _OTHER_TYPES:
            return f"a {kind} geometry"
        return f"a JSON object of type {kind!r}" if kind else "a JSON object without \"type\""
    return {list: "a JSON array", str: "a JSON string", bool: "a JSON boolean",
            type(None): "null"}.get(type(value), "a JSON number")


def _read_feature(item: Any, index: int, path: Path) -> Feature:
    """One Feature of the file, checked."""
    where = f"GeoJSON file {path}: feature {index}"
    if not isinstance(item, dict) or item.get("type") != "Feature":
        raise InputError(f"{where} is {_what(item)}, not a GeoJSON Feature")
    properties = item.get("properties") or {}
    if not isinstance(properties, dict):
        raise InputError(f"{where} has properties {_what(properties)}, not a JSON object")
    geometry, kind = _read_geometry(item.get("geometry"), where)
    return Feature(index, _class_name(properties.get("classification"), where), geometry, kind)


def _class_name(value: Any, where: str) -> str | None:
    """The class of a QuPath classification: ``{"name"}``, derived ``{"names"}`` joined as
    QuPath shows them, or a string (older files); None for none, ``{}`` included."""
    if isinstance(value, dict):
        names = value.get("names")
        if isinstance(names, list) and all(isinstance(n, str) for n in names):
            names = ": ".join(n.strip() for n in names)
        value = value["name"] if value.get("name") is not None else names
    if value is not None and not isinstance(value, str):
        raise InputError(f"{where} has classification {reprlib.repr(value)}; expected a "
                         "name, {\"name\": ...} or {\"names\": [...]}")
    return (value or "").strip() or None


def _read_geometry(value: Any, where: str) -> tuple[Any, str]:
    """``(shapely Polygon or MultiPolygon, or None when not an area, type in the file)``."""
    if value is None:
        return None, "null"
    kind = value.get("type") if isinstance(value, dict) else None
    if kind in _OTHER_TYPES:
        return None, kind
    if kind not in _AREA_TYPES:
        raise InputError(f"{where} has geometry {_what(value)}; GeoJSON geometries are "
                         f"{', '.join(_AREA_TYPES + _OTHER_TYPES)}")
    import shapely

    coordinates = value.get("coordinates")
    polygons = [coordinates] if kind == "Polygon" else coordinates
    if not isinstance(polygons, list) or not all(
            isinstance(rings, list) and rings for rings in polygons):
        raise InputError(f"{where} has {kind} coordinates {reprlib.repr(coordinates)}; expected "
                         f"{'a list of rings' if kind == 'Polygon' else 'a list of polygons'}")
    try:
        parts = [shapely.Polygon(rings[0], rings[1:])
                 for rings in ([_ring(ring, where) for ring in polygon] for polygon in polygons)]
    except (ValueError, shapely.errors.GEOSException) as error:
        raise InputError(f"{where} has a {kind} that is not a polygon: {error}") from None
    geometry = parts[0] if kind == "Polygon" else shapely.MultiPolygon(parts)
    if not geometry.is_valid:  # "structure" keeps the area only: a Polygon or MultiPolygon
        geometry = shapely.make_valid(geometry, method="structure", keep_collapsed=False)
    return (None if geometry.is_empty else geometry), kind


def _ring(ring: Any, where: str) -> np.ndarray:
    """One ring as an ``(n, 2)`` float array of x, y, or an InputError."""
    try:
        array = np.asarray(ring)
    except ValueError:  # ragged positions
        array = np.asarray(None)
    if array.ndim != 2 or array.shape[1] < 2 or array.dtype.kind not in "iuf":
        raise InputError(f"{where} has a ring {reprlib.repr(ring)}; expected [x, y] numbers")
    array = array[:, :2].astype(float)
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        raise InputError(f"{where} has a coordinate that is not a finite number: "
                         f"{array[bad][0].tolist()}")
    return array


def _check_inside(features: Sequence[Feature], shape: tuple[int, int], source: Any) -> None:
    """Refuse an outline reaching outside an image of `shape`: the file belongs elsewhere."""
    n_rows, n_columns = shape
    for feature in features:
        if feature.geometry is None:
            continue
        x0, y0, x1, y1 = feature.geometry.bounds
        if x0 < 0 or y0 < 0 or x1 > n_columns or y1 > n_rows:
            raise InputError(f"{source}: feature {feature.index} reaches outside the image: it "
                             f"spans x {x0:g} to {x1:g}, y {y0:g} to {y1:g}, but the image has "
                             f"{n_rows} rows and {n_columns} columns (x 0 to {n_columns}, y 0 to "
                             f"{n_rows}); was it drawn on another image?")


def _covered(geometry: Any, shape: tuple[int, int]):
    """``(rows, columns, inside)``: slices of the outline's box in `shape` and whether each
    pixel centre is inside the outline or on it, in blocks of ~1e6 pixels (bounded memory)."""
    import shapely

    shapely.prepare(geometry)  # a cache for the point tests; the geometry is unchanged
    x0, y0, x1, y1 = geometry.bounds
    top, bottom = max(0, math.floor(y0)), min(shape[0], math.ceil(y1))
    left, right = max(0, math.floor(x0)), min(shape[1], math.ceil(x1))
    if bottom <= top or right <= left:
        return
    x = np.arange(left, right) + 0.5
    step = max(1, _BLOCK_PIXELS // (right - left))
    for start in range(top, bottom, step):
        stop = min(bottom, start + step)
        y = np.arange(start, stop)[:, None] + 0.5
        yield slice(start, stop), slice(left, right), shapely.intersects_xy(geometry, x, y)


def _claims_table(claims: list[tuple[int, str, int]], image: str, source: Any) -> list[tuple]:
    """Rows ``(image, label, class)`` by label from ``(label, class, feature)`` claims, or an
    InputError when two features give one object different classes."""
    chosen: dict[int, tuple[str, int]] = {}
    for label, name, index in claims:
        first_name, first_index = chosen.setdefault(label, (name, index))
        if first_name != name:
            raise InputError(
                f"{source}: features {first_index} and {index} give object {label} of the mask "
                f"two classes, {first_name!r} and {name!r}; keep one outline per object")
    return [(image, label, chosen[label][0]) for label in sorted(chosen)]
