"""Jobs for the service: requests queued, run one at a time on a worker thread, cancellable.

A job runs `generate_take` with a progress callback that records the fraction and stage and raises
JobCancelled once the job is cancelled, so a cancel takes effect at the next progress report (the
encoder reports after every tile). Every failure is recorded on the job — the service stays up.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from baton_core.request import ConductRequest
from .engine import generate_take
from baton_core.errors import BatonError
from baton_core.take import Take

log = logging.getLogger("baton.jobs")

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)


def _release_memory() -> None:
    """Hand the heap finished jobs freed back to the system (glibc keeps it otherwise), so a
    long-lived, idle service's footprint stays that of one job, not of its largest day."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to do


class JobCancelled(BatonError):
    """Raised inside a running job when it has been cancelled."""


class QueueFull(BatonError):
    """The service already holds as many jobs as it may queue."""


@dataclass
class Job:
    request: dict
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    state: str = QUEUED
    progress: float = 0.0
    stage: str = "queued"
    error: str | None = None
    take: Take | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    watchers: list = field(default_factory=list)  # called (from the job's thread) on every change

    def changed(self) -> None:
        for wake in list(self.watchers):
            wake()

    def summary(self) -> dict:
        return {"id": self.id, "state": self.state, "progress": round(self.progress, 4), "stage": self.stage,
                "error": self.error, "created": self.created, "started": self.started, "finished": self.finished}


class JobManager:
    """Holds jobs; `max_running` run at once, at most `max_queued` wait; finished ones are kept
    (newest `keep_finished`) so clients can fetch their results."""

    def __init__(self, max_running: int = 1, max_queued: int = 32, keep_finished: int = 64):
        self.max_running, self.max_queued, self.keep_finished = max_running, max_queued, keep_finished
        self._pool = ThreadPoolExecutor(max_running, thread_name_prefix="baton-job")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def submit(self, request: dict) -> Job:
        with self._lock:
            waiting = sum(j.state in (QUEUED, RUNNING) for j in self._jobs.values())
            if waiting >= self.max_running + self.max_queued:
                raise QueueFull(f"{waiting} jobs are queued or running (the limit is "
                                f"{self.max_running + self.max_queued}); try again later")
            job = Job(dict(request))
            self._jobs[job.id] = job
            self._prune()
        self._pool.submit(self._run, job)
        log.info("job %s queued: %s", job.id, request)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def counts(self) -> dict:
        with self._lock:
            states = [j.state for j in self._jobs.values()]
        return {s: states.count(s) for s in (QUEUED, RUNNING, DONE, FAILED, CANCELLED)}

    def cancel(self, job_id: str) -> Job | None:
        job = self.get(job_id)
        if job is not None and job.state not in FINISHED:
            job.cancel_requested.set()
            if job.state == QUEUED:
                self._finish(job, CANCELLED, "cancelled before it started")
        return job

    def shutdown(self) -> None:
        """Cancel everything and wait for the running job to stop at its next progress report."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            self.cancel(job.id)
        self._pool.shutdown(wait=True)

    def _run(self, job: Job) -> None:
        if job.state != QUEUED:
            return  # cancelled while it waited

        def progress(fraction: float, stage: str) -> None:
            if job.cancel_requested.is_set():
                raise JobCancelled("cancelled")
            job.progress, job.stage = fraction, stage
            job.changed()

        job.state, job.stage, job.started = RUNNING, "starting", time.time()
        job.changed()
        try:
            take = generate_take(ConductRequest.from_dict(job.request), progress)
        except JobCancelled:
            self._finish(job, CANCELLED, "cancelled while running")
        except BatonError as e:
            self._finish(job, FAILED, str(e))
        except Exception as e:  # a bug must not take the service down with it
            log.exception("job %s crashed", job.id)
            self._finish(job, FAILED, f"internal error ({type(e).__name__}: {e})")
        else:
            job.take = take
            job.progress = 1.0
            self._finish(job, DONE, "done")
        finally:
            if self._idle():  # trimming costs the next job its page faults: only when none waits
                _release_memory()

    def _idle(self) -> bool:
        with self._lock:
            return not any(j.state in (QUEUED, RUNNING) for j in self._jobs.values())

    def _finish(self, job: Job, state: str, stage: str) -> None:
        job.state, job.stage, job.finished = state, stage, time.time()
        if state == FAILED:
            job.error = stage
        job.changed()
        log.info("job %s %s%s", job.id, state, f": {job.error}" if job.error else "")

    def _prune(self) -> None:
        finished = sorted((j for j in self._jobs.values() if j.state in FINISHED), key=lambda j: j.finished or 0)
        for job in finished[: max(0, len(finished) - self.keep_finished)]:
            del self._jobs[job.id]
