"""Uploads (issue 6 item 4, issue 10 item 1): size-limited, checked by content before anything
is written, saved under their bare name in a folder of their own per batch, so a refused or
repeated upload never replaces a stored file, and a bad batch does not block the next."""

import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from svetlana_core import io
from svetlana_core.errors import InputError
from svetlana_core.store import Project
from tests.builders import app_test, current_labels, messages
from ui import importer

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest
from streamlit.runtime.uploaded_file_manager import UploadedFile, UploadedFileRec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _upload(name: str, data: bytes) -> UploadedFile:
    return UploadedFile(UploadedFileRec(file_id=name, name=name, type="", data=data), None)


def _tiff_bytes(array) -> bytes:
    from io import BytesIO

    buffer = BytesIO()
    tifffile.imwrite(buffer, array)
    return buffer.getvalue()


@pytest.fixture
def project(tmp_path):
    return Project.create(tmp_path / "p")


def test_upload_limit_agrees_with_streamlit_config():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    # Streamlit reads server.maxUploadSize in MiB (size * 1024 * 1024 in its upload route).
    assert config["server"]["maxUploadSize"] * 1024**2 == importer.MAX_UPLOAD_BYTES


def test_upload_over_the_limit_is_refused_before_anything_is_written(project, monkeypatch):
    monkeypatch.setattr(importer, "MAX_UPLOAD_BYTES", 1000)
    small = _tiff_bytes(np.zeros((4, 4), np.uint8))
    big = b"II*\x00" + bytes(2044)
    with pytest.raises(InputError, match=r"upload big.tif is 2.05 kB, over the 1 kB limit"):
        importer.save_uploads(project, [_upload("ok.tif", small), _upload("big.tif", big)])
    assert not (project.folder / "uploads").exists()
    # An explicit limit wins over the module's.
    assert importer.save_uploads(project, [_upload("big.tif", big)], max_bytes=len(big)).is_dir()


@pytest.mark.parametrize(("name", "data", "expected"), [
    ("evil.tif", b"<html><script>alert(1)</script></html>", "a TIFF, PNG or JPEG image"),
    ("run.png", b"#!/bin/sh\nrm -rf /\n", "a TIFF, PNG or JPEG image"),
    ("archive.png", b"PK\x03\x04" + b"\x00" * 40, "a TIFF, PNG or JPEG image"),
    ("photo.jpg", b"GIF89a" + b"\x00" * 40, "a TIFF, PNG or JPEG image"),
    ("labels.npy", b"\x80\x04\x95" + b"\x00" * 40, "a NumPy .npy file"),  # a bare pickle
    ("empty.tif", b"", "a TIFF, PNG or JPEG image"),
])
def test_upload_whose_content_is_no_image_is_refused(project, name, data, expected):
    good = _tiff_bytes(np.zeros((4, 4), np.uint8))
    with pytest.raises(InputError, match=rf"upload {name} is not {expected}: it starts with "
                                         r".*nothing was saved"):
        importer.save_uploads(project, [_upload("A01.tif", good), _upload(name, data)])
    assert not (project.folder / "uploads").exists()


@pytest.mark.parametrize(("raw", "saved"), [
    ("../../etc/A01.tif", "A01.tif"),
    ("/abs/path/A01.tif", "A01.tif"),
    ("..\\..\\windows\\A01.tif", "A01.tif"),
    ("plate 1/A01.tif", "A01.tif"),
])
def test_upload_names_keep_only_their_last_component(project, raw, saved):
    folder = importer.save_uploads(project, [_upload(raw, _tiff_bytes(np.ones((4, 4), np.uint8)))])
    assert folder.parent == project.folder / "uploads"  # a folder of its own per batch
    assert [p.name for p in folder.iterdir()] == [saved]


@pytest.mark.parametrize("raw", [".hidden.tif", "dir/.hidden.tif", "..", "a.tif/", "x.exe",
                                 "A01.tif.html", "bad\nname.tif", ""])
def test_upload_with_a_bad_name_is_refused(project, raw):
    with pytest.raises(InputError, match=r"unsupported file name or extension"):
        importer.save_uploads(project, [_upload(raw, _tiff_bytes(np.ones((4, 4), np.uint8)))])
    assert not (project.folder / "uploads").exists()


