"""Train a small CNN on patches cropped around labelled objects; save and load model folders.

numpy at the edges, torch inside. The pieces, in the order a run uses them:

* :class:`TrainConfig` — every knob of a run, a frozen dataclass with a JSON round trip;
* :func:`build_samples` / :func:`dataset_from_folders` / :func:`dataset_from_project` — one
  in-memory :class:`ObjectSet` of float32 patches ``X``, class indices ``y`` and a group per
  object (its image, or a user key such as the source slide) for the split;
* :func:`split_train_val` — stratified *and* grouped: no image in both sets;
* :func:`train_one_epoch` and :func:`evaluate` — the loop, kept apart (torchvision references);
* :func:`train` — the whole run: reports each epoch through ``on_epoch``, never prints, honours
  a ``stop`` event and ``max_minutes``, keeps the best weights by validation macro-F1 and
  always leaves a model;
* :func:`save_model` / :func:`load_model` — the self-describing model folder (``model.json`` +
  ``weights.safetensors``) that ``predict``, ``explain`` and the app read. Nothing is pickled.

Why the data stay in memory
---------------------------
A labelled set is thousands of objects, not millions: the 6,361 CoNSeP nuclei at their auto
patch size, 72 × 72 with four channels, are 528 MB of float32, cropped in 3 s. Cropping once
(one vectorised :func:`patches.extract` per image, normalised once per image) and gathering
each batch by fancy indexing removes the data loader from the profile: on the 2-core CPU the
time outside forward/backward/step is 2.5-4 % of a training pass (bench/train.py prints it).

Why augmentation is done here on whole batches
----------------------------------------------
The default spec is flips + rot90 (the 8 symmetries of the square). Per-patch albumentations
would cost tens of microseconds a patch in a Python loop; as whole-batch torch operations
(random per-sample flips with ``torch.where``, a random transpose of rows and columns, which
with the two flips draws uniformly from the 8 symmetries) they cost nothing measurable.
:mod:`svetlana_core.augment` (albumentations) runs only when the spec lists extra transforms.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import numbers
import os
import platform
import random
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# Idle OpenMP threads sleep instead of spinning. Measured on a 2-core machine shared with other
# processes: 2 spinning threads trained the default CNN at 73-198 patches/s, 2 passive ones at
# 430-475 (1 thread: 390). Only effective if torch is not imported yet; set it in the
# environment to be sure.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from svetlana_core import augment as augment_module  # noqa: E402
from svetlana_core import io, models  # noqa: E402
from svetlana_core.errors import InputError  # noqa: E402
from svetlana_core.metrics import classification_metrics  # noqa: E402

__all__ = [
    "CLASS_WEIGHTS",
    "FORMAT_VERSION",
    "LOSSES",
    "MODEL_FILE",
    "OPTIMISERS",
    "SCHEDULES",
    "WEIGHTS_FILE",
    "BatchAugment",
    "LoadedModel",
    "ObjectSet",
    "PatchDataset",
    "Run",
    "TrainConfig",
    "build_dataset",
    "build_loss",
    "build_optimiser",
    "build_samples",
    "auto_depth",
    "build_scheduler",
    "class_weights",
    "config_for_parent",
    "dataset_from_folders",
    "dataset_from_project",
    "evaluate",
    "load_model",
    "memory_format_for",
    "predict_patches",
    "resolve_device",
    "save_model",
    "set_seed",
    "split_train_val",
    "train",
    "train_one_epoch",
]

LOSSES = ("cross_entropy", "bce", "smooth_l1", "l1", "mse")
OPTIMISERS = ("adam", "adamw", "sgd")
SCHEDULES = ("cosine", "step", "onecycle", "none")
CLASS_WEIGHTS = ("balanced", "sqrt", None)
PATCH_MODES = ("context", "masked")
NORMALISATIONS = ("percentile", "minmax", "none")
DEVICES = ("auto", "cpu", "cuda", "mps")

FORMAT_VERSION = 1
MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.safetensors"


# --------------------------------------------------------------------------------------------
# seeds and devices
# --------------------------------------------------------------------------------------------


def set_seed(seed: int) -> None:
    """Seed Python's ``random``, numpy's global generator and torch (CPU and CUDA) at once.

    Parameters
    ----------
    seed : int
        Any integer >= 0.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def resolve_device(name: str = "auto") -> torch.device:
    """The torch device to train or predict on.

    Parameters
    ----------
    name : str
        ``"auto"`` (CUDA, then Apple MPS, then CPU), ``"cpu"``, ``"cuda"``, ``"cuda:<index>"``
        or ``"mps"``.

    Returns
    -------
    torch.device

    Raises
    ------
    InputError
        For an unknown name, or CUDA / MPS asked for on a machine that has none.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if not isinstance(name, str):
        raise InputError(f"device={name!r} is not valid; choose one of {', '.join(DEVICES)}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not _mps_available():
            raise InputError("device='mps' was asked but Apple MPS is not available here")
        return torch.device("mps")
    match = re.fullmatch(r"cuda(?::(\d+))?", name)
    if match is None:
        raise InputError(
            f"device={name!r} is not valid; choose one of {', '.join(DEVICES)} or 'cuda:<index>'"
        )
    if not torch.cuda.is_available():
        raise InputError(f"device={name!r} was asked but no CUDA GPU is available here")
    index = int(match.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise InputError(
            f"device={name!r} was asked but there are {torch.cuda.device_count()} CUDA GPU(s)"
        )
    return torch.device(name)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------


def auto_depth(patch_size: Sequence[int]) -> int:
    """Depth of the ``cnn`` when the config does not set one: 3 blocks below 64 pixels,
    4 from 64, 5 from 128 (the smallest side of the patch).

    Each block halves the feature map, so the receptive field of the last block grows with the
    depth; one block more per doubling of the patch keeps the last feature map at 4 to 8 pixels,
    enough for the network to see a whole object and not only its texture. Measured on CoNSeP
    (72 x 72 patches, 5-minute budget, two validation folds): depth 3 gave macro-F1 0.57 and 0.60,
    depth 4 0.63 and 0.64, at the same speed (the extra block works on a 9 x 9 map).

    Examples
    --------
    >>> auto_depth((72, 72)), auto_depth((24, 24)), auto_depth((8, 160, 160))
    (4, 3, 3)
    """
    side = min(int(s) for s in patch_size)
    return int(min(5, max(3, math.floor(math.log2(max(side, 1) / 4)))))


def _choice_error(key: str, value: Any, choices: Sequence[Any]) -> InputError:
    shown = ", ".join("None" if c is None else repr(c) for c in choices)
    return InputError(f"{key}={value!r} is not valid; choose one of {shown}")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _plain(value: Any) -> Any:
    """A JSON-able deep copy: tuples become lists, numpy scalars Python numbers."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run. Frozen; JSON round trip with :meth:`to_json`.

    Values are checked when the config is made (unknown choice, lr <= 0, ...): the error names
    the key, the value and the valid choices. :meth:`validate` adds the checks that need the
    model registry and the augmentation module (architecture and its parameters, patch size
    against the network depth, augmentation spec).

    ===============  ===================  ======================================================
    key              default              meaning
    ===============  ===================  ======================================================
    arch             "cnn"                :data:`svetlana_core.models.ARCHITECTURES` key
    arch_params      {}                   merged over the registry defaults (cnn: width 32,
                                          kernel 3, dropout 0.2); the cnn depth, when not
                                          given, follows the patch size (:func:`auto_depth`:
                                          3 below 64 pixels, 4 from 64, 5 from 128)
    patch_size       None                 int or tuple ([planes,] rows, columns); None = auto
                                          from the objects (:func:`patches.auto_patch_size`)
    patch_mode       "context"            "context" or "masked" (image × dilated object mask)
    dilation         2                    dilation of the object mask in "masked" mode, pixels
    normalisation    "percentile"         "percentile" (per image), "minmax" (per patch), "none"
    augment          flips + rot90        :mod:`svetlana_core.augment` spec
    loss             "cross_entropy"      also "bce" (BCE with logits on one-hot targets) and
                                          "smooth_l1", "l1", "mse" (softmax vs one-hot)
    label_smoothing  0.0                  in [0, 1): smooths the one-hot targets of every loss
    optimiser        "adam"               "adam", "adamw", "sgd" (momentum 0.9, Nesterov)
    lr               2e-3                 learning rate (peak rate for "onecycle")
    weight_decay     1e-4                 L2 (adam, sgd) or decoupled (adamw)
    schedule         "cosine"             per batch: "cosine" to 0, "step" (× gamma every
                                          step_size epochs), "onecycle", "none"
    step_size        10                   epochs between decays of "step"
    gamma            0.1                  decay factor of "step"
    epochs           40                   upper bound; early stopping may end sooner
    batch_size       64
    class_weights    "sqrt"               loss weight per class: "balanced" n / (K n_c),
                                          "sqrt" its square root (milder), or None
    val_fraction     0.2                  share of objects (whole groups) held out, [0, 0.9)
    patience         10                   epochs without a better val macro-F1 before stopping;
                                          None = off
    seed             0                    seeds the split, the weights, the batches, the
                                          augmentation
    device           "auto"               "auto" (CUDA, MPS, CPU), "cpu", "cuda[:i]", "mps"
    max_minutes      None                 wall-clock budget; no epoch is started that would
                                          not end within it
    continue_from    None                 model folder to start from (same classes; its
                                          architecture and patch settings are used)
    ===============  ===================  ======================================================

    Why these defaults: they were tuned for the real CoNSeP nuclei (4 classes, 72 x 72 auto
    patches, validation on whole held-out source images, ``max_minutes=5`` on the shared
    2-core CPU, which fits 7 to 15 epochs there). Depth 4 (:func:`auto_depth`) instead of 3
    gained 0.04 to 0.06 macro-F1; "sqrt" class weights beat "balanced" (which over-predicts
    the rare class, 3 % of the objects) and None (which never predicts it); lr 4e-3, batch 32
    and label smoothing 0.1 did not help. The default config reached macro-F1 0.650 and 0.656
    on two folds (the random forest baseline 0.574 and 0.565); bench/RESULTS.md "## training"
    has every run. With ``max_minutes`` the cosine schedule follows the clock, so a run cut by
    its budget still ends at a low learning rate.
    """

    arch: str = "cnn"
    arch_params: Mapping[str, Any] = field(default_factory=dict)
    patch_size: int | tuple[int, ...] | None = None
    patch_mode: str = "context"
    dilation: int = 2
    normalisation: str = "percentile"
    augment: Mapping[str, Any] | None = field(
        default_factory=lambda: copy.deepcopy(augment_module.DEFAULT_AUGMENT)
    )
    loss: str = "cross_entropy"
    label_smoothing: float = 0.0
    optimiser: str = "adam"
    lr: float = 2e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    step_size: int = 10
    gamma: float = 0.1
    epochs: int = 40
    batch_size: int = 64
    class_weights: str | None = "sqrt"
    val_fraction: float = 0.2
    patience: int | None = 10
    seed: int = 0
    device: str = "auto"
    max_minutes: float | None = None
    continue_from: str | None = None

    def __post_init__(self) -> None:
        set_ = lambda key, value: object.__setattr__(self, key, value)  # noqa: E731 (frozen)
        if not isinstance(self.arch, str):
            raise InputError(f"arch={self.arch!r} is not valid; give an architecture name")
        if not isinstance(self.arch_params, Mapping):
            raise InputError(f"arch_params={self.arch_params!r} is not valid; give a dict")
        set_("arch_params", _plain(self.arch_params))
        if self.patch_size is not None:
            sizes = (self.patch_size,) if _is_int(self.patch_size) else self.patch_size
            if (
                not isinstance(sizes, (list, tuple))
                or len(sizes) not in (1, 2, 3)
                or not all(_is_int(s) and s >= 4 for s in sizes)
            ):
                raise InputError(
                    f"patch_size={self.patch_size!r} is not valid; give None (auto), an integer "
                    ">= 4 or a tuple ([planes,] rows, columns) of them"
                )
            set_("patch_size", int(sizes[0]) if len(sizes) == 1 else tuple(int(s) for s in sizes))
        for key, choices in (
            ("patch_mode", PATCH_MODES),
            ("normalisation", NORMALISATIONS),
            ("loss", LOSSES),
            ("optimiser", OPTIMISERS),
            ("schedule", SCHEDULES),
            ("class_weights", CLASS_WEIGHTS),
        ):
            if getattr(self, key) not in choices:
                raise _choice_error(key, getattr(self, key), choices)
        if not _is_int(self.dilation) or self.dilation < 0:
            raise InputError(f"dilation={self.dilation!r} is not valid; give an integer >= 0")
        if self.augment is not None and not isinstance(self.augment, (Mapping, list, tuple)):
            raise InputError(
                f"augment={self.augment!r} is not valid; give an augmentation spec dict or None"
            )
        set_("augment", _plain(self.augment))
        checks = (
            ("label_smoothing", _is_number(self.label_smoothing) and 0 <= self.label_smoothing < 1,
             "a number in [0, 1)"),
            ("lr", _is_number(self.lr) and self.lr > 0, "a number > 0"),
            ("weight_decay", _is_number(self.weight_decay) and self.weight_decay >= 0,
             "a number >= 0"),
            ("step_size", _is_int(self.step_size) and self.step_size >= 1, "an integer >= 1"),
            ("gamma", _is_number(self.gamma) and 0 < self.gamma <= 1, "a number in (0, 1]"),
            ("epochs", _is_int(self.epochs) and self.epochs >= 1, "an integer >= 1"),
            ("batch_size", _is_int(self.batch_size) and self.batch_size >= 2, "an integer >= 2"),
            ("val_fraction", _is_number(self.val_fraction) and 0 <= self.val_fraction < 0.9,
             "a number in [0, 0.9)"),
            ("patience", self.patience is None or (_is_int(self.patience) and self.patience >= 1),
             "None (off) or an integer >= 1"),
            ("seed", _is_int(self.seed) and self.seed >= 0, "an integer >= 0"),
            ("max_minutes", self.max_minutes is None
             or (_is_number(self.max_minutes) and self.max_minutes > 0), "None or a number > 0"),
            ("continue_from", self.continue_from is None
             or isinstance(self.continue_from, (str, os.PathLike)), "None or a model folder"),
        )
        for key, ok, what in checks:
            if not ok:
                raise InputError(f"{key}={getattr(self, key)!r} is not valid; give {what}")
        for key in ("label_smoothing", "lr", "weight_decay", "gamma", "val_fraction"):
            set_(key, float(getattr(self, key)))
        if self.max_minutes is not None:
            set_("max_minutes", float(self.max_minutes))
        if self.continue_from is not None:
            set_("continue_from", os.fspath(self.continue_from))
        if not isinstance(self.device, str) or not (
            self.device in DEVICES or re.fullmatch(r"cuda:\d+", self.device)
        ):
            raise _choice_error("device", self.device, [*DEVICES, "cuda:<index>"])

    # -- checks that need the registry ------------------------------------------------------

    def validate(self, in_channels: int | None = None, spatial_dims: int | None = None) -> None:
        """Check the architecture, its parameters, the patch size and the augmentation spec.

        Parameters
        ----------
        in_channels : int, optional
            Channels of a patch (image channels + 1), when the data are known: the augmentation
            transforms are then tried on patches of that many channels.
        spatial_dims : {2, 3}, optional
            Default: from ``patch_size`` when it is a 3-tuple, else 2.

        Raises
        ------
        InputError
            Unknown architecture or parameter, a patch too small for the network depth, a 3D
            patch with a 2D-only model, or a bad augmentation spec.
        """
        if spatial_dims is None:
            spatial_dims = 3 if isinstance(self.patch_size, tuple) and len(self.patch_size) == 3 \
                else 2
        models.validate_params(self.arch, self.arch_params, spatial_dims)
        shape = None
        if self.patch_size is not None:
            models.check_patch_size(self.arch, self.arch_params, self.patch_size)
            shape = (
                (self.patch_size,) * spatial_dims if _is_int(self.patch_size) else self.patch_size
            )
            if len(shape) != spatial_dims:
                raise InputError(
                    f"patch_size={self.patch_size!r} has {len(shape)} axes but the data are "
                    f"{spatial_dims}D"
                )
        image_channels = None if in_channels is None else in_channels - 1
        augment_module.validate_augment_spec(self.augment, image_channels, shape)

    def full_arch_params(self, patch_size: Sequence[int]) -> dict[str, Any]:
        """The network's parameters for patches of ``patch_size``: ``arch_params`` over the
        registry defaults, with the ``cnn`` depth chosen by :func:`auto_depth` when not given.

        Parameters
        ----------
        patch_size : sequence of int
            Spatial patch shape ``([planes,] rows, columns)``.
        """
        params = dict(self.arch_params)
        if self.arch == "cnn" and "depth" not in params:
            params["depth"] = auto_depth(patch_size)
        return models.validate_params(self.arch, params, len(patch_size))

    # -- round trips ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every field (tuples as lists)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Build a config from a dict; missing keys take their default.

        Raises
        ------
        InputError
            For keys that are not fields (named, with the valid keys) or bad values.
        """
        if not isinstance(values, Mapping):
            raise InputError(f"a training config must be a dict, got {type(values).__name__}")
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = [str(k) for k in values if k not in known]
        if unknown:
            raise InputError(
                f"unknown training config key(s) {', '.join(unknown)}; valid: {', '.join(known)}"
            )
        values = dict(values)
        if isinstance(values.get("patch_size"), list):
            values["patch_size"] = tuple(values["patch_size"])
        return cls(**values)

    def to_json(self) -> str:
        """The config as a JSON object string."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        """Parse :meth:`to_json` output (or a hand-written JSON object)."""
        try:
            values = json.loads(text)
        except (TypeError, json.JSONDecodeError) as error:
            raise InputError(f"training config is not valid JSON: {error}") from None
        return cls.from_dict(values)


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)  # arrays: identity, not element-wise, equality
class ObjectSet:
    """Labelled objects as patches, in memory.

    Attributes
    ----------
    X : ndarray of float32, shape (N, C + 1, rows, columns) or (N, C + 1, planes, rows, columns)
        Image channels then the object-mask channel.
    y : ndarray of int64, shape (N,)
        Class index into ``classes``.
    classes : tuple of str
        Class names, index order.
    groups : ndarray of str, shape (N,)
        Split key of each object: no group is in both training and validation sets.
    images : ndarray of str, shape (N,)
        Image name of each object.
    labels : ndarray of int64, shape (N,)
        Object label in its mask.
    patch_size : tuple of int
        Spatial patch shape.
    image_channels : int
        C (0 for mask-only data).
    patch_mode, dilation, normalisation
        How the patches were cut (recorded in the model folder).
    """

    X: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]
    groups: np.ndarray
    images: np.ndarray
    labels: np.ndarray
    patch_size: tuple[int, ...]
    image_channels: int
    patch_mode: str = "context"
    dilation: int = 2
    normalisation: str = "percentile"

    def __len__(self) -> int:
        return len(self.y)

    @property
    def in_channels(self) -> int:
        """Channels of a patch: image channels + 1."""
        return self.image_channels + 1

    @property
    def spatial_dims(self) -> int:
        """2 or 3."""
        return self.X.ndim - 2

    def counts(self, index: np.ndarray | None = None) -> dict[str, int]:
        """Objects per class (all, or those at ``index``)."""
        y = self.y if index is None else self.y[index]
        counts = np.bincount(y, minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, counts, strict=True)}

    def subset(self, index: np.ndarray) -> ObjectSet:
        """A new set with the objects at ``index`` (arrays are copied)."""
        index = np.asarray(index)
        return dataclasses.replace(
            self, X=self.X[index], y=self.y[index], groups=self.groups[index],
            images=self.images[index], labels=self.labels[index],
        )


#: The contract's names for the same things.
PatchDataset = ObjectSet


@dataclass(frozen=True)
class _Source:
    """One image to crop: its name, a loader and its labelled objects (label, class)."""

    name: str
    load: Callable[[bool], tuple[np.ndarray | None, np.ndarray]]  # mask_only -> (image, mask)
    labels: pd.DataFrame


def _labels_frame(labels: Any, where: str) -> pd.DataFrame:
    if not isinstance(labels, pd.DataFrame):
        raise InputError(f"{where}: labels must be a DataFrame with columns label, class")
    missing = [c for c in ("label", "class") if c not in labels.columns]
    if missing:
        raise InputError(f"{where}: labels table has no column(s) {', '.join(missing)}")
    frame = labels[["label", "class"]].copy()
    if frame["class"].isna().any():
        raise InputError(f"{where}: {int(frame['class'].isna().sum())} label(s) have no class")
    label = pd.to_numeric(frame["label"], errors="coerce")
    if label.isna().any() or (label % 1 != 0).any() or (label <= 0).any():
        bad = frame["label"][label.isna() | (label % 1 != 0) | (label <= 0)].tolist()[:5]
        raise InputError(f"{where}: labels must be integers > 0; found {bad}")
    frame["label"] = label.astype(np.int64)
    frame["class"] = frame["class"].astype(str)
    duplicated = frame["label"].duplicated(keep=False)
    if duplicated.any():
        clash = frame[duplicated].groupby("label")["class"].nunique()
        clash = clash[clash > 1]
        if len(clash):
            raise InputError(
                f"{where}: object(s) {', '.join(map(str, clash.index[:5]))} have more than one "
                "class"
            )
        frame = frame.drop_duplicates("label")
    return frame.reset_index(drop=True)


def _group_keys(images: np.ndarray, group_by: Callable[[str], Any] | None) -> np.ndarray:
    if group_by is None:
        return images.astype(str)
    unique, inverse = np.unique(images, return_inverse=True)
    try:
        keys = np.array([str(group_by(str(name))) for name in unique], dtype=object)
    except Exception as error:  # a user callable: report which name it failed on
        raise InputError(f"group_by failed on an image name: {error}") from error
    return keys[inverse].astype(str)


def _resolve_classes(present: Iterable[str], classes: Sequence[str] | None) -> tuple[str, ...]:
    present = set(present)
    if classes is None:
        ordered = tuple(sorted(present))
    else:
        ordered = tuple(str(c) for c in classes)
        if len(set(ordered)) != len(ordered):
            raise InputError(f"classes repeats names: {list(ordered)}")
        extra = sorted(present - set(ordered))
        if extra:
            raise InputError(
                f"labels use class(es) {extra} that are not in classes {list(ordered)}"
            )
    if len(ordered) < 2 or len(present) < 2:
        raise InputError(
            f"training needs objects of at least two classes; the labels have "
            f"{len(present)} ({', '.join(sorted(present)) or 'none'})"
        )
    return ordered


def _build(
    sources: list[_Source],
    config: TrainConfig,
    classes: Sequence[str] | None,
    group_by: Callable[[str], Any] | None,
) -> ObjectSet:
    from svetlana_core import objects, patches  # torch-free, imported here to keep order clear

    if not sources:
        raise InputError("there are no labelled objects to train on")
    class_names = _resolve_classes(
        pd.concat([s.labels["class"] for s in sources]).unique(), classes
    )
    size = config.patch_size
    tables: dict[str, pd.DataFrame] = {}
    if size is None:
        # The auto size needs every object table first: read the masks alone in a first pass.
        for source in sources:
            _, mask = source.load(True)
            tables[source.name] = objects.object_table(mask)
        ndims = {tables[s.name].filter(like="centroid_").shape[1] for s in sources}
        if len(ndims) > 1:
            raise InputError("the masks mix 2D and 3D; train on one kind at a time")
        size = patches.auto_patch_size(pd.concat(list(tables.values())), ndims.pop())
    models.check_patch_size(config.arch, config.arch_params, size)

    n_total = sum(len(s.labels) for s in sources)
    X = None
    filled = 0
    image_channels = None
    spatial_dims = None
    for source in sources:
        image, mask = source.load(False)
        table = tables.pop(source.name, None)
        if table is None:
            table = objects.object_table(mask)
        wanted = source.labels["label"].to_numpy()
        unknown = wanted[~np.isin(wanted, table["label"].to_numpy())]
        if unknown.size:
            more = f" and {unknown.size - 5} more" if unknown.size > 5 else ""
            raise InputError(
                f"image {source.name}: label(s) {', '.join(map(str, unknown[:5]))}{more} are not "
                f"objects of its mask ({len(table)} objects)"
            )
        channels = 0 if image is None else image.shape[0]
        if image_channels is None:
            image_channels, spatial_dims = channels, mask.ndim
        elif channels != image_channels or mask.ndim != spatial_dims:
            raise InputError(
                f"image {source.name} has {channels} channel(s) and {mask.ndim}D objects but "
                f"{sources[0].name} has {image_channels} channel(s) and {spatial_dims}D; "
                "train on images of one kind"
            )
        cut = patches.extract(
            image, mask, labels=wanted, size=size, mode=config.patch_mode,
            normalisation=config.normalisation, dilation=config.dilation, table=table,
        )
        if X is None:  # allocated once: concatenating per-image arrays would double the memory
            X = np.empty((n_total, *cut.shape[1:]), dtype=np.float32)
        X[filled : filled + len(cut)] = cut
        filled += len(cut)
    codes = {c: i for i, c in enumerate(class_names)}
    y = np.concatenate([s.labels["class"].map(codes).to_numpy() for s in sources])
    images = np.concatenate([np.full(len(s.labels), s.name, dtype=object) for s in sources])
    labels = np.concatenate([s.labels["label"].to_numpy() for s in sources])
    return ObjectSet(
        X=X, y=y.astype(np.int64), classes=class_names,
        groups=_group_keys(images, group_by), images=images.astype(str),
        labels=labels.astype(np.int64), patch_size=tuple(int(s) for s in X.shape[2:]),
        image_channels=int(image_channels), patch_mode=config.patch_mode,
        dilation=int(config.dilation), normalisation=config.normalisation,
    )


def build_samples(
    items: Iterable[tuple[str, np.ndarray | None, np.ndarray, pd.DataFrame]],
    config: TrainConfig,
    classes: Sequence[str] | None = None,
    group_by: Callable[[str], Any] | None = None,
) -> ObjectSet:
    """Crop the labelled objects of in-memory images into one :class:`ObjectSet`.

    Parameters
    ----------
    items : iterable of (image_name, image, mask, labels)
        ``image`` channel-first ``(C, [planes,] rows, columns)`` or None (mask only),
        ``mask`` ``([planes,] rows, columns)`` integer labels, ``labels`` a DataFrame with
        columns ``label`` and ``class`` (other columns ignored). Images without labels may be
        left out.
    config : TrainConfig
        Uses ``patch_size`` (None: auto from every object of the masks), ``patch_mode``,
        ``dilation``, ``normalisation``, ``arch``/``arch_params`` (patch size check).
    classes : sequence of str, optional
        Class names in index order (every labelled class must be in it). Default: the labelled
        classes, sorted.
    group_by : callable, optional
        ``image_name -> group key`` for the split (default: the image name itself), e.g.
        ``lambda name: name.split("_")[1]`` groups CoNSeP tiles by source image.

    Returns
    -------
    ObjectSet
        Objects in the order of ``items`` then of each labels table.

    Raises
    ------
    InputError
        Labels that are not objects of their mask (the image and up to 5 labels named), fewer
        than two classes, images of mixed channels or dimensions, a patch too small for the
        network.
    """
    sources = []
    seen = set()
    for name, image, mask, labels in items:
        name = str(name)
        if name in seen:
            raise InputError(f"image {name} appears twice in the training items")
        seen.add(name)
        frame = _labels_frame(labels, f"image {name}")
        if len(frame):
            sources.append(_Source(name, lambda _, i=image, m=mask: (i, m), frame))
    return _build(sources, config, classes, group_by)


#: The contract's name.
build_dataset = build_samples


def dataset_from_folders(
    images_dir: str | os.PathLike | None,
    masks_dir: str | os.PathLike,
    labels_csv: str | os.PathLike,
    config: TrainConfig,
    classes: Sequence[str] | None = None,
    group_by: Callable[[str], Any] | None = None,
    axes: str | None = None,
) -> ObjectSet:
    """Build the training set from a folder of images, a folder of masks and a labels CSV.

    Parameters
    ----------
    images_dir : path or None
        Images, paired with masks by :func:`svetlana_core.io.pair_files`. None: mask-only
        data, every mask file of ``masks_dir`` is an "image" named by its file name.
    masks_dir : path
        Masks.
    labels_csv : path
        ``image,label,class``; ``image`` is the image file name (or its stem).
    config, classes, group_by
        As :func:`build_samples`. With ``config.continue_from`` the parent's patch settings
        are used (:func:`config_for_parent`).
    axes : str, optional
        Axes of the image files, for :func:`svetlana_core.io.read_image`.

    Raises
    ------
    InputError
        Labels naming an image that is not in the folder (up to 5 named), and everything
        :func:`build_samples` and :mod:`svetlana_core.io` raise.
    """
    config = config_for_parent(config)
    table = io.read_labels_csv(labels_csv)
    if images_dir is None:
        masks_dir = Path(masks_dir)
        if not masks_dir.is_dir():
            raise InputError(f"mask folder {masks_dir} does not exist or is not a folder")
        files = {
            p.name: (None, p)
            for p in sorted(masks_dir.iterdir())
            if p.is_file() and not p.name.startswith(".")
            and p.suffix.lower() in io.MASK_EXTENSIONS
        }
    else:
        files = {p.image.name: (p.image, p.mask) for p in io.pair_files(images_dir, masks_dir)}
    stems = {Path(name).stem: name for name in files}
    table["image"] = table["image"].map(lambda n: n if n in files else stems.get(n, n))
    unknown = sorted(set(table["image"]) - set(files))
    if unknown:
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        where = masks_dir if images_dir is None else images_dir
        raise InputError(
            f"labels file {labels_csv} names image(s) {', '.join(unknown[:5])}{more} that are "
            f"not in {where}"
        )
    sources = []
    for name, labels in table.groupby("image", sort=True):
        image_path, mask_path = files[name]
        sources.append(_Source(
            name, _pair_loader(image_path, mask_path, axes), _labels_frame(labels, f"image {name}")
        ))
    return _build(sources, config, classes, group_by)


def _pair_loader(
    image_path: Path | None, mask_path: Path, axes: str | None
) -> Callable[[bool], tuple[np.ndarray | None, np.ndarray]]:
    def load(mask_only: bool) -> tuple[np.ndarray | None, np.ndarray]:
        if mask_only:
            return None, io.read_mask(mask_path)
        return io.load_pair(image_path, mask_path, axes=axes)

    return load


def dataset_from_project(
    project: Any,
    config: TrainConfig,
    group_by: Callable[[str], Any] | None = None,
) -> ObjectSet:
    """Build the training set from the current labels of a project.

    Parameters
    ----------
    project : svetlana_core.store.Project or path
        The project; its class order (``classes()``) sets the class indices (classes with no
        labelled object are left out).
    config, group_by
        As :func:`build_samples`.

    Raises
    ------
    InputError
        No labels, an image file that cannot be read (named by :mod:`svetlana_core.io`), labels
        that are not objects of their mask.
    """
    from svetlana_core.store import Project

    if not isinstance(project, Project):
        project = Project.open(project)
    config = config_for_parent(config)
    labels = project.labels()
    if labels.empty:
        raise InputError(f"project {project.folder} has no labelled objects to train on")
    images = project.images().set_index("name")
    present = set(labels["class"])
    order = [c for c in project.classes()["name"] if c in present]
    sources = []
    for name, rows in labels.groupby("image", sort=True):
        record = images.loc[name]
        image_path = None if record["path"] is None or pd.isna(record["path"]) else record["path"]
        axes = None if record["axes"] is None or pd.isna(record["axes"]) else record["axes"]
        sources.append(_Source(
            str(name), _pair_loader(image_path, record["mask_path"], axes),
            _labels_frame(rows, f"image {name}"),
        ))
    return _build(sources, config, order, group_by)


# --------------------------------------------------------------------------------------------
# split
# --------------------------------------------------------------------------------------------


def split_train_val(
    y: np.ndarray, groups: np.ndarray | None, val_fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split objects into training and validation sets, stratified by class, grouped by image.

    scikit-learn's ``StratifiedGroupKFold`` with ``round(1 / val_fraction)`` folds (at most one
    per group); among its folds that keep every class in the training set and hold the most
    classes, ``seed`` picks the validation set (so seeds 0, 1, ... walk through the folds of a
    cross-validation, in a seeded order). With a
    single group (or when no grouped fold keeps every class in training) the split is
    stratified by class only (:func:`_split_with_note` says so).

    Parameters
    ----------
    y : ndarray of int, shape (N,)
        Class of each object.
    groups : ndarray, shape (N,), or None
        Group of each object (image name, source slide...). None: every object its own group.
    val_fraction : float
        In [0, 0.9). 0 gives an empty validation set.
    seed : int
        Shuffles the folds.

    Returns
    -------
    train_idx, val_idx : ndarray of int64
        Sorted indices into ``y``.

    Examples
    --------
    >>> y = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    >>> groups = np.array(["a", "a", "a", "a", "b", "b", "b", "b"])
    >>> train_idx, val_idx = split_train_val(y, groups, 0.5)
    >>> sorted(set(groups[train_idx]) & set(groups[val_idx]))
    []
    """
    return _split_with_note(y, groups, val_fraction, seed)[:2]


