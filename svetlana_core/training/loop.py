"""One epoch of training and one evaluation pass, kept apart; when a run must stop.

:class:`Limits` is the one check of the ``stop`` event and the time budget: before each batch
(in :func:`train_one_epoch`), after each training pass and before each epoch (in
:func:`svetlana_core.training.train`). :func:`collect_timings` lets a benchmark time the
passes of a whole run without the run knowing.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: An epoch is at least this many optimiser steps. With a few dozen labelled objects (the
#: demo, a first round of annotation) one pass over the data is one or two batches, too few
#: steps for the weights and the BatchNorm statistics to move: on the demo's 36 labels the
#: default CNN stayed at macro-F1 0.20 after 11 one-batch epochs. Small sets are therefore
#: passed several times per epoch, reshuffled each time; large sets are unaffected.
MIN_STEPS_PER_EPOCH = 16


def _passes(n: int, batch_size: int) -> int:
    """How many shuffled passes over ``n`` objects one epoch makes (1 for large sets)."""
    return max(1, math.ceil(MIN_STEPS_PER_EPOCH * batch_size / max(n, 1)))


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Shuffled index batches, at least :data:`MIN_STEPS_PER_EPOCH` of them; a last batch of
    one object is dropped (BatchNorm needs 2)."""
    order = torch.cat([torch.randperm(n, generator=generator)
                       for _ in range(_passes(n, batch_size))])
    batches = list(order.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches.pop()
    return batches


def _steps_per_epoch(n: int, batch_size: int) -> int:
    total = n * _passes(n, batch_size)
    steps = math.ceil(total / batch_size)
    return steps - 1 if steps > 1 and total % batch_size == 1 else steps


@dataclass(frozen=True)
class Limits:
    """When a run must end: a ``stop`` event and a wall-clock deadline, both optional.

    Attributes
    ----------
    stop : object with ``is_set()`` or None
        A ``threading.Event``, ``multiprocessing.Event`` or anything alike.
    deadline : float or None
        A ``time.monotonic()`` value.
    """

    stop: Any = None
    deadline: float | None = None

    def reached(self, ahead: float = 0.0) -> str | None:
        """``"stopped"`` when the event is set, ``"time limit"`` when ``ahead`` more seconds
        would end past the deadline, else None.

        Examples
        --------
        >>> Limits().reached() is None, Limits(deadline=0.0).reached()
        (True, 'time limit')
        """
        if self.stop is not None and self.stop.is_set():
            return "stopped"
        if self.deadline is not None and time.monotonic() + ahead > self.deadline:
            return "time limit"
        return None


_TIMINGS: contextvars.ContextVar[dict[str, float] | None] = contextvars.ContextVar(
    "svetlana_training_timings", default=None
)


@contextlib.contextmanager
def collect_timings() -> Iterator[dict[str, float]]:
    """Time every :func:`train_one_epoch` and :func:`evaluate` run inside the block.

    For benchmarks: ``with collect_timings() as timings: train(...)`` fills ``timings`` with
    ``compute`` (forward + backward + step), ``total`` (the training passes) and ``evaluate``
    seconds, summed over the run.

    Yields
    ------
    dict
        Filled as the block runs; complete when it ends.
    """
    timings: dict[str, float] = {}
    token = _TIMINGS.set(timings)
    try:
        yield timings
    finally:
        _TIMINGS.reset(token)


def _add_time(timings: dict[str, float] | None, key: str, seconds: float) -> None:
    if timings is not None:
        timings[key] = timings.get(key, 0.0) + seconds


def train_one_epoch(
    model: nn.Module,
    data: tuple[Any, Any] | Iterable[tuple[torch.Tensor, torch.Tensor]],
    loss_fn: nn.Module,
    optimiser: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    device: torch.device,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    scaler: torch.amp.GradScaler | None = None,
    *,
    batch_size: int = 64,
    generator: torch.Generator | None = None,
    stop: Any = None,
    deadline: float | None = None,
    timings: dict[str, float] | None = None,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> float:
    """One pass over the training data; returns the mean training loss.

    Parameters
    ----------
    model : nn.Module
        Put in train mode here.
    data : (X, y) or iterable of (x_batch, y_batch)
        ``X`` float32 ``(N, C, ...)`` and ``y`` int64 ``(N,)`` as numpy arrays or CPU tensors
        (shuffled into batches of ``batch_size`` with ``generator``), or ready batches.
    loss_fn, optimiser
        From :func:`build_loss` and :func:`build_optimiser`.
    scheduler : LRScheduler or None
        Stepped after every batch.
    device : torch.device
    augment : callable, optional
        ``batch (CPU tensor) -> new batch``, e.g. :class:`BatchAugment`.
    scaler : torch.amp.GradScaler, optional
        Mixed precision (CUDA): the forward pass then runs under ``torch.autocast``.
    stop : object with ``is_set()``, optional
        Checked before every batch; when set, the epoch ends at once.
    deadline : float, optional
        ``time.monotonic()`` value after which the epoch ends at once.
    timings : dict, optional
        Accumulates ``"compute"`` (forward + backward + step) and ``"total"`` seconds
        (default: the dict of an enclosing :func:`collect_timings`, if any).
    memory_format : torch.memory_format
        Layout of the batches on the device (:func:`memory_format_for`).

    Returns
    -------
    float
        Mean loss over the batches run (NaN when none ran).
    """
    model.train()
    if isinstance(data, tuple) and len(data) == 2:
        X = torch.as_tensor(data[0])
        y = torch.as_tensor(data[1])
        generator = generator or torch.Generator().manual_seed(0)
        batches: Iterable = ((X[i], y[i]) for i in _batches(len(y), batch_size, generator))
    else:
        batches = data
    use_amp = scaler is not None and device.type == "cuda"
    limits = Limits(stop, deadline)
    total, count = 0.0, 0
    started = time.perf_counter()
    compute = 0.0
    for xb, yb in batches:
        if limits.reached():
            break
        if augment is not None:
            xb = augment(xb)
        xb = xb.to(device, non_blocking=True, memory_format=memory_format)
        yb = yb.to(device, non_blocking=True)
        tic = time.perf_counter()
        optimiser.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, enabled=use_amp):
            logits = model(xb)
            loss = loss_fn(logits, yb)
        if use_amp:
            scaler.scale(loss).backward()
            scaler.step(optimiser)
            scaler.update()
        else:
            loss.backward()
            optimiser.step()
        if scheduler is not None:
            scheduler.step()
        value = float(loss.detach())  # synchronises: compute time is measured honestly
        compute += time.perf_counter() - tic
        total += value * len(yb)
        count += len(yb)
    timings = timings if timings is not None else _TIMINGS.get()
    _add_time(timings, "compute", compute)
    _add_time(timings, "total", time.perf_counter() - started)
    return total / count if count else float("nan")


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    X: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor | None,
    device: torch.device,
    batch_size: int = 256,
    loss_fn: nn.Module | None = None,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Predict a set of patches and score the loss.

    Parameters
    ----------
    model : nn.Module
        Put in eval mode here.
    X : float32, shape (N, C, ...)
    y : int, shape (N,), or None
        True classes (None: no loss).
    device : torch.device
    batch_size : int
    loss_fn : nn.Module, optional
        Loss to report (default: unweighted cross-entropy).
    memory_format : torch.memory_format
        Layout of the batches on the device (:func:`memory_format_for`).

    Returns
    -------
    val_loss : float
        Mean loss over the objects (NaN when ``y`` is None or N = 0).
    probs : ndarray of float32, shape (N, K)
        Softmax probabilities.
    preds : ndarray of int64, shape (N,)
        Most probable class.
    """
    started = time.perf_counter()
    model.eval()
    X = torch.as_tensor(X)
    use_amp = device.type == "cuda"
    chunks = []
    for start in range(0, len(X), batch_size):
        xb = X[start : start + batch_size].to(device, non_blocking=True,
                                              memory_format=memory_format)
        with torch.autocast(device_type=device.type, enabled=use_amp):
            chunks.append(model(xb).float())
    if not chunks:
        return float("nan"), np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    logits = torch.cat(chunks)
    loss = float("nan")
    if y is not None:
        target = torch.as_tensor(y).to(device)
        loss = float(loss_fn(logits, target) if loss_fn is not None
                     else F.cross_entropy(logits, target))
    probs = logits.softmax(dim=1).cpu().numpy().astype(np.float32)
    _add_time(_TIMINGS.get(), "evaluate", time.perf_counter() - started)
    return loss, probs, probs.argmax(axis=1).astype(np.int64)
