"""Durable jobs on both databases: claiming, queues, leases, retries, tenants.

DESIGN.md: "job: durable record of asynchronous work ... Survives restarts;
safe with several worker processes (row claiming with ``FOR UPDATE SKIP
LOCKED`` on PostgreSQL)". docs/operations.md, "Background jobs and workers",
is quoted test by test.

The clock is passed in, so leases expire and retries fall due without
waiting. Every test uses job kinds of its own: the session's database is
shared with servers whose workers claim the built-in kinds, never these.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from eventyard.core.errors import EventyardError, NotFound, StoreUnavailable
from eventyard.core.model import Job, NewAccount
from eventyard.jobs.maintenance import purge_idempotency_keys_job
from eventyard.jobs.worker import Worker, WorkerThread
from eventyard.services.ingest import IdempotencyRequest
from eventyard.services.jobs import (
    Handler,
    JobFailed,
    JobRun,
    LeaseLost,
    claim_job,
    enqueue,
    get_job,
    list_jobs,
)
from eventyard.settings import Settings
from eventyard.storage.database import Database
from eventyard.storage.tables import idempotency_keys
from tests.integration.helpers import NOW, activity, count, ingest, new_account

LEASE = 60
SETTINGS = Settings(job_lease_seconds=LEASE, job_retry_base_seconds=2)


def new_kind() -> str:
    return f"test.{uuid.uuid4().hex[:12]}"


def add(
    store: Database,
    kind: str,
    *,
    account_id: str | None = None,
    queue: str | None = None,
    run_after: datetime | None = None,
    max_attempts: int = 5,
    payload: dict[str, Any] | None = None,
) -> str:
    """Enqueue one job at ``NOW`` and commit it."""
    with store.unit_of_work() as uow:
        job_id = enqueue(
            uow,
            account_id=account_id,
            kind=kind,
            payload=payload or {},
            queue=queue,
            run_after=run_after,
            max_attempts=max_attempts,
            now=NOW,
        )
        uow.commit()
    return job_id


def claim(store: Database, worker: str, kind: str, at: datetime = NOW) -> Job | None:
    return claim_job(store, worker, at, LEASE, [kind])


def claimed_id(store: Database, worker: str, kind: str, at: datetime = NOW) -> str | None:
    job = claim(store, worker, kind, at)
    return None if job is None else job.id


def job(store: Database, job_id: str) -> Job:
    return get_job(store, None, job_id)


def finish(store: Database, job_id: str, worker: str, status: Any = "completed") -> bool:
    with store.unit_of_work() as uow:
        ours = uow.jobs.finish(job_id, worker, status, {"ok": True}, None, NOW)
        uow.commit()
    return ours


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Calls:
    """A handler's calls, in order."""

    runs: list[JobRun] = field(default_factory=list)

    def recording(self, body: Handler) -> Handler:
        def handler(run: JobRun) -> dict[str, Any] | None:
            self.runs.append(run)
            return body(run)

        return handler


def claimed_run(store: Database, kind: str, clock: Clock | None = None) -> JobRun:
    """A new job of ``kind``, claimed at ``NOW`` by worker-a, as its handler would get it."""
    add(store, kind)
    claimed = claim(store, "worker-a", kind)
    assert claimed is not None
    return JobRun(claimed, store, SETTINGS, "worker-a", LEASE, clock or Clock(NOW))


