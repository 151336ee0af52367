"""Group commit against a real server: concurrent single events, the group metric, a SIGKILL.

Issue 8: "Single-event requests: ... group commit: concurrent requests share
one transaction and one fsync, each answered only after that commit".
DESIGN.md: "Acknowledged means durable: a 2xx is sent only after the
transaction that stores the data ... has committed." docs/operations.md
(Metrics): ``eventyard_ingest_group_commit_requests`` shows how many
requests each commit carried.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from eventyard.core.model import NewAccount
from eventyard.storage.database import Database
from eventyard.storage.migrate import upgrade_database
from eventyard.storage.tables import activities
from tests.support import Server, create_account_at, running_server

PATH = "/v2/contactactivities"
THREADS = 50
PER_THREAD = 4


def post_activity(client: httpx.Client, account: NewAccount, marker: str) -> httpx.Response:
    """One Cordial activity whose ``properties.marker`` names it in the database."""
    return client.post(
        PATH,
        auth=(account.cordial_api_key, ""),
        json={"email": f"{marker}@example.com", "a": "browse", "properties": {"marker": marker}},
    )


def stored_markers(database_url: str, account_id: str) -> list[str]:
    store = Database.from_url(database_url, pool_size=1)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(
                select(activities.c.properties).where(activities.c.account_id == account_id)
            )
            return sorted(r.properties["marker"] for r in rows)
    finally:
        store.dispose()


def group_histogram(server: Server) -> tuple[float, float]:
    """(count, sum) of ``eventyard_ingest_group_commit_requests`` as ``/metrics`` shows them."""
    found = {"count": 0.0, "sum": 0.0}
    for line in httpx.get(f"{server.base_url}/metrics").text.splitlines():
        for name in found:
            if line.startswith(f"eventyard_ingest_group_commit_requests_{name} "):
                found[name] = float(line.split()[1])
    return found["count"], found["sum"]


@pytest.fixture
def served(empty_database: str, tmp_path: Path) -> Iterator[tuple[Server, NewAccount]]:
    """A server of its own (group commit on, as by default) and an account on it."""
    upgrade_database(empty_database)
    account = create_account_at(empty_database, "group-commit")
    with running_server(
        empty_database,
        tmp_path / "server.log",
        {"EVENTYARD_RATE_LIMIT_PER_SECOND": "0"},
    ) as server:
        yield server, account


def test_concurrent_single_events_are_all_acknowledged_and_stored_once_in_shared_commits(
    served: tuple[Server, NewAccount], empty_database: str
) -> None:
    server, account = served
    start = threading.Barrier(THREADS)

    def send(thread: int) -> list[int]:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            start.wait()
            return [
                post_activity(client, account, f"t{thread}-{i}").status_code
                for i in range(PER_THREAD)
            ]

    with ThreadPoolExecutor(THREADS) as pool:
        statuses = [s for batch in pool.map(send, range(THREADS)) for s in batch]
    assert statuses == [200] * THREADS * PER_THREAD
    expected = sorted(f"t{t}-{i}" for t in range(THREADS) for i in range(PER_THREAD))
    assert stored_markers(empty_database, account.account.id) == expected
    commits, requests = group_histogram(server)
    assert requests == THREADS * PER_THREAD
    # Fewer commits than requests: some commits carried several requests.
    assert commits < requests


def test_every_acknowledged_request_survives_a_sigkill_right_after_its_answer(
    served: tuple[Server, NewAccount], empty_database: str
) -> None:
    """Clients keep sending while the server is killed (no shutdown, no flush).

    Every request answered 200 before the kill is in the database afterwards,
    exactly once; requests cut off by the kill may or may not be stored.
    """
    server, account = served
    acknowledged: list[str] = []
    lock = threading.Lock()
    enough = threading.Event()
    stop = threading.Event()

    def send(thread: int) -> None:
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            i = 0
            while not stop.is_set():
                marker = f"k{thread}-{i}"
                i += 1
                try:
                    response = post_activity(client, account, marker)
                except httpx.HTTPError:
                    return  # the server is gone
                if response.status_code == 200:
                    with lock:
                        acknowledged.append(marker)
                        if len(acknowledged) >= 300:
                            enough.set()

    threads = [threading.Thread(target=send, args=(t,)) for t in range(20)]
    for thread in threads:
        thread.start()
    try:
        assert enough.wait(60), "the server acknowledged too few requests"
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
        with lock:
            answered = list(acknowledged)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    stored = stored_markers(empty_database, account.account.id)
    assert len(stored) == len(set(stored))
    assert set(answered) <= set(stored)
