"""Mask-only data through the whole command line (issue 13, item 5): a model trained with
``--images -`` predicts and explains with ``--images -`` / ``--image -``, each object's own
mask being its input, as in training."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "svetlana_core", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def masks(tmp_path_factory):
    """Two masks of small round and large square objects (the shape is the class)."""
    folder = tmp_path_factory.mktemp("masks")
    rows = []
    rr, cc = np.mgrid[:96, :96]
    for k in range(2):
        mask = np.zeros((96, 96), np.uint16)
        label = 0
        for i, (r, c) in enumerate([(16, 16), (16, 48), (16, 80), (48, 16), (48, 48),
                                    (48, 80), (80, 16), (80, 48), (80, 80)]):
            label += 1
            if i % 2:
                mask[r - 9:r + 9, c - 9:c + 9] = label
            else:
                mask[(rr - r) ** 2 + (cc - c) ** 2 <= 16] = label
            rows.append((f"m{k}.tif", label, "square" if i % 2 else "round"))
        tifffile.imwrite(folder / f"m{k}.tif", mask)
    labels = folder.parent / "labels.csv"
    pd.DataFrame(rows, columns=["image", "label", "class"]).to_csv(labels, index=False)
    return folder, labels


@pytest.fixture(scope="module")
def model(masks, tmp_path_factory):
    folder, labels = masks
    out = tmp_path_factory.mktemp("model") / "model"
    result = _cli("train", "--images", "-", "--masks", folder, "--labels", labels,
                  "--out", out, "--epochs", "1", "--arch-param", "depth=2",
                  "--arch-param", "width=4", "--batch-size", "8", "--patch-size", "32")
    assert result.returncode == 0, result.stderr
    return out


def test_predict_a_mask_only_folder(model, masks, tmp_path):
    folder, _ = masks
    result = _cli("predict", "--model", model, "--images", "-", "--masks", folder,
                  "--out", tmp_path / "out", "--quiet")
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["done"] == 2 and line["failed"] == 0
    objects = pd.read_csv(tmp_path / "out" / "objects.csv")
    assert len(objects) == 18 and set(objects["image"]) == {"m0.tif", "m1.tif"}


def test_gradcam_of_a_mask_only_object(model, masks, tmp_path):
    folder, _ = masks
    out = tmp_path / "cam.png"
    result = _cli("gradcam", "--model", model, "--image", "-", "--mask", folder / "m0.tif",
                  "--label", 2, "--out", out)
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 0 and json.loads(result.stdout)["label"] == 2


def test_predict_mask_only_without_masks_is_one_line_exit_2(model, tmp_path):
    result = _cli("predict", "--model", model, "--images", "-", "--out", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: predict --images - (mask-only data) needs --masks"]
