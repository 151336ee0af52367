from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, select, tuple_, update
from sqlalchemy.engine import Connection

from eventyard.core.model import StoredResponse
from eventyard.storage.sql_dialect import (
    in_values,
    insert_ignoring_conflicts,
    supports_row_locks,
)
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
        """Claim one ``key`` for this transaction: :meth:`claim_many` for one key."""
        return self.claim_many(account_id, [(key, fingerprint, ttl_seconds)], now)[key]

    def claim_many(
        self, account_id: str, claims: Sequence[tuple[str, str, int]], now: datetime
    ) -> dict[str, tuple[str, StoredResponse | None]]:
        """Claim every ``(key, fingerprint, ttl_seconds)`` of ``claims`` for this transaction.

        Each key gets ``("claimed", None)`` when the caller should do the work,
        ``("replay", response)`` when the same request already succeeded, and
        ``("conflict", None)`` when the key was used with another request.
        The keys must be distinct. One insert claims every new key and one
        select reads the others, however many keys there are (a key expired
        but not purged yet costs an update of its own). On PostgreSQL a
        concurrent claim of the same key waits on the primary key until the
        first transaction ends, so it sees the final answer; keys are claimed
        in sorted order, so two transactions claiming the same keys wait for
        each other instead of deadlocking.
        """
        if not claims:
            return {}
        k = idempotency_keys.c
        ordered = sorted(claims)
        stmt = insert_ignoring_conflicts(self.conn, idempotency_keys).returning(k.key)
        rows = [
            {
                "account_id": account_id,
                "key": key,
                "fingerprint": fingerprint,
                "status_code": _PENDING,
                "media_type": "",
                "body": b"",
                "created_at": now,
            }
            for key, fingerprint, _ in ordered
        ]
        # One row is a plain execute; several are one multi-row statement
        # (SQLAlchemy's "insertmanyvalues"), RETURNING the keys inserted.
        result = self.conn.execute(stmt, rows[0] if len(rows) == 1 else rows)
        inserted = set(result.scalars())
        outcome: dict[str, tuple[str, StoredResponse | None]] = dict.fromkeys(
            inserted, ("claimed", None)
        )
        taken = [claim for claim in ordered if claim[0] not in inserted]
        if not taken:
            return outcome
        found = {
            row.key: row
            for row in self.conn.execute(
                select(idempotency_keys).where(
                    k.account_id == account_id,
                    in_values(self.conn, k.key, [key for key, _, _ in taken]),
                )
            )
        }
        for key, fingerprint, ttl_seconds in taken:
            row = found[key]
            if row.created_at < now - timedelta(seconds=ttl_seconds):
                self.conn.execute(
                    update(idempotency_keys)
                    .where(k.account_id == account_id, k.key == key)
                    .values(fingerprint=fingerprint, status_code=_PENDING, created_at=now)
                )
                outcome[key] = ("claimed", None)
            elif row.fingerprint != fingerprint:
                outcome[key] = ("conflict", None)
            else:
                outcome[key] = (
                    "replay",
                    StoredResponse(
                        status_code=row.status_code,
                        body=row.body,
                        media_type=row.media_type,
                        replayed=True,
                    ),
                )
        return outcome

    def complete(self, account_id: str, key: str, response: StoredResponse) -> None:
        """Keep ``response`` with a key this transaction claimed: :meth:`complete_many`."""
        self.complete_many(account_id, [(key, response)])

    def complete_many(
        self, account_id: str, responses: Sequence[tuple[str, StoredResponse]]
    ) -> None:
        """Keep each ``(key, response)`` with its key (claimed in this transaction) at once."""
        if not responses:
            return
        k = idempotency_keys.c
        stmt = (
            update(idempotency_keys)
            .where(k.account_id == account_id, k.key == bindparam("k_key"))
            .values(
                status_code=bindparam("k_status"),
                media_type=bindparam("k_media"),
                body=bindparam("k_body"),
            )
        )
        params = [
            {
                "k_key": key,
                "k_status": response.status_code,
                "k_media": response.media_type,
                "k_body": response.body,
            }
            for key, response in responses
        ]
        self.conn.execute(stmt, params[0] if len(params) == 1 else params)

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
