"""The schema comes from Alembic only, and the engines are configured for durability.

STYLE.md: "Migrations are the only schema source, tests included; a test
asserts a single Alembic head." DESIGN.md: "Schema changes only through
Alembic migrations" and "Acknowledged means durable".
"""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select, text

from eventyard.core.model import NewAccount
from eventyard.services.credentials import authenticate
from eventyard.settings import Settings
from eventyard.storage.database import Database
from eventyard.storage.migrate import current_revision, heads, upgrade_database
from eventyard.storage.partitions import is_partition
from eventyard.storage.tables import accounts, metadata


def test_the_migration_chain_has_exactly_one_head() -> None:
    """Two heads mean two migrations written in parallel that nobody merged:
    ``upgrade head`` would refuse to run on every deployment."""
    assert len(heads()) == 1


def test_the_test_database_is_at_the_head_revision(store: Database) -> None:
    assert current_revision(store.engine) == heads()[0]


def test_upgrading_an_up_to_date_database_again_changes_nothing(
    store: Database, database_url: str, account: NewAccount
) -> None:
    """``eventyard db upgrade`` runs at every deployment: a second run is a no-op
    that neither fails nor loses data."""
    with store.engine.connect() as conn:
        accounts_before = conn.execute(select(func.count()).select_from(accounts)).scalar_one()

    upgrade_database(database_url)
    upgrade_database(database_url)

    assert current_revision(store.engine) == heads()[0]
    with store.engine.connect() as conn:
        accounts_after = conn.execute(select(func.count()).select_from(accounts)).scalar_one()
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    assert accounts_after == accounts_before
    assert versions == heads()
    assert authenticate(store, "admin", account.admin_token).id == account.account.id


def test_the_migrated_schema_matches_the_table_definitions(store: Database) -> None:
    """The repositories query ``storage.tables``; the database is built by the
    migrations. Autogenerate finds no difference between the two (tables,
    columns, types, nullability, indexes, unique constraints, foreign keys)."""
    with store.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_name": lambda name, kind, _parent: (
                    not (kind == "table" and is_partition(name))
                ),
            },
        )
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_every_table_of_the_model_exists_in_the_database(store: Database) -> None:
    """A cheap cross-check of the comparison above: every table is really there."""
    with store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            conn.execute(select(func.count()).select_from(table)).scalar_one()


@pytest.mark.parametrize(
    ("env", "synchronous", "busy_timeout"),
    [
        ({}, 2, 30_000),
        (
            {"EVENTYARD_SQLITE_SYNCHRONOUS": "NORMAL", "EVENTYARD_SQLITE_BUSY_TIMEOUT_MS": "4321"},
            1,
            4321,
        ),
    ],
    ids=["defaults", "normal-4321"],
)
def test_every_connection_is_configured_for_durable_writes(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    synchronous: int,
    busy_timeout: int,
) -> None:
    """docs/operations.md, SQLite pragmas: "`synchronous` | `FULL`
    (`EVENTYARD_SQLITE_SYNCHRONOUS`) | the WAL is synced to disk at every commit, so
    an acknowledged write survives a power cut. `NORMAL` is faster ...; it is opt-in"
    and "`busy_timeout` | `EVENTYARD_SQLITE_BUSY_TIMEOUT_MS` (30000)"; docs/settings.md:
    "`EVENTYARD_SQLITE_SYNCHRONOUS` | `FULL` or `NORMAL` | `FULL`".

    The store is built the way the server builds it (``Database.from_settings``
    with ``Settings`` read from the environment). Every pooled connection, not
    only the first, runs in WAL mode with the configured synchronous mode (FULL
    is 2, NORMAL is 1) and busy timeout. PostgreSQL ignores those settings and
    its commits wait for the WAL flush (``synchronous_commit``)."""
    for name in ("EVENTYARD_SQLITE_SYNCHRONOUS", "EVENTYARD_SQLITE_BUSY_TIMEOUT_MS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    database = Database.from_settings(Settings(database_url=database_url, db_pool_size=3))
    try:
        # Hold three connections at once so the pool has to open several.
        conns = [database.engine.connect() for _ in range(3)]
        try:
            for conn in conns:
                if database.backend == "sqlite":
                    pragma = conn.exec_driver_sql
                    assert pragma("PRAGMA journal_mode").scalar() == "wal"
                    assert pragma("PRAGMA synchronous").scalar() == synchronous
                    assert pragma("PRAGMA busy_timeout").scalar() == busy_timeout
                    assert pragma("PRAGMA foreign_keys").scalar() == 1
                else:
                    assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
        finally:
            for conn in conns:
                conn.close()
    finally:
        database.dispose()
