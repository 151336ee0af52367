"""destinations: where activities are delivered, their outbox, deliveries and dead letters

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import eventyard.storage.types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = eventyard.storage.types.UTCDateTime(timezone=True)
ID = sa.String(length=24)
JSON = eventyard.storage.types.json_type()


def upgrade() -> None:
    op.create_table(
        "destinations",
        sa.Column("account_id", ID, nullable=False),
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("credentials", sa.Text(), nullable=False),
        sa.Column("filter", JSON, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.Column("delivered", sa.BigInteger(), nullable=False),
        sa.Column("failed_attempts", sa.BigInteger(), nullable=False),
        sa.Column("last_delivery_at", UTC, nullable=True),
        sa.Column("last_error", sa.String(length=2000), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_destinations_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "id", name=op.f("pk_destinations")),
    )
    op.create_table(
        "destination_outbox",
        sa.Column("account_id", ID, nullable=False),
        sa.Column("destination_id", ID, nullable=False),
        sa.Column("activity_id", ID, nullable=False),
        sa.Column("occurred_at", UTC, nullable=False),
        sa.Column("lane", sa.Integer(), nullable=False),
        sa.Column("replay", sa.Boolean(), nullable=False),
        sa.Column("queued_at", UTC, nullable=False),
        sa.Column("delivery_id", ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id", "destination_id"],
            ["destinations.account_id", "destinations.id"],
            name="fk_destination_outbox_destination",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "destination_id", "activity_id", name=op.f("pk_destination_outbox")
        ),
    )
    op.create_index(
        "ix_destination_outbox_lane",
        "destination_outbox",
        ["account_id", "destination_id", "lane", "replay", "activity_id"],
    )
    op.create_index(
        "ix_destination_outbox_delivery",
        "destination_outbox",
        ["account_id", "destination_id", "delivery_id"],
    )
    op.create_table(
        "destination_deliveries",
        sa.Column("account_id", ID, nullable=False),
        sa.Column("id", ID, nullable=False),
        sa.Column("destination_id", ID, nullable=False),
        sa.Column("lane", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTC, nullable=False),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        sa.Column("lease_expires_at", UTC, nullable=True),
        sa.Column("last_error", sa.String(length=2000), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id", "destination_id"],
            ["destinations.account_id", "destinations.id"],
            name="fk_destination_deliveries_destination",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "id", name=op.f("pk_destination_deliveries")),
        sa.UniqueConstraint(
            "account_id",
            "destination_id",
            "lane",
            name="uq_destination_deliveries_lane",
        ),
    )
    op.create_index(
        op.f("ix_destination_deliveries_next_attempt_at"),
        "destination_deliveries",
        ["next_attempt_at"],
    )
    op.create_table(
        "destination_dead_letters",
        sa.Column("account_id", ID, nullable=False),
        sa.Column("destination_id", ID, nullable=False),
        sa.Column("activity_id", ID, nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("dead_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id", "destination_id"],
            ["destinations.account_id", "destinations.id"],
            name="fk_destination_dead_letters_destination",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "destination_id", "activity_id", name=op.f("pk_destination_dead_letters")
        ),
    )
    op.create_index(
        "ix_destination_dead_letters_dead_at",
        "destination_dead_letters",
        ["account_id", "destination_id", "dead_at"],
    )


def downgrade() -> None:
    op.drop_table("destination_dead_letters")
    op.drop_table("destination_deliveries")
    op.drop_table("destination_outbox")
    op.drop_table("destinations")
