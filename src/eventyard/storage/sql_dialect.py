"""The few statements that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import JSON, String, Table, any_, bindparam, func, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import TableValuedAlias

# Why PostgreSQL gets arrays: a batch of 1000 activities names thousands of
# values. As separate placeholders they make statements of tens of kilobytes
# that psycopg must parse on every call (it caches only short ones); as one
# array parameter per column the statement stays short and cached.


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


def text_array(values: Sequence[str]) -> Any:
    return bindparam(None, list(values), type_=postgresql.ARRAY(String()))


def in_values(conn: Connection, column: Any, values: Sequence[str]) -> ColumnElement[bool]:
    """``column IN values``: one array parameter on PostgreSQL, a plain IN on SQLite."""
    if conn.dialect.name == "postgresql":
        return column == any_(text_array(values))  # type: ignore[no-any-return]
    return column.in_(values)  # type: ignore[no-any-return]


def unnest_rows(name: str, columns: dict[str, Sequence[str]]) -> TableValuedAlias:
    """PostgreSQL: parallel text arrays as a derived table ``name(col, …)``."""
    arrays = [text_array(values) for values in columns.values()]
    return func.unnest(*arrays).table_valued(*columns).render_derived(name=name)


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows that cannot conflict (fresh ids): COPY on PostgreSQL."""
    if not rows:
        return
    if supports_copy(conn):
        copy_rows(conn, table, rows)
    else:
        conn.execute(insert(table), list(rows))


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