def enqueue_next_and_complete(store: Database, run: JobRun, next_kind: str) -> str:
    """What a handler that stores something does: write, and complete in the same transaction.

    Its write here is the next job of a chain; returns that job's id.
    """
    with store.unit_of_work() as uow:
        next_id = enqueue(uow, account_id=None, kind=next_kind, payload={}, now=NOW)
        run.complete_in(uow, {"next": next_id})
        uow.commit()
    return next_id


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Return once ``condition()`` holds; a generous bound, not a timing assertion."""
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.01)


def worker_for(
    store: Database, kind: str, handler: Handler, clock: Clock, name: str = "worker-a"
) -> Worker:
    return Worker(store, SETTINGS, {kind: handler}, worker_id=name, clock=clock)


def raising(exc: Exception) -> Handler:
    def handler(_run: JobRun) -> dict[str, Any] | None:
        raise exc

    return handler


class TestClaiming:
    def test_the_oldest_due_job_first_then_the_next_then_none(self, store: Database) -> None:
        """operations.md: "A worker claims the oldest job that may run"."""
        kind = new_kind()
        first, second = add(store, kind), add(store, kind)

        assert claimed_id(store, "w", kind) == first
        assert claimed_id(store, "w", kind) == second
        assert claim(store, "w", kind) is None

    def test_a_claim_marks_the_job_running_under_a_lease(self, store: Database) -> None:
        """operations.md: "The claim marks the job `running`, records the worker ... as
        the lease owner for `EVENTYARD_JOB_LEASE_SECONDS` ... and counts an attempt"."""
        kind = new_kind()
        job_id = add(store, kind)

        claim(store, "worker-a", kind)

        claimed = job(store, job_id)
        assert claimed.status == "running"
        assert claimed.lease_owner == "worker-a"
        assert claimed.lease_expires_at == NOW + timedelta(seconds=LEASE)
        assert claimed.attempts == 1
        assert claimed.started_at == NOW

    def test_a_job_due_later_is_not_claimed_before_its_time(self, store: Database) -> None:
        """operations.md: "queued and due (`run_after` has passed)"."""
        kind = new_kind()
        later = add(store, kind, run_after=NOW + timedelta(minutes=5))

        assert claim(store, "w", kind) is None
        assert claim(store, "w", kind, NOW + timedelta(minutes=4, seconds=59)) is None
        assert claimed_id(store, "w", kind, NOW + timedelta(minutes=5)) == later

    def test_only_the_kinds_the_worker_handles(self, store: Database) -> None:
        """operations.md: "A worker claims only the kinds it has a handler for"."""
        mine, other = new_kind(), new_kind()
        add(store, other)

        assert claim(store, "w", mine) is None
        assert claim_job(store, "w", NOW, LEASE, []) is None


class TestQueues:
    def test_a_queue_runs_one_job_at_a_time_in_order(self, store: Database) -> None:
        """operations.md: "A job of a queue is claimed only when no earlier job of that
        queue is still queued or running ... one at a time"; "Jobs without a queue ...
        run in parallel"."""
        kind, queue = new_kind(), f"q-{uuid.uuid4().hex[:8]}"
        q1 = add(store, kind, queue=queue)
        q2 = add(store, kind, queue=queue)
        free = add(store, kind)

        assert claimed_id(store, "w1", kind) == q1
        # q2 waits for the running q1; the job without a queue does not.
        assert claimed_id(store, "w2", kind) == free
        assert claim(store, "w2", kind) is None
        assert job(store, q2).status == "queued"

        assert finish(store, q1, "w1")
        assert claimed_id(store, "w2", kind) == q2

    @pytest.mark.parametrize("status", ["completed", "failed"])
    def test_a_settled_job_no_longer_holds_its_queue_back(
        self, store: Database, status: str
    ) -> None:
        """operations.md: "A completed or failed job no longer holds its queue back"."""
        kind, queue = new_kind(), f"q-{uuid.uuid4().hex[:8]}"
        q1 = add(store, kind, queue=queue)
        q2 = add(store, kind, queue=queue)
        claim(store, "w", kind)

        assert finish(store, q1, "w", status)

        assert claimed_id(store, "w", kind) == q2

    def test_a_job_waiting_for_its_retry_holds_its_queue_back(self, store: Database) -> None:
        """operations.md: "(one waiting for a retry included), so a queue's jobs run
        strictly in the order they were enqueued"."""
        kind, queue = new_kind(), f"q-{uuid.uuid4().hex[:8]}"
        q1 = add(store, kind, queue=queue)
        q2 = add(store, kind, queue=queue)
        claim(store, "w", kind)
        with store.unit_of_work() as uow:
            later = NOW + timedelta(minutes=1)
            assert uow.jobs.release_for_retry(q1, "w", later, "RuntimeError: boom", NOW)
            uow.commit()

        assert claim(store, "w", kind) is None
        assert claimed_id(store, "w", kind, NOW + timedelta(minutes=1)) == q1
        assert job(store, q2).status == "queued"

    def test_queues_do_not_wait_for_each_other(self, store: Database) -> None:
        kind = new_kind()
        x1 = add(store, kind, queue=f"x-{kind}")
        add(store, kind, queue=f"x-{kind}")
        y1 = add(store, kind, queue=f"y-{kind}")

        assert {claimed_id(store, "w", kind), claimed_id(store, "w", kind)} == {x1, y1}
        assert claim(store, "w", kind) is None


