"""The few statements that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import JSON, Boolean, String, Table, any_, bindparam, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import TableValuedAlias

from eventyard.storage.types import UTCDateTime

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
    """Insert rows that cannot conflict (fresh ids) by the fastest way in.

    PostgreSQL: ``COPY … FROM STDIN``. SQLite: one ``executemany`` of
    already-encoded values, which the driver binds in C, skipping
    SQLAlchemy's per-value processing. Both run on the connection's
    transaction, so they commit or roll back with everything else.
    """
    if not rows:
        return
    columns = [c.name for c in table.columns]
    # A column missing from a row is NULL (a nullable column the caller does not use).
    copy_rows(conn, table, columns, [[row.get(name) for name in columns] for row in rows])


def copy_rows(
    conn: Connection,
    table: Table | str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    into: str | None = None,
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) as :func:`insert_rows` does.

    ``table`` is a schema table (its JSON, timestamp and boolean values are
    encoded as there) or the name of a temporary table (values go as they
    are); ``into`` names a temporary table that takes rows encoded for ``table``.
    """
    if not rows:
        return
    if isinstance(table, str):
        _write_rows(conn, table, columns, rows)
        return
    name = into or table.name
    convert = _raw_converters(conn, table)
    # Only the columns that need it are converted: a call per value costs a
    # millisecond per 1000 activities.
    converted = [
        (position, convert[name])
        for position, name in enumerate(columns)
        if convert[name] is not _unchanged
    ]
    if not converted:
        _write_rows(conn, name, columns, rows)
        return
    values = []
    for row in rows:
        row_values = list(row)
        for position, converter in converted:
            row_values[position] = converter(row_values[position])
        values.append(row_values)
    _write_rows(conn, name, columns, values)


def _write_rows(
    conn: Connection, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    column_list = ", ".join(f'"{column}"' for column in columns)
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        assert raw is not None
        with (
            raw.cursor() as cursor,
            cursor.copy(f'COPY "{name}" ({column_list}) FROM STDIN') as copy,
        ):
            for row_values in rows:
                copy.write_row(row_values)
        return
    placeholders = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(
        # Names come from our own schema, values are bound: nothing is injected.
        f'INSERT INTO "{name}" ({column_list}) VALUES ({placeholders})',  # noqa: S608
        [tuple(row_values) for row_values in rows],
    )


def _raw_converters(conn: Connection, table: Table) -> dict[str, Callable[[Any], Any]]:
    """Python value -> what the driver stores, matching SQLAlchemy's own encoding.

    JSON becomes its text; on SQLite, timestamps become the naive UTC text
    SQLAlchemy writes (so they sort and compare with its values) and booleans
    become 0/1.
    """
    sqlite_db = conn.dialect.name == "sqlite"
    converters: dict[str, Callable[[Any], Any]] = {}
    for column in table.columns:
        impl = column.type.dialect_impl(conn.dialect)
        if isinstance(impl, JSON):
            converters[column.name] = _json_text
        elif sqlite_db and isinstance(column.type, UTCDateTime):
            converters[column.name] = _sqlite_timestamp
        elif sqlite_db and isinstance(column.type, Boolean):
            converters[column.name] = _sqlite_bool
        else:
            converters[column.name] = _unchanged
    return converters


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _sqlite_timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    v = value.astimezone(UTC)
    # SQLAlchemy's SQLite format, zero-padded (strftime's %Y is not, before 1000).
    return (
        f"{v.year:04d}-{v.month:02d}-{v.day:02d} "
        f"{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}"
    )


def _sqlite_bool(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _unchanged(value: Any) -> Any:
    return value
