"""The Project page's hygiene (issue 13 item 6) under AppTest: removing an image asks first,
keeps its labels in the history and records who did it; a removed image comes back with its
labels; uploads no image uses are deleted after a second confirmation. (A bad upload
followed by a good one: tests/test_uploads.py, and in Chromium tests/test_browser_project.py.)"""

from __future__ import annotations

from io import BytesIO

import numpy as np
import pytest
import tifffile

from svetlana_core.store import Project
from tests.builders import app_test, current_labels, messages
from ui.state import AUTHOR_NAME_KEY

pytest.importorskip("streamlit.testing.v1")


def _button(at, label):
    return next(b for b in at.button if b.label == label)


def _selectbox(at, label):
    return next(s for s in at.selectbox if s.label == label)


@pytest.fixture
def project(lab):
    """Two uploaded images (A01 labelled twice, B01 once) in project ``p``."""
    project = Project.create(lab["lab"] / "projects" / "p")
    mask = np.zeros((16, 16), np.uint16)
    mask[2:6, 2:6], mask[9:14, 9:14] = 1, 2
    batch = project.folder / "uploads" / "batch1"
    batch.mkdir(parents=True)
    for name in ("A01", "B01"):
        tifffile.imwrite(batch / f"{name}.tif", (mask * 60).astype(np.uint8))
        tifffile.imwrite(batch / f"{name}_mask.tif", mask)
        project.add_image(batch / f"{name}.tif", batch / f"{name}_mask.tif")
    project.add_class("live")
    project.annotate_many([("A01.tif", 1, "live"), ("A01.tif", 2, "live"),
                           ("B01.tif", 1, "live")], author="ann")
    return project


def test_removing_an_image_asks_first_and_keeps_its_labels(project):
    at = app_test("p")
    at.session_state[AUTHOR_NAME_KEY] = "bob"  # the sidebar's "Your name"
    at.run()
    _selectbox(at, "Image to remove").set_value("A01.tif")
    at.run()  # the button is enabled once an image is chosen
    _button(at, "Remove image…").click()
    at.run()
    assert not at.exception, messages(at.exception)
    question = [m for m in messages(at.warning) if "Remove **A01.tif**" in m]
    assert question and "Its 2 labelled objects stay in the project's history" in question[0]
    assert project.images()["name"].tolist() == ["A01.tif", "B01.tif"]  # nothing yet

    _button(at, "Cancel").click()
    at.run()
    assert not any("Remove **A01.tif**" in m for m in messages(at.warning))
    assert project.images()["name"].tolist() == ["A01.tif", "B01.tif"]

    _selectbox(at, "Image to remove").set_value("A01.tif")
    at.run()
    _button(at, "Remove image…").click()
    at.run()
    _button(at, "Yes, remove it").click()
    at.run()
    assert not at.exception and not at.error, messages(at.exception) + messages(at.error)
    assert project.images()["name"].tolist() == ["B01.tif"]
    assert current_labels(project) == [("B01.tif", 1, "live")]
    removed = project.removed_images()
    assert removed["name"].tolist() == ["A01.tif"]
    assert removed["removed_by"].tolist() == ["bob"]
    assert _selectbox(at, "Image to remove").options == ["B01.tif"]

    # Bring it back: its labels return.
    _selectbox(at, "Removed image").set_value("A01.tif")
    at.run()
    _button(at, "Bring back").click()
    at.run()
    assert not at.exception and not at.error, messages(at.exception) + messages(at.error)
    assert project.removed_images().empty
    assert current_labels(project) == [("A01.tif", 1, "live"), ("A01.tif", 2, "live"),
                                       ("B01.tif", 1, "live")]


def test_unused_uploads_are_deleted_after_a_confirmation(project):
    project.remove_image("A01.tif", author="bob")
    at = app_test("p")
    at.run()
    assert any("2 uploaded file(s)" in m and "used by no image" in m
               for m in messages(at.caption)), messages(at.caption)
    _button(at, "Delete unused uploads…").click()
    at.run()
    assert any("Delete 2 file(s) from" in m for m in messages(at.warning))
    assert (project.folder / "uploads" / "batch1" / "A01.tif").exists()
    _button(at, "Yes, delete them").click()
    at.run()
    assert not at.exception and not at.error, messages(at.exception) + messages(at.error)
    assert sorted(p.name for p in (project.folder / "uploads" / "batch1").iterdir()) == [
        "B01.tif", "B01_mask.tif"]
    assert not any("used by no image" in m for m in messages(at.caption))
    # Its files gone, the removed image cannot come back, and the page says why.
    _selectbox(at, "Removed image").set_value("A01.tif")
    at.run()
    _button(at, "Bring back").click()
    at.run()
    assert any("cannot bring image 'A01.tif' back: its file" in m for m in messages(at.error))


def test_uploading_a_removed_image_again_adds_it_anew(project):
    """A re-upload is other files (a new batch folder): it is added as a new image, without
    the old labels, and the removed one keeps them under a name of its own."""
    project.remove_image("A01.tif", author="bob")
    mask = np.zeros((16, 16), np.uint16)
    mask[0:4, 0:4] = 5
    image = tifffile.imread(project.folder / "uploads" / "batch1" / "A01.tif")
    def tiff(array):
        buffer = BytesIO()
        tifffile.imwrite(buffer, array)
        return buffer.getvalue()

    at = app_test("p")
    at.run()
    at.file_uploader[0].set_value([("A01.tif", tiff(image), "image/tiff"),
                                   ("A01_mask.tif", tiff(mask), "image/tiff")])
    _button(at, "Upload, check and add").click()
    at.run()
    assert not at.exception and not at.error, messages(at.exception) + messages(at.error)
    assert project.images()["name"].tolist() == ["B01.tif", "A01.tif"]
    assert current_labels(project) == [("B01.tif", 1, "live")]
    assert project.removed_images()["name"].tolist() == ["A01.tif (removed, id 1)"]
