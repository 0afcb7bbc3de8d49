"""svetlana_core.store.images: registering image and mask files, and finding them again."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from svetlana_core.errors import InputError
from svetlana_core.store import Project


def test_add_image_is_idempotent_and_names_default_to_the_file_name(tmp_path):
    project = Project.create(tmp_path / "p")
    first = project.add_image("images/A01.png", "masks/A01.tif")
    assert first == 1
    assert project.add_image("images/A01.png", "masks/A01.tif") == 1
    assert project.add_image(Path("images/A01.png").absolute(), "masks/A01.tif", axes="YXC") == 1
    assert project.add_image(None, "masks/fib1.tif") == 2  # mask-only: named after the mask
    assert project.add_image("other/A01.png", "masks/A01.tif", name="plate2_A01.png") == 3
    table = project.images()
    assert table.columns.tolist() == ["id", "name", "path", "mask_path", "axes", "well"]
    assert table["id"].tolist() == [1, 2, 3]
    assert table["name"].tolist() == ["A01.png", "fib1.tif", "plate2_A01.png"]
    assert table["path"].iloc[0] == os.path.abspath("images/A01.png")
    assert pd.isna(table["path"].iloc[1])
    assert table["mask_path"].tolist() == [os.path.abspath(p) for p in ("masks/A01.tif", "masks/fib1.tif", "masks/A01.tif")]
    assert table["axes"].iloc[0] == "YXC"  # updated by the repeated add


def test_add_image_with_the_same_name_but_other_paths_raises(tmp_path):
    project = Project.create(tmp_path / "p")
    project.add_image("images/A01.png", "masks/A01.tif")
    with pytest.raises(InputError, match="image A01.png is already in the project with image .*images/A01.png"):
        project.add_image("elsewhere/A01.png", "masks/A01.tif")
    with pytest.raises(InputError, match="image A01.png is already in the project"):
        project.add_image("images/A01.png", "masks/other.tif")
    assert len(project.images()) == 1


def test_add_images_is_one_transaction(tmp_path):
    from dataclasses import dataclass

    @dataclass
    class Pair:  # the shape of svetlana_core.io.Pair
        image: Path
        mask: Path
        stem: str

    project = Project.create(tmp_path / "p")
    ids = project.add_images(
        [
            Pair(Path("i/A01.png"), Path("m/A01.tif"), "A01"),
            ("i/A02.png", "m/A02.tif", "YX", "A02"),
            {"image_path": None, "mask_path": "m/v.tif", "name": "volume"},
        ]
    )
    assert ids == [1, 2, 3]
    assert project.images()[["name", "axes", "well"]].fillna("-").values.tolist() == [
        ["A01.png", "-", "-"],
        ["A02.png", "YX", "A02"],
        ["volume", "-", "-"],
    ]
    with pytest.raises(InputError, match="image A01.png is already in the project"):
        project.add_images([("i/B01.png", "m/B01.tif"), ("x/A01.png", "m/A01.tif")])
    assert project.images()["name"].tolist() == ["A01.png", "A02.png", "volume"]  # B01 rolled back
    with pytest.raises(InputError, match="pairs item 0 must be a Pair, a mapping or a tuple"):
        project.add_images(["just_a_string.png"])


def test_image_id_by_name_or_id(project):
    assert project.image_id("B02.png") == 2
    assert project.image_id(1) == 1
    with pytest.raises(InputError, match="no image named 'C03.png' in project"):
        project.image_id("C03.png")
    with pytest.raises(InputError, match="no image with id 9 in project"):
        project.image_id(9)
    with pytest.raises(InputError, match="image must be a name or an integer id, got 1.5"):
        project.image_id(1.5)


def test_a_removed_image_is_left_out_by_every_reader_and_its_labels_are_kept(project):
    project.annotate_many([("A01.png", 3, "live"), ("A01.png", 7, "dead"), ("B02.png", 5, "live")],
                          author="ann")
    project.save_predictions("m", "A01.png", pd.DataFrame({"label": [3], "class": ["live"]}))
    project.save_predictions("m", "B02.png", pd.DataFrame({"label": [5], "class": ["dead"]}))
    assert project.remove_image("A01.png", author="bob") == 2  # labelled objects it had

    assert project.images()["name"].tolist() == ["B02.png"]
    assert project.labels()[["image", "label"]].values.tolist() == [["B02.png", 5]]
    assert dict(project.label_counts().values) == {"live": 1, "dead": 0}
    assert list(project.training_files()[0]) == ["B02.png"]
    assert list(project.training_set().files) == ["B02.png"]
    assert project.predictions("m")["image"].tolist() == ["B02.png"]
    removed = project.removed_images()
    assert removed[["id", "name", "removed_by"]].values.tolist() == [[1, "A01.png", "bob"]]
    assert removed["removed_at"].iloc[0].endswith("+00:00")
    # By name or id, reading or writing: one line saying who removed it.
    for call in (lambda: project.labels("A01.png"), lambda: project.annotate(1, 3, "dead"),
                 lambda: project.history("A01.png", 3), lambda: project.remove_image(1)):
        with pytest.raises(InputError, match=r"image ('A01.png'|1) was removed from project"):
            call()
    with pytest.raises(InputError, match=r"rows item 0: no image 'A01.png' in project"):
        project.annotate_many([("A01.png", 3, "dead")])  # nor can an import label it
    with pytest.raises(InputError, match=r"image 'A01.png' was removed from project .* by bob "
                                         r"at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC; add its files"):
        project.image_id("A01.png")
    # Undo passes over an action on a removed image rather than changing its history.
    assert project.undo_last("ann") == ("B02.png", 5, None)
    assert project.undo_last("ann") is None


def test_re_adding_the_same_files_brings_the_labels_back(project, tmp_path):
    project.annotate("A01.png", 3, "live", author="ann")
    project.remove_image("A01.png", author="bob")
    image_id = project.add_image(tmp_path / "images" / "A01.png", tmp_path / "masks" / "A01.tif")
    assert image_id == 1
    assert project.removed_images().empty
    assert project.labels()[["image", "label", "class"]].values.tolist() == [
        ["A01.png", 3, "live"]]
    # Removed again then restored by name: the same, once its files are there.
    project.remove_image(1)
    with pytest.raises(InputError, match=r"cannot bring image 'A01.png' back: its file "
                                         r".*images/A01.png no longer exists"):
        project.restore_image("A01.png")
    for path in (tmp_path / "images" / "A01.png", tmp_path / "masks" / "A01.tif"):
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"")
    assert project.restore_image("A01.png") == 1
    assert len(project.labels()) == 1
    with pytest.raises(InputError, match="image 'A01.png' is in project .*: it was not removed"):
        project.restore_image("A01.png")
    with pytest.raises(InputError, match="no image named 'C03.png'"):
        project.restore_image("C03.png")
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(project.db_path)) as conn:  # both removals are logged
        log = conn.execute("SELECT image_id, name, removed_by, restored_at IS NOT NULL"
                           " FROM image_removals ORDER BY id").fetchall()
    assert log == [(1, "A01.png", "bob", 1), (1, "A01.png", "", 1)]


def test_other_files_under_a_removed_name_are_a_new_image(project, tmp_path):
    project.annotate("A01.png", 3, "live", author="ann")
    project.remove_image("A01.png")
    new = project.add_image(tmp_path / "fixed" / "A01.png", tmp_path / "fixed" / "A01_mask.tif")
    assert new == 3
    assert project.images()["name"].tolist() == ["B02.png", "A01.png"]
    assert project.labels().empty  # other objects: the old labels do not carry over
    assert project.removed_images()["name"].tolist() == ["A01.png (removed, id 1)"]
    # The old one can still come back, under that name, with its labels.
    for path in (tmp_path / "images" / "A01.png", tmp_path / "masks" / "A01.tif"):
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"")
    project.restore_image("A01.png (removed, id 1)")
    assert project.labels()[["image", "label"]].values.tolist() == [
        ["A01.png (removed, id 1)", 3]]
