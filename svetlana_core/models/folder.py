"""The model folder: the one reader and writer of ``model.json`` and ``weights.safetensors``.

A CNN folder holds ``model.json`` (what rebuilds the network and how its patches are cut:
architecture, classes, patch size, normalisation, plus the training history and metrics) and
``weights.safetensors``; a random-forest folder (:mod:`svetlana_core.baseline`) holds its own
``model.json`` (``"arch": "rf"``, feature names, forest checksum) beside ``forest.npz``.
:func:`read_model_meta` reads and checks either kind; :func:`model_kind` tells them apart.

Reading ``model.json`` needs no torch (the app lists and describes models without it); torch
is imported by :func:`load_model` and :func:`save_model`, which build or save a network.
Nothing is pickled: weights are read from safetensors only.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from svetlana_core import io
from svetlana_core.errors import InputError, storage_error
from svetlana_core.models.device import memory_format_for, resolve_device
from svetlana_core.models.inference import ONNX_FILE, check_onnx_record, onnx_record
from svetlana_core.patches import MODES as PATCH_MODES
from svetlana_core.patches import NORMALISATIONS
from svetlana_core.values import is_int, json_safe, plain

if TYPE_CHECKING:
    import torch
    from torch import nn

FORMAT_VERSION = 1
MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.safetensors"


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


def library_versions(kind: str = "cnn") -> dict[str, str | None]:
    """Versions of the libraries a model of ``kind`` was made with, recorded in ``model.json``:
    Python, numpy and Svetlana, then torch and torchvision (``"cnn"``) or scikit-learn
    (``"rf"``). Read from the installed packages' metadata: nothing is imported."""
    import svetlana_core

    versions: dict[str, str | None] = {"python": platform.python_version(),
                                       "numpy": np.__version__,
                                       "svetlana": svetlana_core.__version__}
    for name in ("torch", "torchvision") if kind == "cnn" else ("scikit-learn",):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    if "torch" in sys.modules and kind == "cnn":  # its own string names the build: 2.14.0+cu130
        versions["torch"] = sys.modules["torch"].__version__
    return versions


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

#: Version of the random-forest folder's ``model.json`` (its own format, see
#: :mod:`svetlana_core.baseline`).
RF_FORMAT_VERSION = 1

# The random forest's required keys, as _META_KEYS: (types, description).
_RF_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    key: ((kind,), f"a {kind.__name__}") for key, kind in (
        ("format_version", int), ("arch", str), ("classes", list), ("feature_names", list),
        ("params", dict), ("forest_sha256", str))
}

#: Largest patch side (pixels) that a model.json may declare (and largest dilation).
MAX_PATCH_SIZE = 4096
#: Most image channels a model may read (a microscope's spectral stack stays far below).
MAX_CHANNELS = 1024

#: What :func:`model_kind` answers, and the ``kind`` :func:`read_model_meta` may insist on.
MODEL_KINDS = ("cnn", "rf")


def _check_keys(meta: dict, path: Path, keys: Mapping[str, tuple[tuple[type, ...], str]],
                shown: bool = True) -> None:
    """Every key present with a value of its types (a bool is not an int)."""
    for key, (types, what) in keys.items():
        if key not in meta:
            raise InputError(f"{path} has no key {key!r}")
        value = meta[key]
        if not isinstance(value, types) or (isinstance(value, bool) and int in types):
            found = repr(value) if shown else type(value).__name__
            raise InputError(f"{path} key {key!r} must be {what}, got {found}")


def _check_version(meta: dict, path: Path, version: int) -> None:
    if meta["format_version"] != version:
        raise InputError(
            f"{path} key 'format_version' is {meta['format_version']}; this version of Svetlana "
            f"reads {version}"
        )


