"""erasures: the audit record of contacts erased on request, without personal data

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import eventyard.storage.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = eventyard.storage.types.UTCDateTime(timezone=True)
ID = sa.String(length=24)


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("contact_ids", sa.JSON(), nullable=False),
        sa.Column("requested_via", sa.String(length=16), nullable=False),
        sa.Column("removed", sa.JSON(), nullable=False),
        sa.Column("erased_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_erasures_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasures")),
    )
    op.create_index(
        op.f("ix_erasures_account_id_erased_at"), "erasures", ["account_id", "erased_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_erasures_account_id_erased_at"), table_name="erasures")
    op.drop_table("erasures")
