"""Storage failures (issue 10, item 8): a full disk, a file-size limit, a database locked by
another program, a damaged database, a read-only project. Each is one line (exit 2 in the
CLI, an InputError for the app), and nothing stored is changed or left half written.

The full disk and the read-only folder are real: a small tmpfs and a read-only bind mount
(they need the right to mount, which CI and these machines have as root; elsewhere those
tests skip and say so)."""

from __future__ import annotations

import contextlib
import json
import re
import resource
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from svetlana_core.cli import main
from svetlana_core.errors import StorageError
from svetlana_core.store import Project
from svetlana_core.store import connection as store_connection
from tests.builders import current_labels, disk_mask

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def _mounted(target: Path, *options: str, source: str = "tmpfs"):
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", *options, source, str(target)], capture_output=True,
                          text=True)
    if done.returncode:
        pytest.skip(f"cannot mount here ({done.stderr.strip()}): storage test skipped")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def _plate(folder: Path, n: int = 3) -> Path:
    folder.mkdir(parents=True)
    centres = [(r, c) for r in range(10, 120, 25) for c in range(10, 120, 25)]
    for k in range(n):
        mask = disk_mask((128, 128), centres, 8, range(1, len(centres) + 1))
        tifffile.imwrite(folder / f"A0{k + 1}.tif", (mask > 0).astype(np.uint8) * 200)
        tifffile.imwrite(folder / f"A0{k + 1}_mask.tif", mask)
    return folder


