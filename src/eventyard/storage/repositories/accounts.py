from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from eventyard.core.model import Account
from eventyard.storage.tables import accounts, credentials


def _account(row: Any) -> Account:
    return Account(id=row.id, name=row.name, settings=row.settings, created_at=row.created_at)


class AccountRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, account: Account, creds: Sequence[tuple[str, str | None, str]]) -> None:
        self.conn.execute(
            insert(accounts).values(
                id=account.id,
                name=account.name,
                settings=account.settings,
                created_at=account.created_at,
            )
        )
        self.conn.execute(
            insert(credentials),
            [
                {
                    "account_id": account.id,
                    "kind": kind,
                    "public_id": public_id,
                    "secret_hash": digest,
                    "created_at": account.created_at,
                }
                for kind, public_id, digest in creds
            ],
        )

    def find_by_credential(
        self, kind: str, secret_hash: str, public_id: str | None = None
    ) -> tuple[Account, str] | None:
        query = (
            select(accounts, credentials.c.secret_hash)
            .join(credentials, credentials.c.account_id == accounts.c.id)
            .where(credentials.c.kind == kind, credentials.c.secret_hash == secret_hash)
        )
        # A credential issued with a public id (CleverTap's account id) only
        # opens the account together with that id.
        query = query.where(
            credentials.c.public_id.is_(None)
            if public_id is None
            else credentials.c.public_id == public_id
        )
        row = self.conn.execute(query).first()
        return None if row is None else (_account(row), row.secret_hash)

    def list(self) -> list[Account]:
        rows = self.conn.execute(select(accounts).order_by(accounts.c.created_at))
        return [_account(r) for r in rows]

    def count(self) -> int:
        return int(self.conn.execute(select(func.count()).select_from(accounts)).scalar_one())
