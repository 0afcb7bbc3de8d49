"""Model registry: small custom CNNs and torchvision backbones adapted to object patches.

A model takes a float32 batch of patches ``(N, C, rows, columns)`` (2D) or
``(N, C, planes, rows, columns)`` (3D) and returns logits ``(N, n_classes)``; no softmax, the
losses take logits. ``C`` counts the image channels plus the object-mask channel.

Architectures (see :data:`ARCHITECTURES`, :func:`architecture_params`):

``cnn``
    The light-weight network of the Svetlana paper (Table 2), 2D or 3D: ``depth`` blocks of
    convolution -> BatchNorm -> ReLU -> max-pool 2, then global average pooling -> dropout ->
    linear. Every convolution has ``width`` filters: the width stays constant over the blocks
    (no doubling) so that ``width`` is "the number of filters per layer" as in the paper, and
    ``depth=2, width=16, kernel=3`` is exactly the original plugin's smallest network
    (:data:`ORIGINAL_CNN`). It needs patches of at least ``2 ** depth`` along every axis.
``resnet18/34/50/101/152``, ``densenet121/161/169/201``, ``alexnet``
    torchvision models built with ``weights=None`` (nothing is downloaded), first convolution
    replaced for ``C`` input channels, classifier replaced for ``n_classes``, every parameter
    trainable (the original plugin trained a frozen random backbone; we do not). 2D only.
    They accept any patch of at least :data:`MIN_TORCHVISION_PATCH` pixels: ResNets work at
    any size (adaptive pooling), DenseNets need 29 pixels and AlexNet 63, so inputs smaller than
    32 (DenseNet) or 64 (AlexNet) are upsampled bilinearly inside the model (the model stays
    the unmodified torchvision network, so ImageNet weights still fit). ``small_input=True``
    (ResNet, DenseNet) replaces the 7x7 stride-2 stem and its max-pool by a 3x3 stride-1
    convolution, keeping 4x more resolution for small patches at 16x the compute; it is off
    by default because it is slow on a CPU and its stem cannot take ImageNet weights.
    ``pretrained`` is the path of a local ImageNet state dict (``.pth``/``.pt`` or
    ``.safetensors``) of the same torchvision model; see :func:`load_pretrained`.
"""

from __future__ import annotations

import difflib
import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from svetlana_core.errors import InputError

__all__ = [
    "ARCHITECTURES",
    "MIN_TORCHVISION_PATCH",
    "ORIGINAL_CNN",
    "Architecture",
    "Param",
    "SmallCNN",
    "TorchvisionClassifier",
    "architecture_params",
    "build_model",
    "check_patch_size",
    "count_parameters",
    "feature_layer",
    "load_pretrained",
    "min_patch_size",
    "validate_params",
]

#: Parameters of the original plugin's smallest network: 2 conv layers of 16 filters, kernel 3.
ORIGINAL_CNN: dict[str, Any] = {"depth": 2, "width": 16, "kernel": 3}

#: Smallest patch side accepted by the torchvision models. They run on smaller inputs (ResNets
#: down to 1 pixel), but below 8 pixels a patch holds no object worth classifying.
MIN_TORCHVISION_PATCH = 8


@dataclass(frozen=True)
class Param:
    """One architecture parameter: its default and what values it accepts.

    ``kind`` is "int" (``low``..``high`` inclusive), "float" (``low``..``high``), "choice"
    (one of ``choices``), "bool", or "path" (None or the path of an existing file).
    """

    default: Any
    kind: str
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Architecture:
    """A registered architecture: a description, its parameters and the dimensions it supports."""

    name: str
    description: str
    params: dict[str, Param] = field(default_factory=dict)
    spatial_dims: tuple[int, ...] = (2,)
    family: str = "torchvision"


_PRETRAINED = Param(
    None, "path", "local ImageNet state dict (.pth/.pt/.safetensors) of this torchvision model"
)
_SMALL_INPUT = Param(
    False, "bool", "3x3 stride-1 stem without max-pool: more resolution for small patches, slower"
)

_CNN_PARAMS = {
    "depth": Param(3, "int", "number of conv -> BatchNorm -> ReLU -> max-pool blocks", 1, 5),
    "width": Param(32, "int", "filters per convolution (the same in every block)", 2, 128),
    "kernel": Param(3, "choice", "convolution kernel size", choices=(3, 5, 7)),
    "dropout": Param(0.2, "float", "dropout before the final linear layer", 0.0, 0.9),
}


