"""A database restart while a destination is being delivered to loses and doubles nothing.

docs/destinations.md, "At least once, never lost": "a database that goes away
pauses the workers (logged once) and they go on when it is back; an attempt
whose outcome could not be recorded is sent again after its lease". The
database is a PostgreSQL cluster of the test's own
(``tests/reliability/private_postgres.py``), stopped with ``pg_ctl stop -m
immediate`` while activities are being delivered, and started again; one
server process serves the whole test and is never restarted.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import select

from eventyard.dialects.registry import create_account
from eventyard.storage.database import Database
from eventyard.storage.migrate import upgrade_database
from eventyard.storage.tables import activities
from tests.e2e.destination_support import wait_for, webhook_receiver
from tests.e2e.test_destinations import FAST_DELIVERY, events_of
from tests.reliability.private_postgres import private_postgres
from tests.support import admin, running_server

SERVER_ENV = {
    **FAST_DELIVERY,
    "EVENTYARD_RATE_LIMIT_PER_SECOND": "0",
    "EVENTYARD_DB_CONNECT_TIMEOUT_SECONDS": "2",
    "EVENTYARD_DB_POOL_TIMEOUT_SECONDS": "5",
}
OUTAGE_SECONDS = 3


def send_until_acknowledged(api: httpx.Client, key: str, batch: list[dict[str, object]]) -> None:
    """A client that retries a refused or unanswered batch (the same Idempotency-Key)."""
    deadline = time.monotonic() + 120
    idempotency_key = uuid.uuid4().hex
    while True:
        try:
            r = api.post(
                "/v1/activity/upload",
                json=batch,
                headers={"api-key": key, "Idempotency-Key": idempotency_key},
            )
            if r.status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the batch was never acknowledged"
        time.sleep(0.2)


def test_a_database_restart_mid_delivery_loses_and_doubles_nothing(tmp_path: Path) -> None:
    with private_postgres() as cluster, webhook_receiver() as receiver:
        upgrade_database(cluster.url)
        store = Database.from_url(cluster.url, pool_size=1)
        try:
            account = create_account(store, "outage")
        finally:
            store.dispose()
        with (
            running_server(cluster.url, tmp_path / "server.log", SERVER_ENV) as server,
            httpx.Client(base_url=server.base_url, timeout=30) as api,
        ):
            r = api.post(
                "/api/v1/destinations",
                json={
                    "name": "hook",
                    "kind": "webhook",
                    "url": receiver.url,
                    "credentials": {"secret": receiver.secret},
                },
                headers=admin(account),
            )
            assert r.status_code == 201, r.text
            destination = r.json()["id"]
            for _ in range(10):
                send_until_acknowledged(api, account.netcore_api_key, events_of(10, 3))
            wait_for(lambda: receiver.requests, what="a first delivery")
            cluster.stop_immediately()
            time.sleep(OUTAGE_SECONDS)
            cluster.start()
            for _ in range(10):
                send_until_acknowledged(api, account.netcore_api_key, events_of(10, 3))

            def figures() -> dict[str, object]:
                answer = api.get(f"/api/v1/destinations/{destination}", headers=admin(account))
                return dict(answer.json()) if answer.status_code == 200 else {"pending": -1}

            wait_for(lambda: figures()["pending"] == 0, timeout=120, what="nothing pending")
        store = Database.from_url(cluster.url, pool_size=1)
        try:
            with store.engine.connect() as conn:
                stored = set(
                    conn.execute(
                        select(activities.c.id).where(activities.c.account_id == account.account.id)
                    ).scalars()
                )
        finally:
            store.dispose()
    taken = receiver.taken_ids()
    assert len(stored) == 600
    assert len(taken) == len(set(taken)), "an activity was taken twice under one key"
    assert set(taken) == stored
