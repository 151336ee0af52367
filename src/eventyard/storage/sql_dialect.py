"""The few statements that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import JSON, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection


def insert_ignoring_conflicts(conn: Connection, table: Table) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` for the connection's database."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def supports_row_locks(conn: Connection) -> bool:
    """PostgreSQL locks rows with ``FOR UPDATE``; SQLite serialises writers instead."""
    return conn.dialect.name == "postgresql"


def supports_copy(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def copy_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Bulk-load ``rows`` into ``table`` with PostgreSQL ``COPY … FROM STDIN``.

    Runs on the connection's own transaction, so it commits or rolls back with
    everything else. JSON columns are sent as their JSON text.
    """
    columns = [c.name for c in table.columns]
    json_columns = {
        c.name for c in table.columns if isinstance(c.type.dialect_impl(conn.dialect), JSON)
    }
    raw = conn.connection.driver_connection
    assert raw is not None
    column_list = ", ".join(f'"{name}"' for name in columns)
    with (
        raw.cursor() as cursor,
        cursor.copy(f'COPY "{table.name}" ({column_list}) FROM STDIN') as copy,
    ):
        for row in rows:
            copy.write_row(
                [
                    orjson.dumps(row[name]).decode() if name in json_columns else row[name]
                    for name in columns
                ]
            )
