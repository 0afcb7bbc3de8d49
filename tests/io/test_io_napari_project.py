"""svetlana_core.io.napari_project: napari-svetlana projects paired, their labels read safely,
their models refused.

The projects are built the way the plugin builds them: TIFFs in Images/ and Masks/, objects
from ``regionprops(label(mask))`` (so the plugin's ids are not the mask's), and the labels dict
written with ``torch.save`` to Svetlana/labels.
"""

import fractions
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from skimage.measure import label, regionprops

from svetlana_core.errors import InputError
from svetlana_core.io.napari_project import (
    NapariLabels,
    is_napari_project,
    looks_like_plugin_model,
    pair_napari_project,
    plugin_model_message,
    read_napari_labels,
    refuse_plugin_model,
)
from svetlana_core.io.pairing import Pair
from tests.builders import ball_mask, disk_mask

#: Mask of A01: ids 40, 3, 7 in raster order, so the plugin (which relabels) calls them 1, 2, 3:
#: its id 3 is the mask's 7, and its id 2 the mask's 3.
A01 = disk_mask((64, 64), [(10, 10), (10, 40), (40, 25)], 5, [40, 3, 7])
#: Mask of A02: ids 5 and 9 (plugin ids 1 and 2).
A02 = disk_mask((64, 64), [(20, 20), (44, 44)], 6, [5, 9])


def plugin_props(mask):
    """What the plugin keeps of each object of a mask (it annotates the relabelled mask)."""
    return [{"centroid": p.centroid, "coords": p.coords, "label": p.label}
            for p in regionprops(label(mask, background=0))]


def write_images(folder, masks, image_names=None, mask_names=None):
    """Images/ and Masks/ of a plugin project, as TIFFs; returns the folder."""
    image_names = image_names or list(masks)
    mask_names = mask_names or list(masks)
    (folder / "Images").mkdir(parents=True, exist_ok=True)
    (folder / "Masks").mkdir(parents=True, exist_ok=True)
    for image_name, mask_name, mask in zip(image_names, mask_names, masks.values()):
        tifffile.imwrite(folder / "Images" / image_name, ((mask > 0) * 150 + 20).astype(np.uint8))
        tifffile.imwrite(folder / "Masks" / mask_name, mask)
    return folder


def save_labels(folder, image_path, labels_path, regionprops_, labels_list, patch_size=32,
                **extra):
    """Svetlana/labels as the plugin's save_annotations writes it."""
    res_dict = {"image_path": image_path, "labels_path": labels_path,
                "regionprops": regionprops_, "labels_list": labels_list,
                "patch_size": patch_size, **extra}
    (folder / "Svetlana").mkdir(exist_ok=True)
    torch.save(res_dict, folder / "Svetlana" / "labels")
    return folder / "Svetlana" / "labels"


def plugin_project(folder):
    """A01 annotated: plugin 3 (mask 7) key 1, plugin 2 (mask 3) key 2; A02: plugin 1 (mask 5)
    key 3, plugin 2 (mask 9) key 1; A03 not annotated."""
    write_images(folder, {"A01.tif": A01, "A02.tif": A02, "A03.tif": A02})
    p01, p02 = plugin_props(A01), plugin_props(A02)
    save_labels(folder, [f"Images/A0{i}.tif" for i in (1, 2, 3)],
                [f"Masks/A0{i}.tif" for i in (1, 2, 3)],
                [[p01[2], p01[1]], [p02[0], p02[1]], []], [[0, 1], [2, 0], []], patch_size=48)
    return folder


def rows(table):
    return list(table.itertuples(index=False, name=None))


# --------------------------------------------------------------------------- pairing


def test_is_napari_project(tmp_path):
    assert not is_napari_project(tmp_path)
    (tmp_path / "Images").mkdir()
    assert not is_napari_project(tmp_path)
    (tmp_path / "Masks").write_text("a file, not a folder")
    assert not is_napari_project(tmp_path)
    (tmp_path / "Masks").unlink()
    (tmp_path / "Masks").mkdir()
    assert is_napari_project(tmp_path)


