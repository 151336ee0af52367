"""Message ids already stored: deduplication that ignores the message's timestamp."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from eventyard.storage.tables import message_ids


class MessageIdRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def claim(
        self, account_id: str, ids: Sequence[str], now: datetime, window_start: datetime
    ) -> set[str]:
        """The ids of ``ids`` not seen since ``window_start``, now recorded as seen.

        An id last seen before the window is claimed again (its row renewed),
        whether or not the purge has removed it yet. A concurrent claim of
        the same id waits on the primary key until the first transaction
        ends, so exactly one of them gets it.
        """
        wanted = sorted(set(ids))  # the same lock order in every transaction
        if not wanted:
            return set()
        module = postgresql if self.conn.dialect.name == "postgresql" else sqlite
        m = message_ids.c
        stmt = module.insert(message_ids)
        stmt = stmt.on_conflict_do_update(
            index_elements=[m.account_id, m.message_id],
            set_={"received_at": stmt.excluded.received_at},
            where=m.received_at < window_start,
        ).returning(m.message_id)
        rows = self.conn.execute(
            stmt,
            [{"account_id": account_id, "message_id": i, "received_at": now} for i in wanted],
        ).all()
        return {r[0] for r in rows}

    def purge_before(self, before: datetime, limit: int) -> int:
        """Forget up to ``limit`` ids last seen before ``before``; returns how many went."""
        m = message_ids.c
        oldest = select(m.account_id, m.message_id).where(m.received_at < before).limit(limit)
        result = self.conn.execute(
            delete(message_ids).where(tuple_(m.account_id, m.message_id).in_(oldest))
        )
        return int(result.rowcount)
