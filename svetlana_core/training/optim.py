"""Class weights, losses, optimisers and learning-rate schedules."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from svetlana_core.training.config import (
    CLASS_WEIGHTS,
    LOSSES,
    OPTIMISERS,
    SCHEDULES,
    _choice_error,
)


def class_weights(
    y: np.ndarray, n_classes: int, mode: str | None = "balanced"
) -> np.ndarray | None:
    """Loss weight per class, 0 for a class absent from ``y``.

    "balanced" is scikit-learn's ``n / (K n_c)``: every class weighs as much as any other in
    the loss. "sqrt" is its square root, a milder correction: a class 10 times rarer weighs
    about 3 times more per object instead of 10, so a rare class is not over-predicted at the
    expense of the precision of the others.

    Returns
    -------
    ndarray of float32, shape (n_classes,), or None when ``mode`` is None.

    Examples
    --------
    >>> class_weights(np.array([0, 0, 0, 1]), 2)
    array([0.6666667, 2.       ], dtype=float32)
    >>> class_weights(np.array([0, 0, 0, 1]), 2, "sqrt")
    array([0.8164966, 1.4142135], dtype=float32)
    """
    if mode is None:
        return None
    if mode not in CLASS_WEIGHTS:
        raise _choice_error("class_weights", mode, CLASS_WEIGHTS)
    counts = np.bincount(np.asarray(y), minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    if mode == "sqrt":
        weights = np.sqrt(weights)
    return weights.astype(np.float32)


class _Loss(nn.Module):
    """One of :data:`LOSSES` on logits ``(N, K)`` and class indices ``(N,)``.

    Class weights weigh each object by the weight of its true class and the batch loss is the
    weighted mean, the same convention as ``nn.CrossEntropyLoss(weight=...)`` so that every
    loss gives the same relative importance to the classes.
    """

    def __init__(self, name: str, n_classes: int, weights: torch.Tensor | None,
                 label_smoothing: float) -> None:
        super().__init__()
        self.name = name
        self.n_classes = n_classes
        self.label_smoothing = float(label_smoothing)
        self.register_buffer("weights", weights if weights is not None else None)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()  # losses in float32 under autocast
        if self.name == "cross_entropy":
            return F.cross_entropy(logits, target, weight=self.weights,
                                   label_smoothing=self.label_smoothing)
        onehot = F.one_hot(target, self.n_classes).float()
        if self.label_smoothing:
            onehot = onehot * (1 - self.label_smoothing) + self.label_smoothing / self.n_classes
        if self.name == "bce":
            per = F.binary_cross_entropy_with_logits(logits, onehot, reduction="none")
        else:
            regression = {"smooth_l1": F.smooth_l1_loss, "l1": F.l1_loss, "mse": F.mse_loss}
            per = regression[self.name](logits.softmax(dim=1), onehot, reduction="none")
        per = per.mean(dim=1)
        if self.weights is None:
            return per.mean()
        weight = self.weights[target]
        return (per * weight).sum() / weight.sum().clamp_min(1e-12)


def build_loss(
    name: str, n_classes: int, weights: np.ndarray | None = None, label_smoothing: float = 0.0
) -> nn.Module:
    """A loss module ``loss(logits (N, K), target (N,) int64) -> scalar``.

    Parameters
    ----------
    name : str
        One of :data:`LOSSES`: "cross_entropy"; "bce" (binary cross-entropy with logits on
        one-hot targets); "smooth_l1", "l1", "mse" (on the softmax against one-hot targets).
    n_classes : int
    weights : ndarray of float, shape (n_classes,), optional
        Per-class weights (:func:`class_weights`).
    label_smoothing : float
        Targets become ``(1 - s) onehot + s / K``.
    """
    if name not in LOSSES:
        raise _choice_error("loss", name, LOSSES)
    tensor = None if weights is None else torch.as_tensor(np.asarray(weights), dtype=torch.float32)
    return _Loss(name, n_classes, tensor, label_smoothing)


def build_optimiser(
    name: str, parameters: Iterable[torch.nn.Parameter], lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    """``adam``, ``adamw`` or ``sgd`` (momentum 0.9, Nesterov)."""
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=0.9, nesterov=True,
                               weight_decay=weight_decay)
    raise _choice_error("optimiser", name, OPTIMISERS)


def build_scheduler(
    name: str, optimiser: torch.optim.Optimizer, epochs: int, steps_per_epoch: int,
    step_size: int = 10, gamma: float = 0.1, budget_s: float | None = None,
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """A scheduler stepped once per batch (None for "none").

    "cosine" anneals to 0 over all the batches; "step" multiplies by ``gamma`` every
    ``step_size`` epochs; "onecycle" warms up over the first 30 % then anneals.

    With a time budget (``budget_s`` seconds from now, from ``max_minutes``), "cosine" follows
    whichever is further along, the batches or the clock, so that a run cut by its time limit
    still ends at a low learning rate instead of being stopped mid-schedule.
    """
    total = max(1, epochs * steps_per_epoch)
    if name == "cosine":
        if budget_s is None:
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=total)
        start = time.monotonic()

        def factor(step: int) -> float:
            progress = min(1.0, max(step / total, (time.monotonic() - start) / budget_s))
            return 0.5 * (1.0 + math.cos(math.pi * progress))

        return torch.optim.lr_scheduler.LambdaLR(optimiser, factor)
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(
            optimiser, step_size=step_size * max(1, steps_per_epoch), gamma=gamma
        )
    if name == "onecycle":
        lr = optimiser.param_groups[0]["lr"]
        return torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=total)
    if name == "none":
        return None
    raise _choice_error("schedule", name, SCHEDULES)
