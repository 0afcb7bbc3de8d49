"""svetlana_core.io.geojson: QuPath GeoJSON export and import."""

import json
import uuid

import geojson
import numpy as np
import pandas as pd
import pytest
import shapely

from svetlana_core.errors import InputError
from svetlana_core.io.geojson import (Feature, MatchReport, labels_from_features,
                                      mask_from_features, mask_to_features, read_features,
                                      write_geojson)


@pytest.fixture
def mask():
    """A rectangle (3), a ring with a hole (5), an object in two pieces (9), an object
    touching another (4) and one pixel (7)."""
    mask = np.zeros((10, 12), np.int32)
    mask[2:4, 5:9] = 3
    mask[5:9, 0:4] = 5
    mask[6:8, 1:3] = 0  # the hole
    mask[0:2, 0:2] = 9
    mask[8:10, 10:12] = 9
    mask[5:7, 6:9] = 4
    mask[9, 5] = 7
    return mask


def _features(path, items):
    """Write `items` (a JSON value) to `path` and read it back."""
    path.write_text(json.dumps(items))
    return read_features(path)


def _polygon(coordinates, name=None):
    """A GeoJSON Feature of one ring, classified as `name`."""
    properties = {"classification": {"name": name, "color": [0, 0, 0]}} if name else {}
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [coordinates]},
            "properties": properties}


def _box(x0, y0, x1, y1, name=None):
    return _polygon([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]], name)


def test_round_trip_gives_back_the_mask(mask, tmp_path):
    collection = mask_to_features(mask)
    path = write_geojson(tmp_path / "a.geojson", collection)
    features = read_features(path)
    labels = [f["properties"]["svetlana_label"] for f in collection["features"]]
    assert labels == [3, 4, 5, 7, 9]
    back = mask_from_features(features, mask.shape, source=path)
    assert back.dtype == np.int32
    np.testing.assert_array_equal(np.array([0, *labels])[back], mask)
    kinds = {label: f.geometry for label, f in zip(labels, features)}
    assert [len(kinds[5].interiors), kinds[9].geom_type, len(kinds[9].geoms)] == [
        1, "MultiPolygon", 2]
    assert [f.geometry.area for f in features] == [8, 6, 12, 1, 8]


def test_round_trip_of_a_random_mask_is_exact(tmp_path):
    # Dense noise: diagonal touches, holes, islands inside holes, pieces.
    mask = np.random.default_rng(3).integers(0, 4, (15, 17)).astype(np.uint16)
    collection = mask_to_features(mask)
    features = _features(tmp_path / "r.geojson", collection)
    assert all(f.geometry.is_valid for f in features)
    back = mask_from_features(features, mask.shape, source="r.geojson")
    np.testing.assert_array_equal(np.array([0, 1, 2, 3])[back], mask)


def test_x_is_column_and_y_is_row():
    mask = np.zeros((5, 10), np.int32)
    mask[2:4, 5:9] = 1
    geometry = mask_to_features(mask)["features"][0]["geometry"]
    assert geometry == {"type": "Polygon",
                        "coordinates": [[[9, 2], [9, 4], [5, 4], [5, 2], [9, 2]]]}
    assert shapely.geometry.shape(geometry).bounds == (5, 2, 9, 4)


def test_pieces_touching_at_a_corner_are_a_multipolygon():
    mask = np.array([[1, 0], [0, 1]], np.int32)
    geometry = mask_to_features(mask)["features"][0]["geometry"]
    assert geometry == {"type": "MultiPolygon", "coordinates": [
        [[[1, 0], [1, 1], [0, 1], [0, 0], [1, 0]]], [[[2, 1], [2, 2], [1, 2], [1, 1], [2, 1]]]]}


def test_written_file_is_valid_geojson_with_qupath_properties(mask, tmp_path):
    table = pd.DataFrame({"image": "A01.tif", "label": [5, 3, 9], "class": ["live", None, "dead"],
                          "confidence": [0.75, np.nan, 0.5], "p_live": [0.75, 0.5, 0.5],
                          "p_dead": [0.25, 0.5, 0.5]})
    collection = mask_to_features(mask, table, {"live": (0, 200, 0)}, image="A01.tif")
    path = write_geojson(tmp_path / "A01.geojson", collection)
    text = path.read_text(encoding="utf-8")
    assert geojson.loads(text).is_valid and ", " not in text
    features = json.loads(text)["features"]
    assert [f["properties"]["svetlana_label"] for f in features] == [3, 5, 9]
    assert all(shapely.geometry.shape(f["geometry"]).is_valid for f in features)
    ring = features[1]["properties"]
    assert ring == {"objectType": "detection",
                    "classification": {"name": "live", "color": [0, 200, 0]},
                    "measurements": {"label": 5, "area": 12, "confidence": 0.75,
                                     "p_live": 0.75, "p_dead": 0.25},
                    "svetlana_label": 5}
    assert "classification" not in features[0]["properties"]  # class None
    assert features[0]["properties"]["measurements"] == {"label": 3, "area": 8, "p_live": 0.5,
                                                         "p_dead": 0.5}
    dead = features[2]["properties"]["classification"]  # no colour given: one from the name
    assert dead["color"] == mask_to_features(mask, table)["features"][2]["properties"][
        "classification"]["color"] and len(dead["color"]) == 3
    assert features[1]["id"] == str(uuid.UUID(features[1]["id"]))
    assert features[1]["id"] == mask_to_features(mask, table, image="A01.tif")["features"][1]["id"]
    assert features[1]["id"] != mask_to_features(mask, table, image="B01.tif")["features"][1]["id"]


