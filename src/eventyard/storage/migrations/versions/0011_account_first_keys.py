"""account-first keys: the schema can be distributed by account (Citus)

Every table holding account data gets a primary key that starts with
``account_id`` (the activities' partitions on PostgreSQL with it), and the
tables that reference contacts do so by ``(account_id, contact_id)``. Lookups
of a contact by id alone keep an index on ``contacts.id``. docs/scaling.md
("Distribution by account") lists the tables left as they are, and why.

On PostgreSQL each primary key is rebuilt in place (the activities' on every
partition: a rewrite of the index, not of the rows). On SQLite batch mode
copies each table; foreign keys are not enforced while migrating (env.py),
so copying ``contacts`` does not cascade into the tables that reference it.

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Table: (old primary key, new primary key). Activities on PostgreSQL also
#: carry the partition key (storage/partitions.py), appended below.
KEYS: dict[str, tuple[list[str], list[str]]] = {
    "contacts": (["id"], ["account_id", "id"]),
    "activities": (["id"], ["account_id", "id"]),
    "identity_events": (["id"], ["account_id", "id"]),
    "activity_counts": (["id"], ["account_id", "id"]),
    "ingest_rejections": (["id"], ["account_id", "id"]),
    "erasures": (["id"], ["account_id", "id"]),
    "list_members": (["list_id", "contact_id"], ["account_id", "list_id", "contact_id"]),
}

#: The tables whose ``contact_id`` references ``contacts``.
REFERENCING_CONTACTS = ("contact_identifiers", "list_members", "contact_groups")


def _old_fk(table: str) -> str:
    return f"fk_{table}_contact_id_contacts"


def _new_fk(table: str) -> str:
    return f"fk_{table}_account_id_contacts"


def _partitioned() -> bool:
    return bool(
        op.get_bind()
        .exec_driver_sql("SELECT relkind = 'p' FROM pg_class WHERE oid = 'activities'::regclass")
        .scalar()
    )


def _rekey(to_new: bool) -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    partitioned = postgres and _partitioned()
    if postgres:
        # The foreign keys depend on the primary key of contacts: off first.
        for table in REFERENCING_CONTACTS:
            op.drop_constraint(
                _old_fk(table) if to_new else _new_fk(table), table, type_="foreignkey"
            )
    for table, (old, new) in KEYS.items():
        columns = list(new if to_new else old)
        if table == "activities" and partitioned:
            columns.append("occurred_at")
        if postgres:
            op.drop_constraint(f"pk_{table}", table, type_="primary")
            op.create_primary_key(f"pk_{table}", table, columns)
        else:
            with op.batch_alter_table(table, recreate="always") as batch:
                batch.drop_constraint(f"pk_{table}", type_="primary")
                batch.create_primary_key(f"pk_{table}", columns)
    if to_new:
        op.create_index("ix_contacts_id", "contacts", ["id"])
    else:
        op.drop_index("ix_contacts_id", "contacts")
    for table in REFERENCING_CONTACTS:
        if to_new:
            name, local, remote = _new_fk(table), ["account_id", "contact_id"], ["account_id", "id"]
        else:
            name, local, remote = _old_fk(table), ["contact_id"], ["id"]
        if postgres:
            op.create_foreign_key(name, table, "contacts", local, remote, ondelete="CASCADE")
            continue
        with op.batch_alter_table(table, recreate="always") as batch:
            batch.drop_constraint(_old_fk(table) if to_new else _new_fk(table), type_="foreignkey")
            batch.create_foreign_key(name, "contacts", local, remote, ondelete="CASCADE")


def upgrade() -> None:
    _rekey(to_new=True)


def downgrade() -> None:
    _rekey(to_new=False)
