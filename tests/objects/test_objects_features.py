"""svetlana_core.objects.features: shape and intensity features of drawn objects."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi
from skimage.draw import disk, ellipse, ellipsoid
from skimage.measure import regionprops_table

from svetlana_core.errors import InputError
from svetlana_core.objects import (
    INTENSITY_STATISTICS,
    SHAPE_FEATURES_2D,
    SHAPE_FEATURES_3D,
    object_features,
)


def disks_and_ellipse():
    """Disks of radius 10 (label 3) and 6 (label 42), a thin ellipse (label 7)."""
    mask = np.zeros((100, 120), dtype=np.uint16)
    mask[disk((30, 30), 10)] = 3
    mask[ellipse(70, 60, 3, 25, rotation=0.4)] = 7
    mask[disk((25, 95), 6)] = 42
    return mask


def ellipsoid_ball(radius, shape=(40, 40, 40), centre=(20, 20, 20), label=1):
    ball = ellipsoid(radius, radius, radius)[1:-1, 1:-1, 1:-1]  # (2r+1)^3, no padding
    mask = np.zeros(shape, dtype=np.int32)
    start = [c - radius for c in centre]
    mask[tuple(slice(s, s + n) for s, n in zip(start, ball.shape, strict=True))][ball] = label
    return mask, int(ball.sum())


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
        (np.zeros((8, 8)), np.ones((8, 8), np.uint8), r"image has shape \(8, 8\); expected channel-first"),
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


def test_ball_3d_mask_only():
    mask, voxels = ellipsoid_ball(8, label=5)
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
    mask, _ = ellipsoid_ball(5, shape=(20, 20, 20), centre=(10, 10, 10), label=3)
    image = np.stack([np.where(mask == 3, 4.0, 1.0), np.full(mask.shape, 2.0)])
    table = object_features(image, mask, ring_width=1)
    assert table.loc[3, "ch0_mean"] == 4.0 and table.loc[3, "ch0_ring_mean"] == 1.0
    assert table.loc[3, "ch1_p50"] == 2.0
    with pytest.raises(InputError, match=r"\(C, planes, rows, columns\)"):
        object_features(image[0], mask)
