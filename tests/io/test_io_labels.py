"""svetlana_core.io.labels: the labels CSV reader."""

import pytest

from svetlana_core import io
from svetlana_core.errors import InputError


def test_read_labels_csv_keeps_class_text_and_collapses_duplicates(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text('image,label,class,extra\na.png,1,NA,x\na.png,1,NA,x\n'
                    'b.png,2.0,"dead, ""late""",y\n')
    table = io.read_labels_csv(path)
    assert table[["image", "label", "class"]].values.tolist() == [
        ["a.png", 1, "NA"], ["b.png", 2, 'dead, "late"']]
    assert table["extra"].tolist() == ["x", "y"]


@pytest.mark.parametrize("text,message", [
    ("image,label\na.png,1\n", "lacks column"),
    ("image,label,class\na.png,x,A\n", "label must be a positive integer"),
    ("image,label,class\na.png,-3,A\n", "label must be a positive integer"),
    ("image,label,class\na.png,1,A\na.png,1,B\n", "two different classes"),
])
def test_read_labels_csv_errors(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as info:
        io.read_labels_csv(path)
    assert "bad.csv" in str(info.value)
