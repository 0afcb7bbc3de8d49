"""ui.predictions: what the Predict page sends to a prediction job (no server)."""

import numpy as np
import pandas as pd
import pytest

from svetlana_core.errors import InputError
from tests.builders import disk_mask, write_pair
from ui import predictions

IMAGES = pd.DataFrame({"name": ["a.tif", "b.tif"]})


def test_project_scopes_name_the_images():
    assert predictions.prediction_source("this image", "b.tif", IMAGES) == {
        "kind": "project", "images": ["b.tif"]}
    assert predictions.prediction_source("all images of the project", "b.tif", IMAGES) == {
        "kind": "project", "images": ["a.tif", "b.tif"]}


@pytest.fixture
def root(tmp_path, monkeypatch):
    root = tmp_path / "root"
    monkeypatch.setenv("SVETLANA_DATA_ROOT", str(root))
    mask = disk_mask((16, 16), [(8, 8)], 3, [1])
    write_pair(root / "plate", "x_A01", np.ones((16, 16), np.uint8), mask)
    return root


def test_a_server_folder_is_resolved_inside_the_data_roots(root):
    source = predictions.prediction_source("a server folder", "a.tif", IMAGES, "plate", "")
    assert source == {"kind": "folder", "images": str(root / "plate"), "masks": None}


def test_a_folder_outside_the_roots_or_with_a_link_out_is_refused(root, tmp_path):
    with pytest.raises(InputError, match=r"folder \.\./elsewhere is outside the data roots"):
        predictions.prediction_source("a server folder", "a.tif", IMAGES, "../elsewhere")
    outside = tmp_path / "outside.tif"
    outside.write_bytes((root / "plate" / "x_A01.tif").read_bytes())
    (root / "plate" / "x_A02.tif").symlink_to(outside)
    (root / "plate" / "x_A02_mask.tif").write_bytes((root / "plate" / "x_A01_mask.tif")
                                                    .read_bytes())
    with pytest.raises(InputError, match=r"x_A02\.tif is a link to .*outside the data roots"):
        predictions.prediction_source("a server folder", "a.tif", IMAGES, "plate")


def test_the_geojson_download_holds_every_predicted_object_with_its_class():
    import json

    from tests.builders import three_disks
    from ui.predictions import _geojson_bytes

    _, mask = three_disks()
    table = pd.DataFrame({"label": [3, 7, 42], "class": ["a", "b", "a"],
                          "confidence": [0.9, 0.8, 0.7], "p_a": [0.9, 0.2, 0.7],
                          "p_b": [0.1, 0.8, 0.3]})
    collection = json.loads(_geojson_bytes(mask, table, {"a": "#ff0000", "b": "#00ff00"},
                                           "x.tif"))
    got = {f["properties"]["measurements"]["label"]: (
        f["properties"]["classification"]["name"], f["properties"]["classification"]["color"],
        f["properties"]["measurements"]["p_b"]) for f in collection["features"]}
    assert got == {3: ("a", [255, 0, 0], 0.1), 7: ("b", [0, 255, 0], 0.8),
                   42: ("a", [255, 0, 0], 0.3)}
