"""Tests for svetlana_core.io: reading, axes, masks, pairing, wells, atomic writing."""

import os
import pickle
import re
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
from PIL import Image

from svetlana_core import io
from svetlana_core.errors import InputError
from svetlana_core.io import IMAGE_EXTENSIONS, MASK_EXTENSIONS, Pair, atomic_write_bytes, guess_axes, load_pair, pair_files, read_image, read_mask, to_canonical, write_tiff
from svetlana_core.plate import Well, parse_well


def ramp(shape, dtype=np.uint8):
    """Distinct values everywhere, so a wrong transpose cannot pass."""
    return (np.arange(np.prod(shape)) % 251).astype(dtype).reshape(shape)


def disks(shape=(40, 60), centres=((10, 10), (10, 45), (30, 30)), radius=5, labels=(3, 7, 42)):
    """A label mask of disks of a known radius with the given (gapped) labels."""
    rows, columns = np.indices(shape)
    mask = np.zeros(shape, np.uint16)
    for (row, column), label in zip(centres, labels):
        mask[(rows - row) ** 2 + (columns - column) ** 2 <= radius**2] = label
    return mask


def named(path):
    """A regex that matches the file's name in an error message."""
    return re.escape(Path(path).name)


# --------------------------------------------------------------------------------------------
# guess_axes and to_canonical
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "hint", "expected"),
    [
        ((64, 80), None, "YX"),
        ((64, 80), 3, "YX"),
        ((64, 80, 3), None, "YXC"),
        ((64, 80, 4), None, "YXC"),
        ((64, 80, 3), 2, "YXC"),
        ((64, 80, 3), 3, "ZYX"),
        ((2, 64, 80), None, "CYX"),
        ((3, 64, 80), None, "CYX"),
        ((8, 64, 80), None, "CYX"),
        ((9, 64, 80), None, "ZYX"),
        ((5, 64, 80), 3, "ZYX"),
        ((20, 64, 80), 2, "CYX"),
        ((4, 4, 3), None, "CYX"),
        ((10, 2, 64, 80), None, "ZCYX"),
    ],
)
def test_guess_axes(shape, hint, expected):
    assert guess_axes(shape, ndim_hint=hint) == expected


@pytest.mark.parametrize("shape", [(5,), (1, 2, 3, 4, 5)])
def test_guess_axes_refuses_other_dimensions(shape):
    with pytest.raises(InputError, match=re.escape(str(shape))):
        guess_axes(shape)


def test_guess_axes_refuses_bad_hint():
    with pytest.raises(InputError, match="ndim_hint must be None, 2 or 3, got 4"):
        guess_axes((3, 4, 5), ndim_hint=4)


@pytest.mark.parametrize(
    ("axes", "shape", "order"),
    [
        ("YX", (4, 5), None),
        ("YXC", (4, 5, 3), (2, 0, 1)),
        ("CYX", (2, 4, 5), (0, 1, 2)),
        ("ZYX", (6, 4, 5), None),
        ("ZCYX", (6, 2, 4, 5), (1, 0, 2, 3)),
        ("CZYX", (2, 6, 4, 5), (0, 1, 2, 3)),
        ("ZYXC", (6, 4, 5, 3), (3, 0, 1, 2)),
        ("zyx", (6, 4, 5), None),
    ],
)
def test_to_canonical(axes, shape, order):
    array = ramp(shape)
    before = array.copy()
    out = to_canonical(array, axes)
    expected = array[np.newaxis] if order is None else np.transpose(array, order)
    np.testing.assert_array_equal(out, expected)
    assert out.flags.c_contiguous
    assert out.dtype == array.dtype
    np.testing.assert_array_equal(array, before)


@pytest.mark.parametrize(
    ("axes", "shape", "message"),
    [
        ("ZYX", (4, 5), r"axes 'ZYX' do not fit array of shape \(4, 5\): 3 axes for 2 dimensions"),
        ("QYX", (3, 4, 5), "axes 'QYX' for array are not valid"),
        ("YYX", (3, 4, 5), "axes 'YYX' for array are not valid"),
        ("ZC", (3, 4), "axes 'ZC' for array are not valid"),
        (3, (3, 4), "must be a string"),
    ],
)
def test_to_canonical_refuses_bad_axes(axes, shape, message):
    with pytest.raises(InputError, match=message):
        to_canonical(np.zeros(shape), axes)


# --------------------------------------------------------------------------------------------
# read_image: every layout
# --------------------------------------------------------------------------------------------


def test_read_grey_png(tmp_path):
    grey = ramp((8, 10))
    iio.imwrite(tmp_path / "grey.png", grey)
    image = read_image(tmp_path / "grey.png")
    assert image.shape == (1, 8, 10) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[0], grey)


def test_read_16bit_png_keeps_dtype(tmp_path):
    grey = ramp((8, 10), np.uint16) * 200
    iio.imwrite(tmp_path / "grey16.png", grey)
    image = read_image(tmp_path / "grey16.png")
    assert image.dtype == np.uint16
    np.testing.assert_array_equal(image[0], grey)


def test_read_rgb_png(tmp_path):
    rgb = ramp((8, 10, 3))
    iio.imwrite(tmp_path / "rgb.png", rgb)
    image = read_image(tmp_path / "rgb.png")
    assert image.shape == (3, 8, 10)
    np.testing.assert_array_equal(image, np.moveaxis(rgb, -1, 0))


def test_read_rgba_png_drops_alpha(tmp_path):
    rgba = ramp((8, 10, 4))
    iio.imwrite(tmp_path / "rgba.png", rgba)
    image = read_image(tmp_path / "rgba.png")
    assert image.shape == (3, 8, 10)
    np.testing.assert_array_equal(image, np.moveaxis(rgba[..., :3], -1, 0))


def test_read_grey_alpha_png_drops_alpha(tmp_path):
    grey_alpha = ramp((8, 10, 2))
    Image.fromarray(grey_alpha, mode="LA").save(tmp_path / "la.png")
    image = read_image(tmp_path / "la.png")
    assert image.shape == (1, 8, 10)
    np.testing.assert_array_equal(image[0], grey_alpha[..., 0])