def test_two_uploads_with_the_same_name_are_refused(project):
    data = _tiff_bytes(np.ones((4, 4), np.uint8))
    with pytest.raises(InputError, match=r"the same file more than once: A01.tif"):
        importer.save_uploads(project, [_upload("a/A01.tif", data), _upload("b/A01.tif", data)])


def test_upload_page_refuses_a_script_named_tif_and_adds_a_real_pair(lab):
    Project.create(lab["lab"] / "projects" / "p")
    at = app_test("p")
    at.run()
    at.file_uploader[0].set_value([("evil.tif", b"<script>alert(1)</script>", "image/tiff")])
    next(b for b in at.button if b.label == "Upload, check and add").click()
    at.run()
    assert not at.exception, messages(at.exception)
    assert any("upload evil.tif is not a TIFF, PNG or JPEG image" in m
               for m in messages(at.error))
    project = Project.open(lab["lab"] / "projects" / "p")
    assert not (project.folder / "uploads").exists()
    assert project.images().empty

    mask = np.zeros((16, 16), np.uint16)
    mask[2:6, 2:6] = 1
    at.file_uploader[0].set_value([("A01.tif", _tiff_bytes(mask.astype(np.uint8)), "image/tiff"),
                                   ("A01_mask.tif", _tiff_bytes(mask), "image/tiff")])
    next(b for b in at.button if b.label == "Upload, check and add").click()
    at.run()
    assert not at.error, messages(at.error)
    assert project.images()["name"].tolist() == ["A01.tif"]


def _upload_on_page(at: AppTest, files: list[tuple[str, bytes]]) -> None:
    at.file_uploader[0].set_value([(name, data, "image/tiff") for name, data in files])
    next(b for b in at.button if b.label == "Upload, check and add").click()
    at.run()
    assert not at.exception, messages(at.exception)