def _torchvision_entry(name: str, description: str, small_input: bool = True) -> Architecture:
    params = {"pretrained": _PRETRAINED}
    if small_input:
        params["small_input"] = _SMALL_INPUT
    return Architecture(name, description, params)


#: Every architecture :func:`build_model` knows, by name.
ARCHITECTURES: dict[str, Architecture] = {
    "cnn": Architecture(
        "cnn",
        "light-weight CNN of the Svetlana paper, 2D or 3D (depth=2, width=16, kernel=3 is the "
        "original plugin's network)",
        _CNN_PARAMS,
        spatial_dims=(2, 3),
        family="cnn",
    ),
    **{
        f"resnet{n}": _torchvision_entry(f"resnet{n}", f"torchvision ResNet-{n}, 2D")
        for n in (18, 34, 50, 101, 152)
    },
    **{
        f"densenet{n}": _torchvision_entry(f"densenet{n}", f"torchvision DenseNet-{n}, 2D")
        for n in (121, 161, 169, 201)
    },
    "alexnet": _torchvision_entry(
        "alexnet", "torchvision AlexNet, 2D (patches under 64 pixels are upsampled to 64)", False
    ),
}

# Below these sizes the torchvision network fails (measured with batch 2: DenseNet 29, AlexNet
# 63); smaller inputs are upsampled to them. ResNet works at any size.
_NATIVE_MIN = {"resnet": 1, "densenet": 32, "alexnet": 64}
_NATIVE_MIN_SMALL_INPUT = {"resnet": 1, "densenet": 8}


