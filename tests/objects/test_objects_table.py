"""svetlana_core.objects.table: exact areas, centroids and boxes of drawn objects."""

import tracemalloc

import numpy as np
import pandas as pd
import pytest
from skimage.measure import regionprops_table

from svetlana_core.errors import InputError
from svetlana_core.objects import labels_of, object_table
from tests.builders import ball_mask, strict_disks

COLUMNS_2D = [
    "label", "area", "centroid_row", "centroid_column",
    "bbox_row_start", "bbox_row_stop", "bbox_column_start", "bbox_column_stop",
]
COLUMNS_3D = [
    "label", "area", "centroid_plane", "centroid_row", "centroid_column",
    "bbox_plane_start", "bbox_plane_stop", "bbox_row_start", "bbox_row_stop",
    "bbox_column_start", "bbox_column_stop",
]


def test_disks_with_label_gaps_give_exact_area_centroid_and_box():
    # skimage's disk is strict (d² < r²): radius 5 -> 69 pixels spanning centre ± 4,
    # radius 3 -> 25 pixels spanning centre ± 2, radius 8 -> 193 pixels spanning ± 7.
    mask = strict_disks((60, 70), [(42, 30, 40, 5), (3, 10, 12, 3), (7, 45, 15, 8)])
    table = object_table(mask)

    assert list(table.columns) == COLUMNS_2D
    assert table["label"].tolist() == [3, 7, 42]
    assert table["area"].tolist() == [25, 193, 69]
    assert table["centroid_row"].tolist() == [10.0, 45.0, 30.0]
    assert table["centroid_column"].tolist() == [12.0, 15.0, 40.0]
    assert table["bbox_row_start"].tolist() == [8, 38, 26]
    assert table["bbox_row_stop"].tolist() == [13, 53, 35]
    assert table["bbox_column_start"].tolist() == [10, 8, 36]
    assert table["bbox_column_stop"].tolist() == [15, 23, 45]
    assert table["label"].dtype == np.int64 and table["area"].dtype == np.int64


def test_bbox_stop_is_exclusive_and_slices_the_object():
    mask = np.zeros((5, 5), dtype=np.uint8)
    mask[1:4, 2:5] = 9
    row = next(object_table(mask).itertuples())  # keeps the int columns int
    rows = slice(row.bbox_row_start, row.bbox_row_stop)
    crop = mask[rows, row.bbox_column_start : row.bbox_column_stop]
    assert crop.shape == (3, 3) and (crop == 9).all()


def test_asymmetric_object_centroid_is_the_mean_pixel_coordinate():
    # An L: pixels (0, 0), (1, 0), (2, 0), (2, 1), (2, 2).
    mask = np.zeros((4, 4), dtype=np.int32)
    mask[0:3, 0] = 5
    mask[2, 0:3] = 5
    row = object_table(mask).iloc[0]
    assert row.area == 5
    assert row.centroid_row == pytest.approx(7 / 5)
    assert row.centroid_column == pytest.approx(3 / 5)


def test_3d_ball_gives_exact_volume_centroid_and_box():
    shape = (20, 30, 40)
    inside = ball_mask(shape, [(8, 12, 25)], 4, [1]) > 0
    mask = np.where(inside, 11, 0).astype(np.uint16)
    mask[0:2, 0:3, 38:40] = 2  # a box touching two faces
    table = object_table(mask)

    assert list(table.columns) == COLUMNS_3D
    assert table["label"].tolist() == [2, 11]
    assert table["area"].tolist() == [12, int(inside.sum())]
    ball_row = table.iloc[1]
    centroid = (ball_row.centroid_plane, ball_row.centroid_row, ball_row.centroid_column)
    assert centroid == (8, 12, 25)
    assert (ball_row.bbox_plane_start, ball_row.bbox_plane_stop) == (4, 13)
    assert (ball_row.bbox_row_start, ball_row.bbox_row_stop) == (8, 17)
    assert (ball_row.bbox_column_start, ball_row.bbox_column_stop) == (21, 30)
    box = table.iloc[0]
    assert (box.centroid_plane, box.centroid_row, box.centroid_column) == (0.5, 1.0, 38.5)
    assert (box.bbox_plane_start, box.bbox_plane_stop, box.bbox_column_stop) == (0, 2, 40)


