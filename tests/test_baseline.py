"""Tests of svetlana_core.baseline: object features, the random forest, its no-pickle folder."""

import hashlib
import json
import subprocess
import sys
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi
from skimage.draw import disk, ellipse, ellipsoid
from skimage.measure import regionprops_table

from svetlana_core.objects import INTENSITY_STATISTICS, SHAPE_FEATURES_2D, SHAPE_FEATURES_3D, object_features
from svetlana_core.baseline import BaselineModel, load_baseline, train_baseline
from svetlana_core.errors import InputError

# ---------------------------------------------------------------------------- synthetic data


def disks_and_ellipse():
    """Disks of radius 10 (label 3) and 6 (label 42), a thin ellipse (label 7)."""
    mask = np.zeros((100, 120), dtype=np.uint16)
    mask[disk((30, 30), 10)] = 3
    mask[ellipse(70, 60, 3, 25, rotation=0.4)] = 7
    mask[disk((25, 95), 6)] = 42
    return mask


def ball_mask(radius, shape=(40, 40, 40), centre=(20, 20, 20), label=1):
    ball = ellipsoid(radius, radius, radius)[1:-1, 1:-1, 1:-1]  # (2r+1)^3, no padding
    mask = np.zeros(shape, dtype=np.int32)
    start = [c - radius for c in centre]
    mask[tuple(slice(s, s + n) for s, n in zip(start, ball.shape, strict=True))][ball] = label
    return mask, int(ball.sum())


def shapes_dataset(rng, n_images):
    """Images of disks ("round") and elongated ellipses ("long") of random size and angle."""
    tables, classes = [], []
    for _ in range(n_images):
        mask = np.zeros((220, 220), dtype=np.int32)
        names = {}
        label = 0
        for row in range(4):
            for column in range(3):
                label += 1
                centre = (30 + 50 * row, 35 + 65 * column)
                if (row * 3 + column) % 2 == 0:
                    rr, cc = disk(centre, rng.uniform(5, 14), shape=mask.shape)
                    names[label] = "round"
                else:
                    rr, cc = ellipse(*centre, rng.uniform(2.5, 5), rng.uniform(14, 28),
                                     shape=mask.shape, rotation=rng.uniform(0, np.pi))
                    names[label] = "long"
                mask[rr, cc] = label
        image = rng.normal(100, 5, size=(1, *mask.shape))
        table = object_features(image, mask)
        tables.append(table)
        classes += [names[int(k)] for k in table.index]
    return pd.concat(tables, ignore_index=True), classes


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(1)
    features, y = shapes_dataset(rng, 3)
    test_features, test_y = shapes_dataset(rng, 2)
    model = train_baseline(features, y, ["round", "long", "absent"], n_estimators=25, seed=0)
    return model, features, y, test_features, test_y


# ---------------------------------------------------------------------------- features, 2D


def test_disk_and_ellipse_shape_features():
    mask = disks_and_ellipse()
    table = object_features(None, mask)
    assert list(table.columns) == list(SHAPE_FEATURES_2D)
    assert table.index.name == "label"
    assert table.index.tolist() == [3, 7, 42]
    assert (table.dtypes == np.float64).all()
    assert table.loc[3, "area"] == len(disk((30, 30), 10)[0])
    assert table.loc[42, "area"] == len(disk((25, 95), 6)[0])
    assert table.loc[7, "area"] == len(ellipse(70, 60, 3, 25, rotation=0.4)[0])
    assert table.loc[3, "eccentricity"] < 1e-6  # a symmetric disk
    assert table.loc[7, "eccentricity"] > 0.9
    assert table.loc[3, "axis_ratio"] == pytest.approx(1.0, abs=1e-9)
    assert table.loc[7, "axis_ratio"] < 0.2
    assert table.loc[3, "circularity"] > 0.9 > 0.5 > table.loc[7, "circularity"]
    assert table.loc[3, "euler_number"] == 1
    # the skimage values, passed through
    ref = pd.DataFrame(regionprops_table(mask, properties=(
        "label", "perimeter", "solidity", "extent", "axis_major_length",
        "equivalent_diameter_area"))).set_index("label")
    for column in ref.columns:
        np.testing.assert_array_equal(table[column].to_numpy(), ref[column].to_numpy())


