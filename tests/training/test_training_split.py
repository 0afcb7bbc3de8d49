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


def test_preview_split_matches_the_split_training_makes():
    """The Train page's numbers are those of the run: same split, same groups."""
    from svetlana_core.io import group_by_pattern
    from svetlana_core.training import preview_split, split_train_val

    rng = np.random.default_rng(3)
    images = np.array([f"train_{s}_{t}.png" for s in range(6) for t in range(3)
                       for _ in range(10)])
    classes = rng.choice(["tumour", "immune", "other"], len(images))
    pattern = group_by_pattern(r"train_(\d+)_")
    preview = preview_split(classes, images, 0.2, seed=1, group_by=pattern)
    groups = np.array([pattern(n) for n in images])
    codes = np.unique(classes, return_inverse=True)[1]
    _, val = split_train_val(codes, groups, 0.2, seed=1)
    assert preview.grouped and preview.n_groups == 6
    assert preview.val_groups == sorted(set(groups[val]))
    assert preview.n_val == len(val)
    assert sum(preview.train_per_class.values()) == len(images) - len(val)
    assert preview.thin_classes() == [c for c, n in preview.val_per_class.items() if n < 30]


def test_preview_split_of_one_image_says_it_is_not_grouped():
    from svetlana_core.training import preview_split

    preview = preview_split(["a", "b"] * 20, ["one.png"] * 40, 0.25)
    assert not preview.grouped and "NOT grouped" in preview.note
    assert preview.val_per_class == {"a": 5, "b": 5}
