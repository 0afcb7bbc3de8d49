"""Run the tasks of :func:`~svetlana_core.predict.predict_many` on a Dask cluster.

A task gets file paths, not arrays: the worker reads the image, writes the outputs into
``out_dir`` (which it must see) and sends back only the per-object table. Each worker loads a
model folder once and keeps it while its files do not change.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from svetlana_core.predict.task import _failed, _Outcome, _run_task, _Settings, _Task

if TYPE_CHECKING:
    from svetlana_core.models import LoadedModel
    from svetlana_core.models.inference import OnnxModel

# Worker-side cache: a Dask worker loads each model once, keyed by folder, file times and device.
_MODEL_CACHE: dict[tuple, OnnxModel | LoadedModel] = {}
_MODEL_CACHE_LOCK = threading.Lock()


def _cached_model(folder: str, device: str) -> OnnxModel | LoadedModel:
    from svetlana_core.predict.backends import load_for_prediction

    path = Path(folder).resolve()
    stamps = tuple(
        (p.name, p.stat().st_mtime_ns) for p in sorted(path.iterdir()) if p.is_file()
    )
    key = (str(path), stamps, str(device))
    with _MODEL_CACHE_LOCK:
        if key not in _MODEL_CACHE:
            for old in [k for k in _MODEL_CACHE if k[0] == key[0]]:
                del _MODEL_CACHE[old]
            _MODEL_CACHE[key] = load_for_prediction(path, device=device,
                                                      threads=_worker_threads())
        return _MODEL_CACHE[key]


def _worker_threads() -> int | None:
    """The Dask worker's own thread count, for ONNX Runtime: each worker process of a
    cluster gets its share of the cores instead of all of them (None outside a worker)."""
    try:
        from distributed import get_worker

        return int(get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        return None


def _run_on_worker(model_dir: str, device: str, task: _Task, settings: _Settings) -> _Outcome:
    """Dask task: load the model once per worker (cached), then :func:`_run_task`."""
    try:
        model = _cached_model(model_dir, device)
    except Exception as error:
        return _Outcome(task.name, message=f"loading model: {error}")
    return _run_task(model, task, settings)


def _run_on_cluster(
    client: Any, scheduler: str | None, model_dir: Path, device: str,
    tasks: list[_Task], settings: _Settings,
) -> Iterator[_Outcome]:
    """Submit one Dask task per image and yield the outcomes as they finish.

    Uses ``client``, or connects to ``scheduler`` (and closes that connection at the end).
    A task that could not run (a worker died) gives a failed outcome, not an exception.
    """
    from distributed import Client, as_completed

    own_client = None
    if client is None:
        client = own_client = Client(scheduler)
    try:
        futures = {
            client.submit(
                _run_on_worker, str(model_dir.resolve()), str(device), task, settings,
                key=f"svetlana-predict-{task.stem}-{uuid.uuid4().hex[:8]}", pure=False,
            ): task
            for task in tasks
        }
        for future in as_completed(futures):
            try:
                outcome = future.result()
            except Exception as error:  # a worker died or the task could not run
                outcome = _failed(futures[future].name, error)
            yield outcome
            future.release()
    finally:
        if own_client is not None:
            own_client.close()
