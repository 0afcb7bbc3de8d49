"""svetlana_core.jobs.worker: the worker process queues for its device, runs, and records the
end (done, stopped, failed), also when it is cancelled, killed or its parent exits."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from contextlib import closing
from pathlib import Path

import pytest

from svetlana_core import jobs
from svetlana_core.jobs.worker import _lock_name

ROOT = Path(__file__).resolve().parents[2]


def _wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_two_jobs_run_to_done_one_after_the_other(project, fast):
    first = jobs.submit_training(project.folder, fast, out_name="first", author="ana")
    second = jobs.submit_training(project.folder, {**fast, "epochs": 1})
    assert jobs.job_status(project.folder, first)["status"] in ("queued", "running")
    assert jobs.wait(project.folder, first, timeout=120) == "done"
    assert jobs.wait(project.folder, second, timeout=120) == "done"
    a, b = (jobs.job_status(project.folder, r) for r in (first, second))
    # one queue per device: whichever got the lock first finished before the other started
    earlier, later = sorted((a, b), key=lambda r: r["started_at"])
    assert later["started_at"] >= earlier["finished_at"]
    # and every epoch of the first lies inside its own run, before the second started
    with closing(sqlite3.connect(project.db_path)) as conn:
        span = {run: (first_epoch, last_epoch) for run, first_epoch, last_epoch in conn.execute(
            "SELECT run_id, MIN(created_at), MAX(created_at) FROM epochs GROUP BY run_id")}
    assert (earlier["started_at"] <= span[earlier["id"]][0] <= span[earlier["id"]][1]
            <= earlier["finished_at"] <= later["started_at"] <= span[later["id"]][0])
    assert a["device"] == "cpu" and a["author"] == "ana" and a["error"] is None
    assert a["epochs"] == 2 and b["epochs"] == 1
    assert a["model_dir"] == str(project.models_dir / "first")
    assert 0 <= a["summary"]["macro_f1"] <= 1 and "Best epoch" in a["summary"]["text"]
    epochs = project.epochs(first)
    assert list(epochs["epoch"]) == [1, 2] and "recall_bright" in epochs.columns

    from svetlana_core.models import load_model

    loaded = load_model(a["model_dir"])
    assert loaded.classes == ("bright", "dark") and len(loaded.meta["history"]) == 2


@pytest.mark.slow
def test_cancel_stops_with_a_usable_model(project, fast):
    run_id = jobs.submit_training(project.folder, {**fast, "epochs": 100000})
    assert _wait_for(lambda: jobs.job_status(project.folder, run_id)["epochs"] >= 1, 90)
    assert jobs.request_cancel(project.folder, run_id)
    assert jobs.wait(project.folder, run_id, timeout=60) == "stopped"
    record = jobs.job_status(project.folder, run_id)
    assert record["cancel_requested"] and record["summary"]["stop_reason"] == "stopped"
    assert not jobs.request_cancel(project.folder, run_id)  # already over

    from svetlana_core.models import load_model

    assert load_model(record["model_dir"]).classes == ("bright", "dark")


@pytest.mark.slow
def test_a_killed_training_worker_fails_and_keeps_its_best_model(project, fast):
    import os
    import signal

    from svetlana_core.models import load_model

    run_id = jobs.submit_training(project.folder, {**fast, "epochs": 100000}, out_name="killed")
    assert _wait_for(lambda: jobs.job_status(project.folder, run_id)["epochs"] >= 2, 90)
    record = jobs.job_status(project.folder, run_id)
    assert record["model_dir"] == str(project.models_dir / "killed")  # set at the 1st best epoch
    os.kill(record["pid"], signal.SIGKILL)  # no handler runs: as if the machine lost it
    assert jobs.wait(project.folder, run_id, timeout=30) == "failed"
    record = jobs.job_status(project.folder, run_id)
    kept = load_model(record["model_dir"])
    assert kept.classes == ("bright", "dark") and kept.meta["stop_reason"] == "in progress"
    best = kept.meta["best_epoch"]
    assert record["error"] == (f"worker died; the best model so far (epoch {best}) is kept in "
                               f"{record['model_dir']}")
    assert 1 <= best <= record["epochs"]
    # no temporary file or folder is left where the next training or a reader would see it
    assert sorted(p.name for p in project.models_dir.iterdir()) == ["killed"]
    assert sorted(p.name for p in Path(record["model_dir"]).iterdir()) == [
        "model.json", "model.onnx", "weights.safetensors"]
    # and the device queue is free: the next training runs to the end
    again = jobs.submit_training(project.folder, {**fast, "epochs": 1})
    assert jobs.wait(project.folder, again, timeout=120) == "done"


@pytest.mark.slow
def test_a_job_cancelled_while_queued_never_starts_when_the_device_frees(project, fast):
    import fcntl

    # this test holds the CPU's device lock, as another training would
    with open(jobs.lock_dir() / "cpu.lock", "a+") as busy:
        fcntl.flock(busy.fileno(), fcntl.LOCK_EX)
        run_id = jobs.submit_training(project.folder, fast)
        # queued: the worker is up (pid, heartbeat) and polling for the lock
        assert _wait_for(lambda: jobs.job_status(project.folder, run_id)["heartbeat_at"], 90)
        assert jobs.request_cancel(project.folder, run_id)
        fcntl.flock(busy.fileno(), fcntl.LOCK_UN)  # the device frees at once
    assert jobs.wait(project.folder, run_id, timeout=60) == "stopped"
    record = jobs.job_status(project.folder, run_id)
    assert record["epochs"] == 0 and record["started_at"] is None and not record["model_dir"]


@pytest.mark.slow
def test_bad_input_ends_failed_with_the_message(project, tmp_path, fast):
    (tmp_path / "labels.csv").write_text("image,label,class\nimg0.tif,1,dark\nmissing.tif,2,dark\n")
    source = {"kind": "folders", "images": str(project.folder), "masks": str(project.folder),
              "labels": str(tmp_path / "labels.csv")}
    missing = jobs.submit_training(project.folder, fast, source=source)
    bad_lr = jobs.submit_training(project.folder, {**fast, "lr": -1})
    assert jobs.wait(project.folder, missing, timeout=90) == "failed"
    assert jobs.wait(project.folder, bad_lr, timeout=90) == "failed"
    error = jobs.job_status(project.folder, missing)["error"]
    assert "names image(s) missing.tif that are not in" in error
    assert jobs.job_status(project.folder, bad_lr)["error"] == (
        "lr=-1 is not valid; give a number > 0")


def test_lock_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(jobs.LOCK_DIR_ENV, str(tmp_path / "shared-locks"))
    assert jobs.lock_dir() == tmp_path / "shared-locks" and jobs.lock_dir().is_dir()
    assert _lock_name("cuda") == "cuda0" and _lock_name("cuda:1") == "cuda1"


@pytest.mark.slow
def test_exiting_while_a_job_runs_does_not_abort(project, tmp_path, fast):
    config = {**fast, "epochs": 100000}
    # The script exits while one job is training (after its first epoch) and the other is
    # queued behind it. Which of the two takes the device first is up to the workers' start
    # (the lock is not first-come first-served), so the script waits for either.
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from svetlana_core import jobs
        folder = {str(project.folder)!r}
        runs = [jobs.submit_training(folder, {config!r}) for _ in range(2)]
        deadline = time.monotonic() + 240  # a worker's torch import is slow on a busy machine
        while time.monotonic() < deadline and not any(
                jobs.job_status(folder, r)["epochs"] >= 1 for r in runs):
            time.sleep(0.2)
        print(*runs)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=330)
    assert result.returncode == 0, result.stderr
    assert "terminate called" not in result.stderr
    records = [jobs.job_status(project.folder, int(r)) for r in result.stdout.split()[-2:]]
    training, queued = sorted(records, key=lambda r: r["epochs"], reverse=True)
    # SIGTERM from the exiting parent: the training stopped between batches and saved
    assert training["status"] == "stopped" and training["epochs"] >= 1, training
    from svetlana_core.models import load_model

    assert load_model(training["model_dir"]).classes == ("bright", "dark")
    # the queued one never started: it ends stopped, or failed if killed while starting up
    assert queued["epochs"] == 0 and queued["status"] in ("stopped", "failed"), queued
