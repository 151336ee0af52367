"""Upgrading a deployment whose activities predate the monthly partitions.

Issue 5: "On PostgreSQL the activities table is range-partitioned by month".
Migration 0005 rebuilds the existing table as a partitioned one; nothing a
deployment stored before may be lost or change, and the dedup rule must
keep refusing the same duplicates (DESIGN.md: "Schema changes only through
Alembic migrations", "Acknowledged means durable").
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from eventyard.storage.engine import normalize_database_url
from eventyard.storage.migrate import upgrade_database
from tests.support import filled_database, scratch_postgres_database

NOW = datetime.now(UTC)
# Ten years back lands in the default partition; the others in their months.
WHEN = [NOW - timedelta(days=3650), NOW - timedelta(days=400), NOW - timedelta(days=2), NOW]


@pytest.fixture(params=["sqlite", "postgresql"])
def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database at revision 0004 holding four activities, one with a dedup key."""
    with filled_database(request, tmp_path, _fill) as url:
        yield url


def _fill(url: str) -> None:
    upgrade_database(url, "0004")
    engine = create_engine(normalize_database_url(url))
    with engine.begin() as conn:
        for index, moment in enumerate(WHEN):
            conn.execute(
                text(
                    "INSERT INTO activities (id, account_id, contact_id, name, occurred_at,"
                    " received_at, source, dialect, asset_id, journey_eligible, properties,"
                    " dedup_key) VALUES (:id, 'acc', 'c1', 'order', :at, :at, 'api', 'ortto',"
                    " NULL, false, :props, :dedup)"
                ),
                {
                    "id": f"a{index:023d}",
                    "at": moment,
                    "props": f'{{"n": {index}}}',
                    "dedup": "ortto:k" if index == 3 else None,
                },
            )
    engine.dispose()


def _rows(url: str) -> list[tuple[str, str]]:
    engine = create_engine(normalize_database_url(url))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, properties FROM activities ORDER BY id")).all()
    engine.dispose()
    return [(r[0], str(r[1]).replace(" ", "")) for r in rows]


def test_every_activity_survives_the_upgrade(old_database: str) -> None:
    before = _rows(old_database)
    assert len(before) == 4
    upgrade_database(old_database)
    assert _rows(old_database) == before


def test_the_dedup_key_still_refuses_a_duplicate_after_the_upgrade(old_database: str) -> None:
    upgrade_database(old_database)
    engine = create_engine(normalize_database_url(old_database))
    with engine.begin() as conn:
        inserted = conn.execute(
            text(
                "INSERT INTO activities (id, account_id, contact_id, name, occurred_at,"
                " received_at, source, dialect, journey_eligible, properties, dedup_key)"
                " VALUES ('dup00000000000000000000x', 'acc', 'c1', 'order', :at, :at, 'api',"
                " 'ortto', false, '{}', 'ortto:k')"
                " ON CONFLICT (account_id, dedup_key, occurred_at)"
                " WHERE dedup_key IS NOT NULL DO NOTHING"
            ),
            {"at": WHEN[3]},
        )
        assert inserted.rowcount == 0
    engine.dispose()


@pytest.fixture
def old_pg_database(postgres_url: str) -> Iterator[str]:
    with scratch_postgres_database(postgres_url) as url:
        _fill(url)
        yield url


def test_postgresql_puts_each_activity_in_its_months_partition(old_pg_database: str) -> None:
    old_database = old_pg_database
    upgrade_database(old_database)
    engine = create_engine(normalize_database_url(old_database))
    with engine.connect() as conn:
        kind = conn.execute(text("SELECT relkind FROM pg_class WHERE relname = 'activities'"))
        assert kind.scalar_one() == "p"
        placed = dict(
            conn.execute(
                text("SELECT id, tableoid::regclass::text FROM activities ORDER BY id")
            ).all()
        )
        leftover = conn.execute(
            text("SELECT count(*) FROM pg_class WHERE relname = 'activities_unpartitioned'")
        ).scalar_one()
    engine.dispose()
    expected = [f"activities_p{m.year:04d}{m.month:02d}" for m in WHEN]
    # The ten-year-old activity got its own month too: the migration covers
    # the oldest stored month (up to ten years back).
    assert [placed[f"a{i:023d}"] for i in range(4)] == expected
    assert leftover == 0