def test_read_palette_png_image_is_rgb(tmp_path):
    indices = np.array([[0, 1], [1, 0]], np.uint8)
    palette_image = Image.fromarray(indices, mode="P")
    palette_image.putpalette([0, 0, 0, 255, 128, 0])
    palette_image.save(tmp_path / "palette.png")
    image = read_image(tmp_path / "palette.png")
    assert image.shape == (3, 2, 2)
    np.testing.assert_array_equal(image[:, 0, 1], [255, 128, 0])


def test_read_rgb_jpeg(tmp_path):
    rgb = np.zeros((16, 24, 3), np.uint8)
    rgb[...] = (200, 40, 90)
    iio.imwrite(tmp_path / "rgb.jpg", rgb, quality=95)
    image = read_image(tmp_path / "rgb.jpg")
    assert image.shape == (3, 16, 24) and image.dtype == np.uint8
    assert np.abs(image.astype(int) - np.array([200, 40, 90])[:, None, None]).max() <= 3


def test_read_grey_jpeg(tmp_path):
    iio.imwrite(tmp_path / "grey.JPEG", np.full((16, 24), 77, np.uint8))
    image = read_image(tmp_path / "grey.JPEG")
    assert image.shape == (1, 16, 24)


def test_read_float_tiff_keeps_dtype(tmp_path):
    grey = ramp((8, 10), np.float32) / 7
    tifffile.imwrite(tmp_path / "grey.tif", grey)
    image = read_image(tmp_path / "grey.tif")
    assert image.dtype == np.float32
    np.testing.assert_array_equal(image[0], grey)


def test_read_rgb_tiff(tmp_path):
    rgb = ramp((8, 10, 3))
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.tif"), np.moveaxis(rgb, -1, 0))


def test_read_rgba_tiff_drops_alpha(tmp_path):
    rgba = ramp((8, 10, 4))
    tifffile.imwrite(tmp_path / "rgba.tif", rgba, photometric="rgb", extrasamples=["unassalpha"])
    image = read_image(tmp_path / "rgba.tif")
    np.testing.assert_array_equal(image, np.moveaxis(rgba[..., :3], -1, 0))


def test_read_multipage_tiff_as_planes(tmp_path):
    stack = ramp((12, 8, 10), np.uint16)
    tifffile.imwrite(tmp_path / "stack.tif", stack)
    image = read_image(tmp_path / "stack.tif")
    assert image.shape == (1, 12, 8, 10)
    np.testing.assert_array_equal(image[0], stack)


def test_read_tiff_written_page_by_page(tmp_path):
    stack = ramp((12, 8, 10))
    for page in stack:
        tifffile.imwrite(tmp_path / "pages.tif", page, append=True, metadata=None)
    np.testing.assert_array_equal(read_image(tmp_path / "pages.tif")[0], stack)


def test_read_few_planes_with_axes_metadata(tmp_path):
    stack = ramp((5, 8, 10))
    tifffile.imwrite(tmp_path / "stack.tif", stack, metadata={"axes": "ZYX"})
    assert read_image(tmp_path / "stack.tif").shape == (1, 5, 8, 10)


def test_read_two_channel_tiff(tmp_path):
    channels = ramp((2, 8, 10), np.uint16)
    tifffile.imwrite(tmp_path / "cyx.tif", channels)
    image = read_image(tmp_path / "cyx.tif")
    assert image.shape == (2, 8, 10)
    np.testing.assert_array_equal(image, channels)


def test_read_zcyx_tiff(tmp_path):
    volume = ramp((6, 2, 8, 10), np.uint16)
    tifffile.imwrite(tmp_path / "zcyx.tif", volume, metadata={"axes": "ZCYX"})
    image = read_image(tmp_path / "zcyx.tif")
    assert image.shape == (2, 6, 8, 10)
    np.testing.assert_array_equal(image, np.moveaxis(volume, 1, 0))


def test_read_imagej_hyperstack(tmp_path):
    volume = ramp((6, 2, 8, 10), np.uint16)
    tifffile.imwrite(tmp_path / "ij.tif", volume, imagej=True, metadata={"axes": "ZCYX"})
    np.testing.assert_array_equal(read_image(tmp_path / "ij.tif"), np.moveaxis(volume, 1, 0))


def test_read_ome_tiff(tmp_path):
    volume = ramp((3, 2, 8, 10), np.uint16)
    tifffile.imwrite(tmp_path / "v.ome.tif", volume, ome=True, metadata={"axes": "ZCYX"})
    image = read_image(tmp_path / "v.ome.tif")
    assert image.shape == (2, 3, 8, 10)
    np.testing.assert_array_equal(image, np.moveaxis(volume, 1, 0))


def test_read_ome_tiff_with_one_time_point(tmp_path):
    volume = ramp((1, 3, 2, 8, 10), np.uint16)
    tifffile.imwrite(tmp_path / "t1.ome.tif", volume, ome=True, metadata={"axes": "TZCYX"})
    np.testing.assert_array_equal(read_image(tmp_path / "t1.ome.tif"), np.moveaxis(volume[0], 1, 0))


def test_read_ome_time_series_is_refused(tmp_path):
    path = tmp_path / "t2.ome.tif"
    tifffile.imwrite(path, ramp((2, 3, 8, 10)), ome=True, metadata={"axes": "TZYX"})
    with pytest.raises(InputError, match=f"{named(path)} is a time series .*TZYX"):
        read_image(path)


def test_axes_override(tmp_path):
    stack = ramp((5, 8, 10))
    tifffile.imwrite(tmp_path / "five.tif", stack)
    assert read_image(tmp_path / "five.tif").shape == (5, 8, 10)  # guessed: 5 channels
    image = read_image(tmp_path / "five.tif", axes="ZYX")
    assert image.shape == (1, 5, 8, 10)
    np.testing.assert_array_equal(image[0], stack)