def test_orientation_invariant():
    a = np.zeros((80, 80), dtype=np.uint8)
    a[ellipse(40, 40, 4, 20, rotation=0.0)] = 1
    b = np.ascontiguousarray(a.T)  # the same object turned by 90 degrees
    fa, fb = object_features(None, a), object_features(None, b)
    pd.testing.assert_frame_equal(fa, fb, check_exact=False, rtol=1e-9)


def test_labels_subset_order_and_errors():
    mask = disks_and_ellipse()
    table = object_features(None, mask, labels=[42, 3])
    assert table.index.tolist() == [42, 3]
    pd.testing.assert_frame_equal(table, object_features(None, mask).loc[[42, 3]])
    with pytest.raises(InputError, match=r"labels \[5\] are not objects of the mask"):
        object_features(None, mask, labels=[3, 5])
    with pytest.raises(InputError, match=r"labels \[0\] are not objects"):
        object_features(None, mask, labels=[0])


def test_constant_object_intensity_and_ring():
    mask = np.zeros((30, 30), dtype=np.uint8)
    mask[5:10, 5:10] = 4  # 25 pixels of value 2, background 5 around
    mask[20:25, 20:28] = 9
    image = np.full((2, 30, 30), 5.0)
    image[0][mask == 4] = 2.0
    image[0][mask == 9] = 7.0
    image[1] = 10.0
    table = object_features(image, mask, ring_width=2)
    names = [f"ch{c}_{s}" for c in (0, 1) for s in (*INTENSITY_STATISTICS, "ring_mean",
                                                    "contrast")]
    assert list(table.columns) == list(SHAPE_FEATURES_2D) + names
    row = table.loc[4]
    for stat in ("mean", "min", "max", "p10", "p50", "p90", "ring_mean"):
        assert row[f"ch1_{stat}"] == 10.0
    assert row["ch0_mean"] == 2.0 and row["ch0_std"] == 0.0 and row["ch0_sum"] == 50.0
    assert row["ch0_min"] == row["ch0_max"] == row["ch0_p10"] == row["ch0_p90"] == 2.0
    assert row["ch0_ring_mean"] == 5.0 and row["ch0_contrast"] == -3.0
    assert table.loc[9, "ch0_mean"] == 7.0 and table.loc[9, "ch0_contrast"] == 2.0
    assert "ch0_ring_mean" not in object_features(image, mask, ring_width=0).columns


def test_intensity_statistics_match_numpy():
    rng = np.random.default_rng(0)
    mask = disks_and_ellipse()
    image = rng.integers(0, 4000, size=(3, *mask.shape)).astype(np.uint16)
    table = object_features(image, mask)
    for label in (3, 7, 42):
        for c in range(3):
            values = image[c][mask == label].astype(float)
            row = table.loc[label]
            assert row[f"ch{c}_mean"] == pytest.approx(values.mean(), rel=1e-12)
            assert row[f"ch{c}_std"] == pytest.approx(values.std(), rel=1e-12)
            assert row[f"ch{c}_min"] == values.min() and row[f"ch{c}_max"] == values.max()
            assert row[f"ch{c}_sum"] == values.sum()
            for q in (10, 50, 90):
                assert row[f"ch{c}_p{q}"] == pytest.approx(np.percentile(values, q), rel=1e-12)


def test_ring_is_nan_without_background_and_one_pixel_object():
    mask = np.ones((6, 6), dtype=np.int64)  # one object filling the image
    mask[0, 0] = 2  # a one-pixel object, no background anywhere
    table = object_features(np.ones((1, 6, 6)), mask)
    assert np.isnan(table.loc[1, "ch0_ring_mean"]) and np.isnan(table.loc[2, "ch0_contrast"])
    assert np.isnan(table.loc[2, "circularity"])  # skimage perimeter of one pixel is 0


