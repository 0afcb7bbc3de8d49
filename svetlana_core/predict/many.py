"""Predict many images locally or on a Dask cluster, with outputs per image and resume."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
import pandas as pd
import torch  # noqa: E402
from svetlana_core import io
from svetlana_core import stats
from svetlana_core.errors import InputError  # noqa: E402
from svetlana_core import plate
if TYPE_CHECKING:  # training imports torch models; predict only needs the loaded result
    from svetlana_core.models import LoadedModel
from svetlana_core.predict.crop import _spec
from svetlana_core.predict.image import predict_image, prediction_columns

#: Above this many objects the combined workbook leaves out the per-object sheet: openpyxl
#: writes 1,600-4,500 such rows a second here (30,000 objects took 6.8 s, longer than
#: predicting them); objects.csv and objects.parquet always hold them all.
XLSX_MAX_OBJECTS = 5_000


# --------------------------------------------------------------------------- many images


def model_fingerprint(model: LoadedModel | str | os.PathLike) -> str:
    """SHA-256 of a model's description and weights (hex), the same for a folder and its load.

    Hashes the canonical JSON of ``model.meta`` and every tensor of the state dict (sorted by
    name), so retraining, editing the classes or swapping the weights file changes it.
    """
    if not hasattr(model, "module"):
        model = _load(model, "cpu")
    digest = hashlib.sha256()
    digest.update(json.dumps(model.meta, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _load(folder: str | os.PathLike, device: str | torch.device) -> LoadedModel:
    from svetlana_core.models import load_model

    return load_model(folder, device=device)


# Worker-side cache: a Dask worker loads each model once, keyed by folder, file times and device.
_MODEL_CACHE: dict[tuple, LoadedModel] = {}
_MODEL_CACHE_LOCK = threading.Lock()


def _cached_model(folder: str, device: str) -> LoadedModel:
    path = Path(folder).resolve()
    stamps = tuple(
        (p.name, p.stat().st_mtime_ns) for p in sorted(path.iterdir()) if p.is_file()
    )
    key = (str(path), stamps, str(device))
    with _MODEL_CACHE_LOCK:
        if key not in _MODEL_CACHE:
            for old in [k for k in _MODEL_CACHE if k[0] == key[0]]:
                del _MODEL_CACHE[old]
            _MODEL_CACHE[key] = _load(path, device)
        return _MODEL_CACHE[key]


@dataclass(frozen=True)
class _Job:
    """One image to predict: plain paths and strings, cheap to send to a Dask worker."""

    image: str | None
    mask: str
    stem: str
    name: str
    well: str | None
    out_dir: str


def _outputs(out_dir: Path, stem: str) -> dict[str, Path]:
    return {
        "class_map": out_dir / "class_maps" / f"{stem}.tif",
        "confidence": out_dir / "confidence" / f"{stem}.tif",
        "objects": out_dir / "objects" / f"{stem}.csv",
    }


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


def _input_stamp(job: _Job) -> list:
    stamps = []
    for path in (job.image, job.mask):
        if path is None:
            stamps.append(None)
        else:
            stat = os.stat(path)
            stamps.append([stat.st_size, stat.st_mtime_ns])
    return stamps


def _is_done(job: _Job, fingerprint: str) -> bool:
    out_dir = Path(job.out_dir)
    marker = _marker_path(out_dir, job.stem)
    if not marker.is_file() or not all(p.is_file() for p in _outputs(out_dir, job.stem).values()):
        return False
    try:
        record = json.loads(marker.read_text())
        return record.get("model") == fingerprint and record.get("inputs") == _input_stamp(job)
    except (OSError, ValueError):
        return False


def _with_image(objects: pd.DataFrame, name: str, well: str | None) -> pd.DataFrame:
    """The per-object table with ``image`` and ``well`` (missing when None) in front."""
    n = len(objects)
    front = pd.DataFrame(
        {"image": pd.Series([name] * n, dtype="str"), "well": pd.Series([well] * n, dtype="str")}
    )
    return pd.concat([front, objects.reset_index(drop=True)], axis=1)


def _read_objects(path: Path) -> pd.DataFrame:
    """A per-image table written by :func:`_run_job`, with the dtypes it was written with."""
    # Class names stay text even when they look like numbers or "NA"; an empty well is missing.
    text = {"image": "str", "well": "str", "class": "str"}
    return pd.read_csv(path, dtype=text, keep_default_na=False, na_values={"well": [""]})


def _run_job(
    model: LoadedModel,
    job: _Job,
    fingerprint: str,
    batch_size: int,
    chunk_objects: int,
    axes: str | None,
    relabel_binary: bool,
) -> dict[str, Any]:
    """Predict one image file and write its outputs; never raises (failures are returned)."""
    try:
        out_dir = Path(job.out_dir)
        marker = _marker_path(out_dir, job.stem)
        marker.unlink(missing_ok=True)  # outputs about to change: not done until rewritten
        _remove_stale_temporaries([marker, *_outputs(out_dir, job.stem).values()])
        image, mask = io.load_pair(job.image, job.mask, axes=axes, relabel_binary=relabel_binary)
        prediction = predict_image(
            model, image, mask, batch_size=batch_size, chunk_objects=chunk_objects
        )
        del image
        objects = _with_image(prediction.objects, job.name, job.well)
        paths = _outputs(out_dir, job.stem)
        description = {
            "classes": list(prediction.classes),
            "background": 0,
            "value": "class index + 1",
            "image": job.name,
            "axes": "YX" if mask.ndim == 2 else "ZYX",
        }
        io.write_tiff(paths["class_map"], prediction.class_map, description)
        io.write_tiff(
            paths["confidence"],
            prediction.confidence_map,
            {**description, "value": "confidence (top probability), 0 on background"},
        )
        io.write_csv(paths["objects"], objects)
        record = {
            "model": fingerprint,
            "inputs": _input_stamp(job),
            "image": job.image,
            "mask": job.mask,
            "n_objects": len(objects),
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        io.atomic_write_bytes(marker, json.dumps(record, indent=1).encode())
        return {"name": job.name, "status": "done", "objects": objects}
    except InputError as error:
        return {"name": job.name, "status": "failed", "message": str(error)}
    except Exception as error:  # one broken image must not stop a plate; the message says what
        return {
            "name": job.name,
            "status": "failed",
            "message": f"{type(error).__name__}: {error}",
        }


def _run_job_on_worker(
    model_dir: str,
    device: str,
    job: _Job,
    fingerprint: str,
    batch_size: int,
    chunk_objects: int,
    axes: str | None,
    relabel_binary: bool,
) -> dict[str, Any]:
    """Dask task: load the model once per worker (cached), then :func:`_run_job`."""
    try:
        model = _cached_model(model_dir, device)
    except Exception as error:
        return {"name": job.name, "status": "failed", "message": f"loading model: {error}"}
    return _run_job(model, job, fingerprint, batch_size, chunk_objects, axes, relabel_binary)


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
    """

    out_dir: Path
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    objects: pd.DataFrame = field(default_factory=pd.DataFrame)
    outputs: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _as_jobs(
    pairs: Iterable[Any] | str | os.PathLike, out_dir: Path
) -> list[_Job]:
    if isinstance(pairs, (str, os.PathLike)):
        pairs = io.pair_files(pairs)
    jobs = []
    for item in pairs:
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
        if stem is None:
            stem = (image or mask).stem
        name = (image or mask).name
        well = plate.parse_well(name)
        jobs.append(
            _Job(
                image=None if image is None else str(image),
                mask=str(mask),
                stem=str(stem),
                name=name,
                well=None if well is None else well.name,
                out_dir=str(out_dir),
            )
        )
    if not jobs:
        raise InputError("pairs is empty: there is no image to predict")
    for attribute, what in (("stem", "output name (file stem)"), ("name", "image name")):
        seen: dict[str, int] = {}
        for job in jobs:
            seen[getattr(job, attribute)] = seen.get(getattr(job, attribute), 0) + 1
        twice = sorted(k for k, v in seen.items() if v > 1)
        if twice:
            raise InputError(
                f"{len(twice)} {what}(s) occur more than once, their outputs would overwrite "
                f"each other: {twice[:5]}"
            )
    return jobs