def test_axes_override_beats_file_metadata(tmp_path):
    volume = ramp((3, 2, 8, 10))
    tifffile.imwrite(tmp_path / "v.tif", volume, metadata={"axes": "ZCYX"})
    image = read_image(tmp_path / "v.tif", axes="CZYX")
    np.testing.assert_array_equal(image, volume)


def test_wrong_axes_override_names_file_axes_and_shape(tmp_path):
    path = tmp_path / "rgb.png"
    iio.imwrite(path, ramp((8, 10, 3)))
    message = rf"axes 'ZCYX' do not fit image .*{named(path)} of shape \(8, 10, 3\)"
    with pytest.raises(InputError, match=message):
        read_image(path, axes="ZCYX")


def test_png_bytes_named_tif_are_read(tmp_path):
    grey = ramp((8, 10))
    iio.imwrite(tmp_path / "real.png", grey)
    os.rename(tmp_path / "real.png", tmp_path / "liar.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "liar.tif")[0], grey)


def test_tiff_bytes_named_png_keep_all_pages(tmp_path):
    stack = ramp((12, 8, 10))
    tifffile.imwrite(tmp_path / "liar.png", stack)
    assert read_image(tmp_path / "liar.png").shape == (1, 12, 8, 10)


def test_read_image_missing_file(tmp_path):
    with pytest.raises(InputError, match=f"image .*{named('nope.tif')} does not exist"):
        read_image(tmp_path / "nope.tif")


def test_read_image_folder(tmp_path):
    (tmp_path / "dir.tif").mkdir()
    with pytest.raises(InputError, match=f"{named('dir.tif')} is not a file"):
        read_image(tmp_path / "dir.tif")


@pytest.mark.parametrize("name", ["junk.tif", "junk.png", "junk.jpg"])
def test_read_image_corrupt_file(tmp_path, name):
    (tmp_path / name).write_bytes(b"this is not an image at all")
    with pytest.raises(InputError, match=f"could not read image .*{named(name)}"):
        read_image(tmp_path / name)


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_read_image_truncated_tiff(tmp_path, compression):
    path = tmp_path / "cut.tif"
    noise = np.random.default_rng(0).integers(0, 999, (64, 64))
    tifffile.imwrite(path, noise, compression=compression)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputError, match=f"could not read image .*{named(path)}.*TIFF"):
        read_image(path)


def test_read_image_truncated_png(tmp_path):
    path = tmp_path / "cut.png"
    iio.imwrite(path, np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(InputError, match=f"could not read image .*{named(path)}"):
        read_image(path)


def test_read_image_unsupported_dtype(tmp_path):
    path = tmp_path / "complex.tif"
    tifffile.imwrite(path, np.ones((4, 5), np.complex64))
    message = f"image .*{named(path)} has unsupported data type complex64"
    with pytest.raises(InputError, match=message):
        read_image(path)


def test_read_image_five_dimensions_cannot_be_guessed(tmp_path):
    path = tmp_path / "five_d.tif"
    tifffile.imwrite(path, np.zeros((2, 2, 2, 4, 5), np.uint8))
    message = rf"{named(path)}: cannot guess the axes .*\(2, 2, 2, 4, 5\)"
    with pytest.raises(InputError, match=message):
        read_image(path)


def test_read_image_empty_tiff(tmp_path):
    path = tmp_path / "empty.tif"
    with pytest.warns(UserWarning, match="zero-size"):
        tifffile.imwrite(path, np.zeros((0, 4), np.uint8))
    with pytest.raises(InputError, match=rf"image .*{named(path)} is empty \(shape \(0, 4\)\)"):
        read_image(path)


def test_read_image_with_channels_and_colour_samples(tmp_path):
    path = tmp_path / "cs.tif"
    tifffile.imwrite(path, ramp((2, 8, 10, 3)), photometric="rgb", metadata={"axes": "CYXS"})
    with pytest.raises(InputError, match=f"{named(path)} has both channels and colour samples"):
        read_image(path)
    assert read_image(path, axes="ZYXC").shape == (3, 2, 8, 10)


def test_read_image_does_not_touch_the_file(tmp_path):
    path = tmp_path / "rgb.png"
    iio.imwrite(path, ramp((8, 10, 3)))
    before = path.read_bytes(), path.stat().st_mtime_ns
    read_image(path)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


# --------------------------------------------------------------------------------------------
# read_mask: formats
# --------------------------------------------------------------------------------------------


def test_read_mask_tiff_keeps_gapped_labels_and_dtype(tmp_path):
    mask = disks()
    tifffile.imwrite(tmp_path / "m.tif", mask, compression="zlib")
    out = read_mask(tmp_path / "m.tif")
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, mask)
    assert set(np.unique(out)) == {0, 3, 7, 42}


def test_read_mask_3d_tiff(tmp_path):
    volume = np.zeros((6, 20, 20), np.uint32)
    volume[1:3, 2:6, 2:6] = 5
    volume[3:6, 10:15, 10:15] = 70000
    tifffile.imwrite(tmp_path / "vol.tif", volume)
    out = read_mask(tmp_path / "vol.tif")
    assert out.shape == (6, 20, 20) and out.dtype == np.uint32
    np.testing.assert_array_equal(out, volume)


def test_read_mask_few_planes_is_a_volume(tmp_path):
    volume = np.zeros((3, 20, 20), np.uint16)
    volume[0, :5, :5], volume[2, 10:, 10:] = 1, 2
    # what tifffile writes for a 3-plane stack without metadata; it reads back as axes "SYX"
    tifffile.imwrite(
        tmp_path / "vol.tif", volume, metadata=None, photometric="rgb", planarconfig="separate"
    )
    np.testing.assert_array_equal(read_mask(tmp_path / "vol.tif"), volume)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_read_mask_png(tmp_path, dtype):
    mask = disks().astype(dtype)
    iio.imwrite(tmp_path / "m.png", mask)
    out = read_mask(tmp_path / "m.png")
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, mask)


