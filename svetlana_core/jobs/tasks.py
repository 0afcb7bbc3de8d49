"""What a worker runs: a CNN or random-forest training, or a batch prediction."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any
from svetlana_core.errors import InputError
from svetlana_core.store import Project
from svetlana_core.jobs.control import _CancelFlag, _Cancelled
from svetlana_core.io.pairing import group_by_pattern

def _model_folder(project: Project, run_id: int, out_name: str | None) -> Path:
    name = out_name or f"run{run_id:04d}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    folder = project.models_dir / name
    if folder.exists() and any(folder.iterdir()):
        raise InputError(f"model folder {folder} already exists; choose another name")
    return folder


def _train_cnn(project: Project, run_id: int, spec: dict, flag: _CancelFlag) -> dict[str, Any]:
    from svetlana_core import training

    config = training.TrainConfig.from_dict(spec["config"])
    source = spec["source"]
    group_by = group_by_pattern(source.get("group_pattern"))
    if source["kind"] == "folders":
        dataset = training.dataset_from_folders(
            source.get("images"), source["masks"], source["labels"], config,
            group_by=group_by, axes=source.get("axes"),
        )
    else:
        dataset = training.dataset_from_project(project, config, group_by=group_by)
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
            **{k: run.metrics[k] for k in ("macro_f1", "balanced_accuracy", "accuracy")},
        },
    }


def _train_rf(project: Project, run_id: int, spec: dict, flag: _CancelFlag) -> dict[str, Any]:
    """Random-forest baseline on object features, scored on the same kind of grouped split."""
    from svetlana_core import baseline
    from svetlana_core import io

    params = dict(spec["config"])
    val_fraction = params.pop("val_fraction", 0.2)
    seed = params.pop("seed", 0)
    source = spec["source"]
    if source["kind"] == "folders":
        labels = io.read_labels_csv(source["labels"])
        if source.get("images") is None:
            files = {p.name: (None, p) for p in sorted(Path(source["masks"]).iterdir())
                     if p.suffix.lower() in io.MASK_EXTENSIONS}
        else:
            files = {p.image.name: (p.image, p.mask)
                     for p in io.pair_files(source["images"], source["masks"])}
        axes = source.get("axes")
    else:
        labels = project.labels()
        images = project.images().set_index("name")
        files = {n: (images.loc[n, "path"] if isinstance(images.loc[n, "path"], str) else None,
                     images.loc[n, "mask_path"])
                 for n in labels["image"].unique()}
        axes = None
    out_dir = _model_folder(project, run_id, spec.get("out_name"))  # fails before the work
    result = baseline.train_from_labels(
        files, labels, val_fraction=val_fraction, seed=seed,
        group_by=group_by_pattern(source.get("group_pattern")), axes=axes, stop=flag, **params)
    if result is None:
        return {"status": "stopped", "model_dir": None,
                "summary": {"text": "stopped while computing features"}}
    result.model.save(out_dir)
    summary = {"text": f"random forest on {result.n_train} objects; validation on "
                       f"{result.n_val}", "n_train": result.n_train, "n_val": result.n_val}
    if result.metrics:
        summary.update({k: result.metrics[k] for k in ("macro_f1", "balanced_accuracy",
                                                       "accuracy")})
    return {"status": "done", "model_dir": os.fspath(out_dir), "summary": summary}


def _predict(project: Project, run_id: int, spec: dict, flag: _CancelFlag) -> dict[str, Any]:
    import pandas as pd

    from svetlana_core import predict

    source = spec["source"]
    names: dict[str, str] = {}  # predict's image name (file name) -> project image name
    if source["kind"] == "project":
        images = project.images()
        wanted = source.get("images")
        if wanted is not None:
            unknown = sorted(set(wanted) - set(images["name"]))
            if unknown:
                raise InputError(f"project has no image(s) {', '.join(unknown[:5])}")
            images = images[images["name"].isin(wanted)]
        pairs = []
        for row in images.itertuples(index=False):
            path = None if row.path is None or pd.isna(row.path) else row.path
            pairs.append((path, row.mask_path))
            names[Path(path if path is not None else row.mask_path).name] = row.name
        if not pairs:
            raise InputError("there are no images to predict")
    else:
        from svetlana_core import io

        pairs = io.pair_files(source["images"], source.get("masks"))
    state = {"finished": 0, "total": len(pairs)}

    def progress(finished: int, total: int, name: str) -> None:
        state.update(finished=finished, total=total, image=name)
        summary = dict(project.run(run_id)["summary"] or {})
        project.update_run(run_id, summary={**summary, **state})
        if flag.is_set():
            raise _Cancelled

    try:
        result = predict.predict_many(
            spec["model_dir"], pairs, spec["out_dir"], device=spec.get("device", "auto"),
            force=spec.get("force", False), progress=progress, axes=source.get("axes"),
        )
    except _Cancelled:
        return {"status": "stopped", "model_dir": None,
                "summary": {**state, "text": f"stopped after {state['finished']} image(s)"}}
    if names and not result.objects.empty:
        for file_name, table in result.objects.groupby("image", sort=False):
            if file_name in names:
                project.save_predictions(spec["model_dir"], names[file_name], table)
    failed = [f"{name}: {message}" for name, message in result.failed.items()]
    summary = {
        **state, "done": list(result.done), "skipped": list(result.skipped), "failed": failed,
        "outputs": {k: os.fspath(v) for k, v in result.outputs.items()}, "notes": result.notes,
        "text": f"{len(result.done)} image(s) predicted, {len(result.skipped)} up to date, "
                f"{len(failed)} failed",
    }
    everything_failed = failed and not result.done and not result.skipped
    return {"status": "failed" if everything_failed else "done", "model_dir": None,
            "summary": summary, "error": failed[0] if everything_failed else None}