def test_empty_mask_gives_no_rows():
    table = object_features(np.zeros((2, 8, 8)), np.zeros((8, 8), dtype=np.uint8))
    assert len(table) == 0
    assert list(table.columns)[: len(SHAPE_FEATURES_2D)] == list(SHAPE_FEATURES_2D)
    assert "ch1_contrast" in table.columns


def test_inputs_not_modified():
    mask = disks_and_ellipse()
    image = np.random.default_rng(0).random((1, *mask.shape))
    mask_copy, image_copy = mask.copy(), image.copy()
    object_features(image, mask, labels=[7])
    np.testing.assert_array_equal(mask, mask_copy)
    np.testing.assert_array_equal(image, image_copy)


@pytest.mark.parametrize(
    ("image", "mask", "match"),
    [
        (np.zeros((8, 8)), np.ones((8, 8), np.uint8), r"image has shape \(8, 8\) but mask"),
        (np.zeros((1, 8, 9)), np.ones((8, 8), np.uint8), r"image has shape \(1, 8, 9\)"),
        (None, np.ones((8, 8), np.float32), "integer labels.*float32"),
        (None, np.ones((8, 8), bool), "integer labels.*bool"),
        (None, -np.ones((8, 8), np.int16), "negative labels"),
        (None, np.ones(8, np.uint8), r"2D \(rows, columns\) or 3D"),
    ],
)
def test_bad_feature_input(image, mask, match):
    with pytest.raises(InputError, match=match):
        object_features(image, mask)


# ---------------------------------------------------------------------------- features, 3D


def test_ball_3d_mask_only():
    mask, voxels = ball_mask(8, label=5)
    table = object_features(None, mask)
    assert list(table.columns) == list(SHAPE_FEATURES_3D)
    assert table.index.tolist() == [5]
    row = table.loc[5]
    assert row["area"] == voxels
    assert row["axis_ratio"] == pytest.approx(1.0, abs=1e-9)
    assert row["axis_ratio_intermediate"] == pytest.approx(1.0, abs=1e-9)
    assert 0.9 < row["solidity"] <= 1.0
    assert row["euler_number"] == 1
    ref = pd.DataFrame(regionprops_table(mask, properties=(
        "label", "axis_major_length", "axis_minor_length", "extent"))).set_index("label")
    assert row["axis_major_length"] == pytest.approx(ref.loc[5, "axis_major_length"], rel=1e-12)
    assert row["axis_minor_length"] == pytest.approx(ref.loc[5, "axis_minor_length"], rel=1e-12)
    assert row["extent"] == ref.loc[5, "extent"]
    # A face count over-estimates a sphere's area by about 1.5: sphericity near 2/3.
    assert 0.6 < row["sphericity"] < 0.72


def test_boxes_3d_exact():
    mask = np.zeros((10, 12, 14), dtype=np.uint8)
    mask[1:3, 1:4, 1:5] = 2  # 2 x 3 x 4 box
    mask[5, 5:7, 5:7] = 8  # L-shaped tromino, one voxel thick
    mask[5, 6, 6] = 0
    mask[0:3, 9:12, 11:14] = 9  # box touching the border of the volume
    table = object_features(None, mask)
    assert table.loc[2, "area"] == 24
    assert table.loc[2, "surface_area"] == 2 * (2 * 3 + 3 * 4 + 2 * 4)
    assert table.loc[9, "surface_area"] == 6 * 9  # the volume border counts as surface
    assert table.loc[2, "extent"] == 1.0
    assert table.loc[2, "solidity"] == pytest.approx(1.0, rel=1e-12)
    assert table.loc[8, "surface_area"] == 14
    lengths = table.loc[2, ["axis_major_length", "axis_intermediate_length",
                            "axis_minor_length"]].to_numpy()
    assert lengths[0] > lengths[1] > lengths[2] > 0
    no_hull = object_features(None, mask, convex_hull=False)
    assert no_hull["solidity"].isna().all()
    pd.testing.assert_frame_equal(no_hull.drop(columns="solidity"),
                                  table.drop(columns="solidity"))


