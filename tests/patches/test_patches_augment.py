"""Tests of svetlana_core.patches.augment: specs are validated, the mask channel moves with the image."""

import doctest
import pickle

import numpy as np
import pytest

from svetlana_core.patches import augment as augment_module
from svetlana_core.patches.symmetry import DEFAULT_AUGMENT
from svetlana_core.patches.augment import augment_batch, available_transforms, build_augment, spec_from_json, spec_to_json, validate_augment_spec
from svetlana_core.errors import InputError


def _asymmetric_mask(shape=(12, 12)):
    """A binary L-shaped object: each of the 8 symmetries of the square gives another array."""
    mask = np.zeros(shape, np.float32)
    mask[2:9, 3:5] = 1
    mask[7:9, 5:8] = 1  # arms of unequal length: no mirror symmetry
    return mask


def _dihedral(array):
    """The 8 symmetries of the square acting on the last two axes."""
    out = []
    for flipped in (array, np.flip(array, axis=-1)):
        out += [np.rot90(flipped, k, axes=(-2, -1)) for k in range(4)]
    return out


def test_default_flips_and_rot90_keep_the_mask_aligned_with_the_image():
    mask = _asymmetric_mask()
    patch = np.stack([mask, mask * 0.5, mask])  # two image channels, then the mask
    augment = build_augment(DEFAULT_AUGMENT, seed=0)
    seen = set()
    for _ in range(100):
        out = augment(patch)
        assert out.shape == patch.shape and out.dtype == np.float32
        np.testing.assert_array_equal(out[0], out[2])
        np.testing.assert_array_equal(out[1], out[2] * 0.5)
        index = [i for i, d in enumerate(_dihedral(mask)) if np.array_equal(d, out[2])]
        assert len(index) == 1
        seen.add(index[0])
    assert seen == set(range(8))  # every symmetry of the square is drawn


def test_spatial_albumentations_transform_moves_the_mask_with_the_image():
    mask = _asymmetric_mask((32, 32))
    patch = np.stack([mask, mask])
    # nearest-neighbour for the image too, so image and mask must stay identical
    spec = [
        {"name": "Affine", "rotate": [-30, 30], "translate_px": [-3, 3], "interpolation": 0, "p": 1}
    ]
    augment = build_augment(spec, n_image_channels=1, seed=0)
    changed = 0
    for _ in range(20):
        out = augment(patch)
        np.testing.assert_array_equal(out[0], out[1])
        changed += not np.array_equal(out[1], mask)
    assert changed == 20


def test_pixel_transform_leaves_the_mask_channel_untouched():
    rng = np.random.default_rng(0)
    mask = _asymmetric_mask((16, 16))
    patch = np.concatenate([rng.random((2, 16, 16), dtype=np.float32), mask[None]])
    spec = [
        {"name": "GaussNoise", "std_range": [0.2, 0.3], "p": 1},
        {"name": "RandomBrightnessContrast", "p": 1},
    ]
    out = build_augment(spec, n_image_channels=2, seed=0)(patch)
    np.testing.assert_array_equal(out[2], mask)
    assert np.abs(out[:2] - patch[:2]).mean() > 0.05


@pytest.mark.parametrize("n_image_channels", [1, 2, 4])
def test_pixel_and_spatial_transforms_work_with_any_channel_count(n_image_channels):
    rng = np.random.default_rng(0)
    patch = rng.random((n_image_channels + 1, 24, 24), dtype=np.float32)
    spec = {
        "flips": True,
        "rot90": True,
        "transforms": [
            {"name": "GaussNoise", "std_range": [0.01, 0.05], "p": 1},
            {"name": "GaussianBlur", "p": 1},
            {"name": "ElasticTransform", "p": 1},
        ],
    }
    out = build_augment(spec, n_image_channels=n_image_channels, seed=1)(patch)
    assert out.shape == patch.shape and out.dtype == np.float32


def test_mask_only_patches():
    mask = _asymmetric_mask((16, 16))
    out = build_augment([{"name": "GaussNoise", "p": 1}], n_image_channels=0, seed=0)(mask[None])
    np.testing.assert_array_equal(out, mask[None])


def test_the_input_patch_is_not_modified_and_none_is_no_augmentation():
    patch = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    before = patch.copy()
    build_augment({"flips": True, "transforms": [{"name": "GaussNoise", "p": 1}]}, seed=0)(patch)
    np.testing.assert_array_equal(patch, before)
    out = build_augment(None)(patch)
    np.testing.assert_array_equal(out, patch)
    assert out is not patch
    assert build_augment({}).spec == build_augment(None).spec


def test_non_square_patches_keep_their_shape():
    patch = np.random.default_rng(0).random((2, 6, 10), dtype=np.float32)
    augment = build_augment(DEFAULT_AUGMENT, seed=0)
    outs = [augment(patch) for _ in range(40)]
    assert {o.shape for o in outs} == {(2, 6, 10)}
    rotated = np.rot90(patch, 2, axes=(-2, -1))
    assert any(np.array_equal(o, rotated) for o in outs)


