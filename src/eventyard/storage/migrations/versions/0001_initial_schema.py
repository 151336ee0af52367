"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import eventyard.storage.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "settings",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", eventyard.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
    )
    op.create_table(
        "activities",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("account_id", sa.String(length=24), nullable=False),
        sa.Column("contact_id", sa.String(length=24), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column(
            "occurred_at", eventyard.storage.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "received_at", eventyard.storage.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("dialect", sa.String(length=32), nullable=False),
        sa.Column("asset_id", sa.String(length=255), nullable=True),
        sa.Column("journey_eligible", sa.Boolean(), nullable=False),
        sa.Column(
            "properties",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("dedup_key", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities")),
    )
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_activities_account_id_contact_id_occurred_at_id"),
            ["account_id", "contact_id", "occurred_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "uq_activities_account_id_dedup_key",
            ["account_id", "dedup_key"],
            unique=True,
            postgresql_where=sa.text("dedup_key IS NOT NULL"),
            sqlite_where=sa.text("dedup_key IS NOT NULL"),
        )

    op.create_table(
        "idempotency_keys",
        sa.Column("account_id", sa.String(length=24), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", eventyard.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "key", name=op.f("pk_idempotency_keys")),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_keys_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "identity_events",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("account_id", sa.String(length=24), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("contact_id", sa.String(length=24), nullable=False),
        sa.Column(
            "other_contact_ids",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "identifiers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", eventyard.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_events")),
    )
    with op.batch_alter_table("identity_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_identity_events_account_id_contact_id"),
            ["account_id", "contact_id"],
            unique=False,
        )

    op.create_table(
        "contacts",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("account_id", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "attributes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("merged_into", sa.String(length=24), nullable=True),
        sa.Column("created_at", eventyard.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", eventyard.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_contacts_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
    )
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_contacts_account_id_created_at"),
            ["account_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_contacts_merged_into"),
            ["merged_into"],
            unique=False,
            postgresql_where=sa.text("merged_into IS NOT NULL"),
            sqlite_where=sa.text("merged_into IS NOT NULL"),
        )

    op.create_table(
        "credentials",
        sa.Column("account_id", sa.String(length=24), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("public_id", sa.String(length=64), nullable=True),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", eventyard.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_credentials_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("kind", "secret_hash", name=op.f("pk_credentials")),
    )
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_credentials_account_id"), ["account_id"], unique=False)

    op.create_table(
        "contact_identifiers",
        sa.Column("account_id", sa.String(length=24), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("value", sa.String(length=512), nullable=False),
        sa.Column("contact_id", sa.String(length=24), nullable=False),
        sa.Column("created_at", eventyard.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_contact_identifiers_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "kind", "value", name=op.f("pk_contact_identifiers")),
    )
    with op.batch_alter_table("contact_identifiers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_contact_identifiers_contact_id"), ["contact_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("contact_identifiers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contact_identifiers_contact_id"))

    op.drop_table("contact_identifiers")
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credentials_account_id"))

    op.drop_table("credentials")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_index(
            batch_op.f("ix_contacts_merged_into"),
            postgresql_where=sa.text("merged_into IS NOT NULL"),
            sqlite_where=sa.text("merged_into IS NOT NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_contacts_account_id_created_at"))

    op.drop_table("contacts")
    with op.batch_alter_table("identity_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_events_account_id_contact_id"))

    op.drop_table("identity_events")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_keys_created_at"))

    op.drop_table("idempotency_keys")
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_activities_account_id_dedup_key",
            postgresql_where=sa.text("dedup_key IS NOT NULL"),
            sqlite_where=sa.text("dedup_key IS NOT NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_activities_account_id_contact_id_occurred_at_id"))

    op.drop_table("activities")
    op.drop_table("accounts")
