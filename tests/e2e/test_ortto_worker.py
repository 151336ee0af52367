"""Queued Ortto work run by separately started ``eventyard worker`` processes.

Issue 4: "async processing by a separately started ``eventyard worker``
process, and a restart in the middle of queued work that loses nothing";
"Queued work survives a restart and is never done twice by two workers".
The server runs without its in-process worker (``EVENTYARD_RUN_WORKER=false``,
what ``serve --no-worker`` sets), so only the worker processes can store the
queued batches.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from eventyard.core.model import NewAccount
from eventyard.storage.database import Database
from eventyard.storage.migrate import upgrade_database
from eventyard.storage.tables import activities
from tests.support import (
    DEFAULT_POSTGRES_URL,
    admin,
    create_account_at,
    find_contact,
    running_server,
    scratch_postgres_database,
)

CREATE = "/v1/activities/create"
#: Short leases, so that a killed worker's job is taken over within seconds.
WORKER_ENV = {"EVENTYARD_JOB_LEASE_SECONDS": "2", "EVENTYARD_WORKER_POLL_SECONDS": "0.2"}


@contextmanager
def worker_process(database_url: str, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "EVENTYARD_DATABASE_URL": database_url, **WORKER_ENV}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "eventyard", "worker"], env=env, stdout=log, stderr=log
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database of its own: the suite's shared server runs a worker on the
    shared database, which would store these batches before the test's own
    worker processes start."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'worker.db'}"
        upgrade_database(url)
        yield url
        return
    request.getfixturevalue("postgres_url")  # PostgreSQL is there (CI fails otherwise)
    admin_url = os.environ.get("EVENTYARD_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    with scratch_postgres_database(admin_url) as url:
        upgrade_database(url)
        yield url


@pytest.fixture
def store(database_url: str) -> Iterator[Database]:
    database = Database.from_url(database_url, pool_size=1)
    yield database
    database.dispose()


@pytest.fixture
def account(database_url: str) -> NewAccount:
    return create_account_at(database_url, "ortto-worker")


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[httpx.Client]:
    env = {"EVENTYARD_RUN_WORKER": "false"}
    with (
        running_server(database_url, tmp_path / "server.log", env) as srv,
        httpx.Client(base_url=srv.base_url, timeout=30) as client,
    ):
        yield client


def define(api: httpx.Client, account: NewAccount) -> None:
    r = api.post(
        "/api/v1/activity-definitions",
        json={
            "activity_id": "act:cm:purchase",
            "name": "Purchase",
            "fields": {"str:cm:product-name": "str", "int::v": "int"},
        },
        headers=admin(account),
    )
    assert r.status_code == 201, r.text


def batch(start: int, size: int, first_name: str = "Ann") -> dict[str, Any]:
    return {
        "async": True,
        "activities": [
            {
                "activity_id": "act:cm:purchase",
                "attributes": {"str:cm:product-name": f"item-{start + i}", "int::v": 1000},
                "fields": {
                    "str::email": f"buyer-{(start + i) % 100}@example.com",
                    "str::first": first_name,
                },
                "merge_by": ["str::email"],
            }
            for i in range(size)
        ],
    }


def job_states(api: httpx.Client, account: NewAccount, job_ids: list[str]) -> list[dict[str, Any]]:
    states = []
    for job_id in job_ids:
        r = api.get(f"/api/v1/jobs/{job_id}", headers=admin(account))
        assert r.status_code == 200, r.text
        states.append(r.json())
    return states


def wait_for(condition: Any, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def stored_count(store: Database, account: NewAccount) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(activities)
                .where(activities.c.account_id == account.account.id)
            ).scalar_one()
        )


def test_a_separate_worker_process_stores_queued_batches(
    api: httpx.Client, account: NewAccount, database_url: str, tmp_path: Path
) -> None:
    """Issue 4: "``"async": true`` -> every activity answers ``queued``; the batch
    is stored durably before the response and processed in order by a worker"."""
    define(api, account)
    headers = {"X-Api-Key": account.ortto_api_key}
    job_ids = []
    for first_name in ("Ann", "Bea"):
        r = api.post(CREATE, json=batch(0, 3, first_name), headers=headers)
        assert r.status_code == 200, r.text
        assert {e["status"] for e in r.json()["activities"]} == {"queued"}
        job_ids.append(r.headers["X-Eventyard-Job-Id"])
    # No worker runs yet: the batches wait, durable, and nothing is stored.
    time.sleep(1)
    assert [j["status"] for j in job_states(api, account, job_ids)] == ["queued", "queued"]
    assert find_contact(api, account, "email:buyer-0@example.com") is None

    with worker_process(database_url, tmp_path / "worker.log"):
        wait_for(lambda: all(j["status"] == "completed" for j in job_states(api, account, job_ids)))
    contact = find_contact(api, account, "email:buyer-0@example.com")
    assert contact is not None
    # In order: the second batch's overwrite is the one that stays.
    assert contact["attributes"] == {"str::first": "Bea"}
    r = api.get(f"/api/v1/contacts/{contact['id']}/activities", headers=admin(account))
    assert len(r.json()["activities"]) == 2


def test_a_worker_killed_mid_queue_loses_nothing_and_repeats_nothing(
    api: httpx.Client, account: NewAccount, database_url: str, store: Database, tmp_path: Path
) -> None:
    """Issue 4: "Queued work survives a restart and is never done twice by two
    workers". A worker is killed (SIGKILL: no chance to clean up) while
    batches remain; two fresh workers finish them; every activity is stored
    exactly once."""
    define(api, account)
    headers = {"X-Api-Key": account.ortto_api_key}
    batches, size = 30, 100
    job_ids = []
    for n in range(batches):
        r = api.post(CREATE, json=batch(n * size, size), headers=headers)
        assert r.status_code == 200, r.text
        job_ids.append(r.headers["X-Eventyard-Job-Id"])

    log = tmp_path / "worker.log"
    with worker_process(database_url, log) as first:
        wait_for(lambda: stored_count(store, account) >= size)
        first.send_signal(signal.SIGKILL)
        first.wait()
    done_before_restart = stored_count(store, account)
    assert done_before_restart < batches * size, "the worker finished before it was killed"

    with worker_process(database_url, log), worker_process(database_url, log):
        wait_for(
            lambda: all(j["status"] == "completed" for j in job_states(api, account, job_ids)),
            timeout=180,
        )
    assert stored_count(store, account) == batches * size
    states = job_states(api, account, job_ids)
    assert sum(j["result"]["stored_activities"] for j in states) == batches * size
    finished = [j["finished_at"] for j in states]
    assert finished == sorted(finished), "an account's batches run in the order they came"
