"""Prediction without torch: a model folder's ``model.onnx`` run by ONNX Runtime on the CPU.

Every CNN folder written by :func:`~svetlana_core.models.save_model` carries ``model.onnx``
(the network with BatchNorm folded, a dynamic batch axis) and, in ``model.json``, its record
``"onnx": {"file": "model.onnx", "sha256": ..., "opset": ..., "weights_sha256": ...}``.
:func:`load_onnx` checks the graph and the weights against that record and the graph's input
and output against ``model.json`` (channels, patch size, classes) before running it, so a
tampered or mismatched graph is refused like tampered weights.

Why: on the 2-core CPU, ONNX Runtime forwards 10,000 patches of 2 x 48 x 48 through the
smallest CNN in 0.34-0.47 s against 4.2 s for torch eager, and ``import onnxruntime`` costs
~0.3 s and ~60 MB where ``import torch`` costs 2.4-3.7 s and ~650 MB (bench/RESULTS.md
"## prediction as a process").

:func:`load_predictor` picks the path for a device: ONNX Runtime on the CPU; torch on a CUDA
or MPS device (``"auto"`` takes CUDA when the driver reports a GPU); a folder from before
model.onnx existed is exported once on first use (torch needed that one time), or predicted
with torch where the folder cannot be written, with one note saying so.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from svetlana_core.errors import InputError, StorageError
from svetlana_core.models.device import cpu_threads

if TYPE_CHECKING:
    from svetlana_core.models.folder import LoadedModel

ONNX_FILE = "model.onnx"
#: The ONNX opset models are exported with (ONNX Runtime 1.17 and later run it).
ONNX_OPSET = 17


@dataclass(eq=False)
class OnnxModel:
    """A model ready to predict on the CPU without torch.

    Attributes
    ----------
    session : onnxruntime.InferenceSession
    meta : dict
        The content of ``model.json``.
    classes : tuple of str
    patch_size : tuple of int
    folder : Path
    device : str
        Always ``"cpu"``.
    """

    session: Any
    meta: dict
    classes: tuple[str, ...]
    patch_size: tuple[int, ...]
    folder: Path
    device: str = "cpu"
    _names: tuple[str, str] = field(default=("x", "logits"), repr=False)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Logits ``(N, n_classes)`` of a float32 batch ``(N, C, *patch_size)``."""
        batch = np.ascontiguousarray(x, dtype=np.float32)
        return self.session.run([self._names[1]], {self._names[0]: batch})[0]


def onnx_record(graph: bytes, weights: bytes) -> dict[str, Any]:
    """What ``model.json`` says of a ``model.onnx`` holding ``graph``, exported from the
    ``weights.safetensors`` holding ``weights`` (so a graph and weights that were changed
    apart are refused, like a changed graph)."""
    return {"file": ONNX_FILE, "sha256": hashlib.sha256(graph).hexdigest(), "opset": ONNX_OPSET,
            "weights_sha256": hashlib.sha256(weights).hexdigest()}


def _is_sha(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef"
                                                               for c in value)


def check_onnx_record(record: Any, path: Path) -> None:
    """The ``"onnx"`` key of a ``model.json``: null, or the record of :func:`onnx_record`.

    The file name is fixed, so a tampered record cannot point the reader at another file.
    """
    if record is None:
        return
    if not isinstance(record, dict) or record.get("file") != ONNX_FILE \
            or not _is_sha(record.get("sha256")) \
            or not isinstance(record.get("opset"), int) or isinstance(record.get("opset"), bool) \
            or not _is_sha(record.get("weights_sha256")):
        raise InputError(
            f"{path} key 'onnx' must be null or {{\"file\": \"{ONNX_FILE}\", \"sha256\": "
            f"<64 hex digits>, \"opset\": <integer>, \"weights_sha256\": <64 hex digits>}}, "
            f"got {json.dumps(record)[:200]}"
        )


