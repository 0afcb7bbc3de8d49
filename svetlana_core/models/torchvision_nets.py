"""torchvision ResNet, DenseNet and AlexNet adapted to C input channels and K classes."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from svetlana_core.errors import InputError
from svetlana_core.models.registry import _NATIVE_MIN, _NATIVE_MIN_SMALL_INPUT


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
        # Plain ints: the ONNX export traces one patch size, and a traced shape would make
        # the resized size a graph input that AlexNet's adaptive pooling cannot take.
        rows, columns = int(x.shape[-2]), int(x.shape[-1])
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
