"""svetlana_core.store.project: creating and opening a project, its connections, migrations."""

from __future__ import annotations

import multiprocessing
import pickle
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from svetlana_core.errors import InputError
from svetlana_core.store import DB_NAME, SCHEMA_VERSION, Project
from tests.builders import current_labels

REPO = Path(__file__).resolve().parents[2]
#: A project written by the code of commit 4b6f5a4 (schema version 1); see test_wave1_fixture.py.
WAVE1 = REPO / "tests" / "fixtures" / "wave1"


def _copy_of_wave1(folder: Path) -> Path:
    """The wave-1 database, copied: the fixture itself is never opened by the store."""
    folder.mkdir()
    for name in (DB_NAME, f"{DB_NAME}-wal"):
        if (WAVE1 / name).is_file():
            shutil.copyfile(WAVE1 / name, folder / name)
    return folder


def test_create_makes_folder_database_and_subfolders(tmp_path):
    project = Project.create(tmp_path / "new" / "p")
    assert project.folder == tmp_path / "new" / "p"
    assert project.db_path == project.folder / DB_NAME
    assert project.db_path.is_file()
    assert project.models_dir == project.folder / "models" and project.models_dir.is_dir()
    assert project.outputs_dir == project.folder / "outputs" and project.outputs_dir.is_dir()
    assert project.schema_version == SCHEMA_VERSION == 5
    with closing(sqlite3.connect(project.db_path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"images", "classes", "annotations", "runs", "epochs", "predictions",
                      "masks", "settings", "image_removals"}


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
    with pytest.raises(InputError, match=r"project database .*project.sqlite is damaged \(file is "
                                         r"not a database\): restore project.sqlite"):
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


def test_an_old_database_migrates_and_opens(tmp_path):
    before = (WAVE1 / DB_NAME).read_bytes()
    folder = _copy_of_wave1(tmp_path / "old")
    with closing(sqlite3.connect(folder / DB_NAME)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        columns = [row[1] for row in conn.execute("PRAGMA table_info(runs)")]
        assert "cancel_requested" not in columns
        # a run cancelled the old way: the flag sat in the summary JSON
        conn.execute("""UPDATE runs SET status = 'running', summary = '{"finished": 2, '
                        || '"cancel_requested": true, "cancel_requested_at": "2026-01-01"}'
                        WHERE id = 3""")
        conn.commit()
    project = Project.open(folder)
    assert project.schema_version == SCHEMA_VERSION
    runs = project.runs()
    assert runs["id"].tolist() == [1, 2, 3]
    assert runs["cancel_requested"].tolist() == [False, False, True]
    assert project.run(1)["config"]["source"] == {"kind": "project"}  # an old source dict
    assert project.run(1)["summary"]["best_epoch"] == 2
    assert project.cancel_requested(3) and not project.cancel_requested(1)
    assert len(project.labels()) == 36
    # the migrated project works like a new one
    run_id = project.create_run("train", {})
    assert project.request_cancel(run_id) and project.cancel_requested(run_id)
    assert Project.open(folder).schema_version == SCHEMA_VERSION  # opening again: no change
    assert (WAVE1 / DB_NAME).read_bytes() == before


def test_close_leaves_a_self_contained_database_file(project, tmp_path):
    project.annotate("A01.png", 5, "live")
    assert (project.folder / "project.sqlite-wal").exists()  # kept open between calls
    project.close()
    assert not (project.folder / "project.sqlite-wal").exists()
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / DB_NAME).write_bytes(project.db_path.read_bytes())
    assert current_labels(Project.open(copy)) == [("A01.png", 5, "live")]
    assert current_labels(project) == [("A01.png", 5, "live")]  # usable after close


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