def _split_with_note(
    y: np.ndarray, groups: np.ndarray | None, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, str]:
    from sklearn.model_selection import StratifiedGroupKFold

    y = np.asarray(y)
    n = len(y)
    if not _is_number(val_fraction) or not 0 <= val_fraction < 0.9:
        raise InputError(f"val_fraction={val_fraction!r} is not valid; give a number in [0, 0.9)")
    everything = np.arange(n, dtype=np.int64)
    if val_fraction == 0 or n < 2:
        return everything, everything[:0], "no validation set (val_fraction = 0)"
    groups = everything.astype(str) if groups is None else np.asarray(groups).astype(str)
    if len(groups) != n:
        raise InputError(f"groups has {len(groups)} values but there are {n} objects")
    classes = np.unique(y)
    n_groups = len(np.unique(groups))
    n_splits = min(max(2, round(1 / val_fraction)), n_groups)
    if n_groups >= 2:
        import warnings

        folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        with warnings.catch_warnings():  # "least populated class has only k members"
            warnings.simplefilter("ignore", UserWarning)
            candidates = [val for _, val in folds.split(np.zeros(n), y, groups)]
        # StratifiedGroupKFold places groups greedily by their class mix, so its folds barely
        # depend on the seed: the seed picks the fold instead, among those that keep every
        # class in training and hold as many classes as any fold does.
        valid = []
        for val in candidates:
            train_mask = np.ones(n, dtype=bool)
            train_mask[val] = False
            if len(val) and len(np.unique(y[train_mask])) == len(classes):
                valid.append(val)
        best = None
        if valid:
            most = max(len(np.unique(y[val])) for val in valid)
            pool = [val for val in valid if len(np.unique(y[val])) == most]
            best = pool[np.random.default_rng(seed).integers(len(pool))]
        if best is not None:
            train_mask = np.ones(n, dtype=bool)
            train_mask[best] = False
            note = (
                f"grouped split: {n_groups - len(np.unique(groups[best]))} group(s) for training, "
                f"{len(np.unique(groups[best]))} for validation"
            )
            return everything[train_mask], np.sort(best).astype(np.int64), note
        why = "no grouped split keeps every class in training"
    else:
        why = "there is only one group (image)"
    # Stratified by class only: per class, a share of its objects (never its last one).
    rng = np.random.default_rng(seed)
    val_parts = []
    for c in classes:
        members = rng.permutation(np.flatnonzero(y == c))
        k = min(int(round(val_fraction * len(members))), len(members) - 1)
        val_parts.append(members[:k])
    val = np.sort(np.concatenate(val_parts)).astype(np.int64)
    train_mask = np.ones(n, dtype=bool)
    train_mask[val] = False
    note = (
        f"stratified split NOT grouped ({why}): objects of one image are in both sets, so the "
        "validation figures are optimistic"
    )
    return everything[train_mask], val, note


