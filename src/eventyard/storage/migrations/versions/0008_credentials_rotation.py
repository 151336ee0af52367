"""credentials: one row per credential with an id, prefix, name, last use, expiry and revocation

Existing credentials keep their secrets (only their digests are known, so
their ``prefix`` stays NULL) and get an id each. Console sessions record the
credential they signed in with; sessions from before are ended (they were
signed in with an admin token that nothing records).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import eventyard.storage.types
from eventyard.core.ids import new_id

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = eventyard.storage.types.UTCDateTime(timezone=True)
ID = sa.String(length=24)


def _create_credentials() -> sa.Table:
    return op.create_table(
        "credentials",
        sa.Column("id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("public_id", sa.String(length=64), nullable=True),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("last_used_at", UTC, nullable=True),
        sa.Column("expires_at", UTC, nullable=True),
        sa.Column("revoked_at", UTC, nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_credentials_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credentials")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_credentials_secret_hash")),
    )


def upgrade() -> None:
    conn = op.get_bind()
    # A handful of rows per account: read them, drop the old table (and its
    # constraint names), create the new one and write them back.
    old = sa.table(
        "credentials",
        sa.column("account_id", ID),
        sa.column("kind", sa.String()),
        sa.column("public_id", sa.String()),
        sa.column("secret_hash", sa.String()),
        sa.column("created_at", UTC),
    )
    rows = conn.execute(sa.select(old).order_by(old.c.created_at, old.c.kind)).all()
    op.drop_index(op.f("ix_credentials_account_id"), table_name="credentials")
    op.drop_table("credentials")
    table = _create_credentials()
    op.create_index(op.f("ix_credentials_account_id_kind"), "credentials", ["account_id", "kind"])
    if rows:
        op.bulk_insert(
            table,
            [
                {
                    "id": new_id(int(row.created_at.timestamp() * 1000)),
                    "account_id": row.account_id,
                    "kind": row.kind,
                    "prefix": None,
                    "name": None,
                    "public_id": row.public_id,
                    "secret_hash": row.secret_hash,
                    "created_at": row.created_at,
                }
                for row in rows
            ],
        )
    op.execute("DELETE FROM console_sessions")
    with op.batch_alter_table("console_sessions") as batch:
        batch.add_column(sa.Column("credential_id", ID, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("console_sessions") as batch:
        batch.drop_column("credential_id")
    conn = op.get_bind()
    new = sa.table(
        "credentials",
        sa.column("account_id", ID),
        sa.column("kind", sa.String()),
        sa.column("public_id", sa.String()),
        sa.column("secret_hash", sa.String()),
        sa.column("created_at", UTC),
        sa.column("revoked_at", UTC),
    )
    # The old table knew no revocation: a revoked credential is left out.
    rows = conn.execute(sa.select(new).where(new.c.revoked_at.is_(None))).all()
    op.drop_index(op.f("ix_credentials_account_id_kind"), table_name="credentials")
    op.drop_table("credentials")
    table = op.create_table(
        "credentials",
        sa.Column("account_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("public_id", sa.String(length=64), nullable=True),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_credentials_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("kind", "secret_hash", name=op.f("pk_credentials")),
    )
    op.create_index(op.f("ix_credentials_account_id"), "credentials", ["account_id"])
    if rows:
        op.bulk_insert(
            table,
            [
                {
                    "account_id": r.account_id,
                    "kind": r.kind,
                    "public_id": r.public_id,
                    "secret_hash": r.secret_hash,
                    "created_at": r.created_at,
                }
                for r in rows
            ],
        )
