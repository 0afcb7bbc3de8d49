"""svetlana_core.training.augment: BatchAugment draws a symmetry per patch, batched."""

import numpy as np
import torch

from svetlana_core import training as T


def _symmetries(patch):
    out = []
    for k in range(4):
        rotated = np.rot90(patch, k, axes=(-2, -1))
        out += [rotated, np.flip(rotated, -1)]
    return out

def test_batch_augment_draws_the_symmetries_of_the_square():
    x = torch.arange(64 * 2 * 5 * 5, dtype=torch.float32).reshape(64, 2, 5, 5)
    augment = T.BatchAugment({"flips": True, "rot90": True}, 1, (5, 5), seed=0)
    out = augment(x)
    assert out.shape == x.shape and not torch.equal(out, x)
    seen = set()
    for a, b in zip(x.numpy(), out.numpy()):
        matches = [i for i, s in enumerate(_symmetries(a)) if np.array_equal(s, b)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) == 8  # all 8 symmetries drawn over 64 patches
    assert torch.equal(x, torch.arange(x.numel(), dtype=torch.float32).reshape(x.shape))
    again = T.BatchAugment({"flips": True, "rot90": True}, 1, (5, 5), seed=0)(x)
    assert torch.equal(again, out)

def test_batch_augment_rot90_only_non_square_and_3d():
    x = torch.rand(16, 2, 4, 6)
    out = T.BatchAugment({"rot90": True}, 1, (4, 6), seed=1)(x)
    for a, b in zip(x.numpy(), out.numpy()):  # only 0 or 180 degrees keep the shape
        assert np.array_equal(a, b) or np.array_equal(np.rot90(a, 2, axes=(-2, -1)), b)
    vol = torch.rand(8, 1, 3, 4, 4)
    out3 = T.BatchAugment({"flip_planes": True}, 0, (3, 4, 4), seed=0)(vol)
    for a, b in zip(vol.numpy(), out3.numpy()):
        assert np.array_equal(a, b) or np.array_equal(np.flip(a, 1), b)

def test_batch_augment_extra_albumentations_transforms():
    spec = {"flips": True, "transforms": [{"name": "GaussNoise", "std_range": [0.1, 0.2],
                                           "p": 1.0}]}
    x = torch.zeros(4, 2, 8, 8)
    x[:, 1, 2:6, 2:6] = 1
    out = T.BatchAugment(spec, 1, (8, 8), seed=0)(x)
    assert out.shape == x.shape
    assert out[:, 0].abs().sum() > 0  # noise on the image channel
    assert torch.equal(out[:, 1].sum(dim=(1, 2)), x[:, 1].sum(dim=(1, 2)))  # mask only moved
