"""hourly activity counts, ingest rejections, message ids, contact groups,
console sessions and instance secrets

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import eventyard.storage.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = eventyard.storage.types.UTCDateTime(timezone=True)
ID = sa.String(length=24)


def _account_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["account_id"],
        ["accounts.id"],
        name=op.f(f"fk_{table}_account_id_accounts"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "activity_counts",
        sa.Column("account_id", ID, nullable=False),
        sa.Column("hour", UTC, nullable=False),
        sa.Column("dialect", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "account_id", "hour", "dialect", "name", name=op.f("pk_activity_counts")
        ),
    )
    op.create_table(
        "ingest_rejections",
        sa.Column("id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("dialect", sa.String(length=32), nullable=False),
        sa.Column("route", sa.String(length=200), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("rejected_records", sa.Integer(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("received_at", UTC, nullable=False),
        _account_fk("ingest_rejections"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_rejections")),
    )
    op.create_index(
        op.f("ix_ingest_rejections_account_id_received_at"),
        "ingest_rejections",
        ["account_id", "received_at"],
    )
    op.create_table(
        "message_ids",
        sa.Column("account_id", ID, nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("received_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "message_id", name=op.f("pk_message_ids")),
    )
    op.create_index(op.f("ix_message_ids_received_at"), "message_ids", ["received_at"])
    op.create_table(
        "contact_groups",
        sa.Column("account_id", ID, nullable=False),
        sa.Column("contact_id", ID, nullable=False),
        sa.Column("group_id", sa.String(length=255), nullable=False),
        sa.Column("traits", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_contact_groups_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "contact_id", "group_id", name=op.f("pk_contact_groups")
        ),
    )
    op.create_index(op.f("ix_contact_groups_contact_id"), "contact_groups", ["contact_id"])
    op.create_index(
        op.f("ix_contact_groups_account_id_group_id"), "contact_groups", ["account_id", "group_id"]
    )
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        _account_fk("console_sessions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_sessions")),
    )
    op.create_index(op.f("ix_console_sessions_account_id"), "console_sessions", ["account_id"])
    op.create_index(op.f("ix_console_sessions_expires_at"), "console_sessions", ["expires_at"])
    op.create_table(
        "instance_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_instance_secrets")),
    )


def downgrade() -> None:
    op.drop_table("instance_secrets")
    op.drop_index(op.f("ix_console_sessions_expires_at"), table_name="console_sessions")
    op.drop_index(op.f("ix_console_sessions_account_id"), table_name="console_sessions")
    op.drop_table("console_sessions")
    op.drop_index(op.f("ix_contact_groups_account_id_group_id"), table_name="contact_groups")
    op.drop_index(op.f("ix_contact_groups_contact_id"), table_name="contact_groups")
    op.drop_table("contact_groups")
    op.drop_index(op.f("ix_message_ids_received_at"), table_name="message_ids")
    op.drop_table("message_ids")
    op.drop_index(
        op.f("ix_ingest_rejections_account_id_received_at"), table_name="ingest_rejections"
    )
    op.drop_table("ingest_rejections")
    op.drop_table("activity_counts")
