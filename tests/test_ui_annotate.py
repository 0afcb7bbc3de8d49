"""ui.annotate: which object the guided mode shows next, and for whom (no server)."""

import pandas as pd

from ui import annotate

TABLE = pd.DataFrame({"label": list(range(1, 21))})


def test_next_object_leaves_out_labelled_and_skipped_and_ends_with_none():
    labelled, skipped = set(range(1, 11)), {11, 12}
    shown = annotate.next_object(TABLE, labelled, skipped, seed=3)
    assert shown in set(range(13, 21))
    assert annotate.next_object(TABLE, labelled, skipped, seed=3) == shown  # same seed, same
    assert annotate.next_object(TABLE, set(range(1, 21)), set()) is None


def test_the_random_order_is_walked_object_by_object():
    seen, labelled = [], set()
    while (label := annotate.next_object(TABLE, labelled, set(), seed=7)) is not None:
        seen.append(label)
        labelled.add(label)
    assert sorted(seen) == list(range(1, 21)) and seen != sorted(seen)


def test_least_confident_first_then_random():
    predictions = pd.DataFrame({"label": [4, 9, 2], "confidence": [0.9, 0.4, 0.6]})
    assert annotate.next_object(TABLE, set(), set(), "uncertain", predictions) == 9
    assert annotate.next_object(TABLE, {9}, set(), "uncertain", predictions) == 2
    # every predicted object done: the rest in random order
    assert annotate.next_object(TABLE, {2, 4, 9}, set(), "uncertain", predictions) not in {
        2, 4, 9}


def test_each_user_gets_an_order_of_their_own():
    ana, ben = annotate.guided_seed("ana", {}), annotate.guided_seed("ben", {})
    assert ana == annotate.guided_seed("ana", {})  # from the name: survives a reload
    assert ana != ben
    # anonymous sessions: a seed each, kept for the session
    one, two = {}, {}
    assert annotate.guided_seed("", one) == annotate.guided_seed("", one) == one["guided_seed"]
    assert annotate.guided_seed("", two) != one["guided_seed"]
    orders = {tuple(_order(seed)) for seed in (ana, ben, one["guided_seed"], two["guided_seed"])}
    assert len(orders) == 4  # four people, four different walks through the objects


def _order(seed):
    labelled = set()
    while (label := annotate.next_object(TABLE, labelled, set(), seed=seed)) is not None:
        labelled.add(label)
        yield label