def test_pairing_by_sorted_order_notes_names_that_differ(tmp_path):
    write_images(tmp_path, {"b": A02, "a": A01}, ["cell_2.tif", "cell_1.tif"],
                 ["cell_2_mask.tif", "cell_1.tif"])
    (tmp_path / "Images" / ".DS_Store").write_bytes(b"")
    (tmp_path / "Masks" / "notes.txt").write_text("not a mask")
    pairs, notes = pair_napari_project(tmp_path)
    assert pairs == [
        Pair(tmp_path / "Images" / "cell_1.tif", tmp_path / "Masks" / "cell_1.tif", "cell_1"),
        Pair(tmp_path / "Images" / "cell_2.tif", tmp_path / "Masks" / "cell_2_mask.tif",
             "cell_2"),
    ]
    assert notes == ["image cell_2.tif paired with mask cell_2_mask.tif by sorted order, as "
                     "napari-svetlana does; names differ"]


def test_pairing_follows_sorted_order_not_names(tmp_path):
    write_images(tmp_path, {"1": A01, "2": A02}, ["x.tif", "y.tif"], ["y.tif", "z.tif"])
    pairs, notes = pair_napari_project(tmp_path)
    assert [(p.image.name, p.mask.name) for p in pairs] == [("x.tif", "y.tif"),
                                                          ("y.tif", "z.tif")]
    assert len(notes) == 2


def test_pairing_refuses_different_counts(tmp_path):
    write_images(tmp_path, {"A01.tif": A01, "A02.tif": A02})
    tifffile.imwrite(tmp_path / "Masks" / "A03.tif", A02)
    with pytest.raises(InputError, match=r"napari-svetlana project .* has 2 images in Images/ "
                                         r"but 3 masks in Masks/; the plugin pairs them by "
                                         r"sorted order"):
        pair_napari_project(tmp_path)


def test_pairing_refuses_a_folder_that_is_not_a_project(tmp_path):
    (tmp_path / "Images").mkdir()
    with pytest.raises(InputError, match=r"is not a napari-svetlana project: it needs the "
                                         r"sub-folders Images/ and Masks/"):
        pair_napari_project(tmp_path)
    (tmp_path / "Masks").mkdir()
    with pytest.raises(InputError, match=r"holds no images in Images/"):
        pair_napari_project(tmp_path)


# --------------------------------------------------------------------------- labels


def test_labels_are_matched_by_pixels_not_by_plugin_id(tmp_path):
    result = read_napari_labels(plugin_project(tmp_path))
    assert isinstance(result, NapariLabels)
    assert rows(result.table) == [("A01.tif", 3, "2"), ("A01.tif", 7, "1"),
                                  ("A02.tif", 5, "3"), ("A02.tif", 9, "1")]
    assert list(result.table.columns) == ["image", "label", "class"]
    assert result.table["label"].dtype == np.int64
    assert result.notes == []
    assert result.patch_size == 48
    assert result.pairs == [Pair(tmp_path / "Images" / f"A0{i}.tif",
                                 tmp_path / "Masks" / f"A0{i}.tif", f"A0{i}") for i in (1, 2, 3)]


def test_class_names_name_the_plugin_indexes(tmp_path):
    result = read_napari_labels(plugin_project(tmp_path), class_names=["round", "flat", "other"])
    assert rows(result.table) == [("A01.tif", 3, "flat"), ("A01.tif", 7, "round"),
                                  ("A02.tif", 5, "other"), ("A02.tif", 9, "round")]


@pytest.mark.parametrize(("class_names", "message"), [
    (["round", "flat"], r"uses class index 2 \(key 3\) but class_names has 2 name\(s\): "
                        r"\['round', 'flat'\]"),
    ("round", r"class_names must be a list of names, got 'round'"),
    (["round", ""], r"class_names must be non-empty texts, got \['round', ''\]"),
    ([], r"class_names must be non-empty texts, got \[\]"),
])
def test_class_names_must_cover_every_index(tmp_path, class_names, message):
    with pytest.raises(InputError, match=message):
        read_napari_labels(plugin_project(tmp_path), class_names=class_names)


