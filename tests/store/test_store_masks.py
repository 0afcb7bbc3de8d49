"""Replacing an image's mask keeps its labels on the objects that match (issue 15 item 3)."""

import sqlite3

import numpy as np
import pandas as pd
import pytest

from svetlana_core import io
from svetlana_core.errors import InputError
from svetlana_core.store import Project
from tests.objects.test_objects_transfer import resegmented


@pytest.fixture
def resegmented_project(tmp_path):
    """Image a.tif with the old mask of :func:`resegmented` (objects 1..6), objects 1, 2, 3, 5
    and 6 labelled by ann, predictions of model m for all six; a_new.tif is the new mask."""
    old, new = resegmented()
    io.write_tiff(tmp_path / "a.tif", (old > 0).astype(np.uint8) * 100)
    io.write_tiff(tmp_path / "a_mask.tif", old)
    io.write_tiff(tmp_path / "a_new.tif", new)
    project = Project.create(tmp_path / "p")
    for name in ("x", "y"):
        project.add_class(name)
    project.add_image(tmp_path / "a.tif", tmp_path / "a_mask.tif")
    project.annotate_many([("a.tif", 1, "x"), ("a.tif", 2, "y"), ("a.tif", 3, "x"),
                           ("a.tif", 5, "y"), ("a.tif", 6, "y")], author="ann")
    project.save_predictions("m", "a.tif", pd.DataFrame(
        {"label": [1, 2, 3, 4, 5, 6], "class": ["x"] * 6}))
    return project


def annotation_rows(project):
    """Every row of the annotations table: (label, class id, source, segmentation)."""
    with sqlite3.connect(project.folder / "project.sqlite") as conn:
        return conn.execute("SELECT label, class_id, source, segmentation FROM annotations"
                            " ORDER BY id").fetchall()


def test_labels_land_on_the_matching_new_objects(resegmented_project, tmp_path):
    project = resegmented_project
    report = project.replace_mask("a.tif", tmp_path / "a_new.tif", author="bob")
    assert report.transferred.values.tolist() == [[1, 10, "x", 30 / 42], [6, 50, "y", 1.0]]
    assert report.lost.values.tolist() == [[5, "y"]]
    assert report.ambiguous.values.tolist() == [[2, "y", "split into 21, 22", [21, 22]],
                                                [3, "x", "merged into 34", [34]]]
    assert report.counts() == {"transferred": 2, "lost": 1, "ambiguous": 2, "labelled": 5,
                               "old_objects": 6, "new_objects": 6, "matched": 2}
    assert report.summary() == ("2 label(s) transferred, 1 lost (no match), 2 ambiguous "
                                "(split or merged); 6 -> 6 objects, 2 matched")
    labels = project.labels()
    assert labels[["label", "class", "source", "author"]].values.tolist() == [
        [10, "x", "transfer", "bob"], [50, "y", "transfer", "bob"]]
    assert project.label_counts()["n"].tolist() == [1, 1]
    assert project.history("a.tif", 10)["source"].tolist() == ["transfer"]
    assert project.images()["mask_path"].tolist() == [str(tmp_path / "a_new.tif")]


def test_the_old_mask_labels_and_predictions_stay_in_the_project(resegmented_project, tmp_path):
    project = resegmented_project
    project.replace_mask("a.tif", tmp_path / "a_new.tif", min_iou=0.6, author="bob")
    history = project.mask_history("a.tif")
    assert history[["segmentation", "mask_path"]].values.tolist() == [
        [0, str(tmp_path / "a_mask.tif")]]
    report = history["report"].iloc[0]
    assert (report["min_iou"], report["author"], report["new_mask"]) == (
        0.6, "bob", str(tmp_path / "a_new.tif"))
    assert (report["transferred"], report["lost"], report["lost_labels"]) == (2, 1, [[5, "y"]])
    assert report["transferred_labels"] == [[1, 10, "x", 30 / 42], [6, 50, "y", 1.0]]
    x, y = 1, 2  # class ids
    assert annotation_rows(project) == [
        (1, x, "manual", 0), (2, y, "manual", 0), (3, x, "manual", 0), (5, y, "manual", 0),
        (6, y, "manual", 0), (10, x, "transfer", 1), (50, y, "transfer", 1)]
    assert project.predictions("m").empty  # the old mask's predictions are not the new one's
    with sqlite3.connect(project.folder / "project.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*), MAX(segmentation) FROM predictions"
                            ).fetchone() == (6, 0)


