"""One image file to predict: the task :func:`~svetlana_core.predict.predict_many` runs locally
or sends to a Dask worker, and what comes back.

Tasks and settings hold plain paths and strings, cheap to send to a worker; the outcome
carries only the small per-object table, never the image or the maps.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from svetlana_core import io, plate
from svetlana_core.errors import InputError
from svetlana_core.predict.image import Prediction, predict_image
from svetlana_core.predict.outputs import _write_image_outputs
from svetlana_core.predict.resume import _start_outputs, _write_marker

if TYPE_CHECKING:
    from svetlana_core.models import LoadedModel
    from svetlana_core.models.inference import OnnxModel


@dataclass(frozen=True)
class _Task:
    """One image to predict and where its outputs go."""

    image: str | None
    mask: str
    stem: str
    name: str
    well: str | None
    out_dir: str
    confidence: bool = False
    geojson: bool = False
    zarr_labels: str | None = None  # "into" the image's own store, a "copy" in out_dir, None


@dataclass(frozen=True)
class _Settings:
    """What every task of a run shares: the model's fingerprint and the options of the run."""

    fingerprint: str
    batch_size: int | None
    chunk_objects: int | None
    axes: str | None
    relabel_binary: bool
    colours: tuple[tuple[str, str], ...] = ()  # class name -> "#rrggbb", for GeoJSON and Zarr


@dataclass(frozen=True)
class _Outcome:
    """What a task gives back: ``objects`` when done, ``message`` when it failed."""

    name: str
    objects: pd.DataFrame | None = None
    message: str = ""

    @property
    def done(self) -> bool:
        return self.objects is not None


def _failed(name: str, error: Exception) -> _Outcome:
    """An outcome naming what went wrong: the error's type, then its message."""
    return _Outcome(name, message=f"{type(error).__name__}: {error}")


def _run_task(model: OnnxModel | LoadedModel, task: _Task, settings: _Settings) -> _Outcome:
    """Predict one image file and write its outputs; never raises (failures are returned)."""
    loaded = _read(task, settings)
    if isinstance(loaded, _Outcome):
        return loaded
    return _write(task, settings, _predict(model, task, loaded, settings))


def _guarded(name: str, step: Callable[[], Any]) -> Any:
    """``step()``, or the failed outcome of image ``name`` when it raises."""
    try:
        return step()
    except InputError as error:  # says what is wrong with which file
        return _Outcome(name, message=str(error))
    except Exception as error:  # one broken image must not stop a plate; the message says what
        return _failed(name, error)


def _read(task: _Task, settings: _Settings) -> Any:
    """The task's (image, mask), or its failed outcome."""
    return _guarded(task.name, lambda: io.load_pair(
        task.image, task.mask, axes=settings.axes, relabel_binary=settings.relabel_binary))


def _predict(model: OnnxModel | LoadedModel, task: _Task, loaded: Any,
             settings: _Settings) -> Any:
    """The prediction of a read task (the image is not kept), or its failed outcome."""
    if isinstance(loaded, _Outcome):
        return loaded
    image, mask = loaded

    def run() -> Prediction:
        prediction = predict_image(model, image, mask, batch_size=settings.batch_size,
                                   chunk_objects=settings.chunk_objects)
        # The mask is kept only to paint a confidence map or outline the objects.
        keep = task.confidence or task.geojson or task.zarr_labels
        return prediction if keep else replace(prediction, mask=None)

    return _guarded(task.name, run)


def _write(task: _Task, settings: _Settings, prediction: Any) -> _Outcome:
    """Write a predicted task's outputs, then its marker; its outcome."""
    if isinstance(prediction, _Outcome):
        return prediction

    def write() -> _Outcome:
        objects = _write_image_outputs(_start_outputs(task), task, prediction,
                                       dict(settings.colours))
        _write_marker(task, settings.fingerprint, len(objects))
        return _Outcome(task.name, objects=objects)

    return _guarded(task.name, write)


