from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection

from eventyard.core.definitions import DefinitionSpec
from eventyard.core.model import ActivityDefinition
from eventyard.storage.sql_dialect import in_values, insert_ignoring_conflicts
from eventyard.storage.tables import activity_definitions

_d = activity_definitions.c


def _definition(row: Any) -> ActivityDefinition:
    return ActivityDefinition(
        activity_id=row.activity_id,
        name=row.name,
        fields=dict(row.fields),
        auto_created=bool(row.auto_created),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class DefinitionRepository:
    """An account's activity definitions (Ortto), keyed by ``activity_id``."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def get_many(
        self, account_id: str, activity_ids: Iterable[str]
    ) -> dict[str, ActivityDefinition]:
        """The definitions of ``activity_ids`` that exist, by id (one query)."""
        wanted = sorted(set(activity_ids))
        if not wanted:
            return {}
        rows = self.conn.execute(
            select(activity_definitions).where(
                _d.account_id == account_id, in_values(self.conn, _d.activity_id, wanted)
            )
        )
        return {row.activity_id: _definition(row) for row in rows}

    def get(self, account_id: str, activity_id: str) -> ActivityDefinition | None:
        row = self.conn.execute(
            select(activity_definitions).where(
                _d.account_id == account_id, _d.activity_id == activity_id
            )
        ).first()
        return None if row is None else _definition(row)

    def list(self, account_id: str) -> list[ActivityDefinition]:
        rows = self.conn.execute(
            select(activity_definitions).where(_d.account_id == account_id).order_by(_d.activity_id)
        )
        return [_definition(row) for row in rows]

    def add_missing(
        self, account_id: str, definitions: Sequence[DefinitionSpec], now: datetime
    ) -> None:
        """Create the definitions that do not exist yet, marked ``auto_created``.

        One ``INSERT … ON CONFLICT DO NOTHING``: when two requests create the
        same id at once, both succeed and the first to commit wins.
        """
        if not definitions:
            return
        self.conn.execute(
            insert_ignoring_conflicts(self.conn, activity_definitions),
            [
                {
                    "account_id": account_id,
                    "activity_id": d.activity_id,
                    "name": d.name,
                    "fields": d.fields,
                    "auto_created": True,
                    "created_at": now,
                    "updated_at": now,
                }
                for d in sorted(definitions, key=lambda d: d.activity_id)
            ],
        )

    def create(self, account_id: str, definition: ActivityDefinition) -> bool:
        """Store a new definition; ``False`` (and nothing changed) when its id exists."""
        # RETURNING, not rowcount: psycopg reports -1 for INSERT … ON CONFLICT.
        inserted = self.conn.execute(
            insert_ignoring_conflicts(self.conn, activity_definitions)
            .values(
                account_id=account_id,
                activity_id=definition.activity_id,
                name=definition.name,
                fields=definition.fields,
                auto_created=definition.auto_created,
                created_at=definition.created_at,
                updated_at=definition.updated_at,
            )
            .returning(_d.activity_id)
        ).first()
        return inserted is not None

    def replace(self, account_id: str, definition: ActivityDefinition) -> bool:
        """Replace the name and fields of an existing definition; ``False`` when there is none.

        ``created_at`` and ``auto_created`` stay as they were.
        """
        result = self.conn.execute(
            update(activity_definitions)
            .where(_d.account_id == account_id, _d.activity_id == definition.activity_id)
            .values(
                name=definition.name, fields=definition.fields, updated_at=definition.updated_at
            )
        )
        return bool(result.rowcount)

    def delete(self, account_id: str, activity_id: str) -> bool:
        result = self.conn.execute(
            delete(activity_definitions).where(
                _d.account_id == account_id, _d.activity_id == activity_id
            )
        )
        return bool(result.rowcount)
