"""ui.viewer: the view of one object that the guided mode shows (no server)."""

from svetlana_core.objects import object_table
from tests.builders import ball_mask, disk_mask
from ui import overlay, viewer


def test_the_object_is_centred_in_a_window_four_times_its_size():
    mask = disk_mask((512, 512), [(100, 300)], 10, [7])  # a 21-pixel disk
    display = viewer.object_display(object_table(mask), 7, mask.shape)
    assert display.plane is None
    # a window of 4 x 21 = 84 pixels about the centroid, shown at full resolution
    assert display.viewport == overlay.Viewport(58, 258, 84, 84, 1)


def test_a_small_object_gets_64_pixels_and_a_window_stops_at_the_edge():
    mask = disk_mask((200, 200), [(5, 190)], 2, [3])
    display = viewer.object_display(object_table(mask), 3, mask.shape)
    assert display.viewport == overlay.Viewport(0, 136, 64, 64, 1)


def test_a_3d_object_is_shown_in_the_plane_of_its_centroid():
    mask = ball_mask((9, 64, 64), [(6, 32, 32)], 2, [5])
    display = viewer.object_display(object_table(mask), 5, mask.shape)
    assert display.plane == 6
    assert display.viewport == overlay.Viewport(0, 0, 64, 64, 1)  # the whole 64 x 64 plane


SHAPE, ZOOMS = (8000, 8000), [1, 2, 4, 8, 16]


def test_zoom_steps_keep_the_centre_and_stop_at_the_ends():
    from ui import navigation

    state = {}
    navigation.zoom_step(state, "v", SHAPE, ZOOMS, 1, (1000.0, 7000.0))
    assert state == {"v_zoom": 2, "v_crow": 1000, "v_ccol": 7000}
    for _ in range(5):
        navigation.zoom_step(state, "v", SHAPE, ZOOMS, 1)
    assert state["v_zoom"] == 16 and (state["v_crow"], state["v_ccol"]) == (1000, 7000)
    for _ in range(5):
        navigation.zoom_step(state, "v", SHAPE, ZOOMS, -1)
    assert state == {"v_zoom": 1}  # the whole image: no centre kept


def test_pan_moves_half_a_view_and_stays_in_the_image():
    from ui import navigation

    state = {"v_zoom": 4, "v_crow": 4000, "v_ccol": 4000}
    navigation.pan(state, "v", SHAPE, ZOOMS, 0, 0.5)
    assert (state["v_crow"], state["v_ccol"]) == (4000, 5000)  # a view is 2000 px
    for _ in range(5):
        navigation.pan(state, "v", SHAPE, ZOOMS, -0.5, 0)
    assert state["v_crow"] == 0
    whole = {"v_zoom": 1}
    navigation.pan(whole, "v", SHAPE, ZOOMS, 0.5, 0.5)
    assert whole == {"v_zoom": 1}


def test_a_box_on_the_overview_gives_the_closest_view_that_holds_it():
    from ui import navigation

    assert navigation.box_view((0, 0, 300, 450), SHAPE, ZOOMS) == (16, (150.0, 225.0))
    assert navigation.box_view((7000, 100, 3000, 5000), SHAPE, ZOOMS) == (1, (5000.0, 2550.0))


def test_two_new_points_at_one_spot_in_one_message_are_a_double_click():
    from tests.builders import canvas_click
    from ui import navigation
    from ui.annotate import _shape_id

    old = canvas_click(10.0, 10.0)
    a, b = canvas_click(50.0, 60.0), canvas_click(51.0, 60.0)
    assert navigation.double_click([old, a, b], [_shape_id(old)], _shape_id) == b
    # one new click, or two far apart, or the two seen before: not a double-click
    assert navigation.double_click([old, a], [_shape_id(old)], _shape_id) is None
    far = canvas_click(90.0, 60.0)
    assert navigation.double_click([a, far], [], _shape_id) is None
    assert navigation.double_click([a, b], [_shape_id(a), _shape_id(b)], _shape_id) is None