def test_labels_survive_features(mask, tmp_path):
    table = pd.DataFrame({"label": [3, 4, 5, 7, 9], "class": ["a", "b", "a", np.nan, "b: c"]})
    features = _features(tmp_path / "l.geojson", mask_to_features(mask, table))
    labels, report = labels_from_features(features, mask, image="A01.tif", source="l.geojson")
    assert labels.values.tolist() == [["A01.tif", 3, "a"], ["A01.tif", 4, "b"],
                                      ["A01.tif", 5, "a"], ["A01.tif", 9, "b: c"]]
    assert labels["label"].dtype == np.int64
    assert report == MatchReport(labelled=4, unclassified=1, not_areas=0, unmatched=(),
                                 ambiguous=())


def test_an_outline_labels_the_object_it_covers_most(tmp_path):
    mask = np.zeros((6, 8), np.int32)
    mask[0:2, 0:3] = 1  # 6 pixels
    mask[0:2, 4:6] = 2  # 4 pixels
    features = _features(tmp_path / "o.geojson", [
        _box(0, 0, 8, 4, "big"),    # 32 pixels: 6 on object 1, 4 on object 2 -> ambiguous
        _box(1, 0, 5, 2, "shift"),  # 8 pixels: 4 on object 1, 2 on object 2 -> object 1
        _box(6, 4, 8, 6, "none"),   # background only
        _box(0, 4, 2, 6),           # unclassified
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 1]},
         "properties": {"classification": "dot"}},
    ])
    assert [f.geometry_type for f in features] == ["Polygon"] * 4 + ["Point"]
    with pytest.raises(InputError, match="features 0 and 1 give object 1 of the mask two "
                                         "classes, 'big' and 'shift'"):
        labels_from_features(features, mask, image="i", source="o.geojson")
    labels, report = labels_from_features(features[1:], mask, image="i", source="o.geojson")
    assert labels.values.tolist() == [["i", 1, "shift"]]
    assert report == MatchReport(labelled=1, unclassified=1, not_areas=1, unmatched=(2,),
                                 ambiguous=())
    labels, report = labels_from_features(features[:1], mask, image="i", source="o.geojson")
    assert labels.values.tolist() == [["i", 1, "big"]] and report.ambiguous == (0,)
    assert report.summary() == ("1 object(s) labelled; feature(s) 0 lie on several objects, "
                                "each labelling the one it covers most")


def test_qupath_layouts_and_classifications(tmp_path):
    features = _features(tmp_path / "q.json", [
        _box(0, 0, 1, 1, "Tumor"),
        {**_box(0, 0, 1, 1), "properties": {"classification": {"names": ["Tumor", "Positive"],
                                                               "color": [1, 2, 3]}}},
        {**_box(0, 0, 1, 1), "properties": {"classification": " Stroma "}},
        {**_box(0, 0, 1, 1), "properties": {"classification": {}}},
        {"type": "Feature", "geometry": None, "properties": None},
    ])
    assert [(f.index, f.name, f.geometry_type) for f in features] == [
        (0, "Tumor", "Polygon"), (1, "Tumor: Positive", "Polygon"), (2, "Stroma", "Polygon"),
        (3, None, "Polygon"), (4, None, "null")]
    path = tmp_path / "one.geojson"  # one Feature, a BOM and QuPath's NaN measurements
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(_box(1, 1, 3, 2, "A")).replace(
        '"properties": {', '"properties": {"measurements": {"x": NaN}, ').encode())
    assert [(f.name, f.geometry.bounds) for f in read_features(path)] == [
        ("A", (1, 1, 3, 2))]


def test_a_self_intersecting_outline_is_repaired(tmp_path):
    bowtie = _polygon([[0, 0], [4, 4], [4, 0], [0, 4], [0, 0]], "A")
    [feature] = _features(tmp_path / "b.geojson", [bowtie])
    assert feature.geometry.is_valid and feature.geometry.geom_type == "MultiPolygon"
    assert feature.geometry.area == 8


def test_mask_from_features_keeps_earlier_pixels(tmp_path):
    features = _features(tmp_path / "m.geojson", [
        _box(0, 0, 3, 2), {"type": "Feature", "geometry": None, "properties": {}},
        _box(2, 1, 4, 3)])
    np.testing.assert_array_equal(mask_from_features(features, (3, 5), source="m"), [
        [1, 1, 1, 0, 0], [1, 1, 1, 3, 0], [0, 0, 3, 3, 0]])


def test_empty_mask_gives_an_empty_collection():
    assert mask_to_features(np.zeros((3, 3), np.uint8)) == {
        "type": "FeatureCollection", "features": []}


