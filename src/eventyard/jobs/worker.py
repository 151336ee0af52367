"""The job worker: claim a job, run its handler under a lease, settle it, repeat.

Several workers (threads, processes, hosts) may share one database: a claim
hands each job to one worker for ``EVENTYARD_JOB_LEASE_SECONDS``, and a
heartbeat thread extends the lease every third of that while the handler
runs. A worker that dies stops extending it; once it expires another worker
takes the job over (``attempts`` counts every claim).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from eventyard.core.errors import StoreUnavailable
from eventyard.core.model import Job, JobStatus
from eventyard.jobs.periodic import PeriodicJob
from eventyard.observability import Metrics
from eventyard.services.jobs import (
    Handler,
    JobFailed,
    JobRun,
    LeaseLost,
    claim_job,
    error_text,
    retry_delay,
)
from eventyard.services.pacing import Foreground
from eventyard.services.ports import Store
from eventyard.settings import Settings

log = logging.getLogger("eventyard.jobs")

#: What became of an attempt, as logged and counted: the job's new status,
#: ``retried`` (queued again for later) or ``lease_lost`` (another worker
#: took the job over, so this one's outcome was not recorded).
Outcome = str


def _utc_now() -> datetime:
    return datetime.now(UTC)


def default_worker_id() -> str:
    """``host:pid:random``: unique per worker, and says where it ran."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{secrets.token_hex(4)}"


