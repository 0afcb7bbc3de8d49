"""svetlana_core.training.optim: class weights, losses on logits, optimisers, schedules."""

import itertools

import numpy as np
import pytest
import torch

from svetlana_core import models
from svetlana_core import training as T
from svetlana_core.training.loop import _steps_per_epoch


def test_class_weights():
    np.testing.assert_allclose(T.class_weights(np.array([0, 0, 0, 1]), 3), [2 / 3, 2, 0])
    np.testing.assert_allclose(T.class_weights(np.array([0, 0, 0, 1]), 3, "sqrt"),
                               [(2 / 3) ** 0.5, 2**0.5, 0], rtol=1e-6)
    assert T.class_weights(np.array([0, 1]), 2, None) is None

def test_losses_take_logits_and_weights():
    logits = torch.tensor([[4.0, -4.0], [-4.0, 4.0]])
    target = torch.tensor([0, 1])
    for name in T.LOSSES:
        loss = T.build_loss(name, 2)(logits, target)
        wrong = T.build_loss(name, 2)(-logits, target)
        assert 0 <= float(loss) < float(wrong), name
    # weights: the weighted mean puts the second object 3 times as high as the first
    per = T.build_loss("mse", 2)(logits[1:], target[1:])
    weighted = T.build_loss("mse", 2, np.array([1.0, 3.0]))(
        torch.tensor([[4.0, -4.0], [4.0, -4.0]]), target)
    first = T.build_loss("mse", 2)(torch.tensor([[4.0, -4.0]]), target[:1])
    second = T.build_loss("mse", 2)(torch.tensor([[4.0, -4.0]]), target[1:])
    assert float(weighted) == pytest.approx((float(first) + 3 * float(second)) / 4)
    assert float(per) < 1e-3

@pytest.mark.parametrize("loss, optimiser, schedule", itertools.product(
    T.LOSSES, T.OPTIMISERS, T.SCHEDULES))
def test_every_loss_optimiser_schedule_takes_a_step(loss, optimiser, schedule):
    torch.manual_seed(0)
    model = models.build_model("cnn", 2, 3, depth=1, width=4)
    X = torch.rand(12, 2, 8, 8)
    y = torch.tensor([0, 1, 2] * 4)
    loss_fn = T.build_loss(loss, 3, T.class_weights(y.numpy(), 3), label_smoothing=0.1)
    opt = T.build_optimiser(optimiser, model.parameters(), 1e-2, 1e-4)
    sched = T.build_scheduler(schedule, opt, epochs=2, steps_per_epoch=_steps_per_epoch(12, 6),
                              step_size=1)
    before = [p.detach().clone() for p in model.parameters()]
    value = T.train_one_epoch(model, (X, y), loss_fn, opt, sched, torch.device("cpu"),
                              batch_size=6)
    assert np.isfinite(value)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
