"""svetlana_core.jobs.tasks: what a worker runs, called in this process with a cancel flag."""

from __future__ import annotations

import pandas as pd
import pytest

from svetlana_core import jobs
from svetlana_core.errors import InputError
from svetlana_core.jobs.tasks import _predict, _train_rf
from svetlana_core.jobs.worker import _CancelFlag
from svetlana_core.store import Project
from tests.builders import cnn_model_folder


def test_random_forest_job_runs_in_the_worker_function(project):
    run_id = project.create_run("train-rf", {})
    spec = {"kind": "rf", "config": {"n_estimators": 20, "val_fraction": 0.34},
            "source": {"kind": "project", "group_pattern": r"img(\d)"}, "out_name": "rf"}
    outcome = _train_rf(project, run_id, spec, _CancelFlag(project, run_id))
    assert outcome["status"] == "done" and outcome["summary"]["macro_f1"] == 1.0
    assert outcome["summary"]["n_train"] + outcome["summary"]["n_val"] == 48

    from svetlana_core.baseline import load_baseline

    assert load_baseline(outcome["model_dir"]).classes == ("bright", "dark")
    bad = {**spec, "config": {"n_trees": 5}, "out_name": "rf2"}
    with pytest.raises(InputError, match="random-forest config: .*n_trees"):
        _train_rf(project, run_id, bad, _CancelFlag(project, run_id))


def test_prediction_job_writes_outputs_and_the_store(project, tmp_path):
    # random weights: what is tested is the job around predict_many, not the model
    model_dir = cnn_model_folder(tmp_path / "model", classes=["bright", "dark"])
    run_id = project.create_run("predict", {})
    spec = {"kind": "predict", "model_dir": str(model_dir), "out_dir": str(tmp_path / "out"),
            "source": {"kind": "project", "images": ["img0.tif", "img2.tif"]}, "device": "cpu"}
    outcome = _predict(project, run_id, spec, _CancelFlag(project, run_id))
    assert outcome["status"] == "done" and outcome["summary"]["done"] == ["img0.tif", "img2.tif"]
    assert outcome["summary"]["finished"] == outcome["summary"]["total"] == 2
    assert outcome["summary"]["engine"] == "ONNX Runtime (CPU)"  # no torch in the job
    assert project.run(run_id)["summary"]["finished"] == 2  # progress went to the store
    stored = project.predictions(str(model_dir), "img2.tif")
    assert len(stored) == 16 and set(stored["class"]) <= {"bright", "dark"}
    assert (tmp_path / "out" / "objects.csv").is_file()
    # "This image" again: the downloads (combined tables) keep the other image's rows.
    one = _predict(project, project.create_run("predict", {}),
                   {**spec, "force": True, "source": {"kind": "project", "images": ["img2.tif"]}},
                   _CancelFlag(project, run_id))
    assert one["summary"]["done"] == ["img2.tif"]
    combined = pd.read_csv(tmp_path / "out" / "objects.csv")
    assert sorted(combined["image"].unique()) == ["img0.tif", "img2.tif"]
    jobs.request_cancel(project.folder, run_id)
    stopped = _predict(project, run_id, {**spec, "force": True}, _CancelFlag(project, run_id))
    assert stopped["status"] == "stopped" and stopped["summary"]["finished"] == 1
    with pytest.raises(InputError, match=r"prediction source kind 'cloud' is not valid"):
        jobs.submit_prediction(project.folder, model_dir, {"kind": "cloud"}, tmp_path / "o")


def test_a_cancel_between_the_workers_read_and_write_of_its_progress_is_not_lost(
        project, tmp_path, monkeypatch):
    model_dir = cnn_model_folder(tmp_path / "model", classes=["bright", "dark"])
    run_id = project.create_run("predict", {})
    project.update_run(run_id, status="running")
    spec = {"kind": "predict", "model_dir": str(model_dir), "out_dir": str(tmp_path / "out"),
            "source": {"kind": "project"}, "device": "cpu"}
    write = Project.update_run
    cancelled = []

    def cancel_lands_before_the_write(self, run, **fields):
        # The worker has read its summary and is about to write its progress back.
        if "summary" in fields and not cancelled:
            cancelled.append(jobs.request_cancel(self.folder, run))
        write(self, run, **fields)

    monkeypatch.setattr(Project, "update_run", cancel_lands_before_the_write)
    outcome = _predict(project, run_id, spec, _CancelFlag(project, run_id))
    assert cancelled == [True]
    assert outcome["status"] == "stopped" and outcome["summary"]["finished"] == 1
    record = jobs.job_status(project.folder, run_id)
    assert record["cancel_requested"] and record["summary"]["finished"] == 1
