"""svetlana_core.baseline.model: training, scoring and the no-pickle model folder."""

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from svetlana_core.baseline import BaselineModel, load_baseline, train_baseline
from svetlana_core.errors import InputError, StorageError
from svetlana_core.objects import SHAPE_FEATURES_3D, object_features


def test_rf_separates_disks_from_ellipses(trained):
    model, _, _, test_features, test_y = trained
    assert isinstance(model, BaselineModel)
    assert model.classes == ("round", "long", "absent")
    metrics = model.evaluate(test_features, test_y)
    assert metrics["n"] == len(test_y) == 24
    assert metrics["accuracy"] == 1.0 and metrics["balanced_accuracy"] == 1.0
    assert model.predict(test_features) == test_y
    proba = model.predict_proba(test_features)
    assert proba.shape == (24, 3)
    np.testing.assert_array_equal(proba[:, 2], 0.0)  # no training example of "absent"
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert model.data == {"n": 36, "n_per_class": {"round": 18, "long": 18, "absent": 0}}
    assert sum(model.feature_importances.values()) == pytest.approx(1.0)


def test_same_seed_same_forest(trained):
    model, features, y, test_features, _ = trained
    again = train_baseline(features, y, list(model.classes), n_estimators=25, seed=0)
    np.testing.assert_array_equal(again.predict_proba(test_features),
                                  model.predict_proba(test_features))


def test_save_load_identical(trained, tmp_path):
    model, _, _, test_features, test_y = trained
    metrics = model.evaluate(test_features, test_y)
    folder = model.with_metrics(metrics).save(tmp_path / "rf")
    assert sorted(p.name for p in folder.iterdir()) == ["forest.npz", "model.json"]
    meta = json.loads((folder / "model.json").read_text())
    assert meta["arch"] == "rf" and meta["classes"] == ["round", "long", "absent"]
    assert meta["feature_names"] == list(test_features.columns)
    assert meta["params"]["n_estimators"] == 25 and meta["metrics"] == metrics
    assert {"python", "numpy", "scikit-learn", "svetlana"} <= set(meta["versions"])
    loaded = load_baseline(folder)
    assert loaded.estimator is None and loaded.metrics == metrics
    assert loaded.classes == model.classes and loaded.feature_names == model.feature_names
    np.testing.assert_array_equal(loaded.predict_proba(test_features),
                                  model.predict_proba(test_features))
    # the arrays are plain numeric arrays (no object arrays, nothing to unpickle)
    with np.load(folder / "forest.npz", allow_pickle=False) as npz:
        assert all(npz[name].dtype != object for name in npz.files)


def test_predict_checks_feature_columns(trained):
    model, _, _, test_features, _ = trained
    with pytest.raises(InputError, match=r"lacks 1 feature column.*'ch0_contrast'"):
        model.predict(test_features.drop(columns="ch0_contrast"))
    with pytest.raises(InputError, match="must be a pandas DataFrame"):
        model.predict_proba(test_features.to_numpy())
    # extra or reordered columns do not matter: columns are taken by name
    shuffled = test_features[test_features.columns[::-1]].assign(image="A01.tif")
    np.testing.assert_array_equal(model.predict_proba(shuffled),
                                  model.predict_proba(test_features))


def _tamper(folder, edit):
    meta = json.loads((folder / "model.json").read_text())
    edit(meta)
    (folder / "model.json").write_text(json.dumps(meta))


def _rewrite_forest(folder, edit):
    with np.load(folder / "forest.npz") as npz:
        arrays = {name: npz[name].copy() for name in npz.files}
    edit(arrays)
    np.savez(folder / "forest.npz", **arrays)
    digest = hashlib.sha256((folder / "forest.npz").read_bytes()).hexdigest()
    _tamper(folder, lambda meta: meta.update(forest_sha256=digest))


def _bad_child(arrays):
    internal = np.flatnonzero(arrays["children_left"] >= 0)
    arrays["children_left"][internal[1]] = internal[0]  # a loop back up the tree


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda m: m.pop("classes"), r"model\.json has no key 'classes'"),
        (lambda m: m.pop("forest_sha256"), r"model\.json has no key 'forest_sha256'"),
        (lambda m: m.update(arch="cnn"), r"model\.json key 'arch' is 'cnn'"),
        (lambda m: m.update(format_version=99), r"key 'format_version' is 99"),
        (lambda m: m.update(feature_names="area"), r"key 'feature_names' must be a list"),
        (lambda m: m.update(classes=["a", "a", "b"]), r"key 'classes' must be .* distinct"),
        (lambda m: m.update(classes=["a", "b"]), r"forest\.npz array 'value' has shape"),
        (lambda m: m.update(feature_names=["area", "perimeter"]),
         r"forest\.npz array 'feature' has indices outside 0\.\.1"),
        (lambda m: m.update(forest_sha256="0" * 64), r"forest\.npz does not match key "
                                                     r"'forest_sha256'"),
    ],
)
def test_tampered_model_json(trained, tmp_path, edit, match):
    folder = trained[0].save(tmp_path / "rf")
    _tamper(folder, edit)
    with pytest.raises(InputError, match=match):
        load_baseline(folder)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda a: a.pop("threshold"), r"forest\.npz has no array 'threshold'"),
        (_bad_child, r"array 'children_left' points to a node that is not a later node"),
        (lambda a: a.update(value=-a["value"]), r"array 'value' has negative"),
        (lambda a: a.update(threshold=a["threshold"].astype(str)), r"'threshold' has dtype"),
        (lambda a: a.update(roots=a["roots"][::-1]), r"array 'roots' is not an increasing"),
        (lambda a: a.update(threshold=np.full_like(a["threshold"], np.nan)),
         r"array 'threshold' has NaN values"),
    ],
)
def test_tampered_forest_npz(trained, tmp_path, edit, match):
    folder = trained[0].save(tmp_path / "rf")
    _rewrite_forest(folder, edit)
    with pytest.raises(InputError, match=match):
        load_baseline(folder)


