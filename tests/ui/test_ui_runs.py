"""ui.runs: the runs table and the model choosers of the Train, Predict and Dashboard pages."""

import json

from svetlana_core.store import Project
from ui import runs


def test_runs_table_one_row_per_run_with_its_settings(tmp_path):
    project = Project.create(tmp_path / "p")
    train = project.create_run("train", {"kind": "cnn", "config": {
        "arch": "cnn", "arch_params": {"depth": 2}, "epochs": 3, "lr": 0.01}})
    project.update_run(train, status="done", started_at="2026-11-24T05:07:32.268000+00:00",
                       summary={"macro_f1": 0.75, "balanced_accuracy": 0.7})
    predict = project.create_run("predict", {"kind": "predict", "model_dir": "m"})
    project.update_run(predict, status="failed", error="worker died")
    table = runs.runs_table(project).set_index("run")
    assert table.loc[train, ["kind", "status", "arch", "params", "epochs", "lr", "macro_f1",
                             "started"]].tolist() == [
        "train", "done", "cnn", json.dumps({"depth": 2}), 3, 0.01, 0.75, "2026-11-24 05:07:32"]
    assert table.loc[predict, ["arch", "params", "started", "error"]].tolist() == [
        "", "", "", "worker died"]


def test_model_runs_offer_finished_models_and_checkpoints_of_failed_runs(tmp_path):
    project = Project.create(tmp_path / "p")
    made = []
    for status in ("done", "stopped", "failed", "running"):
        folder = project.models_dir / status
        folder.mkdir(parents=True)
        (folder / "model.json").write_text("{}")
        run = project.create_run("train", {})
        project.update_run(run, status=status, model_dir=str(folder))
        made.append(run)
    gone = project.create_run("train", {})  # its folder was deleted
    project.update_run(gone, status="done", model_dir=str(project.models_dir / "deleted"))
    offered = runs.model_runs(project)
    assert offered["id"].tolist() == made[2::-1]  # newest first; no running, no missing folder
    failed = offered.set_index("id").loc[made[2]]
    assert runs.model_label({**failed, "id": made[2]}).endswith("checkpoint of a failed run")


def test_the_train_page_lists_trainings_newest_first_not_predictions(tmp_path):
    project = Project.create(tmp_path / "p")
    cnn = project.create_run("train", {})
    project.create_run("predict", {"kind": "predict", "model_dir": "m"})
    forest = project.create_run("train-rf", {})
    project.update_run(forest, status="done")
    listed = runs.training_runs(project)
    assert listed["id"].tolist() == [forest, cnn]
    assert runs.run_label(listed)(forest) == f"run {forest} · train-rf (done)"
    assert runs.training_runs(Project.create(tmp_path / "empty")).empty


def test_model_runs_of_one_kind(tmp_path):
    project = Project.create(tmp_path / "p")
    for kind in ("train", "train-rf"):
        folder = project.models_dir / kind
        folder.mkdir(parents=True)
        (folder / "model.json").write_text("{}")
        run = project.create_run(kind, {})
        project.update_run(run, status="done", model_dir=str(folder))
    assert runs.model_runs(project, kind="train")["kind"].tolist() == ["train"]
    # no validation score on either: the newest finished training is the current model
    assert project.current_model() == str(project.models_dir / "train-rf")
