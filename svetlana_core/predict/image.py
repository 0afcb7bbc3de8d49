"""Predict every object of one image: class map, per-object table, confidence map."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from svetlana_core.errors import InputError
from svetlana_core.objects import object_table
from svetlana_core.objects.checks import check_mask
from svetlana_core.predict.backends import _freed_memory_kept, is_forest, runner_for
from svetlana_core.predict.crop import (
    _batches,
    _check_inputs,
    _Cropper,
    _PatchSpec,
    _spec,
)

if TYPE_CHECKING:
    import torch

    from svetlana_core.models import LoadedModel
    from svetlana_core.models.inference import OnnxModel

#: Default size of a chunk of patches (see :func:`predict_image`).
CHUNK_BYTES = 16 << 20



def prediction_columns(classes: Sequence[str]) -> list[str]:
    """Columns that :func:`predict_image` adds to the object table, in order.

    Examples
    --------
    >>> prediction_columns(["live", "dead"])
    ['class', 'confidence', 'p_live', 'p_dead', 'margin', 'entropy']
    """
    return ["class", "confidence", *(f"p_{name}" for name in classes), "margin", "entropy"]


def _paint(mask: np.ndarray, labels: np.ndarray, values: np.ndarray, dtype) -> np.ndarray:
    """Map every pixel of ``mask`` to the value of its label (0 on background and unknown)."""
    dtype = np.dtype(dtype)
    if labels.size == 0:
        return np.zeros(mask.shape, dtype=dtype)
    largest = int(labels.max())
    if largest < max(mask.size, 2**20):
        # The table is never bigger than the mask: one gather, ~0.1 s for 64 M pixels.
        lut = np.zeros(largest + 1, dtype=dtype)
        lut[labels] = values
        return lut[mask]
    # Huge sparse labels (e.g. 10**12): look them up among the sorted labels instead.
    order = np.argsort(labels, kind="stable")
    keys = np.concatenate([[0], labels[order].astype(np.uint64)])
    lookup = np.concatenate([[0], values[order]]).astype(dtype)
    position = np.searchsorted(keys, mask.astype(np.uint64, copy=False))
    position[keys[np.minimum(position, keys.size - 1)] != mask] = 0
    return lookup[position]


def class_map_dtype(n_classes: int) -> np.dtype:
    """uint8 when class index + 1 fits (up to 254 classes), else uint16."""
    return np.dtype(np.uint8 if n_classes <= 254 else np.uint16)


@dataclass(frozen=True, eq=False)
class Prediction:
    """The prediction for every object of one image.

    Attributes
    ----------
    class_map : ndarray, shape of the mask, uint8 (uint16 past 254 classes)
        0 on background, ``k + 1`` on the pixels of an object of class index ``k``.
    objects : pandas.DataFrame
        One row per object, sorted by label: ``label``, ``class`` (name), ``confidence`` (top
        probability), ``p_<class>`` for every class (softmax probabilities, summing to 1),
        ``margin`` (top probability minus the second), ``entropy`` (of the probabilities, in
        nats; 0 = certain, ln K = uniform), then the centroid and bounding-box columns of
        :func:`~svetlana_core.objects.object_table` and ``area``.
    classes : tuple of str
        Class names in index order.
    timings : dict of str to float
        Seconds spent in ``objects`` (object table), ``normalise`` (estimating the image's
        percentiles), ``crop`` (normalising bands and cutting patches), ``forward`` (the
        module calls only; on a GPU the calls are asynchronous, so it is mostly counted in
        ``collect``), ``collect`` (softmax and copies back), ``maps`` (class map and table),
        ``total``.
    mask : ndarray
        The mask the prediction was made on (a reference, not a copy), for
        :attr:`confidence_map`.
    """

    class_map: np.ndarray
    objects: pd.DataFrame
    classes: tuple[str, ...]
    timings: dict[str, float] = field(default_factory=dict)
    mask: np.ndarray | None = field(default=None, repr=False)

    @cached_property
    def confidence_map(self) -> np.ndarray:
        """float32 map, shape of the mask: each object's confidence on its pixels, 0 elsewhere.

        Built from the mask on first access (a 256 MB array for 8000 × 8000), then kept.
        """
        return _paint(
            self.mask,
            self.objects["label"].to_numpy(),
            self.objects["confidence"].to_numpy(np.float32),
            np.float32,
        )


def _uncertainty(probabilities: np.ndarray) -> tuple[np.ndarray, ...]:
    """Class index, confidence, margin and entropy (nats) of probability rows (N, K)."""
    p = probabilities.astype(np.float64)
    index = p.argmax(axis=1)
    confidence = p.max(axis=1)
    if p.shape[1] > 1:
        second = np.partition(p, p.shape[1] - 2, axis=1)[:, -2]
    else:
        second = np.zeros_like(confidence)
    log = np.log(p, out=np.zeros_like(p), where=p > 0)
    entropy = -(p * log).sum(axis=1)
    return index, confidence, confidence - second, entropy


def predict_image(
    model: OnnxModel | LoadedModel,
    image: np.ndarray | None,
    mask: np.ndarray,
    batch_size: int | None = None,
    chunk_objects: int | None = None,
    device: str | torch.device | None = None,
    table: pd.DataFrame | None = None,
) -> Prediction:
    """Classify every object of one image.

    Parameters
    ----------
    model : OnnxModel, LoadedModel or BaselineModel
        From :func:`svetlana_core.models.load_predictor` (ONNX Runtime on the CPU, no torch)
        or :func:`svetlana_core.models.load_model` (torch, its ``module`` in eval mode); or a
        random forest (:func:`svetlana_core.baseline.load_baseline`), which classifies the
        objects' features (:func:`~svetlana_core.objects.object_features`) instead of patches.
    image : ndarray, shape (C, rows, columns) or (C, planes, rows, columns), or None
        Channel-first image, any integer or float dtype, with the model's number of channels;
        None for a mask-only model. Not modified.
    mask : ndarray of int, shape (rows, columns) or (planes, rows, columns)
        Label mask, 0 = background; labels need not be contiguous. Not modified; the returned
        prediction keeps a reference to it for :attr:`Prediction.confidence_map`.
    batch_size : int, optional
        Patches per forward pass (defaults in :mod:`~svetlana_core.predict.backends`): 64 with
        ONNX Runtime; with torch 16 on a CPU, where a batch whose activation maps stay in the
        caches runs faster than a big one (the default CNN on 64 × 64 patches: 0.45-0.53 ms a
        patch with 16, 0.45-1.08 with 32, 1.34-1.41 with 256; bench/RESULTS.md
        "## prediction"), 256 on a GPU.
    chunk_objects : int, optional
        Objects whose patches are cut at a time. Default: as many as fill
        :data:`CHUNK_BYTES` (16 MiB) of patches, rounded down to whole batches (512 for
        64 × 64 patches with one image channel); chunks that size reuse freed memory, bigger
        ones cost fresh pages every time (0.31 s against 0.19 s of cropping for 10,000
        objects). Memory holds one chunk and one batch of patches. The result does not depend
        on it.
    device : str or torch.device, optional
        A torch model: where to run the network, default the model's device; it runs as a
        copy (BatchNorm folded into the convolutions) on that device, the model itself is
        neither changed nor moved. An ONNX model runs on the CPU only (None or "cpu").
    table : pandas.DataFrame, optional
        :func:`~svetlana_core.objects.object_table` of ``mask``, when the caller has it.

    Returns
    -------
    Prediction

    Raises
    ------
    InputError
        If the mask is not an integer 2D/3D array, the image's channels or shape do not fit
        the model or the mask, or batch_size / chunk_objects are not positive integers.

    Examples
    --------
    >>> prediction = predict_image(model, image, mask)          # doctest: +SKIP
    >>> prediction.objects[["label", "class", "confidence"]]     # doctest: +SKIP
    """
    tic = time.perf_counter()
    _check_counts(batch_size=batch_size, chunk_objects=chunk_objects)
    image = None if image is None else np.asarray(image)
    mask = np.asarray(mask)
    timings = {"objects": 0.0, "normalise": 0.0, "crop": 0.0, "forward": 0.0, "collect": 0.0}
    if is_forest(model):
        classes = tuple(model.classes)
        check_mask(mask, "mask")
        table = _sorted_table(mask, table)
        timings["objects"] = time.perf_counter() - tic
        probabilities = _forest_probabilities(model, image, mask, table, timings)
    else:
        spec = _spec(model)
        classes = spec.classes
        image = _check_inputs(spec, image, mask)  # the channels the model was trained on
        table = _sorted_table(mask, table)
        timings["objects"] = time.perf_counter() - tic
        probabilities = _network_probabilities(model, spec, image, mask, table, device,
                                               (batch_size, chunk_objects), timings)

    broken = ~np.isfinite(probabilities).all(axis=1)
    if broken.any():  # NaN or inf weights: every object would be called the first class
        raise InputError(f"the model gives non-finite probabilities for {int(broken.sum())} "
                         "of the objects: its weights hold NaN or infinite values (retrain it)")
    mark = time.perf_counter()
    objects, index = _objects(classes, table, probabilities)
    class_map = _paint(mask, objects["label"].to_numpy(), index + 1,
                       class_map_dtype(len(classes)))
    timings["maps"] = time.perf_counter() - mark
    timings["total"] = time.perf_counter() - tic
    return Prediction(
        class_map=class_map, objects=objects, classes=classes, timings=timings, mask=mask
    )


def _network_probabilities(
    model: OnnxModel | LoadedModel, spec: _PatchSpec, image: np.ndarray | None,
    mask: np.ndarray, table: pd.DataFrame, device: Any,
    counts: tuple[int | None, int | None], timings: dict[str, float],
) -> np.ndarray:
    """Softmax (N, K) of the network on every object's patch, cut and run batch by batch."""
    runner = runner_for(model, device)
    batch_size, chunk_objects = _batching(spec, runner, *counts)
    probabilities = np.empty((len(table), len(spec.classes)), dtype=np.float32)
    if len(table):
        mark = time.perf_counter()
        cropper = _Cropper(spec, image, mask, table)
        timings["normalise"] = time.perf_counter() - mark
        batches = _batches(cropper, len(table), batch_size, chunk_objects)
        with _freed_memory_kept():
            runner.forward(batches, probabilities, chunk_objects, timings)
    return probabilities