# --------------------------------------------------------------------------------------------
# losses, optimisers, schedules
# --------------------------------------------------------------------------------------------


def class_weights(
    y: np.ndarray, n_classes: int, mode: str | None = "balanced"
) -> np.ndarray | None:
    """Loss weight per class, 0 for a class absent from ``y``.

    "balanced" is scikit-learn's ``n / (K n_c)``: every class weighs as much as any other in
    the loss. "sqrt" is its square root, a milder correction: a class 10 times rarer weighs
    about 3 times more per object instead of 10, so a rare class is not over-predicted at the
    expense of the precision of the others.

    Returns
    -------
    ndarray of float32, shape (n_classes,), or None when ``mode`` is None.

    Examples
    --------
    >>> class_weights(np.array([0, 0, 0, 1]), 2)
    array([0.6666667, 2.       ], dtype=float32)
    >>> class_weights(np.array([0, 0, 0, 1]), 2, "sqrt")
    array([0.8164966, 1.4142135], dtype=float32)
    """
    if mode is None:
        return None
    if mode not in CLASS_WEIGHTS:
        raise _choice_error("class_weights", mode, CLASS_WEIGHTS)
    counts = np.bincount(np.asarray(y), minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    if mode == "sqrt":
        weights = np.sqrt(weights)
    return weights.astype(np.float32)


class _Loss(nn.Module):
    """One of :data:`LOSSES` on logits ``(N, K)`` and class indices ``(N,)``.

    Class weights weigh each object by the weight of its true class and the batch loss is the
    weighted mean, the same convention as ``nn.CrossEntropyLoss(weight=...)`` so that every
    loss gives the same relative importance to the classes.
    """

    def __init__(self, name: str, n_classes: int, weights: torch.Tensor | None,
                 label_smoothing: float) -> None:
        super().__init__()
        self.name = name
        self.n_classes = n_classes
        self.label_smoothing = float(label_smoothing)
        self.register_buffer("weights", weights if weights is not None else None)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()  # losses in float32 under autocast
        if self.name == "cross_entropy":
            return F.cross_entropy(logits, target, weight=self.weights,
                                   label_smoothing=self.label_smoothing)
        onehot = F.one_hot(target, self.n_classes).float()
        if self.label_smoothing:
            onehot = onehot * (1 - self.label_smoothing) + self.label_smoothing / self.n_classes
        if self.name == "bce":
            per = F.binary_cross_entropy_with_logits(logits, onehot, reduction="none")
        else:
            regression = {"smooth_l1": F.smooth_l1_loss, "l1": F.l1_loss, "mse": F.mse_loss}
            per = regression[self.name](logits.softmax(dim=1), onehot, reduction="none")
        per = per.mean(dim=1)
        if self.weights is None:
            return per.mean()
        weight = self.weights[target]
        return (per * weight).sum() / weight.sum().clamp_min(1e-12)


def build_loss(
    name: str, n_classes: int, weights: np.ndarray | None = None, label_smoothing: float = 0.0
) -> nn.Module:
    """A loss module ``loss(logits (N, K), target (N,) int64) -> scalar``.

    Parameters
    ----------
    name : str
        One of :data:`LOSSES`: "cross_entropy"; "bce" (binary cross-entropy with logits on
        one-hot targets); "smooth_l1", "l1", "mse" (on the softmax against one-hot targets).
    n_classes : int
    weights : ndarray of float, shape (n_classes,), optional
        Per-class weights (:func:`class_weights`).
    label_smoothing : float
        Targets become ``(1 - s) onehot + s / K``.
    """
    if name not in LOSSES:
        raise _choice_error("loss", name, LOSSES)
    tensor = None if weights is None else torch.as_tensor(np.asarray(weights), dtype=torch.float32)
    return _Loss(name, n_classes, tensor, label_smoothing)


def build_optimiser(
    name: str, parameters: Iterable[torch.nn.Parameter], lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    """``adam``, ``adamw`` or ``sgd`` (momentum 0.9, Nesterov)."""
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=0.9, nesterov=True,
                               weight_decay=weight_decay)
    raise _choice_error("optimiser", name, OPTIMISERS)


def build_scheduler(
    name: str, optimiser: torch.optim.Optimizer, epochs: int, steps_per_epoch: int,
    step_size: int = 10, gamma: float = 0.1, budget_s: float | None = None,
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """A scheduler stepped once per batch (None for "none").

    "cosine" anneals to 0 over all the batches; "step" multiplies by ``gamma`` every
    ``step_size`` epochs; "onecycle" warms up over the first 30 % then anneals.

    With a time budget (``budget_s`` seconds from now, from ``max_minutes``), "cosine" follows
    whichever is further along, the batches or the clock, so that a run cut by its time limit
    still ends at a low learning rate instead of being stopped mid-schedule.
    """
    total = max(1, epochs * steps_per_epoch)
    if name == "cosine":
        if budget_s is None:
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=total)
        start = time.monotonic()

        def factor(step: int) -> float:
            progress = min(1.0, max(step / total, (time.monotonic() - start) / budget_s))
            return 0.5 * (1.0 + math.cos(math.pi * progress))

        return torch.optim.lr_scheduler.LambdaLR(optimiser, factor)
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(
            optimiser, step_size=step_size * max(1, steps_per_epoch), gamma=gamma
        )
    if name == "onecycle":
        lr = optimiser.param_groups[0]["lr"]
        return torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=total)
    if name == "none":
        return None
    raise _choice_error("schedule", name, SCHEDULES)