class Worker:
    """Runs the jobs whose kind ``handlers`` knows, one at a time."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        handlers: Mapping[str, Handler],
        *,
        worker_id: str | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = _utc_now,
        periodic: Sequence[PeriodicJob] = (),
        foreground: Foreground | None = None,
        read_store: Store | None = None,
    ) -> None:
        self.store = store
        #: Where handlers' lag-tolerant reads go (exports); ``None``: ``store``.
        self.read_store = read_store
        #: The API's traffic in this process, which bulk jobs give way to.
        self.foreground = foreground
        self.settings = settings
        self.handlers = dict(handlers)
        self.kinds = sorted(self.handlers)
        self.worker_id = worker_id or default_worker_id()
        self.metrics = metrics
        self.clock = clock
        #: Jobs this worker enqueues when they are due (``jobs.periodic``).
        self.periodic = list(periodic)
        self._wakeup = threading.Event()

    def wake(self) -> None:
        """Look for jobs now instead of at the next poll (call it after committing a job)."""
        self._wakeup.set()

    def run_once(self) -> bool:
        """Claim and run at most one job; whether there was one.

        Raises only when the claim itself fails (``StoreUnavailable`` while
        the database is away); whatever the handler does is settled here.
        """
        job = claim_job(
            self.store, self.worker_id, self.clock(), self.settings.job_lease_seconds, self.kinds
        )
        if job is None:
            return False
        self._run(job)
        return True

    def run_forever(self, stop: threading.Event) -> None:
        """Run jobs until ``stop`` is set, then return once the current job is settled.

        An idle worker looks for jobs every ``EVENTYARD_WORKER_POLL_SECONDS``,
        or at once after :meth:`wake` (call it after setting ``stop``, too).
        """
        log.info("job worker started", extra={"worker_id": self.worker_id, "kinds": self.kinds})
        unavailable = False
        while not stop.is_set():
            self._enqueue_periodic()
            try:
                ran = self.run_once()
            except StoreUnavailable:
                # Said once per outage, not at every poll.
                if not unavailable:
                    log.warning("job worker cannot reach the database", extra=self._who())
                unavailable, ran = True, False
            except Exception:  # a bug: keep the worker alive, say so loudly
                log.exception("job worker could not claim a job", extra=self._who())
                ran = False
            else:
                if unavailable:
                    log.info("job worker reached the database again", extra=self._who())
                unavailable = False
            if ran:
                continue
            self._wakeup.wait(self.settings.worker_poll_seconds)
            self._wakeup.clear()
        log.info("job worker stopped", extra=self._who())

    def _enqueue_periodic(self) -> None:
        """Enqueue the periodic jobs that are due; a failure waits for their next turn."""
        for periodic in self.periodic:
            try:
                periodic.run_if_due(self.store, self.clock())
            except StoreUnavailable:
                pass  # the claim that follows says so
            except Exception:
                log.exception("periodic job not enqueued", extra={"kind": periodic.name})

    def _who(self) -> dict[str, Any]:
        return {"worker_id": self.worker_id}

    def _run(self, job: Job) -> None:
        fields: dict[str, Any] = {
            "job_id": job.id,
            "kind": job.kind,
            "attempt": job.attempts,
            **self._who(),
        }
        log.info("job started", extra=fields)
        started = time.perf_counter()
        run = JobRun(
            job=job,
            store=self.store,
            settings=self.settings,
            worker_id=self.worker_id,
            lease_seconds=self.settings.job_lease_seconds,
            clock=self.clock,
            foreground=self.foreground,
            read_store=self.read_store,
        )
        outcome: Outcome | None = None
        error: str | None = None
        try:
            if job.attempts > job.max_attempts:
                # Its last attempt ended with its worker gone (the lease ran
                # out): no attempt is left, and the job may be what kills workers.
                error = (
                    f"abandoned: the worker of its last attempt ({job.max_attempts} of "
                    f"{job.max_attempts}) stopped before finishing it"
                )
                outcome = self._finish(run, "failed", None, error)
            else:
                with self._heartbeats(run):
                    outcome, error = self._attempt(run, self.handlers[job.kind])
        except Exception:
            # Recording the outcome failed (the database went away): the job
            # stays running under its lease and is taken over when it expires.
            log.exception("job outcome not recorded; it runs again after its lease", extra=fields)
        if outcome is None:
            return
        fields.update(status=outcome, duration_ms=round((time.perf_counter() - started) * 1000, 2))
        if error is not None:
            fields["error"] = error
        log.log(
            logging.INFO if outcome == "completed" else logging.WARNING,
            "job finished",
            extra=fields,
        )
        if self.metrics is not None:
            self.metrics.count_job(job.kind, outcome)

    def _attempt(self, run: JobRun, handler: Handler) -> tuple[Outcome, str | None]:
        try:
            result = handler(run)
        except LeaseLost:
            return "lease_lost", None
        except JobFailed as exc:
            error = error_text(exc)
            return self._finish(run, "failed", None, error), error
        except Exception as exc:
            log.warning(
                "job attempt raised", exc_info=exc, extra={"job_id": run.job.id, **self._who()}
            )
            error = error_text(exc)
            return self._retry_or_fail(run, error), error
        if run.completed:
            return "completed", None
        return self._finish(run, "completed", result, None), None

    def _finish(
        self, run: JobRun, status: JobStatus, result: dict[str, Any] | None, error: str | None
    ) -> Outcome:
        with self.store.unit_of_work() as uow:
            ours = uow.jobs.finish(run.job.id, self.worker_id, status, result, error, self.clock())
            uow.commit()
        return status if ours else "lease_lost"

    def _retry_or_fail(self, run: JobRun, error: str) -> Outcome:
        job = run.job
        if job.attempts >= job.max_attempts:
            return self._finish(run, "failed", None, error)
        now = self.clock()
        run_after = now + retry_delay(job.attempts, self.settings.job_retry_base_seconds)
        with self.store.unit_of_work() as uow:
            ours = uow.jobs.release_for_retry(job.id, self.worker_id, run_after, error, now)
            uow.commit()
        return "retried" if ours else "lease_lost"

    @contextmanager
    def _heartbeats(self, run: JobRun) -> Iterator[None]:
        """Extend the lease every third of it while the block runs."""
        done = threading.Event()

        def beat() -> None:
            while not done.wait(run.lease_seconds / 3):
                try:
                    run.heartbeat()
                except LeaseLost:
                    return  # the attempt's own outcome says so, if it still matters
                except Exception:
                    log.warning("job heartbeat failed", exc_info=True, extra={"job_id": run.job.id})

        thread = threading.Thread(target=beat, name="eventyard-job-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()


class WorkerThread:
    """A :class:`Worker` running on a thread of its own, as each server process has one."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=worker.run_forever, args=(self._stop,), name="eventyard-job-worker", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Let the current job finish, then end the thread; returns when it has ended."""
        self._stop.set()
        self.worker.wake()
        if self._thread.ident is not None:
            self._thread.join()
