"""The command line: commands work end to end; bad input exits 2 with one line, no traceback."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from svetlana_core.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _disks(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    rows, cols = np.mgrid[:64, :64]
    mask = np.zeros((64, 64), np.uint16)
    for label, (r, c) in zip((3, 7, 42), ((16, 16), (16, 48), (48, 32))):
        mask[(rows - r) ** 2 + (cols - c) ** 2 <= 36] = label
    image = (mask > 0).astype(np.uint8) * 200
    tifffile.imwrite(images / "A01.tif", image)
    tifffile.imwrite(masks / "A01.tif", mask)
    return images, masks


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "svetlana_core", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True)


def test_objects_writes_table(tmp_path, capsys):
    images, masks = _disks(tmp_path)
    out = tmp_path / "table.csv"
    assert main(["objects", str(images / "A01.tif"), str(masks / "A01.tif"), "--out",
                 str(out)]) == 0
    table = pd.read_csv(out)
    assert table["label"].tolist() == [3, 7, 42]
    assert table["area"].tolist() == [113, 113, 113]
    assert table.loc[table["label"] == 42, ["centroid_row", "centroid_column"]].values.tolist() \
        == [[48.0, 32.0]]


def test_import_then_export_labels_round_trip(tmp_path):
    images, masks = _disks(tmp_path)
    labels = tmp_path / "labels.csv"
    labels.write_text('image,label,class\nA01.tif,3,"dead, maybe"\nA01.tif,42,alive\n')
    assert main(["import-labels", str(tmp_path / "proj"), "--images", str(images), "--masks",
                 str(masks), "--labels", str(labels)]) == 0
    out = tmp_path / "out.csv"
    assert main(["export-labels", str(tmp_path / "proj"), "--out", str(out)]) == 0
    back = pd.read_csv(out)
    assert set(map(tuple, back.values.tolist())) == {("A01.tif", 3, "dead, maybe"),
                                                    ("A01.tif", 42, "alive")}


def test_bad_input_exits_2_with_one_line(tmp_path):
    images, masks = _disks(tmp_path)
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"II*\x00garbage")
    result = run_cli("objects", images / "A01.tif", bad)
    assert result.returncode == 2
    assert "broken.tif" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_unknown_label_image_exits_2(tmp_path):
    images, masks = _disks(tmp_path)
    labels = tmp_path / "labels.csv"
    labels.write_text("image,label,class\nB02.tif,3,dead\n")
    result = run_cli("import-labels", tmp_path / "proj", "--images", images, "--masks", masks,
                     "--labels", labels)
    assert result.returncode == 2
    assert "B02.tif" in result.stderr and "Traceback" not in result.stderr


def test_export_from_missing_project_exits_2(tmp_path):
    result = run_cli("export-labels", tmp_path / "nowhere", "--out", tmp_path / "x.csv")
    assert result.returncode == 2
    assert "nowhere" in result.stderr


def test_consep_import_export_identical(shared_data, tmp_path):
    folder = shared_data / "consep_train_tiles"
    assert main(["import-labels", str(tmp_path / "proj"), "--images", str(folder / "images"),
                 "--masks", str(folder / "masks"), "--labels", str(folder / "objects.csv")]) == 0
    out = tmp_path / "out.csv"
    assert main(["export-labels", str(tmp_path / "proj"), "--out", str(out)]) == 0
    original = pd.read_csv(folder / "objects.csv", dtype=str, keep_default_na=False)
    back = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert len(back) == 6361
    assert set(map(tuple, back.values.tolist())) == set(map(tuple, original.values.tolist()))
