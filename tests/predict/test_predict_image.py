"""svetlana_core.predict.image: one image's class map, object table and confidence map,
chunked or not, for every kind of model and input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from svetlana_core import models, patches, predict
from svetlana_core.errors import InputError
from svetlana_core.objects import object_table
from tests.predict.scenes import CLASSES, make_model_folder, scene


def test_class_map_and_table_agree_object_by_object(model):
    image, mask = scene()
    result = predict.predict_image(model, image, mask)
    table = result.objects
    assert table["label"].tolist() == sorted(np.unique(mask[mask > 0]).tolist())
    assert result.class_map.dtype == np.uint8 and result.class_map.shape == mask.shape
    assert table["class"].nunique() >= 2, "the test needs objects of several classes"
    index = {name: k for k, name in enumerate(CLASSES)}
    for label, name in zip(table["label"], table["class"]):
        assert np.all(result.class_map[mask == label] == index[name] + 1), label
    assert np.all(result.class_map[mask == 0] == 0)
    geometry = object_table(mask)
    pd.testing.assert_frame_equal(table[geometry.columns], geometry)
    expected = ["label", *predict.prediction_columns(CLASSES)]
    assert table.columns[: len(expected)].tolist() == expected
    assert table.columns[-1] == "area"


def test_chunked_and_unchunked_are_identical(model):
    image, mask = scene(n=40)
    whole = predict.predict_image(model, image, mask, batch_size=16, chunk_objects=4096)
    for chunk in (7, 16, None):
        chunked = predict.predict_image(model, image, mask, batch_size=16, chunk_objects=chunk)
        pd.testing.assert_frame_equal(whole.objects, chunked.objects, check_exact=True)
        np.testing.assert_array_equal(whole.class_map, chunked.class_map)


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_probabilities_are_the_networks_on_the_trained_patches(backend, model, torch_model):
    image, mask = scene()
    used = model if backend == "onnx" else torch_model
    result = predict.predict_image(used, image, mask)
    cut = patches.extract(image, mask, size=32, mode="context", normalisation="percentile")
    np.testing.assert_array_equal(predict.object_patches(used, image, mask), cut)
    with torch.inference_mode():  # the unfolded network, in torch
        expected = torch.softmax(torch_model.module(torch.from_numpy(cut)), dim=1).numpy()
    probabilities = result.objects[[f"p_{c}" for c in CLASSES]].to_numpy()
    np.testing.assert_allclose(probabilities, expected, rtol=1e-5, atol=1e-6)


def test_uncertainty_columns_follow_from_the_probabilities(model):
    image, mask = scene()
    table = predict.predict_image(model, image, mask).objects
    p = table[[f"p_{c}" for c in CLASSES]].to_numpy()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    ordered = np.sort(p, axis=1)
    np.testing.assert_array_equal(table["confidence"], ordered[:, -1])
    np.testing.assert_array_equal(table["margin"], ordered[:, -1] - ordered[:, -2])
    np.testing.assert_allclose(table["entropy"], -(p * np.log(p)).sum(axis=1), rtol=1e-12)
    assert (table["class"] == np.asarray(CLASSES)[p.argmax(axis=1)]).all()


def test_confidence_map_holds_each_objects_confidence(model):
    image, mask = scene()
    result = predict.predict_image(model, image, mask)
    confidence = result.confidence_map
    assert confidence.dtype == np.float32 and confidence.shape == mask.shape
    assert np.all(confidence[mask == 0] == 0)
    for label, value in zip(result.objects["label"], result.objects["confidence"]):
        assert np.all(confidence[mask == label] == np.float32(value))


def test_huge_sparse_labels_use_the_sorted_lookup(model):
    image, small = scene(n=6, size=64, labels=[1, 2, 3, 4, 5, 6])
    huge = np.asarray([0, 3, 7, 42, 10**9, 10**12, 2**40 + 5], dtype=np.int64)
    mask = huge[small]  # same objects, labels far beyond what a look-up table could hold
    result = predict.predict_image(model, image, mask)
    reference = predict.predict_image(model, image, small)
    np.testing.assert_array_equal(result.class_map, reference.class_map)
    np.testing.assert_array_equal(result.confidence_map, reference.confidence_map)
    assert result.objects["label"].tolist() == huge[1:].tolist()


def test_empty_mask_gives_an_empty_table(model):
    image = np.zeros((1, 20, 20), np.uint8)
    result = predict.predict_image(model, image, np.zeros((20, 20), np.uint16))
    assert len(result.objects) == 0
    assert list(result.objects.columns[:3]) == ["label", "class", "confidence"]
    assert not result.class_map.any() and not result.confidence_map.any()


def test_many_classes_give_a_uint16_class_map(tmp_path):
    classes = [f"c{k}" for k in range(300)]
    model = models.load_model(make_model_folder(tmp_path / "m", classes=classes))
    image, mask = scene(n=9, size=64)
    result = predict.predict_image(model, image, mask)
    assert result.class_map.dtype == np.uint16
    index = {name: k for k, name in enumerate(classes)}
    for label, name in zip(result.objects["label"], result.objects["class"]):
        assert np.all(result.class_map[mask == label] == index[name] + 1)


def test_3d_mask_only_model(tmp_path):
    model = models.load_model(
        make_model_folder(tmp_path / "m3", image_channels=0, patch_size=(8, 16, 16))
    )
    planes, rows, columns = np.indices((12, 40, 40))
    mask = np.zeros((12, 40, 40), np.uint16)
    balls = ((6, 10, 10, 4), (3, 30, 25, 5), (10, 5, 33, 3))
    for label, (p, r, c, radius) in zip((5, 9, 11), balls):
        mask[(planes - p) ** 2 + (rows - r) ** 2 + (columns - c) ** 2 <= radius**2] = label
    result = predict.predict_image(model, None, mask, chunk_objects=2)
    assert result.objects["label"].tolist() == [5, 9, 11]
    assert "centroid_plane" in result.objects.columns
    np.testing.assert_array_equal(
        predict.object_patches(model, None, mask), patches.extract(None, mask, size=(8, 16, 16))
    )
    for label, name in zip(result.objects["label"], result.objects["class"]):
        assert np.all(result.class_map[mask == label] == CLASSES.index(name) + 1)


def test_table_given_by_the_caller_is_used(model):
    image, mask = scene(n=12, size=64)
    table = object_table(mask)
    shuffled = table.sample(frac=1, random_state=0)
    a = predict.predict_image(model, image, mask, table=shuffled)
    b = predict.predict_image(model, image, mask)
    pd.testing.assert_frame_equal(a.objects, b.objects)


@pytest.mark.parametrize(
    "image_shape, mask_shape, match",
    [
        ((3, 32, 32), (32, 32), r"image has 3 channel\(s\).*trained on 1"),
        ((1, 32, 30), (32, 32), r"image has spatial shape \(32, 30\) but mask has shape"),
        ((1, 4, 32, 32), (4, 32, 32), r"mask has shape \(4, 32, 32\) \(3D\) but the model"),
        (None, (32, 32), r"no image was given but the model expects 1 image channel"),
    ],
)
def test_inputs_that_do_not_fit_the_model(model, image_shape, mask_shape, match):
    image = None if image_shape is None else np.zeros(image_shape, np.uint8)
    mask = np.zeros(mask_shape, np.uint8)
    with pytest.raises(InputError, match=match):
        predict.predict_image(model, image, mask)


@pytest.mark.parametrize("argument", ["batch_size", "chunk_objects"])
@pytest.mark.parametrize("value", [0, -3, 2.5, True])
def test_bad_batch_arguments(model, argument, value):
    image, mask = scene(n=4, size=32)
    with pytest.raises(InputError, match=f"{argument} must be a positive integer"):
        predict.predict_image(model, image, mask, **{argument: value})


def test_mask_only_model_refuses_an_image(tmp_path):
    model = models.load_model(make_model_folder(tmp_path / "m", image_channels=0))
    image, mask = scene(n=4, size=32)
    with pytest.raises(InputError, match="reads the mask only; pass image=None"):
        predict.predict_image(model, image, mask)



def test_torchvision_networks_predict_like_their_module(tmp_path):
    model = models.load_model(make_model_folder(tmp_path / "r", arch="resnet18"))
    image, mask = scene(n=6, size=64)
    result = predict.predict_image(model, image, mask)
    with torch.inference_mode():
        logits = model.module(torch.from_numpy(predict.object_patches(model, image, mask)))
    probabilities = result.objects[[f"p_{c}" for c in CLASSES]].to_numpy()
    np.testing.assert_allclose(probabilities, torch.softmax(logits, 1).numpy(), atol=1e-5)
