"""Views that fit the data: small images enlarged by whole factors with exact click mapping,
zoom at every size, RGB images shown as RGB, Grad-CAM over the patch in colour."""

import io as bytes_io

import numpy as np
import pytest
from PIL import Image

from svetlana_core import explain
from tests.builders import canvas_click, random_patch
from ui import canvas, overlay, viewer


def _pixel_labels(shape):
    """A mask whose every pixel is its own object: label = row * columns + column + 1."""
    return (np.arange(shape[0] * shape[1]).reshape(shape) + 1).astype(np.int64)


@pytest.mark.parametrize("side, zoom, enlarge", [(256, 1, 2), (128, 1, 5), (100, 1, 7),
                                                 (256, 2, 5), (384, 1, 1), (1000, 1, 1)])
def test_a_small_image_or_window_is_enlarged_by_a_whole_factor(side, zoom, enlarge):
    port = overlay.fit_viewport((side, side), zoom=zoom, fill_side=viewer.FILL_SIDE)
    assert port.enlarge == enlarge
    window = side // zoom
    assert port.display_shape == (window * enlarge, window * enlarge)
    assert port.display_shape[0] <= viewer.FILL_SIDE or enlarge == 1


def test_without_fill_side_nothing_is_enlarged():
    # the guided view and galleries are sized by the browser, not enlarged here
    assert overlay.fit_viewport((256, 256)) == overlay.Viewport(0, 0, 256, 256, 1)


def test_enlarged_crop_repeats_each_pixel_into_a_square_block():
    mask = _pixel_labels((8, 6))
    port = overlay.Viewport(2, 1, 4, 3, 1 / 3)
    shown = overlay.crop(mask, port)
    assert shown.shape == port.display_shape == (12, 9)
    np.testing.assert_array_equal(shown[::3, ::3], mask[2:6, 1:4])
    blocks = shown.reshape(4, 3, 3, 3).transpose(0, 2, 1, 3).reshape(4, 3, 9)
    assert (blocks == blocks[..., :1]).all()  # every 3 x 3 block holds one pixel


@pytest.mark.parametrize("zoom, centre", [(1, None), (2, (200.0, 40.0)), (4, (10.0, 250.0))])
def test_every_click_on_an_enlarged_256_tile_hits_the_pixel_under_it(zoom, centre):
    """Each displayed pixel of the canvas (the JPEG and the canvas are the same size, so the
    canvas's fit is 1:1) maps back to the image pixel drawn there, block edges included."""
    mask = _pixel_labels((256, 256))
    port = overlay.fit_viewport((256, 256), zoom=zoom, centre=centre,
                                fill_side=viewer.FILL_SIDE)
    assert port.enlarge > 1
    shown = overlay.crop(mask, port)
    rows, columns = port.display_shape
    ys, xs = np.mgrid[0:rows:7, 0:columns:3]  # strides prime to the factors: every offset
    ys = np.concatenate([ys.ravel(), [rows - 1, 0]])
    xs = np.concatenate([xs.ravel(), [columns - 1, 0]])
    fit = {"scaleX": 1.0, "scaleY": 1.0, "offsetX": 0.0, "offsetY": 0.0}
    clicks = [canvas_click(float(x), float(y)) for x, y in zip(xs, ys)]
    points = canvas.parse_drawing({"objects": clicks}, fit, port).points
    np.testing.assert_array_equal(canvas.labels_at_points(mask, points), shown[ys, xs])


def test_a_box_on_an_enlarged_tile_maps_to_image_pixels():
    port = overlay.fit_viewport((256, 256), fill_side=viewer.FILL_SIDE)  # x2
    box = {"type": "rect", "left": 20.0, "top": 40.0, "width": 100.0, "height": 60.0}
    shapes = canvas.parse_drawing({"objects": [box]}, None, port)
    assert shapes.boxes == [(20.0, 10.0, 50.0, 60.0)]


