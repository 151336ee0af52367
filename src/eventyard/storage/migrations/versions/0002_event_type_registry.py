"""event type registry

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import eventyard.storage.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_types",
        sa.Column("account_id", sa.String(length=24), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("created_at", eventyard.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "name", name=op.f("pk_event_types")),
    )
    op.create_table(
        "event_type_properties",
        sa.Column("account_id", sa.String(length=24), nullable=False),
        sa.Column("event_name", sa.String(length=255), nullable=False),
        sa.Column("property", sa.String(length=255), nullable=False),
        sa.Column("created_at", eventyard.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "account_id", "event_name", "property", name=op.f("pk_event_type_properties")
        ),
    )


def downgrade() -> None:
    op.drop_table("event_type_properties")
    op.drop_table("event_types")
