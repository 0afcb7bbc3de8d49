"""svetlana_core.objects.checks: one message for one mistake, wherever a mask or image is given."""

import numpy as np
import pytest

from svetlana_core.errors import InputError
from svetlana_core.objects import (check_image, check_labels, check_mask, object_features,
                                   object_table)
from svetlana_core.patches import extract, normalise

MASK = np.zeros((4, 5), np.uint8)
MASK[1:3, 1:3] = 7


def test_check_mask_returns_the_array_without_a_copy():
    assert check_mask(MASK) is MASK
    assert check_mask([[0, 1], [2, 0]]).dtype.kind == "i"
    assert check_mask(np.zeros((2, 3, 4), np.int64)).shape == (2, 3, 4)


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (MASK.astype(np.float32), r"masks/A01\.tif has dtype float32; expected integer labels "
                                  r"\(0 = background, one integer per object\), not float32"),
        (MASK > 0, r"masks/A01\.tif has dtype bool; expected integer labels .*: a bool mask marks "
                   r"pixels, not objects: number them first \(scipy\.ndimage\.label\)"),
        (np.zeros(5, np.uint8), r"masks/A01\.tif has shape \(5,\); expected 2D \(rows, columns\) "
                                r"or 3D \(planes, rows, columns\)"),
    ],
)
def test_check_mask_names_the_mask(mask, message):
    with pytest.raises(InputError, match=message):
        check_mask(mask, "mask masks/A01.tif")


def test_check_labels_refuses_negatives_only():
    check_labels(np.array([0, 3, 7], np.int16))
    check_labels(np.array([], np.int64))
    check_labels(np.array([0, 2**63], np.uint64))
    with pytest.raises(InputError, match=r"mask has negative labels \(smallest -3\); labels must "
                                         r"be >= 0"):
        check_labels(np.array([0, -3, 5, -1]))


def test_check_image():
    image = np.zeros((2, 4, 5), np.uint16)
    assert check_image(image, MASK) is image
    assert check_image(np.ones((1, 4, 5), bool)).dtype == np.uint8
    assert check_image(np.zeros((3, 2, 4, 5)), np.zeros((2, 4, 5), np.uint8)).shape == (3, 2, 4, 5)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((1, 4, 5), complex), r"image has dtype complex128; expected integer or float"),
        (np.full((1, 4, 5), "a"), r"image has dtype <U1; expected integer or float pixels"),
        (np.zeros((4, 5)), r"image has shape \(4, 5\); expected channel-first \(C, rows, columns\) "
                           r"or \(C, planes, rows, columns\)"),
        (np.zeros((0, 4, 5)), r"image has shape \(0, 4, 5\): no channels"),
        (np.zeros((1, 4, 6)), r"image has shape \(1, 4, 6\) \(spatial \(4, 6\)\) but mask has "
                              r"shape \(4, 5\); expected image of shape \(C, 4, 5\), "
                              r"channel-first \(C, rows, columns\)"),
        (np.zeros((1, 1, 4, 5)), r"image has shape \(1, 1, 4, 5\) but mask has shape \(4, 5\); "
                                 r"expected image of shape \(C, 4, 5\)"),
    ],
)
def test_check_image_says_what_is_wrong(image, message):
    with pytest.raises(InputError, match=message):
        check_image(image, MASK)


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (MASK.astype(float), r"^mask has dtype float64; expected integer labels"),
        (np.zeros((2, 2, 2, 2), np.uint8), r"^mask has shape \(2, 2, 2, 2\); expected 2D"),
        (-MASK.astype(np.int8), r"^mask has negative labels \(smallest -7\)"),
    ],
)
def test_every_reader_of_masks_gives_the_same_message(mask, message):
    for read in (object_table, lambda m: object_features(None, m), lambda m: extract(None, m)):
        with pytest.raises(InputError, match=message):
            read(mask)


def test_every_reader_of_images_gives_the_same_message():
    wrong = np.zeros((1, 4, 6))
    message = r"^image has shape \(1, 4, 6\) \(spatial \(4, 6\)\) but mask has shape \(4, 5\)"
    for read in (lambda i: object_features(i, MASK), lambda i: extract(i, MASK, size=4)):
        with pytest.raises(InputError, match=message):
            read(wrong)
    with pytest.raises(InputError, match=r"^image has shape \(4, 6\); expected channel-first"):
        normalise(wrong[0])
