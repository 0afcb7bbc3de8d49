"""Several people on one server: two app sessions on one image.

Processes writing labels at once are tested in tests/store/test_store_annotations.py,
trainings that queue for one device in tests/jobs/test_jobs_worker.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from svetlana_core.demo import create_demo
from svetlana_core.io import read_mask
from svetlana_core.objects import object_table
from svetlana_core.store import Project
from ui import annotate

ROOT = Path(__file__).resolve().parents[1]


def _annotate_session(project: str, image: str):
    """An AppTest session on the Annotate page of ``image`` (a browser tab of its own)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["project"] = project
    at.query_params["image"] = image
    at.run()
    at.switch_page("pages/annotate.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _click(at, row: float, column: float) -> None:
    """Inject a click of the canvas at image pixel (row, column) and rerun (FIELD-NOTES.md)."""
    radius, stroke = 3, 2
    at.session_state[at.session_state["annotate_canvas_key"]] = {
        "drawing": {"raw": {"objects": [{"type": "circle", "left": column - radius - stroke / 2,
                                         "top": row, "radius": radius, "strokeWidth": stroke}]},
                    "data": None},
        "backgroundFit": {"naturalWidth": 384, "naturalHeight": 384, "scaleX": 1.0,
                          "scaleY": 1.0, "offsetX": 0.0, "offsetY": 0.0},
    }
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def _shown_counts(at) -> dict[str, int]:
    """The label counts per class that the Annotate page shows for its image."""
    table = at.dataframe[0].value
    return dict(zip(table["class"], table["n"]))


def _radio_counts(at) -> list[str]:
    """The class picker's options, e.g. ``"round (7)"`` (count of the class on the image)."""
    return list(at.radio(key="annotate_class").options)


@pytest.mark.slow  # ~3 s: two app sessions
def test_two_sessions_on_one_image_see_each_others_labels(tmp_path, monkeypatch):
    import tifffile

    from svetlana_core.objects import object_table

    monkeypatch.setenv("SVETLANA_DATA_ROOT", str(tmp_path))
    project = create_demo(tmp_path / "projects" / "demo")
    image = "demo_A01.png"
    mask_path = project.images().set_index("name").loc[image, "mask_path"]
    table = object_table(tifffile.imread(mask_path))
    free = table[~table["label"].isin(project.labels(image)["label"])].iloc[:2]
    one, two = free["label"].tolist()
    before = project.label_counts(image).set_index("class")["n"].to_dict()

    a, b = _annotate_session("demo", image), _annotate_session("demo", image)
    assert _shown_counts(a) == _shown_counts(b) == before
    for at in (a, b):
        at.radio(key="annotate_class").set_value("speckled")
        at.run()
    _click(a, *free.iloc[0][["centroid_row", "centroid_column"]])
    _click(b, *free.iloc[1][["centroid_row", "centroid_column"]])
    labels = project.labels(image).set_index("label")
    assert labels.loc[[one, two], "class"].tolist() == ["speckled", "speckled"]

    after = {**before, "speckled": before["speckled"] + 2}
    assert _shown_counts(b) == after  # B's click reran B's page: it already shows A's label
    a.run()  # A's page is redrawn (a rerun: any widget, or the next click)
    assert _shown_counts(a) == _shown_counts(b) == after
    assert f"speckled ({after['speckled']})" in _radio_counts(a)


def _guided_session(project: str, image: str, seed: int | None = None):
    at = _annotate_session(project, image)
    if seed is not None:  # the random order of an anonymous session (ui.annotate.guided_seed)
        at.session_state["guided_seed"] = seed
    at.segmented_control(key="annotate_mode").set_value("Guided")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _shown_object(at) -> int:
    caption = at.get("image")[0].proto.imgs[0].caption
    return int(caption.split()[1])  # "object 17 · 12 of 36 labelled"


def test_guided_sessions_label_the_object_each_user_was_shown(tmp_path, monkeypatch):
    monkeypatch.setenv("SVETLANA_DATA_ROOT", str(tmp_path))
    project = create_demo(tmp_path / "projects" / "demo")
    image = "demo_A01.png"
    # two people whose random orders coincide, so both are shown the same object
    a, b = _guided_session("demo", image, seed=1), _guided_session("demo", image, seed=1)
    shown = _shown_object(a)
    assert _shown_object(b) == shown
    next(button for button in a.button if button.label.startswith("1 · ")).click()
    a.run()
    # B still sees the same object and gives it another class: B's label is for that object
    # (the later label wins, both stay in the history), never for one B has not seen.
    next(button for button in b.button if button.label.startswith("2 · ")).click()
    b.run()
    classes = project.classes()["name"].tolist()
    assert project.history(image, shown)["class"].tolist() == classes[:2]
    assert project.labels(image).query("source == 'guided'")["label"].tolist() == [shown]


def test_two_guided_sessions_on_one_image_are_shown_different_objects(tmp_path, monkeypatch):
    monkeypatch.setenv("SVETLANA_DATA_ROOT", str(tmp_path))
    create_demo(tmp_path / "projects" / "demo")
    # anonymous sessions draw their own order; named users get one from their name
    project = Project.open(tmp_path / "projects" / "demo")
    image = "demo_A01.png"
    a, b = _guided_session("demo", image), _guided_session("demo", image)
    seeds = [at.session_state["guided_seed"] for at in (a, b)]
    assert seeds[0] != seeds[1]
    # each page shows the first unlabelled object of its own order
    row = project.images().set_index("name").loc[image]
    table = object_table(read_mask(row["mask_path"]))
    labelled = set(project.labels(image)["label"])
    assert [_shown_object(at) for at in (a, b)] == [
        annotate.next_object(table, labelled, set(), seed=seed) for seed in seeds]
