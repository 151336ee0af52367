"""Retention: the statements that find, count, delete and drop expired activities.

Rows are deleted in bounded chunks, one statement each, so that a large
purge never holds one long transaction or lock; the caller commits between
chunks. On PostgreSQL whole monthly partitions are dropped instead where
every account's rows in them have expired (``storage.partitions`` owns the
DDL); ``occurred_at < cutoff`` in every statement lets PostgreSQL prune the
partitions that cannot hold expired rows.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, text
from sqlalchemy.engine import Connection

from eventyard.core.model import Account
from eventyard.storage import partitions
from eventyard.storage.partitions import Month
from eventyard.storage.repositories.accounts import account_of_row
from eventyard.storage.sql_dialect import supports_row_locks
from eventyard.storage.tables import accounts, activities

#: How long dropping a partition waits for its lock on ``activities``.
DROP_LOCK_TIMEOUT = "5s"


class RetentionRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def accounts(self, *, lock: bool = False) -> list[Account]:
        """Every account, oldest first.

        ``lock`` (PostgreSQL) holds their rows ``FOR SHARE`` to the end of the
        transaction, so that no account's retention can grow while partitions
        chosen by it are dropped. SQLite writers already go one at a time.
        """
        query = select(accounts).order_by(accounts.c.created_at, accounts.c.id)
        if lock and supports_row_locks(self.conn):
            query = query.with_for_update(read=True)
        return [account_of_row(row) for row in self.conn.execute(query)]

    def count_expired(self, account_id: str, cutoff: datetime) -> int:
        """How many of the account's activities occurred before ``cutoff``."""
        a = activities.c
        return int(
            self.conn.execute(
                select(func.count())
                .select_from(activities)
                .where(a.account_id == account_id, a.occurred_at < cutoff)
            ).scalar_one()
        )

    def delete_expired(self, account_id: str, cutoff: datetime, limit: int) -> int:
        """Delete up to ``limit`` of the account's activities older than ``cutoff``; how many."""
        a = activities.c
        expired = (a.account_id == account_id, a.occurred_at < cutoff)
        chunk = select(a.id).where(*expired).limit(limit).scalar_subquery()
        # The outer conditions repeat the inner ones so that PostgreSQL prunes
        # the partitions of the DELETE too, not only those of the subquery.
        result = self.conn.execute(delete(activities).where(*expired, a.id.in_(chunk)))
        return int(result.rowcount)

    def droppable_partitions(self, cutoff: datetime) -> list[str]:
        """The monthly partitions that end at or before ``cutoff``, oldest first (PostgreSQL)."""
        months = partitions.existing_months(self.conn)
        return [month.table for month in months if month.end <= cutoff]

    def count_by_account(self, partition: str) -> dict[str, int]:
        """How many activities of each account one monthly partition holds."""
        if not partitions.is_partition(partition) or partition == partitions.DEFAULT_PARTITION:
            raise ValueError(f"{partition!r} is not a monthly activities partition")
        rows = self.conn.execute(
            # The name was checked above against the partitions' naming scheme.
            text(f"SELECT account_id, count(*) FROM {partition} GROUP BY account_id")  # noqa: S608
        ).all()
        return {str(row[0]): int(row[1]) for row in rows}

    def drop_partition(self, partition: str) -> None:
        """Detach and drop one monthly partition and every row in it.

        Detaching waits for an exclusive lock on ``activities``, and every
        writer queues behind that wait; after ``DROP_LOCK_TIMEOUT`` (a long
        export reading the table, say) it gives up with ``OperationalError``
        instead, and the purge is tried again later.
        """
        month = Month.of_table(partition)
        self.conn.execute(text(f"SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'"))
        partitions.drop_month(self.conn, month)

    def ensure_partitions(self, now: datetime, months_ahead: int) -> list[str]:
        """Create the missing monthly partitions from ``now``'s month to ``months_ahead`` later.

        Rows of those months waiting in the default partition move into them.
        Returns the partitions created, oldest first; nothing happens on SQLite.
        """
        this_month = Month.of(now)
        created = partitions.ensure_months(self.conn, this_month, this_month.plus(months_ahead))
        return [month.table for month in created]

    def take_schedule_turn(self, name: str) -> None:
        """Hold ``name``'s turn to the end of the transaction (PostgreSQL advisory lock).

        SQLite needs nothing: its writers already take turns.
        """
        if supports_row_locks(self.conn):
            self.conn.execute(
                select(func.pg_advisory_xact_lock(func.hashtext(f"eventyard:schedule:{name}")))
            )
