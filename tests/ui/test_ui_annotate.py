"""ui.annotate: what a drawing on the canvas labels, which object the guided mode shows next,
and for whom (no server)."""

import numpy as np
import pandas as pd

from tests.builders import canvas_click
from ui import annotate, canvas, overlay

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


def test_rect_and_polygon_select_objects_by_centroid():
    mask = np.zeros((40, 40), np.int32)
    mask[2:6, 2:6] = 5       # centroid (3.5, 3.5)
    mask[20:24, 20:24] = 9   # centroid (21.5, 21.5)
    mask[30:34, 2:6] = 11    # centroid (31.5, 3.5)
    port = overlay.Viewport(0, 0, 40, 40)
    rect = {"type": "rect", "left": 0, "top": 0, "width": 25, "height": 25, "scaleX": 1,
            "scaleY": 1}
    polygon = {"type": "polygon", "points": [{"x": 0, "y": 28}, {"x": 10, "y": 28},
                                             {"x": 10, "y": 39}, {"x": 0, "y": 39}]}
    shapes = canvas.parse_drawing({"objects": [rect]}, None, port)
    assert annotate.labels_from_shapes(mask, shapes).tolist() == [5, 9]
    shapes = canvas.parse_drawing({"objects": [polygon]}, None, port)
    assert annotate.labels_from_shapes(mask, shapes).tolist() == [11]
    shapes = canvas.parse_drawing({"objects": [canvas_click(3.0, 3.0), canvas_click(39.0, 39.0)]}, None,
                                  port)
    assert annotate.labels_from_shapes(mask, shapes).tolist() == [5]   # background click ignored


def _canvas_value(*shapes, fit=None):
    """The value the canvas component leaves in session state."""
    return {"drawing": {"raw": {"objects": list(shapes)}}, "backgroundFit": fit}


def test_drawn_labels_handles_each_shape_once():
    mask = np.zeros((40, 40), np.int32)
    mask[2:6, 2:6] = 5
    mask[20:24, 20:24] = 9
    port = overlay.Viewport(0, 0, 40, 40)
    session = {}
    key = annotate.canvas_key(session, ("a.tif", None, port))
    assert key == annotate.canvas_key(session, ("a.tif", None, port))  # same view, same canvas
    assert key != annotate.canvas_key(session, ("b.tif", None, port))
    assert annotate.drawn_labels(session, key, port, mask).tolist() == []  # nothing drawn yet
    session[key] = _canvas_value(canvas_click(3.0, 3.0))
    assert annotate.drawn_labels(session, key, port, mask).tolist() == [5]
    assert annotate.drawn_labels(session, key, port, mask).tolist() == []  # a rerun: handled
    session[key] = _canvas_value(canvas_click(3.0, 3.0), canvas_click(21.0, 22.0))
    assert annotate.drawn_labels(session, key, port, mask).tolist() == [9]  # only the new one


def test_drawn_labels_reads_the_shown_plane_and_scales_by_the_background_fit():
    mask = np.zeros((3, 40, 40), np.int32)
    mask[1, 20:24, 20:24] = 9
    mask[2, 20:24, 20:24] = 4
    port = overlay.Viewport(0, 0, 40, 40)
    session = {"k": _canvas_value(canvas_click(44.0, 42.0), fit={"scaleX": 2.0, "scaleY": 2.0})}
    assert annotate.drawn_labels(session, "k", port, mask, plane=2).tolist() == [4]


def test_a_full_canvas_is_replaced_by_a_fresh_one():
    mask = np.zeros((10, 10), np.int32)
    port = overlay.Viewport(0, 0, 10, 10)
    session = {}
    key = annotate.canvas_key(session, ("a.tif", None, port))
    clicks = [canvas_click(1.0, 1.0)] * annotate.FRESH_CANVAS_AFTER
    session[key] = _canvas_value(*clicks[:-1])
    annotate.drawn_labels(session, key, port, mask)
    assert annotate.canvas_key(session, ("a.tif", None, port)) == key
    session[key] = _canvas_value(*clicks)
    annotate.drawn_labels(session, key, port, mask)
    assert annotate.canvas_key(session, ("a.tif", None, port)) != key


def test_object_colours_add_the_predictions_of_unlabelled_objects():
    classes = pd.DataFrame({"name": ["round", "speckled"], "colour": ["#ff0000", "#00ff00"]})
    labels = pd.DataFrame({"label": [3], "class": ["round"]})
    predicted = pd.DataFrame({"label": [3, 8], "class": ["speckled", "speckled"],
                              "confidence": [0.9, 0.6]})
    assert annotate.object_colours(labels, classes) == {3: "#ff0000"}
    # the user's label wins over the prediction of the same object
    assert annotate.object_colours(labels, classes, predicted) == {3: "#ff0000", 8: "#00ff00"}
