"""svetlana_core.io.pairing: images paired with masks by file stem; folder_files."""

import numpy as np
import pytest

from svetlana_core.errors import InputError
from svetlana_core.io import (
    IMAGE_EXTENSIONS,
    MASK_EXTENSIONS,
    Pair,
    folder_files,
    group_by_pattern,
    Unpaired,
    load_pair,
    pair_files,
    pair_folder,
)
from svetlana_core.plate import parse_well
from tests.builders import named


def touch(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def as_names(pairs):
    return [(pair.stem, pair.image.name, pair.mask.name) for pair in pairs]


def test_pair_files_separate_folders(tmp_path):
    touch(tmp_path / "images", "B.png", "A.TIF", "C.jpeg", "notes.txt", ".hidden.png")
    touch(tmp_path / "masks", "A.tif", "B.png", "C.npy", "unused.tif")
    pairs = pair_files(tmp_path / "images", tmp_path / "masks")
    assert as_names(pairs) == [
        ("A", "A.TIF", "A.tif"),
        ("B", "B.png", "B.png"),
        ("C", "C.jpeg", "C.npy"),
    ]
    assert pairs[0] == Pair(tmp_path / "images" / "A.TIF", tmp_path / "masks" / "A.tif", "A")


def test_pair_files_every_suffix_in_one_folder(tmp_path):
    touch(
        tmp_path,
        "a.png", "a_cp_masks.png",
        "b.tif", "b_seg.npy",
        "c.tif", "c_mask.tif",
        "d.png", "d_masks.TIF",
        "e.png", "e_label.png",
        "f.jpg", "f_labels.tiff",
        "g.tif", "g.npy",
        "h.png", "h_MASK.png",
    )
    pairs = pair_files(tmp_path)
    assert as_names(pairs) == [
        ("a", "a.png", "a_cp_masks.png"),
        ("b", "b.tif", "b_seg.npy"),
        ("c", "c.tif", "c_mask.tif"),
        ("d", "d.png", "d_masks.TIF"),
        ("e", "e.png", "e_label.png"),
        ("f", "f.jpg", "f_labels.tiff"),
        ("g", "g.tif", "g.npy"),
        ("h", "h.png", "h_MASK.png"),
    ]


def test_pair_files_suffixes_in_a_separate_folder(tmp_path):
    touch(tmp_path / "images", "a.png", "b.png")
    touch(tmp_path / "masks", "a_cp_masks.tif", "b_seg.npy")
    assert as_names(pair_files(tmp_path / "images", tmp_path / "masks")) == [
        ("a", "a.png", "a_cp_masks.tif"),
        ("b", "b.png", "b_seg.npy"),
    ]


def test_pair_files_same_folder_given_twice(tmp_path):
    touch(tmp_path, "a.png", "a_mask.png")
    assert as_names(pair_files(tmp_path, tmp_path)) == [("a", "a.png", "a_mask.png")]


def test_pair_files_seg_suffix_only_for_npy(tmp_path):
    touch(tmp_path, "x_seg.png", "x_seg_mask.png")
    assert as_names(pair_files(tmp_path)) == [("x_seg", "x_seg.png", "x_seg_mask.png")]


def test_pair_files_missing_masks_are_listed(tmp_path):
    names = [f"img{i}.png" for i in range(7)]
    touch(tmp_path / "images", *names)
    touch(tmp_path / "masks", "img0.tif")
    message = "6 image.* have no mask .*img1.png, img2.png, img3.png, img4.png, img5.png and 1 more"
    with pytest.raises(InputError, match=message) as info:
        pair_files(tmp_path / "images", tmp_path / "masks")
    assert "img6.png" not in str(info.value)


def test_pair_files_image_in_same_folder_is_not_its_own_mask(tmp_path):
    touch(tmp_path, "a.png", "a.tif")
    with pytest.raises(InputError, match="2 image.* have no mask .*a.png, a.tif"):
        pair_files(tmp_path)


def test_pair_files_several_candidate_masks(tmp_path):
    touch(tmp_path, "a.png", "a_mask.tif", "a_cp_masks.png")
    message = "image a.png has several candidate masks .*a_cp_masks.png, a_mask.tif"
    with pytest.raises(InputError, match=message):
        pair_files(tmp_path)


def test_pair_files_uses_cp_masks_when_cellpose_left_both(tmp_path, caplog):
    """Cellpose's usual output (``_seg.npy`` and ``_cp_masks.png``) used to refuse the folder."""
    touch(tmp_path, "a.png", "a_seg.npy", "a_cp_masks.png", "b.png", "b_seg.npy",
          "c.tif", "c_cp_masks.tif", "c_seg.npy")
    pairs = pair_files(tmp_path)
    assert as_names(pairs) == [("a", "a.png", "a_cp_masks.png"), ("b", "b.png", "b_seg.npy"),
                               ("c", "c.tif", "c_cp_masks.tif")]
    assert [p.other_mask.name if p.other_mask else None for p in pairs] == [
        "a_seg.npy", None, "c_seg.npy"]
    assert pairs[0].note == "two Cellpose masks: used a_cp_masks.png, not a_seg.npy"
    assert pairs[1].note == ""
    assert "image a.png: two Cellpose masks: used a_cp_masks.png" in caplog.text
    # Separate folders too, and the rule only covers one file of each kind.
    touch(tmp_path / "images", "d.png")
    touch(tmp_path / "masks", "d_seg.npy", "d_cp_masks.png")
    assert pair_files(tmp_path / "images", tmp_path / "masks")[0].mask.name == "d_cp_masks.png"
    touch(tmp_path / "masks", "d_cp_masks.tif")
    with pytest.raises(InputError, match="image d.png has several candidate masks in .*masks: "
                                         "d_cp_masks.png, d_cp_masks.tif, d_seg.npy; keep one"):
        pair_files(tmp_path / "images", tmp_path / "masks")


def test_pair_folder_sets_bad_images_aside_and_keeps_the_rest(tmp_path):
    touch(tmp_path, "ok.png", "ok_mask.tif", "lonely.png", "two.png", "two_mask.tif",
          "two_labels.tif", "x.png", "x.tif", "x_mask.tif", "stray_mask.tif",
          "cp.png", "cp_seg.npy", "cp_cp_masks.png")
    with pytest.raises(InputError, match="image two.png has several candidate masks"):
        pair_files(tmp_path)  # the strict form refuses the folder, as before
    pairing = pair_folder(tmp_path)
    assert as_names(pairing.pairs) == [("cp", "cp.png", "cp_cp_masks.png"),
                                       ("ok", "ok.png", "ok_mask.tif")]
    assert [problem.file for problem in pairing.problems] == [
        "lonely.png", "two.png", "x.png", "x.tif"]
    messages = {problem.file: problem.message for problem in pairing.problems}
    assert messages["lonely.png"].startswith("image lonely.png has no mask (a mask is named")
    assert messages["two.png"] == ("image two.png has several candidate masks: two_labels.tif, "
                                   "two_mask.tif; keep one")
    assert messages["x.tif"] == ("mask x_mask.tif matches several images: x.png, x.tif; "
                                 "rename one of them")
    # The masks of set-aside images and masks of no image; not the used Cellpose files.
    assert [path.name for path in pairing.unused_masks] == [
        "stray_mask.tif", "two_labels.tif", "two_mask.tif", "x_mask.tif"]
    assert [(problem.reason, type(problem)) for problem in pairing.problems] == [
        ("no mask", Unpaired), ("several masks", Unpaired), ("shared mask", Unpaired),
        ("shared mask", Unpaired)]


def test_pair_folder_still_refuses_a_folder_it_cannot_read(tmp_path):
    with pytest.raises(InputError, match="image folder .*nowhere does not exist"):
        pair_folder(tmp_path / "nowhere")
    touch(tmp_path / "only_masks", "a_mask.tif")
    with pytest.raises(InputError, match="holds no images"):
        pair_folder(tmp_path / "only_masks")


def test_pair_files_mask_matching_two_images(tmp_path):
    touch(tmp_path, "a.png", "a.tif", "a_mask.tif")
    with pytest.raises(InputError, match="mask a_mask.tif matches several images: a.png, a.tif"):
        pair_files(tmp_path)


def test_pair_files_exact_and_suffix_claim_one_mask(tmp_path):
    touch(tmp_path / "images", "a.png", "a_mask.png")
    touch(tmp_path / "masks", "a_mask.tif")
    message = "mask a_mask.tif matches several images: a.png, a_mask.png"
    with pytest.raises(InputError, match=message):
        pair_files(tmp_path / "images", tmp_path / "masks")


def test_pair_files_missing_folder(tmp_path):
    with pytest.raises(InputError, match=f"image folder .*{named('nowhere')} does not exist"):
        pair_files(tmp_path / "nowhere")
    touch(tmp_path / "images", "a.png")
    with pytest.raises(InputError, match=f"mask folder .*{named('nomasks')} does not exist"):
        pair_files(tmp_path / "images", tmp_path / "nomasks")


def test_pair_files_no_images(tmp_path):
    touch(tmp_path, "a_mask.tif", "readme.md")
    with pytest.raises(InputError, match="holds no images"):
        pair_files(tmp_path)


def test_extension_constants():
    assert set(IMAGE_EXTENSIONS) == {".tif", ".tiff", ".png", ".jpg", ".jpeg"}
    assert set(MASK_EXTENSIONS) == {".tif", ".tiff", ".png", ".npy"}


def test_consep_pairs_all_images(shared_data):
    folder = shared_data / "consep_train_tiles"
    pairs = pair_files(folder / "images", folder / "masks")
    assert len(pairs) == 177
    assert all(pair.mask.name == pair.stem + ".tif" for pair in pairs)
    image, mask = load_pair(pairs[0].image, pairs[0].mask)
    assert image.shape == (3, 256, 256) and image.dtype == np.uint8
    assert mask.shape == (256, 256) and mask.dtype == np.uint16
    assert all(parse_well(pair.image.name) is None for pair in pairs)


def test_folder_files_pairs_by_image_file_name(tmp_path):
    touch(tmp_path / "images", "b.png", "a.tif")
    touch(tmp_path / "masks", "a.tif", "b_cp_masks.png")
    files = folder_files(tmp_path / "images", tmp_path / "masks")
    assert list(files) == ["a.tif", "b.png"]
    assert files["b.png"] == (tmp_path / "images" / "b.png", tmp_path / "masks" / "b_cp_masks.png")
    touch(tmp_path / "both", "c.png", "c_mask.png")  # one folder: suffixed files are masks
    assert folder_files(tmp_path / "both") == {
        "c.png": (tmp_path / "both" / "c.png", tmp_path / "both" / "c_mask.png")}


def test_folder_files_mask_only(tmp_path):
    touch(tmp_path / "masks", "v2.tif", "v1.TIF", "v3.npy", ".hidden.tif", "notes.txt", "v4.jpg")
    (tmp_path / "masks" / "sub.tif").mkdir()
    files = folder_files(None, tmp_path / "masks")
    assert files == {name: (None, tmp_path / "masks" / name)
                     for name in ("v1.TIF", "v2.tif", "v3.npy")}


def test_folder_files_errors(tmp_path):
    with pytest.raises(InputError, match="mask-only data needs a mask folder"):
        folder_files(None)
    with pytest.raises(InputError, match=f"mask folder .*{named('nowhere')} does not exist"):
        folder_files(None, tmp_path / "nowhere")
    with pytest.raises(InputError, match=f"image folder .*{named('nowhere')} does not exist"):
        folder_files(tmp_path / "nowhere", tmp_path)


def test_group_pattern():
    # a job source's group_pattern becomes the split's group function
    assert group_by_pattern(r"train_(\d+)_")("train_12_003.png") == "12"
    assert group_by_pattern(r"plate\d")("x_plate2_A01.tif") == "plate2"
    assert group_by_pattern(r"nomatch")("a.tif") == "a.tif"
    assert group_by_pattern(None) is None
