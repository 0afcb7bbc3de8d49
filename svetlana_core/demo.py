"""A reproducible demo project: synthetic cells in three classes, on a small plate.

The demo mirrors the paper's synthetic problems: the three classes differ in **shape**
(round vs elongated) and in **texture** (smooth vs speckled), so a patch classifier can
learn them in seconds on a CPU, while a classifier that only looks at the object's size
cannot. Orientation is deliberately not a class cue, because the default augmentation
rotates patches by multiples of 90°.

The images are named after plate wells (``demo_A01.png`` …) with a different mixture of
classes per well, so the per-well dashboard and plate heat map show something real.

Everything is generated from a seed: the same seed gives the same files, byte for byte.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from svetlana_core.store.project import Project

#: The demo's classes, with the colours the app draws them in.
DEMO_CLASSES: dict[str, str] = {
    "round": "#1f77b4",
    "elongated": "#ff7f0e",
    "speckled": "#2ca02c",
}

#: Well name → probability of each class (same order as DEMO_CLASSES).
DEMO_WELLS: dict[str, tuple[float, float, float]] = {
    "A01": (0.6, 0.2, 0.2),
    "A02": (0.2, 0.6, 0.2),
    "B01": (0.2, 0.2, 0.6),
    "B02": (0.34, 0.33, 0.33),
}


@dataclass(frozen=True)
class DemoSpec:
    """Size of the demo data set.

    Attributes
    ----------
    size : int
        Side of each square image, in pixels.
    n_objects : int
        Objects per image (placed on a jittered grid, never touching).
    labelled_per_class : int
        Objects per class that come pre-labelled, so training works out of the box.
    seed : int
        Seed of the generator.
    """

    size: int = 384
    n_objects: int = 36
    labelled_per_class: int = 12
    seed: int = 0


def _draw_image(rng: np.random.Generator, spec: DemoSpec, probabilities) -> tuple:
    """Draw one grey image, its instance mask and the true class of every object.

    Returns
    -------
    image : (rows, columns) uint8
    mask : (rows, columns) uint16, labels 1..n_objects
    classes : list of str, ``classes[k]`` is the class of label ``k + 1``
    """
    size = spec.size
    rows, columns = np.mgrid[0:size, 0:size].astype(np.float32)
    image = rng.normal(40.0, 6.0, (size, size)).astype(np.float32)
    mask = np.zeros((size, size), dtype=np.uint16)
    names = list(DEMO_CLASSES)
    grid = int(np.ceil(np.sqrt(spec.n_objects)))
    cell = size / grid
    classes: list[str] = []
    for k in range(spec.n_objects):
        # Generating a handful of objects once: a loop is clearer than a vectorised draw here.
        cls = names[rng.choice(len(names), p=probabilities)]
        centre_r = (k // grid + 0.5) * cell + rng.uniform(-0.12, 0.12) * cell
        centre_c = (k % grid + 0.5) * cell + rng.uniform(-0.12, 0.12) * cell
        radius = rng.uniform(0.22, 0.30) * cell
        if cls == "elongated":
            major, minor = radius * 1.35, radius * 0.5
        else:
            major = minor = radius
        angle = rng.uniform(0, np.pi)
        dr, dc = rows - centre_r, columns - centre_c
        u = dr * np.cos(angle) + dc * np.sin(angle)
        v = -dr * np.sin(angle) + dc * np.cos(angle)
        inside = (u / major) ** 2 + (v / minor) ** 2 <= 1.0
        brightness = rng.uniform(150, 200)
        if cls == "speckled":
            texture = rng.choice([0.45, 1.0], size=(size, size), p=[0.4, 0.6])
            image[inside] = brightness * texture[inside]
        else:
            image[inside] = brightness + rng.normal(0, 5, inside.sum())
        mask[inside] = k + 1
        classes.append(cls)
    image = np.clip(image, 0, 255).astype(np.uint8)
    return image, mask, classes


def create_demo(folder: str | Path, spec: DemoSpec = DemoSpec()) -> Project:
    """Create (or open, if it exists) the demo project in ``folder``.

    Writes ``images/demo_<well>.png`` (8-bit grey), ``masks/demo_<well>.tif`` (uint16
    instance masks) and ``ground_truth.csv`` (``image,label,class`` for every object) in
    the project folder, registers the images and classes, and labels
    ``spec.labelled_per_class`` objects of each class (source ``import``, author ``demo``).

    Parameters
    ----------
    folder : str or Path
        The project folder. If it already holds a demo project, it is opened unchanged.
    spec : DemoSpec
        Sizes and seed.

    Returns
    -------
    Project
    """
    import imageio.v3 as iio
    import tifffile

    folder = Path(folder)
    truth_path = folder / "ground_truth.csv"
    if truth_path.exists():
        return Project.open(folder)
    project = Project.open_or_create(folder)
    (folder / "images").mkdir(exist_ok=True)
    (folder / "masks").mkdir(exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    truth: list[tuple[str, int, str]] = []
    for well, probabilities in DEMO_WELLS.items():
        image, mask, classes = _draw_image(rng, spec, probabilities)
        image_path = folder / "images" / f"demo_{well}.png"
        mask_path = folder / "masks" / f"demo_{well}.tif"
        iio.imwrite(image_path, image)
        tifffile.imwrite(mask_path, mask, compression="zlib")
        project.add_image(image_path, mask_path, axes="YX", well=well)
        truth.extend((image_path.name, k + 1, c) for k, c in enumerate(classes))
    for name, colour in DEMO_CLASSES.items():
        project.add_class(name, colour)

    # Pre-label the first objects of each class, spread over the images.
    order = rng.permutation(len(truth))
    taken = {name: 0 for name in DEMO_CLASSES}
    rows = []
    for i in order:
        image_name, label, cls = truth[i]
        if taken[cls] < spec.labelled_per_class:
            taken[cls] += 1
            rows.append((image_name, label, cls))
    project.annotate_many(rows, author="demo", source="import")

    # Written last: its presence marks a complete demo project.
    tmp = truth_path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "label", "class"])
        writer.writerows(truth)
    tmp.replace(truth_path)
    return project
