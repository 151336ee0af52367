"""Credentials: issue, find by digest, list, revoke, recheck and record their use."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from eventyard.core.credentials import Credential
from eventyard.core.model import Account
from eventyard.storage.repositories.accounts import account_of_row
from eventyard.storage.tables import accounts, credentials

#: Ids per statement of a recheck (well under SQLite's bound-parameter limit).
_CHUNK = 500


def _credential(row: Any) -> Credential:
    c = credentials.c
    return Credential(
        id=row._mapping[c.id],
        account_id=row._mapping[c.account_id],
        kind=row._mapping[c.kind],
        prefix=row._mapping[c.prefix],
        name=row._mapping[c.name],
        public_id=row._mapping[c.public_id],
        created_at=row._mapping[c.created_at],
        last_used_at=row._mapping[c.last_used_at],
        expires_at=row._mapping[c.expires_at],
        revoked_at=row._mapping[c.revoked_at],
    )


_COLUMNS = (
    credentials.c.id,
    credentials.c.account_id,
    credentials.c.kind,
    credentials.c.prefix,
    credentials.c.name,
    credentials.c.public_id,
    credentials.c.created_at,
    credentials.c.last_used_at,
    credentials.c.expires_at,
    credentials.c.revoked_at,
)


def _active(now: datetime) -> Any:
    c = credentials.c
    return and_(c.revoked_at.is_(None), or_(c.expires_at.is_(None), c.expires_at > now))


class CredentialRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, issued: Sequence[tuple[Credential, str]]) -> None:
        """Store credentials with the digests of their secrets."""
        if not issued:
            return
        self.conn.execute(
            insert(credentials),
            [
                {
                    "id": cred.id,
                    "account_id": cred.account_id,
                    "kind": cred.kind,
                    "prefix": cred.prefix,
                    "name": cred.name,
                    "public_id": cred.public_id,
                    "secret_hash": digest,
                    "created_at": cred.created_at,
                    "expires_at": cred.expires_at,
                }
                for cred, digest in issued
            ],
        )

    def find(
        self, kinds: Sequence[str], secret_hash: str, public_id: str | None = None
    ) -> tuple[Account, Credential, str] | None:
        """The account, credential and stored digest of a secret of one of ``kinds``.

        Revoked and expired credentials are found too: the caller says why
        they open nothing.
        """
        c = credentials.c
        query = (
            select(accounts, *_COLUMNS, c.secret_hash)
            .join(accounts, accounts.c.id == c.account_id)
            .where(c.secret_hash == secret_hash, c.kind.in_(kinds))
        )
        # A credential issued with a public id (CleverTap's account id) only
        # opens the account together with that id.
        query = query.where(
            c.public_id.is_(None) if public_id is None else c.public_id == public_id
        )
        row = self.conn.execute(query).first()
        if row is None:
            return None
        return account_of_row(row), _credential(row), row.secret_hash

    def list(self, account_id: str) -> list[Credential]:
        """The account's credentials, oldest first, revoked ones included."""
        rows = self.conn.execute(
            select(*_COLUMNS)
            .where(credentials.c.account_id == account_id)
            .order_by(credentials.c.created_at, credentials.c.id)
        )
        return [_credential(r) for r in rows]

    def get(self, account_id: str, credential_id: str) -> Credential | None:
        row = self.conn.execute(
            select(*_COLUMNS).where(
                credentials.c.account_id == account_id, credentials.c.id == credential_id
            )
        ).first()
        return None if row is None else _credential(row)

    def public_id_of(self, account_id: str, kind: str) -> str | None:
        """The public id the account's credentials of ``kind`` share (the first one's)."""
        c = credentials.c
        found: str | None = self.conn.execute(
            select(c.public_id)
            .where(c.account_id == account_id, c.kind == kind, c.public_id.is_not(None))
            .order_by(c.created_at, c.id)
            .limit(1)
        ).scalar()
        return found

    def count_active(self, account_id: str, kind: str, now: datetime) -> int:
        c = credentials.c
        count: int = self.conn.execute(
            select(func.count())
            .select_from(credentials)
            .where(c.account_id == account_id, c.kind == kind, _active(now))
        ).scalar_one()
        return count

    def revoke(self, account_id: str, credential_id: str, now: datetime) -> bool:
        """Mark the credential revoked at ``now``; ``False`` if it was already (or is not there)."""
        c = credentials.c
        result = self.conn.execute(
            update(credentials)
            .where(c.account_id == account_id, c.id == credential_id, c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return bool(result.rowcount)

    def live(self, credential_ids: Iterable[str], now: datetime) -> dict[str, str]:
        """Of ``credential_ids``, those still active at ``now``, with their account ids.

        Only the two ids travel: the caller reads each account once.
        """
        ids = list(credential_ids)
        live: dict[str, str] = {}
        c = credentials.c
        for start in range(0, len(ids), _CHUNK):
            rows = self.conn.execute(
                select(c.id, c.account_id).where(
                    c.id.in_(ids[start : start + _CHUNK]), _active(now)
                )
            )
            live.update((r.id, r.account_id) for r in rows)
        return live

    def record_use(self, used: Mapping[str, datetime], granularity: timedelta) -> None:
        """Move ``last_used_at`` to each credential's last use, unless it is within ``granularity``.

        The condition keeps the row unwritten when another process recorded
        a use less than ``granularity`` ago.
        """
        if not used:
            return
        c = credentials.c
        self.conn.execute(
            update(credentials)
            .where(
                c.id == bindparam("b_id"),
                or_(c.last_used_at.is_(None), c.last_used_at < bindparam("b_stale")),
            )
            .values(last_used_at=bindparam("b_used")),
            [
                {"b_id": cid, "b_used": at, "b_stale": at - granularity}
                for cid, at in sorted(used.items())
            ],
        )
