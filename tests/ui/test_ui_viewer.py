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