def _check_meta(meta: Any, path: Path) -> dict:
    """The checks of a CNN's ``model.json``, on reading and before writing."""
    if not isinstance(meta, dict):
        raise InputError(f"{path} must hold a JSON object, got {type(meta).__name__}")
    _check_keys(meta, path, _META_KEYS)
    _check_version(meta, path, FORMAT_VERSION)
    classes = meta["classes"]
    if len(classes) < 2 or not all(isinstance(c, str) and c for c in classes) or \
            len(set(classes)) != len(classes):
        raise InputError(
            f"{path} key 'classes' must be {_META_KEYS['classes'][1]}, got {classes!r}"
        )
    if meta["spatial_dims"] not in (2, 3):
        raise InputError(f"{path} key 'spatial_dims' must be 2 or 3, got {meta['spatial_dims']!r}")
    if meta["in_channels"] > MAX_CHANNELS + 1:  # a tampered file must not allocate terabytes
        raise InputError(f"{path} key 'in_channels' is {meta['in_channels']}; at most "
                         f"{MAX_CHANNELS + 1} (image channels + the mask)")
    if meta["in_channels"] < 1 or meta["image_channels"] != meta["in_channels"] - 1:
        raise InputError(
            f"{path} keys 'in_channels' ({meta['in_channels']}) and 'image_channels' "
            f"({meta['image_channels']}) disagree: in_channels = image_channels + 1"
        )
    size = meta["patch_size"]
    # The upper bound keeps a tampered file from asking for a patch of 100000 x 100000 pixels
    # (224 GiB per batch) at the first prediction.
    if len(size) != meta["spatial_dims"] or not all(
            is_int(s) and 0 < s <= MAX_PATCH_SIZE for s in size):
        raise InputError(
            f"{path} key 'patch_size' must be {meta['spatial_dims']} positive integers "
            f"(at most {MAX_PATCH_SIZE}), got {size!r}"
        )
    for key, choices in (("patch_mode", PATCH_MODES), ("normalisation", NORMALISATIONS)):
        if meta[key] not in choices:
            raise InputError(
                f"{path} key {key!r} must be one of {list(choices)}, got {meta[key]!r}"
            )
    if not 0 <= meta["dilation"] <= MAX_PATCH_SIZE:
        raise InputError(f"{path} key 'dilation' must be from 0 to {MAX_PATCH_SIZE}, got "
                         f"{meta['dilation']!r}")
    check_onnx_record(meta.get("onnx"), path)
    return meta


def _check_rf_meta(meta: dict, path: Path) -> dict:
    """The checks of a random forest's ``model.json`` (the forest itself is checked on load)."""
    _check_keys(meta, path, _RF_KEYS, shown=False)
    _check_version(meta, path, RF_FORMAT_VERSION)
    for key in ("classes", "feature_names"):
        values = meta[key]
        if not values or not all(isinstance(v, str) and v for v in values) \
                or len(set(values)) != len(values):
            raise InputError(f"{path} key {key!r} must be a non-empty list of distinct names")
    for key, kind in (("metrics", dict), ("feature_importances", dict), ("data", dict)):
        if meta.get(key) is not None and not isinstance(meta[key], kind):
            raise InputError(f"{path} key {key!r} must be a {kind.__name__} or null")
    return meta


def write_rf_meta(folder: str | os.PathLike, meta: Mapping[str, Any]) -> Path:
    """Check a random-forest ``model.json`` and write it atomically into ``folder``.

    Values that are not finite (a NaN metric) are written as ``null``: the file is strict JSON.
    Returns the file's path.

    Raises
    ------
    InputError
        When ``meta`` lacks a key or has a value of the wrong type.
    """
    path = Path(folder) / MODEL_FILE
    meta = _check_rf_meta(json_safe(plain(dict(meta))), path)
    text = json.dumps(meta, indent=2, allow_nan=False) + "\n"
    return io.atomic_write_bytes(path, text.encode("utf-8"))


