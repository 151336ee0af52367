"""json columns keep the text as sent (PostgreSQL: jsonb -> json)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

JSONB normalises documents (keys sorted by length then bytes), so properties
and attributes came back in another key order on PostgreSQL than on SQLite.
SQLite already stores the JSON text; nothing changes there.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("accounts", "settings"),
    ("contacts", "attributes"),
    ("activities", "properties"),
    ("identity_events", "other_contact_ids"),
    ("identity_events", "identifiers"),
    ("identity_events", "details"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.alter_column(
            table,
            column,
            type_=sa.JSON(),
            existing_type=postgresql.JSONB(astext_type=sa.Text()),
            postgresql_using=f"{column}::json",
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.alter_column(
            table,
            column,
            type_=postgresql.JSONB(astext_type=sa.Text()),
            existing_type=sa.JSON(),
            postgresql_using=f"{column}::jsonb",
        )
