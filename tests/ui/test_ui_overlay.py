"""ui.overlay: previews of images, contours and class colours (pure numpy, no server)."""

import numpy as np
import pandas as pd

from ui import overlay


def test_overlay_fills_labelled_objects_and_outlines_the_rest():
    mask = np.zeros((10, 10), np.int32)
    mask[1:5, 1:5] = 3
    mask[6:9, 6:9] = 8
    rgb = np.zeros((10, 10, 3), np.uint8)
    out = overlay.overlay(rgb, mask, {3: "#ff0000"}, contour_colour="#00ff00", alpha=0.5)
    assert out[2, 2].tolist() == [127, 0, 0]          # inside 3: half red
    assert out[1, 1].tolist() == [255, 0, 0]          # contour of 3: its class colour
    assert out[6, 6].tolist() == [0, 255, 0]          # contour of unlabelled 8
    assert out[7, 7].tolist() == [0, 0, 0]            # inside unlabelled 8: untouched
    assert out[0, 0].tolist() == [0, 0, 0]            # background
    assert rgb.sum() == 0                             # input not modified


def test_composite_grey_and_rgb():
    image = np.zeros((1, 2, 2), np.uint16)
    image[0, 0, 0] = 1000
    limits = np.array([[0, 1000]], np.float32)
    grey = overlay.composite(image, limits)
    assert grey[0, 0].tolist() == [255, 255, 255] and grey[1, 1].tolist() == [0, 0, 0]
    rgb = overlay.composite(np.stack([image[0], image[0] * 0, image[0]]),
                            np.array([[0, 1000]] * 3, np.float32))
    assert rgb[0, 0].tolist() == [255, 0, 255]


def test_jpeg_encoding_is_jpeg():
    data = overlay.encode_jpeg(np.zeros((8, 8, 3), np.uint8))
    assert data[:3] == b"\xff\xd8\xff"


def test_fill_labels_matches_overlay_pixel_for_pixel():
    rng = np.random.default_rng(0)
    mask = np.zeros((64, 64), np.int32)
    for label, (r, c) in enumerate(rng.integers(4, 60, size=(12, 2)), start=1):
        mask[r - 3:r + 3, c - 3:c + 3] = label * 7
    rgb = rng.integers(0, 255, size=(64, 64, 3), dtype=np.uint8)
    colours = {7: "#ff0000", 21: "#00ff00", 77: "#0000ff", 999: "#ffffff"}
    fast = overlay.fill_labels(rgb, mask, overlay.boundaries(mask), colours)
    assert np.array_equal(fast, overlay.overlay(rgb, mask, colours))


def test_patch_tile_shows_the_image_and_outlines_the_object():
    patch = np.zeros((2, 8, 8), np.float32)
    patch[0] = 0.5  # one normalised image channel: mid grey
    patch[1, 2:6, 2:6] = 1.0  # the object's mask channel
    tile = overlay.patch_tile(patch, image_channels=1, min_side=16)
    assert tile.shape == (16, 16, 3)  # enlarged 2x by whole pixels
    assert tile[0, 0].tolist() == [127, 127, 127]
    assert tile[4, 4].tolist() == [255, 215, 0]  # contour pixel (2, 2) of the object
    assert tile[8, 8].tolist() == [127, 127, 127]  # its inside keeps the image
    volume = np.zeros((1, 3, 8, 8), np.float32)  # mask-only 3D patch: middle plane, grey
    volume[0, 1, 3:5, 3:5] = 1.0
    tile = overlay.patch_tile(volume, image_channels=0, min_side=8)
    assert tile.shape == (8, 8, 3) and tile[0, 0].tolist() == [0, 0, 0]
    assert tile[3, 3].tolist() == [255, 215, 0]


def test_class_colours_leave_out_or_grey_the_classes_the_project_lost():
    classes = pd.DataFrame({"name": ["round", "speckled"], "colour": ["#ff0000", "#00ff00"]})
    table = pd.DataFrame({"label": [4, 9, 12], "class": ["speckled", "gone", "round"]})
    assert overlay.class_colours(table, classes) == {4: "#00ff00", 12: "#ff0000"}
    assert overlay.class_colours(table, classes, missing="#888888") == {
        4: "#00ff00", 9: "#888888", 12: "#ff0000"}
