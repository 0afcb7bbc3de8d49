"""A whole training run: :func:`train` and its :class:`Run`."""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
import random

import numpy as np
import torch  # noqa: E402
from svetlana_core import models
from svetlana_core.errors import InputError  # noqa: E402
from svetlana_core.stats import classification_metrics
from svetlana_core.training.augment import BatchAugment
from svetlana_core.models.folder import FORMAT_VERSION, LoadedModel, _read_meta, _read_weights, _versions, save_model
from svetlana_core.training.dataset import ObjectSet, _group_keys
from svetlana_core.training.config import TrainConfig, config_for_parent
from svetlana_core.training.loop import _batches, _steps_per_epoch, evaluate, train_one_epoch
from svetlana_core.models.device import _cpu_threads, memory_format_for, resolve_device
from svetlana_core.training.split import _split_with_note
from svetlana_core.training.optim import build_loss, build_optimiser, build_scheduler, class_weights

@dataclass
class Run:
    """The result of :func:`train`.

    Attributes
    ----------
    history : list of dict
        One flat record per epoch (see :func:`train`).
    best_epoch : int
        Epoch whose weights were kept (1-based).
    metrics : dict
        :func:`svetlana_core.metrics.classification_metrics` of the best epoch on the
        validation set, plus ``val_loss``.
    model_dir : Path or None
        The saved model folder (None when ``out_dir`` was None).
    stopped : bool
        True when the ``stop`` event ended the run.
    stop_reason : str
        "completed", "early stopping", "time limit" or "stopped".
    seconds : float
    device : str
    summary : str
        One paragraph for people: split, best epoch and its figures, why it ended.
    classes : tuple of str
    split : dict
        ``n_train``, ``n_val``, ``note`` (grouped or fallback), ``val_groups``.
    model : LoadedModel
        The best model, in memory, in eval mode.
    """

    history: list[dict]
    best_epoch: int
    metrics: dict
    model_dir: Path | None
    stopped: bool
    stop_reason: str
    seconds: float
    device: str
    summary: str
    classes: tuple[str, ...]
    split: dict
    model: LoadedModel = field(repr=False)


