"""svetlana_core.patches.extract: exact patch contents, padding, modes and normalisations."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from svetlana_core.errors import InputError
from svetlana_core.objects import object_table
from svetlana_core.patches import dilate_masks, extract, normalise
from tests.builders import channel_ramp, strict_disks


def euclidean_ball(radius, ndim):
    offsets = np.indices((2 * radius + 1,) * ndim) - radius
    return (offsets**2).sum(axis=0) <= radius**2


@pytest.fixture
def three_disks():
    """Labels with gaps at known centres in a 64 × 80 image (ramp, so every pixel differs)."""
    mask = strict_disks((64, 80), [(42, 30, 40, 5), (3, 12, 14, 3), (7, 48, 60, 8)])
    return channel_ramp((64, 80)), mask


def test_shape_dtype_and_ascending_default_order(three_disks):
    image, mask = three_disks
    patches = extract(image, mask, size=16)
    assert patches.shape == (3, 2, 16, 16) and patches.dtype == np.float32
    # The mask channel identifies each object: 3, 7, 42 have radii 3, 8, 5.
    for index, radius in enumerate([3, 8, 5]):
        np.testing.assert_array_equal(patches[index, 1], strict_disks((16, 16), [(1, 8, 8, radius)]))


def test_context_patch_is_the_image_window_centred_on_the_centroid(three_disks):
    image, mask = three_disks
    patches = extract(image, mask, labels=[42], size=(16, 12), normalisation="none")
    # centre (30, 40); rows 30 - 8 .. 30 + 8, columns 40 - 6 .. 40 + 6
    np.testing.assert_array_equal(patches[0, 0], image[0, 22:38, 34:46])
    np.testing.assert_array_equal(patches[0, 1], mask[22:38, 34:46] == 42)
    # Odd size: the centre pixel is the middle one.
    odd = extract(image, mask, labels=[42], size=15, normalisation="none")
    np.testing.assert_array_equal(odd[0, 0], image[0, 23:38, 33:48])
    assert odd[0, 0, 7, 7] == image[0, 30, 40]


def test_centroid_is_rounded_half_up():
    mask = np.zeros((10, 10), dtype=np.uint8)
    mask[4:6, 4:6] = 1  # centroid (4.5, 4.5) -> centre (5, 5)
    patch = extract(channel_ramp((10, 10)), mask, size=4, normalisation="none")
    np.testing.assert_array_equal(patch[0, 0], channel_ramp((10, 10))[0, 3:7, 3:7])


def test_labels_order_and_repeats_are_respected(three_disks):
    image, mask = three_disks
    patches = extract(image, mask, labels=[42, 3, 42, 7], size=16, normalisation="none")
    default = extract(image, mask, size=16, normalisation="none")  # 3, 7, 42
    np.testing.assert_array_equal(patches, default[[2, 0, 2, 1]])


def test_corner_object_is_zero_padded_exactly_outside_the_image():
    mask = np.zeros((30, 40), dtype=np.uint8)
    mask[1:4, 2:5] = 5  # centroid (2, 3)
    image = channel_ramp((30, 40), channels=2)  # no zero pixel in the image
    patch = extract(image, mask, size=16, normalisation="none")[0]
    # Patch covers rows -6..10 and columns -5..11: 6 padded rows on top, 5 columns on the left.
    np.testing.assert_array_equal(patch[:, :6], 0)
    np.testing.assert_array_equal(patch[:, :, :5], 0)
    np.testing.assert_array_equal(patch[:2, 6:, 5:], image[:, 0:10, 0:11])
    np.testing.assert_array_equal(patch[2, 6:, 5:], mask[0:10, 0:11] == 5)

    # After percentile normalisation the image is nonzero almost everywhere, padding still 0.
    normalised = extract(image, mask, size=16)[0]
    np.testing.assert_array_equal(normalised[:, :6], 0)
    np.testing.assert_array_equal(normalised[:, :, :5], 0)
    np.testing.assert_array_equal(normalised[:2, 6:, 5:], normalise(image)[:, 0:10, 0:11])


def test_patch_larger_than_the_image():
    mask = np.zeros((3, 5), dtype=np.uint8)
    mask[1, 1:4] = 1  # centroid (1, 2)
    image = channel_ramp((3, 5))
    patch = extract(image, mask, size=8, normalisation="none")[0]
    # rows 1 - 4 = -3 .. 5, columns 2 - 4 = -2 .. 6
    expected = np.zeros((8, 8))
    expected[3:6, 2:7] = image[0]
    np.testing.assert_array_equal(patch[0], expected)
    assert patch[1].sum() == 3


def test_image_none_gives_only_the_mask_channel(three_disks):
    _, mask = three_disks
    patches = extract(None, mask, labels=[7], size=20, mode="masked")
    assert patches.shape == (1, 1, 20, 20)
    np.testing.assert_array_equal(patches[0, 0], strict_disks((20, 20), [(1, 10, 10, 8)]))


def test_rgb_channels_come_first_then_the_mask(three_disks):
    _, mask = three_disks
    rgb = np.stack([np.full(mask.shape, 10), np.full(mask.shape, 20),
                    np.full(mask.shape, 30)]).astype(np.uint8)
    patches = extract(rgb, mask, size=8, normalisation="none")
    assert patches.shape == (3, 4, 8, 8)
    assert patches[:, 0].max() == 10 and patches[:, 1].min() == 20 and patches[:, 2].min() == 30


def test_3d_ball_patch_is_centred_and_anisotropic_sizes_work():
    shape = (20, 30, 40)
    offsets = np.indices(shape) - np.array([8, 12, 25])[:, None, None, None]
    inside = (offsets**2).sum(axis=0) <= 9
    mask = np.where(inside, 11, 0).astype(np.uint16)
    image = channel_ramp(shape)
    patches = extract(image, mask, size=(8, 10, 12), normalisation="none")
    assert patches.shape == (1, 2, 8, 10, 12)
    np.testing.assert_array_equal(patches[0, 0], image[0, 4:12, 7:17, 19:31])
    np.testing.assert_array_equal(patches[0, 1], inside[4:12, 7:17, 19:31])
    assert extract(None, mask).shape == (1, 1, 16, 16, 16)  # auto: extent 7 * 1.5 -> 16, cubic


def test_masked_mode_keeps_exactly_the_dilated_object():
    mask = np.zeros((30, 30), dtype=np.uint8)
    mask[15, 15] = 1
    mask[15, 18] = 2  # a neighbour 3 pixels away
    image = np.ones((1, 30, 30), dtype=np.float32)
    for dilation in (0, 1, 2, 3):
        patch = extract(image, mask, labels=[1], size=16, mode="masked", dilation=dilation,
                        normalisation="none")[0]
        expected = np.zeros((16, 16))
        expected[8 - dilation : 9 + dilation, 8 - dilation : 9 + dilation] = euclidean_ball(
            dilation, 2)
        np.testing.assert_array_equal(patch[0], expected)
        np.testing.assert_array_equal(patch[1], expected if dilation == 0 else patch[1])
        assert patch[1].sum() == 1  # the mask channel is the undilated object


@pytest.mark.parametrize("ndim", [2, 3])
def test_masked_dilation_matches_scipy_binary_dilation(ndim):
    rng = np.random.default_rng(ndim)
    shape = (40, 50) if ndim == 2 else (16, 20, 24)
    mask = (rng.random(shape) < 0.05).astype(np.int32) * rng.integers(1, 4, shape)
    image = np.ones((1, *shape), dtype=np.uint8)
    for dilation in (1, 2, 4):
        patches = extract(image, mask, size=12, mode="masked", dilation=dilation,
                          normalisation="none")
        structure = euclidean_ball(dilation, ndim)[np.newaxis]
        expected = ndi.binary_dilation(patches[:, 1] > 0, structure=structure)
        np.testing.assert_array_equal(patches[:, 0], expected)


def test_minmax_maps_each_patch_and_channel_to_zero_one():
    rng = np.random.default_rng(0)
    mask = strict_disks((60, 60), [(1, 20, 20, 5), (2, 40, 40, 6)])
    image = rng.integers(50, 5000, (3, 60, 60)).astype(np.uint16)
    image[2] = 77  # constant channel
    patches = extract(image, mask, size=16, normalisation="minmax")
    np.testing.assert_array_equal(patches[:, :2].min(axis=(2, 3)), 0)
    np.testing.assert_array_equal(patches[:, :2].max(axis=(2, 3)), 1)
    np.testing.assert_array_equal(patches[:, 2], 0)
    window = image[:2, 12:28, 12:28].astype(np.float32)
    low = window.min(axis=(1, 2), keepdims=True)
    high = window.max(axis=(1, 2), keepdims=True)
    np.testing.assert_array_equal(patches[0, :2], (window - low) / (high - low))


def test_minmax_at_the_border_ignores_the_padding():
    mask = np.zeros((20, 20), dtype=np.uint8)
    mask[0:2, 0:2] = 1  # centroid (0.5, 0.5) -> centre (1, 1)
    image = channel_ramp((20, 20), start=100)  # 100 .. 499
    patch = extract(image, mask, size=8, normalisation="minmax")[0, 0]
    window = image[0, 0:5, 0:5].astype(np.float32)  # rows/columns -3 .. 5 clipped to 0 .. 5
    np.testing.assert_array_equal(patch[3:, 3:], (window - window.min()) / (
        window.max() - window.min()))
    assert patch[3, 3] == 0 and patch[-1, -1] == 1
    np.testing.assert_array_equal(patch[:3], 0)


def test_constant_image_gives_zero_patches_for_every_normalisation(three_disks):
    _, mask = three_disks
    image = np.full((1, *mask.shape), 1234, dtype=np.uint16)
    for normalisation in ("percentile", "minmax"):
        patches = extract(image, mask, size=16, normalisation=normalisation)
        assert np.isfinite(patches).all()
        np.testing.assert_array_equal(patches[:, 0], 0)
        assert patches[:, 1].sum() == (mask > 0).sum()


def test_percentile_chunks_equal_one_call_equal_normalise_once():
    rng = np.random.default_rng(3)
    mask = rng.integers(0, 30, (90, 110)).astype(np.uint16)
    image = rng.gamma(2, 300, (2, 90, 110)).astype(np.uint16)
    whole = extract(image, mask, size=12)
    labels = np.unique(mask)[1:]
    chunks = np.concatenate([extract(image, mask, labels=chunk, size=12)
                             for chunk in np.array_split(labels, 4)])
    once = extract(normalise(image), mask, size=12, normalisation="none")
    np.testing.assert_array_equal(whole, chunks)
    np.testing.assert_array_equal(whole, once)


def test_unknown_label_in_an_empty_mask():
    with pytest.raises(InputError, match=r"label\(s\) 1 not in the mask \(0 objects\)"):
        extract(None, np.zeros((5, 5), np.uint8), labels=[1], size=8)


def test_table_argument_huge_labels_and_empty_labels(three_disks):
    image, mask = three_disks
    big = mask.astype(np.int64) * 10**9
    table = object_table(big)
    np.testing.assert_array_equal(
        extract(image, big, size=16, table=table), extract(image, mask, size=16))
    assert extract(image, mask, labels=[], size=16).shape == (0, 2, 16, 16)


def test_inputs_are_not_modified(three_disks):
    image, mask = three_disks
    image_before, mask_before = image.copy(), mask.copy()
    for mode in ("context", "masked"):
        for normalisation in ("percentile", "minmax", "none"):
            extract(image, mask, size=16, mode=mode, normalisation=normalisation)
    np.testing.assert_array_equal(image, image_before)
    np.testing.assert_array_equal(mask, mask_before)


def naive_extract(image, mask, labels, size, mode, normalisation, dilation):
    """One object at a time, from a zero-padded copy: the obvious reference implementation."""
    ndim = mask.ndim
    margin = max(size)
    padded = np.pad(image.astype(np.float32), [(0, 0)] + [(margin, margin)] * ndim)
    padded_mask = np.pad(mask, margin)
    inside_image = np.pad(np.ones(mask.shape, bool), margin)
    out = []
    for label in labels:
        centre = np.floor(np.argwhere(mask == label).mean(axis=0) + 0.5).astype(int)
        window = tuple(slice(c - s // 2 + margin, c - s // 2 + s + margin)
                       for c, s in zip(centre, size))
        values = padded[(slice(None), *window)].copy()
        own = padded_mask[window] == label
        inside = inside_image[window]
        if normalisation == "minmax":
            for channel in values:
                low, high = channel[inside].min(), channel[inside].max()
                channel -= low
                channel /= high - low if high > low else 1
                channel[~inside] = 0
        if mode == "masked":
            dilated = ndi.binary_dilation(own, structure=euclidean_ball(dilation, ndim))
            values *= dilated
        out.append(np.concatenate([values, own[np.newaxis]]))
    return np.stack(out).astype(np.float32)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("size", [9, 16, "anisotropic"])
@pytest.mark.parametrize("mode, normalisation", [("context", "none"), ("context", "minmax"),
                                                 ("masked", "none"), ("masked", "minmax")])
def test_vectorised_extract_equals_a_naive_loop(ndim, size, mode, normalisation):
    rng = np.random.default_rng(ndim * 100 + len(mode))
    shape = (45, 53) if ndim == 2 else (11, 17, 19)
    size = ((14, 9) if ndim == 2 else (5, 10, 7)) if size == "anisotropic" else (size,) * ndim
    # Random labels with gaps, objects everywhere including against every border.
    mask = (rng.integers(0, 25, shape) * 3).astype(np.int32)
    mask[rng.random(shape) < 0.5] = 0
    image = rng.normal(1000, 300, (2, *shape)).astype(np.float32)
    labels = rng.permutation(np.unique(mask)[1:])[:40]
    got = extract(image, mask, labels=labels, size=size, mode=mode,
                  normalisation=normalisation, dilation=2)
    expected = naive_extract(image, mask, labels, size, mode, normalisation, 2)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(mode="crop"), r"mode must be one of \['context', 'masked'\]; got 'crop'"),
        (dict(normalisation="zscore"), r"normalisation must be one of \['percentile', "
         r"'minmax', 'none'\]; got 'zscore'"),
        (dict(size=3), "size must be at least 4 pixels along every axis; got 3"),
        (dict(size=0), "size must be at least 4 pixels along every axis; got 0"),
        (dict(size=-8), "size must be at least 4 pixels along every axis; got -8"),
        (dict(size=(16, 2)), r"at least 4 pixels along every axis; got \(16, 2\)"),
        (dict(size=(16, 16, 16)), r"tuple of 2 ints for a 2D mask; got \(16, 16, 16\)"),
        (dict(size=16.0), "size must be an int or a tuple of 2 ints for a 2D mask; got 16.0"),
        (dict(dilation=-1), r"dilation must be an integer >= 0 \(pixels\); got -1"),
        (dict(dilation=1.5), "dilation must be an integer >= 0 \\(pixels\\); got 1.5"),
        (dict(labels=[3, 5, 42, 99]), r"label\(s\) 5, 99 not in the mask \(3 objects, "
         r"labels 3 to 42\)"),
        (dict(labels=[[3, 7]]), r"labels must be a 1D sequence of integers; got \[\[3, 7\]\]"),
        (dict(labels=[3.5]), "labels must be a 1D sequence of integers"),
    ],
)
def test_bad_arguments_raise_input_error(three_disks, kwargs, match):
    image, mask = three_disks
    with pytest.raises(InputError, match=match):
        extract(image, mask, **kwargs)


def test_image_and_mask_must_match(three_disks):
    image, mask = three_disks
    with pytest.raises(InputError, match=r"image has shape \(1, 64, 79\) \(spatial \(64, 79\)\) "
                       r"but mask has shape \(64, 80\)"):
        extract(image[:, :, :79], mask)
    with pytest.raises(InputError, match=r"image has shape \(1, 1, 64, 80\).*expected image of "
                       r"shape \(C, 64, 80\)"):
        extract(image[np.newaxis], mask)
    with pytest.raises(InputError, match=r"image has shape \(64, 80\); expected channel-first"):
        extract(image[0], mask)
    with pytest.raises(InputError, match="mask has dtype float64"):
        extract(image, mask.astype(float))


@pytest.mark.parametrize("radius", [0, 1, 2, 3])
@pytest.mark.parametrize("ndim", [2, 3])
def test_dilate_masks_equals_scipy_with_a_euclidean_ball(radius, ndim):
    rng = np.random.default_rng(radius + 10 * ndim)
    masks = rng.random((3,) + (9,) * ndim) > 0.93
    grid = np.indices((2 * radius + 1,) * ndim) - radius
    ball = (grid**2).sum(axis=0) <= radius**2
    expected = np.stack([ndi.binary_dilation(m, ball) if radius else m for m in masks])
    np.testing.assert_array_equal(dilate_masks(masks, radius), expected)