# --------------------------------------------------------------------------------------------
# augmentation
# --------------------------------------------------------------------------------------------


class BatchAugment:
    """Augment a whole batch ``(N, C, [planes,] rows, columns)`` at once.

    Flips, rot90 and flip_planes of an :mod:`svetlana_core.augment` spec are done as batched
    torch operations (a random choice per patch); extra albumentations transforms, when the
    spec has any, run patch by patch through :func:`svetlana_core.augment.augment_batch` first.

    Parameters
    ----------
    spec : dict or None
        Augmentation spec (validated here).
    image_channels : int
        Image channels of the patches (for the albumentations checks).
    patch_shape : tuple of int
        Spatial shape of the patches.
    seed : int
        Seeds this augmenter's own generators.
    """

    def __init__(self, spec: Mapping[str, Any] | None, image_channels: int,
                 patch_shape: tuple[int, ...], seed: int = 0) -> None:
        self.spec = augment_module.validate_augment_spec(spec, image_channels, patch_shape)
        self._extra = None
        if self.spec["transforms"]:
            self._extra = augment_module.build_augment(
                {"transforms": self.spec["transforms"]}, image_channels, patch_shape, seed=seed
            )
        self._rng = np.random.default_rng(seed)
        self._generator = torch.Generator().manual_seed(seed)

    @property
    def active(self) -> bool:
        """Whether the spec does anything."""
        s = self.spec
        return bool(s["flips"] or s["rot90"] or s["flip_planes"] or s["transforms"])

    def _draw(self, n: int) -> torch.Tensor:
        return torch.rand(n, generator=self._generator) < 0.5

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """A new augmented batch (CPU tensor in, CPU tensor out); ``batch`` is not modified."""
        x = batch
        if self._extra is not None:
            x = torch.from_numpy(augment_module.augment_batch(self._extra, x.numpy(), self._rng))
        n = x.shape[0]
        per_sample = (n,) + (1,) * (x.ndim - 1)
        axes = []
        if self.spec["flip_planes"] and x.ndim == 5:
            axes.append(2)
        if self.spec["flips"]:
            axes += [x.ndim - 2, x.ndim - 1]
        for axis in axes:
            x = torch.where(self._draw(n).view(per_sample), x.flip(axis), x)
        if self.spec["rot90"]:
            square = x.shape[-1] == x.shape[-2]
            if square and self.spec["flips"]:
                # With random flips of rows and columns, a random transpose completes the 8
                # symmetries of the square uniformly: one batched op instead of three rot90s.
                x = torch.where(self._draw(n).view(per_sample), x.transpose(-1, -2), x)
            else:
                turns = torch.randint(4, (n,), generator=self._generator)
                if not square:
                    turns = 2 * (turns % 2)
                out = x.clone()
                for k in (1, 2, 3):
                    chosen = torch.nonzero(turns == k).squeeze(1)
                    if chosen.numel():
                        out[chosen] = torch.rot90(x[chosen], k, dims=(-2, -1))
                x = out
        return x.contiguous()


