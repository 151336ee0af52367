"""Contact lists and their members."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, func, literal, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from eventyard.core.identifiers import Identifier
from eventyard.core.lists import ContactList
from eventyard.core.model import Contact
from eventyard.storage.sql_dialect import in_values, insert_ignoring_conflicts, unnest_rows
from eventyard.storage.tables import contact_identifiers, contacts, list_members, lists
from eventyard.storage.types import UTCDateTime


def _list(row: Any, members: int = 0) -> ContactList:
    return ContactList(id=row.id, name=row.name, created_at=row.created_at, members=members)


def storable_id(value: int) -> bool:
    """Whether ``value`` fits ``lists.id``, a 32-bit ``INTEGER`` on PostgreSQL."""
    return -(2**31) <= value < 2**31


class ListRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def create(self, account_id: str, name: str, now: datetime) -> ContactList | None:
        """A new list; ``None`` when the account already has one of that name."""
        stmt = (
            insert_ignoring_conflicts(self.conn, lists)
            .values(account_id=account_id, name=name, created_at=now)
            .returning(lists.c.id, lists.c.name, lists.c.created_at)
        )
        row = self.conn.execute(stmt).first()
        return None if row is None else _list(row)

    def get(self, account_id: str, list_id: int) -> ContactList | None:
        if not storable_id(list_id):
            return None  # no list has it; PostgreSQL would refuse to compare it
        row = self.conn.execute(
            select(lists).where(lists.c.account_id == account_id, lists.c.id == list_id)
        ).first()
        if row is None:
            return None
        members = self.conn.execute(
            select(func.count()).select_from(list_members).where(list_members.c.list_id == row.id)
        ).scalar_one()
        return _list(row, int(members))

    def of_account(self, account_id: str) -> list[ContactList]:
        """The account's lists by id, each with its member count (one query)."""
        counts = (
            select(list_members.c.list_id, func.count().label("members"))
            .where(list_members.c.account_id == account_id)
            .group_by(list_members.c.list_id)
            .subquery()
        )
        rows = self.conn.execute(
            select(lists, func.coalesce(counts.c.members, 0).label("members"))
            .outerjoin(counts, counts.c.list_id == lists.c.id)
            .where(lists.c.account_id == account_id)
            .order_by(lists.c.id)
        )
        return [_list(r, int(r.members)) for r in rows]

    def add_members(
        self, account_id: str, list_id: int, contact_ids: Iterable[str], now: datetime
    ) -> None:
        """Make the contacts members (those that are already stay as they were): one statement."""
        ids = sorted(set(contact_ids))
        if not ids:
            return
        if self.conn.dialect.name == "postgresql":
            rows = unnest_rows("new_members", {"contact_id": ids})
            self.conn.execute(
                postgresql.insert(list_members)
                .from_select(
                    ["list_id", "contact_id", "account_id", "added_at"],
                    select(
                        literal(list_id, Integer()),
                        rows.c.contact_id,
                        literal(account_id, String()),
                        literal(now, UTCDateTime()),
                    ),
                )
                .on_conflict_do_nothing()
            )
            return
        self.conn.execute(
            insert_ignoring_conflicts(self.conn, list_members),
            [
                {"list_id": list_id, "contact_id": cid, "account_id": account_id, "added_at": now}
                for cid in ids
            ],
        )

    def members(
        self, account_id: str, list_id: int, limit: int, after: str | None
    ) -> list[Contact]:
        """Up to ``limit`` member contacts by id, after the id ``after`` (two queries)."""
        if not storable_id(list_id):
            return []
        query = (
            select(contacts)
            .join(list_members, list_members.c.contact_id == contacts.c.id)
            .where(list_members.c.list_id == list_id, list_members.c.account_id == account_id)
            .order_by(contacts.c.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(contacts.c.id > after)
        rows = self.conn.execute(query).all()
        if not rows:
            return []
        ci = contact_identifiers.c
        found: dict[str, list[Identifier]] = defaultdict(list)
        for contact_id, kind, value in self.conn.execute(
            select(ci.contact_id, ci.kind, ci.value)
            .where(
                ci.account_id == account_id,
                in_values(self.conn, ci.contact_id, [r.id for r in rows]),
            )
            .order_by(ci.contact_id, ci.created_at, ci.kind)
        ):
            found[contact_id].append(Identifier(kind, value))
        return [
            Contact(
                id=r.id,
                status=r.status,
                identifiers=tuple(found.get(r.id, [])),
                attributes=r.attributes,
                created_at=r.created_at,
                updated_at=r.updated_at,
            )
            for r in rows
        ]
