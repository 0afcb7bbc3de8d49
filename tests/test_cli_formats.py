"""The CLI with the formats labs already use: QuPath GeoJSON in and out, napari-svetlana
projects in, a plugin's pickled model refused (OME-Zarr: tests/io/test_io_omezarr.py)."""

from __future__ import annotations

import json
from pathlib import Path

import geojson as geojson_lib
import numpy as np
import pandas as pd
import pytest
import shapely.geometry

from svetlana_core import io
from svetlana_core.cli import main
from svetlana_core.store import Project
from svetlana_core.values import PALETTE, rgb
from tests.builders import cnn_model_folder, current_labels, disk_mask
from tests.io.test_io_napari_project import plugin_project

MASKS = {"A01": disk_mask((64, 64), [(10, 10), (10, 40), (40, 25)], 5, [40, 3, 7]),
         "A02": disk_mask((64, 64), [(20, 20), (44, 44)], 6, [5, 9])}
LABELS = [("A01.tif", 3, "immune"), ("A01.tif", 40, "tumour"), ("A02.tif", 9, "tumour")]


@pytest.fixture
def folder(tmp_path) -> Path:
    """Images A01, A02 with masks, and a labels CSV of three of their five objects."""
    data = tmp_path / "data"
    data.mkdir()
    for stem, mask in MASKS.items():
        io.write_tiff(data / f"{stem}.tif", ((mask > 0) * 150 + 20).astype(np.uint8))
        io.write_tiff(data / f"{stem}_mask.tif", mask)
    pd.DataFrame(LABELS, columns=["image", "label", "class"]).to_csv(tmp_path / "labels.csv",
                                                                    index=False)
    return data


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_labels_round_trip_through_qupath_geojson(tmp_path, folder, capsys):
    assert run(capsys, "import-labels", tmp_path / "p", "--images", folder, "--labels",
               tmp_path / "labels.csv")[0] == 0
    code, out, _ = run(capsys, "export-labels", tmp_path / "p", "--format", "geojson",
                       "--out", tmp_path / "qupath")
    assert code == 0 and "3 labels written as QuPath GeoJSON" in out
    assert sorted(p.name for p in (tmp_path / "qupath").iterdir()) == ["A01.geojson",
                                                                        "A02.geojson"]
    text = (tmp_path / "qupath" / "A01.geojson").read_text()
    assert geojson_lib.loads(text).is_valid
    collection = json.loads(text)
    assert collection["type"] == "FeatureCollection"
    feature = next(f for f in collection["features"]
                   if f["properties"]["classification"]["name"] == "immune")
    assert feature["properties"]["objectType"] == "detection"
    assert feature["properties"]["classification"]["color"] == list(rgb(PALETTE[0]))
    outline = shapely.geometry.shape(feature["geometry"])
    assert outline.is_valid
    assert outline.bounds == (35.0, 5.0, 46.0, 16.0)  # x = column, y = row: the disk at (10, 40)
    code, _, err = run(capsys, "import-labels", tmp_path / "q", "--images", folder,
                       "--labels", tmp_path / "qupath")
    assert code == 0, err
    assert "note: 2 GeoJSON file(s) labelled every outline they hold" in err
    assert current_labels(Project.open(tmp_path / "q")) == sorted(LABELS)


def test_predict_writes_geojson_with_the_predicted_classes(tmp_path, folder, capsys):
    model = cnn_model_folder(tmp_path / "m")
    code, _, err = run(capsys, "predict", "--model", model, "--images", folder, "--out",
                       tmp_path / "out", "--geojson", "--device", "cpu", "--quiet")
    assert code == 0, err
    objects = pd.read_csv(tmp_path / "out" / "objects.csv")
    collection = json.loads((tmp_path / "out" / "geojson" / "A02.geojson").read_text())
    found = {f["properties"]["measurements"]["label"]: f for f in collection["features"]}
    assert sorted(found) == [5, 9]
    expected = objects[objects["image"] == "A02.tif"].set_index("label")
    for label, feature in found.items():
        props = feature["properties"]
        assert props["classification"]["name"] == expected.at[label, "class"]
        assert props["measurements"]["confidence"] == pytest.approx(
            expected.at[label, "confidence"])
        assert props["measurements"]["area"] == int((MASKS["A02"] == label).sum())


def test_geojson_classes_the_project_lacks_are_refused_then_added(tmp_path, folder, capsys):
    project = Project.create(tmp_path / "p")
    project.add_class("tumour")
    pd.DataFrame(LABELS, columns=["image", "label", "class"]).to_csv(tmp_path / "l.csv",
                                                                    index=False)
    code, _, err = run(capsys, "import-labels", tmp_path / "p", "--images", folder,
                       "--labels", tmp_path / "l.csv")
    assert code == 2
    assert "names class(es) that project" in err and "'immune' (its classes: 'tumour')" in err
    assert project.images().empty and project.labels().empty
    assert run(capsys, "import-labels", tmp_path / "p", "--images", folder, "--labels",
               tmp_path / "l.csv", "--add-classes")[0] == 0
    assert current_labels(project) == sorted(LABELS)


