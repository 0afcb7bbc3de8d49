"""Tests of svetlana_core.store: the project folder, its SQLite database and the labels CSV."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from contextlib import closing
from pathlib import Path

import pandas as pd
import pytest

from svetlana_core.errors import InputError
from svetlana_core.store import DB_NAME, MAX_CLASSES, PALETTE, SCHEMA_VERSION, Project

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A project with two images (A01.png, B02.png) and two classes (live, dead)."""
    project = Project.create(tmp_path / "project")
    project.add_image(tmp_path / "images" / "A01.png", tmp_path / "masks" / "A01.tif", well="A01")
    project.add_image(tmp_path / "images" / "B02.png", tmp_path / "masks" / "B02.tif", axes="YXC")
    project.add_class("live")
    project.add_class("dead")
    return project


def current(project: Project, image=None) -> list[tuple[str, int, str]]:
    return [tuple(row) for row in project.labels(image)[["image", "label", "class"]].itertuples(index=False)]


def write_csv(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def state(project: Project) -> tuple:
    """Everything an import could change."""
    with closing(sqlite3.connect(project.db_path)) as conn:
        annotations = conn.execute("SELECT COUNT(*) FROM annotations").fetchone()[0]
    return annotations, project.classes().to_dict("records"), current(project)


# ---------------------------------------------------------------- creating and opening


def test_create_makes_folder_database_and_subfolders(tmp_path):
    project = Project.create(tmp_path / "new" / "p")
    assert project.folder == tmp_path / "new" / "p"
    assert project.db_path == project.folder / DB_NAME
    assert project.db_path.is_file()
    assert project.models_dir == project.folder / "models" and project.models_dir.is_dir()
    assert project.outputs_dir == project.folder / "outputs" and project.outputs_dir.is_dir()
    assert project.schema_version == SCHEMA_VERSION == 1
    with closing(sqlite3.connect(project.db_path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"images", "classes", "annotations", "runs", "epochs", "predictions"}


def test_create_twice_raises_unless_exist_ok(tmp_path):
    first = Project.create(tmp_path)
    first.add_class("live")
    with pytest.raises(InputError, match=f"folder {tmp_path} is already a Svetlana project"):
        Project.create(tmp_path)
    again = Project.create(tmp_path, exist_ok=True)
    assert again == first
    assert again.classes()["name"].tolist() == ["live"]


def test_open_and_open_or_create(tmp_path):
    with pytest.raises(InputError, match=f"folder {tmp_path / 'missing'} is not a Svetlana project"):
        Project.open(tmp_path / "missing")
    with pytest.raises(InputError, match=r"is not a Svetlana project \(no project.sqlite\)"):
        Project.open(tmp_path)
    created = Project.open_or_create(tmp_path / "p")
    created.add_class("live")
    assert Project.open(tmp_path / "p").classes()["name"].tolist() == ["live"]
    assert Project.open_or_create(tmp_path / "p").classes()["name"].tolist() == ["live"]


def test_create_in_a_file_raises(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match=f"cannot create a project in {tmp_path / 'file'}: it is a file"):
        Project.create(tmp_path / "file")


def test_open_rejects_a_file_that_is_not_a_database(tmp_path):
    (tmp_path / DB_NAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(InputError, match="cannot open project database .*project.sqlite: file is not a database"):
        Project.open(tmp_path)


def test_open_rejects_a_newer_schema(tmp_path):
    project = Project.create(tmp_path)
    with closing(sqlite3.connect(project.db_path)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(InputError, match=f"schema version {SCHEMA_VERSION + 1}, newer than"):
        Project.open(tmp_path)


def test_open_migrates_an_empty_database(tmp_path):
    sqlite3.connect(tmp_path / DB_NAME).close()  # version 0: the migrations have never run
    project = Project.open(tmp_path)
    assert project.schema_version == SCHEMA_VERSION
    assert project.add_class("live") == 1


def test_close_leaves_a_self_contained_database_file(project, tmp_path):
    project.annotate("A01.png", 5, "live")
    assert (project.folder / "project.sqlite-wal").exists()  # kept open between calls
    project.close()
    assert not (project.folder / "project.sqlite-wal").exists()
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / DB_NAME).write_bytes(project.db_path.read_bytes())
    assert current(Project.open(copy)) == [("A01.png", 5, "live")]
    assert current(project) == [("A01.png", 5, "live")]  # usable after close


def test_a_deleted_project_raises(project):
    import shutil

    shutil.rmtree(project.folder)
    with pytest.raises(InputError, match="cannot open project database .*project.sqlite: unable to open"):
        project.labels()
    with pytest.raises(InputError, match="is not a Svetlana project"):
        Project.open(project.folder)


def test_project_pickles_as_its_path(project):
    copy = pickle.loads(pickle.dumps(project))
    assert copy == project and copy.folder == project.folder
    assert copy.classes()["name"].tolist() == ["live", "dead"]


def test_store_imports_without_torch_or_streamlit():
    code = (
        "import sys, svetlana_core.store; "
        "print(sorted(m for m in ('torch', 'streamlit') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# ---------------------------------------------------------------- images


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


# ---------------------------------------------------------------- classes


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
    assert current(project) == [("A01.png", 3, "dead"), ("A01.png", 4, "alive")]
    with pytest.raises(InputError, match=r"cannot remove class 'dead': 2 annotations use it \(1 objects"):
        project.remove_class("dead")
    project.add_class("unused")
    project.remove_class("unused")
    assert project.classes()["name"].tolist() == ["alive", "dead"]


# ---------------------------------------------------------------- annotations


def test_annotate_relabel_remove_and_history(project):
    first = project.annotate("A01.png", 3, "live", author="ann")
    assert first == 1
    assert project.annotate("A01.png", 7, "live", author="ann") == 2
    assert project.annotate(2, 42, "dead", author="bob", source="correction") == 3
    assert project.annotate("A01.png", 3, "dead", author="bob") == 4  # relabel
    assert project.annotate("A01.png", 7, None, author="ann") == 5  # remove
    table = project.labels()
    assert table.columns.tolist() == ["image", "label", "class", "author", "time", "source"]
    assert table[["image", "label", "class", "author", "source"]].values.tolist() == [
        ["A01.png", 3, "dead", "bob", "manual"],
        ["B02.png", 42, "dead", "bob", "correction"],
    ]
    assert table["label"].dtype == "int64"
    assert table["time"].str.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$").all()
    assert current(project, "B02.png") == [("B02.png", 42, "dead")]
    assert current(project, 1) == [("A01.png", 3, "dead")]
    history = project.history("A01.png", 7)
    assert history["id"].tolist() == [2, 5]
    assert history["class"].tolist()[0] == "live" and pd.isna(history["class"].iloc[1])
    assert history["author"].tolist() == ["ann", "ann"]
    assert project.history("A01.png", 3)["class"].tolist() == ["live", "dead"]
    assert project.label_counts().values.tolist() == [["live", 0], ["dead", 2]]
    assert project.label_counts("A01.png").values.tolist() == [["live", 0], ["dead", 1]]
    project.annotate("A01.png", 7, "live")  # a removed object can be labelled again
    assert current(project, "A01.png") == [("A01.png", 3, "dead"), ("A01.png", 7, "live")]


def test_annotate_errors(project):
    with pytest.raises(InputError, match=r"no class named 'dog' in project .* add it first"):
        project.annotate("A01.png", 1, "dog")
    with pytest.raises(InputError, match="no image named 'Z99.png' in project"):
        project.annotate("Z99.png", 1, "live")
    with pytest.raises(InputError, match="no image with id 3 in project"):
        project.annotate(3, 1, "live")
    for bad in (0, -3):
        with pytest.raises(InputError, match=f"label must be a positive integer, got {bad}"):
            project.annotate("A01.png", bad, "live")
    for bad in (2.5, "7", True):
        with pytest.raises(InputError, match=f"label must be a positive integer, got {bad!r}"):
            project.annotate("A01.png", bad, "live")
    with pytest.raises(InputError, match="source must be one of manual, correction, import, guided; got 'robot'"):
        project.annotate("A01.png", 1, "live", source="robot")
    assert project.labels().empty
    assert project.classes()["name"].tolist() == ["live", "dead"]  # no class was auto-created


def test_annotate_accepts_numpy_integers(project):
    import numpy as np

    project.annotate(np.int64(1), np.uint16(5), "live")
    assert current(project) == [("A01.png", 5, "live")]


def test_annotate_many_is_one_transaction(project):
    written = project.annotate_many(
        [("A01.png", 1, "live"), (2, 2, "dead"), ("A01.png", 1, "dead"), ("A01.png", 9, "live")],
        author="ann",
        source="guided",
    )
    assert written == 4
    assert current(project) == [("A01.png", 1, "dead"), ("A01.png", 9, "live"), ("B02.png", 2, "dead")]
    assert set(project.labels()["source"]) == {"guided"}
    with pytest.raises(InputError, match="rows item 2: no class named 'cat'"):
        project.annotate_many([("A01.png", 20, "live"), ("A01.png", 21, None), ("A01.png", 22, "cat")])
    with pytest.raises(InputError, match="rows item 1: label must be a positive integer, got 0"):
        project.annotate_many([("A01.png", 20, "live"), ("A01.png", 0, "live")])
    with pytest.raises(InputError, match="rows item 0: no image 'nope' in project"):
        project.annotate_many([("nope", 20, "live")])
    assert current(project) == [("A01.png", 1, "dead"), ("A01.png", 9, "live"), ("B02.png", 2, "dead")]


def test_annotate_many_takes_a_dataframe(project):
    rows = pd.DataFrame({"label": [4, 2], "image": ["B02.png", "A01.png"], "class": ["dead", "live"]})
    assert project.annotate_many(rows) == 2
    assert current(project) == [("A01.png", 2, "live"), ("B02.png", 4, "dead")]
    with pytest.raises(InputError, match=r"rows lacks column\(s\) class"):
        project.annotate_many(rows[["image", "label"]])


def test_threads_share_one_project(project):
    from concurrent.futures import ThreadPoolExecutor

    def work(worker: int) -> None:
        for label in range(1, 51):
            project.annotate("B02.png", worker * 100 + label, "dead")
            project.labels("B02.png")  # readers interleave with writers

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))
    assert sorted(project.labels()["label"]) == [w * 100 + label for w in range(4) for label in range(1, 51)]


def test_undo_restores_the_previous_class_as_a_stack(project):
    assert project.undo_last("ann") is None
    project.annotate("A01.png", 3, "live", author="ann", source="import")
    project.annotate("A01.png", 3, "dead", author="ann")
    project.annotate("A01.png", 5, "live", author="ann")
    project.annotate("B02.png", 1, "dead", author="bob")
    assert project.undo_last("ann") == ("A01.png", 5, None)
    assert current(project) == [("A01.png", 3, "dead"), ("B02.png", 1, "dead")]
    assert project.undo_last("ann") == ("A01.png", 3, "live")
    assert current(project) == [("A01.png", 3, "live"), ("B02.png", 1, "dead")]
    assert project.labels().set_index("label")["source"][3] == "import"  # restored as it was
    assert project.undo_last("ann") == ("A01.png", 3, None)
    assert project.undo_last("ann") is None
    assert current(project) == [("B02.png", 1, "dead")]
    history = project.history("A01.png", 3)
    assert history["class"].fillna("-").tolist() == ["live", "dead", "live", "-"]
    assert history["undoes"].tolist()[2:] == [2, 1]  # nothing was deleted
    assert pd.isna(history["undoes"].iloc[0])


def test_undo_by_image_and_when_someone_else_changed_the_object(project):
    project.annotate("A01.png", 1, "live", author="ann")
    project.annotate("B02.png", 1, "live", author="ann")
    assert project.undo_last("ann", image="A01.png") == ("A01.png", 1, None)
    assert current(project) == [("B02.png", 1, "live")]
    project.annotate("B02.png", 1, "dead", author="bob")
    with pytest.raises(InputError, match="cannot undo the label of object 1 in image B02.png: bob changed it since"):
        project.undo_last("ann")
    assert current(project) == [("B02.png", 1, "dead")]
    assert project.undo_last("bob") == ("B02.png", 1, "live")


def test_labels_with_many_annotation_rows_use_the_latest(project):
    # 3 passes over 2,000 objects: the last pass wins, removals drop out.
    rows = [("A01.png", label, "live") for label in range(1, 2001)]
    rows += [("A01.png", label, "dead") for label in range(1, 2001, 2)]
    rows += [("A01.png", label, None) for label in range(1, 2001, 4)]
    project.annotate_many(rows)
    table = project.labels()
    assert len(table) == 2000 - 500
    assert table["label"].is_monotonic_increasing
    assert table.groupby("class").size().to_dict() == {"dead": 500, "live": 1000}
    assert project.label_counts().set_index("class")["n"].to_dict() == {"live": 1000, "dead": 500}


# ---------------------------------------------------------------- CSV import / export


def test_csv_round_trip_keeps_awkward_class_names(project, tmp_path):
    names = ['a, b', 'say "hi"', "NA", "None", "", "naïve 細胞"]
    rows = [("A01.png", label, name) for label, name in enumerate(names, start=1) if name]
    source = tmp_path / "in.csv"
    pd.DataFrame(rows, columns=["image", "label", "class"]).assign(extra="x").to_csv(source, index=False)
    assert project.import_labels_csv(source, author="ann") == 5
    assert set(project.classes()["name"]) == {"live", "dead", "a, b", 'say "hi"', "NA", "None", "naïve 細胞"}
    assert project.labels()["source"].unique().tolist() == ["import"]
    out = tmp_path / "out" / "labels.csv"
    assert project.export_labels_csv(out) == 5
    text = out.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "image,label,class"
    assert 'A01.png,1,"a, b"' in text and 'A01.png,2,"say ""hi"""' in text
    back = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert set(back.itertuples(index=False, name=None)) == {(i, str(l), c) for i, l, c in rows}
    assert list(out.parent.iterdir()) == [out]  # the temporary file is gone
    fresh = Project.create(tmp_path / "fresh")
    fresh.add_image(project.images()["path"][0], project.images()["mask_path"][0])
    assert fresh.import_labels_csv(out) == 5
    assert current(fresh) == current(project)


def test_csv_import_collapses_exact_duplicates_and_strips(project, tmp_path):
    path = write_csv(
        tmp_path / "labels.csv",
        """
        image,label,class
        A01.png,1,live
        A01.png,1,live
        B02.png, 2 , mitotic
        A01.png,3.0,dead
        """,
    )
    assert project.import_labels_csv(path) == 3
    assert current(project) == [("A01.png", 1, "live"), ("A01.png", 3, "dead"), ("B02.png", 2, "mitotic")]
    assert project.classes()["name"].tolist() == ["live", "dead", "mitotic"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("image,lbl,class\nA01.png,1,live\n", r"labels.csv lacks column\(s\) label; it has 'image', 'lbl', 'class'"),
        ("name,label\nA01.png,1\n", r"lacks column\(s\) image, class; it has 'name', 'label'"),
        ("", "labels.csv is empty"),
        (
            "image,label,class\nA01.png,1,live\nX.png,1,live\nY.png,2,live\nX.png,3,dead\n",
            "labels.csv names 2 images that are not in the project: X.png, Y.png",
        ),
        (
            "image,label,class\n" + "".join(f"Q{n}.png,1,live\n" for n in range(7)),
            "names 7 images that are not in the project: Q0.png, Q1.png, Q2.png, Q3.png, Q4.png and 2 more",
        ),
        (
            "image,label,class\nA01.png,1,live\nA01.png,x,live\nA01.png,2.5,live\nA01.png,-1,live\nA01.png,,live\n",
            r"label must be a positive integer; 4 rows are not, on line\(s\) 3 \('x'\), 4 \('2.5'\), 5 \('-1'\), 6 \(''\)",
        ),
        (
            "image,label,class\nA01.png,1,live\nA01.png,1,dead\nB02.png,4,live\n",
            "labels.csv gives 1 objects two different classes: A01.png label 1",
        ),
        ("image,label,class\nA01.png,1,\n", r"labels.csv has an empty class on line\(s\) 2"),
        (
            "image,label,class\n" + "".join(f"A01.png,{n},new {n}\n" for n in range(1, 20)),
            "labels file .*labels.csv would make 21 classes .* at most 20",
        ),
    ],
)
def test_csv_import_errors_change_nothing(project, tmp_path, text, message):
    project.annotate("A01.png", 1, "dead")
    before = state(project)
    path = tmp_path / "labels.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        project.import_labels_csv(path)
    assert state(project) == before


def test_csv_import_of_a_missing_file(project, tmp_path):
    with pytest.raises(InputError, match=f"labels file {tmp_path / 'nope.csv'} does not exist"):
        project.import_labels_csv(tmp_path / "nope.csv")


def test_consep_objects_csv_round_trip(shared_data, tmp_path):
    folder = shared_data / "consep_train_tiles"
    project = Project.create(tmp_path / "consep")
    pairs = [(image, folder / "masks" / f"{image.stem}.tif") for image in sorted((folder / "images").glob("*.png"))]
    assert len(project.add_images(pairs)) == 177
    start = time.perf_counter()
    assert project.import_labels_csv(folder / "objects.csv") == 6361
    seconds = time.perf_counter() - start
    print(f"imported 6,361 labels in {seconds * 1000:.0f} ms")
    out = tmp_path / "labels.csv"
    assert project.export_labels_csv(out) == 6361
    original = pd.read_csv(folder / "objects.csv", dtype=str, keep_default_na=False)
    exported = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert len(exported) == 6361
    assert set(exported.itertuples(index=False, name=None)) == set(original.itertuples(index=False, name=None))
    assert project.label_counts().set_index("class")["n"].to_dict() == {
        "epithelial": 2248,
        "inflammatory": 1610,
        "other": 180,
        "spindle": 2323,
    }


# ---------------------------------------------------------------- runs and epochs


def test_runs_and_epochs_round_trip(project):
    import numpy as np

    run_id = project.create_run("train", {"model": "cnn", "lr": 1e-3, "size": (32, 32)}, author="ann")
    assert run_id == 1
    record = project.run(run_id)
    assert record["status"] == "queued" and record["kind"] == "train" and record["author"] == "ann"
    assert record["config"] == {"model": "cnn", "lr": 0.001, "size": [32, 32]}
    project.update_run(
        run_id,
        status="running",
        pid=4321,
        device="cpu",
        model_dir=project.models_dir / "run1",
        started_at="2024-01-01T00:00:00.000000+00:00",
    )
    project.add_epoch(run_id, 1, {"loss": np.float32(0.5), "accuracy": 0.25, "recall": {"live": 0.5, "dead": 0.0}})
    project.add_epoch(run_id, 0, {"loss": 0.75, "accuracy": 0.125, "recall": {"live": 0.25, "dead": 0.0}})
    project.add_epoch(run_id, 1, {"loss": 0.5, "accuracy": 0.5, "recall": {"live": 0.75, "dead": 0.25}})  # replaces
    project.update_run(run_id, status="done", summary={"best_epoch": 1}, error=None)
    record = project.run(run_id)
    assert record["status"] == "done" and record["pid"] == 4321 and record["device"] == "cpu"
    assert record["model_dir"] == str(project.models_dir / "run1")
    assert record["started_at"] == "2024-01-01T00:00:00.000000+00:00"
    assert record["summary"] == {"best_epoch": 1}
    epochs = project.epochs(run_id)
    assert epochs.columns.tolist() == ["epoch", "loss", "accuracy", "recall_live", "recall_dead"]
    assert epochs.values.tolist() == [[0, 0.75, 0.125, 0.25, 0.0], [1, 0.5, 0.5, 0.75, 0.25]]
    assert project.create_run("predict", {}) == 2
    runs = project.runs()
    assert runs["id"].tolist() == [1, 2]
    assert runs["status"].tolist() == ["done", "queued"]
    assert runs["pid"].tolist()[0] == 4321 and pd.isna(runs["pid"].iloc[1])
    assert project.epochs(np.int64(2)).columns.tolist() == ["epoch"] and project.epochs(2).empty
    project.update_run(np.int64(2), pid=np.int64(77))
    assert project.run(2)["pid"] == 77


def test_run_errors(project):
    run_id = project.create_run("train", {})
    with pytest.raises(InputError, match="update_run got unknown field.s. colour; known: author, config"):
        project.update_run(run_id, colour="red")
    with pytest.raises(InputError, match="run status must be one of queued, running, done, failed, stopped; got 'ok'"):
        project.update_run(run_id, status="ok")
    with pytest.raises(InputError, match="no run with id 99 in project"):
        project.update_run(99, status="done")
    with pytest.raises(InputError, match="no run with id 99"):
        project.add_epoch(99, 0, {"loss": 1.0})
    with pytest.raises(InputError, match="no run with id '1'"):
        project.run("1")
    with pytest.raises(InputError, match="epoch must be an integer, got 1.5"):
        project.add_epoch(run_id, 1.5, {"loss": 1.0})
    with pytest.raises(InputError, match="run config cannot be stored as JSON: object is not JSON serialisable"):
        project.create_run("train", {"callback": object()})
    with pytest.raises(InputError, match="run kind must be a non-empty string"):
        project.create_run("", {})
    assert project.run(run_id)["status"] == "queued"


# ---------------------------------------------------------------- predictions


def test_save_predictions_replaces_rows_of_that_model_and_image(project):
    first = pd.DataFrame(
        {"label": [3, 1, 2], "class": ["live", "dead", "live"], "confidence": [0.9, 0.8, 0.6],
         "p_live": [0.9, 0.2, 0.6], "p_dead": [0.1, 0.8, 0.4]}
    )  # fmt: skip
    assert project.save_predictions("models/run1", "A01.png", first) == 3
    project.save_predictions("models/run1", "B02.png", first.iloc[:1])
    project.save_predictions("models/run2", "A01.png", first.iloc[:2])
    table = project.predictions("models/run1", "A01.png")
    assert table.columns.tolist() == ["image", "label", "class", "confidence", "p_live", "p_dead"]
    assert table.values.tolist() == [
        ["A01.png", 1, "dead", 0.8, 0.2, 0.8],
        ["A01.png", 2, "live", 0.6, 0.6, 0.4],
        ["A01.png", 3, "live", 0.9, 0.9, 0.1],
    ]
    second = pd.DataFrame({"label": [7], "class": ["dead"], "confidence": [0.7], "probabilities": [{"live": 0.3, "dead": 0.7}]})
    project.save_predictions("models/run1", "A01.png", second)
    assert project.predictions("models/run1", 1).values.tolist() == [["A01.png", 7, "dead", 0.7, 0.3, 0.7]]
    assert project.predictions("models/run1")[["image", "label"]].values.tolist() == [["A01.png", 7], ["B02.png", 3]]
    assert project.predictions("models/run2")["label"].tolist() == [1, 3]
    assert project.predictions("models/run3").empty
    with pytest.raises(InputError, match=r"predictions table repeats label\(s\) 3"):
        project.save_predictions("models/run1", "A01.png", pd.DataFrame({"label": [3, 3], "class": ["a", "b"]}))
    with pytest.raises(InputError, match=r"predictions table lacks column\(s\) class"):
        project.save_predictions("models/run1", "A01.png", pd.DataFrame({"label": [3]}))
    assert project.predictions("models/run1", 1)["label"].tolist() == [7]  # failed saves changed nothing


# ---------------------------------------------------------------- concurrency and durability
# (4 processes x 500 labels at once, and two app sessions: tests/test_concurrency.py)


def _annotate_range(project: Project, first: int, last: int) -> None:
    for label in range(first, last + 1):
        project.annotate("A01.png", label, "live")


def test_a_forked_child_opens_its_own_connections(project):
    project.annotate("A01.png", 1, "dead")  # the parent's idle connection now exists
    child = multiprocessing.get_context("fork").Process(target=_annotate_range, args=(project, 2, 11))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    project.annotate("A01.png", 12, "dead")
    assert project.labels()["label"].tolist() == list(range(1, 13))
    with closing(sqlite3.connect(project.db_path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_annotations_survive_a_sigkill_of_the_writer(project):
    code = textwrap.dedent(
        f"""
        import sys
        from svetlana_core.store import Project
        project = Project.open({str(project.folder)!r})
        label = 0
        while True:
            label += 1
            project.annotate("A01.png", label, "live")
            print(label, flush=True)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        reported = 0
        while reported < 100:
            line = child.stdout.readline()
            assert line, "the child stopped before annotating 100 objects"
            reported = int(line)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    labels = set(project.labels()["label"])
    assert set(range(1, reported + 1)) <= labels
    assert labels == set(range(1, max(labels) + 1))  # nothing half-written either
    with closing(sqlite3.connect(project.db_path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