def test_npz_with_pickled_object_is_refused(trained, tmp_path):
    folder = trained[0].save(tmp_path / "rf")
    _rewrite_forest(folder, lambda a: a.update(threshold=np.array([{"x": 1}], dtype=object)))
    with pytest.raises(InputError, match=r"forest\.npz cannot be read as arrays"):
        load_baseline(folder)


def test_load_missing_or_broken_files(tmp_path, trained):
    with pytest.raises(InputError, match=r"model\.json not found"):
        load_baseline(tmp_path / "nowhere")
    folder = trained[0].save(tmp_path / "rf")
    (folder / "forest.npz").unlink()
    with pytest.raises(InputError, match=r"forest\.npz not found"):
        load_baseline(folder)
    (folder / "model.json").write_text("{not json")
    with pytest.raises(InputError, match=r"model\.json is not valid JSON"):
        load_baseline(folder)


def test_train_bad_input(trained):
    _, features, y, _, _ = trained
    classes = ["round", "long"]
    with pytest.raises(InputError, match="y has 35 values but features has 36 rows"):
        train_baseline(features, y[:-1], classes)
    with pytest.raises(InputError, match=r"class name\(s\) \['long'\] that are not in classes"):
        train_baseline(features, y, ["round"])
    with pytest.raises(InputError, match="y has 1 distinct class"):
        train_baseline(features, ["round"] * len(y), classes)
    with pytest.raises(InputError, match="index differs"):
        train_baseline(features, pd.Series(y, index=features.index + 100), classes)
    with pytest.raises(InputError, match="y has 1 missing class name"):
        train_baseline(features, [None] + y[1:], classes)
    with pytest.raises(InputError, match="column 'area' has infinite values"):
        train_baseline(features.assign(area=np.inf), y, classes)
    with pytest.raises(InputError, match="class_weight must be 'balanced'"):
        train_baseline(features, y, classes, class_weight={"round": 2})
    with pytest.raises(InputError, match="classes repeats names"):
        train_baseline(features, y, ["round", "long", "round"])
    with pytest.raises(InputError, match=r"non-numeric feature column\(s\) \['image'\]"):
        train_baseline(features.assign(image="A01.tif"), y, classes)


@pytest.mark.slow
def test_urocell_leave_one_volume_out(shared_data):
    import tifffile

    folder = shared_data / "urocell_mito_3d_masks_only"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    labels = pd.read_csv(folder / "objects.csv")
    tables = []
    start = time.perf_counter()
    for path in sorted((folder / "masks").glob("*.tif")):
        table = object_features(None, tifffile.imread(path))
        tables.append(table.reset_index().assign(image=path.name))
    seconds = time.perf_counter() - start
    features = pd.concat(tables).merge(labels, on=["image", "label"])  # drops unlabelled
    test_image = "fib1-4-3-0.tif"
    train, test = features[features.image != test_image], features[features.image == test_image]
    columns = list(SHAPE_FEATURES_3D)
    start = time.perf_counter()
    model = train_baseline(train[columns], list(train["class"]), ["branched", "non_branched"])
    metrics = model.evaluate(test[columns], test["class"])
    fit_seconds = time.perf_counter() - start
    print(f"\nUroCell RF, train 4 volumes ({len(train)} objects), test {test_image} "
          f"({len(test)}): balanced accuracy {metrics['balanced_accuracy']:.3f}, "
          f"accuracy {metrics['accuracy']:.3f}, confusion {metrics['confusion']}; "
          f"features {seconds:.1f} s for 5 volumes of 256^3, fit + predict {fit_seconds:.1f} s")
    assert metrics["n"] == len(test) == 74
    assert 0.0 <= metrics["balanced_accuracy"] <= 1.0


def test_save_writes_strict_json_with_null_for_nan(trained, tmp_path):
    metrics = {"accuracy": float("nan"), "n": np.int64(3),
               "per_class": {"round": {"f1": np.float64("inf"), "support": 3}}}
    folder = trained[0].with_metrics(metrics).save(tmp_path / "rf")
    text = (folder / "model.json").read_text()
    meta = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in model.json"))
    assert meta["metrics"] == {"accuracy": None, "n": 3, "per_class": {"round": {"f1": None,
                                                                                  "support": 3}}}
    assert load_baseline(folder).metrics == meta["metrics"]


def test_save_replaces_files_atomically(trained, tmp_path, monkeypatch):
    model, _, _, test_features, _ = trained
    folder = model.save(tmp_path / "rf")
    before = {name: (folder / name).read_bytes() for name in ("forest.npz", "model.json")}

    def full_disk(file, **arrays):  # writes half a file, then fails
        handle = open(file, "wb") if isinstance(file, (str, Path)) else file  # noqa: SIM115
        handle.write(b"PK\x03\x04 half a zip")
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(StorageError, match=r"cannot write \S+forest\.npz: No space left"):
        model.save(folder)
    monkeypatch.undo()
    assert {name: (folder / name).read_bytes() for name in before} == before
    assert sorted(p.name for p in folder.iterdir()) == ["forest.npz", "model.json"]  # no temp
    np.testing.assert_array_equal(load_baseline(folder).predict_proba(test_features),
                                  model.predict_proba(test_features))
