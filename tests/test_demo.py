"""The demo project: reproducible, complete, and learnable."""

import hashlib

import numpy as np
import pandas as pd
import tifffile

from svetlana_core import io
from svetlana_core.demo import DEMO_CLASSES, DEMO_WELLS, DemoSpec, create_demo


def _digest(folder):
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".png", ".tif", ".csv"))
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in files}


def test_demo_is_reproducible(tmp_path):
    create_demo(tmp_path / "a")
    create_demo(tmp_path / "b")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")


def test_demo_contents(tmp_path):
    spec = DemoSpec()
    project = create_demo(tmp_path / "demo", spec)
    images = project.images()
    assert sorted(images["well"]) == sorted(DEMO_WELLS)
    assert project.classes()["name"].tolist() == list(DEMO_CLASSES)
    counts = project.label_counts().set_index("class")["n"]
    assert (counts == spec.labelled_per_class).all()
    truth = pd.read_csv(tmp_path / "demo" / "ground_truth.csv")
    assert len(truth) == spec.n_objects * len(DEMO_WELLS)
    # Every stored label agrees with the ground truth.
    labels = project.labels().merge(truth, on=["image", "label"], suffixes=("", "_true"))
    assert (labels["class"] == labels["class_true"]).all()
    # Masks hold exactly labels 1..n_objects; images are 8-bit grey of the mask's shape.
    for row in images.itertuples():
        image, mask = io.load_pair(row.path, row.mask_path)
        assert image.shape == (1, spec.size, spec.size) and image.dtype == np.uint8
        assert np.array_equal(np.unique(mask), np.arange(spec.n_objects + 1))


def test_demo_opens_existing_project_unchanged(tmp_path):
    project = create_demo(tmp_path / "demo")
    project.annotate("demo_A01.png", 1, "round", author="me")
    before = project.labels()
    again = create_demo(tmp_path / "demo")
    assert again.labels().equals(before)


def test_demo_classes_differ_in_shape(tmp_path):
    """Elongated objects are elongated: a shape cue a classifier can learn."""
    create_demo(tmp_path / "demo")
    truth = pd.read_csv(tmp_path / "demo" / "ground_truth.csv")
    mask = tifffile.imread(tmp_path / "demo" / "masks" / "demo_A02.tif")
    from svetlana_core.objects import object_table

    table = object_table(mask).merge(truth[truth["image"] == "demo_A02.png"], on="label")
    extent = np.maximum(table["bbox_row_stop"] - table["bbox_row_start"],
                        table["bbox_column_stop"] - table["bbox_column_start"])
    fill = table["area"] / extent**2
    assert fill[table["class"] == "elongated"].max() < fill[table["class"] == "round"].min()