def test_read_mask_palette_png_gives_indices(tmp_path):
    mask = disks().astype(np.uint8)
    palette_mask = Image.fromarray(mask, mode="P")
    palette_mask.putpalette(list(np.random.default_rng(1).integers(0, 255, 768)))
    palette_mask.save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), mask)


def test_read_mask_grey_saved_as_rgb_png(tmp_path):
    mask = disks().astype(np.uint8)
    iio.imwrite(tmp_path / "m.png", np.stack([mask] * 3, axis=-1))
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), mask)


def test_read_mask_colour_png_is_refused(tmp_path):
    colour = np.zeros((40, 60, 3), np.uint8)
    colour[disks() == 3] = (255, 0, 0)
    colour[disks() == 7] = (0, 255, 0)
    iio.imwrite(tmp_path / "colour.png", colour)
    with pytest.raises(InputError, match=f"{named('colour.png')} has 3 channels"):
        read_mask(tmp_path / "colour.png")


def test_read_mask_imagej_with_two_channels_is_refused(tmp_path):
    masks = np.stack([disks(), disks(labels=(1, 2, 3))])
    tifffile.imwrite(
        tmp_path / "two.tif", masks[np.newaxis], imagej=True, metadata={"axes": "ZCYX"}
    )
    with pytest.raises(InputError, match=f"{named('two.tif')} has 2 channels"):
        read_mask(tmp_path / "two.tif")


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.int32, np.int64])
def test_read_mask_npy_keeps_dtype(tmp_path, dtype):
    mask = disks().astype(dtype)
    np.save(tmp_path / "m.npy", mask)
    out = read_mask(tmp_path / "m.npy")
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, mask)


def test_read_mask_cellpose_seg(tmp_path):
    mask = disks()
    seg = {"masks": mask, "outlines": np.zeros_like(mask), "filename": "img.png", "diameter": 30.0,
           "flows": [np.zeros((2, 40, 60), np.float32)], "est_diam": np.float64(29.5)}
    np.save(tmp_path / "img_seg.npy", seg, allow_pickle=True)
    np.testing.assert_array_equal(read_mask(tmp_path / "img_seg.npy"), mask)


