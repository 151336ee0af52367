"""Activity exports keep memory flat, on both databases.

Issue 5: "Exports stream: memory stays flat for millions of rows."
docs/dialects/cordial.md: "Memory stays flat: the job reads 5,000 records at
a time by keyset, each batch in a short transaction of its own, and writes
them out." A user notices the opposite as a worker killed for memory in the
middle of a large export; here the export job runs on 50,000 stored
activities under ``tracemalloc`` and its peak must stay far below what
holding every row would take.

The job has a kind of its own (its handler is called directly): the
session's database is shared with servers whose workers claim the built-in
kinds.
"""

from __future__ import annotations

import tracemalloc
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import orjson
import pytest

from eventyard.core.activity_query import ActivityQuery, encode_query_token
from eventyard.core.ids import new_id
from eventyard.core.model import Account
from eventyard.dialects.cordial.translate import export_fields
from eventyard.services.activity_search import search_activities
from eventyard.services.exports import run_activity_export
from eventyard.services.jobs import JobRun, claim_job, enqueue
from eventyard.settings import Settings
from eventyard.storage.database import Database
from tests.integration.helpers import activity, contact_ids, ingest, new_account

T = TypeVar("T")
ROWS = 50_000
CONTACTS = 20
#: Generous: about 13 MB is measured (a batch being written while the next is
#: read); holding the 50,000 rows would take about 80 MB, and a million 1.6 GB.
PEAK_LIMIT_BYTES = 20 * 1024 * 1024
KEYS = ("email", "custID", "cID", "identity", "mobile")


def seed_activities(store: Database, account: Account) -> None:
    """``ROWS`` browse activities spread over ``CONTACTS`` contacts, a minute apart."""
    response = ingest(
        store, account, [activity("signup", email=f"p{i}@example.com") for i in range(CONTACTS)]
    )
    owners = contact_ids(response)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    now = datetime.now(UTC)
    for first in range(0, ROWS, 10_000):
        rows = [
            {
                "id": new_id(),
                "account_id": account.id,
                "contact_id": owners[n % CONTACTS],
                "name": "browse",
                "occurred_at": start + timedelta(minutes=n),
                "received_at": now,
                "source": "api",
                "dialect": "cordial",
                "journey_eligible": False,
                "dedup_key": None,
                "properties": {
                    "url": f"https://example.com/products/{n}",
                    "title": f"Khaki shirt number {n}",
                    "price": n / 100,
                },
            }
            for n in range(first, min(ROWS, first + 10_000))
        ]
        with store.unit_of_work() as uow:
            uow.activities.insert(rows)
            uow.commit()


def claimed_export(
    store: Database, account: Account, fmt: str, now: datetime, settings: Settings
) -> JobRun:
    """An export job of ``account`` (every activity), claimed as a worker would."""
    kind = f"test.export.{uuid.uuid4().hex[:12]}"
    payload = {
        "query": encode_query_token(ActivityQuery()),
        "format": fmt,
        "name": "memory",
        "fields": [list(pair) for pair in export_fields(KEYS, fmt)],
    }
    with store.unit_of_work() as uow:
        enqueue(uow, account_id=account.id, kind=kind, payload=payload, now=now)
        uow.commit()
    job = claim_job(store, "memory-test", now, 300, [kind])
    assert job is not None
    return JobRun(job, store, settings, "memory-test", 300, lambda: now)


def peak_while(action: Callable[[], T]) -> tuple[T, int]:
    """``action()``'s result and the peak of memory Python allocated while it ran."""
    tracemalloc.start()
    try:
        result = action()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_an_export_of_50000_activities_keeps_memory_flat(
    store: Database, tmp_path: Path, fmt: str
) -> None:
    """Docs: "the job reads 5,000 records at a time by keyset ... and writes them out"."""
    account = new_account(store, "export-memory")
    seed_activities(store, account)
    now = datetime.now(UTC)
    run = claimed_export(store, account, fmt, now, Settings(export_dir=str(tmp_path)))

    # What one 5,000-record batch takes in memory, for scale.
    _, batch_peak = peak_while(lambda: search_activities(store, account, ActivityQuery(), 5000))
    result, peak = peak_while(lambda: run_activity_export(run))

    assert result["rows"] == ROWS + CONTACTS
    holding_everything = batch_peak * (ROWS // 5000)
    assert peak < PEAK_LIMIT_BYTES, f"peak {peak:,} bytes"
    assert peak < holding_everything / 3, (peak, holding_everything)

    path = tmp_path / account.id / f"{run.job.id}.{'ndjson' if fmt == 'json' else 'csv'}"
    with path.open("rb") as f:
        lines = f.read().splitlines()
    body = lines if fmt == "json" else lines[1:]
    assert len(body) == ROWS + CONTACTS
    if fmt == "json":
        ids = [orjson.loads(line)["_id"] for line in body]
        assert len(set(ids)) == len(ids)
