"""Predict the class of every object of an image, or of a whole folder or plate of images.

:func:`predict_image` classifies all the objects of one image with a trained model (a
:class:`~svetlana_core.training.LoadedModel`) and returns a :class:`Prediction`: a class map (the
mask with each object painted with its class index + 1), a per-object table with the class, its
probabilities and uncertainty measures, and a confidence map.
:func:`predict_many` does that for many image/mask files, locally or on a Dask cluster, writes
one set of outputs per image and the combined tables, and resumes where a previous run stopped.

How it stays fast and bounded in memory
---------------------------------------
* Patches are cut ``chunk_objects`` objects at a time, so at most one chunk of patches (plus
  one batch) is held, whatever the number of objects: 10,000 patches of 64 × 64 would take
  328 MB, a chunk of 2048 takes 67 MB. The percentiles are estimated once per image and applied
  to the patches, not to a float32 copy of the whole image (see :class:`_Cropper`).
* The network sees batches of exactly ``batch_size`` patches in object order, whatever
  ``chunk_objects`` is, so chunked and unchunked runs give bit-identical probabilities.
* The class map is one look-up-table gather over the mask (``lut[mask]``), or a
  ``searchsorted`` when the labels are so large that a table would outgrow the mask. The
  confidence map is built the same way, only when it is first asked for.
* On a GPU the batches go through pinned memory with non-blocking copies, and the
  probabilities come back once per chunk.

Outputs of :func:`predict_many` (``out_dir``)
---------------------------------------------
``class_maps/<stem>.tif``
    uint8 (uint16 past 254 classes) class map, zlib TIFF, 0 = background, k = class index + 1;
    the TIFF description holds ``{"classes": [...], "background": 0, ...}``.
``confidence/<stem>.tif``
    float32 map of each object's top probability, 0 on background.
``objects/<stem>.csv``
    The per-object table of the image (columns below, with ``image`` and ``well`` first).
``done/<stem>.json``
    Written last: the model fingerprint and the input files' size and modification time. An
    image whose marker matches the model and inputs, and whose three outputs exist, is skipped.
``objects.csv``, ``objects.parquet``
    All objects of all images: ``image, well, label, class, confidence, p_<class>…, margin,
    entropy, centroid_…, bbox_…, area``.
``counts_per_image.csv``, ``counts_per_well.csv``, ``results.xlsx``
    Counts and fractions per image and per well (:mod:`svetlana_core.stats`; the plate layout is
    the smallest that holds the wells read from the file names), and a workbook with the tables.
"""

from __future__ import annotations

import copy
import ctypes
import glob
import hashlib
import json
import os
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

# Idle OpenMP threads sleep instead of spinning (as in training.py): on a CPU shared with other
# processes, spinning threads slow the network several times. Effective only before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.utils.fusion import fuse_conv_bn_eval  # noqa: E402

from svetlana_core import io, patches, stats  # noqa: E402
from svetlana_core.errors import InputError  # noqa: E402
from svetlana_core.objects import object_table  # noqa: E402

if TYPE_CHECKING:  # training imports torch models; predict only needs the loaded result
    from svetlana_core.training import LoadedModel

__all__ = [
    "ManyResult",
    "Prediction",
    "class_map_dtype",
    "model_fingerprint",
    "object_patches",
    "predict_image",
    "predict_many",
    "prediction_columns",
]

#: Above this many objects the combined workbook leaves out the per-object sheet: openpyxl
#: writes 1,600-4,500 such rows a second here (30,000 objects took 6.8 s, longer than
#: predicting them); objects.csv and objects.parquet always hold them all.
XLSX_MAX_OBJECTS = 5_000

#: Default batch sizes of :func:`predict_image` (see its docstring).
CPU_BATCH_SIZE = 16
GPU_BATCH_SIZE = 256
#: Default size of a chunk of patches (see :func:`predict_image`).
CHUNK_BYTES = 16 << 20

_SPATIAL_AXES = {2: ("row", "column"), 3: ("plane", "row", "column")}


# --------------------------------------------------------------------------- the model's view


@dataclass(frozen=True)
class _PatchSpec:
    """How a model wants its patches cut, read from its ``model.json``."""

    size: tuple[int, ...]
    mode: str
    dilation: int
    normalisation: str
    image_channels: int
    spatial_dims: int
    classes: tuple[str, ...]