# --------------------------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------------------------


def memory_format_for(spatial_dims: int) -> torch.memory_format:
    """Layout for a network's weights and batches: channels-last in 2D.

    oneDNN (CPU) and cuDNN run 2D convolutions faster on channels-last tensors: the default
    CNN trained 1.3x (40 x 40 patches) to 1.7x (72 x 72) faster on the 2-core CPU. 3D stays
    in the default layout.
    """
    return torch.channels_last if spatial_dims == 2 else torch.contiguous_format


#: An epoch is at least this many optimiser steps. With a few dozen labelled objects (the
#: demo, a first round of annotation) one pass over the data is one or two batches, too few
#: steps for the weights and the BatchNorm statistics to move: on the demo's 36 labels the
#: default CNN stayed at macro-F1 0.20 after 11 one-batch epochs. Small sets are therefore
#: passed several times per epoch, reshuffled each time; large sets are unaffected.
MIN_STEPS_PER_EPOCH = 16


def _passes(n: int, batch_size: int) -> int:
    """How many shuffled passes over ``n`` objects one epoch makes (1 for large sets)."""
    return max(1, math.ceil(MIN_STEPS_PER_EPOCH * batch_size / max(n, 1)))


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Shuffled index batches, at least :data:`MIN_STEPS_PER_EPOCH` of them; a last batch of
    one object is dropped (BatchNorm needs 2)."""
    order = torch.cat([torch.randperm(n, generator=generator)
                       for _ in range(_passes(n, batch_size))])
    batches = list(order.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches.pop()
    return batches


def _steps_per_epoch(n: int, batch_size: int) -> int:
    total = n * _passes(n, batch_size)
    steps = math.ceil(total / batch_size)
    return steps - 1 if steps > 1 and total % batch_size == 1 else steps


def train_one_epoch(
    model: nn.Module,
    data: tuple[Any, Any] | Iterable[tuple[torch.Tensor, torch.Tensor]],
    loss_fn: nn.Module,
    optimiser: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    device: torch.device,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    scaler: torch.amp.GradScaler | None = None,
    *,
    batch_size: int = 64,
    generator: torch.Generator | None = None,
    stop: Any = None,
    deadline: float | None = None,
    timings: dict[str, float] | None = None,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> float:
    """One pass over the training data; returns the mean training loss.

    Parameters
    ----------
    model : nn.Module
        Put in train mode here.
    data : (X, y) or iterable of (x_batch, y_batch)
        ``X`` float32 ``(N, C, ...)`` and ``y`` int64 ``(N,)`` as numpy arrays or CPU tensors
        (shuffled into batches of ``batch_size`` with ``generator``), or ready batches.
    loss_fn, optimiser
        From :func:`build_loss` and :func:`build_optimiser`.
    scheduler : LRScheduler or None
        Stepped after every batch.
    device : torch.device
    augment : callable, optional
        ``batch (CPU tensor) -> new batch``, e.g. :class:`BatchAugment`.
    scaler : torch.amp.GradScaler, optional
        Mixed precision (CUDA): the forward pass then runs under ``torch.autocast``.
    stop : object with ``is_set()``, optional
        Checked before every batch; when set, the epoch ends at once.
    deadline : float, optional
        ``time.monotonic()`` value after which the epoch ends at once.
    timings : dict, optional
        Accumulates ``"compute"`` (forward + backward + step) and ``"total"`` seconds.
    memory_format : torch.memory_format
        Layout of the batches on the device (:func:`memory_format_for`).

    Returns
    -------
    float
        Mean loss over the batches run (NaN when none ran).
    """
    model.train()
    if isinstance(data, tuple) and len(data) == 2:
        X = torch.as_tensor(data[0])
        y = torch.as_tensor(data[1])
        generator = generator or torch.Generator().manual_seed(0)
        batches: Iterable = ((X[i], y[i]) for i in _batches(len(y), batch_size, generator))
    else:
        batches = data
    use_amp = scaler is not None and device.type == "cuda"
    total, count = 0.0, 0
    started = time.perf_counter()
    compute = 0.0
    for xb, yb in batches:
        if (stop is not None and stop.is_set()) or (
            deadline is not None and time.monotonic() > deadline
        ):
            break
        if augment is not None:
            xb = augment(xb)
        xb = xb.to(device, non_blocking=True, memory_format=memory_format)
        yb = yb.to(device, non_blocking=True)
        tic = time.perf_counter()
        optimiser.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, enabled=use_amp):
            logits = model(xb)
            loss = loss_fn(logits, yb)
        if use_amp:
            scaler.scale(loss).backward()
            scaler.step(optimiser)
            scaler.update()
        else:
            loss.backward()
            optimiser.step()
        if scheduler is not None:
            scheduler.step()
        value = float(loss.detach())  # synchronises: compute time is measured honestly
        compute += time.perf_counter() - tic
        total += value * len(yb)
        count += len(yb)
    if timings is not None:
        timings["compute"] = timings.get("compute", 0.0) + compute
        timings["total"] = timings.get("total", 0.0) + time.perf_counter() - started
    return total / count if count else float("nan")


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    X: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor | None,
    device: torch.device,
    batch_size: int = 256,
    loss_fn: nn.Module | None = None,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Predict a set of patches and score the loss.

    Parameters
    ----------
    model : nn.Module
        Put in eval mode here.
    X : float32, shape (N, C, ...)
    y : int, shape (N,), or None
        True classes (None: no loss).
    device : torch.device
    batch_size : int
    loss_fn : nn.Module, optional
        Loss to report (default: unweighted cross-entropy).
    memory_format : torch.memory_format
        Layout of the batches on the device (:func:`memory_format_for`).

    Returns
    -------
    val_loss : float
        Mean loss over the objects (NaN when ``y`` is None or N = 0).
    probs : ndarray of float32, shape (N, K)
        Softmax probabilities.
    preds : ndarray of int64, shape (N,)
        Most probable class.
    """
    model.eval()
    X = torch.as_tensor(X)
    use_amp = device.type == "cuda"
    chunks = []
    for start in range(0, len(X), batch_size):
        xb = X[start : start + batch_size].to(device, non_blocking=True,
                                              memory_format=memory_format)
        with torch.autocast(device_type=device.type, enabled=use_amp):
            chunks.append(model(xb).float())
    if not chunks:
        return float("nan"), np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    logits = torch.cat(chunks)
    loss = float("nan")
    if y is not None:
        target = torch.as_tensor(y).to(device)
        loss = float(loss_fn(logits, target) if loss_fn is not None
                     else F.cross_entropy(logits, target))
    probs = logits.softmax(dim=1).cpu().numpy().astype(np.float32)
    return loss, probs, probs.argmax(axis=1).astype(np.int64)