def test_seed_makes_it_reproducible():
    patch = np.random.default_rng(0).random((3, 16, 16), dtype=np.float32)
    spec = {
        "flips": True,
        "rot90": True,
        "transforms": [
            {"name": "GaussNoise", "p": 0.5},
            {"name": "Affine", "rotate": [-30, 30], "p": 0.5},
        ],
    }
    a, b, c = (build_augment(spec, seed=s) for s in (7, 7, 8))
    first = [a(patch) for _ in range(10)]
    second = [b(patch) for _ in range(10)]
    third = [c(patch) for _ in range(10)]
    assert all(np.array_equal(x, y) for x, y in zip(first, second))
    assert not all(np.array_equal(x, y) for x, y in zip(first, third))
    # an explicit generator fixes the result whatever the augment's own state
    x = a(patch, np.random.default_rng(3))
    y = c(patch, np.random.default_rng(3))
    np.testing.assert_array_equal(x, y)


def test_augment_batch():
    rng = np.random.default_rng(0)
    batch = rng.random((16, 2, 8, 8), dtype=np.float32)
    augment = build_augment(DEFAULT_AUGMENT, seed=0)
    out = augment_batch(augment, batch, np.random.default_rng(5))
    assert out.shape == batch.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out, augment_batch(augment, batch, np.random.default_rng(5)))
    # each sample draws its own symmetry, not one for the whole batch
    drawn = {
        next(i for i, d in enumerate(_dihedral(p)) if np.array_equal(d, o))
        for p, o in zip(batch, out)
    }
    assert len(drawn) > 1
    with pytest.raises(InputError, match=r"batch has shape \(2, 8, 8\)"):
        augment_batch(augment, batch[0])


def test_3d_flips_and_rot90_in_the_rows_columns_plane():
    rng = np.random.default_rng(0)
    patch = rng.random((2, 4, 6, 6), dtype=np.float32)
    augment = build_augment(DEFAULT_AUGMENT, patch_shape=(4, 6, 6), seed=0)
    outs = [augment(patch) for _ in range(60)]
    candidates = _dihedral(patch)
    found = {next(i for i, d in enumerate(candidates) if np.array_equal(d, o)) for o in outs}
    assert found == set(range(8))  # never a flip along planes


def test_3d_flip_planes():
    patch = np.random.default_rng(0).random((1, 4, 6, 8), dtype=np.float32)
    augment = build_augment({"flip_planes": True}, seed=0)
    outs = [augment(patch) for _ in range(20)]
    flipped = patch[:, ::-1]
    assert sum(np.array_equal(o, flipped) for o in outs) + sum(
        np.array_equal(o, patch) for o in outs
    ) == 20
    assert any(np.array_equal(o, flipped) for o in outs)
    # 3D patches whose rows and columns differ keep their shape under rot90
    out = build_augment(DEFAULT_AUGMENT, seed=0)(patch)
    assert out.shape == patch.shape


def test_albumentations_transforms_refuse_3d():
    spec = [{"name": "GaussNoise"}]
    with pytest.raises(InputError, match=r"albumentations transforms work on 2D patches only"):
        build_augment(spec, patch_shape=(4, 16, 16))
    augment = build_augment(spec)
    with pytest.raises(InputError, match=r"2D patches only; 3D patches support flips"):
        augment(np.zeros((2, 4, 16, 16), np.float32))


def test_patch_channel_count_is_checked():
    augment = build_augment(DEFAULT_AUGMENT, n_image_channels=2)
    message = r"patch has 2 channels but .* for 2 image channel\(s\) \+ 1 mask"
    with pytest.raises(InputError, match=message):
        augment(np.zeros((2, 8, 8), np.float32))
    with pytest.raises(InputError, match=r"patch has shape \(8, 8\)"):
        augment(np.zeros((8, 8), np.float32))


_INVALID_SPECS = [
    (
        [{"name": "GausNoise"}],
        r"unknown albumentations transform 'GausNoise' \(did you mean 'GaussNoise'\?\)",
    ),
    (
        [{"name": "GaussNoise", "var_limit": [10, 50]}],
        r"GaussNoise got unknown argument 'var_limit' \(albumentations 2\.x names: std_range, mean",
    ),
    (
        [{"name": "Affine", "rotat": 30}],
        r"Affine got unknown argument 'rotat' \(did you mean 'rotate'\?\)",
    ),
    (
        [{"name": "GaussNoise", "std_range": [0.5, 0.1]}],
        r"transforms\[0\] \(GaussNoise\): std_range=\[0\.5, 0\.1\]: Value error, First value",
    ),
    ([{"name": "GaussNoise", "p": 2}], r"GaussNoise\): p=2: Input should be less than or equal"),
    ([{"name": "ShiftScaleRotate"}], r"ShiftScaleRotate\): .*Please use Affine"),
    ([{"name": "RandomScale", "p": 1}], r"RandomScale\) changes the patch shape from \(64, 64\)"),
    ([{"name": "Lambda"}], r"'Lambda' cannot be used on patches: takes Python functions"),
    ([{"name": "FDA"}], r"'FDA' cannot be used on patches: needs extra inputs"),
    ([{"name": "CubicSymmetry"}], r"'CubicSymmetry' works on 3D volumes only"),
    ([{"p": 0.5}], r"transforms\[0\] needs a 'name'"),
    (["GaussNoise"], r"transforms\[0\] must be a dict with a 'name', got 'GaussNoise'"),
    ([{"name": "Affine", "rotate": print}], r"argument 'rotate' has a value of type builtin_func"),
    ({"flip": True}, r"unknown augmentation key 'flip' \(did you mean 'flips'\?\)"),
    ({"flips": "yes"}, r"augmentation flips='yes' is not valid: choose true or false"),
    ({"transforms": {"name": "Blur"}}, r"augmentation transforms must be a list, got dict"),
    ("flips", r"augmentation spec must be a dict, a list of transforms or None, got str"),
    (
        [{"name": "OneOf", "transforms": [{"name": "Blur"}, {"name": "GausNoise"}]}],
        r"unknown albumentations transform 'GausNoise'",
    ),
    (
        [{"name": "OneOf", "transforms": []}],
        r"transforms\[0\] \(OneOf\) needs a non-empty 'transforms'",
    ),
]