def _run_pipelined(model: OnnxModel | LoadedModel, tasks: list[_Task],
                   settings: _Settings) -> Iterator[_Outcome]:
    """:func:`_run_task` over ``tasks``, in order, with both cores busy: while one image is
    predicted the next is read and the previous one's outputs are written, each in a thread
    of its own (file reading, decompression and ONNX Runtime release the GIL).

    Memory holds at most the image being predicted, the next one read ahead and the maps of
    the previous one being written. Closing the generator (a cancel) cancels the read ahead
    and waits for the write under way, so no output is left half written.
    """
    if len(tasks) < 2:
        yield from (_run_task(model, task, settings) for task in tasks)
        return
    with ThreadPoolExecutor(1, thread_name_prefix="svetlana-read") as reader, \
            ThreadPoolExecutor(1, thread_name_prefix="svetlana-write") as writer:
        try:
            ahead = reader.submit(_read, tasks[0], settings)
            writing = None
            for k, task in enumerate(tasks):
                loaded = ahead.result()
                if k + 1 < len(tasks):
                    ahead = reader.submit(_read, tasks[k + 1], settings)
                prediction = _predict(model, task, loaded, settings)
                del loaded  # the image goes as soon as it is predicted
                if writing is not None:
                    yield writing.result()
                writing = writer.submit(_write, task, settings, prediction)
                del prediction
            yield writing.result()
        finally:
            reader.shutdown(wait=True, cancel_futures=True)


def _tasks(pairs: Iterable[Any] | str | os.PathLike, out_dir: Path,
           confidence: bool = False, geojson: bool = False,
           zarr_labels: str | None = None) -> list[_Task]:
    """One task per image/mask pair (a folder is paired first), names checked to be unique;
    ``confidence``: the tasks also write a confidence map; ``geojson``: a QuPath GeoJSON;
    ``zarr_labels``: OME-Zarr images get the class labels ("into" them or a "copy").

    Raises
    ------
    InputError
        When an item is not a pair, there is none, or two pairs share a stem or an image name
        (their outputs would overwrite each other).
    """
    if isinstance(pairs, (str, os.PathLike)):
        pairs = io.pair_files(pairs)
    tasks = [_task(item, out_dir, confidence) for item in pairs]
    if not tasks:
        raise InputError("pairs is empty: there is no image to predict")
    if zarr_labels is not None:
        if zarr_labels not in ("into", "copy"):
            raise InputError(f"zarr_labels must be 'into', 'copy' or None, got {zarr_labels!r}")
        if not any(task.image and io.is_zarr_path(task.image) for task in tasks):
            raise InputError("class labels can be written into OME-Zarr images only, and none "
                             "of the images is one")
    tasks = [replace(task, geojson=geojson,
                     zarr_labels=zarr_labels if task.image and io.is_zarr_path(task.image)
                     else None) for task in tasks]
    for attribute, what in (("stem", "output name (file stem)"), ("name", "image name")):
        values = pd.Series([getattr(task, attribute) for task in tasks])
        twice = sorted(values[values.duplicated()].unique())
        if twice:
            raise InputError(
                f"{len(twice)} {what}(s) occur more than once, their outputs would overwrite "
                f"each other: {twice[:5]}"
            )
    return tasks


def _task(item: Any, out_dir: Path, confidence: bool = False) -> _Task:
    """The task of an io.Pair or an (image_path, mask_path) tuple (image_path may be None)."""
    if isinstance(item, io.Pair):
        image, mask, stem = item.image, item.mask, item.stem
    else:
        try:
            image, mask = item
        except (TypeError, ValueError):
            raise InputError(
                f"pairs must hold io.Pair or (image_path, mask_path) tuples; got {item!r}"
            ) from None
        stem = None
    mask = Path(mask)
    image = None if image is None else Path(image)
    named = image or mask
    name = io.image_name(named)
    well = plate.parse_well(name)
    return _Task(
        image=None if image is None else str(image),
        mask=str(mask),
        stem=str(io.image_stem(named) if stem is None else stem),
        name=name,
        well=None if well is None else well.name,
        out_dir=str(out_dir),
        confidence=confidence,
    )
