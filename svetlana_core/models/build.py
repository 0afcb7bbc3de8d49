"""Build a network by architecture name; find its feature layer; count its parameters."""

from __future__ import annotations

import numbers
from typing import Any

from torch import nn

from svetlana_core.errors import InputError
from svetlana_core.models.cnn import SmallCNN
from svetlana_core.models.registry import validate_params
from svetlana_core.models.torchvision_nets import (
    TorchvisionClassifier,
    _build_torchvision,
)


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
    >>> import torch
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
