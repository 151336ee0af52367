"""Engines for SQLite and PostgreSQL, configured the same way everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url


def normalize_database_url(url: str) -> URL:
    """Accept the URL forms people write and pick our drivers.

    ``postgresql://`` and ``postgres://`` select psycopg 3; a bare file path is
    a SQLite database file.
    """
    if "://" not in url:
        return make_url(f"sqlite:///{Path(url).expanduser()}")
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def build_engine(
    url: str,
    *,
    pool_size: int = 10,
    sqlite_busy_timeout_ms: int = 30_000,
    sqlite_synchronous: str = "FULL",
    connect_timeout_seconds: int = 5,
    pool_timeout_seconds: float = 10,
    prepared_statements: bool = True,
) -> Engine:
    """Create the engine for ``url`` with our PRAGMAs, pooling and JSON codec."""
    parsed = normalize_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            parsed,
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
            connect_args={"check_same_thread": False, "timeout": sqlite_busy_timeout_ms / 1000},
            pool_timeout=pool_timeout_seconds,
            pool_size=pool_size,
            max_overflow=pool_size,
        )
        _configure_sqlite(engine, sqlite_busy_timeout_ms, sqlite_synchronous)
        return engine
    # An unreachable host answers 503 within seconds instead of hanging
    # requests for the operating system's TCP timeout.
    connect_args: dict[str, Any] = {"connect_timeout": connect_timeout_seconds}
    if not prepared_statements:
        # psycopg prepares a statement on its 5th run on a connection. Behind a
        # pooler in transaction mode the next run may reach another server
        # connection, which never saw it: unnamed statements only.
        connect_args["prepare_threshold"] = None
    return create_engine(
        parsed,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        connect_args=connect_args,
        pool_timeout=pool_timeout_seconds,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def _configure_sqlite(engine: Engine, busy_timeout_ms: int, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions
        # begin, so that writers can take the write lock up front (below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL lets readers run while one writer writes.
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL syncs the WAL on every commit: an acknowledged write survives a
        # power cut. NORMAL may roll back the last commits and is opt-in only.
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        # Wait for the write lock instead of failing with "database is locked".
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A write transaction that starts as a reader and later upgrades can
        # fail at once with SQLITE_BUSY whatever the busy timeout; taking the
        # write lock at BEGIN makes it wait its turn instead.
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")
