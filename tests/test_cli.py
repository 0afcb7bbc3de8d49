"""The command line: commands work end to end; bad input exits 2 with one line, no traceback."""

import re
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


@pytest.fixture(scope="module")
def demo_folders(tmp_path_factory):
    from svetlana_core.demo import create_demo

    folder = tmp_path_factory.mktemp("demo") / "demo"
    create_demo(folder)
    return folder


@pytest.mark.slow
def test_train_evaluate_predict_gradcam_end_to_end(demo_folders, tmp_path):
    import json

    images, masks = demo_folders / "images", demo_folders / "masks"
    truth = demo_folders / "ground_truth.csv"
    model = tmp_path / "model"
    result = run_cli("train", "--images", images, "--masks", masks, "--labels", truth,
                     "--out", model, "--epochs", "3", "--arch-param", "depth=2",
                     "--arch-param", "width=8", "--batch-size", "16")
    assert result.returncode == 0, result.stderr
    final = json.loads(result.stdout.strip().splitlines()[-1])
    assert final["model_dir"] == str(model) and 0.0 <= final["macro_f1"] <= 1.0
    assert len(result.stderr.strip().splitlines()) >= 1   # one progress line per epoch
    assert (model / "model.json").exists() and (model / "weights.safetensors").exists()

    result = run_cli("evaluate", "--model", model, "--images", images, "--masks", masks,
                     "--labels", truth)
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert scores["n"] == 144 and set(scores["per_class"]) == {"round", "elongated", "speckled"}
    assert sum(map(sum, scores["confusion"])) == 144

    out = tmp_path / "out"
    result = run_cli("predict", "--model", model, "--images", images, "--masks", masks,
                     "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["engine"] == "ONNX Runtime (CPU)"
    objects = pd.read_csv(out / "objects.csv")
    assert len(objects) == 144 and set(objects["well"]) == {"A01", "A02", "B01", "B02"}
    per_well = pd.read_csv(out / "counts_per_well.csv")
    assert per_well["n_objects"].sum() == 144
    # The trained model predicts the same classes through torch (the GPU path).
    from svetlana_core.io import pair_files
    from svetlana_core.models import load_model
    from svetlana_core.predict import predict_many

    through_torch = predict_many(load_model(model), pair_files(images, masks), tmp_path / "torch")
    assert through_torch.engine == "torch (cpu)"
    assert through_torch.objects["class"].tolist() == objects["class"].tolist()
    assert np.allclose(through_torch.objects["confidence"], objects["confidence"], atol=1e-4)

    heat = tmp_path / "heat.png"
    result = run_cli("gradcam", "--model", model, "--image", images / "demo_A01.png",
                     "--mask", masks / "demo_A01.tif", "--label", "5", "--out", heat)
    assert result.returncode == 0, result.stderr
    assert heat.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_random_forest_and_evaluate(demo_folders, tmp_path):
    import json

    images, masks = demo_folders / "images", demo_folders / "masks"
    truth = demo_folders / "ground_truth.csv"
    assert main(["train", "--arch", "rf", "--images", str(images), "--masks", str(masks),
                 "--labels", str(truth), "--out", str(tmp_path / "rf")]) == 0
    result = run_cli("evaluate", "--model", tmp_path / "rf", "--images", images, "--masks",
                     masks, "--labels", truth)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["n"] == 144
    # The forest never replaces a model: an existing folder, a file, bad parameters: exit 2.
    saved = {p.name: p.read_bytes() for p in (tmp_path / "rf").iterdir()}
    (tmp_path / "file").write_text("notes")
    for out, extra, message in (
            (tmp_path / "rf", [], r"model folder \S+rf already exists and is not empty"),
            (tmp_path / "file", [], r"model folder \S+file is a file"),
            (tmp_path / "rf2", ["--arch-param", "n_estimators=-1"],
             r"random-forest parameter n_estimators must be an integer from 1 to 10000, got -1"),
    ):
        result = run_cli("train", "--arch", "rf", "--images", images, "--masks", masks,
                         "--labels", truth, "--out", out, *extra)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert re.fullmatch(r"error: " + message + r"\n", result.stderr), result.stderr
    assert {p.name: p.read_bytes() for p in (tmp_path / "rf").iterdir()} == saved
    assert (tmp_path / "file").read_text() == "notes" and not (tmp_path / "rf2").exists()


def test_two_trainings_into_one_folder_at_once_leave_one_model(demo_folders, tmp_path):
    """Both used to exit 0 with one model silently replacing the other; now the folder is held
    from the start: one trains, the other is refused in one line."""
    images, masks = demo_folders / "images", demo_folders / "masks"
    truth = demo_folders / "ground_truth.csv"
    command = [sys.executable, "-m", "svetlana_core", "train", "--arch", "rf", "--images",
               str(images), "--masks", str(masks), "--labels", str(truth), "--out",
               str(tmp_path / "m")]
    runs = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    outcomes = sorted((run.wait(timeout=300), run.stderr.read()) for run in runs)
    assert [code for code, _ in outcomes] == [0, 2], outcomes
    assert re.search(r"model folder \S+m (is being written by another training|already exists "
                     r"and is not empty)", outcomes[1][1]), outcomes[1][1]
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["forest.npz", "model.json"]


@pytest.mark.parametrize("args,message", [
    (["train", "--out", "m"], "needs --images, --labels (or a PROJECT_DIR)"),
    (["train", "--images", "i", "--masks", "m", "--labels", "l", "--out", "m",
      "--arch-param", "depth"], "KEY=VALUE"),
    (["train", "--images", "i", "--masks", "m", "--labels", "l", "--out", "m",
      "--config", "missing.json"], "config file missing.json not found"),
    (["train", "--images", "i", "--masks", "m", "--labels", "l", "--out", "m",
      "--arch", "resnet9"], "resnet9"),
    (["evaluate", "--model", "nowhere", "--images", "i", "--masks", "m", "--labels", "l"],
     "labels file l does not exist"),
])
def test_cli_argument_errors_exit_2(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