def _forest_probabilities(model: Any, image: np.ndarray | None, mask: np.ndarray,
                          table: pd.DataFrame, timings: dict[str, float]) -> np.ndarray:
    """Class probabilities (N, K) of a random forest on every object's features (the
    features stand for the crop, the forest for the forward pass in ``timings``)."""
    if image is not None and image.shape[1:] != mask.shape:
        raise InputError(
            f"image has spatial shape {image.shape[1:]} but mask has shape {mask.shape}")
    if not len(table):
        return np.empty((0, len(model.classes)))
    from svetlana_core.objects import object_features

    mark = time.perf_counter()
    features = object_features(image, mask, table["label"].tolist())
    timings["crop"] = time.perf_counter() - mark
    mark = time.perf_counter()
    probabilities = model.predict_proba(features)  # float64: tree votes, written exactly
    timings["forward"] = time.perf_counter() - mark
    return probabilities


def _check_counts(**counts: int | None) -> None:
    """Refuse a count that is given but is not a positive integer (bools included)."""
    for name, value in counts.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(f"{name} must be a positive integer; got {value!r}")


def _sorted_table(mask: np.ndarray, table: pd.DataFrame | None) -> pd.DataFrame:
    """The object table of ``mask`` sorted by label, with a fresh 0..N-1 index."""
    if table is None:
        table = object_table(mask)
    elif not table["label"].is_monotonic_increasing:
        table = table.sort_values("label", kind="stable")
    return table.reset_index(drop=True)