def _record(epoch: int, train_loss: float, val_loss: float, scores: dict | None,
            classes: Sequence[str], lr: float, seconds: float) -> dict[str, Any]:
    record: dict[str, Any] = {
        "epoch": epoch, "train_loss": _finite(train_loss), "val_loss": _finite(val_loss),
    }
    for key in ("accuracy", "balanced_accuracy", "macro_f1"):
        record[key] = None if scores is None else scores[key]
    for c in classes:
        record[f"recall_{c}"] = None if scores is None else scores["per_class"][c]["recall"]
    record["lr"] = lr
    record["seconds"] = round(seconds, 3)
    return record


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def train(
    dataset: ObjectSet,
    config: TrainConfig,
    on_epoch: Callable[[dict[str, Any]], Any] | None = None,
    stop: Any = None,
    out_dir: str | os.PathLike | None = None,
    parent: str | os.PathLike | None = None,
    groups: Callable[[str], Any] | Sequence[Any] | np.ndarray | None = None,
    split: tuple[np.ndarray, np.ndarray] | None = None,
    timings: dict[str, float] | None = None,
) -> Run:
    """Train a classifier on an :class:`ObjectSet`; never prints.

    Parameters
    ----------
    dataset : ObjectSet
        From :func:`build_samples` and friends.
    config : TrainConfig
    on_epoch : callable, optional
        Called after each epoch with a flat, JSON-able record: ``epoch``, ``train_loss``,
        ``val_loss``, ``accuracy``, ``balanced_accuracy``, ``macro_f1``, ``recall_<class>``
        for every class, ``lr``, ``seconds`` (of that epoch), ``best`` (whether these are now
        the kept weights). Without a validation set the scores are those of the training
        objects.
    stop : threading.Event or multiprocessing.Event (anything with ``is_set()``), optional
        Checked before every batch: the run ends within one batch, keeps the best weights
        of the finished epochs (or scores the unfinished one if none finished) and saves.
    out_dir : path, optional
        Model folder to write (must not exist, or be empty: checked before training). It is
        written as a checkpoint each time the kept weights change (``stop_reason``
        ``"in progress"`` in its ``model.json``), so a worker killed mid-run leaves its best
        model so far, and rewritten at the end. None: nothing is written; the model is in
        ``Run.model``.
    parent : path, optional
        Model folder to continue from (overrides ``config.continue_from``).
    groups : callable, sequence or None
        Split groups: ``image_name -> key`` applied to ``dataset.images``, or one key per
        object. Default: ``dataset.groups``.
    split : (train_idx, val_idx), optional
        A split made by the caller (e.g. to score a baseline on the same objects).
    timings : dict, optional
        For benchmarks: accumulates ``compute`` (forward + backward + step), ``total`` (the
        training passes) and ``evaluate`` seconds.

    Returns
    -------
    Run

    Raises
    ------
    InputError
        Bad config for these data, a parent with other classes or patch settings.
    """
    started = time.monotonic()
    if out_dir is not None:
        out_dir = Path(out_dir)
        if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
            raise InputError(f"model folder {out_dir} already exists and is not empty")
    if parent is not None:
        config = dataclasses.replace(config, continue_from=os.fspath(parent))
    if not isinstance(dataset, ObjectSet):
        raise InputError(f"dataset must be an ObjectSet, got {type(dataset).__name__}")
    config = config_for_parent(config)
    config.validate(in_channels=dataset.in_channels, spatial_dims=dataset.spatial_dims)
    parent_meta, parent_folder, classes, y_all = None, None, dataset.classes, dataset.y
    if config.continue_from is not None:
        parent_folder = Path(config.continue_from)
        parent_meta = _read_meta(parent_folder)
        mapping = _check_against_parent(dataset, parent_meta, parent_folder)
        classes, y_all = tuple(parent_meta["classes"]), mapping[dataset.y]

    if config.patch_size is not None:
        wanted = config.patch_size if isinstance(config.patch_size, tuple) else \
            (config.patch_size,) * dataset.spatial_dims
        if tuple(wanted) != dataset.patch_size:
            raise InputError(
                f"config patch_size is {config.patch_size} but the dataset patches are "
                f"{dataset.patch_size}; build the dataset with this config"
            )
    arch_params = config.full_arch_params(dataset.patch_size)
    models.check_patch_size(config.arch, arch_params, dataset.patch_size)

    set_seed(config.seed)
    device = resolve_device(config.device)
    if device.type == "cpu" and torch.get_num_threads() != _cpu_threads():
        torch.set_num_threads(_cpu_threads())

    # -- split ------------------------------------------------------------------------------
    if groups is None:
        group_keys = dataset.groups
    elif callable(groups):
        group_keys = _group_keys(dataset.images, groups)
    else:
        group_keys = np.asarray(groups).astype(str)
        if len(group_keys) != len(dataset):
            raise InputError(f"groups has {len(group_keys)} values for {len(dataset)} objects")
    if split is None:
        train_idx, val_idx, note = _split_with_note(y_all, group_keys, config.val_fraction,
                                                    config.seed)
    else:
        train_idx, val_idx = (np.asarray(s, dtype=np.int64) for s in split)
        note = "split given by the caller"
    if not len(train_idx):
        raise InputError("the training set is empty")
    has_val = len(val_idx) > 0
    eval_idx = val_idx if has_val else train_idx

    # -- model, loss, optimiser ------------------------------------------------------------
    n_classes = len(classes)
    module = models.build_model(config.arch, dataset.in_channels, n_classes,
                                dataset.spatial_dims, **arch_params)
    arch_params = module.build_config["params"]  # pretrained path replaced by None
    if parent_meta is not None:
        module.load_state_dict(_read_weights(parent_folder, module))
    layout = memory_format_for(dataset.spatial_dims)
    module.to(device, memory_format=layout)
    weights = class_weights(y_all[train_idx], n_classes, config.class_weights)
    loss_fn = build_loss(config.loss, n_classes, weights, config.label_smoothing).to(device)
    optimiser = build_optimiser(config.optimiser, module.parameters(), config.lr,
                                config.weight_decay)
    steps = _steps_per_epoch(len(train_idx), config.batch_size)
    deadline = None if config.max_minutes is None else started + 60 * config.max_minutes
    scheduler = build_scheduler(
        config.schedule, optimiser, config.epochs, steps, config.step_size, config.gamma,
        budget_s=None if deadline is None else max(1e-3, deadline - time.monotonic()),
    )
    scaler = torch.amp.GradScaler("cuda") if device.type == "cuda" else None
    augment = BatchAugment(config.augment, dataset.image_channels, dataset.patch_size,
                           seed=config.seed)
    generator = torch.Generator().manual_seed(config.seed)

    # The patches stay where they are (shared, never written): each batch is gathered from
    # them by index, so the training set is not copied.
    X = torch.from_numpy(np.ascontiguousarray(dataset.X))
    y = torch.from_numpy(y_all)
    train_index = torch.from_numpy(train_idx)
    X_eval, y_eval = X[torch.from_numpy(eval_idx)], y[torch.from_numpy(eval_idx)]

    history: list[dict] = []
    best = {"epoch": 0, "f1": -1.0, "loss": math.inf, "state": None, "scores": None}
    split_info = {
        "n_train": int(len(train_idx)), "n_val": int(len(val_idx)), "note": note,
        "val_groups": sorted(set(group_keys[val_idx].tolist())),
    }

    def meta_for(reason: str) -> dict[str, Any]:
        """``model.json`` of the kept weights: for a checkpoint and for the end."""
        metrics = dict(best["scores"], val_loss=_finite(best["loss"]))
        summary = _summary(dataset, classes, split_info, has_val, best["epoch"], len(history),
                           metrics, reason, config, time.monotonic() - started, device)
        return {
            "format_version": FORMAT_VERSION,
            "arch": config.arch,
            "arch_params": arch_params,
            "spatial_dims": dataset.spatial_dims,
            "in_channels": dataset.in_channels,
            "image_channels": dataset.image_channels,
            "classes": list(classes),
            "patch_size": list(dataset.patch_size),
            "patch_mode": dataset.patch_mode,
            "dilation": dataset.dilation,
            "normalisation": dataset.normalisation,
            "config": config.to_dict(),
            "history": history,
            "best_epoch": best["epoch"],
            "metrics": metrics,
            "data": {
                "n": int(len(dataset)),
                "n_per_class": {c: int((y_all == i).sum()) for i, c in enumerate(classes)},
                "n_train": split_info["n_train"],
                "n_val": split_info["n_val"],
                "n_images": int(len(np.unique(dataset.images))),
                "images": sorted(set(dataset.images.tolist()))[:1000],
                "split": note,
                "val_groups": split_info["val_groups"][:1000],
                "validation": "held-out objects" if has_val
                              else "training objects (no validation)",
            },
            "versions": _versions(),
            "parent": None if parent_folder is None else os.fspath(parent_folder.resolve()),
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "stop_reason": reason,
            "summary": summary,
        }

    reason, waited, last_epoch_seconds = "completed", 0, 0.0
    for epoch in range(1, config.epochs + 1):
        if stop is not None and stop.is_set() and history:
            reason = "stopped"
            break
        if deadline is not None and epoch > 1 and \
                time.monotonic() + last_epoch_seconds > deadline:
            reason = "time limit"
            break
        tic = time.monotonic()
        batches = (
            (X[index], y[index])
            for index in (train_index[b] for b in _batches(len(train_idx), config.batch_size,
                                                            generator))
        )
        train_loss = train_one_epoch(
            module, batches, loss_fn, optimiser, scheduler, device,
            augment if augment.active else None, scaler, batch_size=config.batch_size,
            generator=generator, stop=stop, deadline=deadline, timings=timings,
            memory_format=layout,
        )
        interrupted = (stop is not None and stop.is_set()) or (
            deadline is not None and time.monotonic() > deadline
        )
        if interrupted:
            reason = "stopped" if stop is not None and stop.is_set() else "time limit"
            if history:  # keep the finished epochs' best weights; drop the unfinished epoch
                break
        tic_eval = time.perf_counter()
        val_loss, _, preds = evaluate(module, X_eval, y_eval, device,
                                      max(256, config.batch_size), loss_fn, layout)
        if timings is not None:
            timings["evaluate"] = timings.get("evaluate", 0.0) + time.perf_counter() - tic_eval
        scores = classification_metrics(
            [classes[i] for i in y_eval.numpy()], [classes[i] for i in preds], classes
        )
        lr = optimiser.param_groups[0]["lr"]
        last_epoch_seconds = time.monotonic() - tic
        record = _record(epoch, train_loss, val_loss, scores, classes, lr, last_epoch_seconds)
        # Patience counts epochs without a higher macro-F1; on a tie the lower validation
        # loss wins the kept weights but does not reset the patience.
        better = scores["macro_f1"] > best["f1"]
        improved = better or (scores["macro_f1"] == best["f1"] and val_loss < best["loss"])
        if improved:
            best.update(epoch=epoch, f1=scores["macro_f1"], loss=val_loss, scores=scores,
                        state={k: v.detach().to("cpu", copy=True)
                               for k, v in module.state_dict().items()})
        waited = 0 if better else waited + 1
        record["best"] = improved
        if interrupted:
            record["partial"] = True
        history.append(record)
        if improved and out_dir is not None:
            # Before on_epoch, so a caller told "best" finds the folder on disk. The default
            # CNN's weights are 120 kB, written in ~1 ms; a killed worker keeps this model.
            save_model(out_dir, best["state"], meta_for("in progress"), replace=True)
        if on_epoch is not None:
            on_epoch(dict(record))
        if interrupted:
            break
        if has_val and config.patience is not None and waited >= config.patience:
            reason = "early stopping"
            break

    module.load_state_dict(best["state"])
    module.eval()
    meta = meta_for(reason)
    model_dir = None if out_dir is None else save_model(out_dir, module, meta, replace=True)
    loaded = LoadedModel(module=module, meta=meta, classes=tuple(classes),
                         patch_size=dataset.patch_size, device=device, folder=model_dir)
    return Run(
        history=history, best_epoch=best["epoch"], metrics=meta["metrics"],
        model_dir=model_dir, stopped=reason == "stopped", stop_reason=reason,
        seconds=time.monotonic() - started, device=str(device), summary=meta["summary"],
        classes=tuple(classes), split=split_info, model=loaded,
    )


