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


def test_a_bad_upload_does_not_block_the_next_one(lab):
    """Each batch is paired on its own (it used to re-pair the whole uploads folder, so an
    image without its mask refused every later upload)."""
    project = Project.create(lab["lab"] / "projects" / "p")
    mask = np.zeros((16, 16), np.uint16)
    mask[2:6, 2:6] = 1
    at = app_test("p")
    at.run()
    _upload_on_page(at, [("lonely.tif", _tiff_bytes(mask.astype(np.uint8)))])
    assert any("lonely" in m for m in messages(at.error)), messages(at.error)
    assert not [p for p in (project.folder / "uploads").rglob("*") if p.is_file()]
    _upload_on_page(at, [("A02.tif", _tiff_bytes(mask.astype(np.uint8))),
                         ("A02_mask.tif", _tiff_bytes(mask))])
    assert not at.error, messages(at.error)
    assert project.images()["name"].tolist() == ["A02.tif"]