def _one_line(capsys, pattern: str) -> None:
    """stderr holds one error line matching ``pattern`` (besides one line per failed image)."""
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if not line.startswith("failed: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert re.search(pattern, lines[0]), lines[0]


def test_predict_on_a_full_disk_is_one_line_and_leaves_no_partial_file(tmp_path, capsys):
    from tests.predict.scenes import make_model_folder

    images = _plate(tmp_path / "images")
    model = make_model_folder(tmp_path / "cnn")
    with _mounted(tmp_path / "small", "-t", "tmpfs", "-o", "size=96k") as out:
        code = main(["predict", "--model", str(model), "--images", str(images), "--out",
                     str(out / "run"), "--quiet"])
        assert code == 2
        _one_line(capsys, r"error: cannot write \S+: no space left on the disk \(nothing "
                          r"was replaced; free some space and run again\)")
        leftovers = [p.name for p in out.rglob("*") if p.name.endswith(".tmp")]
        assert leftovers == []  # temporaries removed; every file there is whole


def test_a_file_size_limit_is_one_line(tmp_path):
    folder = _plate(tmp_path / "images", n=1)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))

    done = subprocess.run(
        [sys.executable, "-m", "svetlana_core", "objects", str(folder / "A01.tif"),
         str(folder / "A01_mask.tif"), "--out", str(tmp_path / "table.csv")],
        cwd=ROOT, preexec_fn=limit, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr == (f"error: cannot write {tmp_path / 'table.csv'}: the file is larger "
                           "than this process may write (ulimit -f) (nothing was replaced; "
                           "raise the limit or write elsewhere)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]


@pytest.fixture
def project(tmp_path):
    folder = _plate(tmp_path / "images", n=1)
    project = Project.create(tmp_path / "project")
    project.add_image(folder / "A01.tif", folder / "A01_mask.tif")
    project.add_class("live")
    project.add_class("dead")
    project.annotate("A01.tif", 1, "live", author="ann")
    return project


@contextlib.contextmanager
def _held_lock(path: Path, seconds: float):
    """Another program holds the database's write lock for ``seconds`` (in a thread)."""
    ready = threading.Event()

    def hold() -> None:
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        ready.set()
        time.sleep(seconds)
        other.execute("ROLLBACK")
        other.close()

    thread = threading.Thread(target=hold)
    thread.start()
    ready.wait()
    try:
        yield
    finally:
        thread.join()


def test_a_lock_held_past_the_bound_is_one_line_and_stores_nothing(project, monkeypatch):
    monkeypatch.setattr(store_connection, "LOCK_WAIT_S", 1.0)
    monkeypatch.setattr("svetlana_core.store.project.BUSY_TIMEOUT_S", 0.2)
    with _held_lock(project.db_path, 2.5):
        with pytest.raises(StorageError, match=r"project database \S+ is locked by another "
                                               r"program \(waited 1 s\); nothing was stored"):
            project.annotate("A01.tif", 2, "dead", author="ann")
    assert current_labels(project) == [("A01.tif", 1, "live")]


def test_a_lock_held_for_a_while_is_waited_for(project, monkeypatch):
    """A click's label is not lost because a colleague's import held the database 1.5 s
    (the busy timeout alone is shorter here), it is stored once the lock is free."""
    monkeypatch.setattr(store_connection, "LOCK_WAIT_S", 10.0)
    monkeypatch.setattr("svetlana_core.store.project.BUSY_TIMEOUT_S", 0.2)
    with _held_lock(project.db_path, 1.5):
        project.annotate("A01.tif", 2, "dead", author="ann")
    assert current_labels(project) == [("A01.tif", 1, "live"), ("A01.tif", 2, "dead")]


def test_a_damaged_database_is_one_line_in_the_cli(project, tmp_path, capsys):
    project.close()
    data = bytearray(project.db_path.read_bytes())
    # Keep the header page, scramble the pages after it: "database disk image is malformed".
    data[4096:] = bytes((b * 7 + 13) % 256 for b in range(len(data) - 4096))
    project.db_path.write_bytes(bytes(data))
    for wal in project.folder.glob("project.sqlite-*"):
        wal.unlink()
    before = project.db_path.read_bytes()
    code = main(["export-labels", str(project.folder), "--out", str(tmp_path / "labels.csv")])
    assert code == 2
    _one_line(capsys, r"error: project database \S+project.sqlite is damaged \(.*\): restore "
                      r"project.sqlite and its -wal file from a backup; nothing was changed")
    assert project.db_path.read_bytes() == before and not (tmp_path / "labels.csv").exists()


def test_a_read_only_project_is_read_and_refuses_writes_in_one_line(project, tmp_path):
    project.close()
    with _mounted(tmp_path / "ro", "--bind", source=str(project.folder)) as view:
        remount = subprocess.run(["mount", "-o", "remount,ro,bind", str(view)],
                                 capture_output=True, text=True)
        if remount.returncode:
            pytest.skip(f"cannot remount read-only: {remount.stderr.strip()}")
        shared = Project.open(view)  # used to fail: WAL needs to write its -shm file
        assert shared.read_only
        assert current_labels(shared) == [("A01.tif", 1, "live")]
        with pytest.raises(StorageError, match=r"project database \S+ is read-only for this "
                                               r"server: it can be read, nothing can be stored"):
            shared.annotate("A01.tif", 2, "dead", author="ann")
        labels = tmp_path / "labels.csv"
        assert main(["export-labels", str(view), "--out", str(labels)]) == 0
        assert pd.read_csv(labels)["class"].tolist() == ["live"]
        shared.close()
    assert current_labels(project) == [("A01.tif", 1, "live")]


def test_an_old_model_on_a_read_only_disk_is_predicted_with_torch_and_says_so(tmp_path):
    """A folder from before model.onnx on a read-only share: the one-time export cannot be
    written (the writer raises StorageError), so prediction takes torch, with one note."""
    from svetlana_core import models
    from tests.predict.scenes import make_model_folder

    folder = make_model_folder(tmp_path / "share" / "cnn")
    (folder / "model.onnx").unlink()
    meta = json.loads((folder / "model.json").read_text())
    del meta["onnx"]
    (folder / "model.json").write_text(json.dumps(meta))
    with _mounted(tmp_path / "ro", "--bind", source=str(tmp_path / "share")) as view:
        remount = subprocess.run(["mount", "-o", "remount,ro,bind", str(view)],
                                 capture_output=True, text=True)
        if remount.returncode:
            pytest.skip(f"cannot remount read-only: {remount.stderr.strip()}")
        notes = []
        model = models.load_predictor(view / "cnn", device="cpu", note=notes.append)
        assert isinstance(model, models.LoadedModel)
        assert len(notes) == 1 and notes[0].startswith(
            f"{view / 'cnn'} has no model.onnx and it cannot be written there (cannot write ")
        assert notes[0].endswith("predicting with torch, which is slower")
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "weights.safetensors"]
