"""Canvas geometry and overlay rendering of ui/ (pure functions, no server)."""

import numpy as np
import pytest

from ui import canvas, overlay


def _point(x, y, radius=3, stroke=2):
    """What streamlit-drawable-canvas 0.13 stores for a click at (x, y) in point mode."""
    return {"type": "circle", "left": x - radius - stroke / 2, "top": y, "radius": radius,
            "strokeWidth": stroke, "originX": "left", "originY": "center"}


@pytest.mark.parametrize("radius,stroke", [(3, 2), (5, 1), (1, 0)])
def test_point_maps_back_to_the_clicked_pixel(radius, stroke):
    port = overlay.Viewport(0, 0, 100, 100, step=1)
    shapes = canvas.parse_drawing({"objects": [_point(37.0, 12.0, radius, stroke)]}, None, port)
    assert shapes.points.tolist() == [[12.0, 37.0]]


def test_background_fit_and_viewport_scale_to_image_pixels():
    # A 2048² image shown through a viewport of step 4 (512² preview), on a canvas that
    # scales the preview by 0.5 and offsets it by 10 px horizontally.
    port = overlay.fit_viewport((2048, 2048), max_side=512)
    assert port == overlay.Viewport(0, 0, 2048, 2048, 4)
    fit = {"scale_x": 0.5, "scale_y": 0.5, "offset_x": 10.0, "offset_y": 0.0}
    shapes = canvas.parse_drawing({"objects": [_point(10 + 50.0, 25.0)]}, fit, port)
    # canvas (60, 25) → preview (100, 50) → image (row 200, column 400)
    assert shapes.points.tolist() == [[200.0, 400.0]]


def test_zoomed_viewport_offsets_clicks():
    port = overlay.fit_viewport((1000, 1000), max_side=500, zoom=4, centre=(500, 500))
    assert (port.row, port.column, port.height, port.width, port.step) == (375, 375, 250, 250, 1)
    shapes = canvas.parse_drawing({"objects": [_point(10.0, 20.0)]}, None, port)
    assert shapes.points.tolist() == [[395.0, 385.0]]


def test_rect_and_polygon_select_objects_by_centroid():
    mask = np.zeros((40, 40), np.int32)
    mask[2:6, 2:6] = 5       # centroid (3.5, 3.5)
    mask[20:24, 20:24] = 9   # centroid (21.5, 21.5)
    mask[30:34, 2:6] = 11    # centroid (31.5, 3.5)
    port = overlay.Viewport(0, 0, 40, 40)
    rect = {"type": "rect", "left": 0, "top": 0, "width": 25, "height": 25, "scaleX": 1,
            "scaleY": 1}
    polygon = {"type": "polygon", "points": [{"x": 0, "y": 28}, {"x": 10, "y": 28},
                                             {"x": 10, "y": 39}, {"x": 0, "y": 39}]}
    from ui.annotate import labels_from_shapes

    shapes = canvas.parse_drawing({"objects": [rect]}, None, port)
    assert labels_from_shapes(mask, shapes).tolist() == [5, 9]
    shapes = canvas.parse_drawing({"objects": [polygon]}, None, port)
    assert labels_from_shapes(mask, shapes).tolist() == [11]
    shapes = canvas.parse_drawing({"objects": [_point(3.0, 3.0), _point(39.0, 39.0)]}, None,
                                  port)
    assert labels_from_shapes(mask, shapes).tolist() == [5]   # background click ignored


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
