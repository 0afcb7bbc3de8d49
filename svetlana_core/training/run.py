"""A whole training run: :func:`train`, its steps and its :class:`Run`.

:func:`train` reads as the run does: check the data against the config (and the parent
model), split, build the network and its optimiser, run the epochs, keep the best weights
(:class:`_BestKeeper`), write them as a checkpoint each time they change
(:class:`_Checkpoint`), and finish with the best model saved and in memory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from svetlana_core import models
from svetlana_core.errors import InputError
from svetlana_core.models.device import cpu_threads, memory_format_for, resolve_device
from svetlana_core.models.folder import (
    FORMAT_VERSION,
    LoadedModel,
    claimed_folder,
    library_versions,
    read_model_meta,
    read_weights,
    save_model,
)
from svetlana_core.stats import classification_metrics
from svetlana_core.training.augment import BatchAugment
from svetlana_core.training.config import TrainConfig, config_for_parent
from svetlana_core.training.dataset import ObjectSet, _group_keys
from svetlana_core.training.memory import check_gpu_fits
from svetlana_core.training.loop import (
    Limits,
    _batches,
    _steps_per_epoch,
    evaluate,
    train_one_epoch,
)
from svetlana_core.training.optim import (
    build_loss,
    build_optimiser,
    build_scheduler,
    class_weights,
)
from svetlana_core.training.split import _split_with_note


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
        :func:`svetlana_core.stats.classification_metrics` of the best epoch on the
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


def train(
    dataset: ObjectSet,
    config: TrainConfig,
    on_epoch: Callable[[dict[str, Any]], Any] | None = None,
    stop: Any = None,
    out_dir: str | os.PathLike | None = None,
    parent: str | os.PathLike | None = None,
    groups: Callable[[str], Any] | Sequence[Any] | np.ndarray | None = None,
    split: tuple[np.ndarray, np.ndarray] | None = None,
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
        Model folder to write (must not exist, or be empty: checked before training, and held
        for this run until the model is saved, so that a second training into it is refused;
        :func:`~svetlana_core.models.claimed_folder`). It is written as a checkpoint each time
        the kept weights change (``stop_reason``
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

    Returns
    -------
    Run

    Raises
    ------
    InputError
        Bad config for these data, a parent with other classes or patch settings.

    Notes
    -----
    Benchmarks time the passes of a run with :func:`svetlana_core.training.collect_timings`.
    """
    with contextlib.ExitStack() as held:
        if out_dir is not None:  # held until the model is saved: no other run writes there
            out_dir = held.enter_context(claimed_folder(out_dir))
        return _train(dataset, config, on_epoch, stop, out_dir, parent, groups, split)


def _train(dataset: ObjectSet, config: TrainConfig, on_epoch: Any, stop: Any,
           out_dir: Path | None, parent: Any, groups: Any, split: Any) -> Run:
    """:func:`train`'s steps, once the model folder (if any) is held."""
    started = time.monotonic()
    plan = _plan(dataset, config, parent)
    config = plan.config
    set_seed(config.seed)
    device = _device(config.device)
    if device.type == "cuda":  # the patches were checked against the RAM when cropped
        check_gpu_fits(config.arch, plan.arch_params, dataset.patch_size, config.batch_size,
                       torch.cuda.mem_get_info(device)[0])
    sets = _split(dataset, plan.y, groups, split, config)
    limits = Limits(stop, None if config.max_minutes is None
                    else started + 60 * config.max_minutes)
    parts = _build(dataset, plan, sets, device, limits.deadline)
    checkpoint = _Checkpoint(out_dir, dataset, plan, sets, parts.arch_params, device, started)
    keeper = _BestKeeper()
    reason = _epochs(plan, sets, parts, keeper, checkpoint, limits, on_epoch)
    return _finish(parts, keeper, checkpoint, reason)


@dataclass(frozen=True)
class _Plan:
    """What the checks decided: the config, the classes and targets, the parent, the network."""

    config: TrainConfig
    classes: tuple[str, ...]
    y: np.ndarray
    parent: Path | None
    arch_params: dict[str, Any]


