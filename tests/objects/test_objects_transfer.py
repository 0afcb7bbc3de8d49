"""Matching the objects of a re-segmented mask to the old ones (issue 15 item 3)."""

import numpy as np
import pytest

from svetlana_core.errors import InputError
from svetlana_core.objects.transfer import check_fraction, match_objects, overlaps


def square(mask, label, row, col, size=6):
    mask[row:row + size, col:col + size] = label


def resegmented():
    """Old objects 1..6, 6x6 squares; the new mask numbers them 10, 20, ... and changes some:
    1 shifted down one row (10, IoU 30/42), 2 cut in halves (21, 22), 3 and 4 merged (34),
    5 deleted, 6 unchanged (50), and 60 is a new object."""
    old = np.zeros((40, 60), np.uint16)
    corners = [(2, 2), (2, 20), (20, 2), (20, 9), (30, 40), (2, 40)]
    for label, (r, c) in enumerate(corners, start=1):
        square(old, label, r, c)
    new = np.zeros_like(old)
    square(new, 10, 3, 2)
    new[2:8, 20:23], new[2:8, 23:26] = 21, 22
    new[20:26, 2:15] = 34
    square(new, 50, 2, 40)
    square(new, 60, 10, 45)
    return old, new


def test_shifted_split_merged_lost_new_and_renumbered_objects():
    old, new = resegmented()
    m = match_objects(old, new)
    assert m.pairs[["old", "new"]].values.tolist() == [[1, 10], [6, 50]]
    assert m.pairs["iou"].tolist() == [30 / 42, 1.0]
    assert m.split.tolist() == [2]
    assert m.merged.tolist() == [34]
    assert m.pieces.values.tolist() == [[2, 21, "split"], [2, 22, "split"], [3, 34, "merged"],
                                        [4, 34, "merged"]]
    assert m.lost.tolist() == [2, 3, 4, 5]
    assert m.new_only.tolist() == [21, 22, 34, 60]
    assert [a.dtype for a in (m.lost, m.new_only, m.split, m.merged)] == [np.int64] * 4


def test_matching_does_not_depend_on_which_numbers_the_labels_have():
    old, new = resegmented()
    renumbered = np.where(new > 0, 1000 - new, 0).astype(np.uint16)  # 10 -> 990, 50 -> 950
    m = match_objects(old, renumbered)
    assert m.pairs[["old", "new"]].values.tolist() == [[1, 990], [6, 950]]
    assert m.merged.tolist() == [966]


def test_a_speck_cut_off_or_swallowed_does_not_make_an_object_ambiguous():
    old = np.zeros((20, 30), np.uint8)
    old[0:10, 0:10] = 1          # 100 px; the new mask cuts a 2 px speck off it
    old[0:10, 15:25] = 2         # 100 px; the new mask swallows the speck 3 next to it
    old[10, 15:17] = 3
    new = np.zeros_like(old)
    new[0:10, 0:10] = 7
    new[9, 0:2] = 8
    new[0:11, 15:25] = 9
    m = match_objects(old, new)
    assert m.split.size == 0 and m.merged.size == 0 and m.pieces.empty
    assert m.pairs[["old", "new"]].values.tolist() == [[1, 7], [2, 9]]
    assert m.pairs["iou"].tolist() == [98 / 100, 100 / 110]
    assert m.lost.tolist() == [3] and m.new_only.tolist() == [8]
    # With a smaller floor the speck counts as a piece: 1 is split, 9 merged 2 and 3.
    m = match_objects(old, new, min_part=0.01)
    assert m.split.tolist() == [1] and m.merged.tolist() == [9]
    assert m.pairs.empty


def test_a_lower_threshold_pairs_one_to_one_by_the_largest_total_iou():
    old = np.zeros((10, 20), np.uint8)
    old[0:4, 0:4], old[0:4, 5:9] = 1, 2
    old[6:10, 0:4] = 3
    new = np.zeros_like(old)
    new[0:4, 2:7] = 7          # half of 1 and half of 2: IoU 8/28 with each
    new[0:4, 7:10] = 8         # half of 2: IoU 8/20
    new[6:10, 2:6] = 9         # half of 3 only: IoU 8/24, uncontested
    m = match_objects(old, new, min_iou=0.25)
    # 7 could go with 1 or 2; 2 is better off with 8, so the best total is 1-7 and 2-8.
    assert m.pairs[["old", "new"]].values.tolist() == [[1, 7], [2, 8], [3, 9]]
    assert m.pairs["iou"].tolist() == [8 / 28, 8 / 20, 8 / 24]
    assert m.lost.size == 0 and m.new_only.size == 0
    assert match_objects(old, new, min_iou=0.3).pairs[["old", "new"]].values.tolist() == [
        [2, 8], [3, 9]]
    assert match_objects(old, new, min_iou=0.5).pairs.empty


def test_3d_masks_match_split_and_merge_the_same_way():
    old = np.zeros((4, 10, 10), np.int32)
    old[1:3, 2:6, 2:6] = 4
    old[0:4, 7:10, 7:10] = 5
    new = np.zeros_like(old)
    new[1:3, 2:6, 3:7] = 9                          # 4, shifted one column: IoU 24/40
    new[0:2, 7:10, 7:10], new[2:4, 7:10, 7:10] = 11, 12   # 5, cut between planes 1 and 2
    m = match_objects(old, new)
    assert m.pairs[["old", "new"]].values.tolist() == [[4, 9]]
    assert m.pairs["iou"].tolist() == [24 / 40]
    assert m.split.tolist() == [5] and m.new_only.tolist() == [11, 12]


def test_overlaps_lists_every_touching_pair_with_its_areas():
    old, new = resegmented()
    table = overlaps(old, new)
    assert table[["old", "new", "overlap", "area_old", "area_new"]].values.tolist() == [
        [1, 10, 30, 36, 36], [2, 21, 18, 36, 18], [2, 22, 18, 36, 18], [3, 34, 36, 36, 78],
        [4, 34, 36, 36, 78], [6, 50, 36, 36, 36]]


def test_labels_too_large_for_one_code_still_match():
    top = np.iinfo(np.uint32).max
    old = np.array([[top, top, 0, 7]], np.uint32)
    new = np.array([[top - 1, top - 1, 0, top]], np.uint32)
    m = match_objects(old, new)
    assert m.pairs[["old", "new"]].values.tolist() == [[7, top], [top, top - 1]]


def test_masks_without_any_overlap_pair_nothing():
    old = np.array([[1, 1, 0, 0]])
    new = np.array([[0, 0, 2, 2]])
    m = match_objects(old, new)
    assert m.pairs.empty and m.lost.tolist() == [1] and m.new_only.tolist() == [2]


@pytest.mark.parametrize("value, message", [
    (0, r"min_iou must be in \(0, 1\], got 0$"),
    (1.5, r"min_iou must be in \(0, 1\], got 1\.5$"),
    (float("nan"), r"got nan$"),
    ("half", r"got 'half'$"),
])
def test_bad_thresholds_are_refused(value, message):
    old, new = resegmented()
    with pytest.raises(InputError, match=message):
        match_objects(old, new, value)
    with pytest.raises(InputError, match=message.replace("min_iou", "min_part")):
        match_objects(old, new, min_part=value)


def test_masks_of_different_shapes_are_refused():
    old, new = resegmented()
    with pytest.raises(InputError, match=r"the new mask has shape \(40, 59\) but the old one "
                                         r"has \(40, 60\)"):
        match_objects(old, new[:, :59])
    assert check_fraction(1) == 1.0
