"""Replacing an image's mask keeps its labels on the objects that match (issue 15 item 3)."""

import numpy as np
import pytest

from svetlana_core import io
from svetlana_core.errors import InputError
from svetlana_core.store import Project
from tests.objects.test_objects_transfer import resegmented


@pytest.fixture
def project(tmp_path):
    old, new = resegmented()
    io.write_tiff(tmp_path / "a.tif", (old > 0).astype(np.uint8) * 100)
    io.write_tiff(tmp_path / "a_mask.tif", old)
    io.write_tiff(tmp_path / "a_new.tif", new)
    project = Project.create(tmp_path / "p")
    for name in ("x", "y"):
        project.add_class(name)
    project.add_image(tmp_path / "a.tif", tmp_path / "a_mask.tif")
    project.annotate_many([("a.tif", 1, "x"), ("a.tif", 2, "y"), ("a.tif", 3, "x"),
                           ("a.tif", 5, "y")], author="ann")
    project.save_predictions("m", "a.tif", __import__("pandas").DataFrame(
        {"label": [1, 2, 3, 4, 5], "class": ["x"] * 5}))
    return project


def test_labels_land_on_the_matching_new_objects(project, tmp_path):
    report = project.replace_mask("a.tif", tmp_path / "a_new.tif", author="bob")
    assert report.transferred[["old_label", "new_label", "class"]].values.tolist() == [
        [1, 10, "x"]]
    assert report.lost[["old_label", "class"]].values.tolist() == [[5, "y"]]
    assert report.ambiguous[["old_label", "why"]].values.tolist() == [
        [2, "split"], [3, "merged into 34"]]
    assert report.summary() == ("1 label(s) transferred, 1 lost (no match), 2 ambiguous "
                                "(split or merged); 5 -> 5 objects")
    labels = project.labels()
    assert labels[["label", "class", "source", "author"]].values.tolist() == [
        [10, "x", "transfer", "bob"]]
    assert project.images()["mask_path"].iloc[0] == str(tmp_path / "a_new.tif")
    assert project.predictions("m").empty  # the old mask's predictions are not the new one's
    history = project.mask_history("a.tif")
    assert history["mask_path"].tolist() == [str(tmp_path / "a_mask.tif")]
    assert history["report"].iloc[0]["lost"] == 1
    assert project.undo_last("bob") == ("a.tif", 10, None)  # the whole transfer, one step
    assert project.labels().empty


def test_a_mask_of_another_shape_changes_nothing(project, tmp_path):
    io.write_tiff(tmp_path / "small.tif", np.ones((10, 10), np.uint8))
    before = project.labels()
    with pytest.raises(InputError, match=r"small\.tif has shape \(10, 10\) but image a\.tif's "
                                         r"mask .*a_mask\.tif has \(40, 60\)"):
        project.replace_mask("a.tif", tmp_path / "small.tif")
    assert project.labels().equals(before)
    assert project.mask_history("a.tif").empty
