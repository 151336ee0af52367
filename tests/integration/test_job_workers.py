"""Workers racing for the same jobs: every job runs once, every queue in order.

DESIGN.md: "job: ... safe with several worker processes (row claiming with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL)". docs/operations.md: "any number
of workers claim at the same time without waiting for each other or taking
the same job"; "a queue's jobs run strictly in the order they were enqueued,
one at a time".

Each worker has its own ``Database`` (engine and pool), as separate processes
would, and drains the same jobs at the same time.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter, defaultdict
from typing import Any

from eventyard.jobs.worker import Worker
from eventyard.services.jobs import JobRun, enqueue, list_jobs
from eventyard.settings import Settings
from eventyard.storage.database import Database
from tests.integration.helpers import NOW, new_account
from tests.integration.test_concurrency import run_together

JOBS = 200
WORKERS = 2
#: Every other job belongs to one of these queues; the rest have none.
QUEUES = 4


def test_two_workers_run_every_job_exactly_once_and_each_queue_in_order(
    database_url: str, store: Database
) -> None:
    account = new_account(store, "job-race")
    kind = f"test.{uuid.uuid4().hex[:12]}"
    queue_of: dict[str, str | None] = {}
    with store.unit_of_work() as uow:
        for i in range(JOBS):
            queue = f"{kind}-q{i % QUEUES}" if i % 2 == 0 else None
            job_id = enqueue(
                uow, account_id=account.id, kind=kind, payload={"i": i}, queue=queue, now=NOW
            )
            queue_of[job_id] = queue
        uow.commit()
    lock = threading.Lock()
    events: list[tuple[str, str]] = []  # ("start" | "end", job id), in the order they happened

    def handler(run: JobRun) -> dict[str, Any] | None:
        with lock:
            events.append(("start", run.job.id))
        with run.store.unit_of_work() as uow:
            run.complete_in(uow, {"worker": run.worker_id})
            # Before the commit: the next job of its queue cannot start earlier.
            with lock:
                events.append(("end", run.job.id))
            uow.commit()
        return None

    def all_ended() -> bool:
        with lock:
            return sum(1 for event, _ in events if event == "end") >= JOBS

    def drain(database: Database, index: int) -> int:
        settings = Settings(job_lease_seconds=60)
        worker = Worker(database, settings, {kind: handler}, worker_id=f"racer-{index}")
        ran = 0
        while not all_ended():
            if worker.run_once():
                ran += 1
            else:
                time.sleep(0.005)  # the others hold the due jobs; look again
        return ran

    ran = run_together(database_url, WORKERS, drain)

    assert sum(ran) == JOBS
    starts = Counter(job_id for event, job_id in events if event == "start")
    assert set(starts) == set(queue_of)
    assert [job_id for job_id, n in starts.items() if n > 1] == []
    stored = list_jobs(store, account, kind=kind, limit=1000)
    assert len(stored) == JOBS
    assert {(j.status, j.attempts) for j in stored} == {("completed", 1)}
    assert {j.result["worker"] for j in stored if j.result} <= {"racer-0", "racer-1"}
    by_queue: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for event, job_id in events:
        queue = queue_of[job_id]
        if queue is not None:
            by_queue[queue].append((event, job_id))
    for queue, sequence in by_queue.items():
        enqueued = sorted(job_id for job_id, q in queue_of.items() if q == queue)
        # One at a time (each start follows the previous job's end), in enqueue order.
        assert sequence == [(e, job_id) for job_id in enqueued for e in ("start", "end")], queue
