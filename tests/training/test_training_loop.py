"""svetlana_core.training.loop: one epoch, one evaluation, the stop and time limits."""

import threading
import time

import numpy as np
import torch

from svetlana_core import models
from svetlana_core import training as T
from svetlana_core.training.loop import _batches, _steps_per_epoch


def test_train_one_epoch_timings_and_stop():
    model = models.build_model("cnn", 2, 2, depth=1, width=4)
    opt = T.build_optimiser("adam", model.parameters(), 1e-3, 0)
    timings = {}
    data = (torch.rand(20, 2, 8, 8), torch.tensor([0, 1] * 10))
    T.train_one_epoch(model, data, T.build_loss("cross_entropy", 2), opt, None,
                      torch.device("cpu"), batch_size=5, timings=timings)
    assert 0 < timings["compute"] <= timings["total"]
    stop = threading.Event()
    stop.set()
    assert np.isnan(T.train_one_epoch(model, data, T.build_loss("cross_entropy", 2), opt, None,
                                      torch.device("cpu"), stop=stop))

def test_evaluate_returns_probabilities():
    model = models.build_model("cnn", 2, 3, depth=1, width=4)
    loss, probs, preds = T.evaluate(model, np.random.rand(7, 2, 8, 8).astype(np.float32),
                                    np.array([0, 1, 2, 0, 1, 2, 0]), torch.device("cpu"), 3)
    assert probs.shape == (7, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    np.testing.assert_array_equal(preds, probs.argmax(1))
    assert loss > 0

def test_small_sets_get_a_minimum_number_of_steps_per_epoch():
    generator = torch.Generator().manual_seed(0)
    batches = _batches(27, 64, generator)
    assert len(batches) == _steps_per_epoch(27, 64) >= T.MIN_STEPS_PER_EPOCH
    counts = torch.bincount(torch.cat(batches), minlength=27)
    assert counts.min() >= counts.max() - 1          # every object seen equally often
    # A large set is one plain pass.
    assert _steps_per_epoch(5000, 64) == 79 and len(_batches(5000, 64, generator)) == 79


def test_limits_say_why_a_run_must_end():
    stop = threading.Event()
    assert T.Limits().reached() is None and T.Limits(stop).reached() is None
    soon = time.monotonic() + 60
    assert T.Limits(deadline=soon).reached() is None
    assert T.Limits(deadline=soon).reached(ahead=61) == "time limit"
    stop.set()
    assert T.Limits(stop, deadline=0.0).reached() == "stopped"  # the event comes first


def test_collect_timings_sums_the_passes_inside_the_block():
    model = models.build_model("cnn", 2, 2, depth=1, width=4)
    opt = T.build_optimiser("adam", model.parameters(), 1e-3, 0)
    data = (torch.rand(20, 2, 8, 8), torch.tensor([0, 1] * 10))
    loss = T.build_loss("cross_entropy", 2)
    with T.collect_timings() as timings:
        T.train_one_epoch(model, data, loss, opt, None, torch.device("cpu"), batch_size=5)
        first = timings["total"]
        T.train_one_epoch(model, data, loss, opt, None, torch.device("cpu"), batch_size=5)
        T.evaluate(model, data[0], data[1], torch.device("cpu"))
    assert timings["total"] > first > 0 and 0 < timings["compute"] <= timings["total"]
    assert timings["evaluate"] > 0
    after = dict(timings)
    T.train_one_epoch(model, data, loss, opt, None, torch.device("cpu"), batch_size=5)
    T.evaluate(model, data[0], data[1], torch.device("cpu"))
    assert timings == after  # nothing is timed once the block has ended