def test_read_mask_cellpose_seg_written_by_numpy_1(tmp_path):
    boxed = np.empty((), dtype=object)
    boxed[()] = {"masks": disks(), "est_diam": np.float32(12.5)}
    # numpy 1.x pickles name numpy.core.multiarray where numpy 2 names numpy._core.multiarray;
    # protocol 2 writes those names as plain text, so they can be swapped in place
    data = pickle.dumps(boxed, protocol=2)
    assert b"numpy._core.multiarray" in data
    with open(tmp_path / "old_seg.npy", "wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "|O", "fortran_order": False, "shape": ()}
        )
        handle.write(data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    np.testing.assert_array_equal(read_mask(tmp_path / "old_seg.npy"), disks())


def test_read_mask_cellpose_seg_truncated(tmp_path):
    np.save(tmp_path / "cut_seg.npy", {"masks": disks()}, allow_pickle=True)
    data = (tmp_path / "cut_seg.npy").read_bytes()
    (tmp_path / "cut_seg.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=f"could not read Cellpose file .*{named('cut_seg.npy')}"):
        read_mask(tmp_path / "cut_seg.npy")


def test_read_mask_plain_array_named_seg(tmp_path):
    np.save(tmp_path / "img_seg.npy", disks())
    np.testing.assert_array_equal(read_mask(tmp_path / "img_seg.npy"), disks())


class _Payload:
    """A pickle that runs code when loaded: here it would create a folder."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return os.mkdir, (self.target,)


def test_read_mask_cellpose_seg_does_not_run_pickled_code(tmp_path):
    target = tmp_path / "pwned"
    np.save(tmp_path / "evil_seg.npy", {"masks": disks(), "x": _Payload(target)}, allow_pickle=True)
    with pytest.raises(InputError, match=f"{named('evil_seg.npy')} refers to posix.mkdir"):
        read_mask(tmp_path / "evil_seg.npy")
    assert not target.exists()


@pytest.mark.parametrize(
    ("content", "found"),
    [({"outlines": np.zeros((4, 4))}, "dict"), ({"masks": [[1, 2]]}, "dict"), ([1, 2], "list")],
)
def test_read_mask_cellpose_seg_without_masks(tmp_path, content, found):
    boxed = np.empty((), dtype=object)
    boxed[()] = content
    np.save(tmp_path / "bad_seg.npy", boxed, allow_pickle=True)
    message = f"{named('bad_seg.npy')} does not hold a dict with a 'masks' array .found {found}"
    with pytest.raises(InputError, match=message):
        read_mask(tmp_path / "bad_seg.npy")


def test_read_mask_pickled_plain_npy_is_refused(tmp_path):
    np.save(tmp_path / "objects.npy", {"masks": disks()}, allow_pickle=True)
    with pytest.raises(InputError, match=f"{named('objects.npy')} holds Python objects"):
        read_mask(tmp_path / "objects.npy")


def test_read_mask_seg_npy_of_unknown_format_version(tmp_path):
    boxed = np.empty((), dtype=object)
    boxed[()] = {"masks": disks()}
    with open(tmp_path / "v3_seg.npy", "wb") as handle:
        np.lib.format.write_array(handle, boxed, version=(3, 0), allow_pickle=True)
    message = f"could not read Cellpose file .*{named('v3_seg.npy')}: unsupported"
    with pytest.raises(InputError, match=message):
        read_mask(tmp_path / "v3_seg.npy")


def test_read_mask_npz_named_npy(tmp_path):
    with open(tmp_path / "archive.npy", "wb") as handle:
        np.savez(handle, masks=disks())
    with pytest.raises(InputError, match=f"{named('archive.npy')} is not a single .npy array"):
        read_mask(tmp_path / "archive.npy")


def test_read_mask_time_series_is_refused(tmp_path):
    path = tmp_path / "movie.ome.tif"
    tifffile.imwrite(path, np.stack([disks(), disks()]), ome=True, metadata={"axes": "TYX"})
    with pytest.raises(InputError, match=f"mask .*{named(path)} is a time series"):
        read_mask(path)


def test_read_mask_folder(tmp_path):
    (tmp_path / "m.tif").mkdir()
    with pytest.raises(InputError, match=f"mask .*{named('m.tif')} is not a file"):
        read_mask(tmp_path / "m.tif")


def test_read_mask_cp_masks_png(tmp_path):
    mask = disks()
    iio.imwrite(tmp_path / "img_cp_masks.png", mask)
    np.testing.assert_array_equal(read_mask(tmp_path / "img_cp_masks.png"), mask)


def test_read_mask_bytes_named_wrongly(tmp_path):
    mask = disks()
    tifffile.imwrite(tmp_path / "liar.png", mask)
    np.testing.assert_array_equal(read_mask(tmp_path / "liar.png"), mask)


# --------------------------------------------------------------------------------------------
# read_mask: values
# --------------------------------------------------------------------------------------------


def test_read_mask_integral_float_becomes_int32(tmp_path):
    np.save(tmp_path / "f.npy", disks().astype(np.float32))
    out = read_mask(tmp_path / "f.npy")
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, disks())


def test_read_mask_float_tiff(tmp_path):
    tifffile.imwrite(tmp_path / "f.tif", disks().astype(np.float64))
    np.testing.assert_array_equal(read_mask(tmp_path / "f.tif"), disks())


def test_read_mask_fractional_float_is_refused(tmp_path):
    np.save(tmp_path / "frac.npy", disks() * 0.5)
    message = f"mask .*{named('frac.npy')} is float with non-integer values"
    with pytest.raises(InputError, match=message):
        read_mask(tmp_path / "frac.npy")


def test_read_mask_nan_float_is_refused(tmp_path):
    mask = disks().astype(np.float32)
    mask[0, 0] = np.nan
    np.save(tmp_path / "nan.npy", mask)
    with pytest.raises(InputError, match=f"{named('nan.npy')} is float with NaN"):
        read_mask(tmp_path / "nan.npy")


def test_read_mask_negative_labels(tmp_path):
    mask = disks().astype(np.int32)
    mask[0, 0] = -1
    np.save(tmp_path / "neg.npy", mask)
    with pytest.raises(InputError, match=rf"{named('neg.npy')} has negative labels \(minimum -1\)"):
        read_mask(tmp_path / "neg.npy")


def test_read_mask_negative_float_labels(tmp_path):
    np.save(tmp_path / "negf.npy", -disks().astype(np.float32))
    with pytest.raises(InputError, match=f"{named('negf.npy')} has negative labels"):
        read_mask(tmp_path / "negf.npy")


def test_read_mask_without_objects(tmp_path):
    tifffile.imwrite(tmp_path / "empty.tif", np.zeros((8, 8), np.uint16))
    with pytest.raises(InputError, match=f"mask .*{named('empty.tif')} has no objects"):
        read_mask(tmp_path / "empty.tif")


def test_read_mask_binary_is_refused(tmp_path):
    iio.imwrite(tmp_path / "binary.png", ((disks() > 0) * 255).astype(np.uint8))
    message = f"{named('binary.png')} looks binary .*3 separate regions.*relabel_binary=True"
    with pytest.raises(InputError, match=message):
        read_mask(tmp_path / "binary.png")


def test_read_mask_binary_relabel_in_memory(tmp_path):
    path = tmp_path / "binary.png"
    iio.imwrite(path, ((disks() > 0) * 255).astype(np.uint8))
    before = path.read_bytes(), path.stat().st_mtime_ns
    out = read_mask(path, relabel_binary=True)
    assert out.dtype == np.int32 and out.max() == 3
    np.testing.assert_array_equal(out > 0, disks() > 0)
    # each disk becomes exactly one label of the disk's size
    areas = np.bincount(out.ravel())[1:]
    assert sorted(areas) == [81, 81, 81]
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["binary.png"]


def test_read_mask_bool_npy(tmp_path):
    np.save(tmp_path / "bool.npy", disks() > 0)
    with pytest.raises(InputError, match=f"{named('bool.npy')} looks binary"):
        read_mask(tmp_path / "bool.npy")
    assert read_mask(tmp_path / "bool.npy", relabel_binary=True).max() == 3


def test_read_mask_single_object_is_not_binary(tmp_path):
    mask = disks(centres=((20, 20),), labels=(1,))
    np.save(tmp_path / "one.npy", mask)
    out = read_mask(tmp_path / "one.npy")
    np.testing.assert_array_equal(out, mask)
    assert out.dtype == np.uint16


def test_relabel_binary_leaves_a_label_mask_alone(tmp_path):
    np.save(tmp_path / "m.npy", disks())
    np.testing.assert_array_equal(read_mask(tmp_path / "m.npy", relabel_binary=True), disks())


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.ones((4, 4), np.complex64), "has unsupported data type complex64"),
        (np.array([["a", "b"], ["c", "d"]]), "has unsupported data type <U1"),
        (np.ones((2, 2, 4, 4), np.uint8), r"has shape \(2, 2, 4, 4\); expected"),
        (np.ones(5, np.uint8), r"has shape \(5,\); expected"),
        (np.ones((0, 4), np.uint8), r"is empty \(shape \(0, 4\)\)"),
    ],
)
def test_read_mask_bad_arrays(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(InputError, match=f"mask .*{named('bad.npy')} {message}"):
        read_mask(tmp_path / "bad.npy")


def test_read_mask_jpeg_is_refused(tmp_path):
    iio.imwrite(tmp_path / "m.jpg", disks().astype(np.uint8))
    with pytest.raises(InputError, match=f"{named('m.jpg')} is a JPEG file"):
        read_mask(tmp_path / "m.jpg")


def test_read_mask_missing(tmp_path):
    with pytest.raises(InputError, match=f"mask .*{named('gone.tif')} does not exist"):
        read_mask(tmp_path / "gone.tif")


@pytest.mark.parametrize("name", ["junk.tif", "junk.png", "junk.npy", "junk_seg.npy"])
def test_read_mask_corrupt(tmp_path, name):
    (tmp_path / name).write_bytes(b"\x93NUMPY garbage" if name.endswith(".npy") else b"garbage")
    with pytest.raises(InputError, match=f"could not read .*{named(name)}"):
        read_mask(tmp_path / name)


def test_read_mask_truncated_npy(tmp_path):
    np.save(tmp_path / "cut.npy", disks())
    data = (tmp_path / "cut.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=f"could not read mask .*{named('cut.npy')}"):
        read_mask(tmp_path / "cut.npy")


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int32, np.uint64, np.int64])
def test_lowest_nonzero_label(dtype):
    """The cheap binary check: smallest label above 0 without np.unique or a boolean copy."""
    from svetlana_core.io.read import _lowest_nonzero

    mask = np.zeros((50, 50), dtype)
    mask[5:9, 5:9] = 12
    mask[20:30, 20:30] = np.iinfo(dtype).max
    assert _lowest_nonzero(mask) == 12
    assert _lowest_nonzero(np.full((3, 3), np.iinfo(dtype).max, dtype)) == np.iinfo(dtype).max
    np.testing.assert_array_equal(mask[5:9, 5:9], 12)  # input untouched


# --------------------------------------------------------------------------------------------
# load_pair
# --------------------------------------------------------------------------------------------


def test_load_pair_rgb_with_mask(tmp_path):
    rgb = ramp((40, 60, 3))
    iio.imwrite(tmp_path / "a.png", rgb)
    tifffile.imwrite(tmp_path / "a.tif", disks())
    image, mask = load_pair(tmp_path / "a.png", tmp_path / "a.tif")
    assert image.shape == (3, 40, 60) and mask.shape == (40, 60)
    np.testing.assert_array_equal(mask, disks())


def test_load_pair_mask_only(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", disks())
    image, mask = load_pair(None, tmp_path / "a.tif")
    assert image is None
    np.testing.assert_array_equal(mask, disks())


def test_load_pair_shape_mismatch_names_both_files(tmp_path):
    iio.imwrite(tmp_path / "small.png", ramp((20, 30)))
    tifffile.imwrite(tmp_path / "big.tif", disks())
    message = (
        rf"mask .*{named('big.tif')} has shape \(40, 60\) "
        rf"but image .*{named('small.png')} has \(20, 30\)"
    )
    with pytest.raises(InputError, match=message):
        load_pair(tmp_path / "small.png", tmp_path / "big.tif")


def test_load_pair_2d_mask_for_3d_image(tmp_path):
    tifffile.imwrite(tmp_path / "vol.tif", ramp((3, 2, 40, 60)), metadata={"axes": "ZCYX"})
    tifffile.imwrite(tmp_path / "m.tif", disks())
    message = f"mask .*{named('m.tif')} is 2D .* but image .*{named('vol.tif')} is 3D"
    with pytest.raises(InputError, match=message):
        load_pair(tmp_path / "vol.tif", tmp_path / "m.tif")


def test_load_pair_3d_mask_for_2d_image(tmp_path):
    iio.imwrite(tmp_path / "flat.png", ramp((40, 60)))
    np.save(tmp_path / "vol.npy", np.stack([disks()] * 4))
    message = f"mask .*{named('vol.npy')} is 3D .* but image .*{named('flat.png')} is 2D"
    with pytest.raises(InputError, match=message):
        load_pair(tmp_path / "flat.png", tmp_path / "vol.npy")


def test_load_pair_mask_settles_planes_or_channels(tmp_path):
    tifffile.imwrite(tmp_path / "five.tif", ramp((5, 40, 60)))
    np.save(tmp_path / "vol.npy", np.stack([disks()] * 5))
    np.save(tmp_path / "flat.npy", disks())
    image, _ = load_pair(tmp_path / "five.tif", tmp_path / "vol.npy")
    assert image.shape == (1, 5, 40, 60)
    image, _ = load_pair(tmp_path / "five.tif", tmp_path / "flat.npy")
    assert image.shape == (5, 40, 60)


def test_load_pair_explicit_axes(tmp_path):
    tifffile.imwrite(tmp_path / "five.tif", ramp((40, 60, 5)))
    np.save(tmp_path / "flat.npy", disks())
    image, _ = load_pair(tmp_path / "five.tif", tmp_path / "flat.npy", axes="YXC")
    assert image.shape == (5, 40, 60)


@pytest.mark.parametrize(("value", "word"), [(np.nan, "NaN"), (np.inf, "infinite")])
def test_load_pair_non_finite_image(tmp_path, value, word):
    image = ramp((40, 60), np.float32)
    image[3, 4] = value
    tifffile.imwrite(tmp_path / "bad.tif", image)
    np.save(tmp_path / "m.npy", disks())
    with pytest.raises(InputError, match=f"image .*{named('bad.tif')} contains {word} values"):
        load_pair(tmp_path / "bad.tif", tmp_path / "m.npy")


def test_load_pair_one_pixel_image(tmp_path):
    tifffile.imwrite(tmp_path / "dot.tif", np.array([[9]], np.uint8))
    np.save(tmp_path / "dot.npy", np.array([[4]], np.uint8))
    image, mask = load_pair(tmp_path / "dot.tif", tmp_path / "dot.npy")
    assert image.shape == (1, 1, 1) and mask.tolist() == [[4]]


def test_load_pair_relabels_binary(tmp_path):
    iio.imwrite(tmp_path / "a.png", ramp((40, 60)))
    iio.imwrite(tmp_path / "a_mask.png", ((disks() > 0) * 255).astype(np.uint8))
    _, mask = load_pair(tmp_path / "a.png", tmp_path / "a_mask.png", relabel_binary=True)
    assert mask.max() == 3


# --------------------------------------------------------------------------------------------
# pair_files
# --------------------------------------------------------------------------------------------


def touch(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def as_names(pairs):
    return [(pair.stem, pair.image.name, pair.mask.name) for pair in pairs]


def test_pair_files_separate_folders(tmp_path):
    touch(tmp_path / "images", "B.png", "A.TIF", "C.jpeg", "notes.txt", ".hidden.png")
    touch(tmp_path / "masks", "A.tif", "B.png", "C.npy", "unused.tif")
    pairs = pair_files(tmp_path / "images", tmp_path / "masks")
    assert as_names(pairs) == [
        ("A", "A.TIF", "A.tif"),
        ("B", "B.png", "B.png"),
        ("C", "C.jpeg", "C.npy"),
    ]
    assert pairs[0] == Pair(tmp_path / "images" / "A.TIF", tmp_path / "masks" / "A.tif", "A")


def test_pair_files_every_suffix_in_one_folder(tmp_path):
    touch(
        tmp_path,
        "a.png", "a_cp_masks.png",
        "b.tif", "b_seg.npy",
        "c.tif", "c_mask.tif",
        "d.png", "d_masks.TIF",
        "e.png", "e_label.png",
        "f.jpg", "f_labels.tiff",
        "g.tif", "g.npy",
        "h.png", "h_MASK.png",
    )
    pairs = pair_files(tmp_path)
    assert as_names(pairs) == [
        ("a", "a.png", "a_cp_masks.png"),
        ("b", "b.tif", "b_seg.npy"),
        ("c", "c.tif", "c_mask.tif"),
        ("d", "d.png", "d_masks.TIF"),
        ("e", "e.png", "e_label.png"),
        ("f", "f.jpg", "f_labels.tiff"),
        ("g", "g.tif", "g.npy"),
        ("h", "h.png", "h_MASK.png"),
    ]


def test_pair_files_suffixes_in_a_separate_folder(tmp_path):
    touch(tmp_path / "images", "a.png", "b.png")
    touch(tmp_path / "masks", "a_cp_masks.tif", "b_seg.npy")
    assert as_names(pair_files(tmp_path / "images", tmp_path / "masks")) == [
        ("a", "a.png", "a_cp_masks.tif"),
        ("b", "b.png", "b_seg.npy"),
    ]


def test_pair_files_same_folder_given_twice(tmp_path):
    touch(tmp_path, "a.png", "a_mask.png")
    assert as_names(pair_files(tmp_path, tmp_path)) == [("a", "a.png", "a_mask.png")]


def test_pair_files_seg_suffix_only_for_npy(tmp_path):
    touch(tmp_path, "x_seg.png", "x_seg_mask.png")
    assert as_names(pair_files(tmp_path)) == [("x_seg", "x_seg.png", "x_seg_mask.png")]


def test_pair_files_missing_masks_are_listed(tmp_path):
    names = [f"img{i}.png" for i in range(7)]
    touch(tmp_path / "images", *names)
    touch(tmp_path / "masks", "img0.tif")
    message = "6 image.* have no mask .*img1.png, img2.png, img3.png, img4.png, img5.png and 1 more"
    with pytest.raises(InputError, match=message) as info:
        pair_files(tmp_path / "images", tmp_path / "masks")
    assert "img6.png" not in str(info.value)


def test_pair_files_image_in_same_folder_is_not_its_own_mask(tmp_path):
    touch(tmp_path, "a.png", "a.tif")
    with pytest.raises(InputError, match="2 image.* have no mask .*a.png, a.tif"):
        pair_files(tmp_path)


def test_pair_files_several_candidate_masks(tmp_path):
    touch(tmp_path, "a.png", "a_mask.tif", "a_cp_masks.png")
    message = "image a.png has several candidate masks .*a_cp_masks.png, a_mask.tif"
    with pytest.raises(InputError, match=message):
        pair_files(tmp_path)


def test_pair_files_mask_matching_two_images(tmp_path):
    touch(tmp_path, "a.png", "a.tif", "a_mask.tif")
    with pytest.raises(InputError, match="mask a_mask.tif matches several images: a.png, a.tif"):
        pair_files(tmp_path)


def test_pair_files_exact_and_suffix_claim_one_mask(tmp_path):
    touch(tmp_path / "images", "a.png", "a_mask.png")
    touch(tmp_path / "masks", "a_mask.tif")
    message = "mask a_mask.tif matches several images: a.png, a_mask.png"
    with pytest.raises(InputError, match=message):
        pair_files(tmp_path / "images", tmp_path / "masks")


def test_pair_files_missing_folder(tmp_path):
    with pytest.raises(InputError, match=f"image folder .*{named('nowhere')} does not exist"):
        pair_files(tmp_path / "nowhere")
    touch(tmp_path / "images", "a.png")
    with pytest.raises(InputError, match=f"mask folder .*{named('nomasks')} does not exist"):
        pair_files(tmp_path / "images", tmp_path / "nomasks")


def test_pair_files_no_images(tmp_path):
    touch(tmp_path, "a_mask.tif", "readme.md")
    with pytest.raises(InputError, match="holds no images"):
        pair_files(tmp_path)


def test_extension_constants():
    assert set(IMAGE_EXTENSIONS) == {".tif", ".tiff", ".png", ".jpg", ".jpeg"}
    assert set(MASK_EXTENSIONS) == {".tif", ".tiff", ".png", ".npy"}


# --------------------------------------------------------------------------------------------
# wells
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("A01.tif", "A01"),
        ("A1.png", "A01"),
        ("P24.tif", "P24"),
        ("H12", "H12"),
        ("AF48_image.tif", "AF48"),
        ("AA01-x.tif", "AA01"),
        ("Plate_A01_s1_w1.tif", "A01"),
        ("MFGTMP_B03_s2_w1ABCD.TIF", "B03"),
        ("Plate_B03_S1_W1.tif", "B03"),
        ("VID1_C3_1_00d00h00m.tif", "C03"),
        ("exp 2024 D07 field1.tif", "D07"),
        ("well-H12.tif", "H12"),
        ("r01c01f01p01-ch1sk1fk1fl1.tiff", "A01"),
        ("r16c24f03p01-ch2.tiff", "P24"),
        ("R02C03F01.tif", "B03"),
        ("plate3/r03c12f01.tif", "C12"),
        ("train_1_000.png", None),
        ("train_10_006.png", None),
        ("DAPI.tif", None),
        ("sample.tif", None),
        ("fib1-0-0-0.tif", None),
        ("cell_s1_w1.tif", None),
        ("a01.tif", None),
        ("A0.tif", None),
        ("A49.tif", None),
        ("AG01.tif", None),
        ("BA01.tif", None),
        ("B123.tif", None),
        ("xA01.tif", None),
        ("A01x.tif", None),
        ("r00c01.tif", None),
        ("r33c01.tif", None),
        ("r01c49.tif", None),
        ("", None),
    ],
)
def test_parse_well(name, expected):
    well = parse_well(name)
    assert (None if well is None else well.name) == expected


def test_well_fields_and_names():
    assert parse_well("B03.tif") == Well(row=1, column=3)
    assert Well(0, 1).row_letter == "A"
    assert Well(25, 7).name == "Z07"
    assert Well(26, 10).name == "AA10"
    assert Well(31, 48).row_letter == "AF"
    assert sorted([Well(1, 2), Well(0, 12), Well(0, 3)]) == [Well(0, 3), Well(0, 12), Well(1, 2)]


@pytest.mark.parametrize(
    ("row", "column", "message"),
    [(32, 1, "row must be"), (-1, 1, "row must be"), (0, 0, "column must be"), (0, 49, "column")],
)
def test_well_out_of_plate(row, column, message):
    with pytest.raises(InputError, match=message):
        Well(row, column)


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_write_tiff_is_lossless(tmp_path, dtype):
    array = ramp((3, 40, 60), dtype) * 3
    path = write_tiff(tmp_path / "out.tif", array, metadata={"classes": ["live", "dead"]})
    with tifffile.TiffFile(path) as tif:
        np.testing.assert_array_equal(tif.asarray(), array)
        deflate = (tifffile.COMPRESSION.ADOBE_DEFLATE, tifffile.COMPRESSION.DEFLATE)
        assert tif.pages[0].compression in deflate
        assert tif.shaped_metadata[0]["classes"] == ["live", "dead"]
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]


def test_write_tiff_class_map_reads_back_as_mask(tmp_path):
    write_tiff(tmp_path / "classes.tif", disks(labels=(1, 2, 2)).astype(np.uint8))
    np.testing.assert_array_equal(read_mask(tmp_path / "classes.tif"), disks(labels=(1, 2, 2)))


def test_write_tiff_replaces_atomically(tmp_path):
    path = tmp_path / "out.tif"
    write_tiff(path, np.zeros((4, 4), np.uint8))
    write_tiff(path, np.ones((4, 4), np.uint8))
    assert tifffile.imread(path).tolist() == [[1] * 4] * 4
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]


def test_write_tiff_failure_keeps_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.tif"
    write_tiff(path, np.full((4, 4), 7, np.uint8))
    with pytest.raises(TypeError):
        write_tiff(path, np.zeros((4, 4), np.uint8), metadata={"bad": object()})
    assert tifffile.imread(path).max() == 7
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]


def test_write_tiff_mode_follows_umask(tmp_path):
    path = write_tiff(tmp_path / "out.tif", np.zeros((4, 4), np.uint8))
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_write_into_missing_folder(tmp_path):
    with pytest.raises(InputError, match=f"folder .*{named('missing')} does not exist"):
        write_tiff(tmp_path / "missing" / "out.tif", np.zeros((2, 2), np.uint8))
    with pytest.raises(InputError, match=f"folder .*{named('missing')} does not exist"):
        atomic_write_bytes(tmp_path / "missing" / "out.bin", b"x")


def test_atomic_write_bytes(tmp_path):
    path = atomic_write_bytes(tmp_path / "data.bin", b"first")
    atomic_write_bytes(path, b"second")
    assert path.read_bytes() == b"second"
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]


# --------------------------------------------------------------------------------------------
# real data (skips when ../shared/data is absent)
# --------------------------------------------------------------------------------------------


def test_consep_pairs_all_images(shared_data):
    folder = shared_data / "consep_train_tiles"
    pairs = pair_files(folder / "images", folder / "masks")
    assert len(pairs) == 177
    assert all(pair.mask.name == pair.stem + ".tif" for pair in pairs)
    image, mask = load_pair(pairs[0].image, pairs[0].mask)
    assert image.shape == (3, 256, 256) and image.dtype == np.uint8
    assert mask.shape == (256, 256) and mask.dtype == np.uint16
    assert all(parse_well(pair.image.name) is None for pair in pairs)


def test_urocell_mask_reads_as_volume(shared_data):
    path = shared_data / "urocell_mito_3d_masks_only" / "masks" / "fib1-0-0-0.tif"
    mask = read_mask(path)
    assert mask.shape == (256, 256, 256) and mask.dtype == np.uint16
    # objects_contacting.csv lists every object of the volume: labels 1..39
    assert mask.max() == 39
    assert np.count_nonzero(np.bincount(mask.ravel())[1:]) == 39


def test_read_labels_csv_keeps_class_text_and_collapses_duplicates(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text('image,label,class,extra\na.png,1,NA,x\na.png,1,NA,x\n'
                    'b.png,2.0,"dead, ""late""",y\n')
    table = io.read_labels_csv(path)
    assert table[["image", "label", "class"]].values.tolist() == [
        ["a.png", 1, "NA"], ["b.png", 2, 'dead, "late"']]
    assert table["extra"].tolist() == ["x", "y"]


@pytest.mark.parametrize("text,message", [
    ("image,label\na.png,1\n", "lacks column"),
    ("image,label,class\na.png,x,A\n", "label must be a positive integer"),
    ("image,label,class\na.png,-3,A\n", "label must be a positive integer"),
    ("image,label,class\na.png,1,A\na.png,1,B\n", "two different classes"),
])
def test_read_labels_csv_errors(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as info:
        io.read_labels_csv(path)
    assert "bad.csv" in str(info.value)
