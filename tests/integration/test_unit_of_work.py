"""How a unit of work ends: reads keep prepared statements, failures and dry runs leave nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from eventyard.core.activity_query import ActivityQuery
from eventyard.services.ingest import store_records
from eventyard.storage.database import Database
from eventyard.storage.migrate import upgrade_database
from eventyard.storage.tables import activities, contacts
from tests.integration.helpers import NOW, activity, count, ingest, new_account


def test_reads_keep_the_connections_prepared_statements(postgres_url: str) -> None:
    """psycopg prepares a statement on its 5th execution and forgets every prepared
    statement on ROLLBACK; a read that ends well commits, so a repeated listing is
    planned once per connection instead of on every request. (PostgreSQL only:
    SQLite's driver keeps its own statement cache across transactions.)"""
    upgrade_database(postgres_url)
    one = Database.from_url(postgres_url, pool_size=1)
    acct = new_account(one, "prepared")
    try:
        for _ in range(6):
            with one.unit_of_work(write=False) as uow:
                uow.activities.search(acct.id, ActivityQuery(names=("Visit",)), 26)
        with one.unit_of_work(write=False) as uow:
            prepared = uow.conn.execute(text("SELECT statement FROM pg_prepared_statements"))
            assert any("FROM activities" in row[0] for row in prepared)
    finally:
        one.dispose()


@pytest.mark.parametrize("write", [True, False])
def test_a_unit_of_work_that_fails_stores_nothing(store: Database, write: bool) -> None:
    acct = new_account(store, "fails")

    def fail_after_writing() -> None:
        with store.unit_of_work(write=write) as uow:
            store_records(uow, acct, [activity("Visit", identity="u-1")], now=NOW)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_after_writing()
    assert count(store, activities, acct) == count(store, contacts, acct) == 0
    # The connection went back to the pool clean: the next unit of work works.
    ingest(store, acct, [activity("Visit", identity="u-2")])
    assert count(store, activities, acct) == 1


def test_a_write_that_is_not_committed_is_discarded(store: Database) -> None:
    """Dry runs (CleverTap ``dryRun``) rely on it."""
    acct = new_account(store, "dry")
    with store.unit_of_work() as uow:
        store_records(uow, acct, [activity("Visit", identity="u-1")], now=NOW)
    assert count(store, activities, acct) == count(store, contacts, acct) == 0