def test_3d_objects(tmp_path):
    mask = ball_mask((8, 24, 24), [(3, 6, 6), (4, 16, 16)], 3, [30, 9])
    write_images(tmp_path, {"stack.tif": mask})
    props = plugin_props(mask)
    assert [p["coords"].shape[1] for p in props] == [3, 3]
    save_labels(tmp_path, ["Images/stack.tif"], ["Masks/stack.tif"], [[props[1], props[0]]],
                [[1, 0]], patch_size="16")
    result = read_napari_labels(tmp_path)
    assert rows(result.table) == [("stack.tif", 9, "2"), ("stack.tif", 30, "1")]
    assert result.patch_size == 16


def test_masks_relabelled_by_the_plugin_still_match(tmp_path):
    # The plugin may save its relabelled mask over the file: ids 1..N then.
    plugin_project(tmp_path)
    tifffile.imwrite(tmp_path / "Masks" / "A01.tif", label(A01).astype(np.uint16))
    table = read_napari_labels(tmp_path).table
    assert rows(table[table["image"] == "A01.tif"]) == [("A01.tif", 2, "2"), ("A01.tif", 3, "1")]


def test_names_that_differ_come_from_the_labels_file(tmp_path):
    write_images(tmp_path, {"a": A01}, ["cell_1.tif"], ["seg_1.tif"])
    save_labels(tmp_path, ["Images/cell_1.tif"], ["Masks/seg_1.tif"],
                [[plugin_props(A01)[0]]], [[1]])
    result = read_napari_labels(tmp_path)
    assert rows(result.table) == [("cell_1.tif", 40, "2")]
    assert result.pairs == [Pair(tmp_path / "Images" / "cell_1.tif",
                                 tmp_path / "Masks" / "seg_1.tif", "cell_1")]


def test_absolute_paths_that_no_longer_exist_fall_back_to_images_and_masks(tmp_path):
    write_images(tmp_path, {"A01.tif": A01})
    labels = save_labels(tmp_path, ["/gone/project/Images/A01.tif"],
                         ["/gone/project/Masks/A01.tif"], [[plugin_props(A01)[1]]], [[0]])
    result = read_napari_labels(tmp_path)
    assert rows(result.table) == [("A01.tif", 3, "1")]
    assert result.pairs == [Pair(tmp_path / "Images" / "A01.tif", tmp_path / "Masks" / "A01.tif",
                                 "A01")]
    assert result.notes == [
        f"image path /gone/project/Images/A01.tif in {labels} does not exist; using "
        f"{tmp_path / 'Images' / 'A01.tif'} (the same file name in Images/)",
        f"mask path /gone/project/Masks/A01.tif in {labels} does not exist; using "
        f"{tmp_path / 'Masks' / 'A01.tif'} (the same file name in Masks/)",
    ]


