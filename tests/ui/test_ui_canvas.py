"""ui.canvas: what streamlit-drawable-canvas sends back, mapped to image pixels (no server)."""

import pytest

from tests.builders import canvas_click
from ui import canvas, overlay


@pytest.mark.parametrize("radius,stroke", [(3, 2), (5, 1), (1, 0)])
def test_point_maps_back_to_the_clicked_pixel(radius, stroke):
    port = overlay.Viewport(0, 0, 100, 100, step=1)
    shapes = canvas.parse_drawing({"objects": [canvas_click(37.0, 12.0, radius, stroke)]}, None, port)
    assert shapes.points.tolist() == [[12.0, 37.0]]


def test_background_fit_and_viewport_scale_to_image_pixels():
    # A 2048² image shown through a viewport of step 4 (512² preview), on a canvas that
    # scales the preview by 0.5 and offsets it by 10 px horizontally.
    port = overlay.fit_viewport((2048, 2048), max_side=512)
    assert port == overlay.Viewport(0, 0, 2048, 2048, 4)
    fit = {"scale_x": 0.5, "scale_y": 0.5, "offset_x": 10.0, "offset_y": 0.0}
    shapes = canvas.parse_drawing({"objects": [canvas_click(10 + 50.0, 25.0)]}, fit, port)
    # canvas (60, 25) → preview (100, 50) → image (row 200, column 400)
    assert shapes.points.tolist() == [[200.0, 400.0]]


def test_zoomed_viewport_offsets_clicks():
    port = overlay.fit_viewport((1000, 1000), max_side=500, zoom=4, centre=(500, 500))
    assert (port.row, port.column, port.height, port.width, port.step) == (375, 375, 250, 250, 1)
    shapes = canvas.parse_drawing({"objects": [canvas_click(10.0, 20.0)]}, None, port)
    assert shapes.points.tolist() == [[395.0, 385.0]]


def test_a_click_on_a_shrunk_view_selects_the_pixel_its_display_pixel_shows():
    # step 14 (an 8000² image in a 572-px canvas): display pixel 3 shows image column 42;
    # a click anywhere in it (3.0 to 3.99) maps there, not up to 13 pixels further
    port = overlay.Viewport(0, 0, 8000, 8000, step=14)
    for x in (3.0, 3.5, 3.99):
        points = canvas.parse_drawing({"objects": [canvas_click(x, 2.5)]}, None, port).points
        assert points.tolist() == [[28.0, 42.0]]