def _summary(dataset: ObjectSet, classes: Sequence[str], split: dict, has_val: bool,
             best_epoch: int, n_epochs: int, metrics: dict, reason: str, config: TrainConfig,
             seconds: float, device: torch.device) -> str:
    scored = "validation" if has_val else "training (no validation set: optimistic)"
    ending = {
        "completed": f"ran all {config.epochs} epochs",
        "early stopping": f"stopped early: no better validation macro-F1 in {config.patience} "
                          "epochs",
        "time limit": f"stopped at the time limit of {config.max_minutes:g} min"
                      if config.max_minutes else "stopped at the time limit",
        "stopped": "stopped on request",
        "in progress": "checkpoint while training",
    }[reason]
    return (
        f"{config.arch} on {len(classes)} classes, {dataset.patch_size} patches: "
        f"{split['n_train']} training / {split['n_val']} validation objects ({split['note']}). "
        f"Best epoch {best_epoch} of {n_epochs}: {scored} macro-F1 {metrics['macro_f1']:.3f}, "
        f"balanced accuracy {metrics['balanced_accuracy']:.3f}, accuracy "
        f"{metrics['accuracy']:.3f}. {ending.capitalize()}; {seconds:.0f} s on {device}."
    )


def set_seed(seed: int) -> None:
    """Seed Python's ``random``, numpy's global generator and torch (CPU and CUDA) at once.

    Parameters
    ----------
    seed : int
        Any integer >= 0.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def _check_against_parent(dataset: ObjectSet, meta: dict, folder: Path) -> np.ndarray:
    """Index map from dataset classes to the parent's; raises when the data do not fit it."""
    parent_classes = list(meta["classes"])
    if set(dataset.classes) != set(parent_classes):
        raise InputError(
            f"cannot continue from {folder}: it has classes {parent_classes} but the labels have "
            f"{list(dataset.classes)}; the same classes are required"
        )
    for key, mine, theirs in (
        ("patch_size", list(dataset.patch_size), list(meta["patch_size"])),
        ("in_channels", dataset.in_channels, meta["in_channels"]),
        ("patch_mode", dataset.patch_mode, meta["patch_mode"]),
        ("normalisation", dataset.normalisation, meta["normalisation"]),
    ):
        if mine != theirs:
            raise InputError(
                f"cannot continue from {folder}: its {key} is {theirs} but the data have {mine}; "
                "build the data with config_for_parent(config)"
            )
    return np.array([parent_classes.index(c) for c in dataset.classes], dtype=np.int64)
