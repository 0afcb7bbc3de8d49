"""What a CNN "sees" in each object: the features it computes just before its last layer
(the penultimate layer), read from its ONNX graph without torch; and, for projects with no
model yet, the hand-crafted features. Both feed the object map.

The patches are cut exactly as :func:`~svetlana_core.predict.predict_image` cuts them (the same
cropper and batches), so an object's features are those its prediction came from: the last
layer applied to them gives its logits (tests check it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from svetlana_core import io
from svetlana_core.errors import InputError
from svetlana_core.models.inference import ONNX_FILE, OnnxModel, _session
from svetlana_core.predict.backends import ONNX_BATCH_SIZE
from svetlana_core.predict.crop import _batches, _check_inputs, _Cropper, _spec
from svetlana_core.predict.image import _batching, _check_counts, _sorted_table

#: ONNX operators that end a classifier: the features are their first input.
_LAST_LAYERS = ("Gemm", "MatMul")


def _feature_tensor(graph: Any, logits: str) -> str:
    """The name of the tensor the model's last linear layer reads (after a bias ``Add``)."""
    producers = {output: node for node in graph.node for output in node.output}
    node = producers.get(logits)
    if node is not None and node.op_type == "Add":  # MatMul + Add: the bias comes last
        node = next((producers[i] for i in node.input
                     if i in producers and producers[i].op_type == "MatMul"), None)
    if node is None or node.op_type not in _LAST_LAYERS:
        found = "nothing" if node is None else node.op_type
        raise InputError(f"the model's output {logits!r} is made by {found}, not a linear "
                         "layer: its penultimate features cannot be read")
    return node.input[0]


def penultimate(model: OnnxModel, threads: int | None = None) -> OnnxModel:
    """The model with the penultimate-layer features as its output instead of the logits.

    The graph is read from the folder again (its sha256 checked against ``model.json`` as
    :func:`~svetlana_core.models.load_onnx` does) and given that tensor as its output; the
    file on disk is not changed.

    Raises
    ------
    InputError
        A graph that changed since it was loaded, or whose last layer is not linear.
    """
    import hashlib

    import onnx

    path = Path(model.folder) / ONNX_FILE
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != model.meta["onnx"]["sha256"]:
        raise InputError(f"{path} changed since the model was loaded; load it again")
    graph = onnx.load_from_string(data)
    name = _feature_tensor(graph.graph, model._names[1])
    del graph.graph.output[:]
    graph.graph.output.append(onnx.ValueInfoProto(name=name))
    session = _session(graph.SerializeToString(), threads)
    return replace(model, session=session, _names=(model._names[0], name))


def embed_image(
    model: OnnxModel, image: np.ndarray | None, mask: np.ndarray,
    labels: Sequence[int] | None = None, batch_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The penultimate-layer features of the objects of one image.

    Parameters
    ----------
    model : OnnxModel
        From :func:`penultimate` (or a model whose output already is the features).
    image : ndarray, shape (C, rows, columns) or (C, planes, rows, columns), or None
    mask : ndarray of int, shape (rows, columns) or (planes, rows, columns)
    labels : sequence of int, optional
        These objects only (default: every object, by label).
    batch_size : int, optional
        Patches per forward pass (default 64).

    Returns
    -------
    labels : ndarray of int64, shape (objects,)
        Sorted.
    features : ndarray of float32, shape (objects, features)
        Row ``i`` belongs to ``labels[i]``; shape (0, 0) when there is no object.

    Raises
    ------
    InputError
        As :func:`~svetlana_core.predict.predict_image` for the image and mask; a label that
        is not an object of the mask; a batch size that is not a positive integer.
    """
    _check_counts(batch_size=batch_size)
    spec = _spec(model)
    image = None if image is None else np.asarray(image)
    mask = np.asarray(mask)
    image = _check_inputs(spec, image, mask)  # the channels the model was trained on
    table = _sorted_table(mask, None)
    if labels is not None:
        wanted = np.asarray(labels, dtype=np.int64).ravel()
        missing = np.setdiff1d(wanted, table["label"].to_numpy())
        if missing.size:
            raise InputError(f"labels {missing[:10].tolist()} are not objects of the mask "
                             f"({missing.size} missing)")
        table = table[table["label"].isin(wanted)].reset_index(drop=True)

    size, chunk = _batching(spec, None, batch_size or ONNX_BATCH_SIZE, None)
    out = None
    if len(table):
        for rows, batch, _ in _batches(_Cropper(spec, image, mask, table), len(table), size,
                                       chunk):
            values = model.logits(batch).reshape(len(batch), -1)
            if out is None:
                out = np.empty((len(table), values.shape[1]), dtype=np.float32)
            out[rows] = values
    if out is None:
        out = np.empty((0, 0), dtype=np.float32)
    return table["label"].to_numpy(np.int64), out


Files = Mapping[str, tuple[Any, Any]]


def embed_files(model_dir: str | os.PathLike, files: Files) -> pd.DataFrame:
    """``image, label, f0 … f{d-1}``: the penultimate features of every object of every image.

    Parameters
    ----------
    model_dir : path
        A CNN model folder (predicted with ONNX Runtime on the CPU).
    files : mapping
        Image name -> (image path or None, mask path), as
        :func:`svetlana_core.io.folder_files` and ``Project.training_files`` give them. One
        image is in memory at a time.

    Raises
    ------
    InputError
        A random-forest folder (it has no layers), a folder older than ``model.onnx`` (the
        message says how to export it), unreadable files.
    """
    from svetlana_core.models.folder import model_kind
    from svetlana_core.models.inference import load_onnx

    if model_kind(model_dir) == "rf":
        raise InputError(f"model {model_dir} is a random forest, which has no layers to map "
                         "objects by: use the hand-crafted features, or a CNN")
    # load_onnx, not load_predictor: a folder older than model.onnx is refused with how to
    # export it, rather than exported here with torch (3 s, 650 MB in the app's server).
    features = penultimate(load_onnx(model_dir))
    parts = []
    for name, (image_path, mask_path) in files.items():
        image, mask = io.load_pair(image_path, mask_path)
        labels, values = embed_image(features, image, mask)
        part = pd.DataFrame(values, columns=[f"f{k}" for k in range(values.shape[1])])
        parts.append(part.assign(image=name, label=labels))
    return _front(parts)


def handcrafted_files(files: Files) -> pd.DataFrame:
    """``image, label`` and the hand-crafted features
    (:func:`~svetlana_core.objects.object_features`) of every object of every image."""
    from svetlana_core.objects import object_features

    parts = []
    for name, (image_path, mask_path) in files.items():
        image, mask = io.load_pair(image_path, mask_path)
        table = object_features(image, mask)
        parts.append(table.reset_index().assign(image=name))
    return _front(parts)


def _front(parts: list[pd.DataFrame]) -> pd.DataFrame:
    if not parts:
        raise InputError("there are no images to map")
    table = pd.concat(parts, ignore_index=True)
    first = ["image", "label"]
    return table[first + [c for c in table.columns if c not in first]]