def test_absolute_paths_outside_the_folder_use_the_folder_copy(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    write_images(old, {"A01.tif": A02})  # the old copy: other objects, which must not be read
    write_images(new, {"A01.tif": A01})
    save_labels(new, [str(old / "Images" / "A01.tif")], [str(old / "Masks" / "A01.tif")],
                [[plugin_props(A01)[2]]], [[1]])
    result = read_napari_labels(new)
    assert rows(result.table) == [("A01.tif", 7, "2")]
    assert result.pairs[0].mask == new / "Masks" / "A01.tif"
    assert result.notes == [
        f"{what} path {old / sub / 'A01.tif'} in {new / 'Svetlana' / 'labels'} is outside the "
        f"project folder; using {new / sub / 'A01.tif'} (the same file name in {sub}/)"
        for what, sub in (("image", "Images"), ("mask", "Masks"))]


def test_windows_relative_paths_read_without_a_note(tmp_path):
    write_images(tmp_path, {"A01.tif": A01})
    save_labels(tmp_path, ["Images\\A01.tif"], ["Masks\\A01.tif"], [[plugin_props(A01)[0]]],
                [[0]])
    result = read_napari_labels(tmp_path)
    assert rows(result.table) == [("A01.tif", 40, "1")]
    assert result.notes == []


def test_an_image_listed_twice_is_refused(tmp_path):
    write_images(tmp_path, {"A01.tif": A01})
    save_labels(tmp_path, ["Images/A01.tif", "/old/Images/A01.tif"],
                ["Masks/A01.tif", "Masks/A01.tif"], [[], []], [[], []])
    with pytest.raises(InputError, match=r"labels file .*labels lists image name\(s\) A01.tif "
                                         r"more than once"):
        read_napari_labels(tmp_path)


def test_a_path_found_nowhere_is_refused(tmp_path):
    write_images(tmp_path, {"A01.tif": A01})
    save_labels(tmp_path, ["Images/gone.tif"], ["Masks/A01.tif"], [[]], [[]])
    with pytest.raises(InputError, match=r"labels file .*labels names image 'Images/gone.tif', "
                                         r"which is not a file in .* \(nor is Images/gone.tif\)"):
        read_napari_labels(tmp_path)


def test_objects_that_match_no_mask_label_are_left_out_with_a_note(tmp_path):
    write_images(tmp_path, {"A01.tif": A01})
    props = plugin_props(A01)
    outside = {"coords": np.array([[63, 10], [64, 10]]), "label": 8}
    background = {"coords": np.array([[0, 0], [0, 1]]), "label": 9}
    # two pixels of mask 3, two of mask 7: no majority
    straddle = {"coords": np.array([[10, 40], [10, 41], [40, 25], [40, 26]]), "label": 10}
    save_labels(tmp_path, ["Images/A01.tif"], ["Masks/A01.tif"],
                [[props[0], outside, background, straddle]], [[0, 1, 1, 1]])
    result = read_napari_labels(tmp_path)
    assert rows(result.table) == [("A01.tif", 40, "1")]
    assert result.notes == [
        "image A01.tif: annotated object 2 of 4 (plugin label 8) has pixels outside the mask "
        "(shape (64, 64)); it is not imported",
        "image A01.tif: annotated object 3 of 4 (plugin label 9) lies on the background of the "
        "mask only; it is not imported",
        "image A01.tif: annotated object 4 of 4 (plugin label 10) spans mask labels 3, 7 with "
        "none covering most of its 4 pixels; it is not imported",
    ]


def test_a_majority_label_matches_an_object_that_changed_a_little(tmp_path):
    write_images(tmp_path, {"A01.tif": A01})
    coords = np.array([[10, 40], [10, 41], [10, 42], [40, 25], [0, 0]])  # 3 of 5 on mask 3
    save_labels(tmp_path, ["Images/A01.tif"], ["Masks/A01.tif"], [[{"coords": coords}]], [[2]])
    assert rows(read_napari_labels(tmp_path).table) == [("A01.tif", 3, "3")]


def test_an_object_annotated_twice(tmp_path):
    write_images(tmp_path, {"A01.tif": A01})
    props = plugin_props(A01)
    save_labels(tmp_path, ["Images/A01.tif"], ["Masks/A01.tif"],
                [[props[0], props[0], props[1], props[1]]], [[0, 0, 0, 1]])
    result = read_napari_labels(tmp_path)
    assert rows(result.table) == [("A01.tif", 40, "1")]
    assert result.notes == ["image A01.tif: mask label 3 was annotated with classes 1, 2; it is "
                            "not imported"]


def test_no_annotation_gives_an_empty_table(tmp_path):
    write_images(tmp_path, {"A01.tif": A01})
    save_labels(tmp_path, ["Images/A01.tif"], ["Masks/A01.tif"], [[]], [[]])
    table = read_napari_labels(tmp_path).table
    assert table.empty and list(table.columns) == ["image", "label", "class"]
    assert table["label"].dtype == np.int64


@pytest.mark.parametrize(("patch_size", "expected"), [(32, 32), ("64", 64), (np.int64(16), 16),
                                                      ("auto", None), (0, None), (2.5, None)])
def test_patch_size(tmp_path, patch_size, expected):
    write_images(tmp_path, {"A01.tif": A01})
    save_labels(tmp_path, ["Images/A01.tif"], ["Masks/A01.tif"], [[]], [[]],
                patch_size=patch_size)
    result = read_napari_labels(tmp_path)
    assert result.patch_size == expected
    assert len(result.notes) == (expected is None)


def test_check_files_sees_every_path_before_anything_is_read(tmp_path):
    plugin_project(tmp_path)
    (tmp_path / "Masks" / "A01.tif").write_bytes(b"not a tiff")  # reading it would fail
    seen = []

    def refuse(paths):
        seen.extend(paths)
        raise InputError("file outside the data roots")

    with pytest.raises(InputError, match=r"^file outside the data roots$"):
        read_napari_labels(tmp_path, check_files=refuse)
    assert [(p.parent.name, p.name) for p in seen] == [
        ("Images", "A01.tif"), ("Masks", "A01.tif"), ("Images", "A02.tif"),
        ("Masks", "A02.tif"), ("Images", "A03.tif"), ("Masks", "A03.tif")]


# --------------------------------------------------------------------------- bad files


def labels_dict(**changes):
    props = plugin_props(A01)
    content = {"image_path": ["Images/A01.tif"], "labels_path": ["Masks/A01.tif"],
               "regionprops": [[props[0]]], "labels_list": [[0]], "patch_size": 32}
    content.update(changes)
    return {key: value for key, value in content.items() if value is not None}


@pytest.mark.parametrize(("content", "message"), [
    (["Images/A01.tif"], r" does not hold a dict \(found list\)"),
    (labels_dict(regionprops=None), r" lacks key\(s\) regionprops; it has \['image_path', "),
    (labels_dict(labels_list="0"), r": 'labels_list' is a str, expected a list \(one item per "
                                   r"image\)"),
    (labels_dict(labels_path=["Masks/A01.tif", "Masks/A02.tif"]),
     r" lists different numbers of images: 1 in 'image_path', 2 in 'labels_path', 1 in "
     r"'regionprops', 1 in 'labels_list'"),
    (labels_dict(image_path=[3]), r": 'image_path' item\(s\) 1 are not paths \(text\)"),
    (labels_dict(labels_list=[[0, 1]]), r": image Images/A01.tif has 1 objects in 'regionprops' "
                                        r"but 2 classes in 'labels_list'"),
    (labels_dict(labels_list=[3]), r": 'labels_list' of image Images/A01.tif is a int, "
                                   r"expected a list"),
    (labels_dict(regionprops=[[{"centroid": (1.0, 2.0)}]]),
     r": object\(s\) 1 of image Images/A01.tif are not dicts with 'coords'"),
    (labels_dict(labels_list=[[-1]]), r": 'labels_list' of image Images/A01.tif holds \[-1\] at "
                                      r"position\(s\) 1; a class is a 0-based integer index"),
    (labels_dict(labels_list=[["a"]]), r": 'labels_list' of image Images/A01.tif holds "
                                      r"\['a'\] at position\(s\) 1"),
    (labels_dict(labels_list=[[True]]), r": 'labels_list' of image Images/A01.tif holds "
                                       r"\[True\] at position\(s\) 1"),
    (labels_dict(regionprops=[[{"coords": np.zeros((3, 3), np.int64)}]]),
     r": object 1 of image A01.tif has coords of shape \(3, 3\) and type int64, but mask .*A01"
     r".tif is 2D \(shape \(64, 64\)\): expected integer \(N, 2\) coordinates"),
    (labels_dict(regionprops=[[{"coords": np.ones((3, 2))}]]),
     r": object 1 of image A01.tif has coords of shape \(3, 2\) and type float64"),
])
def test_a_labels_dict_of_the_wrong_shape_is_refused(tmp_path, content, message):
    write_images(tmp_path, {"A01.tif": A01})
    (tmp_path / "Svetlana").mkdir()
    torch.save(content, tmp_path / "Svetlana" / "labels")
    with pytest.raises(InputError, match=r"napari-svetlana labels file .*labels" + message):
        read_napari_labels(tmp_path)


def test_a_missing_or_damaged_labels_file_is_refused(tmp_path):
    write_images(tmp_path, {"A01.tif": A01})
    with pytest.raises(InputError, match=r"napari-svetlana labels file .*Svetlana/labels does "
                                         r"not exist"):
        read_napari_labels(tmp_path)
    (tmp_path / "Svetlana").mkdir()
    (tmp_path / "Svetlana" / "labels").write_bytes(b"PK\x03\x04 half a zip")
    with pytest.raises(InputError, match=r"^could not read napari-svetlana labels file "
                                         r".*labels: not a file saved by torch \(RuntimeError: "
                                         r"PytorchStreamReader failed reading zip archive: not a "
                                         r"ZIP archive\)$"):
        read_napari_labels(tmp_path)


def _write_marker(path):
    Path(path).write_text("code from the labels file ran")


class _Payload:
    """Unpickling this calls _write_marker: what a crafted labels file could do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return _write_marker, (str(self.marker),)


def test_a_labels_file_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    write_images(tmp_path, {"A01.tif": A01})
    marker = tmp_path / "ran"
    prop = {**plugin_props(A01)[0], "label": _Payload(marker)}
    labels = save_labels(tmp_path, ["Images/A01.tif"], ["Masks/A01.tif"], [[prop]], [[0]])
    with pytest.raises(InputError, match=r"napari-svetlana labels file .*labels refers to "
                                         r"\S*_write_marker, which is not loaded for safety"):
        read_napari_labels(tmp_path)
    assert not marker.exists()
    # The control: a full unpickle (what the plugin does) would have run it.
    torch.load(labels, weights_only=False)
    assert marker.read_text() == "code from the labels file ran"


def test_a_labels_file_with_any_other_class_is_refused(tmp_path):
    write_images(tmp_path, {"A01.tif": A01})
    save_labels(tmp_path, ["Images/A01.tif"], ["Masks/A01.tif"], [[]], [[]],
                ratio=fractions.Fraction(1, 3))
    with pytest.raises(InputError, match=r"refers to fractions.Fraction, which is not loaded"):
        read_napari_labels(tmp_path)


def test_an_object_array_is_refused(tmp_path):
    write_images(tmp_path, {"A01.tif": A01})
    save_labels(tmp_path, ["Images/A01.tif"], ["Masks/A01.tif"], [[]], [[]],
                extra=np.array([1, "a"], dtype=object))
    with pytest.raises(InputError, match=r"refers to numpy.dtypes.ObjectDType, which is not loaded"):
        read_napari_labels(tmp_path)


def test_a_file_written_with_numpy_1_reads(tmp_path):
    # numpy 1.x pickled its arrays as numpy.core.multiarray._reconstruct: rename them so.
    plugin_project(tmp_path)
    path = tmp_path / "Svetlana" / "labels"
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    pickled = next(name for name in members if name.endswith("/data.pkl"))
    assert b"numpy._core.multiarray" in members[pickled]
    members[pickled] = members[pickled].replace(b"numpy._core.multiarray",
                                                b"numpy.core.multiarray")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    path.write_bytes(buffer.getvalue())
    assert rows(read_napari_labels(tmp_path).table) == [
        ("A01.tif", 3, "2"), ("A01.tif", 7, "1"), ("A02.tif", 5, "3"), ("A02.tif", 9, "1")]


# --------------------------------------------------------------------------- plugin models


def test_a_plugin_model_is_recognised_and_refused(tmp_path):
    model = tmp_path / "training_10.pth"
    torch.save({"model": torch.nn.Linear(2, 2), "patch_size": 32, "norm_type": "min max"}, model)
    assert looks_like_plugin_model(model)
    legacy = tmp_path / "old.pt"
    torch.save({"model": torch.nn.Linear(2, 2)}, legacy, _use_new_zipfile_serialization=False)
    assert looks_like_plugin_model(legacy)
    with pytest.raises(InputError, match=r"training_10.pth is a napari-svetlana model, a pickled "
                                         r"torch module, which Svetlana does not load .*arbitrary "
                                         r"code.*python -m svetlana_core import-labels PROJECT "
                                         r"--napari FOLDER, then python -m svetlana_core train "
                                         r"PROJECT --out MODEL$"):
        refuse_plugin_model(model)
    assert "\n" not in plugin_model_message(model)


def test_other_files_are_not_plugin_models(tmp_path):
    state = tmp_path / "resnet18.pth"
    torch.save(torch.nn.Linear(2, 2).state_dict(), state)  # an ImageNet-style state dict
    renamed = tmp_path / "model.bin"
    torch.save({"model": torch.nn.Linear(2, 2)}, renamed)
    text = tmp_path / "notes.pth"
    text.write_text("torch.nn.modules")
    assert [looks_like_plugin_model(p) for p in (state, renamed, text, tmp_path / "gone.pth",
                                                 tmp_path)] == [False] * 5


def test_the_module_imports_without_torch():
    # torch loads inside read_napari_labels only, so the CLI and the app start without it.
    code = ("import sys, svetlana_core.io.napari_project; "
            "sys.exit('torch' in sys.modules)")
    root = Path(__file__).resolve().parents[2]
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0