def test_the_preview_of_a_small_tile_is_drawn_at_the_enlarged_size(tmp_path):
    from tests.builders import disk_mask, write_pair
    from ui import loaders

    mask = disk_mask((256, 256), [(100, 100)], 5, [3])
    image = np.full((3, 256, 256), 200, np.uint8)
    image_path, mask_path = write_pair(tmp_path, "tile", image.transpose(1, 2, 0), mask)
    row = {"path": str(image_path), "mask_path": str(mask_path), "axes": "YXC"}
    image, mask = loaders.load_pair(row)
    port = overlay.fit_viewport(mask.shape, fill_side=viewer.FILL_SIDE)
    jpeg = viewer.preview(row, image, mask, viewer.Display(None, None, 1.0, 99.8, port),
                          {3: "#0072b2"})
    picture = np.asarray(Image.open(bytes_io.BytesIO(jpeg)))
    assert picture.shape == (512, 512, 3)
    centre = picture[200, 200].astype(int)  # object 3 at (100, 100) x 2, filled in blue
    assert centre[2] > centre[0] + 40


def test_zoom_is_offered_at_every_size_that_has_room_for_it():
    assert viewer.zoom_choices((256, 256)) == [1, 2, 4, 8, 16]
    assert viewer.zoom_choices((64, 48)) == [1, 2, 4]
    assert viewer.zoom_choices((4096, 4096)) == list(viewer.ZOOMS)


def test_rgb_channels_are_named_and_keep_their_colour_and_balance():
    assert [viewer.channel_name(c, rgb=True) for c in range(3)] == ["red", "green", "blue"]
    assert viewer.channel_name(2, rgb=False) == "channel 2"
    image = np.zeros((3, 2, 2), np.float32)
    image[0], image[1], image[2] = 200.0, 100.0, 50.0  # pink-ish, unequal channels
    shared = overlay.channel_limits(image, 0.0, 100.0, shared=True)
    assert shared.tolist() == [[50.0, 200.0]] * 3
    colour = overlay.composite(image, shared, rgb=True)[0, 0].tolist()
    assert colour == [255, 85, 0]  # red stays strongest, blue weakest: the balance is kept
    # one channel of an RGB image stays in its own colour
    assert overlay.composite(image, shared, [1], rgb=True)[0, 0].tolist() == [0, 85, 0]


def _display_app(channels: int, side: int):
    from streamlit.testing.v1 import AppTest

    def script():
        import numpy as np
        import streamlit as st

        from ui import viewer

        shape = st.session_state["shape"]
        image = np.zeros(shape, np.uint8)
        display = viewer.display_controls(image, np.zeros(shape[1:], np.int32), key="v")
        st.session_state["display"] = (display.rgb, display.channels,
                                       display.viewport.display_shape)

    at = AppTest.from_function(script, default_timeout=30)
    at.session_state["shape"] = (channels, side, side)
    return at.run()


def test_a_three_channel_image_opens_as_rgb_with_red_green_blue():
    at = _display_app(3, 256)
    assert not at.exception
    assert [e.key for e in at.segmented_control] == ["v_colours"]
    assert at.segmented_control(key="v_colours").value == "RGB"
    assert at.multiselect(key="v_channels").options == ["red", "green", "blue"]
    assert at.session_state["display"] == (True, (0, 1, 2), (512, 512))
    at.segmented_control(key="v_colours").set_value("false colour").run()
    assert at.multiselect(key="v_channels").options == ["channel 0", "channel 1", "channel 2"]
    assert at.session_state["display"][0] is False


def test_other_images_get_no_rgb_choice_and_small_ones_get_zoom():
    at = _display_app(2, 128)
    assert not at.exception
    assert [e.key for e in at.segmented_control] == []  # no "Colours" choice
    assert at.session_state["display"][0] is False
    zoom = at.select_slider(key="v_zoom")
    assert list(zoom.options) == ["1", "2", "4", "8"]
    zoom.set_value(2).run()
    assert at.slider(key="v_crow").value == 64  # pan: the window's centre
    assert at.session_state["display"][2] == (704, 704)  # 64-px window x 11


def test_gradcam_is_drawn_over_the_rgb_patch_in_colour():
    patch = np.zeros((4, 16, 16), np.float32)  # red, green, blue, then the object mask
    patch[0, :, :8] = 1.0  # red on the left
    patch[2, :, 8:] = 1.0  # blue on the right
    patch[3, 4:12, 4:12] = 1.0
    picture = explain.heatmap_rgb(patch, np.zeros((16, 16), np.float32), min_side=16)
    assert picture.shape == (16, 16, 3)
    assert picture[1, 1].tolist() == [255, 0, 0] and picture[1, 14].tolist() == [0, 0, 255]
    hot = explain.heatmap_rgb(patch, np.ones((16, 16), np.float32), min_side=16)
    assert hot[1, 14, 0] > 0 and hot[1, 14, 2] < 255  # the heat is blended over the colour


