"""monthly activity partitions (PostgreSQL), Cordial listing indexes and
property types, lists and list membership, account signing secret

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC as TZ_UTC
from datetime import datetime

import sqlalchemy as sa
from alembic import op

import eventyard.storage.types
from eventyard.storage.partitions import DEFAULT_PARTITION, Month, ensure_months

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = eventyard.storage.types.UTCDateTime(timezone=True)

# Monthly partitions created up front: the longest retention an account may
# set back from now, and three months ahead. The worker keeps creating them.
MONTHS_BACK = 25
MONTHS_AHEAD = 3

NEW_INDEXES = {
    "ix_activities_account_id_occurred_at_id": ["account_id", "occurred_at", "id"],
    "ix_activities_account_id_name_occurred_at_id": ["account_id", "name", "occurred_at", "id"],
}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        _partition_activities_on_postgresql()
    else:
        with op.batch_alter_table("activities") as batch:
            batch.add_column(sa.Column("unsearchable", sa.JSON(), nullable=True))
            batch.drop_index("uq_activities_account_id_dedup_key")
            batch.create_index(
                "uq_activities_account_id_dedup_key",
                ["account_id", "dedup_key", "occurred_at"],
                unique=True,
                sqlite_where=sa.text("dedup_key IS NOT NULL"),
            )
            for name, columns in NEW_INDEXES.items():
                batch.create_index(name, columns)

    with op.batch_alter_table("event_type_properties") as batch:
        batch.add_column(sa.Column("value_type", sa.String(length=16), nullable=True))

    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("signing_secret", sa.String(length=64), nullable=True))
    accounts = sa.table("accounts", sa.column("id", sa.String), sa.column("signing_secret"))
    for (account_id,) in bind.execute(sa.select(accounts.c.id)).all():
        bind.execute(
            accounts.update()
            .where(accounts.c.id == account_id)
            .values(signing_secret=secrets.token_hex(32))
        )

    op.create_table(
        "lists",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=24), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_lists_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lists")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_lists_account_id_name")),
    )
    op.create_table(
        "list_members",
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.String(length=24), nullable=False),
        sa.Column("account_id", sa.String(length=24), nullable=False),
        sa.Column("added_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["lists.id"],
            name=op.f("fk_list_members_list_id_lists"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_list_members_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("list_id", "contact_id", name=op.f("pk_list_members")),
    )
    op.create_index(op.f("ix_list_members_contact_id"), "list_members", ["contact_id"])


def _partition_activities_on_postgresql() -> None:
    """Rebuild ``activities`` as a table range-partitioned by month of ``occurred_at``.

    PostgreSQL requires every unique index of a partitioned table to contain
    the partition key, so the primary key becomes ``(id, occurred_at)`` and
    the dedup index ``(account_id, dedup_key, occurred_at)``. The only dedup
    keys written so far (Ortto's) are derived from the activity's timestamp,
    so the wider index refuses exactly the same duplicates.
    """
    execute = op.execute
    execute("ALTER TABLE activities RENAME TO activities_unpartitioned")
    execute("ALTER INDEX pk_activities RENAME TO pk_activities_unpartitioned")
    execute("DROP INDEX ix_activities_account_id_contact_id_occurred_at_id")
    execute("DROP INDEX uq_activities_account_id_dedup_key")
    execute(
        "CREATE TABLE activities (LIKE activities_unpartitioned INCLUDING DEFAULTS)"
        " PARTITION BY RANGE (occurred_at)"
    )
    execute("ALTER TABLE activities ADD COLUMN unsearchable JSON")
    execute("ALTER TABLE activities ADD CONSTRAINT pk_activities PRIMARY KEY (id, occurred_at)")
    execute(
        "CREATE INDEX ix_activities_account_id_contact_id_occurred_at_id"
        " ON activities (account_id, contact_id, occurred_at, id)"
    )
    for name, columns in NEW_INDEXES.items():
        execute(f"CREATE INDEX {name} ON activities ({', '.join(columns)})")
    execute(
        "CREATE UNIQUE INDEX uq_activities_account_id_dedup_key"
        " ON activities (account_id, dedup_key, occurred_at) WHERE dedup_key IS NOT NULL"
    )
    execute(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF activities DEFAULT")
    bind = op.get_bind()
    now = Month.of(datetime.now(TZ_UTC))
    oldest = bind.execute(sa.text("SELECT min(occurred_at) FROM activities_unpartitioned")).scalar()
    first = now.plus(-MONTHS_BACK)
    if oldest is not None:
        first = max(min(first, Month.of(oldest)), now.plus(-10 * 12))
    ensure_months(bind, first, now.plus(MONTHS_AHEAD))
    columns = [
        row[0]
        for row in bind.execute(
            sa.text(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = 'activities_unpartitioned' ORDER BY ordinal_position"
            )
        )
    ]
    listed = ", ".join(columns)
    # Column names come from the catalogue, not from input.
    execute(f"INSERT INTO activities ({listed}) SELECT {listed} FROM activities_unpartitioned")  # noqa: S608
    execute("DROP TABLE activities_unpartitioned")


def downgrade() -> None:
    op.drop_index(op.f("ix_list_members_contact_id"), table_name="list_members")
    op.drop_table("list_members")
    op.drop_table("lists")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("signing_secret")
    with op.batch_alter_table("event_type_properties") as batch:
        batch.drop_column("value_type")
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        raise NotImplementedError("the activity partitions cannot be folded back by a downgrade")
    with op.batch_alter_table("activities") as batch:
        for name in NEW_INDEXES:
            batch.drop_index(name)
        batch.drop_index("uq_activities_account_id_dedup_key")
        batch.create_index(
            "uq_activities_account_id_dedup_key",
            ["account_id", "dedup_key"],
            unique=True,
            sqlite_where=sa.text("dedup_key IS NOT NULL"),
        )
        batch.drop_column("unsearchable")