def _batching(
    spec: _PatchSpec, runner: Any, batch_size: int | None, chunk_objects: int | None
) -> tuple[int, int]:
    """The batch size and chunk size :func:`predict_image` uses when they are not given."""
    if batch_size is None:
        batch_size = runner.batch_size
    if chunk_objects is None:
        patch_bytes = 4 * (spec.image_channels + 1) * int(np.prod(spec.size))
        chunk_objects = max(1, CHUNK_BYTES // patch_bytes // batch_size) * batch_size
    return batch_size, chunk_objects


def _objects(
    classes: Sequence[str], table: pd.DataFrame, probabilities: np.ndarray
) -> tuple[pd.DataFrame, np.ndarray]:
    """The per-object table of :class:`Prediction` and each object's class index.

    ``table`` is the sorted object table, ``probabilities`` its rows' softmax (N, K).
    """
    index, confidence, margin, entropy = _uncertainty(probabilities)
    names = np.asarray(classes, dtype=object)
    columns: dict[str, Any] = {
        "label": table["label"].to_numpy(np.int64),
        "class": names[index] if len(table) else np.empty(0, dtype=object),
        "confidence": confidence,
    }
    for k, name in enumerate(classes):
        columns[f"p_{name}"] = probabilities[:, k].astype(np.float64)
    columns["margin"] = margin
    columns["entropy"] = entropy
    geometry = [c for c in table.columns if c not in ("label", "area")]
    objects = pd.concat([pd.DataFrame(columns), table[geometry], table[["area"]]], axis=1)
    return objects, index
