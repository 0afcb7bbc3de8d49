"""ui.annotate: what a drawing on the canvas labels, which object the guided mode shows next,
and for whom (no server)."""

import re

import numpy as np
import pandas as pd
import pytest

from svetlana_core.store import Project
from tests.builders import canvas_click, current_labels
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


def _two_disks():
    mask = np.zeros((40, 40), np.int32)
    mask[2:6, 2:6] = 5
    mask[20:24, 20:24] = 9
    mask[30:34, 30:34] = 12
    return mask, overlay.Viewport(0, 0, 40, 40)


def _marks(session, key, port, mask, *shapes):
    """What a rerun with the canvas holding ``shapes`` labels: (clicked, enclosed, erased)."""
    session[key] = _canvas_value(*shapes)
    marks = annotate.drawn_marks(session, key, port, mask)
    return marks.clicked.tolist(), marks.enclosed.tolist(), marks.erased


A, B, C = canvas_click(3.0, 3.0), canvas_click(21.0, 22.0), canvas_click(31.0, 32.0)


def test_drawn_marks_handles_each_shape_once():
    mask, port = _two_disks()
    session = {}
    key = annotate.canvas_key(session, ("a.tif", None, port))
    assert key == annotate.canvas_key(session, ("a.tif", None, port))  # same view, same canvas
    assert key != annotate.canvas_key(session, ("b.tif", None, port))
    assert annotate.drawn_marks(session, key, port, mask).clicked.tolist() == []  # nothing yet
    assert _marks(session, key, port, mask, A) == ([5], [], 0)
    assert _marks(session, key, port, mask, A) == ([], [], 0)  # a rerun: handled
    assert _marks(session, key, port, mask, A, B) == ([9], [], 0)  # only the new one
    # the same pixel clicked again (say, after picking another class) labels it again
    assert _marks(session, key, port, mask, A, B, B) == ([9], [], 0)


def test_a_click_after_the_canvas_own_undo_or_trash_is_not_dropped():
    """Issue 12: after the canvas's toolbar ↶ the next click was dropped (the handled-shape
    counter assumed the drawing only grows)."""
    mask, port = _two_disks()
    session = {}
    assert _marks(session, "k", port, mask, A, B) == ([5, 9], [], 0)
    assert _marks(session, "k", port, mask, A) == ([], [], 1)      # ↶: a mark erased, no label
    assert _marks(session, "k", port, mask, A, C) == ([12], [], 0)  # the next click counts
    assert _marks(session, "k", port, mask) == ([], [], 2)          # 🗑: every mark erased
    assert _marks(session, "k", port, mask, B) == ([9], [], 0)


def test_a_canvas_drawn_anew_loses_no_click():
    """A canvas that is drawn again (after an error hid it) starts from an empty drawing
    while session state still holds the old one: its first clicks were dropped."""
    mask, port = _two_disks()
    session = {}
    assert _marks(session, "k", port, mask, A, B, C) == ([5, 9, 12], [], 0)
    assert _marks(session, "k", port, mask, canvas_click(22.0, 21.0)) == ([9], [], 3)


def test_drawn_marks_read_the_shown_plane_and_scale_by_the_background_fit():
    mask = np.zeros((3, 40, 40), np.int32)
    mask[1, 20:24, 20:24] = 9
    mask[2, 20:24, 20:24] = 4
    port = overlay.Viewport(0, 0, 40, 40)
    session = {"k": _canvas_value(canvas_click(44.0, 42.0), fit={"scaleX": 2.0, "scaleY": 2.0})}
    assert annotate.drawn_marks(session, "k", port, mask, plane=2).clicked.tolist() == [4]


def test_a_full_canvas_is_replaced_by_a_fresh_one():
    mask = np.zeros((10, 10), np.int32)
    port = overlay.Viewport(0, 0, 10, 10)
    session = {}
    key = annotate.canvas_key(session, ("a.tif", None, port))
    clicks = [canvas_click(1.0, 1.0)] * annotate.FRESH_CANVAS_AFTER
    session[key] = _canvas_value(*clicks[:-1])
    annotate.drawn_marks(session, key, port, mask)
    assert annotate.canvas_key(session, ("a.tif", None, port)) == key
    session[key] = _canvas_value(*clicks)
    annotate.drawn_marks(session, key, port, mask)
    assert annotate.canvas_key(session, ("a.tif", None, port)) != key


RECT = {"type": "rect", "left": 0, "top": 0, "width": 25, "height": 25, "scaleX": 1, "scaleY": 1}


