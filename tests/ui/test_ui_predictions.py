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
