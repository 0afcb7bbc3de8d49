"""Long work (training, batch prediction) in a worker process that reports to the project store.

The app never trains in its own process: a thread of the Streamlit server slows every click
(FIELD-NOTES), so :func:`submit_training` (and :func:`submit_prediction`) starts a worker, a
fresh ``python`` process, and returns a run id at once. The worker writes everything to the
store (status, pid, device, one row per epoch, heartbeat, the model folder, the error) and the
page polls the store; the store, not the process object, is the truth, so a reloaded page or
another user sees the same job.

Modules: :mod:`~svetlana_core.jobs.submit` is the API the app calls (submit, status, wait,
cancel, reap, shutdown); :mod:`~svetlana_core.jobs.worker` is the process (heartbeat, device
lock, cancel flag, final status); :mod:`~svetlana_core.jobs.tasks` is what a worker runs;
:mod:`~svetlana_core.jobs.sources` the typed data sources (:class:`ProjectSource`,
:class:`FoldersSource`, :class:`FolderSource`) and the dicts a run's config stores.

Life of a run (``runs.status``)::

    queued --(device lock acquired)--> running --> done | stopped | failed
    queued --(cancelled while waiting)--> stopped
    queued | running --(worker gone, reap_dead_jobs)--> failed "worker died"

One queue per device
--------------------
Two trainings on one GPU (or on the two cores of a small server) are slower together than one
after the other, and can run out of memory. A worker therefore takes an exclusive
``fcntl.flock`` on ``<lock dir>/<device>.lock`` before it starts, and holds it until its final
status is written. The lock dir is ``$SVETLANA_LOCK_DIR``, by default
``<system temp dir>/svetlana-locks``: one folder for the whole machine, so jobs of *different
projects* on one GPU queue too. The kernel drops the lock when the process dies, so a crashed
worker never blocks the queue. Locks are per machine (POSIX only). Waiting workers poll the
lock, so with several waiting the first to find the device free takes it, not necessarily the
first submitted; a worker cancelled while waiting never starts, even when the device frees
at the same moment.

Cancelling
----------
:func:`request_cancel` sets the run's ``cancel_requested`` column, in a statement of its own
that no progress write of the worker touches (it used to live in the summary JSON, where a
cancel landing between the worker's read and write of the summary was lost). The worker polls
the column at most every :data:`POLL_S` seconds between batches, so training stops within one
batch, saves the best weights so far and ends ``stopped``. ``SIGTERM`` and ``SIGINT`` do the
same. Marking a dead worker's run failed is conditional in the same way
(:meth:`svetlana_core.store.Project.fail_run`).

Exit of the submitting process
------------------------------
:func:`shutdown_workers` is registered with :mod:`atexit`: it sends ``SIGTERM`` to the workers
this process started (they stop and save), waits for them, and kills what is left; a worker
is never left running without the process that watches it.

No torch here at import time: the worker imports :mod:`svetlana_core.training` itself.
"""

from svetlana_core.jobs.sources import FolderSource, FoldersSource, PREDICT_SOURCE_KINDS, PredictionSource, ProjectSource, SOURCE_KINDS, Source, TrainingSource, prediction_source, source_from_dict, training_source
from svetlana_core.jobs.worker import HEARTBEAT_S, LOCK_DIR_ENV, POLL_S, lock_dir
from svetlana_core.jobs.submit import CONFIG_PATHS, FINAL_STATUSES, JOB_KINDS, STALE_AFTER_S, config_paths_inside_roots, job_status, reap_dead_jobs, request_cancel, shutdown_workers, submit_prediction, submit_sweep, submit_training, wait

__all__ = [
    'CONFIG_PATHS',
    'FINAL_STATUSES',
    'FolderSource',
    'FoldersSource',
    'HEARTBEAT_S',
    'JOB_KINDS',
    'LOCK_DIR_ENV',
    'POLL_S',
    'PREDICT_SOURCE_KINDS',
    'PredictionSource',
    'ProjectSource',
    'SOURCE_KINDS',
    'STALE_AFTER_S',
    'Source',
    'TrainingSource',
    'config_paths_inside_roots',
    'job_status',
    'lock_dir',
    'prediction_source',
    'reap_dead_jobs',
    'request_cancel',
    'shutdown_workers',
    'source_from_dict',
    'submit_prediction',
    'submit_sweep',
    'submit_training',
    'training_source',
    'wait',
]
