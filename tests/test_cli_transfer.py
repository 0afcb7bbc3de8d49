"""python -m svetlana_core transfer-labels: counts as a JSON line, exit 2 on bad input."""

import json

import numpy as np

from svetlana_core import io
from svetlana_core.cli import main
from tests.store.test_store_masks import project  # noqa: F401  (the fixture)


def test_transfer_labels_prints_the_counts(project, tmp_path, capsys):  # noqa: F811
    code = main(["transfer-labels", str(project.folder), "--image", "a.tif", "--new-mask",
                 str(tmp_path / "a_new.tif"), "--author", "bob"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["transferred"] == 1 and json.loads(out)["lost_labels"] == [5]
    assert "a.tif: 1 label(s) transferred, 1 lost (no match)" in err


def test_a_mask_of_another_shape_exits_2(project, tmp_path, capsys):  # noqa: F811
    io.write_tiff(tmp_path / "small.tif", np.ones((10, 10), np.uint8))
    code = main(["transfer-labels", str(project.folder), "--image", "a.tif", "--new-mask",
                 str(tmp_path / "small.tif")])
    assert code == 2
    assert capsys.readouterr().err.count("\n") == 1