class TestLeases:
    def test_an_expired_lease_is_taken_over_and_counts_an_attempt(self, store: Database) -> None:
        """operations.md: "once it has expired another worker takes the job over and
        runs it again (`attempts` counts every claim)"."""
        kind = new_kind()
        job_id = add(store, kind)
        claim(store, "dead-worker", kind)

        assert claim(store, "worker-b", kind, NOW + timedelta(seconds=LEASE)) is None
        later = NOW + timedelta(seconds=LEASE + 1)
        taken = claim(store, "worker-b", kind, later)

        assert taken is not None
        assert taken.id == job_id
        assert taken.lease_owner == "worker-b"
        assert taken.attempts == 2
        assert taken.started_at == NOW  # the first attempt's start is kept
        assert taken.lease_expires_at == later + timedelta(seconds=LEASE)

    def test_a_worker_that_lost_its_lease_changes_nothing(self, store: Database) -> None:
        """operations.md: "A worker that lost its lease cannot record anything any more"."""
        kind = new_kind()
        job_id = add(store, kind)
        claim(store, "worker-a", kind)
        later = NOW + timedelta(seconds=LEASE + 1)
        claim(store, "worker-b", kind, later)
        before = job(store, job_id)

        with store.unit_of_work() as uow:
            assert not uow.jobs.finish(job_id, "worker-a", "completed", {"x": 1}, None, later)
            assert not uow.jobs.heartbeat(job_id, "worker-a", later, LEASE, {"done": 1})
            assert not uow.jobs.release_for_retry(job_id, "worker-a", later, "boom", later)
            uow.commit()

        assert job(store, job_id) == before
        assert before.status == "running"
        assert before.lease_owner == "worker-b"
        assert before.result is None

    def test_complete_in_rolls_back_the_handlers_writes_when_the_lease_was_lost(
        self, store: Database
    ) -> None:
        """Issue: "if the lease was lost it raises LeaseLost and the handler's transaction
        rolls back"."""
        kind, next_kind = new_kind(), new_kind()
        run = claimed_run(store, kind)
        job_id = run.job.id
        claim(store, "worker-b", kind, NOW + timedelta(seconds=LEASE + 1))

        with pytest.raises(LeaseLost):
            enqueue_next_and_complete(store, run, next_kind)

        assert claim(store, "w", next_kind) is None  # the handler's write is gone
        assert job(store, job_id).lease_owner == "worker-b"
        assert job(store, job_id).status == "running"
        assert not run.completed

    def test_complete_in_commits_the_handlers_writes_with_the_completion(
        self, store: Database
    ) -> None:
        """Issue: "activities stored by a queued-batch handler and the job's completion
        commit together"."""
        kind, next_kind = new_kind(), new_kind()
        run = claimed_run(store, kind)
        job_id = run.job.id

        next_id = enqueue_next_and_complete(store, run, next_kind)

        done = job(store, job_id)
        assert (done.status, done.lease_owner) == ("completed", None)
        assert done.result == {"next": next_id}
        assert done.finished_at == NOW
        assert claimed_id(store, "w", next_kind) == next_id

    def test_heartbeat_saves_progress_and_extends_the_lease(self, store: Database) -> None:
        kind = new_kind()
        clock = Clock(NOW + timedelta(seconds=50))
        run = claimed_run(store, kind, clock)

        run.heartbeat({"rows": 500})

        beating = job(store, run.job.id)
        assert beating.progress == {"rows": 500}
        assert beating.lease_expires_at == clock.now + timedelta(seconds=LEASE)
        # Not expired at the first lease's end any more, so nobody takes it over.
        assert claim(store, "worker-b", kind, NOW + timedelta(seconds=LEASE + 1)) is None

    def test_heartbeat_of_a_worker_that_lost_the_job_raises_lease_lost(
        self, store: Database
    ) -> None:
        kind = new_kind()
        run = claimed_run(store, kind)
        claim(store, "worker-b", kind, NOW + timedelta(seconds=LEASE + 1))

        with pytest.raises(LeaseLost):
            run.heartbeat({"rows": 1})
        assert job(store, run.job.id).progress == {}

    def test_a_job_whose_worker_died_on_its_last_attempt_is_abandoned(
        self, store: Database
    ) -> None:
        """operations.md: "A job whose worker died during its last attempt is failed
        as abandoned rather than run again"."""
        kind = new_kind()
        job_id = add(store, kind, max_attempts=1)
        claim(store, "dead-worker", kind)
        calls = Calls()
        clock = Clock(NOW + timedelta(seconds=LEASE + 1))

        assert worker_for(store, kind, calls.recording(lambda _run: {}), clock).run_once()

        abandoned = job(store, job_id)
        assert abandoned.status == "failed"
        assert abandoned.error is not None
        assert "abandoned" in abandoned.error
        assert calls.runs == []