@pytest.mark.parametrize(("spec", "match"), _INVALID_SPECS)
def test_invalid_specs_raise(spec, match):
    with pytest.raises(InputError, match=match):
        build_augment(spec)


@pytest.mark.parametrize("n_image_channels", [2, 4])
def test_three_channel_transforms_fail_at_build_time_on_other_channel_counts(n_image_channels):
    with pytest.raises(
        InputError,
        match=rf"ColorJitter\) does not work on patches with {n_image_channels} image channel",
    ):
        build_augment([{"name": "ColorJitter"}], n_image_channels=n_image_channels)
    build_augment([{"name": "ColorJitter"}], n_image_channels=3)


def test_shape_check_uses_the_patch_shape():
    spec = [{"name": "RandomResizedCrop", "size": [32, 32], "p": 1}]
    build_augment(spec, n_image_channels=1, patch_shape=32)
    with pytest.raises(InputError, match=r"changes the patch shape from \(48, 48\) to \(32, 32\)"):
        build_augment(spec, n_image_channels=1, patch_shape=(48, 48))
    with pytest.raises(InputError, match=r"patch_shape=\(5,\) is not valid"):
        build_augment(spec, patch_shape=(5,))
    with pytest.raises(InputError, match=r"n_image_channels=-1 is not valid"):
        build_augment(spec, n_image_channels=-1)


def test_a_shape_change_at_call_time_raises():
    spec = [{"name": "RandomResizedCrop", "size": [32, 32], "p": 1}]
    augment = build_augment(spec, patch_shape=32)
    with pytest.raises(InputError, match=r"changed the patch shape \(16, 16\) to \(32, 32\)"):
        augment(np.zeros((2, 16, 16), np.float32))


def test_compositions():
    spec = [
        {
            "name": "OneOf",
            "transforms": [{"name": "GaussianBlur"}, {"name": "MedianBlur", "blur_limit": 3}],
            "p": 1,
        }
    ]
    patch = np.random.default_rng(0).random((2, 16, 16), dtype=np.float32)
    out = build_augment(spec, n_image_channels=1, seed=0)(patch)
    np.testing.assert_array_equal(out[1], patch[1])
    assert not np.array_equal(out[0], patch[0])


def test_validate_and_json_round_trip():
    spec = [{"name": "GaussNoise", "std_range": (0.01, 0.05), "p": np.float64(0.5)}]
    normal = validate_augment_spec(spec)
    assert normal == {
        "flips": False,
        "rot90": False,
        "flip_planes": False,
        "transforms": [{"name": "GaussNoise", "std_range": [0.01, 0.05], "p": 0.5}],
    }
    assert spec_from_json(spec_to_json(spec)) == normal
    assert spec_to_json(DEFAULT_AUGMENT) == (
        '{"flips": true, "rot90": true, "flip_planes": false, "transforms": []}'
    )
    with pytest.raises(InputError, match="augmentation spec is not valid JSON"):
        spec_from_json("{flips: true")
    assert build_augment(spec).spec == normal


def test_available_transforms():
    names = available_transforms()
    assert names["GaussNoise"] == "pixel"
    assert names["Affine"] == "spatial"
    assert "Lambda" not in names and "CubicSymmetry" not in names and "DualTransform" not in names
    for name in ("GaussNoise", "Affine", "ElasticTransform", "RandomBrightnessContrast"):
        validate_augment_spec([{"name": name}], n_image_channels=2)


def test_augment_pickles_for_worker_processes():
    augment = build_augment([{"name": "GaussNoise", "p": 1}], seed=0)
    copy = pickle.loads(pickle.dumps(augment))
    patch = np.zeros((2, 8, 8), np.float32)
    np.testing.assert_array_equal(
        augment(patch, np.random.default_rng(1)), copy(patch, np.random.default_rng(1))
    )


def test_docstring_examples():
    assert doctest.testmod(augment_module).failed == 0