#: The files :func:`_write_combined` writes into ``out_dir``.
COMBINED_FILES = ("objects.csv", "objects.parquet", "counts_per_image.csv",
                  "counts_per_well.csv", "results.xlsx")


def _write_parquet(path: Path, table: pd.DataFrame) -> None:
    io.atomic_write(path, lambda handle: table.to_parquet(handle, index=False))


def _write_combined(
    result: ManyResult, jobs: list[_Job], tables: dict[str, pd.DataFrame], classes: Sequence[str]
) -> None:
    out_dir = result.out_dir
    _remove_stale_temporaries(out_dir / name for name in COMBINED_FILES)
    order = [job.name for job in jobs if job.name in tables]
    empty = pd.DataFrame(columns=["image", "well", "label", *prediction_columns(classes)])
    if not order:
        # Every image failed (each named in result.failed): there is nothing to tabulate.
        result.objects = empty
        result.notes.append("no image was predicted: no combined tables written")
        return
    frames = [tables[name] for name in order if len(tables[name])]
    objects = pd.concat(frames, ignore_index=True) if frames else empty
    result.objects = objects
    images = pd.DataFrame(
        {
            "image": order,
            "well": [job.well for job in jobs if job.name in tables],
        },
        dtype=object,
    )

    outputs = result.outputs
    outputs["objects_csv"] = io.write_csv(out_dir / "objects.csv", objects)
    outputs["objects_parquet"] = out_dir / "objects.parquet"
    _write_parquet(outputs["objects_parquet"], objects)
    per_image = stats.counts_per_image(objects, classes, images=images)
    outputs["counts_per_image"] = io.write_csv(out_dir / "counts_per_image.csv", per_image)
    sheets = {"counts_per_image": per_image}
    wells = images["well"].dropna()
    well_file = out_dir / "counts_per_well.csv"
    if len(wells):
        layout = plate.infer_layout(wells)
        per_well = stats.counts_per_well(objects, classes, layout=layout, images=images)
        outputs["counts_per_well"] = io.write_csv(well_file, per_well)
        sheets["counts_per_well"] = per_well
        result.notes.append(f"wells laid out on a {layout}-well plate")
    else:
        well_file.unlink(missing_ok=True)  # a stale one from another run would mislead
        result.notes.append("no image name holds a well (such as A01): no per-well counts")
    if len(objects) <= XLSX_MAX_OBJECTS:
        sheets = {"objects": objects, **sheets}
    else:
        result.notes.append(
            f"{len(objects)} objects: the workbook leaves out the objects sheet "
            f"(over {XLSX_MAX_OBJECTS}); objects.csv and objects.parquet hold them"
        )
    outputs["xlsx"] = stats.export_tables(out_dir / "results.xlsx", sheets)


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
) -> ManyResult:
    """Predict every object of many images and write per-image and combined outputs.

    Parameters
    ----------
    model_dir : path or LoadedModel
        A model folder (``model.json`` + ``weights.safetensors``) or a loaded model (used on
        its own device; ``device`` is then ignored locally). A Dask run needs a folder (each
        worker loads it once): a loaded model must have its ``folder``.
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
        "auto" (CUDA, then MPS, then CPU, on each worker), "cpu", "cuda", "cuda:1", ...
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
    if hasattr(model_dir, "module"):
        model = model_dir
        folder = getattr(model, "folder", None)
        if distributed and folder is None:
            raise InputError(
                "a Dask run needs the model folder (workers load it); this loaded model has none"
            )
    else:
        folder = Path(model_dir)
        model = _load(folder, "cpu" if distributed else device)
    spec = _spec(model)
    fingerprint = model_fingerprint(model)

    out = Path(out_dir)
    for sub in ("class_maps", "confidence", "objects", "done"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    jobs = _as_jobs(pairs, out)
    result = ManyResult(out_dir=out)
    tables: dict[str, pd.DataFrame] = {}
    total = len(jobs)
    finished = 0

    def report(name: str) -> None:
        nonlocal finished
        finished += 1
        if progress is not None:
            progress(finished, total, name)

    todo = []
    for job in jobs:
        if not force and _is_done(job, fingerprint):
            try:
                tables[job.name] = _read_objects(_outputs(out, job.stem)["objects"])
                result.skipped.append(job.name)
                report(job.name)
                continue
            except (OSError, ValueError):
                pass  # unreadable table: predict again
        todo.append(job)

    def record(outcome: dict[str, Any]) -> None:
        if outcome["status"] == "done":
            tables[outcome["name"]] = outcome["objects"]
            result.done.append(outcome["name"])
        else:
            result.failed[outcome["name"]] = outcome["message"]
        report(outcome["name"])

    options = (batch_size, chunk_objects, axes, relabel_binary)
    if not distributed:
        for job in todo:
            record(_run_job(model, job, fingerprint, *options))
    else:
        own_client = None
        if client is None:
            from distributed import Client

            client = own_client = Client(scheduler)
        try:
            from distributed import as_completed

            futures = {
                client.submit(
                    _run_job_on_worker,
                    str(folder.resolve()),
                    str(device),
                    job,
                    fingerprint,
                    *options,
                    key=f"svetlana-predict-{job.stem}-{uuid.uuid4().hex[:8]}",
                    pure=False,
                ): job
                for job in todo
            }
            for future in as_completed(futures):
                job = futures[future]
                try:
                    outcome = future.result()
                except Exception as error:  # a worker died or the task could not run
                    outcome = {
                        "name": job.name,
                        "status": "failed",
                        "message": f"{type(error).__name__}: {error}",
                    }
                record(outcome)
                future.release()
        finally:
            if own_client is not None:
                own_client.close()

    # Keep the input order in the lists, whatever order the cluster finished in.
    rank = {job.name: k for k, job in enumerate(jobs)}
    result.done.sort(key=rank.__getitem__)
    result.failed = dict(sorted(result.failed.items(), key=lambda item: rank[item[0]]))
    _write_combined(result, jobs, tables, spec.classes)
    return result
