"""svetlana_core.store.runs: runs, epochs, cancel requests and failing a dead worker's run."""

from __future__ import annotations

import pandas as pd
import pytest

from svetlana_core.errors import InputError


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


def test_a_cancel_between_a_workers_read_and_write_of_the_summary_is_kept(project):
    run_id = project.create_run("predict", {})
    project.update_run(run_id, status="running", summary={"finished": 1})
    seen = project.run(run_id)["summary"]  # the worker reads its summary ...
    assert project.request_cancel(run_id)  # ... a cancel lands ...
    project.update_run(run_id, summary={**seen, "finished": 2})  # ... the worker writes it back
    record = project.run(run_id)
    assert record["cancel_requested"] is True and project.cancel_requested(run_id)
    assert record["summary"] == {"finished": 2}
    assert project.runs()["cancel_requested"].tolist() == [True]
    with pytest.raises(InputError, match=r"update_run got unknown field.s. cancel_requested"):
        project.update_run(run_id, cancel_requested=False)


def test_request_cancel_of_a_run_that_ended_writes_nothing(project):
    run_id = project.create_run("train", {})
    assert not project.cancel_requested(run_id)
    project.update_run(run_id, status="done")
    assert not project.request_cancel(run_id)
    assert not project.cancel_requested(run_id)
    with pytest.raises(InputError, match="no run with id 99 in project"):
        project.request_cancel(99)
    with pytest.raises(InputError, match="no run with id 99 in project"):
        project.cancel_requested(99)


def test_fail_run_applies_only_while_the_run_is_silent_and_unfinished(project):
    beat = "2026-01-01T00:00:00.000000+00:00"
    silent = project.create_run("train", {})
    project.update_run(silent, status="running", heartbeat_at=beat, model_dir="models/m")
    assert project.fail_run(silent, "worker died", heartbeat_at=beat)
    record = project.run(silent)
    assert (record["status"], record["error"], record["model_dir"]) == (
        "failed", "worker died", "models/m")
    assert record["finished_at"] is not None
    # its worker beat after the caller read the run: alive after all
    beating = project.create_run("train", {})
    project.update_run(beating, status="running", heartbeat_at=beat)
    project.update_run(beating, heartbeat_at="2026-01-01T00:00:02.000000+00:00")
    assert not project.fail_run(beating, "worker died", heartbeat_at=beat)
    assert project.run(beating)["status"] == "running"
    # its worker wrote its final status meanwhile
    finished = project.create_run("train", {})
    project.update_run(finished, status="done", heartbeat_at=beat, finished_at=beat)
    assert not project.fail_run(finished, "worker died", heartbeat_at=beat)
    assert project.run(finished)["status"] == "done" and project.run(finished)["error"] is None
    # a queued run that never beat: heartbeat None matches NULL
    queued = project.create_run("train", {})
    assert project.fail_run(queued, "worker died", heartbeat_at=None)
    assert project.run(queued)["status"] == "failed"
    with pytest.raises(InputError, match="no run with id 99 in project"):
        project.fail_run(99, "x", heartbeat_at=None)
