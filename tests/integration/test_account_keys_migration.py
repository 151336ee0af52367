"""Upgrading a filled database to the account-first keys (migration 0011) keeps every row.

On SQLite batch mode copies each table and drops the old one; were foreign
keys enforced meanwhile, dropping the old ``contacts`` would delete the
identifiers, list memberships and groups of every contact (``ON DELETE
CASCADE``). After the upgrade the cascade still works, by the new keys, and
the downgrade gives the old keys back with the rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from eventyard.storage.engine import build_engine, normalize_database_url
from eventyard.storage.migrate import alembic_config, upgrade_database
from tests.support import filled_database

ACCOUNT = "0" * 23 + "1"
AT = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
TABLES = (
    "contacts",
    "contact_identifiers",
    "list_members",
    "contact_groups",
    "activities",
    "identity_events",
)


@pytest.fixture(params=["sqlite", "postgresql"])
def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database at revision 0008 with two contacts and everything that refers to them."""
    with filled_database(request, tmp_path, _fill) as url:
        yield url


def _fill(url: str) -> None:
    upgrade_database(url, "0008")
    engine = create_engine(normalize_database_url(url))
    with engine.begin() as conn:
        run = conn.execute
        run(
            text(
                "INSERT INTO accounts (id, name, settings, created_at)"
                " VALUES (:a, 'Old', '{}', :at)"
            ),
            {"a": ACCOUNT, "at": AT},
        )
        list_id = run(
            text(
                "INSERT INTO lists (account_id, name, created_at) VALUES (:a, 'VIP', :at)"
                " RETURNING id"
            ),
            {"a": ACCOUNT, "at": AT},
        ).scalar_one()
        for n in (1, 2):
            values = {"a": ACCOUNT, "c": f"c{n}", "at": AT, "list": list_id, "act": f"act{n}"}
            run(
                text(
                    "INSERT INTO contacts (id, account_id, status, attributes, created_at,"
                    " updated_at) VALUES (:c, :a, 'known', '{}', :at, :at)"
                ),
                values,
            )
            run(
                text(
                    "INSERT INTO contact_identifiers (account_id, kind, value, contact_id,"
                    " created_at) VALUES (:a, 'email', :c, :c, :at)"
                ),
                values,
            )
            run(
                text(
                    "INSERT INTO list_members (list_id, contact_id, account_id, added_at)"
                    " VALUES (:list, :c, :a, :at)"
                ),
                values,
            )
            run(
                text(
                    "INSERT INTO contact_groups (account_id, contact_id, group_id, traits,"
                    " created_at, updated_at) VALUES (:a, :c, 'g', '{}', :at, :at)"
                ),
                values,
            )
            run(
                text(
                    "INSERT INTO activities (id, account_id, contact_id, name, occurred_at,"
                    " received_at, source, dialect, journey_eligible, properties)"
                    " VALUES (:act, :a, :c, 'Visit', :at, :at, 'api', 'netcore', false, '{}')"
                ),
                values,
            )
            run(
                text(
                    "INSERT INTO identity_events (id, account_id, kind, contact_id,"
                    " other_contact_ids, identifiers, details, created_at)"
                    " VALUES (:act, :a, 'created', :c, '[]', '[]', '{}', :at)"
                ),
                values,
            )
    engine.dispose()


def counts(url: str) -> dict[str, int]:
    engine = create_engine(normalize_database_url(url))
    try:
        with engine.connect() as conn:
            return {
                table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608
                for table in TABLES
            }
    finally:
        engine.dispose()


def test_upgrade_and_downgrade_keep_every_row_and_the_cascade(old_database: str) -> None:
    before = counts(old_database)
    assert before == dict.fromkeys(TABLES, 2)

    upgrade_database(old_database)
    assert counts(old_database) == before

    # Removing a contact still removes what belongs to it, through the new keys
    # (an engine as eventyard makes it: with SQLite's foreign keys on).
    engine = build_engine(old_database)
    with engine.begin() as conn:
        conn.execute(
            text("DELETE FROM contacts WHERE account_id = :a AND id = 'c1'"), {"a": ACCOUNT}
        )
    engine.dispose()
    after = counts(old_database)
    for table in ("contacts", "contact_identifiers", "list_members", "contact_groups"):
        assert after[table] == 1, table

    command.downgrade(alembic_config(old_database), "0008")
    assert counts(old_database) == after
    upgrade_database(old_database)
    assert counts(old_database) == after
