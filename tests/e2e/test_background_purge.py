"""A running server forgets expired Idempotency-Keys by itself."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

from eventyard.core.model import NewAccount
from eventyard.storage.database import Database
from eventyard.storage.tables import idempotency_keys
from tests.support import netcore_event, running_server


def keys_of(store: Database, account: NewAccount) -> int:
    with store.engine.connect() as conn:
        query = select(func.count()).where(idempotency_keys.c.account_id == account.account.id)
        return int(conn.execute(query).scalar_one())


def test_expired_keys_disappear_without_any_request(
    database_url: str, store: Database, account: NewAccount, tmp_path: Path
) -> None:
    """docs/operations.md: "Each server process deletes expired `Idempotency-Key`
    records every `EVENTYARD_IDEMPOTENCY_PURGE_INTERVAL_SECONDS`"; docs/settings.md:
    `EVENTYARD_IDEMPOTENCY_TTL_SECONDS` is "How long an `Idempotency-Key` and its
    first response are remembered".

    The TTL is 5 s, far longer than one upload takes, so the key is certainly
    still there when it is counted right after the upload; the purge runs every
    0.3 s, so the key goes soon after it expires, with no request to trigger it."""
    env = {
        "EVENTYARD_IDEMPOTENCY_TTL_SECONDS": "5",
        "EVENTYARD_IDEMPOTENCY_PURGE_INTERVAL_SECONDS": "0.3",
    }
    with running_server(database_url, tmp_path / "server.log", env) as server:
        r = httpx.post(
            f"{server.base_url}/v1/activity/upload",
            json=[netcore_event()],
            headers={"api-key": account.netcore_api_key, "Idempotency-Key": "purge-me"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        assert keys_of(store, account) == 1
        # Poll (a generous bound, not a timing assertion) until the purge has run.
        deadline = time.monotonic() + 60
        while keys_of(store, account) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert keys_of(store, account) == 0, server.logs()
