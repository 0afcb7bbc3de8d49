"""Predict many images locally or on a Dask cluster, with outputs per image and resume.

:func:`predict_many` is the orchestration: load the model, make one task per image
(:mod:`~svetlana_core.predict.task`), skip the images already done
(:mod:`~svetlana_core.predict.resume`), run the others here or on a cluster
(:mod:`~svetlana_core.predict.cluster`), then write the combined tables
(:mod:`~svetlana_core.predict.outputs`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from svetlana_core.errors import InputError
from svetlana_core.values import default_colours
from svetlana_core.predict.backends import engine_of, is_forest, load_for_prediction
from svetlana_core.predict.cluster import _run_on_cluster
from svetlana_core.predict.crop import _spec
from svetlana_core.predict.outputs import _write_combined
from svetlana_core.predict.resume import _FOLDERS, _up_to_date, model_fingerprint
from svetlana_core.predict.task import _run_pipelined, _Settings, _Task, _tasks

if TYPE_CHECKING:
    from svetlana_core.models import LoadedModel
    from svetlana_core.models.inference import OnnxModel


@dataclass
class ManyResult:
    """What :func:`predict_many` did.

    Attributes
    ----------
    out_dir : Path
    done : list of str
        Image names predicted in this run.
    skipped : list of str
        Image names whose outputs were already up to date (same model, same input files).
    failed : dict of str to str
        Image name -> what went wrong (an InputError message, or the error's type and message).
    objects : pandas.DataFrame
        All objects of the done and skipped images (as ``objects.csv``).
    outputs : dict of str to Path
        The combined files written: ``objects_csv``, ``objects_parquet``, ``counts_per_image``,
        ``counts_per_well`` (only when some image names hold a well), ``xlsx``.
    notes : list of str
        Things worth telling the user (e.g. a sheet left out of the workbook).
    engine : str
        What ran the model here: ``"ONNX Runtime (CPU)"``, ``"torch (<device>)"`` or
        ``"random forest (CPU)"``.
    """

    out_dir: Path
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    objects: pd.DataFrame = field(default_factory=pd.DataFrame)
    outputs: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    engine: str = ""


def predict_many(
    model_dir: str | os.PathLike | LoadedModel,
    pairs: Iterable[Any] | str | os.PathLike,
    out_dir: str | os.PathLike,
    batch_size: int | None = None,
    chunk_objects: int | None = None,
    device: str = "auto",
    force: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
    client: Any = None,
    scheduler: str | None = None,
    axes: str | None = None,
    relabel_binary: bool = False,
    confidence_map: bool = False,
    tabulate_also: Iterable[Any] | None = None,
    geojson: bool = False,
    zarr_labels: str | None = None,
    colours: Mapping[str, str] | None = None,
) -> ManyResult:
    """Predict every object of many images and write per-image and combined outputs.

    Parameters
    ----------
    model_dir : path, OnnxModel, LoadedModel or BaselineModel
        A model folder, loaded with :func:`~svetlana_core.predict.backends.load_for_prediction`
        (a CNN in ONNX Runtime on the CPU or torch on a GPU, a random forest with numpy), or a
        loaded model (used as it is; ``device`` is then ignored locally). A Dask run needs a
        folder (each worker loads it once): a loaded model must have its ``folder``.
    pairs : folder, or iterable of io.Pair or (image_path, mask_path)
        A folder is paired with :func:`svetlana_core.io.pair_files`. ``image_path`` may be
        None for a mask-only model. Outputs are named after ``Pair.stem`` (or the image's
        file stem); the ``image`` column holds the image file name (the mask's when there is
        no image), and the well is parsed from it (:func:`svetlana_core.plate.parse_well`).
    out_dir : path
        Output folder, created if needed (see the module docstring for its layout).
    batch_size, chunk_objects : int
        As :func:`predict_image`.
    device : str, default "auto"
        "auto" (CUDA with torch when there is a GPU, else ONNX Runtime on the CPU, on each
        worker), "cpu", "cuda", "cuda:1", "mps".
    force : bool, default False
        Redo images whose outputs are up to date.
    progress : callable, optional
        Called as ``progress(n_finished, n_images, image_name)`` after each image (done,
        skipped or failed).
    client : distributed.Client, optional
        Run one task per image on this Dask cluster. Tasks get file paths, not arrays: workers
        read the images and write their outputs into ``out_dir`` (which they must see), and
        send back only the small per-object tables.
    scheduler : str, optional
        Address of a Dask scheduler ("tcp://host:8786") to connect to instead of ``client``.
    axes : str, optional
        Axes of the image files, when :func:`svetlana_core.io.read_image` cannot tell.
    relabel_binary : bool, default False
        Label the connected components of binary masks (:func:`svetlana_core.io.read_mask`).
    confidence_map : bool, default False
        Also write ``confidence/<stem>.tif``, the float32 map of each object's confidence
        (the per-object tables always hold it).
    tabulate_also : iterable of pairs, optional
        Images that are not predicted here but whose up-to-date outputs in ``out_dir`` (same
        model, same files) join the combined tables: predicting one image of a project again
        keeps the others' rows in ``objects.csv`` and the counts (they are not in ``done``
        or ``skipped``).
    geojson : bool, default False
        Also write ``geojson/<stem>.geojson``: the objects' outlines with their classes, in
        QuPath's GeoJSON (:mod:`svetlana_core.io.geojson`).
    zarr_labels : {None, "into", "copy"}
        For OME-Zarr images: write the objects as the label image ``labels/svetlana_classes``
        coloured by class (:func:`svetlana_core.io.omezarr.write_class_labels`), into the
        user's own store ("into": only when the user asked for it) or into a copy of the
        image at ``zarr/<stem>.ome.zarr`` ("copy").
    colours : mapping, optional
        Class name -> ``"#rrggbb"`` for the GeoJSON and Zarr outputs; default: the project
        palette (:data:`svetlana_core.store.PALETTE`) in the model's class order.

    Returns
    -------
    ManyResult

    Raises
    ------
    InputError
        Bad model folder, no pairs, two images with the same stem or name, both ``client``
        and ``scheduler``, or a loaded model without a folder for a Dask run. A problem with
        one image is not raised: it lands in ``ManyResult.failed`` and the others go on.
    """
    if client is not None and scheduler is not None:
        raise InputError("give either client or scheduler, not both")
    distributed = client is not None or scheduler is not None
    notes: list[str] = []
    model, folder = _model_of(model_dir, device, distributed, notes)
    classes = _classes(model)  # a model.json without them is refused before any work
    palette = {**default_colours(classes), **(colours or {})}
    settings = _Settings(model_fingerprint(model), batch_size, chunk_objects, axes,
                         relabel_binary, tuple(palette.items()))
    out = Path(out_dir)
    for sub in _FOLDERS:
        (out / sub).mkdir(parents=True, exist_ok=True)
    tasks = _tasks(pairs, out, confidence_map, geojson, zarr_labels)
    tables, todo = _up_to_date(tasks, settings.fingerprint, force)
    result = ManyResult(out_dir=out, skipped=[task.name for task in tasks if task.name in tables],
                        notes=notes, engine=engine_of(model))
    for finished, name in enumerate(result.skipped, start=1):
        if progress is not None:
            progress(finished, len(tasks), name)
    if distributed:
        outcomes = _run_on_cluster(client, scheduler, folder, device, todo, settings)
    else:
        outcomes = _run_pipelined(model, todo, settings)
    with closing(outcomes):  # a progress callback that raises (a cancel) ends the run at once
        for finished, outcome in enumerate(outcomes, start=len(result.skipped) + 1):
            if outcome.done:
                tables[outcome.name] = outcome.objects
                result.done.append(outcome.name)
            else:
                result.failed[outcome.name] = outcome.message
            if progress is not None:
                progress(finished, len(tasks), outcome.name)
    _sort_by_input(result, tasks)
    tasks = _with_others_up_to_date(tabulate_also, tasks, out, settings, tables)
    result.objects, outputs, notes = _write_combined(out, tasks, tables, classes)
    result.outputs.update(outputs)
    result.notes.extend(notes)
    return result


def _model_of(
    model_dir: str | os.PathLike | OnnxModel | LoadedModel, device: str, distributed: bool,
    notes: list[str],
) -> tuple[OnnxModel | LoadedModel, Path | None]:
    """The model and its folder: loaded here (:func:`~svetlana_core.models.load_predictor`;
    on the CPU for a Dask run, which only needs its fingerprint and classes), or as given; a
    Dask run needs the folder, for the workers."""
    if isinstance(model_dir, (str, os.PathLike)):
        folder = Path(model_dir)
        return load_for_prediction(folder, "cpu" if distributed else device,
                                   note=notes.append), folder
    folder = getattr(model_dir, "folder", None)
    if distributed and folder is None:
        raise InputError(
            "a Dask run needs the model folder (workers load it); this loaded model has none"
        )
    return model_dir, folder


def _with_others_up_to_date(pairs: Iterable[Any] | None, tasks: list[_Task], out: Path,
                            settings: _Settings,
                            tables: dict[str, pd.DataFrame]) -> list[_Task]:
    """``tasks`` and the tasks of ``pairs`` whose outputs are up to date (their tables added
    to ``tables``), in the order of ``pairs`` (``tasks`` not among them last): what the
    combined tables hold."""
    if pairs is None:
        return tasks
    everyone = _tasks(pairs, out)
    ours = {task.name: task for task in tasks}
    done, _ = _up_to_date([task for task in everyone if task.name not in ours],
                          settings.fingerprint, force=False)
    tables.update(done)
    listed = {task.name for task in everyone}
    return [ours.get(task.name, task) for task in everyone
            if task.name in ours or task.name in done] + \
        [task for task in tasks if task.name not in listed]


def _classes(model: Any) -> tuple[str, ...]:
    return tuple(model.classes) if is_forest(model) else _spec(model).classes


def _sort_by_input(result: ManyResult, tasks: list[_Task]) -> None:
    """Keep the input order in the lists, whatever order the cluster finished in."""
    rank = {task.name: k for k, task in enumerate(tasks)}
    result.done.sort(key=rank.__getitem__)
    result.failed = dict(sorted(result.failed.items(), key=lambda item: rank[item[0]]))