def test_a_re_upload_never_replaces_stored_files_or_orphans_labels(lab):
    """Issue 10 item 1: re-uploading A01.tif (truncated) with another mask replaced the stored
    files before they were checked; the report said "error", the stored image no longer loaded
    and the labels pointed at another mask."""
    project = Project.create(lab["lab"] / "projects" / "p")
    mask = np.zeros((16, 16), np.uint16)
    mask[2:6, 2:6], mask[9:14, 9:14] = 1, 2
    image = _tiff_bytes((mask * 60).astype(np.uint8))
    at = app_test("p")
    at.run()
    _upload_on_page(at, [("A01.tif", image), ("A01_mask.tif", _tiff_bytes(mask))])
    stored = project.images().iloc[0]
    project.add_class("live")
    project.annotate("A01.tif", 2, "live", author="ann")
    before = {p: Path(p).read_bytes() for p in (stored["path"], stored["mask_path"])}

    other = np.zeros((16, 16), np.uint16)
    other[0:3, 0:3] = 5
    for batch in ([("A01.tif", image[: len(image) // 2]), ("A01_mask.tif", _tiff_bytes(other))],
                  [("A01.tif", image), ("A01_mask.tif", _tiff_bytes(other))]):  # valid, same name
        _upload_on_page(at, batch)
        report = pd.DataFrame(at.session_state["import_report"])
        assert report["status"].tolist() == ["error"], report
        assert {p: Path(p).read_bytes() for p in before} == before
        assert io.load_pair(stored["path"], stored["mask_path"])[1].max() == 2
        assert project.images()[["name", "path", "mask_path"]].values.tolist() == [
            ["A01.tif", stored["path"], stored["mask_path"]]]
        assert current_labels(project) == [("A01.tif", 2, "live")]
    assert "already in the project" in report["message"][0]
    # Only the first batch's files remain: refused batches leave nothing behind.
    assert sorted(p for p in (project.folder / "uploads").rglob("*") if p.is_file()) == sorted(
        [Path(stored["path"]), Path(stored["mask_path"])])


def _report(at: AppTest) -> dict[str, tuple[str, str]]:
    """The page's last validation report: image -> (status, message)."""
    return {row["image"]: (row["status"], row["message"])
            for row in at.session_state["import_report"]}


def _uploaded_files(project: Project) -> list[str]:
    return sorted(p.name for p in (project.folder / "uploads").rglob("*") if p.is_file())


def test_a_bad_upload_does_not_block_the_next_one(lab):
    """Each batch is paired on its own (it used to re-pair the whole uploads folder, so an
    image without its mask refused every later upload)."""
    project = Project.create(lab["lab"] / "projects" / "p")
    mask = np.zeros((16, 16), np.uint16)
    mask[2:6, 2:6] = 1
    at = app_test("p")
    at.run()
    _upload_on_page(at, [("lonely.tif", _tiff_bytes(mask.astype(np.uint8)))])
    assert _report(at)["lonely.tif"][0] == "error"
    assert _report(at)["lonely.tif"][1].startswith("image lonely.tif has no mask (a mask is")
    assert _uploaded_files(project) == []
    _upload_on_page(at, [("A02.tif", _tiff_bytes(mask.astype(np.uint8))),
                         ("A02_mask.tif", _tiff_bytes(mask))])
    assert not at.error, messages(at.error)
    assert project.images()["name"].tolist() == ["A02.tif"]


def test_a_bad_file_is_set_aside_and_the_rest_of_its_batch_is_added(lab):
    """One image without its mask (and a mask without its image) used to refuse the whole
    batch; now each gets an error line and the good pair is added."""
    project = Project.create(lab["lab"] / "projects" / "p")
    mask = np.zeros((16, 16), np.uint16)
    mask[2:6, 2:6] = 1
    image = _tiff_bytes(mask.astype(np.uint8))
    at = app_test("p")
    at.run()
    _upload_on_page(at, [("A01.tif", image), ("A01_mask.tif", _tiff_bytes(mask)),
                         ("lonely.tif", image), ("B07_mask.tif", _tiff_bytes(mask))])
    assert not at.error, messages(at.error)
    assert project.images()["name"].tolist() == ["A01.tif"]
    report = _report(at)
    assert report["A01.tif"] == ("ok", "")
    assert report["lonely.tif"][0] == report["B07_mask.tif"][0] == "error"
    assert report["B07_mask.tif"][1] == ("mask B07_mask.tif matches no image of the upload; "
                                         "it was not added")
    assert _uploaded_files(project) == ["A01.tif", "A01_mask.tif"]  # the rest is not kept


def test_an_upload_with_both_cellpose_masks_uses_cp_masks_and_says_so(lab):
    project = Project.create(lab["lab"] / "projects" / "p")
    mask = np.zeros((16, 16), np.uint16)
    mask[2:6, 2:6], mask[9:14, 9:14] = 1, 2
    image = _tiff_bytes((mask * 60).astype(np.uint8))

    def seg_npy(masks):
        from io import BytesIO

        buffer = BytesIO()
        np.save(buffer, {"masks": masks, "flows": [np.zeros((2, 16, 16), np.float32)]},
                allow_pickle=True)
        return buffer.getvalue()

    edited = mask.copy()
    edited[mask == 2] = 0  # a 5 × 5 object deleted in the GUI after the PNG was exported
    at = app_test("p")
    at.run()
    _upload_on_page(at, [("A01.tif", image), ("A01_cp_masks.tif", _tiff_bytes(mask)),
                         ("A01_seg.npy", seg_npy(mask)),
                         ("B01.tif", image), ("B01_cp_masks.tif", _tiff_bytes(mask)),
                         ("B01_seg.npy", seg_npy(edited))])
    report = _report(at)
    assert report["A01.tif"] == ("ok", "two Cellpose masks: used A01_cp_masks.tif, not "
                                       "A01_seg.npy (same masks)")
    assert report["B01.tif"] == ("error", "Cellpose masks B01_cp_masks.tif and B01_seg.npy "
                                          "differ in 25 pixels (edited after export?): keep "
                                          "the one you want")
    stored = project.images()
    assert stored["name"].tolist() == ["A01.tif"]
    assert Path(stored["mask_path"].iloc[0]).name == "A01_cp_masks.tif"
    assert _uploaded_files(project) == ["A01.tif", "A01_cp_masks.tif"]


def _empty_project_and_folder(lab, name: str):
    """Project ``p`` (empty), a folder ``name`` in the lab root, and a 16² mask of one
    square for its files."""
    project = Project.create(lab["lab"] / "projects" / "p")
    folder = lab["lab"] / name
    folder.mkdir()
    mask = np.zeros((16, 16), np.uint16)
    mask[2:6, 2:6] = 1
    return project, folder, mask


def test_a_folder_add_sets_bad_images_aside_too(lab):
    """A server folder is paired file by file as well; its stray masks are not errors."""
    project, folder, mask = _empty_project_and_folder(lab, "plate")
    tifffile.imwrite(folder / "A01.tif", mask.astype(np.uint8))
    tifffile.imwrite(folder / "A01_cp_masks.tif", mask)
    np.save(folder / "A01_seg.npy", {"masks": mask}, allow_pickle=True)
    tifffile.imwrite(folder / "A02.tif", mask.astype(np.uint8))  # no mask
    tifffile.imwrite(folder / "Z09_mask.tif", mask)  # no image: fine in a shared folder
    at = app_test("p")
    at.run()
    next(t for t in at.text_input if t.label == "Images folder").set_value(str(folder))
    next(b for b in at.button if b.label == "Check and add").click()
    at.run()
    assert not at.exception and not at.error, messages(at.exception) + messages(at.error)
    assert _report(at) == {
        "A01.tif": ("ok", "two Cellpose masks: used A01_cp_masks.tif, not A01_seg.npy "
                          "(same masks)"),
        "A02.tif": ("error", _report(at)["A02.tif"][1])}
    assert _report(at)["A02.tif"][1].startswith("image A02.tif has no mask")
    assert project.images()["name"].tolist() == ["A01.tif"]


def test_unused_uploads_are_listed_and_removed(project):
    mask = np.zeros((16, 16), np.uint16)
    mask[2:6, 2:6] = 1
    first = importer.save_uploads(project, [_upload("A01.tif", _tiff_bytes(mask.astype(np.uint8))),
                                            _upload("A01_mask.tif", _tiff_bytes(mask))])
    second = importer.save_uploads(project, [_upload("B01.tif", _tiff_bytes(mask.astype(np.uint8))),
                                             _upload("B01_mask.tif", _tiff_bytes(mask))])
    project.add_image(first / "A01.tif", first / "A01_mask.tif")
    project.add_image(second / "B01.tif", second / "B01_mask.tif")
    assert importer.unused_uploads(project) == []
    project.remove_image("A01.tif")
    unused = importer.unused_uploads(project)
    assert unused == [first / "A01.tif", first / "A01_mask.tif"]
    with pytest.raises(InputError, match=r"file .*B01.tif is used by an image of project p; "
                                         "nothing was deleted"):
        importer.remove_uploads(project, [*unused, second / "B01.tif"])
    with pytest.raises(InputError, match=r"file .*elsewhere.tif is not an upload of project p"):
        importer.remove_uploads(project, [project.folder / "elsewhere.tif"])
    assert first.is_dir()
    assert importer.remove_uploads(project, unused) == 2
    assert not first.exists() and second.is_dir()  # the emptied batch folder goes too
    with pytest.raises(InputError, match="its file .*A01.tif no longer exists"):
        project.restore_image("A01.tif")


def test_an_image_with_another_channel_count_is_refused_at_add_time(lab):
    """Issue 13, item 7: mixing 1- and 3-channel images failed only after Start."""
    project, folder, mask = _empty_project_and_folder(lab, "mixed")
    tifffile.imwrite(folder / "A01.tif", mask.astype(np.uint8))  # one channel
    tifffile.imwrite(folder / "A01_mask.tif", mask)
    tifffile.imwrite(folder / "A02.tif", np.zeros((16, 16, 3), np.uint8), photometric="rgb")
    tifffile.imwrite(folder / "A02_mask.tif", mask)
    at = app_test("p")
    at.run()
    next(t for t in at.text_input if t.label == "Images folder").set_value(str(folder))
    next(b for b in at.button if b.label == "Check and add").click()
    at.run()
    assert not at.exception, messages(at.exception)
    report = _report(at)
    assert report["A01.tif"][0] == "ok" and report["A02.tif"][0] == "error"
    assert report["A02.tif"][1].startswith(
        "image A02.tif has 3 channel(s) but the project's images have 1")
    assert project.images()["name"].tolist() == ["A01.tif"]
    assert importer.project_channels(project) == 1
