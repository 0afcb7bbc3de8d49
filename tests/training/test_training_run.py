"""svetlana_core.training.run: whole runs, their checkpoints, stops, limits and parents."""

import itertools
import json
import threading

import numpy as np
import pandas as pd
import pytest

from svetlana_core import models, predict
from svetlana_core import training as T
from svetlana_core.errors import InputError
from tests.builders import tiny_train_config as cfg


@pytest.mark.slow
def test_train_learns_bright_vs_dark(trained, dataset):
    history = trained.history
    assert len(history) == 6 and trained.stop_reason == "completed" and not trained.stopped
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert trained.metrics["accuracy"] > 0.75 and trained.metrics["macro_f1"] > 0.75
    assert set(history[0]) == {
        "epoch", "train_loss", "val_loss", "accuracy", "balanced_accuracy", "macro_f1",
        "recall_bright", "recall_dark", "lr", "seconds", "best"}
    assert trained.best_epoch == max(history, key=lambda r: (r["macro_f1"], -r["val_loss"]))[
        "epoch"]
    assert trained.split["n_train"] + trained.split["n_val"] == 64
    assert "grouped split" in trained.summary and "Best epoch" in trained.summary

def test_model_folder_contract(trained):
    meta = json.loads((trained.model_dir / "model.json").read_text())
    for key in ("format_version", "arch", "arch_params", "spatial_dims", "in_channels",
                "image_channels", "classes", "patch_size", "patch_mode", "dilation",
                "normalisation", "config", "history", "best_epoch", "metrics", "data",
                "versions", "parent", "created_at"):
        assert key in meta, key
    assert meta["arch_params"] == {"depth": 1, "width": 4, "kernel": 3, "dropout": 0.2}
    assert meta["classes"] == ["bright", "dark"] and meta["patch_size"] == [16, 16]
    assert meta["in_channels"] == 2 and meta["image_channels"] == 1 and meta["parent"] is None
    assert T.TrainConfig.from_dict(meta["config"]).patch_size == 16
    assert sorted(p.name for p in trained.model_dir.iterdir()) == [
        "model.json", "model.onnx", "weights.safetensors"]
    assert meta["onnx"]["file"] == "model.onnx"
    assert not [p for p in trained.model_dir.parent.iterdir() if p.name.startswith(".")]

def test_save_load_gives_identical_predictions(trained, dataset):
    loaded = models.load_model(trained.model_dir)
    assert loaded.classes == ("bright", "dark") and loaded.patch_size == (16, 16)
    assert not loaded.module.training
    np.testing.assert_array_equal(predict.predict_patches(loaded, dataset.X),
                                  predict.predict_patches(trained.model, dataset.X))
    with pytest.raises(InputError, match=r"patches have shape \(2, 8, 8\) but the model needs "
                                         r"\(2, 16, 16\)"):
        predict.predict_patches(loaded, np.zeros((1, 2, 8, 8), np.float32))

def test_the_model_folder_is_a_checkpoint_of_the_best_epoch_while_training(dataset, tmp_path):
    folder = tmp_path / "m"
    seen = []

    def on_epoch(record):
        # what a reader (or a worker killed now) finds on disk at the end of each epoch
        meta = models.load_model(folder).meta
        seen.append((record["epoch"], record["best"], meta["best_epoch"], meta["stop_reason"],
                     len(meta["history"])))
        # and the checkpoint's graph predicts with ONNX Runtime, as its weights do in torch
        onnx = models.load_predictor(folder, device="cpu")
        np.testing.assert_allclose(predict.predict_patches(onnx, dataset.X[:16]),
                                   predict.predict_patches(models.load_model(folder),
                                                           dataset.X[:16]), atol=1e-5)

    run = T.train(dataset, cfg(epochs=4, lr=1e-2, batch_size=8), out_dir=folder,
                  on_epoch=on_epoch)
    best_so_far = 0
    for epoch, best, saved_best, reason, n_history in seen:
        best_so_far = epoch if best else best_so_far
        assert (saved_best, reason) == (best_so_far, "in progress")
        assert n_history == best_so_far  # the history up to the checkpoint
    final = models.load_model(folder).meta
    assert final["stop_reason"] == "completed" and len(final["history"]) == 4
    assert final["best_epoch"] == run.best_epoch
    assert sorted(p.name for p in folder.iterdir()) == [
        "model.json", "model.onnx", "weights.safetensors"]
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporary file left beside it

def test_a_non_empty_out_folder_is_refused_before_training(dataset, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match=r"model folder .*m already exists and is not empty"):
        T.train(dataset, cfg(epochs=1000), out_dir=folder)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]

class _StopAfter:
    """A stop event that turns on after ``n`` looks (each batch looks once)."""

    def __init__(self, n):
        self.n = n

    def is_set(self):
        self.n -= 1
        return self.n < 0

def test_stop_ends_within_an_epoch_and_saves(dataset, tmp_path):
    # 48 training objects / batch 16 = 3 batches an epoch; stop during the second epoch
    run = T.train(dataset, cfg(epochs=50), stop=_StopAfter(5), out_dir=tmp_path / "m")
    assert run.stopped and run.stop_reason == "stopped"
    assert len(run.history) == 1 and run.best_epoch == 1
    assert "stopped on request" in run.summary.lower()
    assert models.load_model(run.model_dir).classes == ("bright", "dark")

