"""Scenes and model folders of the predict tests: disks of varied brightness on a jittered
grid (some cut by the border, labels with gaps), and random-weight CNNs whose head is stretched
so that the objects of a scene spread over the classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from svetlana_core import models, patches

CLASSES = ("alive", "dead", "dividing")


def make_model_folder(
    folder: Path,
    *,
    arch: str = "cnn",
    classes=CLASSES,
    image_channels: int = 1,
    patch_size=(32, 32),
    normalisation: str = "percentile",
    patch_mode: str = "context",
    seed: int = 0,
    head_scale: float = 20.0,
    **arch_params,
) -> Path:
    """A model folder with random weights; a large head spreads the predicted classes."""
    torch.manual_seed(seed)
    spatial_dims = len(patch_size)
    params = {"depth": 2, "width": 8} if arch == "cnn" and not arch_params else arch_params
    module = models.build_model(arch, image_channels + 1, len(classes), spatial_dims, **params)
    if arch == "cnn" and image_channels == 1 and spatial_dims == 2:
        # Random features barely differ between objects: centre and stretch the logits on a
        # sample scene so that the objects spread over the classes.
        image, mask = scene(n=30, size=128, seed=99)
        cut = patches.extract(image, mask, size=tuple(patch_size), mode=patch_mode,
                              normalisation=normalisation)
        module.eval()
        with torch.no_grad():
            logits = module(torch.from_numpy(cut))
            spread = logits.std(dim=0).clamp_min(1e-6)
            module.classifier.weight.mul_(head_scale / spread[:, None] / 10)
            module.classifier.bias.mul_(head_scale / spread / 10)
            module.classifier.bias.sub_(module(torch.from_numpy(cut)).mean(dim=0))
    meta = {
        "format_version": models.FORMAT_VERSION,
        "arch": arch,
        "arch_params": params,
        "spatial_dims": spatial_dims,
        "in_channels": image_channels + 1,
        "image_channels": image_channels,
        "classes": list(classes),
        "patch_size": list(patch_size),
        "patch_mode": patch_mode,
        "dilation": 2,
        "normalisation": normalisation,
        "config": {},
        "history": [],
        "best_epoch": None,
        "metrics": None,
        "data": {},
        "versions": {},
        "parent": None,
        "created_at": "2026-01-01T00:00:00+00:00",
    }
    return models.save_model(folder, module, meta)


def disks(shape, centres, radii, labels, seed=0, mask_dtype=np.uint16):
    """Grey image (1, rows, columns) uint16 and a mask of labelled disks of varied brightness."""
    rng = np.random.default_rng(seed)
    rows, columns = np.indices(shape)
    mask = np.zeros(shape, dtype=mask_dtype)
    image = rng.normal(100, 10, shape)
    for (r, c), radius, label in zip(centres, radii, labels):  # test data only
        inside = (rows - r) ** 2 + (columns - c) ** 2 <= radius**2
        mask[inside] = label
        image[inside] += rng.uniform(50, 800) + 30 * np.sin(columns[inside] / rng.uniform(1, 4))
    return image.clip(0, 65535).astype(np.uint16)[np.newaxis], mask


def scene(n=30, size=128, seed=1, labels=None):
    """Disks on a jittered grid, some cut by the border; labels with gaps by default."""
    rng = np.random.default_rng(seed)
    grid = int(np.ceil(np.sqrt(n)))
    cell = size / grid
    k = np.arange(n)
    centres = np.stack([(k // grid + 0.5) * cell, (k % grid + 0.5) * cell], axis=1)
    centres += rng.uniform(-cell / 4, cell / 4, centres.shape)
    centres[0] = (1, 2)  # cut by two borders
    centres[1] = (size - 2, size / 2)
    radii = rng.integers(3, max(4, int(cell / 2) - 2), n)
    if labels is None:
        labels = np.sort(rng.choice(np.arange(1, 60_000), n, replace=False))
    return disks((size, size), centres, radii, labels, seed=seed)

