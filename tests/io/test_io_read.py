"""svetlana_core.io.read: read_image in every layout, read_mask formats and values, load_pair."""

import os

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
from PIL import Image

from svetlana_core.errors import InputError
from svetlana_core.io import load_pair, read_image, read_mask
from tests.builders import disk_mask, named, ramp


def disks(shape=(40, 60), centres=((10, 10), (10, 45), (30, 30)), radius=5, labels=(3, 7, 42)):
    """A uint16 label mask of disks of a known radius with the given (gapped) labels."""
    return disk_mask(shape, centres, radius, labels)


def test_read_grey_png(tmp_path):
    grey = ramp((8, 10))
    iio.imwrite(tmp_path / "grey.png", grey)
    image = read_image(tmp_path / "grey.png")
    assert image.shape == (1, 8, 10) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[0], grey)


@pytest.mark.parametrize(("name", "grey", "write"), [
    ("grey16.png", ramp((8, 10), np.uint16) * 200, iio.imwrite),
    ("grey.tif", ramp((8, 10), np.float32) / 7, tifffile.imwrite),
], ids=["16-bit PNG", "float32 TIFF"])
def test_read_keeps_dtype(tmp_path, name, grey, write):
    write(tmp_path / name, grey)
    image = read_image(tmp_path / name)
    assert image.dtype == grey.dtype
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


def test_urocell_mask_reads_as_volume(shared_data):
    path = shared_data / "urocell_mito_3d_masks_only" / "masks" / "fib1-0-0-0.tif"
    mask = read_mask(path)
    assert mask.shape == (256, 256, 256) and mask.dtype == np.uint16
    # objects_contacting.csv lists every object of the volume: labels 1..39
    assert mask.max() == 39
    assert np.count_nonzero(np.bincount(mask.ravel())[1:]) == 39