def test_stop_before_the_first_epoch_still_leaves_a_model(dataset, tmp_path):
    stop = threading.Event()
    stop.set()
    seen = []
    run = T.train(dataset, cfg(epochs=50), stop=stop, out_dir=tmp_path / "m", on_epoch=seen.append)
    assert run.stopped and len(run.history) == 1 and run.history[0]["partial"]
    assert run.history[0]["train_loss"] is None and seen == run.history
    models.load_model(run.model_dir)

def test_max_minutes(dataset, tmp_path):
    run = T.train(dataset, cfg(epochs=1000, max_minutes=0.02), out_dir=tmp_path / "m")
    assert run.stop_reason == "time limit" and not run.stopped
    assert 1 <= len(run.history) < 1000 and run.seconds < 10
    assert "time limit of 0.02 min" in run.summary
    models.load_model(run.model_dir)

@pytest.mark.slow
def test_early_stopping_on_macro_f1(dataset):
    run = T.train(dataset, cfg(epochs=60, patience=2, lr=1e-2))
    assert run.stop_reason == "early stopping" and len(run.history) < 60
    f1 = [r["macro_f1"] for r in run.history]
    assert max(f1[-2:]) <= max(f1[:-2])

def test_no_validation_set_scores_training_objects(dataset):
    run = T.train(dataset, cfg(epochs=1, val_fraction=0.0))
    assert run.split["n_val"] == 0 and run.metrics["n"] == 64
    assert "no validation set" in run.summary

def test_train_checks_data_against_config(dataset):
    with pytest.raises(InputError, match=r"config patch_size is 24 but the dataset patches are "
                                         r"\(16, 16\)"):
        T.train(dataset, cfg(patch_size=24))

def test_train_with_groups_callable_and_explicit_split(dataset):
    run = T.train(dataset, cfg(epochs=1), groups=lambda name: name[:4] in ("img0", "img1"))
    assert run.split["val_groups"] in (["True"], ["False"])
    run = T.train(dataset, cfg(epochs=1), split=(np.arange(40), np.arange(40, 64)))
    assert run.split["n_val"] == 24 and run.metrics["n"] == 24

@pytest.mark.slow
def test_continue_from_parent(trained, dataset, items, tmp_path):
    child = T.train(dataset, cfg(epochs=1, lr=1e-5, patch_size=None), parent=trained.model_dir,
                    out_dir=tmp_path / "child")
    meta = models.load_model(child.model_dir).meta
    assert meta["parent"] == str(trained.model_dir.resolve())
    assert meta["config"]["continue_from"] == str(trained.model_dir)
    # weights start from the parent: one epoch at a tiny rate keeps its accuracy
    assert child.history[0]["accuracy"] >= 0.75
    relabelled = [(n, i, m, l.assign(**{"class": l["class"].map({"bright": "b", "dark": "d"})}))
                  for n, i, m, l in items]
    other = T.build_samples(relabelled, cfg())
    with pytest.raises(InputError, match=r"has classes \['bright', 'dark'\] but the labels have "
                                         r"\['b', 'd'\]; the same classes are required"):
        T.train(other, cfg(), parent=trained.model_dir)
    small = T.build_samples(items, cfg(patch_size=8))
    with pytest.raises(InputError,
                       match=r"its patch_size is \[16, 16\] but the data have \[8, 8\]"):
        T.train(small, cfg(patch_size=None), parent=trained.model_dir)

@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_train_with_other_losses_and_3d(loss, tmp_path):
    rng = np.random.default_rng(0)
    mask = np.zeros((16, 48, 48), np.uint16)
    rows = []
    for i, (r, c) in enumerate(itertools.product(range(8, 48, 16), repeat=2)):
        if i % 2:
            mask[4:12, r - 4 : r + 4, c - 4 : c + 4] = i + 1
            rows.append((i + 1, "cube"))
        else:
            mask[7:9, r - 6 : r + 6, c - 1 : c + 1] = i + 1
            rows.append((i + 1, "rod"))
    items = [(f"v{k}", None, mask, pd.DataFrame(rows, columns=["label", "class"]))
             for k in range(3)]
    del rng
    ds = T.build_samples(items, cfg(patch_size=(8, 16, 16)))
    run = T.train(ds, cfg(patch_size=(8, 16, 16), loss=loss, epochs=2), out_dir=tmp_path / "m")
    loaded = models.load_model(run.model_dir)
    assert loaded.meta["spatial_dims"] == 3 and loaded.patch_size == (8, 16, 16)
    assert predict.predict_patches(loaded, ds.X).shape == (27, 2)


def test_collect_timings_times_a_whole_run(dataset):
    seen = []
    with T.collect_timings() as timings:
        run = T.train(dataset, cfg(epochs=2), on_epoch=seen.append)
    assert len(seen) == 2 == len(run.history)
    assert 0 < timings["compute"] <= timings["total"] and timings["evaluate"] > 0
    assert timings["total"] + timings["evaluate"] <= sum(r["seconds"] for r in seen) + 0.01
