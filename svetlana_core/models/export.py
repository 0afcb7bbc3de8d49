"""The network as an ONNX graph, for prediction without torch (:mod:`.inference`).

:func:`onnx_graph` exports an eval-mode copy of a network, BatchNorm folded into the
convolutions before it (:func:`fold_batchnorm`), with a dynamic batch axis and the patch size
fixed; :func:`export_folder` adds ``model.onnx`` to a model folder saved before it existed.
Needs torch; the graph is run with ONNX Runtime alone.
"""

from __future__ import annotations

import copy
import io
import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from svetlana_core import io as svio
from svetlana_core.models.inference import ONNX_FILE, ONNX_OPSET, onnx_record

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """An eval-mode copy of ``module`` with each BatchNorm that directly follows a convolution
    in a Sequential folded into that convolution's weights (and replaced by Identity).

    Folding saves one pass over every activation map: the forward pass of the CNNs took
    15-20 % less time on the 2-core CPU (bench/RESULTS.md "## prediction"). Probabilities move
    by about 1e-7. ``module`` is not changed.
    """
    folded = copy.deepcopy(module).eval()
    for parent in folded.modules():
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
    return folded


class _FixedAdaptivePool2d(nn.Module):
    """``AdaptiveAvgPool2d`` for one known input size, as two constant matrix products.

    The TorchScript exporter cannot export an adaptive pooling whose output is not 1 x 1 once
    the batch axis is dynamic (AlexNet's 6 x 6 pool); the patch size of a model is fixed, so
    each output bin is a fixed average: ``out = R @ x @ C.T`` gives the same values.
    """

    def __init__(self, in_size: tuple[int, int], out_size: tuple[int, int]) -> None:
        super().__init__()
        self.register_buffer("rows", _bins(in_size[0], out_size[0]))
        self.register_buffer("columns", _bins(in_size[1], out_size[1]).T.contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(torch.matmul(self.rows, x), self.columns)


def _bins(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) averaging matrix of adaptive pooling (torch's bin edges)."""
    matrix = torch.zeros(n_out, n_in)
    for k in range(n_out):  # a loop over at most a few output bins
        start, stop = (k * n_in) // n_out, -((-(k + 1) * n_in) // n_out)
        matrix[k, start:stop] = 1.0 / (stop - start)
    return matrix


def _fix_adaptive_pools(module: nn.Module, example: torch.Tensor) -> None:
    """Replace, in place, every non-global AdaptiveAvgPool2d by its fixed-size equivalent."""
    sizes: dict[str, tuple] = {}
    hooks = [
        child.register_forward_hook(
            lambda mod, inputs, output, name=name: sizes.__setitem__(
                name, (tuple(inputs[0].shape[-2:]), tuple(output.shape[-2:]))))
        for name, child in module.named_modules() if isinstance(child, nn.AdaptiveAvgPool2d)
    ]
    with torch.no_grad():
        module(example)
    for hook in hooks:
        hook.remove()
    for name, (in_size, out_size) in sizes.items():
        if out_size != (1, 1):
            parent_name, _, child = name.rpartition(".")
            parent = module.get_submodule(parent_name) if parent_name else module
            setattr(parent, child, _FixedAdaptivePool2d(in_size, out_size))


def onnx_graph(module: nn.Module, in_channels: int, patch_size: tuple[int, ...]) -> bytes:
    """The serialised ONNX graph of a network for patches ``(N, in_channels, *patch_size)``.

    Parameters
    ----------
    module : nn.Module
        The network (any device, train or eval mode; not changed).
    in_channels : int
    patch_size : tuple of int

    Returns
    -------
    bytes
        An ONNX model, opset :data:`ONNX_OPSET`: input ``x`` (N, C, *patch_size), output
        ``logits`` (N, n_classes), N dynamic. The same network gives the same bytes.
    """
    copy_ = fold_batchnorm(module).to("cpu", memory_format=torch.contiguous_format).float()
    example = torch.zeros(1, int(in_channels), *(int(s) for s in patch_size))
    _fix_adaptive_pools(copy_, example)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The legacy exporter's deprecation note and its tracer notes about the fixed patch
        # size (wanted: only the batch axis is dynamic) say nothing the user can act on.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            copy_, (example,), buffer, dynamo=False, opset_version=ONNX_OPSET,
            input_names=["x"], output_names=["logits"],
            dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}}, do_constant_folding=True,
        )
    return buffer.getvalue()


def graph_for(module: nn.Module | Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> bytes:
    """:func:`onnx_graph` of a network, or of a state dict put into the network ``meta``
    describes (a training checkpoint keeps a state dict)."""
    if not isinstance(module, nn.Module):
        from svetlana_core.models.build import build_model

        state = module
        module = build_model(meta["arch"], meta["in_channels"], len(meta["classes"]),
                             meta["spatial_dims"], **meta["arch_params"])
        module.load_state_dict(state)
    return onnx_graph(module, meta["in_channels"], tuple(meta["patch_size"]))


def export_folder(folder: str | os.PathLike) -> Path:
    """Add ``model.onnx`` to a model folder saved before it existed, and its record to
    ``model.json`` (graph first, then the record: a reader never sees a record without its
    graph). Returns the graph's path.

    Raises
    ------
    InputError
        As :func:`~svetlana_core.models.load_model`.
    StorageError
        When the folder cannot be written (read-only, full; the caller decides what to do).
    """
    from svetlana_core.models.folder import MODEL_FILE, WEIGHTS_FILE, load_model

    folder = Path(folder)
    loaded = load_model(folder, device="cpu")
    graph = onnx_graph(loaded.module, loaded.meta["in_channels"], loaded.patch_size)
    meta = {**loaded.meta, "onnx": onnx_record(graph, (folder / WEIGHTS_FILE).read_bytes())}
    path = svio.atomic_write_bytes(folder / ONNX_FILE, graph)
    text = json.dumps(meta, indent=2, allow_nan=False) + "\n"
    svio.atomic_write_bytes(folder / MODEL_FILE, text.encode("utf-8"))
    return path