@dataclass
class LoadedModel:
    """A model ready to predict: ``module`` in eval mode on ``device``, and its description.

    Attributes
    ----------
    module : torch.nn.Module
    meta : dict
        The content of ``model.json`` (see :func:`save_model`).
    classes : tuple of str
    patch_size : tuple of int
    device : torch.device
    folder : Path or None
        Where it was loaded from (None for a model kept in memory).
    """

    module: nn.Module
    meta: dict
    classes: tuple[str, ...]
    patch_size: tuple[int, ...]
    device: torch.device
    folder: Path | None = None


@dataclass
class Run:
    """The result of :func:`train`.

    Attributes
    ----------
    history : list of dict
        One flat record per epoch (see :func:`train`).
    best_epoch : int
        Epoch whose weights were kept (1-based).
    metrics : dict
        :func:`svetlana_core.metrics.classification_metrics` of the best epoch on the
        validation set, plus ``val_loss``.
    model_dir : Path or None
        The saved model folder (None when ``out_dir`` was None).
    stopped : bool
        True when the ``stop`` event ended the run.
    stop_reason : str
        "completed", "early stopping", "time limit" or "stopped".
    seconds : float
    device : str
    summary : str
        One paragraph for people: split, best epoch and its figures, why it ended.
    classes : tuple of str
    split : dict
        ``n_train``, ``n_val``, ``note`` (grouped or fallback), ``val_groups``.
    model : LoadedModel
        The best model, in memory, in eval mode.
    """

    history: list[dict]
    best_epoch: int
    metrics: dict
    model_dir: Path | None
    stopped: bool
    stop_reason: str
    seconds: float
    device: str
    summary: str
    classes: tuple[str, ...]
    split: dict
    model: LoadedModel = field(repr=False)


def _record(epoch: int, train_loss: float, val_loss: float, scores: dict | None,
            classes: Sequence[str], lr: float, seconds: float) -> dict[str, Any]:
    record: dict[str, Any] = {
        "epoch": epoch, "train_loss": _finite(train_loss), "val_loss": _finite(val_loss),
    }
    for key in ("accuracy", "balanced_accuracy", "macro_f1"):
        record[key] = None if scores is None else scores[key]
    for c in classes:
        record[f"recall_{c}"] = None if scores is None else scores["per_class"][c]["recall"]
    record["lr"] = lr
    record["seconds"] = round(seconds, 3)
    return record


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _cpu_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def config_for_parent(config: TrainConfig) -> TrainConfig:
    """With ``continue_from`` set, take the parent's architecture and patch settings.

    The child must crop patches exactly as its parent did and keep its network, so
    ``arch``, ``arch_params``, ``patch_size``, ``patch_mode``, ``dilation`` and
    ``normalisation`` come from the parent's ``model.json``. Without ``continue_from`` the
    config is returned unchanged.

    Raises
    ------
    InputError
        When the parent folder is not a valid model folder.
    """
    if config.continue_from is None:
        return config
    meta = _read_meta(Path(config.continue_from))
    patch = tuple(meta["patch_size"])
    return dataclasses.replace(
        config, arch=meta["arch"], arch_params=meta["arch_params"],
        patch_size=patch[0] if len(set(patch)) == 1 and len(patch) == 2 else patch,
        patch_mode=meta["patch_mode"], dilation=meta["dilation"],
        normalisation=meta["normalisation"],
    )


def _check_against_parent(dataset: ObjectSet, meta: dict, folder: Path) -> np.ndarray:
    """Index map from dataset classes to the parent's; raises when the data do not fit it."""
    parent_classes = list(meta["classes"])
    if set(dataset.classes) != set(parent_classes):
        raise InputError(
            f"cannot continue from {folder}: it has classes {parent_classes} but the labels have "
            f"{list(dataset.classes)}; the same classes are required"
        )
    for key, mine, theirs in (
        ("patch_size", list(dataset.patch_size), list(meta["patch_size"])),
        ("in_channels", dataset.in_channels, meta["in_channels"]),
        ("patch_mode", dataset.patch_mode, meta["patch_mode"]),
        ("normalisation", dataset.normalisation, meta["normalisation"]),
    ):
        if mine != theirs:
            raise InputError(
                f"cannot continue from {folder}: its {key} is {theirs} but the data have {mine}; "
                "build the data with config_for_parent(config)"
            )
    return np.array([parent_classes.index(c) for c in dataset.classes], dtype=np.int64)


