"""Group membership (Segment ``group``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from eventyard.core.model import ContactGroup
from eventyard.storage.sql_dialect import insert_ignoring_conflicts, supports_row_locks
from eventyard.storage.tables import contact_groups


class GroupRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def merge_memberships(
        self,
        account_id: str,
        memberships: Sequence[tuple[str, str, dict[str, Any]]],
        now: datetime,
    ) -> None:
        """Add ``(contact_id, group_id, traits)``; traits merge into a membership's stored ones.

        Later entries of the same pair win key by key, as if applied in order.
        """
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for contact_id, group_id, traits in memberships:
            merged.setdefault((contact_id, group_id), {}).update(traits)
        if not merged:
            return
        g = contact_groups.c
        # Sorted: the same lock order in every transaction. Group calls are
        # rare next to events, so a few statements per membership are fine.
        for (contact_id, group_id), traits in sorted(merged.items()):
            inserted = self.conn.execute(
                insert_ignoring_conflicts(self.conn, contact_groups)
                .values(
                    account_id=account_id,
                    contact_id=contact_id,
                    group_id=group_id,
                    traits=traits,
                    created_at=now,
                    updated_at=now,
                )
                .returning(g.group_id)
            ).first()
            if inserted is not None:
                continue
            where = (g.account_id == account_id, g.contact_id == contact_id, g.group_id == group_id)
            query = select(g.traits).where(*where)
            if supports_row_locks(self.conn):
                query = query.with_for_update()
            stored = dict(self.conn.execute(query).scalar_one())
            self.conn.execute(
                contact_groups.update()
                .where(*where)
                .values(traits={**stored, **traits}, updated_at=now)
            )

    def of_contact(self, account_id: str, contact_id: str) -> list[ContactGroup]:
        g = contact_groups.c
        rows = self.conn.execute(
            select(contact_groups)
            .where(g.account_id == account_id, g.contact_id == contact_id)
            .order_by(g.group_id)
        ).all()
        return [
            ContactGroup(
                group_id=r.group_id,
                traits=r.traits,
                created_at=r.created_at,
                updated_at=r.updated_at,
            )
            for r in rows
        ]