class TestOutcomes:
    def test_a_returned_dict_is_the_result_of_the_completed_job(self, store: Database) -> None:
        """Issue: "A handler returning a dict without having called complete_in -> the
        worker finishes it completed with that dict as result"."""
        kind = new_kind()
        job_id = add(store, kind, payload={"n": 2})
        clock = Clock()
        worker = worker_for(store, kind, lambda run: {"doubled": run.job.payload["n"] * 2}, clock)

        assert worker.run_once()
        assert not worker.run_once()

        done = job(store, job_id)
        assert (done.status, done.result, done.error) == ("completed", {"doubled": 4}, None)
        assert (done.attempts, done.finished_at, done.lease_owner) == (1, NOW, None)

    def test_a_failing_job_is_retried_with_backoff_then_failed(self, store: Database) -> None:
        """operations.md: "the job is queued again to run no sooner than
        `EVENTYARD_JOB_RETRY_BASE_SECONDS` x 2^attempts later (4 s, 8 s, 16 s ...)";
        "After its last attempt ... it is `failed` with that error"."""
        kind = new_kind()
        job_id = add(store, kind, max_attempts=3)
        clock = Clock()
        calls = Calls()
        worker = worker_for(store, kind, calls.recording(raising(RuntimeError("boom"))), clock)

        assert worker.run_once()
        waiting = job(store, job_id)
        assert (waiting.status, waiting.attempts) == ("queued", 1)
        assert waiting.run_after == NOW + timedelta(seconds=4)
        assert waiting.error == "RuntimeError: boom"
        assert waiting.lease_owner is None

        clock.advance(3.9)
        assert not worker.run_once()
        clock.advance(0.1)
        assert worker.run_once()
        assert job(store, job_id).run_after == clock.now + timedelta(seconds=8)

        clock.advance(8)
        assert worker.run_once()
        failed = job(store, job_id)
        assert (failed.status, failed.attempts, failed.error) == ("failed", 3, "RuntimeError: boom")
        assert failed.finished_at == clock.now

        clock.advance(3600)
        assert not worker.run_once()
        assert len(calls.runs) == 3

    def test_an_unavailable_database_during_the_handler_is_retried(self, store: Database) -> None:
        """Issue: "`StoreUnavailable` or any other exception = retry with exponential backoff"."""
        kind = new_kind()
        job_id = add(store, kind)
        worker = worker_for(store, kind, raising(StoreUnavailable()), Clock())

        assert worker.run_once()

        waiting = job(store, job_id)
        assert waiting.status == "queued"
        assert waiting.error is not None
        assert "The database is unavailable" in waiting.error

    def test_job_failed_is_permanent(self, store: Database) -> None:
        """operations.md: "A handler that knows a job can never succeed ... fails it at
        once, without retries"."""
        kind = new_kind()
        job_id = add(store, kind)
        clock = Clock()
        worker = worker_for(store, kind, raising(JobFailed("account acme is gone")), clock)

        assert worker.run_once()
        clock.advance(86_400)
        assert not worker.run_once()

        failed = job(store, job_id)
        assert (failed.status, failed.attempts) == ("failed", 1)
        assert failed.error == "account acme is gone"

    def test_lease_lost_in_the_handler_leaves_the_job_to_its_new_owner(
        self, store: Database
    ) -> None:
        kind = new_kind()
        job_id = add(store, kind)

        def taken_over_meanwhile(run: JobRun) -> dict[str, Any]:
            claim(store, "worker-b", kind, NOW + timedelta(seconds=LEASE + 1))
            run.heartbeat()  # raises LeaseLost
            return {"not": "recorded"}

        assert worker_for(store, kind, taken_over_meanwhile, Clock()).run_once()

        still = job(store, job_id)
        assert (still.status, still.lease_owner, still.result) == ("running", "worker-b", None)