def train(
    dataset: ObjectSet,
    config: TrainConfig,
    on_epoch: Callable[[dict[str, Any]], Any] | None = None,
    stop: Any = None,
    out_dir: str | os.PathLike | None = None,
    parent: str | os.PathLike | None = None,
    groups: Callable[[str], Any] | Sequence[Any] | np.ndarray | None = None,
    split: tuple[np.ndarray, np.ndarray] | None = None,
    timings: dict[str, float] | None = None,
) -> Run:
    """Train a classifier on an :class:`ObjectSet`; never prints.

    Parameters
    ----------
    dataset : ObjectSet
        From :func:`build_samples` and friends.
    config : TrainConfig
    on_epoch : callable, optional
        Called after each epoch with a flat, JSON-able record: ``epoch``, ``train_loss``,
        ``val_loss``, ``accuracy``, ``balanced_accuracy``, ``macro_f1``, ``recall_<class>``
        for every class, ``lr``, ``seconds`` (of that epoch), ``best`` (whether these are now
        the kept weights). Without a validation set the scores are those of the training
        objects.
    stop : threading.Event or multiprocessing.Event (anything with ``is_set()``), optional
        Checked before every batch: the run ends within one batch, keeps the best weights
        of the finished epochs (or scores the unfinished one if none finished) and saves.
    out_dir : path, optional
        Model folder to write (must not exist, or be empty: checked before training). It is
        written as a checkpoint each time the kept weights change (``stop_reason``
        ``"in progress"`` in its ``model.json``), so a worker killed mid-run leaves its best
        model so far, and rewritten at the end. None: nothing is written; the model is in
        ``Run.model``.
    parent : path, optional
        Model folder to continue from (overrides ``config.continue_from``).
    groups : callable, sequence or None
        Split groups: ``image_name -> key`` applied to ``dataset.images``, or one key per
        object. Default: ``dataset.groups``.
    split : (train_idx, val_idx), optional
        A split made by the caller (e.g. to score a baseline on the same objects).
    timings : dict, optional
        For benchmarks: accumulates ``compute`` (forward + backward + step), ``total`` (the
        training passes) and ``evaluate`` seconds.

    Returns
    -------
    Run

    Raises
    ------
    InputError
        Bad config for these data, a parent with other classes or patch settings.
    """
    started = time.monotonic()
    if out_dir is not None:
        out_dir = Path(out_dir)
        if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
            raise InputError(f"model folder {out_dir} already exists and is not empty")
    if parent is not None:
        config = dataclasses.replace(config, continue_from=os.fspath(parent))
    if not isinstance(dataset, ObjectSet):
        raise InputError(f"dataset must be an ObjectSet, got {type(dataset).__name__}")
    config = config_for_parent(config)
    config.validate(in_channels=dataset.in_channels, spatial_dims=dataset.spatial_dims)
    parent_meta, parent_folder, classes, y_all = None, None, dataset.classes, dataset.y
    if config.continue_from is not None:
        parent_folder = Path(config.continue_from)
        parent_meta = _read_meta(parent_folder)
        mapping = _check_against_parent(dataset, parent_meta, parent_folder)
        classes, y_all = tuple(parent_meta["classes"]), mapping[dataset.y]

    if config.patch_size is not None:
        wanted = config.patch_size if isinstance(config.patch_size, tuple) else \
            (config.patch_size,) * dataset.spatial_dims
        if tuple(wanted) != dataset.patch_size:
            raise InputError(
                f"config patch_size is {config.patch_size} but the dataset patches are "
                f"{dataset.patch_size}; build the dataset with this config"
            )
    arch_params = config.full_arch_params(dataset.patch_size)
    models.check_patch_size(config.arch, arch_params, dataset.patch_size)

    set_seed(config.seed)
    device = resolve_device(config.device)
    if device.type == "cpu" and torch.get_num_threads() != _cpu_threads():
        torch.set_num_threads(_cpu_threads())

    # -- split ------------------------------------------------------------------------------
    if groups is None:
        group_keys = dataset.groups
    elif callable(groups):
        group_keys = _group_keys(dataset.images, groups)
    else:
        group_keys = np.asarray(groups).astype(str)
        if len(group_keys) != len(dataset):
            raise InputError(f"groups has {len(group_keys)} values for {len(dataset)} objects")
    if split is None:
        train_idx, val_idx, note = _split_with_note(y_all, group_keys, config.val_fraction,
                                                    config.seed)
    else:
        train_idx, val_idx = (np.asarray(s, dtype=np.int64) for s in split)
        note = "split given by the caller"
    if not len(train_idx):
        raise InputError("the training set is empty")
    has_val = len(val_idx) > 0
    eval_idx = val_idx if has_val else train_idx

    # -- model, loss, optimiser ------------------------------------------------------------
    n_classes = len(classes)
    module = models.build_model(config.arch, dataset.in_channels, n_classes,
                                dataset.spatial_dims, **arch_params)
    arch_params = module.build_config["params"]  # pretrained path replaced by None
    if parent_meta is not None:
        module.load_state_dict(_read_weights(parent_folder, module))
    layout = memory_format_for(dataset.spatial_dims)
    module.to(device, memory_format=layout)
    weights = class_weights(y_all[train_idx], n_classes, config.class_weights)
    loss_fn = build_loss(config.loss, n_classes, weights, config.label_smoothing).to(device)
    optimiser = build_optimiser(config.optimiser, module.parameters(), config.lr,
                                config.weight_decay)
    steps = _steps_per_epoch(len(train_idx), config.batch_size)
    deadline = None if config.max_minutes is None else started + 60 * config.max_minutes
    scheduler = build_scheduler(
        config.schedule, optimiser, config.epochs, steps, config.step_size, config.gamma,
        budget_s=None if deadline is None else max(1e-3, deadline - time.monotonic()),
    )
    scaler = torch.amp.GradScaler("cuda") if device.type == "cuda" else None
    augment = BatchAugment(config.augment, dataset.image_channels, dataset.patch_size,
                           seed=config.seed)
    generator = torch.Generator().manual_seed(config.seed)

    # The patches stay where they are (shared, never written): each batch is gathered from
    # them by index, so the training set is not copied.
    X = torch.from_numpy(np.ascontiguousarray(dataset.X))
    y = torch.from_numpy(y_all)
    train_index = torch.from_numpy(train_idx)
    X_eval, y_eval = X[torch.from_numpy(eval_idx)], y[torch.from_numpy(eval_idx)]

    history: list[dict] = []
    best = {"epoch": 0, "f1": -1.0, "loss": math.inf, "state": None, "scores": None}
    split_info = {
        "n_train": int(len(train_idx)), "n_val": int(len(val_idx)), "note": note,
        "val_groups": sorted(set(group_keys[val_idx].tolist())),
    }

    def meta_for(reason: str) -> dict[str, Any]:
        """``model.json`` of the kept weights: for a checkpoint and for the end."""
        metrics = dict(best["scores"], val_loss=_finite(best["loss"]))
        summary = _summary(dataset, classes, split_info, has_val, best["epoch"], len(history),
                           metrics, reason, config, time.monotonic() - started, device)
        return {
            "format_version": FORMAT_VERSION,
            "arch": config.arch,
            "arch_params": arch_params,
            "spatial_dims": dataset.spatial_dims,
            "in_channels": dataset.in_channels,
            "image_channels": dataset.image_channels,
            "classes": list(classes),
            "patch_size": list(dataset.patch_size),
            "patch_mode": dataset.patch_mode,
            "dilation": dataset.dilation,
            "normalisation": dataset.normalisation,
            "config": config.to_dict(),
            "history": history,
            "best_epoch": best["epoch"],
            "metrics": metrics,
            "data": {
                "n": int(len(dataset)),
                "n_per_class": {c: int((y_all == i).sum()) for i, c in enumerate(classes)},
                "n_train": split_info["n_train"],
                "n_val": split_info["n_val"],
                "n_images": int(len(np.unique(dataset.images))),
                "images": sorted(set(dataset.images.tolist()))[:1000],
                "split": note,
                "val_groups": split_info["val_groups"][:1000],
                "validation": "held-out objects" if has_val
                              else "training objects (no validation)",
            },
            "versions": _versions(),
            "parent": None if parent_folder is None else os.fspath(parent_folder.resolve()),
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "stop_reason": reason,
            "summary": summary,
        }

    reason, waited, last_epoch_seconds = "completed", 0, 0.0
    for epoch in range(1, config.epochs + 1):
        if stop is not None and stop.is_set() and history:
            reason = "stopped"
            break
        if deadline is not None and epoch > 1 and \
                time.monotonic() + last_epoch_seconds > deadline:
            reason = "time limit"
            break
        tic = time.monotonic()
        batches = (
            (X[index], y[index])
            for index in (train_index[b] for b in _batches(len(train_idx), config.batch_size,
                                                            generator))
        )
        train_loss = train_one_epoch(
            module, batches, loss_fn, optimiser, scheduler, device,
            augment if augment.active else None, scaler, batch_size=config.batch_size,
            generator=generator, stop=stop, deadline=deadline, timings=timings,
            memory_format=layout,
        )
        interrupted = (stop is not None and stop.is_set()) or (
            deadline is not None and time.monotonic() > deadline
        )
        if interrupted:
            reason = "stopped" if stop is not None and stop.is_set() else "time limit"
            if history:  # keep the finished epochs' best weights; drop the unfinished epoch
                break
        tic_eval = time.perf_counter()
        val_loss, _, preds = evaluate(module, X_eval, y_eval, device,
                                      max(256, config.batch_size), loss_fn, layout)
        if timings is not None:
            timings["evaluate"] = timings.get("evaluate", 0.0) + time.perf_counter() - tic_eval
        scores = classification_metrics(
            [classes[i] for i in y_eval.numpy()], [classes[i] for i in preds], classes
        )
        lr = optimiser.param_groups[0]["lr"]
        last_epoch_seconds = time.monotonic() - tic
        record = _record(epoch, train_loss, val_loss, scores, classes, lr, last_epoch_seconds)
        # Patience counts epochs without a higher macro-F1; on a tie the lower validation
        # loss wins the kept weights but does not reset the patience.
        better = scores["macro_f1"] > best["f1"]
        improved = better or (scores["macro_f1"] == best["f1"] and val_loss < best["loss"])
        if improved:
            best.update(epoch=epoch, f1=scores["macro_f1"], loss=val_loss, scores=scores,
                        state={k: v.detach().to("cpu", copy=True)
                               for k, v in module.state_dict().items()})
        waited = 0 if better else waited + 1
        record["best"] = improved
        if interrupted:
            record["partial"] = True
        history.append(record)
        if improved and out_dir is not None:
            # Before on_epoch, so a caller told "best" finds the folder on disk. The default
            # CNN's weights are 120 kB, written in ~1 ms; a killed worker keeps this model.
            save_model(out_dir, best["state"], meta_for("in progress"), replace=True)
        if on_epoch is not None:
            on_epoch(dict(record))
        if interrupted:
            break
        if has_val and config.patience is not None and waited >= config.patience:
            reason = "early stopping"
            break

    module.load_state_dict(best["state"])
    module.eval()
    meta = meta_for(reason)
    model_dir = None if out_dir is None else save_model(out_dir, module, meta, replace=True)
    loaded = LoadedModel(module=module, meta=meta, classes=tuple(classes),
                         patch_size=dataset.patch_size, device=device, folder=model_dir)
    return Run(
        history=history, best_epoch=best["epoch"], metrics=meta["metrics"],
        model_dir=model_dir, stopped=reason == "stopped", stop_reason=reason,
        seconds=time.monotonic() - started, device=str(device), summary=meta["summary"],
        classes=tuple(classes), split=split_info, model=loaded,
    )


def _summary(dataset: ObjectSet, classes: Sequence[str], split: dict, has_val: bool,
             best_epoch: int, n_epochs: int, metrics: dict, reason: str, config: TrainConfig,
             seconds: float, device: torch.device) -> str:
    scored = "validation" if has_val else "training (no validation set: optimistic)"
    ending = {
        "completed": f"ran all {config.epochs} epochs",
        "early stopping": f"stopped early: no better validation macro-F1 in {config.patience} "
                          "epochs",
        "time limit": f"stopped at the time limit of {config.max_minutes:g} min"
                      if config.max_minutes else "stopped at the time limit",
        "stopped": "stopped on request",
        "in progress": "checkpoint while training",
    }[reason]
    return (
        f"{config.arch} on {len(classes)} classes, {dataset.patch_size} patches: "
        f"{split['n_train']} training / {split['n_val']} validation objects ({split['note']}). "
        f"Best epoch {best_epoch} of {n_epochs}: {scored} macro-F1 {metrics['macro_f1']:.3f}, "
        f"balanced accuracy {metrics['balanced_accuracy']:.3f}, accuracy "
        f"{metrics['accuracy']:.3f}. {ending.capitalize()}; {seconds:.0f} s on {device}."
    )


def _versions() -> dict[str, str]:
    import svetlana_core

    versions = {"python": platform.python_version(), "torch": torch.__version__,
                "numpy": np.__version__, "svetlana": svetlana_core.__version__}
    try:  # the installed version, without importing it (the small CNN does not need it)
        from importlib.metadata import version

        versions["torchvision"] = version("torchvision")
    except Exception:  # not installed
        versions["torchvision"] = None
    return versions


