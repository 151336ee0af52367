from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from eventyard.core.model import Account
from eventyard.storage.sql_dialect import supports_row_locks
from eventyard.storage.tables import accounts, credentials


def _account(row: Any) -> Account:
    return Account(
        id=row.id,
        name=row.name,
        settings=row.settings,
        created_at=row.created_at,
        signing_secret=row.signing_secret,
    )


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
                signing_secret=account.signing_secret,
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

    def get(self, account_id: str, *, for_update: bool = False) -> Account | None:
        """The account; ``for_update`` locks its row to the end of the transaction (PostgreSQL).

        SQLite writers already go one at a time.
        """
        query = select(accounts).where(accounts.c.id == account_id)
        if for_update and supports_row_locks(self.conn):
            query = query.with_for_update()
        row = self.conn.execute(query).first()
        return None if row is None else _account(row)

    def update_settings(self, account_id: str, settings: dict[str, Any]) -> bool:
        """Store the account's settings as given; ``False`` when there is no such account."""
        result = self.conn.execute(
            update(accounts).where(accounts.c.id == account_id).values(settings=settings)
        )
        return bool(result.rowcount)

    def list(self) -> list[Account]:
        rows = self.conn.execute(select(accounts).order_by(accounts.c.created_at))
        return [_account(r) for r in rows]

    def count(self) -> int:
        return int(self.conn.execute(select(func.count()).select_from(accounts)).scalar_one())
