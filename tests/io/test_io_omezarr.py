"""OME-Zarr images, label images and HCS plates: written by ome-zarr itself, read back here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr
from ome_zarr.format import FormatV04
from ome_zarr.io import parse_url
from ome_zarr.reader import Reader
from ome_zarr.writer import (write_image, write_labels, write_plate_metadata,
                             write_well_metadata)

from svetlana_core import io, plate
from svetlana_core.errors import InputError
from svetlana_core.io import omezarr
from tests.builders import cnn_model_folder, disk_mask, three_disks


def write_ome_zarr(path: Path, image: np.ndarray, axes: str, labels: dict | None = None,
                   v04: bool = False) -> Path:
    """An OME-Zarr image (and label images) written by ome-zarr's own writer."""
    fmt = FormatV04() if v04 else None
    group = zarr.open_group(str(path), mode="w", zarr_format=2 if v04 else 3)
    extra = {"fmt": fmt} if fmt else {}
    write_image(image, group, axes=axes, **extra)
    for name, mask in (labels or {}).items():
        write_labels(mask, group, name=name, axes=axes.replace("c", "").replace("t", ""),
                     scaler=None, **extra)
    return path


@pytest.mark.parametrize("v04", [False, True], ids=["ngff-0.5", "ngff-0.4"])
def test_image_and_label_image_read_as_a_pair(tmp_path, v04):
    image, mask = three_disks()
    rgb = np.stack([image, image // 2, image // 3])  # (C, rows, columns)
    path = write_ome_zarr(tmp_path / "cells.ome.zarr", rgb, "cyx", {"nuclei": mask}, v04=v04)
    assert omezarr.label_names(path) == ["nuclei"]
    read, read_mask = io.load_pair(path, path / "labels" / "nuclei")
    assert read.shape == (3, 64, 64) and read.dtype == np.uint8
    np.testing.assert_array_equal(read, rgb)
    np.testing.assert_array_equal(read_mask, mask)


def test_a_3d_stack_with_channels_and_one_time_point(tmp_path):
    mask = np.zeros((4, 32, 32), np.uint16)
    mask[1:3, 4:10, 4:10] = 5
    mask[0:2, 20:28, 18:30] = 9
    stack = np.random.default_rng(0).integers(0, 4000, (1, 2, 4, 32, 32), dtype=np.uint16)
    path = write_ome_zarr(tmp_path / "embryo.zarr", stack, "tczyx", {"cells": mask})
    image, read_mask = io.load_pair(path, omezarr.mask_of(path))
    assert image.shape == (2, 4, 32, 32)
    np.testing.assert_array_equal(image, stack[0])
    np.testing.assert_array_equal(read_mask, mask)


def test_a_time_series_is_refused(tmp_path):
    path = write_ome_zarr(tmp_path / "movie.zarr", np.zeros((3, 16, 16), np.uint8), "tyx")
    with pytest.raises(InputError, match=r"movie\.zarr is a time series \(axes TYX"):
        io.read_image(path)


def test_a_group_without_multiscales_is_refused(tmp_path):
    group = zarr.open_group(str(tmp_path / "raw.zarr"), mode="w")
    group.create_array("0", shape=(8, 8), dtype="uint8")
    with pytest.raises(InputError, match=r"raw\.zarr is a Zarr group without OME-NGFF "
                                         r"'multiscales' metadata"):
        io.read_image(tmp_path / "raw.zarr")


def test_a_label_image_of_another_shape_is_refused(tmp_path):
    image, _ = three_disks()
    path = write_ome_zarr(tmp_path / "a.ome.zarr", image[None], "cyx",
                          {"small": disk_mask((32, 32), [(8, 8)], 3, [1])})
    with pytest.raises(InputError, match=r"shape \(32, 32\)"):
        io.load_pair(path, path / "labels" / "small")


def test_pairing_a_folder_finds_zarr_images_beside_tiffs(tmp_path):
    image, mask = three_disks()
    write_ome_zarr(tmp_path / "b.ome.zarr", image[None], "cyx",
                   {"cells": mask, "nuclei": (mask > 0).astype(np.uint8)})
    io.write_tiff(tmp_path / "a.tif", image)
    io.write_tiff(tmp_path / "a_mask.tif", mask)
    pairs = io.pair_files(tmp_path)
    assert [(p.name, p.stem, p.mask.name) for p in pairs] == [
        ("a.tif", "a", "a_mask.tif"), ("b.ome.zarr", "b", "cells")]
    chosen = io.pair_files(tmp_path / "b.ome.zarr", label_name="nuclei")
    assert [p.mask for p in chosen] == [tmp_path / "b.ome.zarr" / "labels" / "nuclei"]
    with pytest.raises(InputError, match=r"has no label image 'membranes'; its labels/ group "
                                         r"holds cells, nuclei"):
        io.pair_files(tmp_path, label_name="membranes")


def test_a_zarr_image_without_labels_takes_a_mask_file(tmp_path):
    image, mask = three_disks()
    write_ome_zarr(tmp_path / "images" / "c.ome.zarr", image[None], "cyx")
    (tmp_path / "masks").mkdir()
    with pytest.raises(InputError, match=r"1 OME-Zarr image\(s\) have no label image .*: "
                                         r"c\.ome\.zarr"):
        io.pair_files(tmp_path / "images", tmp_path / "masks")
    io.write_tiff(tmp_path / "masks" / "c.tif", mask)
    [pair] = io.pair_files(tmp_path / "images", tmp_path / "masks")
    assert (pair.name, pair.mask.name) == ("c.ome.zarr", "c.tif")


def write_plate(path: Path, wells: dict[str, np.ndarray]) -> Path:
    """An HCS plate written with ome-zarr: one field per well, each with a label image."""
    root = zarr.open_group(str(path), mode="w")
    rows = sorted({name[0] for name in wells})
    columns = sorted({name[1:] for name in wells}, key=int)
    write_plate_metadata(root, rows, columns, [f"{w[0]}/{w[1:]}" for w in wells])
    for name, mask in wells.items():
        well = root.require_group(name[0]).require_group(name[1:])
        write_well_metadata(well, [{"path": "0"}])
        field = well.require_group("0")
        write_image(((mask > 0) * 200).astype(np.uint8)[None], field, axes="cyx")
        write_labels(mask, field, name="cells", axes="yx", scaler=None)
    return path


def test_an_hcs_plate_gives_its_wells(tmp_path):
    _, mask = three_disks()
    path = write_plate(tmp_path / "screen.ome.zarr", {"B3": mask, "A1": mask, "A12": mask})
    pairs = io.pair_files(path)
    assert [p.name for p in pairs] == ["screen_A01_f0", "screen_A12_f0", "screen_B03_f0"]
    assert [plate.parse_well(p.name).name for p in pairs] == ["A01", "A12", "B03"]
    assert pairs[2].image == path / "B" / "3" / "0"
    assert pairs[2].mask == path / "B" / "3" / "0" / "labels" / "cells"
    assert [p.name for p in io.pair_files(tmp_path)] == [p.name for p in pairs]


def test_class_labels_read_back_by_ome_zarr(tmp_path):
    image, mask = three_disks()
    path = write_ome_zarr(tmp_path / "a.ome.zarr", image[None], "cyx", {"cells": mask})
    objects = pd.DataFrame({"label": [3, 7, 42], "class": ["live", "dead", "live"],
                            "confidence": [0.9, 0.6, 0.75]})
    colours = {"live": "#3cb44b", "dead": (230, 25, 75)}
    for _ in range(2):  # a second prediction replaces the first
        written = omezarr.write_class_labels(path, mask, objects, colours)
    assert written == path / "labels" / omezarr.CLASSES_LABEL
    assert omezarr.label_names(path) == ["cells", "svetlana_classes"]
    [node] = [n for n in Reader(parse_url(str(written)))() if n.zarr.path.endswith("classes")]
    assert node.metadata["properties"] == {
        3: {"class": "live", "confidence": 0.9}, 7: {"class": "dead", "confidence": 0.6},
        42: {"class": "live", "confidence": 0.75}}
    assert node.metadata["color"][7] == pytest.approx([230 / 255, 25 / 255, 75 / 255, 1.0])
    assert node.metadata["color"][3] == pytest.approx([60 / 255, 180 / 255, 75 / 255, 1.0])
    np.testing.assert_array_equal(np.asarray(node.data[0]), mask)


def test_class_labels_into_a_copy_leave_the_input_alone(tmp_path):
    image, mask = three_disks()
    path = write_ome_zarr(tmp_path / "a.zarr", image[None], "cyx", {"cells": mask}, v04=True)
    before = sorted(p.relative_to(path) for p in path.rglob("*"))
    objects = pd.DataFrame({"label": [3, 7, 42], "class": ["x", "y", "x"],
                            "confidence": [1.0, 1.0, 1.0]})
    copy = tmp_path / "out" / "a.ome.zarr"
    omezarr.write_class_labels(path, mask, objects, {"x": "#000000", "y": "#ffffff"},
                               copy_to=copy)
    assert sorted(p.relative_to(path) for p in path.rglob("*")) == before
    assert omezarr.label_names(copy) == ["cells", "svetlana_classes"]
    assert json.loads((copy / "labels" / "svetlana_classes" / ".zattrs").read_text())[
        "image-label"]["version"] == "0.4"  # the NGFF version of the image it joins


@pytest.fixture
def zarr_folder(tmp_path):
    """A folder with one OME-Zarr image (two label images) and a 3-class model."""
    image, mask = three_disks()
    folder = tmp_path / "data"
    write_ome_zarr(folder / "a.ome.zarr", image[None], "cyx",
                   {"cells": mask, "other": (mask == 7).astype(np.uint8)})
    return folder, mask, cnn_model_folder(tmp_path / "model")


def test_predict_writes_labels_into_the_zarr_only_when_asked(tmp_path, zarr_folder):
    from svetlana_core.predict import predict_many

    folder, mask, model = zarr_folder
    image = folder / "a.ome.zarr"
    result = predict_many(model, folder, tmp_path / "out", device="cpu", zarr_labels="copy")
    assert result.done == ["a.ome.zarr"] and omezarr.label_names(image) == ["cells", "other"]
    copy = tmp_path / "out" / "zarr" / "a.ome.zarr"
    [node] = [n for n in Reader(parse_url(str(copy / "labels" / "svetlana_classes")))()
              if n.zarr.path.endswith("classes")]
    by_label = result.objects.set_index("label")
    assert {label: p["class"] for label, p in node.metadata["properties"].items()} == \
        by_label["class"].to_dict()
    assert sorted(node.metadata["properties"]) == [3, 7, 42]
    # Up to date: nothing is redone, until labels are asked into the image itself.
    again = predict_many(model, folder, tmp_path / "out", device="cpu", zarr_labels="copy")
    assert again.skipped == ["a.ome.zarr"]
    into = predict_many(model, folder, tmp_path / "out", device="cpu", zarr_labels="into")
    assert into.done == ["a.ome.zarr"]
    assert omezarr.label_names(image) == ["cells", "other", "svetlana_classes"]
    np.testing.assert_array_equal(io.read_mask(image / "labels" / "svetlana_classes"), mask)


def test_zarr_labels_need_a_zarr_image(tmp_path):
    from svetlana_core.predict import predict_many

    image, mask = three_disks()
    io.write_tiff(tmp_path / "a.tif", image)
    io.write_tiff(tmp_path / "a_mask.tif", mask)
    with pytest.raises(InputError, match="written into OME-Zarr images only, and none"):
        predict_many(cnn_model_folder(tmp_path / "m"), tmp_path, tmp_path / "out",
                     device="cpu", zarr_labels="into")


def test_cli_predicts_a_zarr_with_a_chosen_label_image(tmp_path, zarr_folder, capsys):
    from svetlana_core.cli import main

    folder, _, model = zarr_folder
    code = main(["predict", "--model", str(model), "--images", str(folder), "--out",
                 str(tmp_path / "out"), "--label-name", "other", "--write-into-zarr",
                 "--device", "cpu", "--quiet"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["done"] == 1
    objects = pd.read_csv(tmp_path / "out" / "objects.csv")
    assert objects["label"].tolist() == [1]  # the "other" label image: one object
    assert omezarr.label_names(folder / "a.ome.zarr")[-1] == "svetlana_classes"


def test_cli_refuses_writing_into_and_copying_at_once(tmp_path, zarr_folder, capsys):
    from svetlana_core.cli import main

    folder, _, model = zarr_folder
    code = main(["predict", "--model", str(model), "--images", str(folder), "--out",
                 str(tmp_path / "out"), "--write-into-zarr", "--zarr-copy"])
    assert code == 2
    assert "give either --write-into-zarr or --zarr-copy" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_content_stamp_follows_the_level0_array(tmp_path):
    image, mask = three_disks()
    path = write_ome_zarr(tmp_path / "a.ome.zarr", image[None], "cyx", {"cells": mask})
    stamp = omezarr.content_stamp(path)
    omezarr.write_class_labels(path, mask, pd.DataFrame(
        {"label": [3], "class": ["x"], "confidence": [1.0]}), {"x": "#000000"})
    assert omezarr.content_stamp(path) == stamp  # new labels do not make the image new
    zarr.open_array(str(path / "s0"), mode="r+")[0, :2, :2] = 7  # pixels rewritten in place
    assert omezarr.content_stamp(path) != stamp


def test_cli_trains_and_evaluates_on_zarr_images_without_masks_flag(tmp_path, capsys):
    """The masks default to the images folder; a Zarr image brings its own label image."""
    from svetlana_core.cli import main

    _, mask = three_disks()
    image = np.where(mask == 7, 30, np.where(mask > 0, 220, 10)).astype(np.uint8)
    for k in range(3):
        write_ome_zarr(tmp_path / "data" / f"w{k}.ome.zarr", image[None], "cyx",
                       {"cells": mask})
    rows = [(f"w{k}.ome.zarr", label, "dark" if label == 7 else "bright")
            for k in range(3) for label in (3, 7, 42)]
    pd.DataFrame(rows, columns=["image", "label", "class"]).to_csv(tmp_path / "l.csv",
                                                                   index=False)
    data, labels = str(tmp_path / "data"), str(tmp_path / "l.csv")
    assert main(["train", "--images", data, "--labels", labels, "--out",
                 str(tmp_path / "rf"), "--arch", "rf"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--model", str(tmp_path / "rf"), "--images", data, "--labels",
                 labels]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 9


def test_a_plate_imports_into_a_project_with_its_wells(tmp_path, capsys):
    from svetlana_core.cli import main
    from svetlana_core.store import Project
    from svetlana_core.training import TrainConfig, dataset_from_training_set

    _, mask = three_disks()
    write_plate(tmp_path / "screen.ome.zarr", {"A1": mask, "B3": mask})
    pd.DataFrame([("screen_A01_f0", 3, "x"), ("screen_B03_f0", 42, "y")],
                 columns=["image", "label", "class"]).to_csv(tmp_path / "l.csv", index=False)
    assert main(["import-labels", str(tmp_path / "p"), "--images",
                 str(tmp_path / "screen.ome.zarr"), "--labels", str(tmp_path / "l.csv")]) == 0
    project = Project.open(tmp_path / "p")
    images = project.images()
    assert images[["name", "well"]].values.tolist() == [["screen_A01_f0", "A01"],
                                                        ["screen_B03_f0", "B03"]]
    assert images["mask_path"].iloc[1] == str(tmp_path / "screen.ome.zarr/B/3/0/labels/cells")
    dataset = dataset_from_training_set(project.training_set(), TrainConfig(patch_size=16))
    assert sorted(dataset.labels.tolist()) == [3, 42]


def test_class_labels_of_a_3d_stack_keep_its_pixel_size(tmp_path):
    mask = np.zeros((3, 600, 520), np.uint16)
    mask[1, 10:30, 10:30] = 4
    group = zarr.open_group(str(tmp_path / "s.ome.zarr"), mode="w")
    write_image(np.zeros((2, 3, 600, 520), np.uint8), group, axes="czyx",
                scale={"c": 1.0, "z": 2.0, "y": 0.5, "x": 0.5})
    objects = pd.DataFrame({"label": [4], "class": ["x"], "confidence": [0.5]})
    written = omezarr.write_class_labels(tmp_path / "s.ome.zarr", mask, objects, {"x": "#010203"})
    multiscales = json.loads((written / "zarr.json").read_text())["attributes"]["ome"][
        "multiscales"][0]
    assert [a["name"] for a in multiscales["axes"]] == ["z", "y", "x"]
    scales = [t["scale"] for d in multiscales["datasets"] for t in d["coordinateTransformations"]
              if t["type"] == "scale"]
    assert scales == [[2.0, 0.5, 0.5], [2.0, 1.0, 1.0]]  # planes never halved
    np.testing.assert_array_equal(io.read_mask(written), mask)


def test_a_tiff_in_a_folder_named_like_zarr_is_a_tiff(tmp_path):
    image, mask = three_disks()
    folder = tmp_path / "run.zarr"
    folder.mkdir()
    io.write_tiff(folder / "a.tif", image)
    io.write_tiff(folder / "a_mask.tif", mask)
    assert not io.is_zarr_path(folder / "a.tif")
    assert io.image_name(folder / "a.tif") == "a.tif"
    np.testing.assert_array_equal(io.read_mask(folder / "a_mask.tif"), mask)
    assert [p.name for p in io.pair_files(folder)] == ["a.tif"]  # paired as a plain folder
