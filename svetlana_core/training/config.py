"""Every knob of a training run: :class:`TrainConfig`, a frozen dataclass with a JSON round trip.

Importable without torch and without albumentations (which imports torch): the app's forms
and the CLI check a config before any training starts. An augmentation spec of flips and
rotations only is checked here; albumentations is imported when a spec lists transforms.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from svetlana_core import models, patches
from svetlana_core.errors import InputError
from svetlana_core.models.device import DEVICES
from svetlana_core.models.folder import read_model_meta
from svetlana_core.patches.symmetry import DEFAULT_AUGMENT, parse_switches
from svetlana_core.values import is_int, is_number, plain

LOSSES = ("cross_entropy", "bce", "smooth_l1", "l1", "mse")
OPTIMISERS = ("adam", "adamw", "sgd")
SCHEDULES = ("cosine", "step", "onecycle", "none")
CLASS_WEIGHTS = ("balanced", "sqrt", None)
PATCH_MODES = patches.MODES
NORMALISATIONS = patches.NORMALISATIONS


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


def check_augment(
    spec: Mapping[str, Any] | Sequence[Any] | None,
    image_channels: int | None = None,
    patch_shape: int | tuple[int, ...] | None = None,
) -> dict[str, Any]:
    """:func:`svetlana_core.patches.augment.validate_augment_spec`, without albumentations
    for a spec of flips, rot90 and flip_planes only.

    Parameters
    ----------
    spec : dict, list or None
        An augmentation spec.
    image_channels : int, optional
        Image channels of the patches, to try the albumentations transforms on.
    patch_shape : int or tuple of int, optional
        Spatial patch shape, to check that no transform changes it.

    Returns
    -------
    dict
        ``{"flips": bool, "rot90": bool, "flip_planes": bool, "transforms": [...]}``.

    Examples
    --------
    >>> check_augment({"flips": True})
    {'flips': True, 'rot90': False, 'flip_planes': False, 'transforms': []}
    """
    switches, transforms = parse_switches(spec)
    if not transforms:
        return {**switches, "transforms": []}
    from svetlana_core.patches import augment  # albumentations, and with it torch

    return augment.validate_augment_spec(spec, image_channels, patch_shape)


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
    augment          flips + rot90        :mod:`svetlana_core.patches.augment` spec
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
    channels         None                 the image channels the network sees, e.g. [0, 2]
                                          (None: every channel); kept in the model, which
                                          picks the same ones from images at prediction
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
        default_factory=lambda: copy.deepcopy(DEFAULT_AUGMENT)
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
    channels: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        set_ = lambda key, value: object.__setattr__(self, key, value)
        if self.channels is not None:
            chosen = self.channels
            if (not isinstance(chosen, (list, tuple)) or not chosen
                    or not all(is_int(c) and c >= 0 for c in chosen)
                    or len(set(chosen)) != len(chosen)):
                raise InputError(
                    f"channels={chosen!r} is not valid; give None (every channel) or a list of "
                    "distinct image channel indices, e.g. [0, 2]")
            set_("channels", tuple(int(c) for c in chosen))
        if not isinstance(self.arch, str):
            raise InputError(f"arch={self.arch!r} is not valid; give an architecture name")
        if not isinstance(self.arch_params, Mapping):
            raise InputError(f"arch_params={self.arch_params!r} is not valid; give a dict")
        set_("arch_params", plain(self.arch_params))
        if self.patch_size is not None:
            sizes = (self.patch_size,) if is_int(self.patch_size) else self.patch_size
            if (
                not isinstance(sizes, (list, tuple))
                or len(sizes) not in (1, 2, 3)
                or not all(is_int(s) and s >= 4 for s in sizes)
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
        if not is_int(self.dilation) or not 0 <= self.dilation <= 4096:
            raise InputError(f"dilation={self.dilation!r} is not valid; give an integer from 0 "
                             "to 4096 (pixels)")
        if self.augment is not None and not isinstance(self.augment, (Mapping, list, tuple)):
            raise InputError(
                f"augment={self.augment!r} is not valid; give an augmentation spec dict or None"
            )
        set_("augment", plain(self.augment))
        checks = (
            ("label_smoothing", is_number(self.label_smoothing) and 0 <= self.label_smoothing < 1,
             "a number in [0, 1)"),
            ("lr", is_number(self.lr) and self.lr > 0, "a number > 0"),
            ("weight_decay", is_number(self.weight_decay) and self.weight_decay >= 0,
             "a number >= 0"),
            ("step_size", is_int(self.step_size) and self.step_size >= 1, "an integer >= 1"),
            ("gamma", is_number(self.gamma) and 0 < self.gamma <= 1, "a number in (0, 1]"),
            ("epochs", is_int(self.epochs) and self.epochs >= 1, "an integer >= 1"),
            ("batch_size", is_int(self.batch_size) and self.batch_size >= 2, "an integer >= 2"),
            ("val_fraction", is_number(self.val_fraction) and 0 <= self.val_fraction < 0.9,
             "a number in [0, 0.9)"),
            ("patience", self.patience is None or (is_int(self.patience) and self.patience >= 1),
             "None (off) or an integer >= 1"),
            ("seed", is_int(self.seed) and self.seed >= 0, "an integer >= 0"),
            ("max_minutes", self.max_minutes is None
             or (is_number(self.max_minutes) and self.max_minutes > 0), "None or a number > 0"),
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
                (self.patch_size,) * spatial_dims if is_int(self.patch_size) else self.patch_size
            )
            if len(shape) != spatial_dims:
                raise InputError(
                    f"patch_size={self.patch_size!r} has {len(shape)} axes but the data are "
                    f"{spatial_dims}D"
                )
        image_channels = None if in_channels is None else in_channels - 1
        check_augment(self.augment, image_channels, shape)

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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every field (tuples as lists)."""
        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

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
    meta = read_model_meta(config.continue_from, kind="cnn")
    patch = tuple(meta["patch_size"])
    return dataclasses.replace(
        config, arch=meta["arch"], arch_params=meta["arch_params"],
        patch_size=patch[0] if len(set(patch)) == 1 and len(patch) == 2 else patch,
        patch_mode=meta["patch_mode"], dilation=meta["dilation"],
        normalisation=meta["normalisation"],
    )


