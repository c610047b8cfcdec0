"""Jobs for the service: requests queued, run `max_running` at a time on worker threads, cancellable
at once, their takes kept within a byte budget.

A cancel must take effect at any stage, not only when the engine next reports progress (decoding a
long MP3, hashing it or the rule-based plan run for seconds without a report). So a cancel raises
`JobInterrupted` inside the job's thread, at its next Python instruction (PyThreadState_SetAsyncExc),
while the job runs the engine and only then; the engine's own loops run in Python between short
native calls, so that is milliseconds away. It derives from BaseException, so no `except Exception`
in the engine can swallow it. The worker threads are daemons: a stop never waits on a job.

Every failure is recorded on the job — the service stays up.
"""

from __future__ import annotations

import ctypes
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from baton_core.errors import BatonError
from baton_core.request import MAX_SECONDS, ConductRequest
from baton_core.take import Take
from .engine import generate_take

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


class JobInterrupted(BaseException):
    """Raised inside a running job's thread when it is cancelled or the service stops."""


class QueueFull(BatonError):
    """The service already holds as many jobs as it may queue."""


def take_bytes(take: Take) -> int:
    return sum(a.nbytes for a in (take.keypoints_2d, take.keypoints_3d, take.beats) if a is not None)


@dataclass
class Job:
    request: dict
    check: Callable[[], None] | None = None  # run first in the worker: the file is still the one allowed
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    state: str = QUEUED
    progress: float = 0.0
    stage: str = "queued"
    error: str | None = None
    take: Take | None = None
    take_size: int = 0
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    watchers: list = field(default_factory=list)  # called (from any thread) on every change
    thread_id: int | None = None  # while it runs the engine and may be interrupted

    def changed(self) -> None:
        for wake in list(self.watchers):
            wake()

    def summary(self) -> dict:
        return {"id": self.id, "state": self.state, "progress": round(self.progress, 4), "stage": self.stage,
                "error": self.error, "created": self.created, "started": self.started, "finished": self.finished}


def _raise_in(thread_id: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc else None)