@pytest.fixture
def project(tmp_path):
    """A project with one image (a.tif, no pixels read) and classes round, speckled."""
    project = Project.create(tmp_path / "project")
    project.add_image(tmp_path / "a.tif", tmp_path / "a_mask.tif")
    project.add_class("round")
    project.add_class("speckled")
    return project


def test_a_rectangle_leaves_labelled_objects_unless_relabel(project):
    """Issue 12: a rectangle or polygon silently relabelled objects already labelled."""
    mask, port = _two_disks()
    session = {}
    project.annotate("a.tif", 5, "round", author="ben")
    _, enclosed, _ = _marks(session, "k", port, mask, RECT)
    marks = annotate.Marks(np.array([], np.int64), np.array(enclosed))
    labelled, kept = annotate.store_marks(project, "a.tif", marks, "speckled", "ann")
    assert (labelled.tolist(), kept) == ([9], 1)
    assert current_labels(project) == [("a.tif", 5, "round"), ("a.tif", 9, "speckled")]
    assert annotate.caption("speckled", labelled, kept) == (
        "Last: speckled ← objects [9] · 1 already labelled object left as it was "
        "(tick Relabel to change it)")
    labelled, kept = annotate.store_marks(project, "a.tif", marks, "speckled", "ann",
                                          relabel=True)
    assert (labelled.tolist(), kept) == ([5, 9], 0)
    assert current_labels(project) == [("a.tif", 5, "speckled"), ("a.tif", 9, "speckled")]
    # a click is how one corrects a label: it always relabels
    click = annotate.Marks(np.array([5]), np.array([], np.int64))
    assert annotate.store_marks(project, "a.tif", click, "round", "ann")[0].tolist() == [5]
    assert current_labels(project)[0] == ("a.tif", 5, "round")


def test_undo_of_an_object_a_colleague_changed_warns_once_then_goes_back(project):
    """Issue 12: such an undo showed the generic error, and every later Undo did too."""
    session = {}
    project.annotate("a.tif", 5, "round", author="ann")
    project.annotate("a.tif", 9, "round", author="ann")
    project.annotate("a.tif", 9, "speckled", author="ben")
    done, message = annotate.undo(project, "ann", "a.tif", session)
    assert not done
    assert re.fullmatch(r"Not undone: \*\*ben\*\* set it to \*\*speckled\*\* at "
                        r"\d\d:\d\d:\d\d UTC \(object 9\), after your label\. Their label is "
                        r"kept and this step is dropped from your undo list: Undo again "
                        r"takes back your action before it\.", message), message
    assert current_labels(project) == [("a.tif", 5, "round"), ("a.tif", 9, "speckled")]
    assert annotate.undo(project, "ann", "a.tif", session) == (True, "undid label 5")
    assert annotate.undo(project, "ann", "a.tif", session) == (True, "nothing to undo")
    assert current_labels(project) == [("a.tif", 9, "speckled")]


def test_labels_changed_tracks_the_version_a_tab_drew():
    session = {}
    assert annotate.labels_changed(session, "a.tif", 0)   # never drawn
    assert annotate.labels_changed(session, "a.tif", 0, seen=True)
    assert not annotate.labels_changed(session, "a.tif", 0)
    assert annotate.labels_changed(session, "a.tif", 7)   # a colleague labelled
    assert annotate.labels_changed(session, "b.tif", 0)   # per image


def test_chosen_class_survives_the_radio_not_being_drawn():
    session = {}
    assert annotate.chosen_class(session, ["round", "speckled"]) == "round"
    session["annotate_class"] = "speckled"        # the user picked it
    assert annotate.chosen_class(session, ["round", "speckled"]) == "speckled"
    del session["annotate_class"]                 # guided mode: Streamlit forgot the widget
    assert annotate.chosen_class(session, ["round", "speckled"]) == "speckled"
    assert annotate.chosen_class(session, ["round", "dotted"]) == "round"  # class removed


def test_object_colours_add_the_predictions_of_unlabelled_objects():
    classes = pd.DataFrame({"name": ["round", "speckled"], "colour": ["#ff0000", "#00ff00"]})
    labels = pd.DataFrame({"label": [3], "class": ["round"]})
    predicted = pd.DataFrame({"label": [3, 8], "class": ["speckled", "speckled"],
                              "confidence": [0.9, 0.6]})
    assert annotate.object_colours(labels, classes) == {3: "#ff0000"}
    # the user's label wins over the prediction of the same object
    assert annotate.object_colours(labels, classes, predicted) == {3: "#ff0000", 8: "#00ff00"}
