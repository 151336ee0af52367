"""The store: engine, units of work and the repositories they hand out."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from eventyard.core.errors import StoreUnavailable
from eventyard.settings import Settings
from eventyard.storage.engine import build_engine
from eventyard.storage.repositories.accounts import AccountRepository
from eventyard.storage.repositories.activities import ActivityRepository
from eventyard.storage.repositories.console import ConsoleRepository
from eventyard.storage.repositories.contacts import ContactRepository
from eventyard.storage.repositories.credentials import CredentialRepository
from eventyard.storage.repositories.definitions import DefinitionRepository
from eventyard.storage.repositories.destinations import DestinationRepository
from eventyard.storage.repositories.erasures import ErasureRepository
from eventyard.storage.repositories.event_types import EventTypeRepository, KnownTypes
from eventyard.storage.repositories.groups import GroupRepository
from eventyard.storage.repositories.idempotency import IdempotencyRepository
from eventyard.storage.repositories.identity_operations import IdentityOperationRepository
from eventyard.storage.repositories.ingest_stats import IngestStatsRepository
from eventyard.storage.repositories.jobs import JobRepository
from eventyard.storage.repositories.lists import ListRepository
from eventyard.storage.repositories.message_ids import MessageIdRepository
from eventyard.storage.repositories.retention import RetentionRepository
from eventyard.storage.repositories.staging import StagingRepository


class UnitOfWork:
    """One transaction. It rolls back unless :meth:`commit` is called."""

    def __init__(self, conn: Connection, known_types: KnownTypes | None = None) -> None:
        self.conn = conn
        # Run after the commit, in order: what the process may now cache.
        self._after_commit: list[Callable[[], None]] = []
        self.accounts = AccountRepository(conn)
        self.credentials = CredentialRepository(conn)
        self.contacts = ContactRepository(conn)
        self.activities = ActivityRepository(conn)
        self.event_types = EventTypeRepository(conn, known_types, self._after_commit)
        self.definitions = DefinitionRepository(conn)
        self.idempotency = IdempotencyRepository(conn)
        self.jobs = JobRepository(conn)
        self.lists = ListRepository(conn)
        self.retention = RetentionRepository(conn)
        self.console = ConsoleRepository(conn)
        self.ingest_stats = IngestStatsRepository(conn)
        self.message_ids = MessageIdRepository(conn)
        self.groups = GroupRepository(conn)
        self.erasures = ErasureRepository(conn)
        self.staging = StagingRepository(conn)
        self.destinations = DestinationRepository(conn)
        self.identity = IdentityOperationRepository(conn)
        self._committed = False

    def commit(self) -> None:
        self.conn.commit()
        self._committed = True
        for remember in self._after_commit:
            remember()
        self._after_commit.clear()

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        # What a rolled-back savepoint wrote never commits: forget it.
        mark = len(self._after_commit)
        try:
            with self.conn.begin_nested():
                yield
        except BaseException:
            del self._after_commit[mark:]
            raise


class Database:
    """What services call ``store``; built once per process by ``create_app``."""

    def __init__(self, engine: Engine, busy_timeout_ms: int = 30_000) -> None:
        self.engine = engine
        # SQLite: a writer takes the write lock at BEGIN (see engine.py).
        self._writer = engine.execution_options(sqlite_begin="IMMEDIATE")
        # SQLite has one writer at a time. Writers of this process queue on a
        # lock instead of polling SQLite's busy handler, whose growing sleeps
        # let some requests wait seconds while others pass; other processes
        # still wait through busy_timeout.
        self._local_writer = threading.Lock() if engine.dialect.name == "sqlite" else None
        self._busy_timeout_seconds = busy_timeout_ms / 1000
        self._known_types = KnownTypes()

    @classmethod
    def from_url(cls, url: str, **engine_options: Any) -> Database:
        """A store for ``url``; ``engine_options`` are those of :func:`build_engine`."""
        busy_timeout_ms = int(engine_options.get("sqlite_busy_timeout_ms", 30_000))
        return cls(build_engine(url, **engine_options), busy_timeout_ms=busy_timeout_ms)

    @classmethod
    def from_settings(cls, settings: Settings, *, pool_size: int | None = None) -> Database:
        return cls.from_url(
            settings.database_url,
            pool_size=pool_size or settings.db_pool_size,
            sqlite_synchronous=settings.sqlite_synchronous,
            sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms,
            connect_timeout_seconds=settings.db_connect_timeout_seconds,
            pool_timeout_seconds=settings.db_pool_timeout_seconds,
            prepared_statements=settings.database_prepared_statements,
        )

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @property
    def _keeps_prepared_statements(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def unit_of_work(self, *, write: bool = True) -> Iterator[UnitOfWork]:
        """A transaction; database outages surface as ``StoreUnavailable`` (503)."""
        engine = self._writer if write else self.engine
        try:
            with self._writer_turn(write), engine.connect() as conn:
                conn.begin()
                uow = UnitOfWork(conn, self._known_types)
                try:
                    yield uow
                except BaseException:
                    if conn.in_transaction():
                        conn.rollback()
                    raise
                if not uow._committed and conn.in_transaction():
                    if write or not self._keeps_prepared_statements:
                        conn.rollback()
                    else:
                        # A read that went well ends with COMMIT, which is the
                        # same as ROLLBACK for a transaction that wrote nothing,
                        # but psycopg forgets the connection's prepared
                        # statements on every ROLLBACK: each read planned its
                        # statements again (2.2 ms of the Cordial listing's
                        # 3.8 ms in PostgreSQL at 1 M partitioned activities).
                        conn.commit()
        except PoolTimeout as exc:
            # Every connection of the pool stayed busy for pool_timeout: the
            # database is overloaded, which is a retry-later, not a bug.
            raise StoreUnavailable() from exc
        except (OperationalError, DBAPIError) as exc:
            if _is_unavailable(exc):
                raise StoreUnavailable() from exc
            raise

    @contextmanager
    def _writer_turn(self, write: bool) -> Iterator[None]:
        """SQLite writers of this process, one at a time, waiting at most the busy timeout."""
        if not write or self._local_writer is None:
            yield
            return
        if not self._local_writer.acquire(timeout=self._busy_timeout_seconds):
            raise StoreUnavailable()
        try:
            yield
        finally:
            self._local_writer.release()

    def checkpoint(self) -> None:
        """SQLite: fold the write-ahead log into the database file and empty it.

        After an erasure this leaves no earlier copy of the erased rows'
        pages in the log. PostgreSQL removes dead row versions at its next
        (auto)vacuum; nothing to do here.
        """
        if self.engine.dialect.name != "sqlite":
            return
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def ping(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except DBAPIError as exc:
            raise StoreUnavailable() from exc

    def dispose(self) -> None:
        self.engine.dispose()


#: SQLite reports outages and SQL mistakes alike as OperationalError; these
#: messages are the ones a retry can cure (locks, files, disks).
_SQLITE_TRANSIENT = (
    "database is locked",
    "database table is locked",
    "unable to open database",
    "disk i/o error",
    "database or disk is full",
    "attempt to write a readonly database",
)


def _is_unavailable(exc: DBAPIError) -> bool:
    """Outages and lock timeouts are retryable (503); constraint or SQL errors are bugs (500)."""
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    if exc.orig is not None and type(exc.orig).__module__.startswith("sqlite3"):
        message = str(exc.orig).lower()
        return any(transient in message for transient in _SQLITE_TRANSIENT)
    return True