class JobManager:
    """Holds jobs; `max_running` run at once, at most `max_queued` wait. Finished jobs are kept
    (newest `keep_finished`) and their takes while they fit in `keep_bytes` (older takes are
    released first); `forget` drops a finished job and its take at once."""

    def __init__(self, max_running: int = 1, max_queued: int = 32, keep_finished: int = 64,
                 keep_bytes: int = 512 << 20, max_seconds: float = MAX_SECONDS):
        self.max_running, self.max_queued = max_running, max_queued
        self.keep_finished, self.keep_bytes, self.max_seconds = keep_finished, keep_bytes, max_seconds
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._workers = [threading.Thread(target=self._work, name=f"baton-job-{i}", daemon=True)
                         for i in range(max_running)]
        for w in self._workers:
            w.start()

    def submit(self, request: dict, check: Callable[[], None] | None = None) -> Job:
        with self._lock:
            waiting = sum(j.state in (QUEUED, RUNNING) for j in self._jobs.values())
            if waiting >= self.max_running + self.max_queued:
                raise QueueFull(f"{waiting} jobs are queued or running (the limit is "
                                f"{self.max_running + self.max_queued}); try again later")
            job = Job(dict(request), check)
            self._jobs[job.id] = job
            self._prune()
        self._queue.put(job)
        log.info("job %s queued: %s", job.id, {k: f"{len(v)} times" if isinstance(v, (list, tuple)) else v
                                                for k, v in request.items()})
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def counts(self) -> dict:
        with self._lock:
            states = [j.state for j in self._jobs.values()]
            held = sum(j.take_size for j in self._jobs.values())
        return {s: states.count(s) for s in (QUEUED, RUNNING, DONE, FAILED, CANCELLED)} | {"take_bytes": held}

    def cancel(self, job_id: str) -> Job | None:
        """Stop a queued or running job now; the job reads "cancelled" once its thread has let go."""
        job = self.get(job_id)
        if job is None or job.state in FINISHED:
            return job
        job.cancel_requested.set()
        with self._lock:
            if job.state == QUEUED:
                self._finish(job, CANCELLED, "cancelled before it started")
            elif job.thread_id is not None:
                _raise_in(job.thread_id, JobInterrupted)
        return job

    def forget(self, job_id: str) -> Job | None:
        """Drop a finished job and free its take."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None and job.state in FINISHED:
                del self._jobs[job_id]
                job.take, job.take_size = None, 0
        return job

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job waits or runs; whether that happened within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not any(j.state in (QUEUED, RUNNING) for j in self._jobs.values()):
                    return True
            time.sleep(0.01)
        return False

    def shutdown(self, timeout: float = 1.0) -> None:
        """Cancel everything and give the running jobs `timeout` s to let go (the workers are
        daemons: the process may exit without them)."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            self.cancel(job.id)
        for _ in self._workers:
            self._queue.put(None)
        if not self.wait_idle(timeout):
            log.warning("a job did not stop within %.1f s of the shutdown", timeout)

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                self._run(job)
            except BaseException:  # noqa: BLE001 — nothing may leave a job "running" or kill the worker
                log.exception("job %s: the worker failed", job.id)
                if job.state not in FINISHED:
                    self._finish(job, FAILED, "internal error in the job worker")

    def _run(self, job: Job) -> None:
        with self._lock:
            if job.state != QUEUED:
                return  # cancelled while it waited
            job.state, job.stage, job.started = RUNNING, "starting", time.time()
            job.thread_id = threading.get_ident()
        job.changed()

        def progress(fraction: float, stage: str) -> None:
            if job.cancel_requested.is_set():
                raise JobInterrupted()
            job.progress, job.stage = fraction, stage
            job.changed()

        take, state, stage = None, FAILED, "internal error"
        try:
            try:
                if job.check is not None:
                    job.check()
                take = generate_take(ConductRequest.from_dict(job.request), progress, max_seconds=self.max_seconds)
                state, stage = DONE, "done"
            finally:
                with self._lock:  # from here on no cancel can interrupt this thread
                    job.thread_id = None
                _raise_in(threading.get_ident(), None)  # one that was raised but not yet delivered
        except JobInterrupted:
            state, stage = CANCELLED, "cancelled while running"
        except BatonError as e:
            stage = str(e)
        except Exception as e:  # a bug must not take the service down with it
            log.exception("job %s crashed", job.id)
            stage = f"internal error ({type(e).__name__}: {e})"
        if job.cancel_requested.is_set() and state == DONE:
            state, stage, take = CANCELLED, "cancelled while running", None
        with self._lock:
            if take is not None:
                job.take, job.take_size, job.progress = take, take_bytes(take), 1.0
            self._finish(job, state, stage)
            self._prune()
            idle = not any(j.state in (QUEUED, RUNNING) for j in self._jobs.values())
        if idle:  # trimming costs the next job its page faults: only when none waits
            _release_memory()

    def _finish(self, job: Job, state: str, stage: str) -> None:
        job.state, job.stage, job.finished = state, stage, time.time()
        if state == FAILED:
            job.error = stage
        job.changed()
        log.info("job %s %s%s", job.id, state, f": {job.error}" if job.error else "")

    def _prune(self) -> None:
        """Within the lock: the oldest finished jobs beyond `keep_finished` go, and the oldest takes
        beyond `keep_bytes` are released (their jobs answer that the take is gone)."""
        finished = sorted((j for j in self._jobs.values() if j.state in FINISHED), key=lambda j: j.finished or 0)
        for job in finished[: max(0, len(finished) - self.keep_finished)]:
            del self._jobs[job.id]
        finished = [j for j in finished if j.id in self._jobs]
        held = sum(j.take_size for j in self._jobs.values())
        for job in finished[:-1]:  # the newest take is kept whatever its size: its client is waiting for it
            if held <= self.keep_bytes:
                break
            if job.take is not None:
                held -= job.take_size
                job.take, job.take_size = None, 0
                job.stage = "done; its take was released to keep the service's memory within its limit"
