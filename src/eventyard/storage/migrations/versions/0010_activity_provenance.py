"""activities: provenance (the identifier that resolved each activity)

Existing activities get the identifier their contact has held longest (the
earliest ``created_at``, then kind and value): the one it was created with,
which resolved its first activities. What resolved each older activity was
not recorded, so this is as much as can be known; an activity whose contact
holds no identifier keeps NULL. Set-based: one UPDATE per database, which on
PostgreSQL's partitioned table reaches every partition.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BACKFILL_POSTGRESQL = """
UPDATE activities AS a
SET resolved_kind = f.kind, resolved_value = f.value
FROM (
    SELECT DISTINCT ON (account_id, contact_id) account_id, contact_id, kind, value
    FROM contact_identifiers
    ORDER BY account_id, contact_id, created_at, kind, value
) AS f
WHERE a.account_id = f.account_id AND a.contact_id = f.contact_id
"""

_BACKFILL_SQLITE = """
UPDATE activities SET (resolved_kind, resolved_value) = (
    SELECT ci.kind, ci.value FROM contact_identifiers AS ci
    WHERE ci.account_id = activities.account_id AND ci.contact_id = activities.contact_id
    ORDER BY ci.created_at, ci.kind, ci.value
    LIMIT 1
)
"""


def upgrade() -> None:
    bind = op.get_bind()
    # On PostgreSQL's partitioned parent this adds the columns to every
    # partition; nullable without a default, so no table is rewritten.
    op.add_column("activities", sa.Column("resolved_kind", sa.String(40), nullable=True))
    op.add_column("activities", sa.Column("resolved_value", sa.String(512), nullable=True))
    postgres = bind.dialect.name == "postgresql"
    bind.exec_driver_sql(_BACKFILL_POSTGRESQL if postgres else _BACKFILL_SQLITE)


def downgrade() -> None:
    with op.batch_alter_table("activities") as batch:
        batch.drop_column("resolved_value")
        batch.drop_column("resolved_kind")
