"""The architectures and their parameters, without torch: what the forms and checks need."""

from __future__ import annotations

import difflib
import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from svetlana_core.errors import InputError

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