def test_one_undo_takes_the_whole_transfer_back(resegmented_project, tmp_path):
    project = resegmented_project
    project.replace_mask("a.tif", tmp_path / "a_new.tif", author="bob")
    assert project.undo_last("bob") == ("a.tif", 10, None)
    assert project.labels().empty  # the new objects are unlabelled; the old labels stay old
    assert project.undo_last("bob") is None
    assert project.undo_last("ann") is None  # ann's labels belong to the old mask
    assert project.images()["mask_path"].tolist() == [str(tmp_path / "a_new.tif")]


def test_a_second_replacement_carries_the_labels_on(resegmented_project, tmp_path):
    project = resegmented_project
    project.replace_mask("a.tif", tmp_path / "a_new.tif", author="bob")
    _, new = resegmented()
    io.write_tiff(tmp_path / "a_third.tif", np.where(new > 0, new + 1, 0).astype(np.uint16))
    report = project.replace_mask("a.tif", tmp_path / "a_third.tif")
    assert report.transferred[["old_label", "new_label"]].values.tolist() == [[10, 11],
                                                                              [50, 51]]
    assert project.labels()[["label", "class"]].values.tolist() == [[11, "x"], [51, "y"]]
    assert project.mask_history("a.tif")["mask_path"].tolist() == [
        str(tmp_path / "a_mask.tif"), str(tmp_path / "a_new.tif")]


def test_an_image_without_labels_gets_its_new_mask(resegmented_project, tmp_path):
    project = resegmented_project
    project.annotate_many([("a.tif", label, None) for label in (1, 2, 3, 5, 6)])
    report = project.replace_mask("a.tif", tmp_path / "a_new.tif")
    assert report.counts()["labelled"] == 0 and report.counts()["matched"] == 2
    assert project.labels().empty
    assert project.images()["mask_path"].tolist() == [str(tmp_path / "a_new.tif")]


def unchanged(project, before):
    assert project.labels().equals(before)
    assert project.mask_history("a.tif").empty
    assert project.images()["mask_path"].tolist() == [str(project.folder.parent / "a_mask.tif")]
    assert len(annotation_rows(project)) == 5


@pytest.mark.parametrize("image, mask, min_iou, message", [
    ("a.tif", "small.tif", 0.5,
     r"small\.tif has shape \(10, 10\) but image a\.tif's mask .*a_mask\.tif has \(40, 60\)"),
    ("a.tif", "missing.tif", 0.5, r"missing\.tif"),
    ("b.tif", "a_new.tif", 0.5, r"no image named 'b\.tif'"),
    ("a.tif", "a_new.tif", 0, r"min_iou must be in \(0, 1\], got 0"),
    ("a.tif", "a_new.tif", 1.5, r"min_iou must be in \(0, 1\], got 1\.5"),
    ("a.tif", "a_mask.tif", 0.5, r"a_mask\.tif is already the mask of image a\.tif"),
])
def test_bad_input_changes_nothing(resegmented_project, tmp_path, image, mask, min_iou,
                                   message):
    project = resegmented_project
    io.write_tiff(tmp_path / "small.tif", np.ones((10, 10), np.uint8))
    before = project.labels()
    with pytest.raises(InputError, match=message):
        project.replace_mask(image, tmp_path / mask, min_iou=min_iou)
    unchanged(project, before)
