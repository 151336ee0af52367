"""Upgrading a deployment that stored activities before the hourly counts existed.

The console's overview charts "events received per hour over the last 7
days" (issue 7) from ``activity_counts``. Migration 0006 counts what is
already stored, so the chart of an upgraded deployment starts full, not
empty, and later batches add to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from eventyard.services.ingest_stats import hourly_activity_counts
from eventyard.storage.database import Database
from eventyard.storage.engine import normalize_database_url
from eventyard.storage.migrate import upgrade_database
from tests.support import filled_database

HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)
# (received_at, dialect, name) of the activities stored before the upgrade.
STORED = [
    (HOUR + timedelta(minutes=1), "netcore", "Add To Cart"),
    (HOUR + timedelta(minutes=59, seconds=59), "netcore", "Add To Cart"),
    (HOUR + timedelta(minutes=10), "cordial", "open"),
    (HOUR + timedelta(hours=1), "netcore", "Add To Cart"),
    (HOUR + timedelta(hours=2, minutes=30), "netcore", "Add To Cart"),
]


@pytest.fixture(params=["sqlite", "postgresql"])
def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database at revision 0005 holding activities of two accounts."""
    with filled_database(request, tmp_path, _fill) as url:
        yield url


def _fill(url: str) -> None:
    upgrade_database(url, "0005")
    engine = create_engine(normalize_database_url(url))
    with engine.begin() as conn:
        for index, (received, dialect, name) in enumerate([*STORED, STORED[0]]):
            conn.execute(
                text(
                    "INSERT INTO activities (id, account_id, contact_id, name, occurred_at,"
                    " received_at, source, dialect, asset_id, journey_eligible, properties)"
                    " VALUES (:id, :account, 'c1', :name, :at, :at, 'api', :dialect, NULL,"
                    " false, '{}')"
                ),
                {
                    "id": f"a{index:023d}",
                    # The last row belongs to another account.
                    "account": "acc" if index < len(STORED) else "other",
                    "name": name,
                    "at": received,
                    "dialect": dialect,
                },
            )
    engine.dispose()


def test_the_upgrade_counts_what_was_stored_by_hour_received(old_database: str) -> None:
    upgrade_database(old_database)
    store = Database.from_url(old_database)
    try:
        counts = hourly_activity_counts(store, "acc", HOUR - timedelta(days=1))
        other = hourly_activity_counts(store, "other", HOUR - timedelta(days=1))
    finally:
        store.dispose()
    assert [(c.hour, c.dialect, c.name, c.count) for c in counts] == [
        (HOUR, "cordial", "open", 1),
        (HOUR, "netcore", "Add To Cart", 2),
        (HOUR + timedelta(hours=1), "netcore", "Add To Cart", 1),
        (HOUR + timedelta(hours=2), "netcore", "Add To Cart", 1),
    ]
    assert [(c.hour, c.count) for c in other] == [(HOUR, 1)]
