"""The CPU prediction path runs ONNX Runtime and imports neither torch nor what only training,
the app or a cluster needs: the whole ``predict`` command is run in a fresh interpreter where
torch cannot be imported, as on a machine without it, and predicts what torch predicts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import tifffile

from svetlana_core import io, models, predict
from tests.builders import WITHOUT_TORCH
from tests.predict.scenes import make_model_folder, scene

ROOT = Path(__file__).resolve().parents[2]
#: Modules the predict command must not load (openpyxl is loaded: it writes results.xlsx).
HEAVY = ("torch", "torchvision", "sklearn", "albumentations", "dask", "distributed",
         "streamlit", "captum", "skimage")

_WITHOUT_TORCH = WITHOUT_TORCH + """
from svetlana_core.cli import main

code = main(sys.argv[2:])
heavy = json.loads(sys.argv[1])
print(json.dumps({"code": code, "loaded": [m for m in heavy if m in sys.modules]}))
"""


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _WITHOUT_TORCH, json.dumps(HEAVY), *args],
                          cwd=ROOT, capture_output=True, text=True, check=False)


@pytest.fixture
def plate(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for k, well in enumerate(("A01", "B02")):
        image, mask = scene(n=12, size=96, seed=k)
        tifffile.imwrite(folder / f"{well}.tif", image[0])
        tifffile.imwrite(folder / f"{well}_masks.tif", mask)
    return folder


@pytest.mark.parametrize("spatial", ["2d", "3d"])
def test_the_predict_command_runs_without_torch_and_agrees_with_it(spatial, plate, tmp_path):
    if spatial == "2d":
        model_dir = make_model_folder(tmp_path / "cnn")
    else:  # a 3D network on stacks of planes
        model_dir = make_model_folder(tmp_path / "cnn3d", patch_size=(8, 16, 16), depth=1,
                                      width=4)
        for path in sorted(plate.iterdir()):
            tifffile.imwrite(path, _stack(tifffile.imread(path)))
    out = tmp_path / "out"
    done = _run("predict", "--model", str(model_dir), "--images", str(plate), "--out",
                str(out), "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.splitlines()[-1])
    assert report == {"code": 0, "loaded": []}
    table = pd.read_csv(out / "objects.csv")
    # The same images through torch: the same classes, probabilities within 1e-4.
    torch_model = models.load_model(model_dir)
    for name, rows in table.groupby("image"):
        image, mask = io.load_pair(plate / name, plate / name.replace(".tif", "_masks.tif"))
        expected = predict.predict_image(torch_model, image, mask).objects
        assert rows["label"].tolist() == expected["label"].tolist()
        assert rows["class"].tolist() == expected["class"].tolist()
        p = [c for c in expected if c.startswith("p_")]
        assert (rows[p].to_numpy() - expected[p].to_numpy()).__abs__().max() < 1e-4


def _stack(plane):
    """A stack of 10 planes, each the given plane (objects become cylinders)."""
    import numpy as np

    return np.stack([plane] * 10)


def test_an_old_model_without_its_graph_needs_torch_and_says_so(plate, tmp_path):
    model_dir = make_model_folder(tmp_path / "cnn")
    (model_dir / "model.onnx").unlink()
    meta = json.loads((model_dir / "model.json").read_text())
    del meta["onnx"]
    (model_dir / "model.json").write_text(json.dumps(meta))
    done = _run("predict", "--model", str(model_dir), "--images", str(plate), "--out",
                str(tmp_path / "out"), "--quiet")
    assert json.loads(done.stdout.splitlines()[-1])["code"] == 2
    assert done.stderr.strip() == (f"error: {model_dir} has no model.onnx (saved before it "
                                   "existed) and torch is not installed to export it once")
    assert not (tmp_path / "out" / "objects.csv").exists()