def _spec(model: LoadedModel) -> _PatchSpec:
    meta = model.meta
    try:
        size = tuple(int(s) for s in (getattr(model, "patch_size", None) or meta["patch_size"]))
        spec = _PatchSpec(
            size=size,
            mode=str(meta.get("patch_mode", "context")),
            dilation=int(meta.get("dilation", 2)),
            normalisation=str(meta.get("normalisation", "percentile")),
            image_channels=int(meta["image_channels"]),
            spatial_dims=int(meta.get("spatial_dims", len(size))),
            classes=tuple(str(c) for c in (getattr(model, "classes", None) or meta["classes"])),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise InputError(f"model.json lacks or has a bad value for {error}") from None
    if spec.normalisation not in patches.NORMALISATIONS:
        raise InputError(
            f"model normalisation {spec.normalisation!r} is not one of "
            f"{list(patches.NORMALISATIONS)}"
        )
    if len(spec.size) != spec.spatial_dims:
        raise InputError(
            f"model patch_size {list(spec.size)} does not have {spec.spatial_dims} axes"
        )
    return spec


def _check_inputs(spec: _PatchSpec, image: np.ndarray | None, mask: np.ndarray) -> None:
    mask = np.asarray(mask)
    if mask.ndim != spec.spatial_dims:
        raise InputError(
            f"mask has shape {mask.shape} ({mask.ndim}D) but the model classifies "
            f"{spec.spatial_dims}D objects"
        )
    if image is None:
        if spec.image_channels:
            raise InputError(
                f"no image was given but the model expects {spec.image_channels} image "
                "channel(s) beside the mask"
            )
        return
    if spec.image_channels == 0:
        raise InputError(
            f"image has {image.shape[0]} channel(s) but the model reads the mask only; "
            "pass image=None"
        )
    if image.ndim != spec.spatial_dims + 1:
        raise InputError(
            f"image has shape {image.shape}; expected channel-first "
            f"(C, {', '.join(_SPATIAL_AXES[spec.spatial_dims])})"
        )
    if image.shape[0] != spec.image_channels:
        raise InputError(
            f"image has {image.shape[0]} channel(s) (shape {image.shape}) but the model was "
            f"trained on {spec.image_channels}"
        )
    if image.shape[1:] != mask.shape:
        raise InputError(
            f"image has spatial shape {image.shape[1:]} but mask has shape {mask.shape}"
        )


class _Cropper:
    """Cuts object patches exactly as the model was trained, chunk by chunk.

    With ``"percentile"`` normalisation the percentiles are estimated once per image (the same
    strided estimate as :func:`patches.normalise`) and each chunk is cut from the raw image and
    scaled patch by patch, instead of normalising the whole image to float32 first: for an
    8000 × 8000 image that saves 256 MB and a pass over 64 M pixels. The result is bit for bit
    that of ``patches.extract(..., normalisation="percentile")`` (tests check it): the same
    float32 arithmetic, then, as ``extract`` does, zeros outside the image and, in
    ``"masked"`` mode, the product with the dilated object mask. ``"minmax"`` and ``"none"``
    go straight to ``extract``.
    """

    def __init__(
        self, spec: _PatchSpec, image: np.ndarray | None, mask: np.ndarray, table: pd.DataFrame
    ) -> None:
        self.spec = spec
        self.image = image
        self.mask = mask
        self.table = table
        self.labels = table["label"].to_numpy()
        centroids = table[[f"centroid_{a}" for a in _SPATIAL_AXES[spec.spatial_dims]]]
        # Rounded half up, as extract does.
        centres = np.floor(centroids.to_numpy(np.float64) + 0.5).astype(np.intp)
        self.corners = centres - np.asarray(spec.size) // 2
        self.value_range = None
        if image is not None and spec.normalisation == "percentile":
            # patches.normalise's own estimate; private there, see the report asking for a
            # public one (or a value_range argument to extract, which would make this class
            # a plain loop over extract).
            self.value_range = patches.percentile_range(image, (1.0, 99.8))

    def crop(self, start: int, stop: int) -> np.ndarray:
        """Patches of table rows ``start:stop``, shape (n, C + 1, *size), float32."""
        spec = self.spec
        labels = self.labels[start:stop]
        if self.value_range is None:
            return patches.extract(
                self.image, self.mask, labels=labels, size=spec.size, mode=spec.mode,
                normalisation=spec.normalisation, dilation=spec.dilation, table=self.table,
            )
        cut = patches.extract(
            self.image, self.mask, labels=labels, size=spec.size, mode="context",
            normalisation="none", table=self.table,
        )
        values = cut[:, :-1]
        shape = (1, -1) + (1,) * spec.spatial_dims
        low, span = self.value_range
        values -= low.reshape(shape)
        values /= span.reshape(shape)
        corners = self.corners[start:stop]
        size = np.asarray(spec.size)
        extent = np.asarray(self.mask.shape)
        border = np.flatnonzero(((corners < 0) | (corners + size > extent)).any(axis=1))
        if border.size:  # padding is 0 after normalisation, as in extract
            inside = np.ones((border.size, *spec.size), dtype=bool)
            for axis in range(spec.spatial_dims):  # a loop over axes, not objects
                position = corners[border, axis, None] + np.arange(size[axis])
                view = [border.size] + [1] * spec.spatial_dims
                view[axis + 1] = size[axis]
                inside &= ((position >= 0) & (position < extent[axis])).reshape(view)
            values[border] *= inside[:, np.newaxis]
        if spec.mode == "masked":
            own = cut[:, -1] > 0.5
            if spec.dilation:
                own = patches.dilate_masks(own, int(spec.dilation))  # extract's own dilation
            values *= own[:, np.newaxis]
        return cut


def _batches(
    cropper: _Cropper, n: int, batch_size: int, chunk_objects: int
) -> Iterator[tuple[slice, np.ndarray, float]]:
    """Yield ``(table_rows, batch, crop_seconds)``: batches of exactly ``batch_size`` patches
    (the last may be shorter) in table order, cut ``chunk_objects`` objects at a time, so the
    batches do not depend on ``chunk_objects``."""
    pending: list[np.ndarray] = []
    n_pending = 0
    first = 0
    crop_time = 0.0
    for start in range(0, n, chunk_objects):
        stop = min(start + chunk_objects, n)
        tic = time.perf_counter()
        pending.append(cropper.crop(start, stop))
        crop_time += time.perf_counter() - tic
        n_pending += stop - start
        while n_pending >= batch_size or (stop == n and n_pending):
            take = need = min(batch_size, n_pending)
            parts = []
            while need:  # views of the chunks; a copy only for a batch that straddles two
                head = pending[0]
                if len(head) <= need:
                    parts.append(pending.pop(0))
                    need -= len(head)
                else:
                    parts.append(head[:need])
                    pending[0] = head[need:]
                    need = 0
            if len(parts) == 1:
                batch = parts[0]
            else:
                tic = time.perf_counter()
                batch = np.concatenate(parts)
                crop_time += time.perf_counter() - tic
            n_pending -= take
            yield slice(first, first + take), batch, crop_time
            crop_time = 0.0
            first += take


# --------------------------------------------------------------------------- one image


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


def _device_of(module: torch.nn.Module) -> torch.device:
    parameter = next(module.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
# original module -> (weights stamp, device, inference copy); entries die with the module.
_INFERENCE_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_INFERENCE_LOCK = threading.Lock()


def _stamp(module: nn.Module) -> tuple:
    """Changes whenever a parameter or buffer is replaced or modified in place."""
    return tuple((id(t), t._version) for t in (*module.parameters(), *module.buffers()))


def _inference_module(
    module: nn.Module, device: torch.device, layout: torch.memory_format
) -> nn.Module:
    """A copy of an eval-mode module for prediction: each BatchNorm that directly follows a
    convolution in a Sequential is folded into that convolution's weights, and the copy is
    put on ``device`` in ``layout``.

    Folding saves one pass over every activation map: the forward pass of the CNNs took
    15-20 % less time on the 2-core CPU (bench/RESULTS.md "## prediction"). Probabilities move
    by about 1e-7. The copy is kept while the module lives and its weights do not change.
    """
    key = (_stamp(module), str(device), str(layout))
    with _INFERENCE_LOCK:
        cached = _INFERENCE_COPIES.get(module)
        if cached is not None and cached[0] == key:
            return cached[1]
    copy_ = copy.deepcopy(module)
    if not copy_.training:
        for parent in copy_.modules():
            if not isinstance(parent, nn.Sequential):
                continue
            names = list(parent._modules)
            for first, second in zip(names, names[1:]):
                conv, norm = parent._modules[first], parent._modules[second]
                if (
                    isinstance(conv, _CONVS)
                    and isinstance(norm, _NORMS)
                    and _CONVS.index(type(conv)) == _NORMS.index(type(norm))
                    and norm.track_running_stats
                    and norm.running_mean is not None
                    and conv.out_channels == norm.num_features
                ):
                    parent._modules[first] = fuse_conv_bn_eval(conv, norm)
                    parent._modules[second] = nn.Identity()
    copy_ = copy_.to(device, memory_format=layout)
    with _INFERENCE_LOCK:
        _INFERENCE_COPIES[module] = (key, copy_)
    return copy_


def object_patches(
    model: LoadedModel,
    image: np.ndarray | None,
    mask: np.ndarray,
    labels: Sequence[int] | np.ndarray | None = None,
    table: pd.DataFrame | None = None,
) -> np.ndarray:
    """The patches of some objects exactly as :func:`predict_image` feeds them to the network.

    Parameters
    ----------
    model : LoadedModel
        Its ``model.json`` gives the patch size, mode, dilation and normalisation.
    image : ndarray, shape (C, rows, columns) or (C, planes, rows, columns), or None
        Channel-first image (None for a mask-only model).
    mask : ndarray of int, shape (rows, columns) or (planes, rows, columns)
        Label mask, 0 = background.
    labels : sequence of int, optional
        Objects to cut, in this order; default every label, ascending.
    table : pandas.DataFrame, optional
        :func:`~svetlana_core.objects.object_table` of ``mask``, when the caller has it.

    Returns
    -------
    ndarray of float32, shape (N, C + 1, *patch_size)

    Raises
    ------
    InputError
        If the image or mask does not fit the model, or a label is not in the mask.
    """
    spec = _spec(model)
    image = None if image is None else np.asarray(image)
    _check_inputs(spec, image, mask)
    table = object_table(mask) if table is None else table
    if labels is not None:
        wanted = np.asarray(labels)
        rows = pd.Index(table["label"].to_numpy()).get_indexer(wanted.ravel())
        if (rows < 0).any():
            missing = wanted.ravel()[rows < 0][:10].tolist()
            raise InputError(f"labels {missing} are not in the mask")
        table = table.iloc[rows].reset_index(drop=True)
    return _Cropper(spec, image, mask, table).crop(0, len(table))


_MALLOC_LOCK = threading.Lock()
_MALLOC_USERS = 0


def _glibc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt  # noqa: B018 (present in glibc only)
        return libc
    except (OSError, AttributeError):
        return None


@contextmanager
def _freed_memory_kept(limit: int = 256 << 20) -> Iterator[None]:
    """While the block runs, let glibc reuse freed memory instead of giving it back at once.

    Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536`` so that freed memory goes
    back to the system at once; setting it also freezes glibc's mmap threshold at 128 KiB. For
    torch that means every activation map of every batch is mapped, paged in and unmapped
    again: the forward pass ran 3-4x slower in a process with that setting, up to 9x in a Dask
    worker (bench/RESULTS.md "## prediction"). Here both thresholds are raised (to ``limit``
    and glibc's largest mmap threshold, 32 MiB) while at least one prediction runs in the
    process, then put back, with a trim, so the worker behaves as before between tasks.
    Nothing happens where the variable is not set or the C library is not glibc.
    """
    global _MALLOC_USERS
    trim = os.environ.get("MALLOC_TRIM_THRESHOLD_", "")
    libc = _glibc() if trim.isdigit() else None
    if libc is None:
        yield
        return
    trim_threshold, mmap_threshold = -1, -3  # M_TRIM_THRESHOLD, M_MMAP_THRESHOLD (malloc.h)
    mmap_default = os.environ.get("MALLOC_MMAP_THRESHOLD_", "")
    with _MALLOC_LOCK:
        _MALLOC_USERS += 1
        if _MALLOC_USERS == 1:
            libc.mallopt(trim_threshold, ctypes.c_int(limit))
            libc.mallopt(mmap_threshold, ctypes.c_int(32 << 20))
    try:
        yield
    finally:
        with _MALLOC_LOCK:
            _MALLOC_USERS -= 1
            if _MALLOC_USERS == 0:
                restore = int(mmap_default) if mmap_default.isdigit() else 128 << 10
                libc.mallopt(mmap_threshold, ctypes.c_int(restore))
                libc.mallopt(trim_threshold, ctypes.c_int(int(trim)))
                libc.malloc_trim(ctypes.c_size_t(0))


def predict_image(
    model: LoadedModel,
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
    model : LoadedModel
        From :func:`svetlana_core.training.load_model` (its ``module`` in eval mode).
    image : ndarray, shape (C, rows, columns) or (C, planes, rows, columns), or None
        Channel-first image, any integer or float dtype, with the model's number of channels;
        None for a mask-only model. Not modified.
    mask : ndarray of int, shape (rows, columns) or (planes, rows, columns)
        Label mask, 0 = background; labels need not be contiguous. Not modified; the returned
        prediction keeps a reference to it for :attr:`Prediction.confidence_map`.
    batch_size : int, optional
        Patches per forward pass. Default :data:`CPU_BATCH_SIZE` (16) on a CPU, where a batch
        whose activation maps stay in the caches runs faster than a big one (the default CNN
        on 64 × 64 patches: 0.45-0.53 ms a patch with 16, 0.45-1.08 with 32, 1.34-1.41 with
        256; bench/RESULTS.md "## prediction"), :data:`GPU_BATCH_SIZE` (256) on a GPU.
    chunk_objects : int, optional
        Objects whose patches are cut at a time. Default: as many as fill
        :data:`CHUNK_BYTES` (16 MiB) of patches, rounded down to whole batches (512 for
        64 × 64 patches with one image channel); chunks that size reuse freed memory, bigger
        ones cost fresh pages every time (0.31 s against 0.19 s of cropping for 10,000
        objects). Memory holds one chunk and one batch of patches. The result does not depend
        on it.
    device : str or torch.device, optional
        Where to run the network; default the model's device. The network runs as a copy
        (BatchNorm folded into the convolutions, see :func:`_inference_module`) on that
        device; the model itself is neither changed nor moved.
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
    for name, value in (("batch_size", batch_size), ("chunk_objects", chunk_objects)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(f"{name} must be a positive integer; got {value!r}")
    spec = _spec(model)
    image = None if image is None else np.asarray(image)
    mask = np.asarray(mask)
    _check_inputs(spec, image, mask)
    timings = {"objects": 0.0, "normalise": 0.0, "crop": 0.0, "forward": 0.0, "collect": 0.0}

    if table is None:
        table = object_table(mask)
    elif not table["label"].is_monotonic_increasing:
        table = table.sort_values("label", kind="stable")
    table = table.reset_index(drop=True)
    timings["objects"] = time.perf_counter() - tic

    target = _device_of(model.module) if device is None else torch.device(device)
    cuda = target.type == "cuda"
    if batch_size is None:
        batch_size = GPU_BATCH_SIZE if target.type != "cpu" else CPU_BATCH_SIZE
    if chunk_objects is None:
        patch_bytes = 4 * (spec.image_channels + 1) * int(np.prod(spec.size))
        chunk_objects = max(1, CHUNK_BYTES // patch_bytes // batch_size) * batch_size
    # Channels-last in 2D, as load_model lays out the weights: oneDNN and cuDNN run it faster,
    # and batches already in that layout save the network a conversion per layer.
    layout = torch.channels_last if spec.spatial_dims == 2 else torch.contiguous_format
    module = _inference_module(model.module, target, layout)

    n = len(table)
    probabilities = np.empty((n, len(spec.classes)), dtype=np.float32)
    if n:
        mark = time.perf_counter()
        cropper = _Cropper(spec, image, mask, table)
        timings["normalise"] = time.perf_counter() - mark
        waiting: list[tuple[slice, torch.Tensor]] = []

        def collect() -> None:
            mark = time.perf_counter()
            for rows, p in waiting:
                probabilities[rows] = p.cpu().numpy()
            waiting.clear()
            timings["collect"] += time.perf_counter() - mark

        with torch.inference_mode(), _freed_memory_kept():
            for rows, batch, crop_time in _batches(cropper, n, batch_size, chunk_objects):
                timings["crop"] += crop_time
                x = torch.from_numpy(batch).contiguous(memory_format=layout)
                if cuda:
                    x = x.pin_memory().to(target, non_blocking=True)
                mark = time.perf_counter()
                logits = module(x)
                timings["forward"] += time.perf_counter() - mark
                mark = time.perf_counter()
                waiting.append((rows, torch.softmax(logits.float(), dim=1)))
                timings["collect"] += time.perf_counter() - mark
                # On a GPU, copy back once per chunk so the device keeps working meanwhile.
                if not cuda or sum(len(p) for _, p in waiting) >= chunk_objects:
                    collect()
            collect()

    mark = time.perf_counter()
    index, confidence, margin, entropy = _uncertainty(probabilities)
    names = np.asarray(spec.classes, dtype=object)
    columns: dict[str, Any] = {
        "label": table["label"].to_numpy(np.int64),
        "class": names[index] if n else np.empty(0, dtype=object),
        "confidence": confidence,
    }
    for k, name in enumerate(spec.classes):
        columns[f"p_{name}"] = probabilities[:, k].astype(np.float64)
    columns["margin"] = margin
    columns["entropy"] = entropy
    objects = pd.DataFrame(columns)
    geometry = [c for c in table.columns if c not in ("label", "area")]
    objects = pd.concat([objects, table[geometry], table[["area"]]], axis=1)

    labels = objects["label"].to_numpy()
    class_map = _paint(mask, labels, (index + 1), class_map_dtype(len(spec.classes)))
    timings["maps"] = time.perf_counter() - mark
    timings["total"] = time.perf_counter() - tic
    return Prediction(
        class_map=class_map, objects=objects, classes=spec.classes, timings=timings, mask=mask
    )


# --------------------------------------------------------------------------- many images


def model_fingerprint(model: LoadedModel | str | os.PathLike) -> str:
    """SHA-256 of a model's description and weights (hex), the same for a folder and its load.

    Hashes the canonical JSON of ``model.meta`` and every tensor of the state dict (sorted by
    name), so retraining, editing the classes or swapping the weights file changes it.
    """
    if not hasattr(model, "module"):
        model = _load(model, "cpu")
    digest = hashlib.sha256()
    digest.update(json.dumps(model.meta, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _load(folder: str | os.PathLike, device: str | torch.device) -> LoadedModel:
    from svetlana_core.training import load_model

    return load_model(folder, device=device)


# Worker-side cache: a Dask worker loads each model once, keyed by folder, file times and device.
_MODEL_CACHE: dict[tuple, LoadedModel] = {}
_MODEL_CACHE_LOCK = threading.Lock()


def _cached_model(folder: str, device: str) -> LoadedModel:
    path = Path(folder).resolve()
    stamps = tuple(
        (p.name, p.stat().st_mtime_ns) for p in sorted(path.iterdir()) if p.is_file()
    )
    key = (str(path), stamps, str(device))
    with _MODEL_CACHE_LOCK:
        if key not in _MODEL_CACHE:
            for old in [k for k in _MODEL_CACHE if k[0] == key[0]]:
                del _MODEL_CACHE[old]
            _MODEL_CACHE[key] = _load(path, device)
        return _MODEL_CACHE[key]


@dataclass(frozen=True)
class _Job:
    """One image to predict: plain paths and strings, cheap to send to a Dask worker."""

    image: str | None
    mask: str
    stem: str
    name: str
    well: str | None
    out_dir: str


def _outputs(out_dir: Path, stem: str) -> dict[str, Path]:
    return {
        "class_map": out_dir / "class_maps" / f"{stem}.tif",
        "confidence": out_dir / "confidence" / f"{stem}.tif",
        "objects": out_dir / "objects" / f"{stem}.csv",
    }


def _marker_path(out_dir: Path, stem: str) -> Path:
    return out_dir / "done" / f"{stem}.json"


def _remove_stale_temporaries(paths: Iterable[Path]) -> None:
    """Delete the temporary files a killed run left beside ``paths`` (``.<name>.*.tmp``).

    Every output is written to such a hidden file and renamed into place, so a kill never
    leaves a half-written file under an output's name, but it may leave the temporary file:
    the next run that writes the same output removes it.
    """
    for path in paths:
        for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
            stale.unlink(missing_ok=True)


def _input_stamp(job: _Job) -> list:
    stamps = []
    for path in (job.image, job.mask):
        if path is None:
            stamps.append(None)
        else:
            stat = os.stat(path)
            stamps.append([stat.st_size, stat.st_mtime_ns])
    return stamps


def _is_done(job: _Job, fingerprint: str) -> bool:
    out_dir = Path(job.out_dir)
    marker = _marker_path(out_dir, job.stem)
    if not marker.is_file() or not all(p.is_file() for p in _outputs(out_dir, job.stem).values()):
        return False
    try:
        record = json.loads(marker.read_text())
        return record.get("model") == fingerprint and record.get("inputs") == _input_stamp(job)
    except (OSError, ValueError):
        return False


def _with_image(objects: pd.DataFrame, name: str, well: str | None) -> pd.DataFrame:
    """The per-object table with ``image`` and ``well`` (missing when None) in front."""
    n = len(objects)
    front = pd.DataFrame(
        {"image": pd.Series([name] * n, dtype="str"), "well": pd.Series([well] * n, dtype="str")}
    )
    return pd.concat([front, objects.reset_index(drop=True)], axis=1)


def _read_objects(path: Path) -> pd.DataFrame:
    """A per-image table written by :func:`_run_job`, with the dtypes it was written with."""
    # Class names stay text even when they look like numbers or "NA"; an empty well is missing.
    text = {"image": "str", "well": "str", "class": "str"}
    return pd.read_csv(path, dtype=text, keep_default_na=False, na_values={"well": [""]})


def _run_job(
    model: LoadedModel,
    job: _Job,
    fingerprint: str,
    batch_size: int,
    chunk_objects: int,
    axes: str | None,
    relabel_binary: bool,
) -> dict[str, Any]:
    """Predict one image file and write its outputs; never raises (failures are returned)."""
    try:
        out_dir = Path(job.out_dir)
        marker = _marker_path(out_dir, job.stem)
        marker.unlink(missing_ok=True)  # outputs about to change: not done until rewritten
        _remove_stale_temporaries([marker, *_outputs(out_dir, job.stem).values()])
        image, mask = io.load_pair(job.image, job.mask, axes=axes, relabel_binary=relabel_binary)
        prediction = predict_image(
            model, image, mask, batch_size=batch_size, chunk_objects=chunk_objects
        )
        del image
        objects = _with_image(prediction.objects, job.name, job.well)
        paths = _outputs(out_dir, job.stem)
        description = {
            "classes": list(prediction.classes),
            "background": 0,
            "value": "class index + 1",
            "image": job.name,
            "axes": "YX" if mask.ndim == 2 else "ZYX",
        }
        io.write_tiff(paths["class_map"], prediction.class_map, description)
        io.write_tiff(
            paths["confidence"],
            prediction.confidence_map,
            {**description, "value": "confidence (top probability), 0 on background"},
        )
        stats.write_csv(paths["objects"], objects)
        record = {
            "model": fingerprint,
            "inputs": _input_stamp(job),
            "image": job.image,
            "mask": job.mask,
            "n_objects": len(objects),
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        io.atomic_write_bytes(marker, json.dumps(record, indent=1).encode())
        return {"name": job.name, "status": "done", "objects": objects}
    except InputError as error:
        return {"name": job.name, "status": "failed", "message": str(error)}
    except Exception as error:  # one broken image must not stop a plate; the message says what
        return {
            "name": job.name,
            "status": "failed",
            "message": f"{type(error).__name__}: {error}",
        }


def _run_job_on_worker(
    model_dir: str,
    device: str,
    job: _Job,
    fingerprint: str,
    batch_size: int,
    chunk_objects: int,
    axes: str | None,
    relabel_binary: bool,
) -> dict[str, Any]:
    """Dask task: load the model once per worker (cached), then :func:`_run_job`."""
    try:
        model = _cached_model(model_dir, device)
    except Exception as error:
        return {"name": job.name, "status": "failed", "message": f"loading model: {error}"}
    return _run_job(model, job, fingerprint, batch_size, chunk_objects, axes, relabel_binary)


@dataclass
class ManyResult:
    """What :func:`predict_many` did.

    Attributes
    ----------
    out_dir : Path
    done : list of str
        Image names predicted in this run.
    skipped : list of str
        Image names whose outputs were already up to date (same model, same input files).
    failed : dict of str to str
        Image name -> what went wrong (an InputError message, or the error's type and message).
    objects : pandas.DataFrame
        All objects of the done and skipped images (as ``objects.csv``).
    outputs : dict of str to Path
        The combined files written: ``objects_csv``, ``objects_parquet``, ``counts_per_image``,
        ``counts_per_well`` (only when some image names hold a well), ``xlsx``.
    notes : list of str
        Things worth telling the user (e.g. a sheet left out of the workbook).
    """

    out_dir: Path
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    objects: pd.DataFrame = field(default_factory=pd.DataFrame)
    outputs: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _as_jobs(
    pairs: Iterable[Any] | str | os.PathLike, out_dir: Path
) -> list[_Job]:
    if isinstance(pairs, (str, os.PathLike)):
        pairs = io.pair_files(pairs)
    jobs = []
    for item in pairs:
        if isinstance(item, io.Pair):
            image, mask, stem = item.image, item.mask, item.stem
        else:
            try:
                image, mask = item
            except (TypeError, ValueError):
                raise InputError(
                    f"pairs must hold io.Pair or (image_path, mask_path) tuples; got {item!r}"
                ) from None
            stem = None
        mask = Path(mask)
        image = None if image is None else Path(image)
        if stem is None:
            stem = (image or mask).stem
        name = (image or mask).name
        well = io.parse_well(name)
        jobs.append(
            _Job(
                image=None if image is None else str(image),
                mask=str(mask),
                stem=str(stem),
                name=name,
                well=None if well is None else well.name,
                out_dir=str(out_dir),
            )
        )
    if not jobs:
        raise InputError("pairs is empty: there is no image to predict")
    for attribute, what in (("stem", "output name (file stem)"), ("name", "image name")):
        seen: dict[str, int] = {}
        for job in jobs:
            seen[getattr(job, attribute)] = seen.get(getattr(job, attribute), 0) + 1
        twice = sorted(k for k, v in seen.items() if v > 1)
        if twice:
            raise InputError(
                f"{len(twice)} {what}(s) occur more than once, their outputs would overwrite "
                f"each other: {twice[:5]}"
            )
    return jobs


#: The files :func:`_write_combined` writes into ``out_dir``.
COMBINED_FILES = ("objects.csv", "objects.parquet", "counts_per_image.csv",
                  "counts_per_well.csv", "results.xlsx")


def _write_parquet(path: Path, table: pd.DataFrame) -> None:
    io.atomic_write(path, lambda handle: table.to_parquet(handle, index=False))


def _write_combined(
    result: ManyResult, jobs: list[_Job], tables: dict[str, pd.DataFrame], classes: Sequence[str]
) -> None:
    out_dir = result.out_dir
    _remove_stale_temporaries(out_dir / name for name in COMBINED_FILES)
    order = [job.name for job in jobs if job.name in tables]
    empty = pd.DataFrame(columns=["image", "well", "label", *prediction_columns(classes)])
    if not order:
        # Every image failed (each named in result.failed): there is nothing to tabulate.
        result.objects = empty
        result.notes.append("no image was predicted: no combined tables written")
        return
    frames = [tables[name] for name in order if len(tables[name])]
    objects = pd.concat(frames, ignore_index=True) if frames else empty
    result.objects = objects
    images = pd.DataFrame(
        {
            "image": order,
            "well": [job.well for job in jobs if job.name in tables],
        },
        dtype=object,
    )

    outputs = result.outputs
    outputs["objects_csv"] = stats.write_csv(out_dir / "objects.csv", objects)
    outputs["objects_parquet"] = out_dir / "objects.parquet"
    _write_parquet(outputs["objects_parquet"], objects)
    per_image = stats.counts_per_image(objects, classes, images=images)
    outputs["counts_per_image"] = stats.write_csv(out_dir / "counts_per_image.csv", per_image)
    sheets = {"counts_per_image": per_image}
    wells = images["well"].dropna()
    well_file = out_dir / "counts_per_well.csv"
    if len(wells):
        layout = stats.infer_layout(wells)
        per_well = stats.counts_per_well(objects, classes, layout=layout, images=images)
        outputs["counts_per_well"] = stats.write_csv(well_file, per_well)
        sheets["counts_per_well"] = per_well
        result.notes.append(f"wells laid out on a {layout}-well plate")
    else:
        well_file.unlink(missing_ok=True)  # a stale one from another run would mislead
        result.notes.append("no image name holds a well (such as A01): no per-well counts")
    if len(objects) <= XLSX_MAX_OBJECTS:
        sheets = {"objects": objects, **sheets}
    else:
        result.notes.append(
            f"{len(objects)} objects: the workbook leaves out the objects sheet "
            f"(over {XLSX_MAX_OBJECTS}); objects.csv and objects.parquet hold them"
        )
    outputs["xlsx"] = stats.export_tables(out_dir / "results.xlsx", sheets)


def predict_many(
    model_dir: str | os.PathLike | LoadedModel,
    pairs: Iterable[Any] | str | os.PathLike,
    out_dir: str | os.PathLike,
    batch_size: int | None = None,
    chunk_objects: int | None = None,
    device: str = "auto",
    force: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
    client: Any = None,
    scheduler: str | None = None,
    axes: str | None = None,
    relabel_binary: bool = False,
) -> ManyResult:
    """Predict every object of many images and write per-image and combined outputs.

    Parameters
    ----------
    model_dir : path or LoadedModel
        A model folder (``model.json`` + ``weights.safetensors``) or a loaded model (used on
        its own device; ``device`` is then ignored locally). A Dask run needs a folder (each
        worker loads it once): a loaded model must have its ``folder``.
    pairs : folder, or iterable of io.Pair or (image_path, mask_path)
        A folder is paired with :func:`svetlana_core.io.pair_files`. ``image_path`` may be
        None for a mask-only model. Outputs are named after ``Pair.stem`` (or the image's
        file stem); the ``image`` column holds the image file name (the mask's when there is
        no image), and the well is parsed from it (:func:`svetlana_core.io.parse_well`).
    out_dir : path
        Output folder, created if needed (see the module docstring for its layout).
    batch_size, chunk_objects : int
        As :func:`predict_image`.
    device : str, default "auto"
        "auto" (CUDA, then MPS, then CPU, on each worker), "cpu", "cuda", "cuda:1", ...
    force : bool, default False
        Redo images whose outputs are up to date.
    progress : callable, optional
        Called as ``progress(n_finished, n_images, image_name)`` after each image (done,
        skipped or failed).
    client : distributed.Client, optional
        Run one task per image on this Dask cluster. Tasks get file paths, not arrays: workers
        read the images and write their outputs into ``out_dir`` (which they must see), and
        send back only the small per-object tables.
    scheduler : str, optional
        Address of a Dask scheduler ("tcp://host:8786") to connect to instead of ``client``.
    axes : str, optional
        Axes of the image files, when :func:`svetlana_core.io.read_image` cannot tell.
    relabel_binary : bool, default False
        Label the connected components of binary masks (:func:`svetlana_core.io.read_mask`).

    Returns
    -------
    ManyResult

    Raises
    ------
    InputError
        Bad model folder, no pairs, two images with the same stem or name, both ``client``
        and ``scheduler``, or a loaded model without a folder for a Dask run. A problem with
        one image is not raised: it lands in ``ManyResult.failed`` and the others go on.
    """
    if client is not None and scheduler is not None:
        raise InputError("give either client or scheduler, not both")
    distributed = client is not None or scheduler is not None
    if hasattr(model_dir, "module"):
        model = model_dir
        folder = getattr(model, "folder", None)
        if distributed and folder is None:
            raise InputError(
                "a Dask run needs the model folder (workers load it); this loaded model has none"
            )
    else:
        folder = Path(model_dir)
        model = _load(folder, "cpu" if distributed else device)
    spec = _spec(model)
    fingerprint = model_fingerprint(model)

    out = Path(out_dir)
    for sub in ("class_maps", "confidence", "objects", "done"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    jobs = _as_jobs(pairs, out)
    result = ManyResult(out_dir=out)
    tables: dict[str, pd.DataFrame] = {}
    total = len(jobs)
    finished = 0

    def report(name: str) -> None:
        nonlocal finished
        finished += 1
        if progress is not None:
            progress(finished, total, name)

    todo = []
    for job in jobs:
        if not force and _is_done(job, fingerprint):
            try:
                tables[job.name] = _read_objects(_outputs(out, job.stem)["objects"])
                result.skipped.append(job.name)
                report(job.name)
                continue
            except (OSError, ValueError):
                pass  # unreadable table: predict again
        todo.append(job)

    def record(outcome: dict[str, Any]) -> None:
        if outcome["status"] == "done":
            tables[outcome["name"]] = outcome["objects"]
            result.done.append(outcome["name"])
        else:
            result.failed[outcome["name"]] = outcome["message"]
        report(outcome["name"])

    options = (batch_size, chunk_objects, axes, relabel_binary)
    if not distributed:
        for job in todo:
            record(_run_job(model, job, fingerprint, *options))
    else:
        own_client = None
        if client is None:
            from distributed import Client

            client = own_client = Client(scheduler)
        try:
            from distributed import as_completed

            futures = {
                client.submit(
                    _run_job_on_worker,
                    str(folder.resolve()),
                    str(device),
                    job,
                    fingerprint,
                    *options,
                    key=f"svetlana-predict-{job.stem}-{uuid.uuid4().hex[:8]}",
                    pure=False,
                ): job
                for job in todo
            }
            for future in as_completed(futures):
                job = futures[future]
                try:
                    outcome = future.result()
                except Exception as error:  # a worker died or the task could not run
                    outcome = {
                        "name": job.name,
                        "status": "failed",
                        "message": f"{type(error).__name__}: {error}",
                    }
                record(outcome)
                future.release()
        finally:
            if own_client is not None:
                own_client.close()

    # Keep the input order in the lists, whatever order the cluster finished in.
    rank = {job.name: k for k, job in enumerate(jobs)}
    result.done.sort(key=rank.__getitem__)
    result.failed = dict(sorted(result.failed.items(), key=lambda item: rank[item[0]]))
    _write_combined(result, jobs, tables, spec.classes)
    return result
