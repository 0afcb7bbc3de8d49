"""The penultimate-layer features of a CNN, read from its ONNX graph (the object map's axes):
the model's last layer applied to them gives back its predictions."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from svetlana_core import io
from svetlana_core.errors import InputError
from svetlana_core.models import load_predictor
from svetlana_core.predict import predict_image
from svetlana_core.predict.embed import (embed_files, embed_image, handcrafted_files,
                                         penultimate)
from tests.builders import cnn_model_folder, three_disks


def _last_layer(folder):
    """Weights and bias of the graph's final Gemm."""
    graph = onnx.load(folder / "model.onnx").graph
    gemm = [node for node in graph.node if node.op_type == "Gemm"][-1]
    weights = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    w, b = weights[gemm.input[1]], weights[gemm.input[2]]
    transposed = any(a.name == "transB" and a.i == 1 for a in gemm.attribute)
    return (w.T if transposed else w), b


def test_the_last_layer_on_the_features_gives_the_predictions(tmp_path):
    folder = cnn_model_folder(tmp_path / "m")
    image, mask = three_disks()
    model = load_predictor(folder, device="cpu")
    labels, features = embed_image(penultimate(model), image[None], mask)
    assert labels.tolist() == [3, 7, 42]
    assert features.dtype == np.float32 and features.shape[0] == 3
    w, b = _last_layer(folder)
    logits = features @ w + b
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    predicted = predict_image(model, image[None], mask).objects
    np.testing.assert_allclose(expected, predicted.filter(like="p_").to_numpy(), atol=1e-5)


def test_some_objects_only(tmp_path):
    model = penultimate(load_predictor(cnn_model_folder(tmp_path / "m"), device="cpu"))
    image, mask = three_disks()
    every = embed_image(model, image[None], mask)[1]
    labels, some = embed_image(model, image[None], mask, labels=[42, 3])
    assert labels.tolist() == [3, 42]
    np.testing.assert_array_equal(some, every[[0, 2]])


@pytest.mark.parametrize("kwargs, message", [
    ({"labels": [3, 5, 99]}, r"labels \[5, 99\] are not objects of the mask \(2 missing\)"),
    ({"batch_size": 0}, r"batch_size must be a positive integer; got 0"),
])
def test_objects_that_are_not_there_and_bad_batches_are_refused(tmp_path, kwargs, message):
    model = penultimate(load_predictor(cnn_model_folder(tmp_path / "m"), device="cpu"))
    image, mask = three_disks()
    with pytest.raises(InputError, match=message):
        embed_image(model, image[None], mask, **kwargs)


def test_files_give_one_row_per_object_of_each_image(tmp_path):
    image, mask = three_disks()
    for stem in ("a", "b"):
        io.write_tiff(tmp_path / f"{stem}.tif", image)
        io.write_tiff(tmp_path / f"{stem}_mask.tif", mask)
    files = io.folder_files(tmp_path)
    table = embed_files(cnn_model_folder(tmp_path / "m"), files)
    assert table[["image", "label"]].values.tolist() == [
        ["a.tif", 3], ["a.tif", 7], ["a.tif", 42], ["b.tif", 3], ["b.tif", 7], ["b.tif", 42]]
    assert table.columns[2] == "f0"
    hand = handcrafted_files(files)
    assert hand[["image", "label"]].values.tolist() == table[["image", "label"]].values.tolist()
    assert hand.loc[0, "area"] == (mask == 3).sum()


def test_a_random_forest_has_no_layers_to_map_by(tmp_path):
    from svetlana_core.baseline import train_from_labels
    import pandas as pd

    image, mask = three_disks()
    io.write_tiff(tmp_path / "a.tif", image)
    io.write_tiff(tmp_path / "a_mask.tif", mask)
    files = io.folder_files(tmp_path)
    labels = pd.DataFrame({"image": "a.tif", "label": [3, 7, 42], "class": ["x", "y", "x"]})
    train_from_labels(files, labels, val_fraction=0.0, out_dir=tmp_path / "rf")
    with pytest.raises(InputError, match=r"is a random forest, which has no layers"):
        embed_files(tmp_path / "rf", files)


def test_a_folder_older_than_its_graph_is_refused_not_exported_here(tmp_path):
    """The app's server must not import torch to export an old folder for the map."""
    import json

    folder = cnn_model_folder(tmp_path / "m")
    meta = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**meta, "onnx": None}))
    image, mask = three_disks()
    io.write_tiff(tmp_path / "a.tif", image)
    io.write_tiff(tmp_path / "a_mask.tif", mask)
    with pytest.raises(InputError, match=r"has no 'onnx' record.*export-onnx"):
        embed_files(folder, io.folder_files(tmp_path))
    assert json.loads((folder / "model.json").read_text())["onnx"] is None  # not exported
