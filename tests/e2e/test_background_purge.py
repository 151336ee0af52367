"""A running server forgets expired Idempotency-Keys and folds hourly counts by itself."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, select

from eventyard.core.model import NewAccount
from eventyard.services.ingest_stats import hourly_activity_counts
from eventyard.storage.database import Database
from eventyard.storage.tables import activity_counts, idempotency_keys
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


def test_count_rows_of_past_hours_are_folded_without_any_request(
    database_url: str, store: Database, account: NewAccount, tmp_path: Path
) -> None:
    """docs/operations.md: at the purge interval each server process "folds the hourly
    activity counts the console charts … rows of finished hours are replaced by one row
    per account, hour, dialect and activity name. Sums do not change"."""
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    with store.unit_of_work() as uow:
        for count in (2, 5, 7):  # three batches of the same hour, dialect and name
            uow.ingest_stats.add_counts(account.account.id, {(hour, "netcore", "Viewed"): count})
        uow.commit()

    def rows() -> int:
        with store.engine.connect() as conn:
            query = select(func.count()).where(activity_counts.c.account_id == account.account.id)
            return int(conn.execute(query).scalar_one())

    assert rows() == 3
    env = {"EVENTYARD_IDEMPOTENCY_PURGE_INTERVAL_SECONDS": "0.3"}
    with running_server(database_url, tmp_path / "server.log", env) as server:
        deadline = time.monotonic() + 60
        while rows() > 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert rows() == 1, server.logs()
    (folded,) = hourly_activity_counts(store, account.account.id, hour)
    assert (folded.hour, folded.dialect, folded.name, folded.count) == (
        hour,
        "netcore",
        "Viewed",
        14,
    )
