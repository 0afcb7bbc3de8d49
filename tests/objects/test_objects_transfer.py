"""Matching the objects of a re-segmented mask to the old ones (issue 15 item 3)."""

import numpy as np
import pytest

from svetlana_core.errors import InputError
from svetlana_core.objects.transfer import match_objects


def square(mask, label, row, col, size=6):
    mask[row:row + size, col:col + size] = label


def resegmented():
    """Old objects 1..5; the new mask numbers them 10, 20, ... and changes some:
    1 shifted by one pixel (kept), 2 split in two (21, 22), 3 and 4 merged (34),
    5 deleted, 60 added."""
    old = np.zeros((40, 60), np.uint16)
    for label, (r, c) in enumerate([(2, 2), (2, 20), (20, 2), (20, 9), (30, 40)], start=1):
        square(old, label, r, c)
    new = np.zeros_like(old)
    square(new, 10, 3, 2)                      # 1, shifted down one row: IoU 30/42
    new[2:8, 20:23], new[2:8, 23:26] = 21, 22  # 2, split in halves
    new[20:26, 2:15] = 34                      # 3 and 4, merged
    square(new, 60, 10, 45)                    # new object
    return old, new


def test_shifted_split_merged_lost_and_new_objects():
    old, new = resegmented()
    m = match_objects(old, new)
    assert m.pairs[["old", "new"]].values.tolist() == [[1, 10]]
    assert m.pairs["iou"].iloc[0] == pytest.approx(30 / 42)
    assert m.split.tolist() == [2]
    assert m.merged.tolist() == [34]
    assert m.lost.tolist() == [2, 3, 4, 5]
    assert m.new_only.tolist() == [21, 22, 34, 60]


def test_a_lower_threshold_pairs_one_to_one_by_the_largest_overlaps():
    old = np.zeros((10, 20), np.uint8)
    old[0:4, 0:4], old[0:4, 5:9] = 1, 2
    new = np.zeros_like(old)
    new[0:4, 2:7] = 7          # half of 1 and half of 2: IoU 8/28 with each
    new[0:4, 7:10] = 8         # half of 2: IoU 8/20
    m = match_objects(old, new, min_iou=0.25)
    # 7 could go with 1 or 2; 2 is better off with 8, so the best total is 1-7 and 2-8.
    assert m.pairs[["old", "new"]].values.tolist() == [[1, 7], [2, 8]]
    assert match_objects(old, new, min_iou=0.5).pairs.empty


def test_3d_masks_match_the_same_way():
    old = np.zeros((4, 10, 10), np.int32)
    old[1:3, 2:6, 2:6] = 4
    new = np.zeros_like(old)
    new[1:3, 2:6, 3:7] = 9
    m = match_objects(old, new)
    assert m.pairs[["old", "new"]].values.tolist() == [[4, 9]]


@pytest.mark.parametrize("min_iou, message", [(0, r"min_iou must be in \(0, 1\], got 0"),
                                              (1.5, r"got 1\.5")])
def test_bad_thresholds_and_shapes_are_refused(min_iou, message):
    old, new = resegmented()
    with pytest.raises(InputError, match=message):
        match_objects(old, new, min_iou)
    with pytest.raises(InputError, match=r"the new mask has shape \(40, 59\) but the old one "
                                         r"has \(40, 60\)"):
        match_objects(old, new[:, :59])
