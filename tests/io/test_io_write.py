"""svetlana_core.io.write: atomic writes, lossless TIFFs."""

import os

import numpy as np
import pandas as pd
import pytest
import tifffile

from svetlana_core.errors import InputError
from svetlana_core.io import atomic_write_bytes, read_mask, write_tiff
from tests.builders import disk_mask, named, ramp


def disks(shape=(40, 60), centres=((10, 10), (10, 45), (30, 30)), radius=5, labels=(3, 7, 42)):
    """A uint16 label mask of disks of a known radius with the given (gapped) labels."""
    return disk_mask(shape, centres, radius, labels)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_write_tiff_is_lossless(tmp_path, dtype):
    array = ramp((3, 40, 60), dtype) * 3
    path = write_tiff(tmp_path / "out.tif", array, metadata={"classes": ["live", "dead"]})
    with tifffile.TiffFile(path) as tif:
        np.testing.assert_array_equal(tif.asarray(), array)
        deflate = (tifffile.COMPRESSION.ADOBE_DEFLATE, tifffile.COMPRESSION.DEFLATE)
        assert tif.pages[0].compression in deflate
        assert tif.shaped_metadata[0]["classes"] == ["live", "dead"]
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]


def test_write_tiff_class_map_reads_back_as_mask(tmp_path):
    write_tiff(tmp_path / "classes.tif", disks(labels=(1, 2, 2)).astype(np.uint8))
    np.testing.assert_array_equal(read_mask(tmp_path / "classes.tif"), disks(labels=(1, 2, 2)))


def test_write_tiff_replaces_atomically(tmp_path):
    path = tmp_path / "out.tif"
    write_tiff(path, np.zeros((4, 4), np.uint8))
    write_tiff(path, np.ones((4, 4), np.uint8))
    assert tifffile.imread(path).tolist() == [[1] * 4] * 4
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]


def test_write_tiff_failure_keeps_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.tif"
    write_tiff(path, np.full((4, 4), 7, np.uint8))
    with pytest.raises(TypeError):
        write_tiff(path, np.zeros((4, 4), np.uint8), metadata={"bad": object()})
    assert tifffile.imread(path).max() == 7
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]


def test_write_tiff_mode_follows_umask(tmp_path):
    path = write_tiff(tmp_path / "out.tif", np.zeros((4, 4), np.uint8))
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_write_into_missing_folder(tmp_path):
    with pytest.raises(InputError, match=f"folder .*{named('missing')} does not exist"):
        write_tiff(tmp_path / "missing" / "out.tif", np.zeros((2, 2), np.uint8))
    with pytest.raises(InputError, match=f"folder .*{named('missing')} does not exist"):
        atomic_write_bytes(tmp_path / "missing" / "out.bin", b"x")


def test_atomic_write_bytes(tmp_path):
    path = atomic_write_bytes(tmp_path / "data.bin", b"first")
    atomic_write_bytes(path, b"second")
    assert path.read_bytes() == b"second"
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]


# ---- formulas in exports (issue 10, item 9)

HOSTILE = ["=2+3.tif", '=HYPERLINK("http://evil.example","click")', "+cmd|' /C calc'!A0",
           "@SUM(A1:A9)", "-2+3"]
HARMLESS = ["-1", "+2.5", "-.5", "-1.5e3", "live", "a, b", 'say "hi"', "", "naïve 細胞"]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_csv_text_cells_never_start_a_formula_and_read_back_as_written(tmp_path):
    from svetlana_core.io import formula_unsafe, read_labels_csv, write_csv

    names = HOSTILE + HARMLESS[:-2] + HARMLESS[-1:]
    table = pd.DataFrame({"image": [f"{n}.tif" if n else "x.tif" for n in names],
                          "label": range(1, len(names) + 1),
                          "class": [n or "blank" for n in names]})
    path = write_csv(tmp_path / "labels.csv", table)
    cells = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column in ("image", "class"):
        for cell, name in zip(cells[column], table[column]):
            assert cell[:1] not in ("=", "@", "+", "-") or _is_number(cell), cell
            assert formula_unsafe(cell) == name
    back = read_labels_csv(path)
    assert back[["image", "class"]].values.tolist() == table[["image", "class"]].values.tolist()


def test_numbers_written_as_text_and_plain_names_are_left_alone(tmp_path):
    from svetlana_core.io import csv_text, formula_safe

    assert [formula_safe(n) for n in HARMLESS] == HARMLESS
    assert [formula_safe(n) for n in ("\tx", "\rx", "-x")] == ["'\tx", "'\rx", "'-x"]
    assert formula_safe(3) == 3 and formula_safe(None) is None
    plain = pd.DataFrame({"class": HARMLESS})
    assert csv_text(plain) == plain.to_csv(index=False, lineterminator="\n")


def test_the_workbook_holds_no_formula(tmp_path):
    import openpyxl

    from svetlana_core.stats import export_tables

    table = pd.DataFrame({"image": HOSTILE, "n": range(len(HOSTILE))})
    path = export_tables(tmp_path / "results.xlsx", {"objects": table})
    sheet = openpyxl.load_workbook(path)["objects"]
    cells = [cell for row in sheet.iter_rows() for cell in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    assert sheet["A2"].value == "=2+3.tif" and sheet["A3"].value.startswith("=HYPERLINK")