def test_a_geojson_that_is_no_feature_collection_changes_nothing(tmp_path, folder, capsys):
    (tmp_path / "A01.geojson").write_text(json.dumps({"type": "Point", "coordinates": [1, 2]}))
    code, _, err = run(capsys, "import-labels", tmp_path / "p", "--images", folder,
                       "--labels", tmp_path / "A01.geojson")
    assert code == 2 and "FeatureCollection" in err and err.count("\n") == 1
    assert not (tmp_path / "p").exists()


def _outlines_without_masks(tmp_path, folder, capsys):
    """The labels exported as QuPath GeoJSON into ``qupath/``, and a folder ``bare/`` of the
    images without their masks."""
    assert run(capsys, "import-labels", tmp_path / "p", "--images", folder, "--labels",
               tmp_path / "labels.csv")[0] == 0
    run(capsys, "export-labels", tmp_path / "p", "--format", "geojson", "--out",
        tmp_path / "qupath")
    images = tmp_path / "bare"
    images.mkdir()
    for stem in MASKS:
        (images / f"{stem}.tif").write_bytes((folder / f"{stem}.tif").read_bytes())
    return images


def test_geojson_outlines_become_the_masks(tmp_path, folder, capsys):
    """Images without masks: QuPath's outlines are the segmentation."""
    images = _outlines_without_masks(tmp_path, folder, capsys)
    code, _, err = run(capsys, "import-labels", tmp_path / "q", "--images", images,
                       "--labels", tmp_path / "qupath", "--geojson-as-mask")
    assert code == 0, err
    project = Project.open(tmp_path / "q")
    labels = project.labels()
    assert sorted(labels["class"]) == ["immune", "tumour", "tumour"]
    masks = dict(project.images()[["name", "mask_path"]].values)
    for image, label, cls in labels[["image", "label", "class"]].itertuples(index=False):
        new = io.read_mask(masks[image]) == label
        # the outline rasterised back gives the very same pixels as a labelled old object
        same = [lab for im, lab, c in LABELS if im == image and c == cls
                and np.array_equal(MASKS[image[:3]] == lab, new)]
        assert len(same) == 1, (image, label, cls)


def test_napari_svetlana_project_imports_with_class_names(tmp_path, capsys):
    plugin = plugin_project(tmp_path / "plugin")
    code, out, err = run(capsys, "import-labels", tmp_path / "p", "--napari", plugin,
                         "--class-names", "resting,activated,other")
    assert code == 0, err
    assert "3 images and 4 labels stored" in out
    assert current_labels(Project.open(tmp_path / "p")) == [
        ("A01.tif", 3, "activated"), ("A01.tif", 7, "resting"), ("A02.tif", 5, "other"),
        ("A02.tif", 9, "resting")]


def test_a_plugin_model_is_refused_with_how_to_retrain(tmp_path, folder, capsys):
    import torch

    torch.save({"model": torch.nn.Linear(2, 2), "patch_size": 32}, tmp_path / "plugin.pth")
    code, _, err = run(capsys, "predict", "--model", tmp_path / "plugin.pth", "--images",
                       folder, "--out", tmp_path / "out")
    assert code == 2
    assert "pickled torch module" in err and "import-labels PROJECT --napari FOLDER" in err


def test_a_napari_svetlana_folder_pairs_by_sorted_order_and_says_so(tmp_path, capsys):
    from tests.io.test_io_napari_project import A01, A02, write_images

    plugin = write_images(tmp_path / "plugin", {"A01.tif": A01, "A02.tif": A02},
                          mask_names=["A01_cp_masks.tif", "b.tif"])
    model = cnn_model_folder(tmp_path / "m")
    code, out, err = run(capsys, "predict", "--model", model, "--images", plugin, "--out",
                         tmp_path / "out", "--device", "cpu", "--quiet")
    assert code == 0, err
    assert json.loads(out)["done"] == 2
    assert err.count("note: ") == 2 and "image A02.tif paired with mask b.tif" in err
    objects = pd.read_csv(tmp_path / "out" / "objects.csv")
    assert objects.groupby("image")["label"].apply(list).to_dict() == {
        "A01.tif": [3, 7, 40], "A02.tif": [5, 9]}


def test_masks_made_from_outlines_never_replace_earlier_ones(tmp_path, folder, capsys):
    """A second --geojson-as-mask import that is refused removes its own masks only."""
    images = _outlines_without_masks(tmp_path, folder, capsys)
    argv = ["import-labels", tmp_path / "q", "--images", images, "--labels", tmp_path / "qupath",
            "--geojson-as-mask"]
    assert run(capsys, *argv)[0] == 0
    first = sorted((tmp_path / "q" / "masks").rglob("*.tif"))
    code, _, err = run(capsys, *argv)  # the same images again: refused, they have masks
    assert code == 2 and "is already in the project" in err
    assert sorted((tmp_path / "q" / "masks").rglob("*.tif")) == first  # earlier masks kept
    assert len(list((tmp_path / "q" / "masks").iterdir())) == 1  # no batch folder left
