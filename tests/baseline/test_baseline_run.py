"""svetlana_core.baseline.run: training from labelled files, with and without torch."""

import json
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from svetlana_core import io
from svetlana_core.baseline import load_baseline, train_from_labels
from svetlana_core.errors import InputError
from tests.builders import WITHOUT_TORCH, two_class_disks, write_pair

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def disk_files(tmp_path):
    """Four images of 16 bright and dark disks on disk, every object labelled."""
    tables = []
    for name, image, mask, labels in two_class_disks(n_images=4):
        write_pair(tmp_path / "data", Path(name).stem, image, mask)
        tables.append(labels.assign(image=name))
    labels = pd.concat(tables, ignore_index=True)[["image", "label", "class"]]
    labels.to_csv(tmp_path / "labels.csv", index=False)
    return tmp_path / "data", tmp_path / "labels.csv"


def test_train_from_labels_on_a_grouped_split(disk_files):
    folder, labels_csv = disk_files
    files = io.folder_files(folder)
    run = train_from_labels(files, io.read_labels_csv(labels_csv), val_fraction=0.25, seed=0,
                            n_estimators=10)
    assert run.n_train == 48 and run.n_val == 16  # one image of 16 disks held out
    assert run.metrics["n"] == 16 and run.metrics["accuracy"] == 1.0
    assert run.model.metrics == run.metrics and run.model.classes == ("bright", "dark")
    assert run.model.params["n_estimators"] == 10


def test_train_from_labels_errors_and_stop(disk_files):
    folder, labels_csv = disk_files
    files, labels = io.folder_files(folder), io.read_labels_csv(labels_csv)
    with pytest.raises(InputError, match=r"random-forest config: unknown key\(s\) depth; valid "
                                         r"keys are val_fraction, seed, n_estimators"):
        train_from_labels(files, labels, depth=3)
    with pytest.raises(InputError, match=r"labels name 1 image\(s\) that are not in the folders: "
                                         r"gone\.tif"):
        train_from_labels(files, labels.assign(image=labels["image"].where(
            labels["image"] != "img3.tif", "gone.tif")))
    stop = threading.Event()
    stop.set()
    assert train_from_labels(files, labels, stop=stop) is None


# Run in a fresh interpreter where ``import torch`` fails, as on a machine without it.
_WITHOUT_TORCH = WITHOUT_TORCH + """
from svetlana_core import baseline, io, objects
from svetlana_core.predict.evaluate import evaluate_folder

folder, labels_csv, out = sys.argv[1:]
labels = io.read_labels_csv(labels_csv)
run = baseline.train_from_labels(io.folder_files(folder), labels, val_fraction=0.25,
                                 n_estimators=10)
run.model.save(out)
model = baseline.load_baseline(out)
image, mask = io.load_pair(*io.folder_files(folder)["img0.tif"])
predicted = model.predict(objects.object_features(image, mask))
scored = evaluate_folder(out, folder, folder, labels_csv)
print(json.dumps({"predicted": predicted, "accuracy": scored["accuracy"], "n": scored["n"],
                  "torch": [m for m in ("torch", "torchvision") if m in sys.modules]}))
"""


def test_baseline_trains_predicts_and_scores_without_torch(disk_files, tmp_path):
    folder, labels_csv = disk_files
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_TORCH, str(folder), str(labels_csv), str(tmp_path / "rf")],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    labels = pd.read_csv(labels_csv)
    assert result["predicted"] == labels.loc[labels["image"] == "img0.tif", "class"].tolist()
    assert result == {**result, "accuracy": 1.0, "n": 64, "torch": []}
    assert load_baseline(tmp_path / "rf").classes == ("bright", "dark")


def test_baseline_imports_without_torch():
    code = ("import sys, svetlana_core.baseline, svetlana_core.stats.metrics; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False).returncode == 0
