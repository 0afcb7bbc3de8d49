"""svetlana_core.store.annotations: the annotation log, undo, history and the labels CSV."""

from __future__ import annotations

import multiprocessing
import os
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
from svetlana_core.store import Project
from svetlana_core.store.annotations import UndoConflict
from tests.builders import current_labels

REPO = Path(__file__).resolve().parents[2]


def write_csv(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def state(project: Project) -> tuple:
    """Everything an import could change."""
    with closing(sqlite3.connect(project.db_path)) as conn:
        annotations = conn.execute("SELECT COUNT(*) FROM annotations").fetchone()[0]
    return annotations, project.classes().to_dict("records"), current_labels(project)


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
    assert current_labels(project, "B02.png") == [("B02.png", 42, "dead")]
    assert current_labels(project, 1) == [("A01.png", 3, "dead")]
    history = project.history("A01.png", 7)
    assert history["id"].tolist() == [2, 5]
    assert history["class"].tolist()[0] == "live" and pd.isna(history["class"].iloc[1])
    assert history["author"].tolist() == ["ann", "ann"]
    assert project.history("A01.png", 3)["class"].tolist() == ["live", "dead"]
    assert project.label_counts().values.tolist() == [["live", 0], ["dead", 2]]
    assert project.label_counts("A01.png").values.tolist() == [["live", 0], ["dead", 1]]
    project.annotate("A01.png", 7, "live")  # a removed object can be labelled again
    assert current_labels(project, "A01.png") == [("A01.png", 3, "dead"), ("A01.png", 7, "live")]


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
    with pytest.raises(InputError, match="source must be one of manual, correction, import, guided, bulk, transfer; got 'robot'"):
        project.annotate("A01.png", 1, "live", source="robot")
    assert project.labels().empty
    assert project.classes()["name"].tolist() == ["live", "dead"]  # no class was auto-created


def test_annotate_accepts_numpy_integers(project):
    import numpy as np

    project.annotate(np.int64(1), np.uint16(5), "live")
    assert current_labels(project) == [("A01.png", 5, "live")]


def test_annotate_many_is_one_transaction(project):
    written = project.annotate_many(
        [("A01.png", 1, "live"), (2, 2, "dead"), ("A01.png", 1, "dead"), ("A01.png", 9, "live")],
        author="ann",
        source="guided",
    )
    assert written == 4
    assert current_labels(project) == [("A01.png", 1, "dead"), ("A01.png", 9, "live"), ("B02.png", 2, "dead")]
    assert set(project.labels()["source"]) == {"guided"}
    with pytest.raises(InputError, match="rows item 2: no class named 'cat'"):
        project.annotate_many([("A01.png", 20, "live"), ("A01.png", 21, None), ("A01.png", 22, "cat")])
    with pytest.raises(InputError, match="rows item 1: label must be a positive integer, got 0"):
        project.annotate_many([("A01.png", 20, "live"), ("A01.png", 0, "live")])
    with pytest.raises(InputError, match="rows item 0: no image 'nope' in project"):
        project.annotate_many([("nope", 20, "live")])
    assert current_labels(project) == [("A01.png", 1, "dead"), ("A01.png", 9, "live"), ("B02.png", 2, "dead")]


def test_annotate_many_takes_a_dataframe(project):
    rows = pd.DataFrame({"label": [4, 2], "image": ["B02.png", "A01.png"], "class": ["dead", "live"]})
    assert project.annotate_many(rows) == 2
    assert current_labels(project) == [("A01.png", 2, "live"), ("B02.png", 4, "dead")]
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
    assert current_labels(project) == [("A01.png", 3, "dead"), ("B02.png", 1, "dead")]
    assert project.undo_last("ann") == ("A01.png", 3, "live")
    assert current_labels(project) == [("A01.png", 3, "live"), ("B02.png", 1, "dead")]
    assert project.labels().set_index("label")["source"][3] == "import"  # restored as it was
    assert project.undo_last("ann") == ("A01.png", 3, None)
    assert project.undo_last("ann") is None
    assert current_labels(project) == [("B02.png", 1, "dead")]
    history = project.history("A01.png", 3)
    assert history["class"].fillna("-").tolist() == ["live", "dead", "live", "-"]
    assert history["undoes"].tolist()[2:] == [2, 1]  # nothing was deleted
    assert pd.isna(history["undoes"].iloc[0])


def test_undo_by_image_and_when_someone_else_changed_the_object(project):
    project.annotate("A01.png", 1, "live", author="ann")
    project.annotate("B02.png", 1, "live", author="ann")
    assert project.undo_last("ann", image="A01.png") == ("A01.png", 1, None)
    assert current_labels(project) == [("B02.png", 1, "live")]
    project.annotate("B02.png", 1, "dead", author="bob")
    with pytest.raises(InputError, match="cannot undo the label of object 1 in image B02.png: bob changed it since"):
        project.undo_last("ann")
    assert current_labels(project) == [("B02.png", 1, "dead")]
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
    assert current_labels(fresh) == current_labels(project)


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
    assert current_labels(project) == [("A01.png", 1, "live"), ("A01.png", 3, "dead"), ("B02.png", 2, "mitotic")]
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


# Several processes at once (the app server and workers, or several servers)

def _annotate_worker(project: Project, worker: int, count: int, barrier) -> None:
    barrier.wait()  # all processes start writing at the same moment
    for label in range(1, count + 1):
        project.annotate("A01.png", worker * 1000 + label, "live" if label % 2 else "dead",
                         author=f"w{worker}")


@pytest.mark.slow  # ~2 s of writing, 3-8 s with starting 4 spawned interpreters
def test_four_processes_write_500_labels_each_without_losing_one(tmp_path):
    project = Project.create(tmp_path / "project")
    project.add_image(tmp_path / "A01.png", tmp_path / "A01.tif")
    project.add_class("live")
    project.add_class("dead")
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    workers = [context.Process(target=_annotate_worker, args=(project, worker, 500, barrier))
               for worker in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
    assert [process.exitcode for process in workers] == [0, 0, 0, 0]
    table = project.labels()
    assert len(table) == 2000
    expected = {(worker * 1000 + label, "live" if label % 2 else "dead")
                for worker in range(4) for label in range(1, 501)}
    assert set(zip(table["label"], table["class"])) == expected
    assert table.groupby("author").size().to_dict() == {"w0": 500, "w1": 500, "w2": 500,
                                                        "w3": 500}
    with closing(sqlite3.connect(project.db_path)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM annotations").fetchone()[0] == 2000
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_training_set_has_files_labels_and_used_classes_in_project_order(project, tmp_path):
    with pytest.raises(InputError, match="has no labelled objects to train on"):
        project.training_set()
    project.add_class("mitotic")
    project.annotate("B02.png", 4, "mitotic")
    project.annotate("A01.png", 3, "live")
    inputs = project.training_set()
    # 'dead' has no object: left out; the others keep the project's order, not the labels'
    assert inputs.classes == ["live", "mitotic"]
    assert sorted(zip(inputs.labels["image"], inputs.labels["label"])) == [
        ("A01.png", 3), ("B02.png", 4)]
    assert inputs.files == {
        "A01.png": (str(tmp_path / "images" / "A01.png"), str(tmp_path / "masks" / "A01.tif")),
        "B02.png": (str(tmp_path / "images" / "B02.png"), str(tmp_path / "masks" / "B02.tif")),
    }
    assert inputs.axes == {"A01.png": None, "B02.png": "YXC"}



def test_one_action_of_many_objects_is_undone_in_one_step(project):
    """A selection labelled at once (the object map) or a rectangle: one undo takes it back."""
    project.annotate("A01.png", 1, "dead", author="ann")
    assert project.annotate_many([("A01.png", n, "live") for n in (1, 2, 3)], author="ann",
                                 source="bulk", one_action=True) == 3
    project.annotate("A01.png", 4, "live", author="ann")
    assert project.undo_last("ann") == ("A01.png", 4, None)
    assert project.undo_last("ann") == ("A01.png", 1, "dead")  # the whole selection at once
    assert project.labels()[["label", "class", "source"]].values.tolist() == [
        [1, "dead", "manual"]]
    assert project.undo_last("ann") == ("A01.png", 1, None)
    assert project.undo_last("ann") is None


def test_an_action_changed_by_a_colleague_is_not_undone(project):
    project.annotate_many([("A01.png", n, "live") for n in (1, 2)], author="ann",
                          one_action=True)
    project.annotate("A01.png", 2, None, author="bob")
    with pytest.raises(InputError, match=r"cannot undo the label of object 2 in image "
                                         r"A01\.png: bob changed it since"):
        project.undo_last("ann")
    assert project.labels()["label"].tolist() == [1]  # nothing undone


def test_an_undo_conflict_names_the_change_and_can_be_skipped(project):
    """Issue 12: an undo that meets a colleague's later change says who made it, to which
    class and when, keeps it, and ``skip`` then takes back the action before it."""
    project.annotate("A01.png", 1, "live", author="ann")
    project.annotate("A01.png", 2, "live", author="ann")
    project.annotate("A01.png", 2, "dead", author="bob")
    with pytest.raises(UndoConflict, match=r"object 2 in image A01\.png: bob changed it since "
                                           r"\(bob set it to 'dead' at \d{4}-\d\d-\d\d "
                                           r"\d\d:\d\d:\d\d UTC\); that label is kept") as caught:
        project.undo_last("ann", image="A01.png")
    conflict = caught.value
    assert (conflict.image, conflict.label, conflict.rows) == ("A01.png", 2, (2,))
    assert [change[:2] for change in conflict.changes] == [("bob", "dead")]
    assert current_labels(project) == [("A01.png", 1, "live"), ("A01.png", 2, "dead")]
    # the same undo again meets the same conflict; skipping it reaches ann's label before
    with pytest.raises(UndoConflict):
        project.undo_last("ann", image="A01.png")
    assert project.undo_last("ann", image="A01.png", skip=conflict.rows) == ("A01.png", 1, None)
    assert current_labels(project) == [("A01.png", 2, "dead")]
    assert project.undo_last("ann", image="A01.png", skip=conflict.rows) is None


def test_a_removal_by_a_colleague_is_named_and_a_whole_action_is_skipped(project):
    project.annotate("A01.png", 5, "dead", author="ann")
    project.annotate_many([("A01.png", n, "live") for n in (1, 2, 3)], author="ann",
                          one_action=True)
    project.annotate("A01.png", 3, None, author="")
    with pytest.raises(UndoConflict, match=r"object 3 .*: \(anonymous\) changed it since "
                                           r"\(\(anonymous\) removed its label at ") as caught:
        project.undo_last("ann")
    assert caught.value.rows == (2, 3, 4)  # every row of the rectangle
    assert project.undo_last("ann", skip=caught.value.rows) == ("A01.png", 5, None)
    assert current_labels(project) == [("A01.png", 1, "live"), ("A01.png", 2, "live")]


def test_label_version_changes_with_every_label_of_its_image_only(project):
    assert project.label_version("A01.png") == 0
    project.annotate("A01.png", 1, "live", author="ann")
    first = project.label_version("A01.png")
    project.annotate("B02.png", 1, "live", author="bob")
    assert project.label_version("A01.png") == first  # another image: no change
    project.undo_last("ann")
    assert project.label_version("A01.png") > first   # an undo is a change too
    with pytest.raises(InputError, match="no image"):
        project.label_version("Z99.png")
