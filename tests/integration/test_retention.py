"""Retention on both databases: expired activities purged, partitions dropped and created.

Cordial's spec: "Contact activity data will be stored for 18 months, after
which it will be systematically purged." Each account keeps its activities
for its ``retention_days`` (548 days by default). docs/operations.md,
"Retention", quoted test by test.

Tests of one account use the session's database and purge only that account
(``account_id``). Tests that purge every account, drop partitions or
schedule the purge job get a database of their own (``own_store``): in the
shared one they would purge other tests' old activities, and the session
server's worker would run their jobs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from eventyard.core.errors import NotFound
from eventyard.core.identifiers import normalize_identifier
from eventyard.core.model import Account, IngestOutcome, NewActivity, StoredResponse
from eventyard.dialects.registry import create_account
from eventyard.services.ingest import ingest_activities
from eventyard.services.jobs import get_job
from eventyard.services.retention import PURGE_ACTIVITIES, purge_activities, schedule_purge
from eventyard.storage.database import Database
from eventyard.storage.migrate import upgrade_database
from eventyard.storage.partitions import DEFAULT_PARTITION, Month, drop_month, existing_months
from eventyard.storage.tables import activities
from tests.support import scratch_postgres_database

NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)


@pytest.fixture(params=["sqlite", "postgresql"])
def own_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated database of this test's own (no other account, no server's worker)."""
    if request.param == "sqlite":
        yield from _migrated(f"sqlite:///{tmp_path / 'retention.db'}")
        return
    with scratch_postgres_database(str(request.getfixturevalue("postgres_url"))) as url:
        yield from _migrated(url)


@pytest.fixture
def pg(postgres_url: str) -> Iterator[Database]:
    """A migrated PostgreSQL database of this test's own."""
    with scratch_postgres_database(postgres_url) as url:
        yield from _migrated(url)


def _migrated(url: str) -> Iterator[Database]:
    upgrade_database(url)
    store = Database.from_url(url, pool_size=2)
    yield store
    store.dispose()


def new_account(store: Database, settings: dict[str, Any] | None = None) -> Account:
    return create_account(store, f"retention-{uuid.uuid4().hex[:8]}", settings).account


def store_activities(store: Database, account: Account, *ages: timedelta) -> None:
    """One activity of a contact of its own per age, occurred that long before ``NOW``.

    Through the ingest service, as a Netcore upload would store them.
    """
    batch = [
        NewActivity(
            identifiers=(normalize_identifier("identity", f"c{i}-{uuid.uuid4().hex[:6]}"),),
            name="Purchase",
            occurred_at=NOW - age,
            source="web",
            dialect="netcore",
            properties={"age_days": age / DAY},
        )
        for i, age in enumerate(ages)
    ]
    ingest_activities(store, account, batch, now=NOW, respond=_ok)


def _ok(_outcome: IngestOutcome) -> StoredResponse:
    return StoredResponse(200, b"{}")


