"""svetlana_core.jobs.submit: the job API checks its arguments and the data roots, cancels,
and marks the runs of dead workers failed without overwriting a worker that finished."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from contextlib import contextmanager

import numpy as np
import pytest

import svetlana_core.jobs.submit as submit_api
from svetlana_core import jobs
from svetlana_core.errors import InputError
from svetlana_core.store import DATA_ROOT_ENV, Project, utc_now
from tests.builders import disk_mask, write_pair


@pytest.fixture
def started(monkeypatch) -> list[int]:
    """The runs the submit functions queued; no worker process is started for them."""
    runs: list[int] = []
    monkeypatch.setattr(submit_api, "_start_worker", lambda project, run_id, name: runs.append(run_id))
    return runs


def _pair(folder, stem):
    mask = disk_mask((16, 16), [(8, 8)], 3, [1])
    return write_pair(folder, stem, (mask * 100).astype(np.uint8), mask)


def test_submit_checks_its_arguments(project, fast):
    with pytest.raises(InputError, match=r"source kind 's3' is not valid; choose one of project"):
        jobs.submit_training(project.folder, fast, source={"kind": "s3"})
    with pytest.raises(InputError, match=r"folders source needs 'labels'"):
        jobs.submit_training(project.folder, fast, source={"kind": "folders", "masks": "m"})
    with pytest.raises(InputError, match=r"job kind 'svm' is not valid"):
        jobs.submit_training(project.folder, fast, kind="svm")
    with pytest.raises(InputError, match=r"out_name='../x' is not valid"):
        jobs.submit_training(project.folder, fast, out_name="../x")
    with pytest.raises(InputError, match=r"group_pattern '\(' is not a valid regular expression"):
        jobs.submit_training(project.folder, fast, source={"kind": "project",
                                                            "group_pattern": "("})
    assert project.runs().empty  # nothing was queued


def test_reap_dead_jobs_marks_vanished_workers(project):
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True)
    dead_pid = int(done.stdout)
    dead = project.create_run("train", {})
    project.update_run(dead, status="running", pid=dead_pid, started_at=utc_now(),
                       heartbeat_at=utc_now())
    silent = project.create_run("train", {})
    project.update_run(silent, status="running", pid=1, heartbeat_at="2000-01-01T00:00:00+00:00")
    finished = project.create_run("train", {})
    project.update_run(finished, status="done", pid=dead_pid)
    assert sorted(jobs.reap_dead_jobs(project.folder)) == [dead, silent]
    assert project.run(dead)["status"] == "failed" and project.run(dead)["error"] == "worker died"
    assert project.run(silent)["error"].startswith("worker died (no heartbeat for")
    assert project.run(finished)["status"] == "done"


def test_sources_are_dataclasses_or_their_dicts_and_stored_as_dicts(project, fast, started,
                                                                   tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
    folders = jobs.FoldersSource(None, tmp_path / "masks", tmp_path / "labels.csv",
                                 group_pattern=r"img(\d)")
    stored = {"kind": "folders", "images": None, "masks": str(tmp_path / "masks"),
              "labels": str(tmp_path / "labels.csv"), "axes": None, "group_pattern": r"img(\d)"}
    as_object = jobs.submit_training(project.folder, fast, source=folders)
    as_dict = jobs.submit_training(project.folder, fast, source={
        "kind": "folders", "masks": tmp_path / "masks", "labels": str(tmp_path / "labels.csv"),
        "group_pattern": r"img(\d)"})
    default = jobs.submit_training(project.folder, fast)
    assert project.run(as_object)["config"]["source"] == project.run(as_dict)["config"]["source"] \
        == stored
    assert project.run(default)["config"]["source"] == {"kind": "project", "images": None,
                                                        "group_pattern": None}
    chosen = jobs.submit_prediction(project.folder, "model", jobs.ProjectSource(["img0.tif"]),
                                    tmp_path / "out")
    folder = jobs.submit_prediction(project.folder, "model", {"kind": "folder",
                                                              "images": tmp_path}, tmp_path / "o")
    assert project.run(chosen)["config"]["source"]["images"] == ["img0.tif"]
    assert project.run(folder)["config"]["source"] == {"kind": "folder", "images": str(tmp_path),
                                                       "masks": None, "axes": None}
    assert started == [as_object, as_dict, default, chosen, folder]
    with pytest.raises(InputError, match=r"a training reads a ProjectSource or a FoldersSource, "
                                         r"got FolderSource"):
        jobs.submit_training(project.folder, fast, source=jobs.FolderSource(tmp_path))
    with pytest.raises(InputError, match=r"a training reads every labelled image of the project"):
        jobs.submit_training(project.folder, fast, source=jobs.ProjectSource(["img0.tif"]))
    with pytest.raises(InputError, match=r"prediction source kind 'folders' is not valid"):
        jobs.submit_prediction(project.folder, "model", folders, tmp_path / "out")
    with pytest.raises(InputError, match=r"folder source needs 'images' \(a folder\)"):
        jobs.submit_prediction(project.folder, "model", {"kind": "folder"}, tmp_path / "out")
    assert len(project.runs()) == 5  # the refused ones queued nothing


def test_folder_sources_outside_the_data_roots_are_refused(project, fast, started, tmp_path,
                                                          monkeypatch):
    lab, outside = tmp_path / "lab", tmp_path / "outside"
    _pair(lab / "clean", "A01")
    _pair(lab / "linked", "A01")
    image, mask = _pair(outside, "B02")
    (lab / "linked" / "B02.tif").symlink_to(image)
    (lab / "linked" / "B02_mask.tif").symlink_to(mask)
    (outside / "labels.csv").write_text("image,label,class\nA01.tif,1,bright\n")
    monkeypatch.setenv(DATA_ROOT_ENV, str(lab))

    with pytest.raises(InputError, match=rf"^images folder {outside} is outside the data roots"):
        jobs.submit_prediction(project.folder, "model", jobs.FolderSource(outside), tmp_path)
    with pytest.raises(InputError, match=r"^masks folder .*outside is outside the data roots"):
        jobs.submit_prediction(project.folder, "model",
                               {"kind": "folder", "images": lab / "clean", "masks": outside},
                               tmp_path)
    with pytest.raises(InputError, match=r"^file B02.tif is a link to .*outside/B02.tif, "
                                         r"outside the data roots"):
        jobs.submit_prediction(project.folder, "model", jobs.FolderSource(lab / "linked"),
                               tmp_path)
    with pytest.raises(InputError, match=r"^labels file .*labels.csv is outside the data roots"):
        jobs.submit_training(project.folder, fast, source=jobs.FoldersSource(
            lab / "clean", lab / "clean", outside / "labels.csv"))
    assert project.runs().empty and not started
    inside = jobs.submit_prediction(project.folder, "model", jobs.FolderSource(lab / "clean"),
                                    tmp_path)
    # the project's own images were checked when they were added; the project may be anywhere
    own = jobs.submit_training(project.folder, fast)
    monkeypatch.delenv(DATA_ROOT_ENV)  # no roots configured: scripts read any folder
    anywhere = jobs.submit_prediction(project.folder, "model", jobs.FolderSource(outside),
                                      tmp_path)
    assert started == [inside, own, anywhere]


def test_reaping_never_overwrites_a_worker_that_finished_meanwhile(project, monkeypatch):
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True)
    run_id = project.create_run("train", {})
    project.update_run(run_id, status="running", pid=int(done.stdout),
                       heartbeat_at="2000-01-01T00:00:00+00:00")
    write = Project._write
    finished = []

    @contextmanager
    def worker_commits_first(self):
        # The reaper has judged the worker dead; before its write takes the lock, the worker
        # (slow, not dead) commits its final status.
        if not finished:
            finished.append(True)
            self.update_run(run_id, status="done", finished_at=utc_now(), heartbeat_at=utc_now())
        with write(self) as conn:
            yield conn

    monkeypatch.setattr(Project, "_write", worker_commits_first)
    assert jobs.reap_dead_jobs(project.folder) == []
    monkeypatch.setattr(Project, "_write", write)
    assert finished == [True]
    record = project.run(run_id)
    assert record["status"] == "done" and record["error"] is None


@pytest.mark.parametrize(("key", "config", "what"), [
    ("continue_from", {"continue_from": "{outside}/model"}, "model folder to continue from"),
    ("arch_params.pretrained", {"arch": "resnet18",
                                "arch_params": {"pretrained": "{outside}/weights.pth"}},
     "pretrained weights file"),
    ("continue_from", {"continue_from": "{lab}/../outside/model"}, "model folder to continue from"),
])
def test_config_paths_outside_the_data_roots_are_refused_before_a_run(
        project, tmp_path, monkeypatch, key, config, what):
    """A JSON config typed on the Train page named any server path: the worker opened it, its
    errors told whether it existed, and pretrained handed it to torch.load (issue 10 item 2)."""
    lab, outside = tmp_path / "lab", tmp_path / "outside"
    (outside / "model").mkdir(parents=True)
    (outside / "weights.pth").write_bytes(b"not for you")
    lab.mkdir()
    monkeypatch.setenv(DATA_ROOT_ENV, str(lab))
    filled = json.loads(json.dumps(config).replace("{outside}", str(outside))
                        .replace("{lab}", str(lab)))
    before = len(project.runs())
    with pytest.raises(InputError, match=rf"^config key {re.escape(key)}: {what} \S+ is outside "
                                         r"the data roots"):
        jobs.submit_training(project.folder, filled)
    assert len(project.runs()) == before  # no run, no worker
    # The Train page checks the same before submitting, against the app's roots.
    from ui import train_form

    with pytest.raises(InputError, match=rf"^config key {re.escape(key)}: {what}"):
        train_form.validate({**filled, "epochs": 1})
    # Inside the roots, the key is left to the training's own checks.
    jobs.config_paths_inside_roots({"continue_from": str(lab / "model")})
