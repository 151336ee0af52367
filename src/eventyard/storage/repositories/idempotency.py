from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.engine import Connection

from eventyard.core.model import StoredResponse
from eventyard.storage.sql_dialect import insert_ignoring_conflicts, supports_row_locks
from eventyard.storage.tables import idempotency_keys

# A claimed key whose response is not written yet (the claiming transaction
# has not committed); other transactions never see it in this state.
_PENDING = 0


class IdempotencyRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def claim(
        self, account_id: str, key: str, fingerprint: str, now: datetime, ttl_seconds: int
    ) -> tuple[str, StoredResponse | None]:
        """Claim ``key`` for this transaction.

        Returns ``("claimed", None)`` when the caller should do the work,
        ``("replay", response)`` when the same request already succeeded, and
        ``("conflict", None)`` when the key was used with another request.
        On PostgreSQL a concurrent claim of the same key waits on the primary
        key until the first transaction ends, so it sees the final answer.
        """
        k = idempotency_keys.c
        stmt = insert_ignoring_conflicts(self.conn, idempotency_keys).returning(k.key)
        inserted = self.conn.execute(
            stmt,
            {
                "account_id": account_id,
                "key": key,
                "fingerprint": fingerprint,
                "status_code": _PENDING,
                "media_type": "",
                "body": b"",
                "created_at": now,
            },
        ).first()
        if inserted is not None:
            return "claimed", None
        row = self.conn.execute(
            select(idempotency_keys).where(k.account_id == account_id, k.key == key)
        ).one()
        if row.created_at < now - timedelta(seconds=ttl_seconds):
            self.conn.execute(
                update(idempotency_keys)
                .where(k.account_id == account_id, k.key == key)
                .values(fingerprint=fingerprint, status_code=_PENDING, created_at=now)
            )
            return "claimed", None
        if row.fingerprint != fingerprint:
            return "conflict", None
        return "replay", StoredResponse(
            status_code=row.status_code, body=row.body, media_type=row.media_type, replayed=True
        )

    def complete(self, account_id: str, key: str, response: StoredResponse) -> None:
        k = idempotency_keys.c
        self.conn.execute(
            update(idempotency_keys)
            .where(k.account_id == account_id, k.key == key)
            .values(
                status_code=response.status_code,
                media_type=response.media_type,
                body=response.body,
            )
        )

    def purge_expired(self, before: datetime, limit: int = 10_000) -> int:
        """Delete up to ``limit`` keys created before ``before``; returns how many.

        On PostgreSQL rows that a request is replaying or reclaiming right now
        are skipped rather than waited for, so purging never blocks ingest.
        """
        k = idempotency_keys.c
        expired = select(k.account_id, k.key).where(k.created_at < before).limit(limit)
        if supports_row_locks(self.conn):
            expired = expired.with_for_update(skip_locked=True)
        result = self.conn.execute(
            delete(idempotency_keys).where(tuple_(k.account_id, k.key).in_(expired))
        )
        return int(result.rowcount)