def test_3d_solidity_is_scikit_images():
    # Random blobs with holes, branches and thin parts, touching each other and the border.
    rng = np.random.default_rng(7)
    noise = ndi.gaussian_filter(rng.random((24, 30, 36)), 2)
    mask = ndi.label(noise > np.percentile(noise, 80))[0]
    mask[0:3, 0:3, 0:3] = mask.max() + 1
    mask[10, 10:13, 10] = mask.max() + 1  # a one-voxel-thick rod
    with warnings.catch_warnings():
        # scikit-image's Qhull call fails on flat objects: it warns and returns inf
        warnings.simplefilter("ignore")
        ref = pd.DataFrame(regionprops_table(mask, properties=("label", "solidity")))
    ours = object_features(None, mask)["solidity"].to_numpy()
    flat = ~np.isfinite(ref["solidity"].to_numpy())
    assert ((ref["solidity"] < 0.95) & ~flat).sum() >= 7 and flat.sum() >= 5
    np.testing.assert_array_equal(ours[~flat], ref["solidity"].to_numpy()[~flat])
    np.testing.assert_array_equal(ours[flat], 1.0)  # flat ones here are convex (rods, plates)


def test_3d_with_image_channels():
    mask, _ = ball_mask(5, shape=(20, 20, 20), centre=(10, 10, 10), label=3)
    image = np.stack([np.where(mask == 3, 4.0, 1.0), np.full(mask.shape, 2.0)])
    table = object_features(image, mask, ring_width=1)
    assert table.loc[3, "ch0_mean"] == 4.0 and table.loc[3, "ch0_ring_mean"] == 1.0
    assert table.loc[3, "ch1_p50"] == 2.0
    with pytest.raises(InputError, match=r"\(C, planes, rows, columns\)"):
        object_features(image[0], mask)


# ---------------------------------------------------------------------------- the forest


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


def test_numpy_forest_equals_sklearn_exactly(trained):
    model, features, _, test_features, _ = trained
    model.estimator.set_params(n_jobs=1)
    for table in (features, test_features):
        x = table.to_numpy()
        np.testing.assert_array_equal(model.predict_proba(table), _sklearn_full(model, x))
        np.testing.assert_array_equal(model.forest.leaves(x) - model.forest.roots,
                                      model.estimator.apply(x))


def _sklearn_full(model, x):
    """sklearn's probabilities placed in the model's class columns."""
    proba = np.zeros((x.shape[0], len(model.classes)))
    proba[:, model.estimator.classes_] = model.estimator.predict_proba(x)
    return proba


def test_numpy_forest_equals_sklearn_with_nan():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 4))
    y = np.where(x[:, 0] + 0.5 * x[:, 1] > 0, "p", "q")
    x[rng.random(x.shape) < 0.15] = np.nan  # NaN seen in training
    features = pd.DataFrame(x, columns=list("abcd"))
    model = train_baseline(features, list(y), ["p", "q"], n_estimators=30, seed=4)
    test = pd.DataFrame(rng.normal(size=(200, 4)), columns=list("abcd"))
    test.iloc[::3, 2] = np.nan
    test.iloc[::5, 0] = np.nan
    for table in (features, test):
        np.testing.assert_array_equal(model.predict_proba(table),
                                      _sklearn_full(model, table.to_numpy()))


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


def test_baseline_imports_without_torch():
    code = ("import sys, svetlana_core.baseline, svetlana_core.stats.metrics; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# ---------------------------------------------------------------------------- real 3D data


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
