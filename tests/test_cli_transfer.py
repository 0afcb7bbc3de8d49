"""python -m svetlana_core transfer-labels: counts as a JSON line, exit 2 on bad input."""

import json

import numpy as np
import pytest

from svetlana_core import io
from svetlana_core.cli import main
from svetlana_core.store import Project
from tests.store.test_store_masks import resegmented_project  # noqa: F401  (the fixture)


def test_transfer_labels_prints_the_summary_and_the_counts(resegmented_project, tmp_path,  # noqa: F811
                                                           capsys):
    code = main(["transfer-labels", str(resegmented_project.folder), "--image", "a.tif",
                 "--new-mask", str(tmp_path / "a_new.tif"), "--author", "bob",
                 "--min-iou", "0.7"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out) == {
        "image": "a.tif", "new_mask": str(tmp_path / "a_new.tif"), "min_iou": 0.7,
        "transferred": 2, "lost": 1, "ambiguous": 2, "labelled": 5, "old_objects": 6,
        "new_objects": 6, "matched": 2, "lost_labels": [5], "ambiguous_labels": [2, 3]}
    assert err == ("a.tif: 2 label(s) transferred, 1 lost (no match), 2 ambiguous (split or "
                   "merged); 6 -> 6 objects, 2 matched\n")
    labels = Project.open(resegmented_project.folder).labels()
    assert labels[["label", "class", "author"]].values.tolist() == [[10, "x", "bob"],
                                                                    [50, "y", "bob"]]


@pytest.mark.parametrize("arguments, message", [
    (["--image", "a.tif", "--new-mask", "small.tif"], "has shape (10, 10) but image a.tif's"),
    (["--image", "a.tif", "--new-mask", "a_new.tif", "--min-iou", "0"],
     "min_iou must be in (0, 1], got 0.0"),
    (["--image", "b.tif", "--new-mask", "a_new.tif"], "no image named 'b.tif'"),
    (["--image", "a.tif", "--new-mask", "gone.tif"], "gone.tif"),
])
def test_bad_input_exits_2_with_one_line_and_changes_nothing(resegmented_project, tmp_path,  # noqa: F811
                                                             capsys, arguments, message):
    io.write_tiff(tmp_path / "small.tif", np.ones((10, 10), np.uint8))
    arguments = [str(tmp_path / a) if a.endswith(".tif") and a != arguments[1] else a
                 for a in arguments]
    code = main(["transfer-labels", str(resegmented_project.folder), *arguments])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    project = Project.open(resegmented_project.folder)
    assert project.mask_history("a.tif").empty
    assert project.labels()["label"].tolist() == [1, 2, 3, 5, 6]
