"""Grad-CAM and guided Grad-CAM for one object, 2D and 3D: the layer weighed for each
architecture, the checks on the patch and target, and captum's attribution brought back to
the patch's resolution."""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch import nn

from svetlana_core import models
from svetlana_core.errors import InputError
from svetlana_core.predict import object_patches

if TYPE_CHECKING:
    from svetlana_core.models import LoadedModel

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True, eq=False)
class Explanation:
    """A Grad-CAM explanation of one patch.

    Attributes
    ----------
    heat : ndarray of float32, shape (rows, columns) or (planes, rows, columns)
        At patch resolution, in [0, 1]: 1 where the evidence for ``target`` is strongest, 0
        where there is none (all zeros when nothing in the patch raises the target).
    probabilities : ndarray of float32, shape (n_classes,)
        Softmax of the network's output for the patch.
    target : int
        Class index explained.
    target_class : str
    predicted : int
        Class index with the highest probability.
    layer : str
        Name (in ``module.named_modules()``) of the layer whose maps were weighed.
    method : str
        ``"gradcam"`` or ``"guided_gradcam"``.
    attribution : ndarray of float32, shape (C, *spatial), or None
        Guided Grad-CAM only: the signed attribution per input channel, before scaling.
    """

    heat: np.ndarray
    probabilities: np.ndarray
    target: int
    target_class: str
    predicted: int
    layer: str
    method: str
    attribution: np.ndarray | None = None


def _stages(module: nn.Module) -> list[nn.Module]:
    """Outputs of the convolutional stages of a network, first to last."""
    if isinstance(module, models.SmallCNN):
        return [block[2] for block in module.features]  # the ReLU of each block
    if isinstance(module, models.TorchvisionClassifier):
        net = module.net
        if hasattr(net, "layer4"):  # ResNet
            return [net.layer1, net.layer2, net.layer3, net.layer4]
        if hasattr(net, "avgpool"):  # AlexNet: the ReLUs of its features
            return [m for m in net.features if isinstance(m, nn.ReLU)]
        blocks = [m for name, m in net.features.named_children() if name.startswith("denseblock")]
        return [*blocks[:-1], net.features]  # DenseNet; the last block ends at norm5
    return [m for m in module.modules() if isinstance(m, _CONV)]


#: Grad-CAM needs feature maps with some extent: a stage smaller than this along an axis is
#: passed over for an earlier, finer one (ResNet's layer4 is 1 x 1 on a 32 x 32 patch).
MIN_CAM_SIDE = 4


def target_layer(
    module: nn.Module, arch: str | None = None, patch_shape: tuple[int, ...] | None = None
) -> nn.Module:
    """The layer Grad-CAM weighs: the output of the last convolutional stage.

    Parameters
    ----------
    module : torch.nn.Module
        A network from :func:`svetlana_core.models.build_model`, or any network with
        convolutions.
    arch : str, optional
        Its architecture name (``model.meta["arch"]``), only used in messages.
    patch_shape : tuple of int, optional
        ``(C, *spatial)`` of the patches to explain. When given, the last stage whose maps are
        at least :data:`MIN_CAM_SIDE` pixels along every axis for that patch is chosen (the
        finest stage when none is), because a 1 x 1 map explains nothing: ResNet-18's
        ``layer4`` on a 32 x 32 patch is 1 x 1, its ``layer2`` 4 x 4.

    Returns
    -------
    torch.nn.Module
        Without ``patch_shape``: ``cnn``, the ReLU of the last block (before its max-pool);
        ResNet, ``layer4``; DenseNet, ``features``; AlexNet, the last ReLU of ``features``
        (:func:`svetlana_core.models.feature_layer`); another network, its last convolution.

    Raises
    ------
    InputError
        If the network has no convolution.
    """
    stages = _stages(module)
    if not stages:
        name = arch or type(module).__name__
        raise InputError(f"model {name} has no convolutional layer for Grad-CAM")
    if patch_shape is None:
        try:
            return models.feature_layer(module)
        except InputError:
            return stages[-1]
    sides: dict[int, int] = {}
    hooks = [
        stage.register_forward_hook(
            lambda m, _, out: sides.__setitem__(id(m), min(out.shape[2:], default=0))
        )
        for stage in stages
    ]
    try:
        device = next(module.parameters()).device
        with torch.inference_mode():
            module(torch.zeros((1, *patch_shape), device=device))
    finally:
        for hook in hooks:
            hook.remove()
    wide = [stage for stage in stages if sides.get(id(stage), 0) >= MIN_CAM_SIDE]
    if wide:
        return wide[-1]
    return max(stages, key=lambda stage: sides.get(id(stage), 0))


def _layer_name(module: nn.Module, layer: nn.Module) -> str:
    return next((name for name, m in module.named_modules() if m is layer), "")


def _without_inplace(module: nn.Module) -> nn.Module:
    """The module itself, or a copy whose in-place activations are not in place.

    torchvision networks use ``ReLU(inplace=True)``; an in-place op on a hooked layer output
    (or under guided back-propagation's hooks) breaks autograd. The copy keeps the weights.
    """
    if not any(getattr(m, "inplace", False) for m in module.modules()):
        return module
    module = copy.deepcopy(module)
    for m in module.modules():
        if getattr(m, "inplace", False):
            m.inplace = False
    return module


def _target_index(target: int | str | None, classes: tuple[str, ...], predicted: int) -> int:
    if target is None:
        return predicted
    if isinstance(target, str):
        if target not in classes:
            raise InputError(f"target class {target!r} is not one of the model's {list(classes)}")
        return classes.index(target)
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not (
        0 <= target < len(classes)
    ):
        raise InputError(
            f"target must be a class index 0..{len(classes) - 1} or a class name "
            f"{list(classes)}; got {target!r}"
        )
    return int(target)


