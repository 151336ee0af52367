"""Hourly activity counts and ingest rejections: what the console's overview reads."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection

from eventyard.core.ids import new_id
from eventyard.storage.sql_dialect import insert_rows
from eventyard.storage.tables import activity_counts, ingest_rejections

#: ``(hour, dialect, name)``
CountKey = tuple[datetime, str, str]


class IngestStatsRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add_counts(self, account_id: str, counts: Mapping[CountKey, int]) -> None:
        """Add one row per key: insert only, so concurrent batches never wait for each other."""
        _insert_counts(
            self.conn, {(account_id, *key): count for key, count in counts.items() if count}
        )

    def hourly_counts(self, account_id: str, since: datetime) -> dict[CountKey, int]:
        """Activities received per hour, dialect and name from the hour holding ``since``."""
        c = activity_counts.c
        rows = self.conn.execute(
            select(c.hour, c.dialect, c.name, func.sum(c.count))
            .where(
                c.account_id == account_id,
                c.hour >= since.replace(minute=0, second=0, microsecond=0),
            )
            .group_by(c.hour, c.dialect, c.name)
        ).all()
        return {(r[0], r[1], r[2]): int(r[3]) for r in rows}

    def compact_counts(self, before: datetime) -> int:
        """Fold the rows of hours before ``before`` into one row per key; returns rows removed.

        Rows committed by a concurrent batch after the delete's snapshot stay
        beside the folded row: sums are unchanged either way.
        """
        c = activity_counts.c
        taken = self.conn.execute(
            delete(activity_counts)
            .where(c.hour < before)
            .returning(c.account_id, c.hour, c.dialect, c.name, c.count)
        ).all()
        folded: Counter[tuple[str, datetime, str, str]] = Counter()
        for account_id, hour, dialect, name, count in taken:
            folded[(account_id, hour, dialect, name)] += int(count)
        _insert_counts(self.conn, folded)
        return len(taken) - len(folded)

    def add_rejection(self, row: Mapping[str, Any]) -> None:
        self.conn.execute(ingest_rejections.insert(), dict(row))

    def latest_rejections(self, account_id: str, limit: int) -> list[dict[str, Any]]:
        r = ingest_rejections.c
        rows = self.conn.execute(
            select(ingest_rejections)
            .where(r.account_id == account_id)
            .order_by(r.received_at.desc(), r.id.desc())
            .limit(limit)
        ).all()
        return [dict(row._mapping) for row in rows]

    def rejected_records_since(self, account_id: str, since: datetime) -> int:
        r = ingest_rejections.c
        total = self.conn.execute(
            select(func.coalesce(func.sum(r.rejected_records), 0)).where(
                r.account_id == account_id, r.received_at >= since
            )
        ).scalar_one()
        return int(total)


def _insert_counts(conn: Connection, counts: Mapping[tuple[str, datetime, str, str], int]) -> None:
    """One row per ``(account_id, hour, dialect, name)``, each with a fresh id."""
    insert_rows(
        conn,
        activity_counts,
        [
            {
                "id": new_id(),
                "account_id": account_id,
                "hour": hour,
                "dialect": dialect,
                "name": name,
                "count": count,
            }
            for (account_id, hour, dialect, name), count in counts.items()
        ],
    )
