"""svetlana_core.io.axes: guess_axes and to_canonical."""

import re

import numpy as np
import pytest

from svetlana_core.errors import InputError
from svetlana_core.io import guess_axes, to_canonical
from tests.builders import ramp


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
