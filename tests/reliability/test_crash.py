"""SIGKILL under load: nothing acknowledged is lost, nothing is stored twice, queued work resumes.

Issue 9: "a real server on PostgreSQL and on SQLite under a steady load of
batches from several client tasks, killed with SIGKILL at random moments
several times, restarted; every request that got a 2xx is fully present
afterwards, none stored twice (clients retry unacknowledged batches with the
same ``Idempotency-Key``), and queued/async work resumes."
DESIGN.md: "Acknowledged means durable: a 2xx is sent only after the
transaction that stores the data (or the durable job that will) has
committed."

The kill moments come from a seeded random generator; the seed is printed
and ``EVENTYARD_CRASH_SEED=<seed>`` replays a run's kill schedule.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from eventyard.core.model import NewAccount
from eventyard.storage.database import Database
from eventyard.storage.migrate import upgrade_database
from tests.reliability.dialects import DIALECTS, DIALECTS_BY_NAME, Dialect, stored_markers
from tests.reliability.retrying_clients import (
    DialectLoad,
    Progress,
    RetryingClient,
    check_stored_once,
    queued,
    unfinished_jobs,
    wait_until_no_jobs_left,
)
from tests.support import create_account_at, free_port, running_server

KILLS = 3
CLIENTS_PER_DIALECT = 2
#: Server settings: no rate limit (the clients are the load), and short job
#: leases so that a job a killed server was running is taken over within seconds.
SERVER_ENV = {
    "EVENTYARD_RATE_LIMIT_PER_SECOND": "0",
    "EVENTYARD_JOB_LEASE_SECONDS": "2",
    "EVENTYARD_WORKER_POLL_SECONDS": "0.2",
}
#: Acknowledged batches each server life sees before it may be killed.
ACKNOWLEDGED_BEFORE_KILL = 10


@pytest.fixture
def database(empty_database: str) -> str:
    """A migrated database of the test's own, on each backend."""
    upgrade_database(empty_database)
    return empty_database


def test_acknowledged_batches_survive_sigkills_once_each_and_queued_work_resumes(
    database: str, tmp_path: Path
) -> None:
    """Clients of every dialect (and one of queued Ortto batches) send while the
    server is killed ``KILLS`` times and restarted on the same port.

    Afterwards the stored markers are exactly the acknowledged ones, each once;
    the queued batches pending at the kills are all stored by the restarted
    server's worker, each once.
    """
    seed = int(os.environ.get("EVENTYARD_CRASH_SEED", random.randrange(2**32)))
    print(f"\ncrash test seed: {seed} (EVENTYARD_CRASH_SEED={seed} replays it)")
    rng = random.Random(seed)
    started = time.monotonic()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    stop = threading.Event()
    progress = Progress()
    pending_at_kill: list[int] = []
    clients: list[RetryingClient] = []
    store = Database.from_url(database, pool_size=1)
    try:
        for life in range(KILLS + 1):
            log = tmp_path / f"server-{life}.log"
            with running_server(database, log, SERVER_ENV, port=port) as server:
                if life == 0:
                    clients = start_clients(database, base_url, stop, progress)
                    async_account = clients[-1].account.account.id
                if life == KILLS:
                    # The last life: more load, then the clients finish their batches
                    # in flight and the worker the queued batches.
                    progress.wait_for_more(ACKNOWLEDGED_BEFORE_KILL)
                    stop.set()
                    for client in clients:
                        client.join()
                    wait_until_no_jobs_left(store, async_account)
                    break
                # Some load in this life, then a random moment right after a queued
                # batch was acknowledged, so that the worker has work in hand.
                progress.wait_for_more(ACKNOWLEDGED_BEFORE_KILL)
                time.sleep(rng.uniform(0.2, 2.0))
                progress.wait_for_more(1, client="ortto-async")
                time.sleep(rng.uniform(0, 0.05))
                server.process.send_signal(signal.SIGKILL)
                server.process.wait(10)
                pending_at_kill.append(unfinished_jobs(store, async_account))
        unexpected = [f"{c.name}: {u}" for c in clients for u in c.unexpected]
        assert not unexpected, f"seed {seed}: {unexpected[:5]}"
        requests, markers = check_stored_once(store, clients)
    finally:
        stop.set()
        store.dispose()
    # The async work was really interrupted: a kill found queued batches unfinished.
    assert sum(pending_at_kill) > 0, f"seed {seed}: no queued batch was pending at any kill"
    answers = [a for c in clients for a in c.answers]
    print(
        f"crash test: {KILLS} kills, {requests} acknowledged requests, {markers} markers "
        f"stored once each, {sum(c.retries for c in clients)} retries "
        f"({sum(a.replayed for a in answers)} answered as replays), "
        f"{sum(a.status is None for a in answers)} connection failures, "
        f"{sum(a.status == 503 for a in answers)} 503s, queued batches unfinished at "
        f"the kills: {pending_at_kill}, {time.monotonic() - started:.1f} s"
    )


def start_clients(
    database: str, base_url: str, stop: threading.Event, progress: Progress
) -> list[RetryingClient]:
    """The clients of every dialect, then one of queued Ortto batches (last), all started."""
    load = DialectLoad.prepare(
        database, base_url, stop, per_dialect=CLIENTS_PER_DIALECT, on_acknowledged=progress.note
    )
    ortto = DIALECTS_BY_NAME["ortto"]
    account = create_account_at(database, "crash-ortto-async")
    with httpx.Client(base_url=base_url, timeout=30) as http:
        ortto.prepare(http, account)
    async_client = RetryingClient(
        base_url, ortto, account, "ortto-async", stop, shape=queued, on_acknowledged=progress.note
    )
    clients = [*load.clients, async_client]
    for client in clients:
        client.start()
    return clients


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_every_dialect_replays_a_retry_with_the_same_idempotency_key(
    dialect: Dialect, http: httpx.Client, account: NewAccount, store: Database
) -> None:
    """What the crash test's retries rely on, per dialect: the same batch sent
    again with the same ``Idempotency-Key`` is answered as before with
    ``Idempotent-Replayed: true`` and stores nothing more (Segment's
    ``messageId`` dedup alone would not say it was a replay)."""
    dialect.prepare(http, account)
    marks = [f"replay-{i % 2}#{uuid.uuid4().hex[:8]}" for i in range(min(dialect.batch_size, 3))]
    request = dialect.batch(account, marks)
    key = uuid.uuid4().hex
    first = request.send(http, **{"Idempotency-Key": key})
    assert dialect.accepted(first), first.text
    assert "idempotent-replayed" not in first.headers
    again = request.send(http, **{"Idempotency-Key": key})
    assert dialect.accepted(again), again.text
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.content == first.content
    assert sorted(stored_markers(store, account.account.id, dialect)) == sorted(marks)
