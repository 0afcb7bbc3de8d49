"""svetlana_core.training.split: stratified and grouped, with a fallback that says so."""

import numpy as np

from svetlana_core import training as T
from svetlana_core.training.split import _split_with_note


def test_split_is_grouped_and_stratified():
    rng = np.random.default_rng(1)
    groups = np.repeat([f"g{i}" for i in range(10)], 20)
    y = rng.integers(0, 3, groups.size)
    train_idx, val_idx = T.split_train_val(y, groups, 0.2, seed=0)
    assert len(train_idx) + len(val_idx) == y.size
    assert not set(groups[train_idx]) & set(groups[val_idx])
    assert set(y[train_idx]) == {0, 1, 2} and set(y[val_idx]) == {0, 1, 2}
    assert 0.1 < len(val_idx) / y.size < 0.3
    again = T.split_train_val(y, groups, 0.2, seed=0)
    np.testing.assert_array_equal(again[1], val_idx)

def test_split_keeps_every_class_in_training():
    # class 2 lives in one group only: that group must not be the validation fold
    groups = np.repeat(["a", "b", "c", "d", "e"], 4)
    y = np.array([0, 1] * 8 + [2, 2, 0, 1])
    for seed in range(5):
        train_idx, _ = T.split_train_val(y, groups, 0.2, seed)
        assert 2 in y[train_idx]

def test_split_single_group_falls_back_and_says_so():
    y = np.array([0] * 10 + [1] * 10 + [2])
    train_idx, val_idx, note = _split_with_note(y, np.zeros(21), 0.2, 0)
    assert "NOT grouped" in note and "only one group" in note
    assert sorted(np.bincount(y[val_idx], minlength=3)) == [0, 2, 2]
    assert set(y[train_idx]) == {0, 1, 2}

def test_split_zero_fraction():
    train_idx, val_idx = T.split_train_val(np.array([0, 1, 0, 1]), None, 0.0)
    assert len(val_idx) == 0 and list(train_idx) == [0, 1, 2, 3]
