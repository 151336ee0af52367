from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from eventyard.core.model import Account
from eventyard.storage.sql_dialect import supports_row_locks
from eventyard.storage.tables import accounts


def account_of_row(row: Any) -> Account:
    """The account in a row that selected the ``accounts`` columns (alone or joined)."""
    m, a = row._mapping, accounts.c
    return Account(
        id=m[a.id],
        name=m[a.name],
        settings=m[a.settings],
        created_at=m[a.created_at],
        signing_secret=m[a.signing_secret],
    )


class AccountRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, account: Account) -> None:
        self.conn.execute(
            insert(accounts).values(
                id=account.id,
                name=account.name,
                settings=account.settings,
                created_at=account.created_at,
                signing_secret=account.signing_secret,
            )
        )

    def get(self, account_id: str, *, for_update: bool = False) -> Account | None:
        """The account; ``for_update`` locks its row to the end of the transaction (PostgreSQL).

        SQLite writers already go one at a time.
        """
        query = select(accounts).where(accounts.c.id == account_id)
        if for_update and supports_row_locks(self.conn):
            query = query.with_for_update()
        row = self.conn.execute(query).first()
        return None if row is None else account_of_row(row)

    def get_many(self, account_ids: Iterable[str]) -> dict[str, Account]:
        """The accounts of ``account_ids`` that exist, by id."""
        ids = sorted(set(account_ids))
        found: dict[str, Account] = {}
        for start in range(0, len(ids), 500):
            rows = self.conn.execute(
                select(accounts).where(accounts.c.id.in_(ids[start : start + 500]))
            )
            found.update((r.id, account_of_row(r)) for r in rows)
        return found

    def update_settings(self, account_id: str, settings: dict[str, Any]) -> bool:
        """Store the account's settings as given; ``False`` when there is no such account."""
        result = self.conn.execute(
            update(accounts).where(accounts.c.id == account_id).values(settings=settings)
        )
        return bool(result.rowcount)

    def list(self) -> list[Account]:
        rows = self.conn.execute(select(accounts).order_by(accounts.c.created_at))
        return [account_of_row(r) for r in rows]

    def count(self) -> int:
        return int(self.conn.execute(select(func.count()).select_from(accounts)).scalar_one())