@pytest.mark.parametrize("content,message", [
    ('{"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}',
     r"holds a Polygon geometry, not a FeatureCollection \(nor a list of Features\)"),
    ('{"features": []}', 'holds a JSON object without "type", not a FeatureCollection'),
    ('{"type": "FeatureCollection", "features": {}}', 'has no list of "features"'),
    ('{"type": "FeatureCollection", "features": [', "is not valid JSON: Expecting value at "
                                                    "line 1, column 44"),
    ("", "is empty"),
    ('[{"type": "Polygon"}]', "feature 0 is a Polygon geometry, not a GeoJSON Feature"),
    ('[{"type": "Feature", "geometry": {"type": "Circle"}}]',
     "feature 0 has geometry a JSON object of type 'Circle'; GeoJSON geometries are Polygon"),
    ('[{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": '
     '[[[0, 0], [1, NaN], [1, 1], [0, 0]]]}}]',
     r"feature 0 has a coordinate that is not a finite number: \[1.0, nan\]"),
    ('[{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": '
     '[[["0", 0], [1, 0], [1, 1], ["0", 0]]]}}]', r"feature 0 has a ring .*expected \[x, y\]"),
    ('[{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0]]]}}]',
     "feature 0 has a Polygon that is not a polygon"),
    ('[{"type": "Feature", "geometry": null, "properties": {"classification": 3}}]',
     "feature 0 has classification 3; expected a name"),
])
def test_read_features_errors(tmp_path, content, message):
    path = tmp_path / "bad.geojson"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as info:
        read_features(path)
    assert str(path) in str(info.value)


def test_read_features_file_errors(tmp_path):
    with pytest.raises(InputError, match="GeoJSON file .*missing.geojson does not exist"):
        read_features(tmp_path / "missing.geojson")
    path = tmp_path / "latin1.geojson"
    path.write_bytes(b'{"name": "caf\xe9"}')
    with pytest.raises(InputError, match="latin1.geojson is not UTF-8 text"):
        read_features(path)


def test_outside_coordinates_are_refused(tmp_path):
    mask = np.zeros((4, 6), np.int32)
    features = _features(tmp_path / "o.geojson", [_box(0, 0, 2, 2, "A"), _box(5, 2, 7, 4, "A")])
    message = (r"o.geojson: feature 1 reaches outside the image: it spans x 5 to 7, y 2 to 4, "
               r"but the image has 4 rows and 6 columns")
    with pytest.raises(InputError, match=message):
        labels_from_features(features, mask, image="i", source="o.geojson")
    with pytest.raises(InputError, match=message):
        mask_from_features(features, (4, 6), source="o.geojson")


@pytest.mark.parametrize("call,message", [
    (lambda: mask_to_features(np.zeros((2, 3, 3), np.int32)),
     r"mask has shape \(2, 3, 3\); GeoJSON outlines are 2D"),
    (lambda: labels_from_features([], np.zeros((2, 3, 3), np.int32), image="i", source="f.json"),
     r"mask for f.json has shape \(2, 3, 3\); GeoJSON outlines are 2D"),
    (lambda: mask_from_features([], (2, 3, 3), source="f.json"),
     r"f.json: image shape \(2, 3, 3\) is not \(rows, columns\)"),
    (lambda: mask_to_features(np.zeros((3, 3))), "mask has dtype float64"),
    (lambda: mask_to_features(np.full((2, 2), -1)), r"negative labels \(smallest -1\)"),
    (lambda: mask_to_features(np.ones((2, 2), int), pd.DataFrame({"label": [1, 2]})),
     "table has label.s. 2 that are not in the mask"),
    (lambda: mask_to_features(np.ones((2, 2), int), pd.DataFrame({"label": [1, 1]})),
     "table repeats label.s. 1"),
    (lambda: mask_to_features(np.ones((2, 2), int), pd.DataFrame({"class": ["a"]})),
     r"table lacks column\(s\) \['label'\]"),
    (lambda: mask_to_features(np.ones((2, 2), int),
                              pd.DataFrame({"label": [1], "confidence": ["high"]})),
     r"table column 'confidence' holds values that are not numbers: \['high'\]"),
    (lambda: mask_to_features(np.ones((2, 2), int), colours={"a": (0, 300, 0)}),
     r"colours: class 'a' has colour \(0, 300, 0\)"),
])
def test_input_errors(call, message):
    with pytest.raises(InputError, match=message):
        call()


def test_write_geojson_refuses_what_is_not_a_collection(tmp_path):
    with pytest.raises(InputError, match="expected a GeoJSON FeatureCollection, got a JSON array"):
        write_geojson(tmp_path / "x.geojson", [])
    with pytest.raises(InputError, match="not plain JSON: Out of range float"):
        write_geojson(tmp_path / "x.geojson", {"type": "FeatureCollection", "x": float("nan")})
    assert list(tmp_path.iterdir()) == []


def test_feature_is_frozen():
    feature = Feature(0, "A", shapely.box(0, 0, 1, 1), "Polygon")
    with pytest.raises(AttributeError):
        feature.name = "B"
