"""Labels in and out on the Project page (issue 14 item 6, issue 12 item 2): a CSV or QuPath
GeoJSON upload gets the CLI's report, new classes need the user's word, one transaction."""

from __future__ import annotations

import io as bytes_io
import json
import zipfile

import numpy as np
import pytest

from svetlana_core import io
from svetlana_core.store import Project
from tests.builders import app_test, current_labels, disk_mask, messages

MASK = disk_mask((48, 48), [(10, 10), (10, 36), (36, 24)], 5, [4, 8, 15])


@pytest.fixture
def project(lab):
    """Project ``p`` in the lab root: images A01, A02 (objects 4, 8, 15), class 'live'."""
    project = Project.create(lab["lab"] / "projects" / "p")
    project.add_class("live")
    for stem in ("A01", "A02"):
        io.write_tiff(lab["lab"] / f"{stem}.tif", (MASK > 0).astype(np.uint8) * 200)
        io.write_tiff(lab["lab"] / f"{stem}_mask.tif", MASK)
        project.add_image(lab["lab"] / f"{stem}.tif", lab["lab"] / f"{stem}_mask.tif")
    return project


def _page(files):
    at = app_test("p")
    at.switch_page("pages/project.py")
    at.run()
    uploader = next(u for u in at.get("file_uploader") if "labels CSV" in u.proto.label)
    uploader.set_value(files)
    at.run()
    assert not at.exception, messages(at.exception)
    return at


def _store_button(at):
    return next(b for b in at.button if b.label.startswith("Store "))


def test_a_csv_with_a_new_class_is_stored_once_the_user_agrees(project):
    csv = b"image,label,class\nA01.tif,4,live\nA01.tif,8,dead\nA02.tif,15,dead\n"
    at = _page([("mine.csv", csv, "text/csv")])
    assert any("3 label(s) on 2 image(s)" in w.value and "new class(es) 'dead'" in w.value
               for w in at.warning)
    assert _store_button(at).disabled  # not before the new class is agreed to
    next(c for c in at.checkbox if "Add the class(es) 'dead'" in c.label).check().run()
    _store_button(at).click().run()
    assert not at.exception, messages(at.exception)
    assert any("3 label(s) stored from labels file mine.csv" in s.value for s in at.success)
    assert current_labels(project) == [("A01.tif", 4, "live"), ("A01.tif", 8, "dead"),
                                       ("A02.tif", 15, "dead")]
    assert not any(b.label.startswith("Store ") for b in at.button)  # the uploader emptied


def test_labels_of_objects_not_in_the_mask_are_refused_naming_them(project):
    at = _page([("x.csv", b"image,label,class\nA01.tif,5,live\nA09.tif,4,live\n", "text/csv")])
    errors = messages(at.error)
    assert any("labels file x.csv names 1 images that are not in the project: A09.tif" in e
               for e in errors)
    assert any("names object(s) 5 of image A01.tif, which are not in its mask" in e
               for e in errors)
    assert not any(b.label.startswith("Store ") for b in at.button)
    assert project.labels().empty


def test_qupath_geojson_round_trips_through_the_page(project):
    project.annotate("A01.tif", 4, "live")
    project.annotate("A02.tif", 15, "live")
    from ui import labels_io

    archive = zipfile.ZipFile(bytes_io.BytesIO(labels_io._geojson_zip(project)))
    assert archive.namelist() == ["A01.geojson", "A02.geojson"]
    files = [(n, archive.read(n), "application/geo+json") for n in archive.namelist()]
    assert json.loads(files[0][1])["features"][0]["properties"]["classification"]["name"] == \
        "live"
    other = Project.create(project.folder.parent / "q")
    for row in project.images().itertuples():
        other.add_image(row.path, row.mask_path)
    at = app_test("q")
    at.switch_page("pages/project.py")
    at.run()
    next(u for u in at.get("file_uploader") if "labels CSV" in u.proto.label).set_value(files)
    at.run()
    assert any("2 GeoJSON file(s) labelled every outline they hold" in c.value
               for c in at.caption)
    _store_button(at).click().run()
    assert current_labels(other) == current_labels(project)


def test_a_csv_mixed_with_geojson_is_refused(project):
    at = _page([("a.csv", b"image,label,class\n", "text/csv"),
                ("A01.geojson", b"{}", "application/geo+json")])
    assert any("upload one labels CSV, or GeoJSON files" in e for e in messages(at.error))
