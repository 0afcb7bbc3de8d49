"""svetlana_core.patches.symmetry: the 8 symmetries, one implementation for numpy and torch."""

import itertools

import numpy as np
import pytest
import torch

from svetlana_core.errors import InputError
from svetlana_core.patches.symmetry import (
    DEFAULT_AUGMENT,
    apply_symmetries,
    compose_turns,
    parse_switches,
)


def test_flips_then_quarter_turns_are_the_rot90_of_numpy_and_torch():
    batch = np.arange(8 * 2 * 5 * 5, dtype=np.float32).reshape(8, 2, 5, 5)
    for flip_rows, flip_columns, k in itertools.product((False, True), (False, True), range(4)):
        expected = batch
        if flip_rows:
            expected = np.flip(expected, -2)
        if flip_columns:
            expected = np.flip(expected, -1)
        expected = np.rot90(expected, k, axes=(-2, -1))
        draws = compose_turns(np.full(8, flip_rows), np.full(8, flip_columns), np.full(8, k))
        np.testing.assert_array_equal(apply_symmetries(batch, None, *draws), expected)
        tensor_draws = compose_turns(torch.full((8,), flip_rows), torch.full((8,), flip_columns),
                                     torch.full((8,), k))
        out = apply_symmetries(torch.from_numpy(batch), None, *tensor_draws)
        assert torch.equal(out, torch.from_numpy(np.ascontiguousarray(expected)))


def test_each_patch_gets_its_own_symmetry_and_the_input_is_kept():
    batch = np.arange(3 * 1 * 2 * 2).reshape(3, 1, 2, 2)
    before = batch.copy()
    out = apply_symmetries(batch, flip_columns=np.array([True, False, False]),
                           transpose=np.array([False, False, True]))
    np.testing.assert_array_equal(out[0, 0], [[1, 0], [3, 2]])
    np.testing.assert_array_equal(out[1], batch[1])
    np.testing.assert_array_equal(out[2, 0], [[8, 10], [9, 11]])
    np.testing.assert_array_equal(batch, before)
    same = torch.from_numpy(batch)
    torch_out = apply_symmetries(same, flip_columns=torch.tensor([True, False, False]),
                                 transpose=torch.tensor([False, False, True]))
    np.testing.assert_array_equal(torch_out.numpy(), out)


def test_planes_flip_only_in_3d_and_transpose_needs_square_patches():
    volume = np.arange(2 * 1 * 3 * 2 * 2).reshape(2, 1, 3, 2, 2)
    out = apply_symmetries(volume, flip_planes=np.array([True, False]))
    np.testing.assert_array_equal(out[0], volume[0, :, ::-1])
    np.testing.assert_array_equal(out[1], volume[1])
    flat = np.zeros((2, 1, 4, 4))
    assert apply_symmetries(flat, flip_planes=np.array([True, True])) is flat  # 2D: ignored
    with pytest.raises(InputError, match=r"patches of shape \(2, 3\) are not square"):
        apply_symmetries(np.zeros((1, 1, 2, 3)), transpose=np.array([True]))


def test_parse_switches():
    assert parse_switches(DEFAULT_AUGMENT) == (
        {"flips": True, "rot90": True, "flip_planes": False}, [])
    assert parse_switches([{"name": "GaussNoise"}])[1] == [{"name": "GaussNoise"}]
    assert parse_switches({"transforms": None}) == parse_switches(None)
    with pytest.raises(InputError, match=r"unknown augmentation key 'rot' \(did you mean "
                                         r"'rot90'\?\)"):
        parse_switches({"rot": True})
    with pytest.raises(InputError, match=r"augmentation flip_planes=1 is not valid"):
        parse_switches({"flip_planes": 1})
    with pytest.raises(InputError, match=r"augmentation transforms must be a list, got dict"):
        parse_switches({"transforms": {"name": "GaussNoise"}})
    with pytest.raises(InputError, match=r"spec must be a dict, a list of transforms or None"):
        parse_switches("flips")