def test_gradcam_of_other_patches_shows_the_chosen_channels_in_colour():
    patch = random_patch((3, 8, 8))  # two image channels and the mask
    both = explain.patch_rgb(patch)
    assert both[..., 2].max() == 0 and both[..., 0].max() == 1 and both[..., 1].max() == 1
    second = explain.patch_rgb(patch, channels=[1])  # one channel alone: grey
    np.testing.assert_array_equal(second[..., 0], second[..., 2])
    assert explain.patch_rgb(random_patch((2, 8, 8)))[..., 0].max() == 1  # one channel: grey


def test_a_pyramid_level_holds_block_means_and_a_view_reads_the_block_of_its_pixel():
    from ui import pyramid

    image = np.arange(8 * 12, dtype=np.uint16).reshape(1, 8, 12) * 10
    levels = pyramid.build(image, min_side=2)
    assert [level.shape for level in levels] == [(1, 4, 6), (1, 2, 3), (1, 1, 2)]
    assert levels[0][0, 0, 0] == round(np.mean(image[0, :2, :2]))
    # step 4 from row 2, column 3: level 2 (factor 4), stride 1, from block (0, 0)
    port = overlay.Viewport(2, 3, 6, 8, step=4)
    view = pyramid.crop(image, levels, port)
    assert view.shape == (1,) + port.display_shape == (1, 2, 2)
    for d_row in range(2):  # each shown pixel: the mean of the 4 x 4 block of its mask pixel
        for d_col in range(2):
            r, c = port.row + d_row * 4, port.column + d_col * 4
            block = image[0, r // 4 * 4:r // 4 * 4 + 4, c // 4 * 4:c // 4 * 4 + 4]
            assert abs(int(view[0, d_row, d_col]) - block.mean()) <= 0.5


@pytest.mark.parametrize("step, level", [(1, 0), (0.5, 0), (3, 0), (6, 1), (8, 3), (64, 4)])
def test_a_view_is_cut_from_the_coarsest_level_with_a_whole_stride(step, level):
    from ui import pyramid

    assert pyramid.level_for(step, n_levels=4) == level


def test_an_odd_side_repeats_its_last_pixel_when_halved():
    from ui import pyramid

    image = np.array([[[0, 4, 8], [4, 8, 12], [8, 12, 16]]], np.uint8)
    assert pyramid.halve(image).tolist() == [[[4, 10], [10, 16]]]
    floats = pyramid.halve(image.astype(np.float32))
    assert floats.dtype == np.float32 and floats[0, 1, 1] == 16.0


def test_the_cache_is_bounded_by_bytes_and_drops_the_least_recently_used():
    from ui import pyramid

    cache = pyramid.ByteLRU(max_bytes=3000)
    made = []

    def make(name, size):
        return lambda: made.append(name) or np.zeros(size, np.uint8)

    cache.get("a", make("a", 1000))
    cache.get("b", make("b", 1000))
    cache.get("a", make("a", 1000))  # kept: not made again, now the most recent
    cache.get("c", make("c", 1500))  # over 3000: "b", the least recent, goes
    assert made == ["a", "b", "c"] and sorted(cache.keys()) == ["a", "c"]
    assert cache.bytes == 2500
    big = cache.get("huge", make("huge", 5000))  # larger than the bound: given, not kept
    assert big.nbytes == 5000 and "huge" not in cache.keys()


def test_the_cache_bound_is_read_from_the_environment(monkeypatch):
    from ui import pyramid

    monkeypatch.setenv("SVETLANA_CACHE_MB", "64")
    assert pyramid.cache_mb() == 64
    monkeypatch.setenv("SVETLANA_CACHE_MB", "lots")
    with pytest.raises(ValueError, match="SVETLANA_CACHE_MB must be a positive number"):
        pyramid.cache_mb()


def test_a_mask_is_kept_in_the_smallest_dtype_that_holds_its_labels():
    from ui import loaders

    assert loaders.smallest_labels(np.array([[0, 9]], np.uint32)).dtype == np.uint8
    assert loaders.smallest_labels(np.array([[0, 70_000]], np.uint32)).dtype == np.uint32
    signed = np.array([[-1, 3]], np.int32)
    assert loaders.smallest_labels(signed) is signed