def _plan(dataset: ObjectSet, config: TrainConfig, parent: str | os.PathLike | None) -> _Plan:
    """Check the data against the config and the parent model; the classes in the parent's
    order when there is one."""
    if parent is not None:
        config = dataclasses.replace(config, continue_from=os.fspath(parent))
    if not isinstance(dataset, ObjectSet):
        raise InputError(f"dataset must be an ObjectSet, got {type(dataset).__name__}")
    config = config_for_parent(config)
    config.validate(in_channels=dataset.in_channels, spatial_dims=dataset.spatial_dims)
    classes, y, parent_folder = dataset.classes, dataset.y, None
    if config.continue_from is not None:
        parent_folder = Path(config.continue_from)
        parent_meta = read_model_meta(parent_folder, kind="cnn")
        mapping = _check_against_parent(dataset, parent_meta, parent_folder)
        classes, y = tuple(parent_meta["classes"]), mapping[dataset.y]
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
    return _Plan(config, tuple(classes), y, parent_folder, arch_params)


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


def _device(name: str) -> torch.device:
    """The device of the run; on the CPU, one torch thread per core this process may use."""
    device = resolve_device(name)
    if device.type == "cpu" and torch.get_num_threads() != cpu_threads():
        torch.set_num_threads(cpu_threads())
    return device


@dataclass(frozen=True)
class _Sets:
    """The split: training and validation indices, why it is so, and the groups it kept apart."""

    train_idx: np.ndarray
    val_idx: np.ndarray
    note: str
    group_keys: np.ndarray

    @property
    def has_val(self) -> bool:
        return len(self.val_idx) > 0

    @property
    def eval_idx(self) -> np.ndarray:
        """The objects scored each epoch: the validation set, or the training set without one."""
        return self.val_idx if self.has_val else self.train_idx

    @property
    def info(self) -> dict[str, Any]:
        return {
            "n_train": len(self.train_idx), "n_val": len(self.val_idx),
            "note": self.note, "val_groups": sorted(set(self.group_keys[self.val_idx].tolist())),
        }


def _split(dataset: ObjectSet, y: np.ndarray, groups: Any, split: Any,
           config: TrainConfig) -> _Sets:
    if groups is None:
        group_keys = dataset.groups
    elif callable(groups):
        group_keys = _group_keys(dataset.images, groups)
    else:
        group_keys = np.asarray(groups).astype(str)
        if len(group_keys) != len(dataset):
            raise InputError(f"groups has {len(group_keys)} values for {len(dataset)} objects")
    if split is None:
        train_idx, val_idx, note = _split_with_note(y, group_keys, config.val_fraction,
                                                    config.seed)
    else:
        train_idx, val_idx = (np.asarray(s, dtype=np.int64) for s in split)
        note = "split given by the caller"
    if not len(train_idx):
        raise InputError("the training set is empty")
    return _Sets(train_idx, val_idx, note, group_keys)


@dataclass
class _Parts:
    """The network and what trains it, on the run's device, and the data as tensors."""

    module: torch.nn.Module
    arch_params: dict[str, Any]  # as rebuilt: a pretrained path replaced by None
    loss_fn: torch.nn.Module
    optimiser: torch.optim.Optimizer
    scheduler: Any
    scaler: Any
    augment: BatchAugment
    generator: torch.Generator
    layout: torch.memory_format
    device: torch.device
    X: torch.Tensor
    y: torch.Tensor


def _build(dataset: ObjectSet, plan: _Plan, sets: _Sets, device: torch.device,
           deadline: float | None) -> _Parts:
    config, n_classes = plan.config, len(plan.classes)
    module = models.build_model(config.arch, dataset.in_channels, n_classes,
                                dataset.spatial_dims, **plan.arch_params)
    if plan.parent is not None:
        module.load_state_dict(read_weights(plan.parent, module))
    layout = memory_format_for(dataset.spatial_dims)
    module.to(device, memory_format=layout)
    weights = class_weights(plan.y[sets.train_idx], n_classes, config.class_weights)
    optimiser = build_optimiser(config.optimiser, module.parameters(), config.lr,
                                config.weight_decay)
    scheduler = build_scheduler(
        config.schedule, optimiser, config.epochs,
        _steps_per_epoch(len(sets.train_idx), config.batch_size), config.step_size, config.gamma,
        budget_s=None if deadline is None else max(1e-3, deadline - time.monotonic()),
    )
    return _Parts(
        module=module, arch_params=module.build_config["params"],
        loss_fn=build_loss(config.loss, n_classes, weights, config.label_smoothing).to(device),
        optimiser=optimiser, scheduler=scheduler,
        scaler=torch.amp.GradScaler("cuda") if device.type == "cuda" else None,
        augment=BatchAugment(config.augment, dataset.image_channels, dataset.patch_size,
                             seed=config.seed),
        generator=torch.Generator().manual_seed(config.seed), layout=layout, device=device,
        # The patches stay where they are (shared, never written): each batch is gathered
        # from them by index, so the training set is not copied.
        X=torch.from_numpy(np.ascontiguousarray(dataset.X)), y=torch.from_numpy(plan.y),
    )


