"""svetlana_core.patches.normalise: per-image percentile normalisation."""

import numpy as np
import pytest

from svetlana_core.errors import InputError
from svetlana_core.patches import normalise
from tests.builders import channel_ramp


def test_normalise_percentile_maps_low_to_zero_and_high_to_one():
    image = channel_ramp((100, 100), start=0)  # 0 .. 9999, every pixel used (small image)
    low, high = np.percentile(image, [1.0, 99.8])
    out = normalise(image)
    assert out.dtype == np.float32 and out.shape == image.shape
    expected = ((image.astype(np.float32) - np.float32(low)) / np.float32(high - low))
    np.testing.assert_array_equal(out, expected)
    # Not clipped: the brightest pixels land a little above 1, the darkest below 0.
    assert out.max() > 1 and out.min() < 0
    np.testing.assert_allclose(normalise(image, percentiles=(0, 100))[0, [0, -1], [0, -1]], [0, 1])


def test_normalise_each_channel_on_its_own():
    rgb = np.stack([np.full((8, 8), 5), np.tile(np.arange(8), (8, 1)) * 30,
                    np.tile(np.arange(8), (8, 1)) + 100]).astype(np.uint8)
    out = normalise(rgb, percentiles=(0, 100))
    np.testing.assert_array_equal(out[0], 0)  # constant channel -> zeros, not NaN
    np.testing.assert_array_equal(out[1], out[2])
    np.testing.assert_allclose(out[1, 0], np.arange(8) / 7, rtol=1e-6)


def test_normalise_constant_image_gives_zeros_without_nan():
    out = normalise(np.full((2, 6, 7), 300, dtype=np.uint16))
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out, 0)


def test_normalise_sparse_channel_falls_back_to_its_full_range():
    image = np.zeros((1, 50, 50), dtype=np.uint16)
    image[0, 3, 4] = 1000  # 1 pixel in 2500: both percentiles are 0
    out = normalise(image)
    assert out[0, 3, 4] == 1 and out.sum() == 1


def test_normalise_large_image_uses_a_strided_subsample():
    rng = np.random.default_rng(0)
    image = rng.gamma(2, 100, (1, 3000, 3000)).astype(np.float32)
    # 9 M pixels, at most 2**21 samples -> every 3rd row and column.
    low, high = np.percentile(image[:, ::3, ::3], [1.0, 99.8])
    expected = (image - np.float32(low)) / np.float32(high - low)
    np.testing.assert_array_equal(normalise(image), expected)


def test_normalise_none_is_a_float32_copy():
    image = np.arange(12, dtype=np.int16).reshape(1, 3, 4)
    out = normalise(image, method="none")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, image)
    out[0, 0, 0] = 99
    assert image[0, 0, 0] == 0


def test_normalise_errors():
    image = np.zeros((1, 4, 4))
    with pytest.raises(InputError, match=r"method must be one of \['percentile', 'none'\]; "
                       "got 'zscore'"):
        normalise(image, method="zscore")
    with pytest.raises(InputError, match=r"0 <= low < high <= 100; got \(99, 1\)"):
        normalise(image, percentiles=(99, 1))
    with pytest.raises(InputError, match="percentiles must be two numbers"):
        normalise(image, percentiles=(1,))
    with pytest.raises(InputError, match=r"image has shape \(4, 4\); expected channel-first"):
        normalise(np.zeros((4, 4)))
    with pytest.raises(InputError, match="image has dtype <U1"):
        normalise(np.full((1, 2, 2), "a"))
    with pytest.raises(InputError, match=r"image has shape \(0, 4, 4\): no channels"):
        normalise(np.zeros((0, 4, 4)))