def ages_of(store: Database, account: Account) -> list[int]:
    """The age in whole days of each of the account's stored activities, youngest first."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(activities.c.occurred_at)
            .where(activities.c.account_id == account.id)
            .order_by(activities.c.occurred_at.desc())
        ).scalars()
        return [(NOW - occurred).days for occurred in rows]


def partition_exists(store: Database, name: str) -> bool:
    with store.engine.connect() as conn:
        return conn.execute(text("SELECT to_regclass(:n)"), {"n": name}).scalar() is not None


def rows_in(store: Database, table: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608


def months_ago(months: int) -> timedelta:
    """The age of the middle of the month ``months`` before this one."""
    month = Month.of(NOW).plus(-months)
    return NOW - (month.start + timedelta(days=14))


class TestOneAccount:
    """On the session's database, purging only the test's account."""

    def test_purges_activities_older_than_18_months_and_keeps_the_rest(
        self, store: Database
    ) -> None:
        """ "Contact activity data will be stored for 18 months, after which it will be
        systematically purged": the default retention is 548 days."""
        account = new_account(store)
        store_activities(store, account, 1 * DAY, 547 * DAY, 549 * DAY, 800 * DAY, 3000 * DAY)

        report = purge_activities(store, NOW, account_id=account.id)

        assert ages_of(store, account) == [1, 547]
        (row,) = report.accounts
        assert (row.account_id, row.retention_days, row.activities) == (account.id, 548, 3)
        assert row.cutoff == NOW - 548 * DAY
        assert report.activities == 3
        assert report.partitions_dropped == ()

    def test_honours_the_accounts_own_retention(self, store: Database) -> None:
        """docs/api.md: ``retention_days`` is "How long the account keeps activities"."""
        short = new_account(store, {"retention_days": 30})
        default = new_account(store)
        for account in (short, default):
            store_activities(store, account, 10 * DAY, 40 * DAY, 600 * DAY)

        report = purge_activities(store, NOW, account_id=short.id)

        assert ages_of(store, short) == [10]
        assert ages_of(store, default) == [10, 40, 600]  # another account's, untouched
        assert [(r.retention_days, r.activities) for r in report.accounts] == [(30, 2)]

    def test_dry_run_changes_nothing_and_reports_what_a_purge_removes(
        self, store: Database
    ) -> None:
        account = new_account(store, {"retention_days": 90})
        store_activities(store, account, 5 * DAY, 91 * DAY, 92 * DAY, 400 * DAY)

        dry = purge_activities(store, NOW, dry_run=True, account_id=account.id)
        assert ages_of(store, account) == [5, 91, 92, 400]
        real = purge_activities(store, NOW, account_id=account.id)

        assert dry.dry_run
        assert not real.dry_run
        assert [r.activities for r in dry.accounts] == [r.activities for r in real.accounts] == [3]
        assert ages_of(store, account) == [5]

    def test_deletes_in_chunks_until_none_is_left(self, store: Database) -> None:
        """A big purge is many short transactions, never one giant one."""
        account = new_account(store, {"retention_days": 1})
        store_activities(store, account, *(timedelta(days=2 + i) for i in range(7)))
        chunks: list[int] = []

        report = purge_activities(
            store, NOW, account_id=account.id, chunk_rows=3, on_chunk=chunks.append
        )

        assert chunks == [3, 6, 7]
        assert report.activities == 7
        assert ages_of(store, account) == []

    def test_an_unknown_account_is_not_found(self, store: Database) -> None:
        with pytest.raises(NotFound):
            purge_activities(store, NOW, account_id="0" * 24)


class TestEveryAccount:
    """On a database of the test's own: what the scheduled job and ``eventyard purge`` do."""

    def test_each_account_loses_only_what_its_retention_lets_go(self, own_store: Database) -> None:
        short = new_account(own_store, {"retention_days": 30})
        default = new_account(own_store)
        for account in (short, default):
            store_activities(own_store, account, 2 * DAY, 45 * DAY, months_ago(20))

        dry = purge_activities(own_store, NOW, dry_run=True)
        report = purge_activities(own_store, NOW)

        assert ages_of(own_store, short) == [2]
        assert ages_of(own_store, default) == [2, 45]
        by_account = {r.account_id: r.activities for r in report.accounts}
        assert by_account == {short.id: 2, default.id: 1}
        assert {r.account_id: r.activities for r in dry.accounts} == by_account
        assert dry.partitions_dropped == report.partitions_dropped

    def test_a_database_without_accounts_purges_nothing(self, own_store: Database) -> None:
        report = purge_activities(own_store, NOW)
        assert (report.accounts, report.activities, report.partitions_dropped) == ((), 0, ())


