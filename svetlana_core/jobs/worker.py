"""The worker process: device lock, heartbeat, cancel flag, final status."""

from __future__ import annotations

import os
import signal
from svetlana_core.errors import InputError
from svetlana_core.store import Project, utc_now
from svetlana_core.jobs.control import _CancelFlag, _Heartbeat, _device_lock
from svetlana_core.jobs.tasks import _predict, _train_cnn, _train_rf
from svetlana_core import models

# --------------------------------------------------------------------------------------------
# the worker process
# --------------------------------------------------------------------------------------------











def _run_prediction_job(project_dir: str, run_id: int) -> None:
    """Entry point of a prediction worker process (spawned)."""
    _run_training_job(project_dir, run_id)


def _run_training_job(project_dir: str, run_id: int) -> None:
    """Entry point of the worker process (spawned): queue, work, record the outcome."""
    # Before torch is imported: idle OpenMP threads must sleep, not spin (see training.py).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    project = Project.open(project_dir)
    flag = _CancelFlag(project, run_id)
    # Stop gracefully (save the model, status "stopped") on SIGTERM from shutdown_workers and
    # on Ctrl-C, which a terminal sends to the whole process group.
    signal.signal(signal.SIGTERM, lambda *_: flag.set())
    signal.signal(signal.SIGINT, lambda *_: flag.set())
    with _Heartbeat(project, run_id):
        _run(project, run_id, flag)


def _run(project: Project, run_id: int, flag: _CancelFlag) -> None:
    try:
        spec = project.run(run_id)["config"]
        device = "cpu"
        kind = spec.get("kind", "cnn")
        if kind in ("cnn", "predict"):
            from svetlana_core import training

            # a bad config fails here, without queueing for the device
            name = spec.get("device", "auto") if kind == "predict" else \
                training.TrainConfig.from_dict(spec["config"]).device
            device = str(models.resolve_device(name))
    except BaseException as error:  # before the lock: record and leave
        _record_failure(project, run_id, error)
        return
    with _device_lock(device, flag) as acquired:
        if not acquired:
            project.update_run(run_id, status="stopped", finished_at=utc_now(),
                               error=None, device=device)
            return
        project.update_run(run_id, status="running", pid=os.getpid(), device=device,
                           started_at=utc_now(), heartbeat_at=utc_now())
        try:
            work = {"cnn": _train_cnn, "rf": _train_rf, "predict": _predict}[kind]
            outcome = work(project, run_id, spec, flag)
            summary = dict(project.run(run_id)["summary"] or {})
            summary.update(outcome["summary"])
            fields = {"model_dir": outcome["model_dir"]} if outcome["model_dir"] else {}
            project.update_run(run_id, status=outcome["status"], summary=summary,
                               error=outcome.get("error"), finished_at=utc_now(),
                               heartbeat_at=utc_now(), **fields)
        except BaseException as error:  # anything: the run must not stay "running"
            _record_failure(project, run_id, error)


def _record_failure(project: Project, run_id: int, error: BaseException) -> None:
    message = str(error) if isinstance(error, InputError) else \
        f"{type(error).__name__}: {error}"
    project.update_run(run_id, status="failed", error=message, finished_at=utc_now())
