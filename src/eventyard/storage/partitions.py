"""Monthly range partitions of ``activities`` on PostgreSQL.

On PostgreSQL the activities table is partitioned by ``occurred_at``, one
partition per calendar month (UTC) plus a default partition for anything
outside the months created so far. Retention then drops whole months
instead of deleting rows. SQLite has no partitions; everything here is a
no-op there and retention deletes rows.

Partition tables are named ``activities_pYYYYMM``; the default partition is
``activities_default``. Neither appears in ``storage.tables``: migrations and
this module own them, and schema comparisons skip them (``is_partition``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.engine import Connection

PARENT = "activities"
DEFAULT_PARTITION = "activities_default"
_NAME = re.compile(r"^activities_p(\d{4})(\d{2})$")


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def of(cls, when: datetime) -> Month:
        when = when.astimezone(UTC)
        return cls(when.year, when.month)

    @classmethod
    def of_table(cls, name: str) -> Month:
        """The month of a partition named ``activities_pYYYYMM``; ``ValueError`` otherwise."""
        match = _NAME.match(name)
        if match is None or not 1 <= int(match[2]) <= 12:
            raise ValueError(f"{name!r} is not a monthly activities partition")
        return cls(int(match[1]), int(match[2]))

    def next(self) -> Month:
        return Month(self.year + (self.month == 12), self.month % 12 + 1)

    def plus(self, months: int) -> Month:
        index = self.year * 12 + (self.month - 1) + months
        return Month(index // 12, index % 12 + 1)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return self.next().start

    @property
    def table(self) -> str:
        return f"activities_p{self.year:04d}{self.month:02d}"


def is_partition(name: str | None) -> bool:
    """True for the partition tables that ``storage.tables`` does not describe."""
    return name is not None and (name == DEFAULT_PARTITION or _NAME.match(name) is not None)


def is_partitioned(conn: Connection) -> bool:
    if conn.dialect.name != "postgresql":
        return False
    kind = conn.execute(
        text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:name)"), {"name": PARENT}
    ).scalar()
    return kind == "p"


def existing_months(conn: Connection) -> list[Month]:
    """The monthly partitions that exist, oldest first (empty on SQLite)."""
    if not is_partitioned(conn):
        return []
    names = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = to_regclass(:name)"
        ),
        {"name": PARENT},
    ).scalars()
    months = []
    for name in names:
        match = _NAME.match(name)
        if match:
            months.append(Month(int(match[1]), int(match[2])))
    return sorted(months)


def ensure_months(conn: Connection, first: Month, last: Month) -> list[Month]:
    """Create the monthly partitions from ``first`` to ``last`` that are missing.

    Rows of such a month that already sit in the default partition are moved
    into the new partition in the same transaction. Returns the months created.
    """
    if not is_partitioned(conn) or first > last:
        return []
    have = set(existing_months(conn))
    created = []
    month = first
    while month <= last:
        if month not in have:
            _create_month(conn, month)
            created.append(month)
        month = month.next()
    return created


def _create_month(conn: Connection, month: Month) -> None:
    bounds = {"start": month.start, "end": month.end}
    # Serialise with other processes creating the same partitions.
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('eventyard:partitions'))"))
    if conn.execute(text("SELECT to_regclass(:n)"), {"n": month.table}).scalar() is not None:
        return
    conn.execute(
        text(f"CREATE TABLE {month.table} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    )
    stray = conn.execute(
        text(
            # Table names come from this module, never from input.
            f"SELECT count(*) FROM {DEFAULT_PARTITION}"  # noqa: S608
            " WHERE occurred_at >= :start AND occurred_at < :end"
        ),
        bounds,
    ).scalar_one()
    if stray:
        conn.execute(
            text(
                f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION}"  # noqa: S608
                " WHERE occurred_at >= :start AND occurred_at < :end RETURNING *)"
                f" INSERT INTO {month.table} SELECT * FROM moved"
            ),
            bounds,
        )
    # A CHECK matching the bounds lets ATTACH skip its validation scan.
    conn.execute(
        text(
            f"ALTER TABLE {month.table} ADD CONSTRAINT {month.table}_bounds CHECK"
            f" (occurred_at >= '{month.start.isoformat()}' AND"
            f" occurred_at < '{month.end.isoformat()}')"
        )
    )
    conn.execute(
        text(
            f"ALTER TABLE {PARENT} ATTACH PARTITION {month.table} FOR VALUES"
            f" FROM ('{month.start.isoformat()}') TO ('{month.end.isoformat()}')"
        )
    )
    conn.execute(text(f"ALTER TABLE {month.table} DROP CONSTRAINT {month.table}_bounds"))


def drop_months_before(conn: Connection, cutoff: datetime) -> list[Month]:
    """Drop every monthly partition that ends at or before ``cutoff``; returns them."""
    dropped = []
    for month in existing_months(conn):
        if month.end <= cutoff:
            drop_month(conn, month)
            dropped.append(month)
    return dropped


def drop_month(conn: Connection, month: Month) -> None:
    """Detach and drop one monthly partition with every row in it."""
    conn.execute(text(f"ALTER TABLE {PARENT} DETACH PARTITION {month.table}"))
    conn.execute(text(f"DROP TABLE {month.table}"))


__all__ = [
    "DEFAULT_PARTITION",
    "Month",
    "drop_month",
    "drop_months_before",
    "ensure_months",
    "existing_months",
    "is_partition",
    "is_partitioned",
]