@pytest.mark.postgres_only
class TestPartitions:
    """PostgreSQL: "the activities table is range-partitioned by month so a purge drops
    partitions instead of deleting rows; partitions are created ahead automatically"."""

    def test_drops_a_month_in_which_every_accounts_activities_expired(self, pg: Database) -> None:
        short = new_account(pg, {"retention_days": 30})
        default = new_account(pg)
        old = Month.of(NOW).plus(-20)
        assert partition_exists(pg, old.table)  # the migration created 25 months back
        for account in (short, default):
            store_activities(pg, account, months_ago(20), months_ago(20), 3 * DAY)

        dry = purge_activities(pg, NOW, dry_run=True)
        assert partition_exists(pg, old.table)
        report = purge_activities(pg, NOW)

        assert not partition_exists(pg, old.table)
        assert old.table in report.partitions_dropped
        assert dry.partitions_dropped == report.partitions_dropped
        # Every month ending before the earliest cutoff (548 days ago) went.
        earliest = NOW - 548 * DAY
        assert all(m.end > earliest for m in _months(pg))
        rows = {r.account_id: (r.activities, r.in_dropped_partitions) for r in report.accounts}
        assert rows == {short.id: (2, 2), default.id: (2, 2)}
        assert ages_of(pg, short) == ages_of(pg, default) == [3]

    def test_keeps_a_month_an_account_with_a_longer_retention_still_needs(
        self, pg: Database
    ) -> None:
        keeper = new_account(pg, {"retention_days": 36500})
        default = new_account(pg)
        old = Month.of(NOW).plus(-20)
        for account in (keeper, default):
            store_activities(pg, account, months_ago(20), 3 * DAY)

        report = purge_activities(pg, NOW)

        assert partition_exists(pg, old.table)
        assert report.partitions_dropped == ()
        assert [len(ages_of(pg, a)) for a in (keeper, default)] == [2, 1]
        rows = {r.account_id: (r.activities, r.in_dropped_partitions) for r in report.accounts}
        assert rows == {keeper.id: (0, 0), default.id: (1, 0)}

    def test_creates_the_coming_months_and_moves_their_rows_out_of_the_default_partition(
        self, pg: Database
    ) -> None:
        account = new_account(pg)
        ahead = Month.of(NOW).plus(3)
        with pg.engine.begin() as conn:
            drop_month(conn, ahead)
        store_activities(pg, account, NOW - (ahead.start + timedelta(days=2)))
        assert rows_in(pg, DEFAULT_PARTITION) == 1

        report = purge_activities(pg, NOW)

        assert report.partitions_created == (ahead.table,)
        assert partition_exists(pg, ahead.table)
        assert rows_in(pg, DEFAULT_PARTITION) == 0
        assert rows_in(pg, ahead.table) == 1
        assert len(ages_of(pg, account)) == 1

    def test_a_dry_run_creates_no_partition(self, pg: Database) -> None:
        ahead = Month.of(NOW).plus(3)
        with pg.engine.begin() as conn:
            drop_month(conn, ahead)
        new_account(pg)
        report = purge_activities(pg, NOW, dry_run=True)
        assert report.partitions_created == ()
        assert not partition_exists(pg, ahead.table)

    def test_expired_rows_in_the_default_partition_are_deleted(self, pg: Database) -> None:
        """Rows older than the oldest monthly partition wait in the default one."""
        account = new_account(pg)
        oldest = _months(pg)[0]
        store_activities(pg, account, NOW - (oldest.start - timedelta(days=40)))
        assert rows_in(pg, DEFAULT_PARTITION) == 1

        report = purge_activities(pg, NOW)

        assert rows_in(pg, DEFAULT_PARTITION) == 0
        assert [r.activities for r in report.accounts] == [1]


def _months(store: Database) -> list[Month]:
    with store.engine.connect() as conn:
        return existing_months(conn)


class TestSchedule:
    """docs/operations.md: the purge job is enqueued "at most once per interval"."""

    def test_enqueues_once_per_interval_and_never_beside_a_waiting_one(
        self, own_store: Database
    ) -> None:
        every = timedelta(hours=1)
        first = schedule_purge(own_store, NOW, every)
        assert first is not None
        assert schedule_purge(own_store, NOW + 2 * every, every) is None  # still queued
        job = get_job(own_store, None, first)
        assert (job.kind, job.queue, job.account_id) == (PURGE_ACTIVITIES, PURGE_ACTIVITIES, None)

        with own_store.engine.begin() as conn:
            conn.execute(text("UPDATE jobs SET status = 'completed' WHERE id = :id"), {"id": first})
        assert schedule_purge(own_store, NOW + every / 2, every) is None  # too soon
        second = schedule_purge(own_store, NOW + every, every)
        assert second is not None
        assert second != first


def test_the_activities_table_counts_what_remains(own_store: Database) -> None:
    """Nothing but activities is purged: the contacts stay."""
    account = new_account(own_store, {"retention_days": 1})
    store_activities(own_store, account, 5 * DAY, 6 * DAY)
    purge_activities(own_store, NOW)
    with own_store.engine.connect() as conn:
        left = conn.execute(
            select(func.count())
            .select_from(activities)
            .where(activities.c.account_id == account.id)
        ).scalar_one()
        contacts = conn.execute(
            text("SELECT count(*) FROM contacts WHERE account_id = :a"), {"a": account.id}
        ).scalar_one()
    assert (left, contacts) == (0, 2)
