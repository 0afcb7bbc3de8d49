"""The Annotate page through AppTest (issue 12, items 5 and 6): class counts that follow the
clicks, undo when a colleague changed the object, rectangles that leave labelled objects
alone. The canvas is an inert element here: its value is injected in session state
(FIELD-NOTES.md). The two-user click path and the polling run in a real browser
(tests/test_browser_annotate.py)."""

from __future__ import annotations

import tifffile

from svetlana_core.objects import object_table
from tests.builders import app_test, canvas_click, messages

IMAGE = "demo_A01.png"
FIT = {"naturalWidth": 384, "naturalHeight": 384, "scaleX": 1.0, "scaleY": 1.0,
       "offsetX": 0.0, "offsetY": 0.0}
WHOLE = {"type": "rect", "left": 0, "top": 0, "width": 384, "height": 384, "scaleX": 1,
         "scaleY": 1}


def _session(author: str = ""):
    """An AppTest session on the Annotate page of the demo's first image, as ``author``."""
    at = app_test("demo")
    at.query_params["image"] = IMAGE
    if author:
        at.session_state["author_name"] = author  # what the sidebar's name field keeps
    at.run()
    at.switch_page("pages/annotate.py")
    at.run()
    _ok(at)
    return at


def _ok(at) -> None:
    assert not at.exception, messages(at.exception)


def _draw(at, *shapes) -> None:
    """The canvas now holds ``shapes`` (its whole drawing, as the browser sends it); rerun."""
    at.session_state[at.session_state["annotate_canvas_key"]] = {
        "drawing": {"raw": {"objects": list(shapes)}, "data": None}, "backgroundFit": FIT}
    at.run()
    _ok(at)


def _free_objects(project):
    """Object table rows of the demo image's unlabelled objects."""
    mask = tifffile.imread(project.images().set_index("name").loc[IMAGE, "mask_path"])
    table = object_table(mask)
    return table[~table["label"].isin(project.labels(IMAGE)["label"])]


def _click_at(target) -> dict:
    return canvas_click(target["centroid_column"], target["centroid_row"])


def _canvas_shown(at) -> bool:
    return any(getattr(node, "type", "") == "bidi_component" for node in _walk(at.main))


def _walk(node):
    children = getattr(node, "children", None)
    for child in (children.values() if isinstance(children, dict) else []):
        yield child
        yield from _walk(child)


def test_class_counts_follow_the_click_in_the_same_run(demo):
    """The Class radio was drawn before the canvas stored the click: its counts lagged."""
    before = demo.label_counts(IMAGE).set_index("class")["n"]
    at = _session()
    at.radio(key="annotate_class").set_value("speckled")
    at.run()
    _draw(at, _click_at(_free_objects(demo).iloc[0]))
    assert f"speckled ({before['speckled'] + 1})" in at.radio(key="annotate_class").options
    assert at.radio(key="annotate_class").value == "speckled"


def test_undo_of_an_object_a_colleague_relabelled_warns_and_keeps_the_canvas(demo):
    free = _free_objects(demo)
    first, second = int(free["label"].iloc[0]), int(free["label"].iloc[1])
    at = _session("ana")
    _draw(at, _click_at(free.iloc[0]))
    _draw(at, _click_at(free.iloc[0]), _click_at(free.iloc[1]))
    demo.annotate(IMAGE, second, "speckled", author="ben")
    undo = next(b for b in at.button if b.label == "Undo")
    undo.click()
    at.run()
    _ok(at)
    warning = " ".join(messages(at.warning))
    assert "**ben** set it to **speckled**" in warning and f"(object {second})" in warning
    assert _canvas_shown(at)
    labels = demo.labels(IMAGE).set_index("label")
    assert (labels.loc[second, "class"], labels.loc[second, "author"]) == ("speckled", "ben")
    # that step is dropped: the next Undo takes back ana's click before it
    next(b for b in at.button if b.label == "Undo").click()
    at.run()
    _ok(at)
    assert not at.warning and f"undid label {first}" in [c.value for c in at.caption]
    assert first not in demo.labels(IMAGE)["label"].tolist()
    # and a click after all that is stored (the canvas stayed, nothing was dropped)
    _draw(at, _click_at(free.iloc[0]), _click_at(free.iloc[1]), _click_at(free.iloc[2]))
    assert int(free["label"].iloc[2]) in demo.labels(IMAGE)["label"].tolist()


def test_a_rectangle_leaves_labelled_objects_unless_relabel_is_ticked(demo):
    labelled_before = demo.labels(IMAGE).set_index("label")["class"]
    n_objects = len(_free_objects(demo)) + len(labelled_before)
    at = _session()
    at.radio(key="annotate_class").set_value("speckled")
    at.run()
    _draw(at, WHOLE)
    labels = demo.labels(IMAGE).set_index("label")["class"]
    assert len(labels) == n_objects
    assert labels[labelled_before.index].equals(labelled_before)  # left as they were
    kept = len(labelled_before)
    assert any(f"{kept} already labelled objects left as they were" in c.value
               for c in at.caption)
    at.checkbox(key="annotate_relabel").check()
    at.run()
    _draw(at, WHOLE, {**WHOLE, "left": 1})
    assert set(demo.labels(IMAGE)["class"]) == {"speckled"}
