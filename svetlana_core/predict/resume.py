"""What lets :func:`~svetlana_core.predict.predict_many` resume: per-image output paths, the
``done/<stem>.json`` markers that say an image's outputs are up to date, and the temporary
files a killed run leaves behind.

An image counts as done when its marker names the same model (:func:`model_fingerprint`) and
the same input files (size and modification time), and its outputs exist (the confidence map
among them when the run asks for it). The marker is
removed before the outputs are rewritten and written last, so a run killed in between leaves
the image to be predicted again.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from svetlana_core import io
from svetlana_core.errors import InputError
from svetlana_core.predict.backends import is_forest

if TYPE_CHECKING:
    from svetlana_core.predict.task import _Task

#: The sub-folders of ``out_dir`` that hold one file per image.
_FOLDERS = ("class_maps", "confidence", "objects", "done")


def model_fingerprint(model: Any) -> str:
    """SHA-256 of a model's description and weights (hex), the same for a folder and its load,
    whichever way it was loaded.

    Hashes the canonical JSON of ``model.json`` (less its ``"onnx"`` record, which only
    describes a file derived from the weights) and every weight tensor (sorted by name), so
    retraining, editing the classes or swapping the weights file changes it. A folder and an
    ONNX model are hashed from the folder's files, without torch; a random forest (folder or
    loaded) from its classes, features, parameters and tree arrays.
    """
    if isinstance(model, (str, os.PathLike)):
        from svetlana_core.models.folder import model_kind

        if model_kind(model) == "rf":
            from svetlana_core.baseline import load_baseline

            model = load_baseline(model)
    if is_forest(model):  # what a random forest predicts with
        meta = {"classes": list(model.classes), "feature_names": list(model.feature_names),
                "params": model.params}
        arrays = model.forest.to_arrays()
    elif hasattr(model, "module"):  # a torch model: its weights as they are in memory
        meta = model.meta
        arrays = {name: tensor.detach().cpu().contiguous().numpy()
                  for name, tensor in model.module.state_dict().items()}
    else:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        from svetlana_core.models.folder import WEIGHTS_FILE, read_model_meta

        folder = Path(model.folder if hasattr(model, "folder") else model)
        meta = model.meta if hasattr(model, "meta") else read_model_meta(folder, kind="cnn")
        try:
            arrays = load_file(str(folder / WEIGHTS_FILE))
        except (OSError, ValueError, SafetensorError) as error:
            raise InputError(f"{folder / WEIGHTS_FILE} cannot be read: {error}") from None
    digest = hashlib.sha256()
    described = {key: value for key, value in meta.items() if key != "onnx"}
    digest.update(json.dumps(described, sort_keys=True, default=str).encode())
    for name, array in sorted(arrays.items()):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _outputs(out_dir: Path, stem: str, confidence: bool = True) -> dict[str, Path]:
    """The files :func:`~svetlana_core.predict.predict_many` writes for one image (the
    confidence map only when asked for)."""
    paths = {"class_map": out_dir / "class_maps" / f"{stem}.tif",
             "confidence": out_dir / "confidence" / f"{stem}.tif",
             "objects": out_dir / "objects" / f"{stem}.csv"}
    if not confidence:
        del paths["confidence"]
    return paths


def _task_outputs(task: _Task) -> dict[str, Path]:
    """Every output of a task: :func:`_outputs`, and the QuPath GeoJSON and the copy of an
    OME-Zarr image with its class labels when the task asks for them."""
    out_dir = Path(task.out_dir)
    paths = _outputs(out_dir, task.stem, task.confidence)
    if task.geojson:
        paths["geojson"] = out_dir / "geojson" / f"{task.stem}.geojson"
    if task.zarr_labels == "copy":
        paths["zarr"] = out_dir / "zarr" / f"{task.stem}.ome.zarr"
    return paths


def _marker_path(out_dir: Path, stem: str) -> Path:
    return out_dir / "done" / f"{stem}.json"


def _remove_stale_temporaries(paths: Iterable[Path]) -> None:
    """Delete the temporary files a killed run left beside ``paths`` (``.<name>.*.tmp``).

    Every output is written to such a hidden file and renamed into place, so a kill never
    leaves a half-written file under an output's name, but it may leave the temporary file:
    the next run that writes the same output removes it.
    """
    for path in paths:
        for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
            stale.unlink(missing_ok=True)


def _start_outputs(task: _Task) -> dict[str, Path]:
    """Remove the task's marker (its outputs are about to change) and stale temporaries;
    return the output paths to write."""
    out_dir = Path(task.out_dir)
    marker = _marker_path(out_dir, task.stem)
    marker.unlink(missing_ok=True)  # not done until rewritten
    paths = _task_outputs(task)
    every = {**_outputs(out_dir, task.stem), **paths}
    if not task.confidence:  # an older run's map would not match the new classes
        every["confidence"].unlink(missing_ok=True)
    _remove_stale_temporaries([marker, *every.values()])
    for path in paths.values():  # geojson/ and zarr/ exist only in runs that ask for them
        path.parent.mkdir(parents=True, exist_ok=True)
    return paths


def _input_stamp(task: _Task) -> list:
    """Size and modification time (ns) of the image and mask files (None: no image; for an
    OME-Zarr image or label image, of its level-0 array's metadata)."""
    stamps = []
    for path in (task.image, task.mask):
        if path is None:
            stamps.append(None)
        elif io.is_zarr_path(path):  # a folder: its level-0 array's metadata tells
            stamps.append(io.omezarr.content_stamp(path))
        else:
            stat = os.stat(path)
            stamps.append([stat.st_size, stat.st_mtime_ns])
    return stamps


def _write_marker(task: _Task, fingerprint: str, n_objects: int) -> None:
    """Mark the task done: written last, after every output of the image."""
    record = {
        "model": fingerprint,
        "inputs": _input_stamp(task),
        "image": task.image,
        "mask": task.mask,
        "n_objects": n_objects,
        "extras": _extras(task),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    marker = _marker_path(Path(task.out_dir), task.stem)
    io.atomic_write_bytes(marker, json.dumps(record, indent=1).encode())


def _is_done(task: _Task, fingerprint: str) -> bool:
    out_dir = Path(task.out_dir)
    marker = _marker_path(out_dir, task.stem)
    outputs = _task_outputs(task)
    if not marker.is_file() or not all(p.exists() for p in outputs.values()):
        return False
    try:
        record = json.loads(marker.read_text())
        done = record.get("extras") or {}
        # Outputs asked for now (a GeoJSON, labels written into a Zarr) must have been made.
        extras = all(done.get(key) == value for key, value in _extras(task).items() if value)
        return (record.get("model") == fingerprint and extras
                and record.get("inputs") == _input_stamp(task))
    except (OSError, ValueError):
        return False


def _extras(task: _Task) -> dict[str, Any]:
    """The optional outputs a task asks for, as its marker records them."""
    return {"geojson": task.geojson, "zarr_labels": task.zarr_labels}


def _read_objects(path: Path) -> pd.DataFrame:
    """A per-image table as written by a run, with the dtypes it was written with."""
    # Class names stay text even when they look like numbers or "NA"; an empty well is missing.
    text = {"image": "str", "well": "str", "class": "str"}
    table = pd.read_csv(path, dtype=text, keep_default_na=False, na_values={"well": [""]})
    for column in ("image", "class"):  # as they were before write_csv protected them
        table[column] = table[column].map(io.formula_unsafe)
    return table


def _up_to_date(
    tasks: list[_Task], fingerprint: str, force: bool
) -> tuple[dict[str, pd.DataFrame], list[_Task]]:
    """Split the tasks into those done before (their tables, by image name) and the rest.

    With ``force`` nothing counts as done. A done image whose table cannot be read is
    predicted again.
    """
    tables: dict[str, pd.DataFrame] = {}
    todo = []
    for task in tasks:
        if not force and _is_done(task, fingerprint):
            try:
                tables[task.name] = _read_objects(_outputs(Path(task.out_dir), task.stem)["objects"])
                continue
            except (OSError, ValueError):
                pass  # unreadable table: predict again
        todo.append(task)
    return tables, todo