def read_model_meta(folder: str | os.PathLike, kind: str | None = None) -> dict:
    """The checked ``model.json`` of a model folder, CNN or random forest; no torch needed.

    Parameters
    ----------
    folder : path
        A model folder written by :func:`save_model` (CNN) or by
        :meth:`svetlana_core.baseline.BaselineModel.save` (random forest, ``"arch": "rf"``).
    kind : {"cnn", "rf"}, optional
        The kind the caller can use; another kind is refused with a message saying what the
        folder holds. Default: either.

    Returns
    -------
    dict
        The content of ``model.json``, every required key checked for its kind (a CNN: the
        keys listed in :func:`save_model`; a random forest: ``format_version``, ``arch``,
        ``classes``, ``feature_names``, ``params``, ``forest_sha256``). The weights are not
        read.

    Raises
    ------
    InputError
        Naming the folder or the file: a missing folder or ``model.json``, invalid JSON, a
        missing key or a value of the wrong type, another format version, another kind.
    """
    if kind is not None and kind not in MODEL_KINDS:
        raise InputError(f"kind={kind!r} is not valid; choose one of {', '.join(MODEL_KINDS)}")
    folder = Path(folder)
    path = folder / MODEL_FILE
    if not folder.is_dir():
        from svetlana_core.io.napari_project import looks_like_plugin_model, refuse_plugin_model

        if folder.is_file() and looks_like_plugin_model(folder):
            refuse_plugin_model(folder)
        raise InputError(f"model folder {folder} not found ({MODEL_FILE} not found)")
    if not path.is_file():
        raise InputError(f"{path} not found: not a model folder")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(meta, dict):
        raise InputError(f"{path} must hold a JSON object, got {type(meta).__name__}")
    found = "rf" if meta.get("arch") == "rf" else "cnn"
    if kind is not None and kind != found and "arch" in meta:
        if kind == "rf":
            raise InputError(
                f"{path} key 'arch' is {meta['arch']!r}, not 'rf': this is not a random-forest "
                "baseline (load CNNs with svetlana_core.models.load_model)"
            )
        raise InputError(f"{path} key 'arch' is 'rf': this is a random-forest baseline (load it "
                         "with svetlana_core.baseline.load_baseline)")
    return _check_rf_meta(meta, path) if (kind or found) == "rf" else _check_meta(meta, path)


def model_kind(folder: str | os.PathLike) -> str:
    """``"rf"`` for a random-forest folder, ``"cnn"`` otherwise (read from ``model.json``).

    Raises
    ------
    InputError
        As :func:`read_model_meta`.
    """
    return "rf" if read_model_meta(folder)["arch"] == "rf" else "cnn"


def check_weights_file(folder: str | os.PathLike) -> Path:
    """The folder's ``weights.safetensors``, checked to be there and to be safetensors (its
    header is read, not its tensors; no torch needed). Returns its path.

    Raises
    ------
    InputError
        No weights file (pickled files beside it are named and refused), or one that is not
        safetensors.
    """
    from safetensors import SafetensorError, safe_open

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
        with safe_open(str(path), framework="numpy") as handle:
            handle.keys()
    except (SafetensorError, OSError, ValueError) as error:
        raise InputError(f"{path} cannot be read as safetensors: {error}") from None
    return path


