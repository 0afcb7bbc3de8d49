"""Test data with a known answer, shared by every test module.

Masks of disks and balls with chosen (gapped) labels, image/mask files on disk, a project of
labelled bright and dark disks, and model folders with random weights. Each builder is small
and deterministic: the same arguments give the same arrays. torch is imported only by the
model-folder builders.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tifffile

#: Classes of the two-class disk scenes (class by brightness).
DISK_CLASSES = ("bright", "dark")


def disk_mask(
    shape: tuple[int, int],
    centres: Sequence[tuple[float, float]],
    radii: int | Sequence[int],
    labels: Sequence[int],
    dtype: Any = np.uint16,
) -> np.ndarray:
    """A label mask of disks: pixel (r, c) is in a disk when ``(r-r0)² + (c-c0)² <= radius²``.

    Later disks overwrite earlier ones where they overlap.

    >>> disk_mask((5, 5), [(2, 2)], 1, [7])
    array([[0, 0, 0, 0, 0],
           [0, 0, 7, 0, 0],
           [0, 7, 7, 7, 0],
           [0, 0, 7, 0, 0],
           [0, 0, 0, 0, 0]], dtype=uint16)
    """
    radii = [radii] * len(centres) if np.isscalar(radii) else list(radii)
    rows, columns = np.indices(shape)
    mask = np.zeros(shape, dtype)
    for (row, column), radius, label in zip(centres, radii, labels, strict=True):
        mask[(rows - row) ** 2 + (columns - column) ** 2 <= radius**2] = label
    return mask


def ball_mask(
    shape: tuple[int, int, int],
    centres: Sequence[tuple[float, float, float]],
    radii: int | Sequence[int],
    labels: Sequence[int],
    dtype: Any = np.uint16,
) -> np.ndarray:
    """A 3D label mask of balls (planes, rows, columns), inclusive like :func:`disk_mask`."""
    radii = [radii] * len(centres) if np.isscalar(radii) else list(radii)
    planes, rows, columns = np.indices(shape)
    mask = np.zeros(shape, dtype)
    for (plane, row, column), radius, label in zip(centres, radii, labels, strict=True):
        inside = (planes - plane) ** 2 + (rows - row) ** 2 + (columns - column) ** 2 <= radius**2
        mask[inside] = label
    return mask


def three_disks(size: int = 64, radius: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """A uint8 image and a uint16 mask of three disks labelled 3, 7 and 42.

    The disks sit at (16, 16), (16, 48) and (48, 32) of a 64 x 64 image; objects are 170,
    background 20.
    """
    mask = disk_mask((size, size), [(16, 16), (16, 48), (48, 32)], radius, [3, 7, 42])
    image = ((mask > 0) * 150 + 20).astype(np.uint8)
    return image, mask


def two_class_disks(
    n_images: int = 4,
    size: int = 64,
    step: int = 16,
    radius: int = 5,
    seed: int = 0,
    labels_start: int = 3,
) -> list[tuple[str, np.ndarray, np.ndarray, pd.DataFrame]]:
    """Images of bright and dark disks on a grid (class by brightness), labels with gaps.

    Returns a list of ``(name, image (1, rows, columns) float32, mask int32, labels)`` with
    ``labels`` a DataFrame ``label, class``; labels run ``labels_start``, +3, +6, ...
    """
    rng = np.random.default_rng(seed)
    rows, columns = np.ogrid[:size, :size]
    items = []
    for k in range(n_images):
        image = rng.normal(0.3, 0.05, (1, size, size)).astype(np.float32)
        mask = np.zeros((size, size), np.int32)
        table = []
        label = labels_start
        for i, (r, c) in enumerate(itertools.product(range(step // 2, size, step), repeat=2)):
            inside = (rows - r) ** 2 + (columns - c) ** 2 <= radius**2
            mask[inside] = label
            cls = DISK_CLASSES[0] if (i + k) % 2 else DISK_CLASSES[1]
            image[0][inside] += 0.9 if cls == DISK_CLASSES[0] else -0.25
            table.append((label, cls))
            label += 3
        items.append((f"img{k}.tif", image, mask, pd.DataFrame(table, columns=["label", "class"])))
    return items


def write_pair(
    folder: Path, stem: str, image: np.ndarray | None, mask: np.ndarray, mask_suffix: str = "_mask"
) -> tuple[Path | None, Path]:
    """Write ``<stem>.tif`` and ``<stem><mask_suffix>.tif`` into ``folder`` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    image_path = None
    if image is not None:
        image_path = folder / f"{stem}.tif"
        tifffile.imwrite(image_path, image)
    mask_path = folder / f"{stem}{mask_suffix}.tif"
    tifffile.imwrite(mask_path, mask)
    return image_path, mask_path


def disk_project(folder: Path, n_images: int = 3, size: int = 64):
    """A project of bright and dark disks (16 per 64² image), every object labelled."""
    from svetlana_core.store import Project

    project = Project.create(folder)
    for name in DISK_CLASSES:
        project.add_class(name)
    for k in range(n_images):
        centres = [(r, c) for r in range(8, size, 16) for c in range(8, size, 16)]
        mask = disk_mask((size, size), centres, 5, range(1, len(centres) + 1))
        image = np.full((size, size), 300, np.uint16)
        classes = [DISK_CLASSES[0] if (i + k) % 2 else DISK_CLASSES[1] for i in range(len(centres))]
        for i, cls in enumerate(classes):
            image[mask == i + 1] = 1200 if cls == DISK_CLASSES[0] else 50
        image_path, mask_path = write_pair(folder, f"img{k}", image, mask)
        project.add_image(image_path, mask_path)
        for i, cls in enumerate(classes):
            project.annotate(f"img{k}.tif", i + 1, cls)
    return project


def model_meta(**changes: Any) -> dict[str, Any]:
    """A complete ``model.json`` of a tiny 2D cnn for 1-channel images; ``changes`` override."""
    from svetlana_core.models import FORMAT_VERSION

    meta = {
        "format_version": FORMAT_VERSION, "arch": "cnn", "arch_params": {"depth": 2, "width": 8},
        "spatial_dims": 2, "in_channels": 2, "image_channels": 1,
        "classes": ["live", "dead", "dividing"], "patch_size": [16, 16],
        "patch_mode": "context", "dilation": 2, "normalisation": "percentile", "config": {},
        "history": [], "best_epoch": None, "metrics": None, "data": {}, "versions": {},
        "parent": None, "created_at": "2026-01-01T00:00:00+00:00",
    }
    meta.update(changes)
    return meta


def cnn_model_folder(folder: Path, seed: int = 0, **changes: Any) -> Path:
    """A model folder with random weights; ``changes`` override :func:`model_meta`.

    The network is built from the meta's ``arch``, ``arch_params``, ``in_channels``,
    ``classes`` and ``spatial_dims``, so a changed meta still loads.
    """
    import torch

    from svetlana_core import models

    meta = model_meta(**changes)
    torch.manual_seed(seed)
    module = models.build_model(meta["arch"], meta["in_channels"], len(meta["classes"]),
                                meta["spatial_dims"], **meta["arch_params"])
    return models.save_model(folder, module, meta)
