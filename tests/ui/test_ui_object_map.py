"""The object map (issue 15): a box or lasso selection labels exactly the selected objects in
one undo step, the selection lights up on the image, and objects picked on the image light up
on the map."""

from __future__ import annotations

import pandas as pd
import pytest

from svetlana_core.demo import create_demo
from svetlana_core.errors import InputError
from tests.builders import app_test, messages
from ui import object_map


@pytest.fixture
def demo(lab):
    return create_demo(lab["lab"] / "projects" / "demo")


def _points(project) -> pd.DataFrame:
    table = object_map.features(project, object_map.HANDCRAFTED, None)
    return object_map.with_colours(object_map.coordinates(table, object_map.HANDCRAFTED),
                                   project, None)


def _page(image: str):
    at = app_test("demo")
    at.switch_page("pages/object_map.py")
    at.query_params["image"] = image
    at.run()
    assert not at.exception, messages(at.exception)
    return at


def test_a_lasso_labels_exactly_the_selected_objects_in_one_undo_step(demo):
    points = _points(demo)
    image = demo.images()["name"].iloc[1]
    free = points[(points["image"] == image) & points["labelled"].isna()].head(5)
    at = _page(image)
    at.session_state["map_chart"] = {"selection": {
        "points": [{"customdata": int(i), "x": x, "y": y}
                   for i, x, y in zip(free.index, free["x"], free["y"])],
        "point_indices": free.index.tolist(), "box": [], "lasso": [{"x": [0], "y": [0]}]}}
    at.run()
    assert any("5 selected" in c.value for c in at.caption)
    at.selectbox(key="map_class").set_value("speckled").run()
    next(b for b in at.button if b.label == "Label selection").click().run()
    assert not at.exception, messages(at.exception)
    labels = demo.labels(image).set_index("label")
    assert labels.loc[free["label"], "class"].tolist() == ["speckled"] * 5
    assert set(labels.loc[free["label"], "source"]) == {"bulk"}
    before = len(demo.labels())
    next(b for b in at.button if b.label == "Undo").click().run()
    assert len(demo.labels()) == before - 5  # the whole selection, in one step
    assert not set(free["label"]) & set(demo.labels(image)["label"])


def test_the_selection_is_what_lights_up_on_the_image(demo):
    points = _points(demo)
    names = demo.images()["name"].tolist()
    rows = pd.concat([points[points["image"] == names[0]].head(2),
                      points[points["image"] == names[1]].head(3)])
    colours = object_map.selection_colours(rows, names[1])
    assert colours == {int(label): object_map.SELECTED
                       for label in points[points["image"] == names[1]].head(3)["label"]}
    assert object_map.SELECTED not in set(demo.classes()["colour"])


def test_a_selection_across_images_says_how_many_per_image(demo):
    points = _points(demo)
    names = demo.images()["name"].tolist()
    rows = pd.concat([points[points["image"] == names[0]].tail(2),
                      points[points["image"] == names[2]].tail(1)])
    message = object_map.label_selection(demo, rows, "round", "ann")
    assert message == f"3 object(s) labelled 'round' (2 on {names[0]}, 1 on {names[2]})"
    with pytest.raises(InputError, match="the selection is empty"):
        object_map.label_selection(demo, rows.iloc[:0], "round", "ann")


def test_objects_picked_on_the_image_are_ringed_on_the_map(demo):
    points = _points(demo)
    image = demo.images()["name"].iloc[0]
    mine = points[points["image"] == image].head(3)
    fig = object_map.figure(points, "label", {}, picked=mine)
    ring = fig.data[-1]
    assert ring.name == "picked on the image (3)"
    assert list(ring.customdata) == mine.index.tolist()
    at = _page(image)
    at.session_state[f"map_image_chart_{image}"] = {"selection": {
        "points": [{"customdata": int(label)} for label in mine["label"]],
        "point_indices": [0, 1, 2], "box": [], "lasso": []}}
    at.run()
    assert not at.exception, messages(at.exception)
    assert at.session_state[f"map_picked_{image}"] == sorted(mine["label"].tolist())


def test_the_map_is_computed_once_and_kept_in_the_project(demo):
    first = object_map.features(demo, object_map.HANDCRAFTED, None)
    kept = list((demo.folder / "object_maps").glob("*.parquet"))
    assert len(kept) == 1
    again = object_map.features(demo, object_map.HANDCRAFTED, None)
    pd.testing.assert_frame_equal(first, again)


def test_a_3d_project_maps_its_objects_and_labels_a_selection(lab):
    import numpy as np

    from svetlana_core import io
    from svetlana_core.store import Project
    from tests.builders import ball_mask

    mask = ball_mask((12, 40, 40), [(6, 10, 10), (6, 10, 30), (6, 30, 10), (6, 30, 30)], 4,
                     [2, 4, 6, 8])
    io.write_tiff(lab["lab"] / "s.tif", ((mask > 0) * 100 + (mask == 4) * 100).astype(np.uint8))
    io.write_tiff(lab["lab"] / "s_mask.tif", mask)
    project = Project.create(lab["lab"] / "projects" / "demo")
    project.add_class("bright")
    project.add_image(lab["lab"] / "s.tif", lab["lab"] / "s_mask.tif")
    at = _page("s.tif")
    assert any("4 objects · 0 selected" in c.value for c in at.caption)
    points = _points(project)
    at.session_state["map_chart"] = {"selection": {
        "points": [{"customdata": int(i)} for i in points.index[:2]], "point_indices": [0, 1],
        "box": [], "lasso": []}}
    at.run()
    next(b for b in at.button if b.label == "Label selection").click().run()
    assert not at.exception, messages(at.exception)
    assert project.labels()["label"].tolist() == points["label"].iloc[:2].tolist()
