"""A random-forest model predicts like a CNN does: predict_image, predict_many (resumed by its
fingerprint), the CLI and evaluate take its folder; Grad-CAM says it explains CNNs only."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import tifffile

from svetlana_core import predict
from svetlana_core.baseline import load_baseline, train_baseline
from svetlana_core.cli import main
from svetlana_core.errors import InputError
from svetlana_core.objects import object_features
from tests.predict.scenes import scene


def _truth(mask: np.ndarray) -> pd.Series:
    """Big or small: whether an object is larger than the median one."""
    labels, areas = np.unique(mask[mask > 0], return_counts=True)
    return pd.Series(np.where(areas > np.median(areas), "big", "small"), index=labels)


@pytest.fixture(scope="module")
def forest_dir(tmp_path_factory):
    image, mask = scene(n=40, size=160, seed=3)
    features = object_features(image, mask)
    model = train_baseline(features, list(_truth(mask)[features.index]), ["big", "small"],
                           n_estimators=20, seed=0)
    return model.save(tmp_path_factory.mktemp("rf") / "rf")


@pytest.fixture
def folder(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for k, well in enumerate(("A01", "A02", "B01")):
        image, mask = scene(n=25, size=128, seed=10 + k)
        tifffile.imwrite(images / f"{well}.tif", image[0])
        tifffile.imwrite(images / f"{well}_masks.tif", mask)
    return images


def test_predict_image_classifies_every_object_from_its_features(forest_dir):
    model = load_baseline(forest_dir)
    image, mask = scene(n=25, size=128, seed=7)
    result = predict.predict_image(model, image, mask)
    expected = model.predict_proba(object_features(image, mask))
    np.testing.assert_allclose(result.objects[["p_big", "p_small"]], expected, atol=1e-6)
    assert result.objects["class"].tolist() == model.predict(object_features(image, mask))
    assert result.classes == ("big", "small")
    # The class map paints each object with its class index + 1.
    for label, name in zip(result.objects["label"], result.objects["class"]):
        assert set(np.unique(result.class_map[mask == label])) == {
            1 + ["big", "small"].index(name)}
    with pytest.raises(InputError, match=r"image has spatial shape \(64, 64\) but mask"):
        predict.predict_image(model, image[:, :64, :64], mask)


def test_predict_many_writes_outputs_and_resumes_with_a_forest(forest_dir, folder, tmp_path):
    out = tmp_path / "out"
    first = predict.predict_many(forest_dir, folder, out)
    assert first.engine == "random forest (CPU)" and first.failed == {}
    assert len(first.done) == 3 and len(first.objects) == 75
    again = predict.predict_many(forest_dir, folder, out)
    assert again.done == [] and again.skipped == first.done
    assert predict.model_fingerprint(forest_dir) == predict.model_fingerprint(
        load_baseline(forest_dir))


def test_the_cli_predicts_and_evaluates_with_a_forest_and_gradcam_says_why_not(
        forest_dir, folder, tmp_path, capsys):
    assert main(["predict", "--model", str(forest_dir), "--images", str(folder), "--out",
                 str(tmp_path / "out"), "--quiet"]) == 0
    line = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert line["done"] == 3 and line["engine"] == "random forest (CPU)"
    objects = pd.read_csv(tmp_path / "out" / "objects.csv")
    labels = objects.assign(**{"class": [
        _truth(tifffile.imread(folder / name.replace(".tif", "_masks.tif")))[label]
        for name, label in zip(objects["image"], objects["label"])]})
    labels[["image", "label", "class"]].to_csv(tmp_path / "labels.csv", index=False)
    assert main(["evaluate", "--model", str(forest_dir), "--images", str(folder),
                 "--masks", str(folder), "--labels", str(tmp_path / "labels.csv")]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["n"] == 75 and scores["accuracy"] == pytest.approx(
        (objects["class"] == labels["class"]).mean())
    code = main(["gradcam", "--model", str(forest_dir), "--image", str(folder / "A01.tif"),
                 "--mask", str(folder / "A01_masks.tif"), "--label", "1", "--out",
                 str(tmp_path / "heat.png")])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {forest_dir} is a random forest: Grad-CAM explains a CNN's decision on a "
        "patch (a forest's feature importances are in its model.json)")