class _BestKeeper:
    """The epochs' records and the kept weights: the best validation macro-F1 so far.

    Patience counts epochs without a higher macro-F1; on a tie the lower validation loss wins
    the kept weights but does not reset the patience.
    """

    def __init__(self) -> None:
        self.history: list[dict[str, Any]] = []
        self.epoch, self.f1, self.loss, self.waited = 0, -1.0, math.inf, 0
        self.state: dict[str, torch.Tensor] | None = None
        self.scores: dict | None = None

    def offer(self, epoch: int, scores: dict, val_loss: float, module: torch.nn.Module) -> bool:
        """Keep the module's weights when this epoch is the best so far; True when kept."""
        better = scores["macro_f1"] > self.f1
        improved = better or (scores["macro_f1"] == self.f1 and val_loss < self.loss)
        if improved:
            self.epoch, self.f1, self.loss, self.scores = epoch, scores["macro_f1"], val_loss, scores
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
        self.waited = 0 if better else self.waited + 1
        return improved

    def out_of_patience(self, patience: int | None) -> bool:
        return patience is not None and self.waited >= patience


class _Checkpoint:
    """The model folder of the run: its ``model.json`` for the kept weights, written each time
    they change so that a killed worker leaves its best model so far."""

    def __init__(self, out_dir: Path | None, dataset: ObjectSet, plan: _Plan, sets: _Sets,
                 arch_params: dict[str, Any], device: torch.device, started: float) -> None:
        self.out_dir, self.dataset, self.plan, self.sets = out_dir, dataset, plan, sets
        self.arch_params, self.device, self.started = arch_params, device, started

    def write(self, keeper: _BestKeeper) -> None:
        """Save the kept weights as ``"in progress"`` (nothing without an ``out_dir``)."""
        if self.out_dir is not None:
            # The default CNN's weights are 120 kB, written in ~1 ms.
            save_model(self.out_dir, keeper.state, self.meta(keeper, "in progress"), replace=True)

    def meta(self, keeper: _BestKeeper, reason: str) -> dict[str, Any]:
        """``model.json`` of the kept weights, for a checkpoint and for the end."""
        dataset, plan, sets, config = self.dataset, self.plan, self.sets, self.plan.config
        metrics = dict(keeper.scores, val_loss=_finite(keeper.loss))
        summary = _summary(dataset, plan.classes, sets, keeper.epoch, len(keeper.history),
                           metrics, reason, config, time.monotonic() - self.started, self.device)
        info = sets.info
        return {
            "format_version": FORMAT_VERSION, "arch": config.arch,
            "arch_params": self.arch_params,
            "spatial_dims": dataset.spatial_dims, "in_channels": dataset.in_channels,
            "image_channels": dataset.image_channels, "classes": list(plan.classes),
            # which channels of the image files the network sees (None: all of them)
            "channels": None if dataset.channels is None else list(dataset.channels),
            "source_channels": (dataset.image_channels if dataset.source_channels is None
                                else dataset.source_channels),
            "patch_size": list(dataset.patch_size), "patch_mode": dataset.patch_mode,
            "dilation": dataset.dilation, "normalisation": dataset.normalisation,
            "config": config.to_dict(), "history": keeper.history, "best_epoch": keeper.epoch,
            "metrics": metrics,
            "data": {
                "n": len(dataset),
                "n_per_class": {c: int((plan.y == i).sum()) for i, c in enumerate(plan.classes)},
                "n_train": info["n_train"], "n_val": info["n_val"],
                "n_images": len(np.unique(dataset.images)),
                "images": sorted(set(dataset.images.tolist()))[:1000],
                "split": sets.note, "val_groups": info["val_groups"][:1000],
                "validation": "held-out objects" if sets.has_val
                              else "training objects (no validation)",
            },
            "versions": library_versions(),
            "parent": None if plan.parent is None else os.fspath(plan.parent.resolve()),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "stop_reason": reason, "summary": summary,
        }


