"""Group membership (Segment ``group``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_
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
        pairs = sorted(merged)
        # One statement for the new ones, in sorted order: the same lock order in
        # every transaction (PostHog events carry their groups on every event).
        created = {
            (row.contact_id, row.group_id)
            for row in self.conn.execute(
                insert_ignoring_conflicts(self.conn, contact_groups)
                .values(
                    [
                        {
                            "account_id": account_id,
                            "contact_id": contact_id,
                            "group_id": group_id,
                            "traits": merged[(contact_id, group_id)],
                            "created_at": now,
                            "updated_at": now,
                        }
                        for contact_id, group_id in pairs
                    ]
                )
                .returning(g.contact_id, g.group_id)
            )
        }
        existing = [pair for pair in pairs if pair not in created]
        if not existing:
            return
        where = (g.account_id == account_id, tuple_(g.contact_id, g.group_id).in_(existing))
        query = select(g.contact_id, g.group_id, g.traits).where(*where)
        if supports_row_locks(self.conn):
            # Locked in sorted order, as the rows are returned.
            query = query.order_by(g.contact_id, g.group_id).with_for_update()
        stored = {(r.contact_id, r.group_id): dict(r.traits) for r in self.conn.execute(query)}
        untouched = [pair for pair in existing if not merged[pair]]
        if untouched:
            self.conn.execute(
                contact_groups.update()
                .where(g.account_id == account_id, tuple_(g.contact_id, g.group_id).in_(untouched))
                .values(updated_at=now)
            )
        for contact_id, group_id in existing:
            traits = merged[(contact_id, group_id)]
            if not traits:
                continue
            self.conn.execute(
                contact_groups.update()
                .where(
                    g.account_id == account_id, g.contact_id == contact_id, g.group_id == group_id
                )
                .values(traits={**stored[(contact_id, group_id)], **traits}, updated_at=now)
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