def _session(graph: bytes, threads: int | None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or cpu_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: no notes about unused initialisers
    # From bytes, never from a path: a graph naming external data files cannot make the
    # runtime read files of the server.
    return ort.InferenceSession(graph, sess_options=options, providers=["CPUExecutionProvider"])


def _check_signature(session: Any, meta: dict, path: Path) -> tuple[str, str]:
    """The graph takes ``(N, in_channels, *patch_size)`` and gives ``(N, n_classes)``."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) != 1:
        raise InputError(f"{path} has {len(inputs)} input(s) and {len(outputs)} output(s); "
                         "a Svetlana model has one of each")
    expected_in = [meta["in_channels"], *meta["patch_size"]]
    found_in = list(inputs[0].shape)
    if len(found_in) != len(expected_in) + 1 or found_in[1:] != expected_in:
        raise InputError(f"{path} takes inputs of shape {found_in} but model.json describes "
                         f"patches of shape [N, {', '.join(map(str, expected_in))}]")
    found_out = list(outputs[0].shape)
    if len(found_out) != 2 or found_out[1] != len(meta["classes"]):
        raise InputError(f"{path} gives outputs of shape {found_out} but model.json names "
                         f"{len(meta['classes'])} classes")
    if "float" not in inputs[0].type:
        raise InputError(f"{path} takes {inputs[0].type}, not float patches")
    return inputs[0].name, outputs[0].name


def load_onnx(folder: str | os.PathLike, threads: int | None = None) -> OnnxModel:
    """Load a CNN folder's ``model.onnx`` into ONNX Runtime (CPU), checked against its record.

    Parameters
    ----------
    folder : path
        A CNN model folder whose ``model.json`` has an ``"onnx"`` record.
    threads : int, optional
        Intra-op threads; default the cores this process may use.

    Returns
    -------
    OnnxModel

    Raises
    ------
    InputError
        No record or no file, a file whose sha256 is not the recorded one, a graph that
        ONNX Runtime cannot load, or one whose input or output shape does not fit
        ``model.json``.
    """
    from svetlana_core.models.folder import MODEL_FILE, check_weights_file, read_model_meta
    from svetlana_core.models.registry import validate_params

    folder = Path(folder)
    meta = read_model_meta(folder, kind="cnn")
    try:  # the folder must still describe a network Svetlana builds (Grad-CAM, retraining)
        validate_params(meta["arch"], meta["arch_params"], meta["spatial_dims"])
    except InputError as error:
        raise InputError(f"{folder / MODEL_FILE} keys 'arch'/'arch_params': {error}") from None
    weights = check_weights_file(folder)  # the weights are the model; the graph comes from them
    path = folder / ONNX_FILE
    if not meta.get("onnx"):
        raise InputError(f"{folder / MODEL_FILE} has no 'onnx' record: the folder predates "
                         "model.onnx (export it with: python -m svetlana_core export-onnx "
                         f"{folder})")
    try:
        graph = path.read_bytes()
    except OSError as error:
        raise InputError(f"{path} cannot be read: {error.strerror or error}") from None
    if hashlib.sha256(graph).hexdigest() != meta["onnx"]["sha256"]:
        raise InputError(
            f"{path} does not match the sha256 recorded in {MODEL_FILE}: it was changed after "
            f"the model was saved (export it again: python -m svetlana_core export-onnx {folder})"
        )
    if hashlib.sha256(weights.read_bytes()).hexdigest() != meta["onnx"]["weights_sha256"]:
        raise InputError(
            f"{weights} is not the one {path} was exported from (see {MODEL_FILE}): the weights "
            f"were changed after the model was saved (export the graph again: python -m "
            f"svetlana_core export-onnx {folder})")
    try:
        session = _session(graph, threads)
    except Exception as error:  # onnxruntime raises its own exception types
        raise InputError(f"{path} cannot be loaded by ONNX Runtime: {error}") from None
    names = _check_signature(session, meta, path)
    return OnnxModel(session=session, meta=meta, classes=tuple(meta["classes"]),
                     patch_size=tuple(meta["patch_size"]), folder=folder, _names=names)


def cuda_present() -> bool:
    """Whether the NVIDIA driver reports a GPU, asked without importing torch (~1 ms)."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            driver = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        try:
            return driver.cuInit(0) == 0 and driver.cuDeviceGetCount(ctypes.byref(count)) == 0 \
                and count.value > 0
        except AttributeError:
            return False
    return False


def load_predictor(
    folder: str | os.PathLike,
    device: str = "auto",
    note: Callable[[str], Any] | None = None,
    threads: int | None = None,
) -> OnnxModel | LoadedModel:
    """The model of a folder, ready for :func:`~svetlana_core.predict.predict_image`.

    Parameters
    ----------
    folder : path
        A CNN model folder.
    device : str
        ``"cpu"``: ONNX Runtime, no torch. ``"cuda"``, ``"cuda:<i>"``, ``"mps"``: torch on that
        device. ``"auto"``: torch on CUDA when the driver reports a GPU and torch can use it,
        else ONNX Runtime on the CPU.
    note : callable, optional
        Called with one line when the folder had to be exported first, or is predicted with
        torch because its ``model.onnx`` could not be written.
    threads : int, optional
        ONNX Runtime's intra-op threads (default: the cores this process may use).

    Returns
    -------
    OnnxModel or LoadedModel

    Raises
    ------
    InputError
        As :func:`load_onnx` and :func:`~svetlana_core.models.load_model`, and an old folder
        that cannot be exported because torch is not installed.
    """
    from svetlana_core.models.folder import read_model_meta

    where = prediction_device(device)
    if where != "cpu":
        from svetlana_core.models.folder import load_model

        return load_model(folder, device=where)
    meta = read_model_meta(folder, kind="cnn")
    if not meta.get("onnx"):
        fallback = _export_first(Path(folder), note)
        if fallback is not None:
            return fallback
    return load_onnx(folder, threads=threads)


def prediction_device(device: str = "auto") -> str:
    """Where :func:`load_predictor` runs a model for ``device``: ``"cpu"`` (ONNX Runtime,
    answered without importing torch), or the torch device (``"cuda"``, ``"cuda:1"``,
    ``"mps"``), checked to exist.

    Raises
    ------
    InputError
        An unknown name, or a GPU asked for that this machine does not have.

    Examples
    --------
    >>> prediction_device("cpu")
    'cpu'
    """
    from svetlana_core.models.device import DEVICES, resolve_device

    if not isinstance(device, str) or not (device in DEVICES or device.startswith("cuda")):
        raise InputError(f"device={device!r} is not valid; choose one of {', '.join(DEVICES)} "
                         "or 'cuda:<index>'")
    if device == "cpu" or (device == "auto" and not _torch_cuda()):
        return "cpu"
    return str(resolve_device(device))


def _torch_cuda() -> bool:
    """CUDA for ``"auto"``: the driver sees a GPU (cheap) and torch can use it."""
    if not cuda_present():
        return False
    import torch

    return torch.cuda.is_available()


def _export_first(folder: Path, note: Callable[[str], Any] | None) -> LoadedModel | None:
    """Export an old folder's ``model.onnx``: None when done; the torch model, with a note,
    when the folder cannot be written or the network cannot be exported."""
    try:
        from svetlana_core.models.export import export_folder
    except ImportError:
        raise InputError(f"{folder} has no model.onnx (saved before it existed) and torch is not "
                         "installed to export it once") from None
    try:
        export_folder(folder)
    except StorageError as error:  # a read-only folder or disk, a full disk (io's writers)
        reason = f"it cannot be written there ({error})"
    except InputError:  # the folder itself is bad: say so, as load_model would
        raise
    except OSError as error:
        reason = f"it cannot be written there ({error.strerror or error})"
    except Exception as error:  # an exporter gap must not stop a prediction
        reason = f"the network cannot be exported ({type(error).__name__}: {error})"
    else:
        if note is not None:
            note(f"{folder} had no model.onnx (saved before it existed): exported it once")
        return None
    from svetlana_core.models.folder import load_model

    if note is not None:
        note(f"{folder} has no model.onnx and {reason}: predicting with torch, which is slower")
    return load_model(folder, device="cpu")