class TestMaintenanceJob:
    def test_purge_idempotency_keys_forgets_expired_keys(self, store: Database) -> None:
        """operations.md: "`maintenance.purge_idempotency_keys` | deletes expired
        `Idempotency-Key` records now" with result `{"purged": <keys deleted>}`."""
        account = new_account(store, "purge-job")
        ingest(
            store,
            account,
            [activity("viewed", email="purge@example.com")],
            IdempotencyRequest(key="k1", fingerprint="f", ttl_seconds=3600),
        )
        assert count(store, idempotency_keys, account) == 1
        kind = new_kind()  # the real handler under a kind no server here claims
        job_id = add(store, kind, payload={"ttl_seconds": 3600})
        worker = worker_for(
            store, kind, purge_idempotency_keys_job, Clock(NOW + timedelta(hours=2))
        )

        assert worker.run_once()

        done = job(store, job_id)
        assert done.status == "completed"
        assert done.result is not None
        assert done.result["purged"] >= 1
        assert count(store, idempotency_keys, account) == 0

    def test_a_bad_ttl_fails_the_job_for_good(self, store: Database) -> None:
        kind = new_kind()
        job_id = add(store, kind, payload={"ttl_seconds": "a day"})

        assert worker_for(store, kind, purge_idempotency_keys_job, Clock()).run_once()

        failed = job(store, job_id)
        assert failed.status == "failed"
        assert failed.error is not None
        assert "ttl_seconds" in failed.error


class TestTenants:
    def test_an_account_reads_its_own_jobs_only(self, store: Database, account: NewAccount) -> None:
        """DESIGN.md: "Tenants never see each other's data"."""
        other = new_account(store, "other-tenant")
        kind = new_kind()
        mine = add(store, kind, account_id=account.account.id)
        theirs = add(store, kind, account_id=other.id)

        assert get_job(store, account.account, mine).id == mine
        with pytest.raises(NotFound):
            get_job(store, account.account, theirs)
        with pytest.raises(NotFound):
            get_job(store, other, mine)
        assert [j.id for j in list_jobs(store, account.account, kind=kind)] == [mine]
        assert [j.id for j in list_jobs(store, other, kind=kind)] == [theirs]

    def test_list_is_newest_first_filtered_by_kind_and_limited(
        self, store: Database, account: NewAccount
    ) -> None:
        kind, other_kind = new_kind(), new_kind()
        owner = account.account
        ids = [add(store, kind, account_id=owner.id) for _ in range(3)]
        add(store, other_kind, account_id=owner.id)

        assert [j.id for j in list_jobs(store, owner, kind=kind)] == ids[::-1]
        assert [j.id for j in list_jobs(store, owner, kind=kind, limit=2)] == ids[:0:-1]
        assert len(list_jobs(store, owner)) == 4
        with pytest.raises(EventyardError) as caught:
            list_jobs(store, owner, limit=0)
        assert caught.value.code == "invalid_limit"

    @pytest.mark.parametrize("job_id", ["nope", "0" * 24, "../" * 8])
    def test_unknown_ids_are_not_found(self, store: Database, job_id: str) -> None:
        with pytest.raises(NotFound):
            get_job(store, None, job_id)


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"kind": ""}, "kind"),
        ({"kind": "k" * 65}, "kind"),
        ({"kind": "k", "queue": "q" * 129}, "queue"),
        ({"kind": "k", "max_attempts": 0}, "max_attempts"),
    ],
)
def test_enqueue_refuses_what_the_table_cannot_hold(
    store: Database, kwargs: dict[str, Any], word: str
) -> None:
    with pytest.raises(ValueError, match=word):
        add(store, **kwargs)


class TestWorkerLoop:
    def test_wake_runs_a_due_job_at_once_and_stop_ends_an_idle_worker(
        self, store: Database
    ) -> None:
        """Issue: "polls every `settings.worker_poll_seconds`, but wakes immediately when
        `wake()` is called". The poll is an hour and the job is not due at the worker's
        first look, so only wake() can make it run during the test."""
        kind = new_kind()
        job_id = add(store, kind, run_after=NOW)
        looks: list[datetime] = []

        def clock() -> datetime:
            looks.append(NOW if looks else NOW - timedelta(hours=1))
            return looks[-1]

        settings = Settings(worker_poll_seconds=3600, job_lease_seconds=LEASE)
        worker = Worker(store, settings, {kind: lambda _run: {"woken": True}}, clock=clock)
        thread = WorkerThread(worker)
        thread.start()
        try:
            worker.wake()
            wait_until(lambda: job(store, job_id).status == "completed", "the woken worker")
        finally:
            thread.stop()  # returns at once, although the next poll is an hour away
        assert job(store, job_id).result == {"woken": True}
        assert not thread.is_alive()
