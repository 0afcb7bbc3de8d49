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


def current_labels(project, image=None) -> list[tuple[str, int, str]]:
    """A project's current labels as ``(image, label, class)`` tuples, sorted like ``labels()``."""
    table = project.labels(image)[["image", "label", "class"]]
    return [tuple(row) for row in table.itertuples(index=False)]


def project_dataset(project: Any, config: Any, group_by: Any = None) -> Any:
    """The training set of a project, built as ``train PROJECT`` and the Train page's job do:
    its files and current labels, its classes in project order (unused ones left out)."""
    from svetlana_core import training

    return training.dataset_from_training_set(project.training_set(), config, group_by)


def random_patch(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """A float32 patch ``(C, *spatial)`` of uniform noise whose last channel, the object mask,
    is a centred disk (ball in 3D) of radius a quarter of the last side."""
    rng = np.random.default_rng(seed)
    patch = rng.random(shape, dtype=np.float32)
    spatial = np.indices(shape[1:])
    centre = np.array(shape[1:]).reshape((-1,) + (1,) * (len(shape) - 1)) / 2
    patch[-1] = (((spatial - centre) ** 2).sum(axis=0) <= (shape[-1] / 4) ** 2).astype(np.float32)
    return patch


def canvas_click(x: float, y: float, radius: float = 3, stroke: float = 2) -> dict[str, Any]:
    """What streamlit-drawable-canvas 0.13 stores for a click at canvas pixel (x, y) in point
    mode: a circle with ``left = x - radius - stroke / 2``, ``top = y`` (FIELD-NOTES.md)."""
    return {"type": "circle", "left": x - radius - stroke / 2, "top": y, "radius": radius,
            "strokeWidth": stroke, "originX": "left", "originY": "center"}


def tiny_train_config(**changes: Any) -> Any:
    """A ``TrainConfig`` of a 1-block, 4-filter CNN on 16-pixel patches: a run of a few epochs
    on :func:`two_class_disks` takes milliseconds; ``changes`` override."""
    from svetlana_core import training

    base = dict(arch_params={"depth": 1, "width": 4}, patch_size=16, epochs=3, batch_size=16,
                device="cpu", patience=None)
    return training.TrainConfig(**{**base, **changes})


def strict_disks(
    shape: tuple[int, int], objects: Sequence[tuple[int, float, float, float]],
    dtype: Any = np.uint16,
) -> np.ndarray:
    """A label mask with one scikit-image disk per ``(label, centre_row, centre_column, radius)``.

    scikit-image's disk is strict (``d² < r²``, unlike :func:`disk_mask`): radius 5 gives 69
    pixels spanning the centre ± 4, radius 3 gives 25 pixels spanning ± 2.
    """
    from skimage.draw import disk

    mask = np.zeros(shape, dtype=dtype)
    for label, row, column, radius in objects:
        mask[disk((row, column), radius, shape=shape)] = label
    return mask


def ramp(shape: tuple[int, ...], dtype: Any = np.uint8) -> np.ndarray:
    """Distinct values everywhere (modulo 251, so uint8 holds them): a wrong transpose or axis
    order cannot pass."""
    return (np.arange(np.prod(shape)) % 251).astype(dtype).reshape(shape)


def channel_ramp(shape: tuple[int, ...], channels: int = 1, start: float = 1) -> np.ndarray:
    """A channel-first float64 image ``(channels, *shape)`` whose every pixel value is unique
    (and nonzero with the default `start`)."""
    size = int(np.prod(shape))
    return np.arange(channels * size, dtype=np.float64).reshape(channels, *shape) + start


def named(path: Any) -> str:
    """A regular expression that matches a file's name (not its folder) in an error message."""
    import re

    return re.escape(Path(path).name)


#: Classes of :func:`plate_objects` (``mitotic`` is never predicted).
PLATE_CLASSES = ("alive", "dead", "mitotic")

#: Images of :func:`plate_objects`' plate that hold no object, with their wells.
PLATE_EMPTY_IMAGES = {"A02_s2.png": "A02", "C03_s1.png": "C03"}


def plate_objects() -> pd.DataFrame:
    """A per-object table of a tiny 96-well plate with counts known by hand.

    ::

        image        well  labels -> class                       alive dead
        A01_s1.png   A01   3 alive, 7 dead, 42 alive                 2    1
        A01_s2.png   A01   1 dead, 2 dead                            0    2
        A02_s1.png   A02   5 alive                                   1    0
        A02_s2.png   A02   (no object, in PLATE_EMPTY_IMAGES)        0    0
        B05_s1.png   B05   10 alive, 11 alive, 12 dead, 13 alive     3    1
        C03_s1.png   C03   (no object, in PLATE_EMPTY_IMAGES)        0    0
        loose.png    -     4 dead (no well)                          0    1

    Per well: A01 5 objects (2 alive, 3 dead), A02 1 (1 alive), B05 4 (3 alive, 1 dead), C03
    imaged with 0 objects, the 92 other wells not imaged. Columns ``image, label, class,
    confidence, well``; a new table at each call.
    """
    return pd.DataFrame(
        [
            ("A01_s1.png", 3, "alive", 0.9, "A01"),
            ("A01_s1.png", 7, "dead", 0.8, "A01"),
            ("A01_s1.png", 42, "alive", 0.7, "A01"),
            ("A01_s2.png", 1, "dead", 0.6, "A01"),
            ("A01_s2.png", 2, "dead", 0.9, "A01"),
            ("A02_s1.png", 5, "alive", 0.5, "A02"),
            ("B05_s1.png", 10, "alive", 0.9, "B05"),
            ("B05_s1.png", 11, "alive", 0.9, "B05"),
            ("B05_s1.png", 12, "dead", 0.9, "B05"),
            ("B05_s1.png", 13, "alive", 0.9, "B05"),
            ("loose.png", 4, "dead", 0.9, None),
        ],
        columns=["image", "label", "class", "confidence", "well"],
    )


#: Python source that makes ``import torch`` fail in the interpreter that runs it first, as on
#: a machine without torch. (A finder, not ``sys.modules["torch"] = None``: scipy looks torch up
#: in sys.modules and trips on None.) Tests run it with ``python -c`` before their own code.
WITHOUT_TORCH = """
import importlib.abc, json, sys

class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in ("torch", "torchvision"):
            raise ImportError(f"{name} is not installed on this machine")

sys.meta_path.insert(0, NoTorch())
"""


def app_test(project: str | None = None) -> Any:
    """The whole app under AppTest (not run yet), on ``project`` when given (``?project=``)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"),
                           default_timeout=60)
    if project:
        at.query_params["project"] = project
    return at


def messages(elements: Any) -> list[str]:
    """The texts of AppTest elements (errors, warnings, exceptions)."""
    return [str(e.value) for e in elements]


def rgb_tile_project(folder: Path, n_images: int = 2, size: int = 256):
    """A project of small RGB tiles (``size``² uint8 PNGs, H&E-like pink background, purple
    nuclei of ~10 px), 36 nuclei each, three classes in the default palette, none labelled:
    the case of views that must enlarge a small image and show it in colour."""
    import imageio.v3 as iio

    from svetlana_core.store import Project

    project = Project.create(folder)
    for name in ("tumour", "immune", "stroma"):
        project.add_class(name)
    step = size // 6
    centres = [(r, c) for r in range(step // 2, size, step) for c in range(step // 2, size, step)]
    for k in range(n_images):
        mask = disk_mask((size, size), centres, 5, range(1, len(centres) + 1))
        image = np.empty((size, size, 3), np.uint8)
        image[:] = (235, 180, 210)  # eosin pink
        image[mask > 0] = (90, 50, 140)  # haematoxylin purple
        folder.mkdir(parents=True, exist_ok=True)
        image_path = folder / f"tile{k}.png"
        iio.imwrite(image_path, image)
        mask_path = folder / f"tile{k}_mask.tif"
        tifffile.imwrite(mask_path, mask)
        project.add_image(image_path, mask_path)
    return project