def read_weights(folder: str | os.PathLike, module: nn.Module) -> dict[str, torch.Tensor]:
    """The ``weights.safetensors`` state dict of a folder, checked against ``module``.

    Parameters
    ----------
    folder : path
        A CNN model folder.
    module : nn.Module
        The network the weights are for (built from the folder's ``model.json``).

    Returns
    -------
    dict
        ``{key: CPU tensor}``, every key of ``module.state_dict()`` with its shape.

    Raises
    ------
    InputError
        No weights file (pickled files beside it are named and refused), an unreadable file,
        a missing or unexpected key, a shape that does not fit.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = check_weights_file(folder)
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
    """Write a model folder atomically: ``model.json`` + ``weights.safetensors`` +
    ``model.onnx``.

    ``model.onnx`` is the network exported for ONNX Runtime (:mod:`.export`; 0.04-0.1 s for
    the small CNNs, 0.4-6 s for the torchvision ones), recorded in ``model.json`` under
    ``"onnx"`` with its sha256, so that prediction on a CPU needs no torch. Should the export
    fail, the model is saved without it (``"onnx": null``) and prediction says so and uses
    torch: a trained model is never lost to the exporter.

    A new folder is written as a temporary folder beside ``folder``, then renamed: a reader
    sees no folder or a complete one, never half of it. With ``replace=True`` an existing
    model folder (a checkpoint of the same training) is updated file by file, each written
    to a temporary name and renamed over the old one, weights first and ``model.json`` last:
    a process killed in between leaves new weights under the previous ``model.json``, which
    still loads with torch (same architecture) and only under-reports the epoch; its
    ``model.onnx`` may then no longer match the record, which prediction refuses, naming the
    command that exports it again.

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
    from safetensors.torch import save as weights_bytes

    folder = Path(folder)
    meta = _check_meta(plain({**meta, "onnx": None}), folder / MODEL_FILE)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"model folder {folder} is a file")
    in_place = folder.exists() and (replace or any(folder.iterdir()))
    if in_place and not replace:  # refused before the export's seconds are spent
        raise InputError(f"model folder {folder} already exists and is not empty")
    state = module.state_dict() if hasattr(module, "state_dict") else module
    state = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    weights = weights_bytes(state, {"format": "pt"})
    graph = _graph(module, meta)
    meta["onnx"] = None if graph is None else onnx_record(graph, weights)
    text = json.dumps(meta, indent=2, allow_nan=False) + "\n"
    if in_place:
        # A training writes into the folder it claimed (claimed_folder), file by file: its
        # folder is never removed and renamed, which another process could slip into.
        io.atomic_write_bytes(folder / WEIGHTS_FILE, weights)
        if graph is None:
            (folder / ONNX_FILE).unlink(missing_ok=True)
        else:
            io.atomic_write_bytes(folder / ONNX_FILE, graph)
        io.atomic_write_bytes(folder / MODEL_FILE, text.encode("utf-8"))
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        (temporary / WEIGHTS_FILE).write_bytes(weights)
        if graph is not None:
            (temporary / ONNX_FILE).write_bytes(graph)
        (temporary / MODEL_FILE).write_text(text, encoding="utf-8")
        if folder.exists():
            folder.rmdir()  # empty (checked above); rename cannot replace it everywhere
        os.replace(temporary, folder)
    except OSError as error:  # a full disk: no half folder is left
        shutil.rmtree(temporary, ignore_errors=True)
        raise storage_error(error, folder) from None
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return folder


@contextmanager
def claimed_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold a new model folder for the one process that writes it, from before the work
    starts until the model is saved.

    The folder is created if needed (and removed again if nothing was saved into it) and
    locked (an ``flock`` on the folder itself, released by the system if the process dies, so
    no lock file is left behind); it must be empty. So a
    training never replaces a model, and of two trainings started into the same folder at
    once the second is refused at its start instead of both ending with exit 0 and one model
    silently replacing the other.

    Raises
    ------
    InputError
        The path is a file, the folder holds files already, or another process holds it.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"model folder {folder} is a file")
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InputError(f"model folder {folder} cannot be made: a part of its path is a file") \
            from None
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"model folder {folder} is being written by another training; "
                             "choose another folder") from None
        if any(folder.iterdir()):
            raise InputError(f"model folder {folder} already exists and is not empty")
        yield folder
    finally:
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # a refused or stopped run leaves no empty folder behind
        os.close(descriptor)  # releases the lock


def _graph(module: nn.Module | Mapping[str, torch.Tensor], meta: dict) -> bytes | None:
    """The ONNX graph of the network being saved, or None (with a warning) when the export
    fails: the trained weights are saved all the same."""
    from svetlana_core.models.export import graph_for

    try:
        return graph_for(module, meta)
    except Exception as error:  # an exporter gap must not lose a trained model
        warnings.warn(f"model.onnx not written ({type(error).__name__}: {error}); "
                      "prediction will use torch", RuntimeWarning, stacklevel=3)
        return None


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
    import torch

    from svetlana_core.models.build import build_model

    folder = Path(folder)
    meta = read_model_meta(folder, kind="cnn")
    path = folder / MODEL_FILE
    try:
        module = build_model(
            meta["arch"], meta["in_channels"], len(meta["classes"]), meta["spatial_dims"],
            **meta["arch_params"],
        )
    except InputError as error:
        raise InputError(f"{path} keys 'arch'/'arch_params': {error}") from None
    module.load_state_dict(read_weights(folder, module))
    device = device if isinstance(device, torch.device) else resolve_device(device)
    module.to(device, memory_format=memory_format_for(meta["spatial_dims"])).eval()
    return LoadedModel(
        module=module, meta=meta, classes=tuple(meta["classes"]),
        patch_size=tuple(meta["patch_size"]), device=device, folder=folder,
    )
