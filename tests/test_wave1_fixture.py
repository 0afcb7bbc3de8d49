"""What users already have still opens and predicts the same.

``tests/fixtures/wave1`` was made by ``tests/fixtures/make_wave1.py`` with the code of commit
4b6f5a4 (before the core became packages): the demo project after a 2-epoch CNN training, a
random-forest training and a batch prediction through the jobs, with the two model folders and
each model's probabilities for every object (``reference_cnn.csv``, ``reference_rf.csv``).
The project stores absolute paths, as every project does; the copy here is moved to a
temporary folder and its paths re-pointed there, as a user moving a project folder would.
"""

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from svetlana_core import baseline, io, models, predict
from svetlana_core.objects import object_features
from svetlana_core.store import SCHEMA_VERSION, Project

FIXTURE = Path(__file__).parent / "fixtures" / "wave1"
#: Where the fixture was made; its database names files under this folder.
MADE_IN = "/tmp/svetlana-wave1"
CLASSES = ["round", "elongated", "speckled"]


@pytest.fixture
def wave1(tmp_path) -> Path:
    folder = tmp_path / "wave1"
    shutil.copytree(FIXTURE, folder)
    with sqlite3.connect(folder / "project.sqlite") as conn:
        for table, column in (("images", "path"), ("images", "mask_path"),
                              ("runs", "model_dir"), ("runs", "config"), ("runs", "summary"),
                              ("predictions", "model_dir")):
            conn.execute(f"UPDATE {table} SET {column} = replace({column}, ?, ?)",
                         (MADE_IN, str(folder)))
    return folder


def test_the_fixture_is_unchanged_by_the_suite():
    # Tests work on copies; the fixture itself must stay as the old code wrote it.
    # immutable: not even the -shm/-wal files of a WAL reader may appear beside the fixture
    with sqlite3.connect(f"file:{FIXTURE / 'project.sqlite'}?immutable=1", uri=True) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM annotations").fetchone()[0] == 36
    assert not list(FIXTURE.glob("project.sqlite-*")), "a test opened the fixture in place"


def test_the_old_project_opens_with_its_labels_runs_and_predictions(wave1):
    project = Project.open(wave1)
    assert project.schema_version == SCHEMA_VERSION
    assert list(project.classes()["name"]) == CLASSES
    labels = project.labels()
    assert len(labels) == 36 and set(labels["class"]) == set(CLASSES)
    truth = pd.read_csv(wave1 / "ground_truth.csv")
    merged = labels.merge(truth, on=["image", "label"], suffixes=("", "_truth"))
    assert len(merged) == 36 and (merged["class"] == merged["class_truth"]).all()
    runs = project.runs()
    assert list(runs["kind"]) == ["train", "train-rf", "predict"]
    assert list(runs["status"]) == ["done", "done", "done"]
    assert len(project.epochs(1)) == 2
    stored = project.predictions(wave1 / "models" / "cnn_wave1")
    reference = pd.read_csv(wave1 / "reference_cnn.csv")
    assert len(stored) == len(reference) == 144
    together = stored.merge(reference, on=["image", "label"], suffixes=("", "_ref"))
    assert (together["class"] == together["class_ref"]).all()


def test_the_old_cnn_folder_loads_and_predicts_the_same(wave1):
    model = models.load_model(wave1 / "models" / "cnn_wave1")
    assert list(model.classes) == CLASSES
    reference = pd.read_csv(wave1 / "reference_cnn.csv")
    project = Project.open(wave1)
    for row in project.images().itertuples():
        image, mask = io.load_pair(row.path, row.mask_path, axes=row.axes)
        table = predict.predict_image(model, image, mask, device="cpu").objects
        expected = reference[reference["image"] == row.name].set_index("label")
        got = table.set_index("label").loc[expected.index]
        assert list(got["class"]) == list(expected["class"])
        columns = [f"p_{c}" for c in CLASSES]
        np.testing.assert_allclose(got[columns].to_numpy(), expected[columns].to_numpy(),
                                   atol=1e-5)


def test_the_old_forest_folder_loads_and_predicts_the_same(wave1):
    folder = wave1 / "models" / "rf_wave1"
    assert json.loads((folder / "model.json").read_text())["classes"] == sorted(CLASSES)
    forest = baseline.load_baseline(folder)
    reference = pd.read_csv(wave1 / "reference_rf.csv")
    project = Project.open(wave1)
    for row in project.images().itertuples():
        image, mask = io.load_pair(row.path, row.mask_path, axes=row.axes)
        expected = reference[reference["image"] == row.name]
        proba = forest.predict_proba(object_features(image, mask, expected["label"].tolist()))
        np.testing.assert_allclose(proba, expected[[f"p_{c}" for c in forest.classes]], atol=1e-12)


def test_a_batch_prediction_with_the_old_model_matches(wave1, tmp_path):
    project = Project.open(wave1)
    files, axes = project.training_files()
    result = predict.predict_many(
        wave1 / "models" / "cnn_wave1",
        [(image, mask) for image, mask in files.values()],
        tmp_path / "out", device="cpu",
    )
    assert not result.failed
    table = pd.read_csv(tmp_path / "out" / "objects.csv")
    reference = pd.read_csv(wave1 / "reference_cnn.csv")
    merged = table.merge(reference, on=["image", "label"], suffixes=("", "_ref"))
    assert len(merged) == 144
    assert (merged["class"] == merged["class_ref"]).all()