def _scaled(heat: np.ndarray) -> np.ndarray:
    """To [0, 1] by the maximum; all zeros stay zeros (never NaN)."""
    heat = np.nan_to_num(heat.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    top = float(heat.max()) if heat.size else 0.0
    return heat / top if top > 0 else np.zeros_like(heat)


def gradcam(
    model: LoadedModel,
    patch: np.ndarray,
    target: int | str | None = None,
    guided: bool = False,
) -> Explanation:
    """Grad-CAM heat map of one patch for one class.

    Parameters
    ----------
    model : LoadedModel
        From :func:`svetlana_core.models.load_model`; not modified.
    patch : ndarray, shape (C, rows, columns) or (C, planes, rows, columns)
        One patch as the network sees it (:func:`svetlana_core.predict.object_patches`):
        image channels, then the object's mask.
    target : int or str, optional
        Class index or name to explain; default the predicted class.
    guided : bool, default False
        Guided Grad-CAM: the heat map is the largest absolute attribution over channels,
        scaled to [0, 1], and ``attribution`` holds the per-channel values.

    Returns
    -------
    Explanation

    Raises
    ------
    InputError
        If the patch's shape does not fit the model, or the target is not a class.

    Notes
    -----
    captum hooks the layer (and, guided, every ReLU) for the duration of the call: explain one
    patch at a time per model, not from several threads at once. Prediction is not affected
    (it runs a copy of the network).
    """
    patch = _checked_patch(patch, model.meta)
    classes = tuple(model.classes)
    module = _without_inplace(model.module)
    layer = target_layer(module, model.meta.get("arch"), patch.shape)
    device = next(module.parameters()).device
    x = torch.from_numpy(patch[np.newaxis]).to(device)
    with torch.inference_mode():
        probabilities = torch.softmax(module(x).float(), dim=1)[0].cpu().numpy()
    predicted = int(probabilities.argmax())
    index = _target_index(target, classes, predicted)
    heat, attribution = _attribute(module, layer, x, index, guided)
    return Explanation(
        heat=_scaled(heat),
        probabilities=probabilities.astype(np.float32),
        target=index,
        target_class=classes[index],
        predicted=predicted,
        layer=_layer_name(module, layer),
        method="guided_gradcam" if guided else "gradcam",
        attribution=attribution,
    )


def _checked_patch(patch: np.ndarray, meta: dict) -> np.ndarray:
    """The patch as float32, refused unless it is one patch of the model's channels."""
    patch = np.asarray(patch, dtype=np.float32)
    spatial_dims = int(meta.get("spatial_dims", patch.ndim - 1))
    channels = int(meta.get("in_channels", patch.shape[0]))
    if patch.ndim != spatial_dims + 1 or patch.shape[0] != channels:
        axes = "rows, columns" if spatial_dims == 2 else "planes, rows, columns"
        raise InputError(
            f"patch has shape {patch.shape}; the model takes one patch of shape "
            f"({channels}, {axes}) (image channels then the object mask)"
        )
    return patch


def _attribute(
    module: nn.Module, layer: nn.Module, x: torch.Tensor, index: int, guided: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """captum's Grad-CAM of ``x`` (1, C, *spatial) for class ``index``, at patch resolution.

    Returns the unscaled heat map (spatial) and, guided, the per-channel attribution.
    """
    from captum.attr import GuidedGradCam, LayerAttribution, LayerGradCam

    spatial = tuple(x.shape[2:])
    mode = "bilinear" if len(spatial) == 2 else "trilinear"
    with torch.enable_grad(), warnings.catch_warnings():
        # captum warns on every guided call that it sets (and removes) ReLU hooks.
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
        x = x.clone().requires_grad_(True)
        if guided:
            attribution = GuidedGradCam(module, layer).attribute(
                x, target=index, interpolate_mode=mode
            )[0]
            attribution = attribution.detach().float().cpu().numpy()
            return np.abs(attribution).max(axis=0), attribution
        cam = LayerGradCam(module, layer).attribute(x, target=index, relu_attributions=True)
        cam = LayerAttribution.interpolate(cam.detach().float(), spatial, mode)
        # Upsampling overshoots a little below 0; Grad-CAM keeps the positive part.
        return cam[0, 0].clamp_min(0).cpu().numpy(), None


def explain_object(
    model: LoadedModel,
    image: np.ndarray | None,
    mask: np.ndarray,
    label: int,
    target: int | str | None = None,
    guided: bool = False,
    table: pd.DataFrame | None = None,
) -> tuple[Explanation, np.ndarray]:
    """Grad-CAM of one object of an image, on the patch that prediction gives the network.

    Parameters
    ----------
    model : LoadedModel
    image : ndarray, shape (C, rows, columns) or (C, planes, rows, columns), or None
        Channel-first image (None for a mask-only model).
    mask : ndarray of int, shape (rows, columns) or (planes, rows, columns)
    label : int
        The object's label in ``mask``.
    target, guided
        As :func:`gradcam`.
    table : pandas.DataFrame, optional
        :func:`~svetlana_core.objects.object_table` of ``mask``, when the caller has it.

    Returns
    -------
    explanation : Explanation
    patch : ndarray of float32, shape (C + 1, *patch_size)
        The object's patch (normalised as for prediction).

    Raises
    ------
    InputError
        If the label is not in the mask, or the image or mask does not fit the model.
    """
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
        raise InputError(f"label must be an integer object label; got {label!r}")
    patch = object_patches(model, image, mask, labels=[int(label)], table=table)[0]
    return gradcam(model, patch, target=target, guided=guided), patch
