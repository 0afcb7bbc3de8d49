"""svetlana_core.store.classes: classes, their colours, renaming and removing."""

from __future__ import annotations

import pytest

from svetlana_core.errors import InputError
from svetlana_core.store import MAX_CLASSES, PALETTE, Project
from tests.builders import current_labels


def test_classes_get_palette_colours_and_positions(tmp_path):
    project = Project.create(tmp_path)
    assert project.add_class("live") == 1
    assert project.add_class("  dead ") == 2  # stripped
    assert project.add_class("dead") == 2  # idempotent
    assert project.add_class("mitotic", colour="#00FF00") == 3
    table = project.classes()
    assert table.columns.tolist() == ["id", "name", "colour", "position"]
    assert table.values.tolist() == [
        [1, "live", PALETTE[0], 0],
        [2, "dead", PALETTE[1], 1],
        [3, "mitotic", "#00ff00", 2],
    ]
    project.remove_class("dead")
    assert project.add_class("apoptotic") == 4
    assert project.classes().set_index("name")["colour"]["apoptotic"] == PALETTE[1]  # the free one


def test_class_errors(tmp_path):
    project = Project.create(tmp_path)
    with pytest.raises(InputError, match="class name must be a non-empty string, got '  '"):
        project.add_class("  ")
    with pytest.raises(InputError, match="colour must be a hex colour like '#1f77b4', got 'red'"):
        project.add_class("live", colour="red")
    for number in range(MAX_CLASSES):
        project.add_class(f"class {number}")
    assert project.classes()["colour"].tolist() == list(PALETTE)
    with pytest.raises(InputError, match="class 'one too many' would make 21 classes .* at most 20"):
        project.add_class("one too many")
    assert len(project.classes()) == 20


def test_set_and_remove_class(project):
    project.set_class("live", new_name="alive", colour="#123456")
    assert project.classes()[["name", "colour"]].values.tolist() == [["alive", "#123456"], ["dead", PALETTE[1]]]
    with pytest.raises(InputError, match="cannot rename class 'alive': 'dead' already exists"):
        project.set_class("alive", new_name="dead")
    with pytest.raises(InputError, match=r"no class named 'ghost' in project .* \(classes: 'alive', 'dead'\)"):
        project.set_class("ghost", colour="#000000")
    project.annotate("A01.png", 3, "dead")
    project.annotate("A01.png", 4, "dead")
    project.annotate("A01.png", 4, "alive")
    assert current_labels(project) == [("A01.png", 3, "dead"), ("A01.png", 4, "alive")]
    with pytest.raises(InputError, match=r"cannot remove class 'dead': 2 annotations use it \(1 objects"):
        project.remove_class("dead")
    project.add_class("unused")
    project.remove_class("unused")
    assert project.classes()["name"].tolist() == ["alive", "dead"]
