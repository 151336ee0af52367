"""Upgrading a deployment whose activities predate provenance (issue 23).

"Every stored activity records which identifier resolved it; migrate
existing rows as well as can be known": an old activity is attributed to
the identifier its contact has held longest (migration 0010), in every
monthly partition on PostgreSQL; an activity whose contact holds no
identifier keeps none.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from eventyard.storage.engine import normalize_database_url
from eventyard.storage.migrate import upgrade_database
from tests.support import filled_database

NOW = datetime.now(UTC)
EARLY = NOW - timedelta(days=30)
# Ten years back lands in the default partition, the others in their months.
WHEN = [NOW - timedelta(days=3650), NOW - timedelta(days=400), NOW]


@pytest.fixture(params=["sqlite", "postgresql"])
def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """At revision 0008: contact c1 with two identifiers (email first), c2 with none."""
    with filled_database(request, tmp_path, _fill) as url:
        yield url


def _fill(url: str) -> None:
    upgrade_database(url, "0008")
    engine = create_engine(normalize_database_url(url))
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO accounts (id, name, settings, created_at)"
                " VALUES ('acc', 'Old', '{}', :at)"
            ),
            {"at": EARLY},
        )
        for contact in ("c1", "c2"):
            conn.execute(
                text(
                    "INSERT INTO contacts (id, account_id, status, attributes, created_at,"
                    " updated_at) VALUES (:id, 'acc', 'known', '{}', :at, :at)"
                ),
                {"id": contact, "at": EARLY},
            )
        for kind, value, at in [
            ("identity", "u-1", EARLY + timedelta(days=1)),
            ("email", "jane@example.com", EARLY),
        ]:
            conn.execute(
                text(
                    "INSERT INTO contact_identifiers (account_id, kind, value, contact_id,"
                    " created_at) VALUES ('acc', :kind, :value, 'c1', :at)"
                ),
                {"kind": kind, "value": value, "at": at},
            )
        for index, moment in enumerate([*WHEN, NOW]):
            conn.execute(
                text(
                    "INSERT INTO activities (id, account_id, contact_id, name, occurred_at,"
                    " received_at, source, dialect, journey_eligible, properties)"
                    " VALUES (:id, 'acc', :contact, 'order', :at, :at, 'api', 'ortto', false,"
                    " '{}')"
                ),
                {"id": f"a{index}", "contact": "c2" if index == 3 else "c1", "at": moment},
            )
    engine.dispose()


def test_old_activities_are_attributed_to_their_contacts_oldest_identifier(
    old_database: str,
) -> None:
    upgrade_database(old_database)
    engine = create_engine(normalize_database_url(old_database))
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, resolved_kind, resolved_value FROM activities ORDER BY id")
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("a0", "email", "jane@example.com"),
        ("a1", "email", "jane@example.com"),
        ("a2", "email", "jane@example.com"),
        ("a3", None, None),
    ]