def _epochs(plan: _Plan, sets: _Sets, parts: _Parts, keeper: _BestKeeper,
            checkpoint: _Checkpoint, limits: Limits,
            on_epoch: Callable[[dict[str, Any]], Any] | None) -> str:
    """Run the epochs; returns why they ended.

    The limits are looked at before each epoch (none is started that would end past the
    deadline, judged by the last one) and after each training pass. A run cut during its
    first epoch still scores that partial epoch, so that it always leaves a model; later
    cuts drop the unfinished epoch and keep the best finished one.
    """
    config, last_seconds = plan.config, 0.0
    X_eval, y_eval = parts.X[sets.eval_idx], parts.y[sets.eval_idx]
    for epoch in range(1, config.epochs + 1):
        if keeper.history and (reason := limits.reached(ahead=last_seconds)):
            return reason
        tic = time.monotonic()
        train_loss = _train_pass(parts, sets, config, limits)
        cut = limits.reached()
        if cut and keeper.history:
            return cut
        val_loss, _, preds = evaluate(parts.module, X_eval, y_eval, parts.device,
                                      max(256, config.batch_size), parts.loss_fn, parts.layout)
        scores = classification_metrics([plan.classes[i] for i in y_eval.numpy()],
                                        [plan.classes[i] for i in preds], plan.classes)
        last_seconds = time.monotonic() - tic
        record = _record(epoch, train_loss, val_loss, scores, plan.classes,
                         parts.optimiser.param_groups[0]["lr"], last_seconds)
        record["best"] = improved = keeper.offer(epoch, scores, val_loss, parts.module)
        if cut:
            record["partial"] = True
        keeper.history.append(record)
        if improved:  # before on_epoch, so a caller told "best" finds the folder on disk
            checkpoint.write(keeper)
        if on_epoch is not None:
            on_epoch(dict(record))
        if cut:
            return cut
        if sets.has_val and keeper.out_of_patience(config.patience):
            return "early stopping"
    return "completed"


def _finish(parts: _Parts, keeper: _BestKeeper, checkpoint: _Checkpoint, reason: str) -> Run:
    """The kept weights back in the network, saved (when there is a folder) and described."""
    parts.module.load_state_dict(keeper.state)
    parts.module.eval()
    meta = checkpoint.meta(keeper, reason)
    out_dir = checkpoint.out_dir
    model_dir = None if out_dir is None else save_model(out_dir, parts.module, meta, replace=True)
    loaded = LoadedModel(module=parts.module, meta=meta, classes=checkpoint.plan.classes,
                         patch_size=checkpoint.dataset.patch_size, device=parts.device,
                         folder=model_dir)
    return Run(
        history=keeper.history, best_epoch=keeper.epoch, metrics=meta["metrics"],
        model_dir=model_dir, stopped=reason == "stopped", stop_reason=reason,
        seconds=time.monotonic() - checkpoint.started, device=str(parts.device),
        summary=meta["summary"], classes=checkpoint.plan.classes, split=checkpoint.sets.info,
        model=loaded,
    )


def _train_pass(parts: _Parts, sets: _Sets, config: TrainConfig, limits: Limits) -> float:
    """One shuffled pass over the training objects, each batch gathered by index."""
    train_index = torch.from_numpy(sets.train_idx)
    batches = (
        (parts.X[index], parts.y[index])
        for index in (train_index[b] for b in _batches(len(sets.train_idx), config.batch_size,
                                                        parts.generator))
    )
    return train_one_epoch(
        parts.module, batches, parts.loss_fn, parts.optimiser, parts.scheduler, parts.device,
        parts.augment if parts.augment.active else None, parts.scaler,
        batch_size=config.batch_size, generator=parts.generator, stop=limits.stop,
        deadline=limits.deadline, memory_format=parts.layout,
    )


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


def _summary(dataset: ObjectSet, classes: Sequence[str], sets: _Sets, best_epoch: int,
             n_epochs: int, metrics: dict, reason: str, config: TrainConfig,
             seconds: float, device: torch.device) -> str:
    scored = "validation" if sets.has_val else "training (no validation set: optimistic)"
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
        f"{len(sets.train_idx)} training / {len(sets.val_idx)} validation objects ({sets.note}). "
        f"Best epoch {best_epoch} of {n_epochs}: {scored} macro-F1 {metrics['macro_f1']:.3f}, "
        f"balanced accuracy {metrics['balanced_accuracy']:.3f}, accuracy "
        f"{metrics['accuracy']:.3f}. {ending.capitalize()}; {seconds:.0f} s on {device}."
    )