def _unknown(kind: str, value: str, valid: list[str]) -> InputError:
    close = difflib.get_close_matches(value, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return InputError(f"unknown {kind} {value!r}{hint}; valid: {', '.join(valid)}")


def _architecture(name: str) -> Architecture:
    if not isinstance(name, str) or name not in ARCHITECTURES:
        raise _unknown("architecture", str(name), list(ARCHITECTURES))
    return ARCHITECTURES[name]


def architecture_params(name: str) -> dict[str, Any]:
    """Default parameters of an architecture.

    Parameters
    ----------
    name : str
        A key of :data:`ARCHITECTURES`.

    Returns
    -------
    dict
        ``{parameter: default}``, JSON-able.

    Examples
    --------
    >>> architecture_params("cnn")
    {'depth': 3, 'width': 32, 'kernel': 3, 'dropout': 0.2}
    """
    return {key: p.default for key, p in _architecture(name).params.items()}


def _check_value(arch: str, key: str, value: Any, spec: Param) -> Any:
    where = f"{arch} {key}={value!r}"
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise InputError(f"{where} is not valid: choose true or false")
        return value
    if spec.kind == "path":
        if value is None:
            return None
        if not isinstance(value, (str, os.PathLike)) or not str(value):
            raise InputError(f"{where} is not valid: give the path of a local weights file")
        return str(value)
    if spec.kind == "choice":
        if isinstance(value, bool) or value not in spec.choices:
            choices = ", ".join(str(c) for c in spec.choices)
            raise InputError(f"{where} is not valid: choose one of {choices}")
        return spec.choices[spec.choices.index(value)]  # 3.0 -> 3
    if spec.kind == "int":
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        if not ok or not spec.low <= value <= spec.high:
            raise InputError(
                f"{where} is out of range: choose an integer from {spec.low} to {spec.high}"
            )
        return int(value)
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not spec.low <= value <= spec.high:
        raise InputError(f"{where} is out of range: choose a number from {spec.low} to {spec.high}")
    return float(value)


def validate_params(
    name: str, params: Mapping[str, Any] | None = None, spatial_dims: int = 2
) -> dict[str, Any]:
    """Check architecture parameters and fill in the defaults.

    Parameters
    ----------
    name : str
        Architecture name, a key of :data:`ARCHITECTURES`.
    params : mapping, optional
        Parameters to check; missing ones take their default.
    spatial_dims : {2, 3}
        2 for ``(C, rows, columns)`` patches, 3 for ``(C, planes, rows, columns)``.

    Returns
    -------
    dict
        Every parameter of the architecture, validated, in registry order.

    Raises
    ------
    InputError
        Unknown architecture or parameter, a value out of range, or 3D with a 2D-only model.
    """
    arch = _architecture(name)
    if spatial_dims not in (2, 3) or isinstance(spatial_dims, bool):
        raise InputError(f"spatial_dims={spatial_dims!r} is not valid: choose 2 or 3")
    if spatial_dims not in arch.spatial_dims:
        raise InputError(
            f"{name} is 2D only but spatial_dims=3 was asked; use 'cnn' for 3D patches"
        )
    params = dict(params or {})
    for key in params:
        if key not in arch.params:
            valid = list(arch.params) or ["(none)"]
            close = difflib.get_close_matches(str(key), list(arch.params), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InputError(
                f"{name} got unknown parameter {key!r}{hint}; valid: {', '.join(valid)}"
            )
    return {
        key: _check_value(name, key, params.get(key, spec.default), spec)
        for key, spec in arch.params.items()
    }


def min_patch_size(name: str, params: Mapping[str, Any] | int | None = None) -> int:
    """Smallest patch side (pixels, along every spatial axis) an architecture accepts.

    Parameters
    ----------
    name : str
        Architecture name.
    params : mapping or int, optional
        Its parameters (only ``depth`` matters, for ``cnn``); an int is taken as the depth.

    Returns
    -------
    int
        ``2 ** depth`` for ``cnn`` (each block halves the size); :data:`MIN_TORCHVISION_PATCH`
        for the torchvision models, which upsample what their convolutions cannot take.

    Examples
    --------
    >>> min_patch_size("cnn", {"depth": 4})
    16
    """
    arch = _architecture(name)
    if isinstance(params, numbers.Integral) and not isinstance(params, bool):
        params = {"depth": params}
    full = validate_params(name, params, spatial_dims=arch.spatial_dims[-1])
    if arch.family == "cnn":
        return 2 ** full["depth"]
    return MIN_TORCHVISION_PATCH


def check_patch_size(
    name: str, params: Mapping[str, Any] | None, patch_size: int | tuple[int, ...]
) -> None:
    """Raise :class:`InputError` when a patch is too small for an architecture.

    Parameters
    ----------
    name : str
        Architecture name.
    params : mapping or None
        Its parameters.
    patch_size : int or tuple of int
        Patch side, or spatial shape ``(rows, columns)`` / ``(planes, rows, columns)``.

    Raises
    ------
    InputError
        E.g. "patch size 8 is too small for cnn depth 4: needs at least 16".
    """
    sizes = (patch_size,) if isinstance(patch_size, numbers.Integral) else tuple(patch_size)
    if not sizes or not all(isinstance(s, numbers.Integral) and s > 0 for s in sizes):
        raise InputError(f"patch size {patch_size!r} is not valid: give positive integers")
    need = min_patch_size(name, params)
    if min(sizes) < need:
        shown = sizes[0] if len(sizes) == 1 else tuple(int(s) for s in sizes)
        what = f"cnn depth {need.bit_length() - 1}" if name == "cnn" else name
        axis = "" if len(sizes) == 1 else " along every axis"
        raise InputError(
            f"patch size {shown} is too small for {what}: needs at least {need}{axis}"
        )


class SmallCNN(nn.Module):
    """The Svetlana paper's light-weight CNN, 2D or 3D.

    ``depth`` blocks of convolution (``width`` filters, ``kernel`` wide, same padding, no bias)
    -> BatchNorm -> ReLU -> max-pool 2, then global average pooling -> dropout -> linear.

    Parameters
    ----------
    in_channels, n_classes : int
        Input channels (image channels + mask channel) and classes.
    spatial_dims : {2, 3}
        Convolution dimensionality.
    depth, width, kernel, dropout
        See :data:`ARCHITECTURES` ``["cnn"]``.
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        spatial_dims: int = 2,
        depth: int = 3,
        width: int = 32,
        kernel: int = 3,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        conv, norm, pool, gap = {
            2: (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d),
            3: (nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d, nn.AdaptiveAvgPool3d),
        }[spatial_dims]
        blocks = []
        channels = in_channels
        for _ in range(depth):
            blocks.append(
                nn.Sequential(
                    conv(channels, width, kernel, padding=kernel // 2, bias=False),
                    norm(width),
                    # not in-place, so Grad-CAM hooks on it see the activation unchanged
                    nn.ReLU(),
                    pool(2),
                )
            )
            channels = width
        self.features = nn.Sequential(*blocks)
        self.pool = gap(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, n_classes)`` of a batch ``(N, C, [planes,] rows, columns)``."""
        x = self.pool(self.features(x)).flatten(1)
        return self.classifier(self.dropout(x))


class TorchvisionClassifier(nn.Module):
    """A torchvision network that upsamples inputs smaller than it can take.

    Parameters
    ----------
    net : nn.Module
        The torchvision model (first convolution and classifier already adapted); its
        state dict keys are those of torchvision under the prefix ``net.``.
    min_input : int
        Inputs with a side smaller than this are resized (bilinear) to at least this size.
    """

    def __init__(self, net: nn.Module, min_input: int = 1) -> None:
        super().__init__()
        self.net = net
        self.min_input = int(min_input)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, n_classes)`` of a batch ``(N, C, rows, columns)``."""
        rows, columns = x.shape[-2:]
        if min(rows, columns) < self.min_input:
            size = (max(rows, self.min_input), max(columns, self.min_input))
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return self.net(x)


# Where each torchvision family keeps its first convolution, its stem max-pool and its head.
_FIRST_CONV = {"resnet": "conv1", "densenet": "features.conv0", "alexnet": "features.0"}
_STEM_POOL = {"resnet": "maxpool", "densenet": "features.pool0"}
_HEAD = {"resnet": "fc", "densenet": "classifier", "alexnet": "classifier.6"}


def _family(name: str) -> str:
    return next(f for f in ("resnet", "densenet", "alexnet") if name.startswith(f))


def _set_submodule(root: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, child = path.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)


def adapt_conv_weight(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Adapt RGB convolution filters ``(out, 3, k, k)`` to ``in_channels`` input channels.

    One channel takes the sum of the RGB filters (grey = R + G + B gives the same response).
    Otherwise the first three channels copy the RGB filters and extra channels take their mean;
    everything is scaled by ``3 / in_channels`` to keep the activation scale.

    Returns
    -------
    torch.Tensor
        New filters ``(out, in_channels, k, k)``.
    """
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    rgb = weight[:, : min(in_channels, 3)]
    extra = weight.mean(dim=1, keepdim=True).expand(-1, max(in_channels - 3, 0), -1, -1)
    return torch.cat([rgb, extra], dim=1) * (3.0 / in_channels)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any unreadable file is bad user input here
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise InputError(
            f"cannot read pretrained weights {path}: {type(error).__name__}: {first_line}"
        ) from error
    # Checkpoints often nest the weights; DataParallel prefixes them with "module.".
    for key in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise InputError(f"pretrained weights {path} do not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_pretrained(
    net: nn.Module, name: str, path: str | os.PathLike, in_channels: int, small_input: bool
) -> None:
    """Load a local ImageNet state dict into a torchvision network, in place.

    The first convolution is adapted to ``in_channels`` (:func:`adapt_conv_weight`); the
    classifier weights are dropped (the new head keeps its random initialisation), and so is
    the first convolution when ``small_input`` replaced the stem.

    Parameters
    ----------
    net : nn.Module
        The torchvision model with its first convolution and head already replaced.
    name : str
        Architecture name (e.g. "resnet18"), for messages and key names.
    path : str or os.PathLike
        ``.pth``/``.pt`` (read with ``torch.load(weights_only=True)``) or ``.safetensors``.
    in_channels : int
        Input channels of ``net``.
    small_input : bool
        Whether the stem was replaced.

    Raises
    ------
    InputError
        Missing or unreadable file, or a state dict of another architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"pretrained weights file {path} not found")
    state = _read_state_dict(path)
    family = _family(name)
    conv_key = _FIRST_CONV[family] + ".weight"
    head = _HEAD[family] + "."
    state = {k: v for k, v in state.items() if not k.startswith(head)}
    if small_input:
        state.pop(conv_key, None)
    elif conv_key in state and state[conv_key].ndim == 4 and state[conv_key].shape[1] == 3:
        state[conv_key] = adapt_conv_weight(state[conv_key], in_channels)
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as error:
        detail = " ".join(str(error).split())  # one line, for the CLI and the app
        raise InputError(f"pretrained weights {path} do not fit {name}: {detail}") from error
    allowed_missing = {k for k in net.state_dict() if k.startswith(head)}
    if small_input:
        allowed_missing.add(conv_key)
    missing = [k for k in missing if k not in allowed_missing]
    if missing or unexpected:
        raise InputError(
            f"pretrained weights {path} are not a {name} state dict: "
            f"missing {missing[:3]}{'...' if len(missing) > 3 else ''}, "
            f"unexpected {unexpected[:3]}{'...' if len(unexpected) > 3 else ''}"
        )


def _build_torchvision(
    name: str, in_channels: int, n_classes: int, params: dict[str, Any]
) -> TorchvisionClassifier:
    import torchvision

    family = _family(name)
    small_input = params.get("small_input", False)
    net = getattr(torchvision.models, name)(weights=None)

    old = net.get_submodule(_FIRST_CONV[family])
    if small_input:
        conv = nn.Conv2d(in_channels, old.out_channels, 3, stride=1, padding=1, bias=False)
        _set_submodule(net, _STEM_POOL[family], nn.Identity())
    else:
        conv = nn.Conv2d(
            in_channels,
            old.out_channels,
            old.kernel_size,
            stride=old.stride,
            padding=old.padding,
            bias=old.bias is not None,
        )
    _set_submodule(net, _FIRST_CONV[family], conv)
    old_head = net.get_submodule(_HEAD[family])
    _set_submodule(net, _HEAD[family], nn.Linear(old_head.in_features, n_classes))

    if params["pretrained"] is not None:
        load_pretrained(net, name, params["pretrained"], in_channels, small_input)
    # The original plugin trained a frozen backbone; here everything learns.
    for p in net.parameters():
        p.requires_grad_(True)
    native = (_NATIVE_MIN_SMALL_INPUT if small_input else _NATIVE_MIN)[family]
    return TorchvisionClassifier(net, min_input=native)


def build_model(
    name: str, in_channels: int, n_classes: int, spatial_dims: int = 2, **params: Any
) -> nn.Module:
    """Build an untrained classifier (or one started from local pretrained weights).

    Parameters
    ----------
    name : str
        Architecture, a key of :data:`ARCHITECTURES`: "cnn", "resnet18" ... "resnet152",
        "densenet121" ... "densenet201", "alexnet".
    in_channels : int
        Channels of a patch (image channels + the object-mask channel).
    n_classes : int
        Number of classes (>= 2).
    spatial_dims : {2, 3}
        2 for ``(N, C, rows, columns)`` batches, 3 for ``(N, C, planes, rows, columns)``
        (``cnn`` only).
    **params
        Architecture parameters (:func:`architecture_params` lists them with defaults).

    Returns
    -------
    torch.nn.Module
        Maps ``(N, in_channels, *spatial)`` float32 to logits ``(N, n_classes)``. Its
        ``build_config`` attribute holds the arguments that rebuild it (with ``pretrained``
        set to None and the source path kept in ``pretrained_from``).

    Raises
    ------
    InputError
        Unknown architecture or parameter, value out of range, 3D with a 2D-only model, missing
        or unsuitable pretrained weights.

    Examples
    --------
    >>> model = build_model("cnn", in_channels=2, n_classes=3, depth=2, width=16)
    >>> model(torch.zeros(4, 2, 32, 32)).shape
    torch.Size([4, 3])
    """
    full = validate_params(name, params, spatial_dims)
    for arg, value, low in (("in_channels", in_channels, 1), ("n_classes", n_classes, 2)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
            raise InputError(f"{arg}={value!r} is not valid: give an integer >= {low}")
    in_channels, n_classes = int(in_channels), int(n_classes)
    if name == "cnn":
        model: nn.Module = SmallCNN(in_channels, n_classes, spatial_dims, **full)
    else:
        model = _build_torchvision(name, in_channels, n_classes, full)
    model.build_config = {
        "name": name,
        "in_channels": in_channels,
        "n_classes": n_classes,
        "spatial_dims": spatial_dims,
        "params": {**full, **({"pretrained": None} if "pretrained" in full else {})},
        "pretrained_from": full.get("pretrained"),
    }
    return model


def feature_layer(model: nn.Module) -> nn.Module:
    """The last convolutional stage of a model built here, the usual Grad-CAM target.

    Returns
    -------
    nn.Module
        ``cnn``: the ReLU of the last block (before its max-pool); ResNet: ``layer4``;
        DenseNet: ``features`` (ends with the last BatchNorm); AlexNet: the last ReLU of
        ``features`` (before its max-pool).
    """
    if isinstance(model, SmallCNN):
        return model.features[-1][2]
    if isinstance(model, TorchvisionClassifier):
        net = model.net
        if hasattr(net, "layer4"):
            return net.layer4
        if hasattr(net, "avgpool") and isinstance(net.features[-1], nn.MaxPool2d):
            return net.features[-2]
        return net.features
    raise InputError(f"feature_layer does not know models of type {type(model).__name__}")


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters of ``model`` (only those with ``requires_grad`` if asked)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
