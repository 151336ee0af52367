"""activities.context, hourly activity counts, ingest rejections, message ids, contact groups,
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
    # Nullable and without a default: on PostgreSQL the partitioned table and
    # every partition gain it without rewriting a row.
    with op.batch_alter_table("activities") as batch:
        batch.add_column(sa.Column("context", sa.JSON(), nullable=True))
    op.create_table(
        "activity_counts",
        sa.Column("id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("hour", UTC, nullable=False),
        sa.Column("dialect", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity_counts")),
    )
    op.create_index(
        op.f("ix_activity_counts_account_id_hour"), "activity_counts", ["account_id", "hour"]
    )
    _count_stored_activities()
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


def _count_stored_activities() -> None:
    """One row per account, hour received, dialect and name for what is already stored.

    Ids are row numbers in hex: far below any time-based id (core/ids.py), so
    they never meet one made later.
    """
    if op.get_bind().dialect.name == "postgresql":
        hour = "date_trunc('hour', received_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
        row_id = "lpad(to_hex(row_number() OVER ()), 24, '0')"
    else:
        # SQLite keeps naive UTC text like '2026-11-23 10:42:05.123456'.
        hour = "strftime('%Y-%m-%d %H:00:00.000000', received_at)"
        row_id = "printf('%024x', row_number() OVER ())"
    # Only the constant fragments above are formatted in: nothing comes from input.
    op.execute(
        "INSERT INTO activity_counts (id, account_id, hour, dialect, name, count)"  # noqa: S608
        f" SELECT {row_id}, account_id, hour, dialect, name, n"
        f" FROM (SELECT account_id, {hour} AS hour, dialect, name, count(*) AS n"
        " FROM activities GROUP BY 1, 2, 3, 4) AS counted"
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
    op.drop_index(op.f("ix_activity_counts_account_id_hour"), table_name="activity_counts")
    op.drop_table("activity_counts")
    with op.batch_alter_table("activities") as batch:
        batch.drop_column("context")
