"""svetlana_core.patches.size: the automatic patch size."""

import numpy as np
import pandas as pd
import pytest

from svetlana_core.errors import InputError
from svetlana_core.objects import object_table
from svetlana_core.patches import auto_patch_size
from tests.builders import strict_disks


def grid_of_disks(radius, n=100, giants=0, giant_radius=100):
    side = 2 * radius + 4
    columns = 10
    height = (n // columns + 1) * side + giants * (2 * giant_radius + 4)
    objects = [
        (i + 1, (i // columns) * side + side // 2, (i % columns) * side + side // 2, radius)
        for i in range(n)
    ]
    top = (n // columns + 1) * side
    objects += [
        (n + 1 + g, top + g * (2 * giant_radius + 4) + giant_radius + 2, giant_radius + 2,
         giant_radius)
        for g in range(giants)
    ]
    return strict_disks((height, max(columns * side, 2 * giant_radius + 4)), objects)


@pytest.mark.parametrize("radius, expected", [(5, 16), (10, 32), (20, 64)])
def test_auto_patch_size_ignores_a_few_giants(radius, expected):
    # Extent of a skimage disk of radius r is 2r - 1; times 1.5, up to a multiple of 8:
    # r=5 -> 13.5 -> 16; r=10 -> 28.5 -> 32; r=20 -> 58.5 -> 64.
    plain = auto_patch_size(object_table(grid_of_disks(radius)), 2)
    with_giants = auto_patch_size(object_table(grid_of_disks(radius, giants=2)), 2)
    assert plain == with_giants == (expected, expected)


def test_auto_patch_size_clips_and_is_cubic_in_3d():
    table = pd.DataFrame({
        "bbox_plane_start": [0, 0], "bbox_plane_stop": [2, 3],
        "bbox_row_start": [0, 0], "bbox_row_stop": [3, 2],
        "bbox_column_start": [0, 0], "bbox_column_stop": [2, 2],
    })
    assert auto_patch_size(table, 3) == (8, 8, 8)
    huge = table.assign(bbox_row_stop=[900, 900])
    assert auto_patch_size(huge, 3) == (48, 48, 48)  # the memory and speed budget
    assert auto_patch_size(huge.drop(columns=["bbox_plane_start", "bbox_plane_stop"]), 2) == (
        256, 256)


def test_auto_patch_size_of_empty_table_is_the_smallest():
    assert auto_patch_size(object_table(np.zeros((5, 5), np.uint8)), 2) == (16, 16)


def test_auto_patch_size_errors():
    table = object_table(np.ones((5, 5), np.uint8))
    with pytest.raises(InputError, match="ndim must be 2 or 3; got 4"):
        auto_patch_size(table, 4)
    with pytest.raises(InputError, match=r"table has no column\(s\) \['bbox_plane_start'"):
        auto_patch_size(table, 3)
