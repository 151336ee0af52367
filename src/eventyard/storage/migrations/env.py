"""Alembic environment: online migrations only, batch mode on SQLite."""

from __future__ import annotations

from alembic import context

from eventyard.storage.engine import build_engine
from eventyard.storage.partitions import is_partition
from eventyard.storage.tables import metadata

config = context.config
url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
if not url:
    raise RuntimeError("no database URL given to the migrations")

# Migrations run each statement once or a few times: nothing to gain from
# prepared statements, which a transaction pooler (PgBouncer) may not carry.
engine = build_engine(url, pool_size=1, prepared_statements=False)
try:
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch mode copies a table and drops the old one; with foreign keys
            # enforced that DROP deletes every row first, cascading into the
            # tables that reference it. Alembic's advice: off while migrating,
            # checked at the end. (Set before the transaction begins: inside
            # one SQLite ignores it.)
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        context.configure(
            connection=connection,
            target_metadata=metadata,
            # SQLite cannot ALTER most things; batch mode copies the table.
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            # Monthly activity partitions are managed by storage/partitions.py.
            include_name=lambda name, kind, _parent: not (kind == "table" and is_partition(name)),
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"the migrations broke foreign keys: {broken[:10]}")
        connection.commit()
finally:
    engine.dispose()
