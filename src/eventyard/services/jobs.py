"""Durable jobs: enqueue them with other writes, read them, and what a handler is handed.

A job is enqueued inside the caller's unit of work, so it commits (or rolls
back) together with whatever else that transaction writes; callers
acknowledge only after the commit. Workers (``eventyard.jobs``) claim jobs,
run their handler with a :class:`JobRun`, and settle them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from eventyard.core.errors import EventyardError, NotFound
from eventyard.core.ids import is_id, new_id
from eventyard.core.model import Account, Job
from eventyard.services.pacing import Foreground
from eventyard.services.ports import Store, UnitOfWork
from eventyard.settings import Settings

MAX_PAGE_SIZE = 1000
#: The longest wait between two attempts of a failing job.
MAX_RETRY_DELAY = timedelta(hours=1)
#: The ``error`` column's length; longer messages are cut.
MAX_ERROR_LENGTH = 2000


class JobFailed(Exception):
    """Raised by a handler: the job cannot succeed, do not retry it.

    The job is marked failed with this message as its error. Any other
    exception (``StoreUnavailable`` included) is retried with backoff.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class LeaseLost(Exception):
    """The job's lease went to another worker (this one was presumed dead)."""


def enqueue(
    uow: UnitOfWork,
    *,
    account_id: str | None,
    kind: str,
    payload: dict[str, Any],
    queue: str | None = None,
    run_after: datetime | None = None,
    max_attempts: int = 5,
    now: datetime,
) -> str:
    """Add a job in ``uow`` (the caller commits) and return its id.

    Jobs of one ``queue`` run one at a time, in the order they were enqueued;
    jobs without a queue run as soon as a worker is free. ``run_after``
    delays the first attempt; a failing job is tried ``max_attempts`` times
    in all.
    """
    if not kind or len(kind) > 64:
        raise ValueError("a job kind is 1 to 64 characters")
    if queue is not None and not 0 < len(queue) <= 128:
        raise ValueError("a job queue is 1 to 128 characters")
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    job_id = new_id()
    uow.jobs.add(
        [
            {
                "id": job_id,
                "account_id": account_id,
                "kind": kind,
                "queue": queue,
                "status": "queued",
                "payload": payload,
                "progress": {},
                "result": None,
                "error": None,
                "attempts": 0,
                "max_attempts": max_attempts,
                "run_after": run_after or now,
                "lease_owner": None,
                "lease_expires_at": None,
                "created_at": now,
                "started_at": None,
                "finished_at": None,
                "updated_at": now,
            }
        ]
    )
    return job_id


def enqueue_job(
    store: Store,
    *,
    account: Account | None,
    kind: str,
    payload: dict[str, Any],
    queue: str | None = None,
    now: datetime,
) -> str:
    """Enqueue one job in a transaction of its own and return its id, once committed."""
    with store.unit_of_work() as uow:
        job_id = enqueue(
            uow,
            account_id=None if account is None else account.id,
            kind=kind,
            payload=payload,
            queue=queue,
            now=now,
        )
        uow.commit()
    return job_id


def get_job(store: Store, account: Account | None, job_id: str) -> Job:
    """The job, or ``NotFound`` (also when it belongs to another account).

    ``account=None`` finds a job of any account, or of none: for operators
    (the CLI), never for an API caller.
    """
    job = None
    if is_id(job_id):
        with store.unit_of_work(write=False) as uow:
            job = uow.jobs.get(None if account is None else account.id, job_id)
    if job is None:
        raise NotFound("No such job")
    return job


def list_jobs(
    store: Store, account: Account | None, *, kind: str | None = None, limit: int = 50
) -> list[Job]:
    """The newest ``limit`` jobs of ``account`` (of every account for ``None``, operators)."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise EventyardError("invalid_limit", f"limit must be between 1 and {MAX_PAGE_SIZE}")
    with store.unit_of_work(write=False) as uow:
        return uow.jobs.list(None if account is None else account.id, kind=kind, limit=limit)


def claim_job(
    store: Store, worker_id: str, now: datetime, lease_seconds: float, kinds: list[str]
) -> Job | None:
    """Claim the oldest job of ``kinds`` that may run now, in a transaction of its own."""
    with store.unit_of_work() as uow:
        job = uow.jobs.claim(worker_id, now, lease_seconds, kinds)
        uow.commit()
    return job


def retry_delay(attempts: int, base_seconds: float) -> timedelta:
    """How long a job waits after its ``attempts``-th failed attempt: base * 2**attempts, capped."""
    # Exponents past 30 would overflow timedelta long after the cap applies.
    return min(timedelta(seconds=base_seconds * 2 ** min(attempts, 30)), MAX_RETRY_DELAY)


def error_text(exc: BaseException) -> str:
    """How an exception is kept as a job's error: its type and message, cut to fit."""
    message = exc.message if isinstance(exc, JobFailed) else f"{type(exc).__name__}: {exc}"
    return message[:MAX_ERROR_LENGTH]


@dataclass
class JobRun:
    """One attempt at a job, as its handler receives it.

    ``job`` is the job as claimed (``attempts`` counts this attempt).
    Handlers call :meth:`heartbeat` between transactions of a long job (it
    commits), and may mark the job completed inside their own last
    transaction with :meth:`complete_in`, so that their writes and the
    completion commit together, exactly once.
    """

    job: Job
    store: Store
    settings: Settings
    worker_id: str
    lease_seconds: float
    clock: Callable[[], datetime]
    #: The API's traffic in the worker's process (``None``: a worker of its own).
    foreground: Foreground | None = None
    #: Set by :meth:`complete_in`: the worker then leaves the job as it is.
    completed: bool = False
    #: Read replicas for reads that tolerate lag (exports); ``None``: ``store``.
    read_store: Store | None = None

    @property
    def reads(self) -> Store:
        """Where the job's lag-tolerant reads go: a read replica, or ``store``."""
        return self.store if self.read_store is None else self.read_store

    def now(self) -> datetime:
        return self.clock()

    def heartbeat(self, progress: dict[str, Any] | None = None) -> None:
        """Extend the lease and save ``progress`` (replacing the previous one), committed.

        Raises :class:`LeaseLost` when another worker took the job over: stop
        working on it. Do not call it while holding a unit of work of your own
        (on SQLite it would wait for your transaction's write lock).
        """
        with self.store.unit_of_work() as uow:
            ours = uow.jobs.heartbeat(
                self.job.id, self.worker_id, self.now(), self.lease_seconds, progress
            )
            uow.commit()
        if not ours:
            raise LeaseLost(f"job {self.job.id} is no longer worker {self.worker_id}'s")

    def complete_in(self, uow: UnitOfWork, result: dict[str, Any] | None = None) -> None:
        """Mark the job completed with ``result`` inside ``uow``, which the handler commits.

        Raises :class:`LeaseLost` if the job is no longer this worker's; let it
        propagate, so that ``uow`` rolls back and the writes it holds are left
        to the worker that took the job over.
        """
        if not uow.jobs.finish(self.job.id, self.worker_id, "completed", result, None, self.now()):
            raise LeaseLost(f"job {self.job.id} is no longer worker {self.worker_id}'s")
        self.completed = True


#: What a worker calls for a job of a given kind. It returns the job's result
#: (or calls :meth:`JobRun.complete_in` itself), raises :class:`JobFailed` to
#: fail for good, or raises anything else to be retried.
Handler = Callable[[JobRun], dict[str, Any] | None]
