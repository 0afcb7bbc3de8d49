"""What a worker runs: a CNN or random-forest training, or a batch prediction.

Each task is called as ``task(project, run_id, spec, stop)`` with ``spec`` the run's stored
config and ``stop`` an object whose ``is_set()`` says to stop (the worker's cancel flag). It
returns an outcome ``{"status", "model_dir", "summary"[, "error"]}`` that the worker records;
anything it raises ends the run ``failed`` with the message. Tasks report progress to the
store themselves (epochs, the model folder once a checkpoint exists, images predicted).
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from svetlana_core import io
from svetlana_core.errors import InputError
from svetlana_core.jobs.sources import FoldersSource, ProjectSource, source_from_dict
from svetlana_core.store import Project

#: The three metrics a run's summary keeps, for the runs table.
_SCORES = ("macro_f1", "balanced_accuracy", "accuracy")


class _Stop(Protocol):
    def is_set(self) -> bool: ...


class _Cancelled(Exception):
    """Raised from a progress callback to abandon work that has no stop event."""


def _model_folder(project: Project, run_id: int, out_name: str | None) -> Path:
    name = out_name or f"run{run_id:04d}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    folder = project.models_dir / name
    if folder.exists() and any(folder.iterdir()):
        raise InputError(f"model folder {folder} already exists; choose another name")
    return folder


def _train_cnn(project: Project, run_id: int, spec: dict, flag: _Stop) -> dict[str, Any]:
    from svetlana_core import training

    config = training.TrainConfig.from_dict(spec["config"])
    source = source_from_dict(spec["source"])
    group_by = io.group_by_pattern(source.group_pattern)
    if isinstance(source, FoldersSource):
        dataset = training.dataset_from_folders(
            source.images, source.masks, source.labels, config,
            group_by=group_by, axes=source.axes,
        )
    else:
        dataset = training.dataset_from_training_set(project.training_set(), config, group_by)
    out_dir = _model_folder(project, run_id, spec.get("out_name"))

    def on_epoch(record: dict) -> None:
        # the store keeps the epoch number in its own column
        metrics = {k: v for k, v in record.items() if k != "epoch"}
        project.add_epoch(run_id, record["epoch"], metrics)
        if record.get("best"):
            # train() has just written the checkpoint: from now on a killed worker leaves
            # this model, and reap_dead_jobs keeps it
            project.update_run(run_id, model_dir=os.fspath(out_dir))

    run = training.train(dataset, config, on_epoch=on_epoch, stop=flag, out_dir=out_dir)
    return {
        "status": "stopped" if run.stopped else "done",
        "model_dir": os.fspath(run.model_dir),
        "summary": {
            "text": run.summary, "best_epoch": run.best_epoch, "stop_reason": run.stop_reason,
            "seconds": round(run.seconds, 1), "n_train": run.split["n_train"],
            "n_val": run.split["n_val"], "split": run.split["note"],
            **{k: run.metrics[k] for k in _SCORES},
        },
    }


def _train_rf(project: Project, run_id: int, spec: dict, flag: _Stop) -> dict[str, Any]:
    """Random-forest baseline on object features, scored on the same kind of grouped split."""
    from svetlana_core import baseline

    params = dict(spec["config"])
    val_fraction = params.pop("val_fraction", 0.2)
    seed = params.pop("seed", 0)
    source = source_from_dict(spec["source"])
    if isinstance(source, FoldersSource):
        labels, files, axes = io.read_labels_csv(source.labels), source.files(), source.axes
    else:
        # axes stay None: train_from_labels reads every image with one axes string
        labels, (files, _), axes = project.labels(), project.training_files(), None
    out_dir = _model_folder(project, run_id, spec.get("out_name"))  # fails before the work
    result = baseline.train_from_labels(
        files, labels, val_fraction=val_fraction, seed=seed,
        group_by=io.group_by_pattern(source.group_pattern), axes=axes, stop=flag,
        out_dir=out_dir, **params)
    if result is None:
        return {"status": "stopped", "model_dir": None,
                "summary": {"text": "stopped while computing features"}}
    summary = {"text": f"random forest on {result.n_train} objects; validation on "
                       f"{result.n_val}", "n_train": result.n_train, "n_val": result.n_val}
    if result.metrics:
        summary.update({k: result.metrics[k] for k in _SCORES})
    return {"status": "done", "model_dir": os.fspath(out_dir), "summary": summary}


def _predict(project: Project, run_id: int, spec: dict, flag: _Stop) -> dict[str, Any]:
    """Batch prediction; per-object results of project images also go to the store."""
    from svetlana_core import predict

    source = source_from_dict(spec["source"])
    pairs, names = _prediction_pairs(project, source)
    state = {"finished": 0, "total": len(pairs)}

    def progress(finished: int, total: int, name: str) -> None:
        state.update(finished=finished, total=total, image=name)
        summary = dict(project.run(run_id)["summary"] or {})
        project.update_run(run_id, summary={**summary, **state})
        if flag.is_set():
            raise _Cancelled

    try:
        # The combined tables (the Predict page's downloads) hold every project image this
        # model has predicted, not only the ones of this run.
        every = _prediction_pairs(project, ProjectSource())[0] \
            if isinstance(source, ProjectSource) else None
        result = predict.predict_many(
            spec["model_dir"], pairs, spec["out_dir"], device=spec.get("device", "auto"),
            force=spec.get("force", False), progress=progress,
            axes=getattr(source, "axes", None), tabulate_also=every,
        )
    except _Cancelled:
        return {"status": "stopped", "model_dir": None,
                "summary": {**state, "text": f"stopped after {state['finished']} image(s)"}}
    if names and not result.objects.empty:
        ran = set(result.done) | set(result.skipped)  # the others are stored already
        for file_name, table in result.objects.groupby("image", sort=False):
            if file_name in names and file_name in ran:
                project.save_predictions(spec["model_dir"], names[file_name], table)
    return _prediction_outcome(result, state)


def _prediction_pairs(project: Project, source: Any) -> tuple[list[Any], dict[str, str]]:
    """The ``(image, mask)`` pairs to predict, and predict's image name -> project image name.

    ``predict_many`` names an image by its file name (the mask's for mask-only data); the
    project may name it otherwise, and the stored predictions use the project's name.
    """
    if not isinstance(source, ProjectSource):
        return io.pair_files(source.images, source.masks), {}
    files, _ = project.training_files()
    if source.images is not None:
        unknown = sorted(set(source.images) - set(files))
        if unknown:
            raise InputError(f"project has no image(s) {', '.join(unknown[:5])}")
        files = {name: pair for name, pair in files.items() if name in set(source.images)}
    if not files:
        raise InputError("there are no images to predict")
    names = {io.image_name(path if path is not None else mask): name
             for name, (path, mask) in files.items()}
    return list(files.values()), names


def _prediction_outcome(result: Any, state: dict[str, Any]) -> dict[str, Any]:
    """The outcome of a prediction that ran to the end: done, or failed if every image did."""
    failed = [f"{name}: {message}" for name, message in result.failed.items()]
    summary = {
        **state, "done": list(result.done), "skipped": list(result.skipped), "failed": failed,
        "outputs": {k: os.fspath(v) for k, v in result.outputs.items()}, "notes": result.notes,
        "engine": result.engine,
        "text": f"{len(result.done)} image(s) predicted, {len(result.skipped)} up to date, "
                f"{len(failed)} failed ({result.engine})",
    }
    everything_failed = failed and not result.done and not result.skipped
    return {"status": "failed" if everything_failed else "done", "model_dir": None,
            "summary": summary, "error": failed[0] if everything_failed else None}


#: The task of each job kind (``spec["kind"]``).
_TASKS = {"cnn": _train_cnn, "rf": _train_rf, "predict": _predict}