def test_rows_do_not_run_into_each_other():
    # The same label at the end of one row and the start of the next is two runs, not one.
    mask = np.zeros((3, 4), dtype=np.uint8)
    mask[0, 3] = 1
    mask[1, 0] = 1
    row = object_table(mask).iloc[0]
    assert row.area == 2
    assert (row.bbox_row_start, row.bbox_row_stop) == (0, 2)
    assert (row.bbox_column_start, row.bbox_column_stop) == (0, 4)


@pytest.mark.parametrize("ndim", [2, 3])
def test_matches_regionprops_on_random_blobs(ndim):
    rng = np.random.default_rng(ndim)
    shape = (64, 80) if ndim == 2 else (12, 30, 40)
    # Non-convex, touching, border-crossing objects with many runs per row.
    mask = rng.integers(0, 40, shape).astype(np.int32)
    mask[mask > 30] = 0
    mask = mask * 97  # gaps between labels
    table = object_table(mask)
    expected = pd.DataFrame(
        regionprops_table(mask, properties=("label", "area", "centroid", "bbox"))
    )
    axes = ["row", "column"] if ndim == 2 else ["plane", "row", "column"]
    np.testing.assert_array_equal(table["label"], expected["label"])
    np.testing.assert_array_equal(table["area"], expected["area"])
    for i, axis in enumerate(axes):
        np.testing.assert_allclose(table[f"centroid_{axis}"], expected[f"centroid-{i}"])
        np.testing.assert_array_equal(table[f"bbox_{axis}_start"], expected[f"bbox-{i}"])
        np.testing.assert_array_equal(table[f"bbox_{axis}_stop"], expected[f"bbox-{i + ndim}"])


def test_single_top_label_of_uint16():
    mask = np.zeros((6, 6), dtype=np.uint16)
    mask[2:4, 1:5] = 65535
    table = object_table(mask)
    assert table["label"].tolist() == [65535]
    assert table["area"].tolist() == [8]
    np.testing.assert_array_equal(labels_of(mask), [65535])


@pytest.mark.parametrize("dtype, label", [(np.int64, 10**12), (np.int32, 2**31 - 1),
                                          (np.uint64, 10**15)])
def test_huge_sparse_labels_cost_no_label_sized_array(dtype, label):
    mask = np.zeros((100, 100), dtype=dtype)
    mask[10:20, 10:20] = label
    mask[50, 50] = 1
    tracemalloc.start()
    table = object_table(mask)
    labels = labels_of(mask)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2**20  # a bincount over the label values would need gigabytes
    assert table["label"].tolist() == [1, label]
    assert table["area"].tolist() == [1, 100]
    assert labels.tolist() == [1, label]


@pytest.mark.parametrize("shape, columns", [((5, 5), COLUMNS_2D), ((2, 5, 5), COLUMNS_3D),
                                            ((0, 7), COLUMNS_2D)])
def test_empty_mask_gives_empty_table_with_the_columns(shape, columns):
    mask = np.zeros(shape, dtype=np.uint8)
    table = object_table(mask)
    assert list(table.columns) == columns
    assert len(table) == 0
    assert labels_of(mask).size == 0


def test_input_is_not_modified_and_layout_does_not_matter():
    mask = strict_disks((40, 50), [(4, 10, 10, 5), (9, 25, 35, 7)])
    before = mask.copy()
    table = object_table(mask)
    np.testing.assert_array_equal(mask, before)

    transposed = object_table(np.ascontiguousarray(mask.T).T)  # Fortran-ordered view
    pd.testing.assert_frame_equal(table, transposed)


def test_labels_of_is_sorted_unique_nonzero_and_keeps_dtype():
    mask = strict_disks((30, 30), [(42, 5, 5, 3), (3, 15, 15, 3), (7, 25, 25, 3)], dtype=np.int16)
    labels = labels_of(mask)
    np.testing.assert_array_equal(labels, [3, 7, 42])
    assert labels.dtype == np.int16


@pytest.mark.parametrize(
    "mask, match",
    [
        (np.zeros((4, 4), dtype=np.float32), "mask has dtype float32; expected integer"),
        (np.zeros((4, 4), dtype=bool), "mask has dtype bool"),
        (np.zeros(5, dtype=np.uint8), r"mask has shape \(5,\); expected 2D"),
        (np.zeros((2, 2, 2, 2), dtype=np.uint8), r"mask has shape \(2, 2, 2, 2\)"),
        (np.array([[0, -3], [1, 1]], dtype=np.int8), r"negative labels \(smallest -3\)"),
    ],
)
def test_bad_masks_raise_input_error(mask, match):
    with pytest.raises(InputError, match=match):
        object_table(mask)
    with pytest.raises(InputError, match=match):
        labels_of(mask)
