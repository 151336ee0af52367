"""Rows written by the bulk path read back exactly like rows SQLAlchemy writes.

The fast path (COPY on PostgreSQL, the driver's executemany on SQLite)
encodes values itself; if it differed from SQLAlchemy's encoding, timestamps
would sort wrongly against other rows and JSON would read back changed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import cast, insert, select
from sqlalchemy.types import Text

from eventyard.storage.database import Database
from eventyard.storage.sql_dialect import insert_rows
from eventyard.storage.tables import activities


def row(activity_id: str, when: datetime, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": activity_id,
        "account_id": "e" * 24,
        "contact_id": "c" * 24,
        "name": "n",
        "occurred_at": when,
        "received_at": when,
        "source": "web",
        "dialect": "test",
        "asset_id": None,
        "journey_eligible": False,
        "properties": properties,
        "dedup_key": None,
        "location": {"custom": {"name": "Melbourne", "latitude": -37.8136}},
        "value_milli": 9_223_372_036_854_775_807,
    }


@pytest.mark.parametrize(
    "when",
    [
        datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
        datetime(2026, 11, 23, 10, 0, 0, 123456, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime.fromisoformat("2021-12-29T06:12:28+05:30"),
    ],
)
def test_bulk_rows_equal_sqlalchemy_rows(store: Database, when: datetime) -> None:
    props = {"text": 'quote " backslash \\ tab \t é 😀', "n": 2.5, "nested": [{"a": None}]}
    with store.engine.connect() as conn, conn.begin() as tx:
        conn.execute(insert(activities), [row("a" * 24, when, props)])
        insert_rows(conn, activities, [row("b" * 24, when, props)])
        raw = conn.execute(
            select(
                cast(activities.c.occurred_at, Text),
                activities.c.journey_eligible,
                activities.c.properties,
            )
            .where(activities.c.account_id == "e" * 24)
            .order_by(activities.c.id)
        ).all()
        # A query with a bound timestamp finds both rows: the encodings compare equal.
        same_instant = conn.execute(
            select(activities.c.id).where(
                activities.c.account_id == "e" * 24, activities.c.occurred_at == when
            )
        ).all()
        tx.rollback()
    assert raw[0] == raw[1]
    assert raw[0][1] is False
    assert raw[0][2] == props
    assert len(same_instant) == 2
