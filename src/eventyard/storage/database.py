"""The store: engine, units of work and the repositories they hand out."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError

from eventyard.core.errors import StoreUnavailable
from eventyard.storage.engine import build_engine
from eventyard.storage.repositories.accounts import AccountRepository
from eventyard.storage.repositories.activities import ActivityRepository
from eventyard.storage.repositories.contacts import ContactRepository
from eventyard.storage.repositories.idempotency import IdempotencyRepository


class UnitOfWork:
    """One transaction. It rolls back unless :meth:`commit` is called."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.accounts = AccountRepository(conn)
        self.contacts = ContactRepository(conn)
        self.activities = ActivityRepository(conn)
        self.idempotency = IdempotencyRepository(conn)
        self._committed = False

    def commit(self) -> None:
        self.conn.commit()
        self._committed = True

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        with self.conn.begin_nested():
            yield


class Database:
    """What services call ``store``; built once per process by ``create_app``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite: a writer takes the write lock at BEGIN (see engine.py).
        self._writer = engine.execution_options(sqlite_begin="IMMEDIATE")
        # SQLite has one writer at a time. Writers of this process queue on a
        # lock instead of polling SQLite's busy handler, whose growing sleeps
        # let some requests wait seconds while others pass; other processes
        # still wait through busy_timeout.
        self._local_writer = threading.Lock() if engine.dialect.name == "sqlite" else None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        pool_size: int = 10,
        sqlite_synchronous: str = "FULL",
        sqlite_busy_timeout_ms: int = 30_000,
    ) -> Database:
        return cls(
            build_engine(
                url,
                pool_size=pool_size,
                sqlite_synchronous=sqlite_synchronous,
                sqlite_busy_timeout_ms=sqlite_busy_timeout_ms,
            )
        )

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def unit_of_work(self, *, write: bool = True) -> Iterator[UnitOfWork]:
        """A transaction; database outages surface as ``StoreUnavailable`` (503)."""
        engine = self._writer if write else self.engine
        serialized = self._local_writer if write and self._local_writer else nullcontext()
        try:
            with serialized, engine.connect() as conn:
                conn.begin()
                uow = UnitOfWork(conn)
                try:
                    yield uow
                finally:
                    if not uow._committed and conn.in_transaction():
                        conn.rollback()
        except (OperationalError, DBAPIError) as exc:
            if _is_unavailable(exc):
                raise StoreUnavailable() from exc
            raise

    def ping(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except DBAPIError as exc:
            raise StoreUnavailable() from exc

    def dispose(self) -> None:
        self.engine.dispose()


def _is_unavailable(exc: DBAPIError) -> bool:
    """Outages and lock timeouts are retryable; constraint or SQL errors are bugs."""
    return isinstance(exc, OperationalError) or exc.connection_invalidated