# --------------------------------------------------------------------------------------------
# model folders
# --------------------------------------------------------------------------------------------

# key -> (types, description); checked by load_model and by save_model before writing.
_META_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "format_version": ((int,), "an integer"),
    "arch": ((str,), "a string"),
    "arch_params": ((dict,), "an object"),
    "spatial_dims": ((int,), "2 or 3"),
    "in_channels": ((int,), "an integer >= 1"),
    "image_channels": ((int,), "an integer >= 0"),
    "classes": ((list,), "a list of at least two distinct class names"),
    "patch_size": ((list,), "a list of integers, one per spatial axis"),
    "patch_mode": ((str,), "'context' or 'masked'"),
    "dilation": ((int,), "an integer >= 0"),
    "normalisation": ((str,), "'percentile', 'minmax' or 'none'"),
    "config": ((dict,), "an object"),
    "history": ((list,), "a list"),
    "best_epoch": ((int, type(None)), "an integer or null"),
    "metrics": ((dict, type(None)), "an object or null"),
    "data": ((dict,), "an object"),
    "versions": ((dict,), "an object"),
    "parent": ((str, type(None)), "a path or null"),
    "created_at": ((str,), "a date string"),
}


#: Largest patch side (pixels) that a model.json may declare.
MAX_PATCH_SIZE = 4096


def _check_meta(meta: Any, path: Path) -> dict:
    if not isinstance(meta, dict):
        raise InputError(f"{path} must hold a JSON object, got {type(meta).__name__}")
    for key, (types, what) in _META_KEYS.items():
        if key not in meta:
            raise InputError(f"{path} has no key {key!r}")
        value = meta[key]
        if not isinstance(value, types) or (isinstance(value, bool) and int in types):
            raise InputError(f"{path} key {key!r} must be {what}, got {value!r}")
    if meta["format_version"] != FORMAT_VERSION:
        raise InputError(
            f"{path} key 'format_version' is {meta['format_version']}; this version of Svetlana "
            f"reads {FORMAT_VERSION}"
        )
    classes = meta["classes"]
    if len(classes) < 2 or not all(isinstance(c, str) and c for c in classes) or \
            len(set(classes)) != len(classes):
        raise InputError(
            f"{path} key 'classes' must be {_META_KEYS['classes'][1]}, got {classes!r}"
        )
    if meta["spatial_dims"] not in (2, 3):
        raise InputError(f"{path} key 'spatial_dims' must be 2 or 3, got {meta['spatial_dims']!r}")
    if meta["in_channels"] < 1 or meta["image_channels"] != meta["in_channels"] - 1:
        raise InputError(
            f"{path} keys 'in_channels' ({meta['in_channels']}) and 'image_channels' "
            f"({meta['image_channels']}) disagree: in_channels = image_channels + 1"
        )
    size = meta["patch_size"]
    # The upper bound keeps a tampered file from asking for a patch of 100000 x 100000 pixels
    # (224 GiB per batch) at the first prediction.
    if len(size) != meta["spatial_dims"] or not all(
            _is_int(s) and 0 < s <= MAX_PATCH_SIZE for s in size):
        raise InputError(
            f"{path} key 'patch_size' must be {meta['spatial_dims']} positive integers "
            f"(at most {MAX_PATCH_SIZE}), got {size!r}"
        )
    for key, choices in (("patch_mode", PATCH_MODES), ("normalisation", NORMALISATIONS)):
        if meta[key] not in choices:
            raise InputError(
                f"{path} key {key!r} must be one of {list(choices)}, got {meta[key]!r}"
            )
    if meta["dilation"] < 0:
        raise InputError(f"{path} key 'dilation' must be >= 0, got {meta['dilation']!r}")
    return meta


def _read_meta(folder: Path) -> dict:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"model folder {folder} not found")
    path = folder / MODEL_FILE
    if not path.is_file():
        raise InputError(f"{path} not found: not a model folder")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path} is not valid JSON: {error}") from None
    return _check_meta(meta, path)


def _read_weights(folder: Path, module: nn.Module) -> dict[str, torch.Tensor]:
    """The safetensors state dict of a folder, checked key by key and shape by shape."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(folder) / WEIGHTS_FILE
    if not path.is_file():
        pickled = sorted(p.name for p in Path(folder).glob("*")
                         if p.suffix.lower() in (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt"))
        if pickled:
            raise InputError(
                f"{path} not found; {', '.join(pickled)} in {folder} is not loaded: pickled "
                "files can run code, so weights are read from safetensors only"
            )
        raise InputError(f"{path} not found: the model folder has no weights")
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise InputError(f"{path} cannot be read as safetensors: {error}") from None
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        key = (missing or unexpected)[0]
        raise InputError(
            f"{path} does not fit the architecture in {MODEL_FILE}: key {key!r} is "
            f"{'missing' if missing else 'unexpected'} ({len(missing)} missing, "
            f"{len(unexpected)} unexpected)"
        )
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise InputError(
                f"{path} key {key!r} has shape {tuple(state[key].shape)} but the architecture "
                f"in {MODEL_FILE} needs {tuple(tensor.shape)}"
            )
    return state


def save_model(
    folder: str | os.PathLike,
    module: nn.Module | Mapping[str, torch.Tensor],
    meta: Mapping[str, Any],
    replace: bool = False,
) -> Path:
    """Write a model folder atomically: ``model.json`` + ``weights.safetensors``.

    A new folder is written as a temporary folder beside ``folder``, then renamed: a reader
    sees no folder or a complete one, never half of it. With ``replace=True`` an existing
    model folder (a checkpoint of the same training) is updated file by file, each written
    to a temporary name and renamed over the old one, weights first: a process killed in
    between leaves new weights under the previous ``model.json``, which still loads (same
    architecture) and only under-reports the epoch.

    Parameters
    ----------
    folder : path
        The model folder to create; it must not exist or be empty unless ``replace``.
    module : nn.Module or state dict
        The weights saved (tensors made contiguous, on the CPU).
    meta : mapping
        Everything ``model.json`` holds (keys listed in the module's contract: format_version,
        arch, arch_params, spatial_dims, in_channels, image_channels, classes, patch_size,
        patch_mode, dilation, normalisation, config, history, best_epoch, metrics, data,
        versions, parent, created_at; extra keys are kept). Checked before anything is written.
    replace : bool
        Overwrite the files of an existing model folder.

    Returns
    -------
    Path
        ``folder``.

    Raises
    ------
    InputError
        When ``meta`` lacks a key or has a bad value, or ``folder`` exists and is not empty
        (without ``replace``), or is not a folder.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    meta = _check_meta(_plain(dict(meta)), folder / MODEL_FILE)
    state = module.state_dict() if isinstance(module, nn.Module) else module
    state = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    text = json.dumps(meta, indent=2, allow_nan=False) + "\n"
    if folder.exists() and not folder.is_dir():
        raise InputError(f"model folder {folder} is a file")
    if folder.exists() and any(folder.iterdir()):
        if not replace:
            raise InputError(f"model folder {folder} already exists and is not empty")
        from safetensors.torch import save as weights_bytes

        io.atomic_write_bytes(folder / WEIGHTS_FILE, weights_bytes(state, {"format": "pt"}))
        io.atomic_write_bytes(folder / MODEL_FILE, text.encode("utf-8"))
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        save_file(state, str(temporary / WEIGHTS_FILE), metadata={"format": "pt"})
        (temporary / MODEL_FILE).write_text(text, encoding="utf-8")
        if folder.exists():
            folder.rmdir()  # empty (checked above); rename cannot replace it everywhere
        os.replace(temporary, folder)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return folder


def load_model(folder: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a model folder written by :func:`save_model`.

    ``model.json`` is checked key by key, the network rebuilt from ``arch``/``arch_params``
    and the weights read from ``weights.safetensors`` (nothing is unpickled) and checked key by
    key and shape by shape.

    Parameters
    ----------
    folder : path
    device : str or torch.device
        As :func:`resolve_device` ("auto" allowed).

    Returns
    -------
    LoadedModel
        ``module`` in eval mode on ``device``.

    Raises
    ------
    InputError
        Missing folder or file, invalid JSON, a missing key or a value of the wrong type
        (naming the file and the key), unknown architecture, weights that do not fit.
    """
    folder = Path(folder)
    meta = _read_meta(folder)
    path = folder / MODEL_FILE
    try:
        module = models.build_model(
            meta["arch"], meta["in_channels"], len(meta["classes"]), meta["spatial_dims"],
            **meta["arch_params"],
        )
    except InputError as error:
        raise InputError(f"{path} keys 'arch'/'arch_params': {error}") from None
    module.load_state_dict(_read_weights(folder, module))
    device = device if isinstance(device, torch.device) else resolve_device(device)
    module.to(device, memory_format=memory_format_for(meta["spatial_dims"])).eval()
    return LoadedModel(
        module=module, meta=meta, classes=tuple(meta["classes"]),
        patch_size=tuple(meta["patch_size"]), device=device, folder=folder,
    )


def predict_patches(loaded: LoadedModel, X: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities of patches cut as the model's ``meta`` says.

    Parameters
    ----------
    loaded : LoadedModel
    X : ndarray of float32, shape (N, in_channels, *patch_size)
    batch_size : int

    Returns
    -------
    ndarray of float32, shape (N, n_classes)
        Columns in ``loaded.classes`` order.

    Raises
    ------
    InputError
        When ``X`` does not have the model's channels and patch size.
    """
    X = np.asarray(X, dtype=np.float32)
    expected = (loaded.meta["in_channels"], *loaded.patch_size)
    if X.ndim != len(expected) + 1 or X.shape[1:] != expected:
        raise InputError(f"patches have shape {X.shape[1:]} but the model needs {expected}")
    layout = memory_format_for(loaded.meta["spatial_dims"])
    return evaluate(loaded.module, X, None, loaded.device, batch_size, memory_format=layout)[1]
