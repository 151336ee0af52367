"""Read replicas: where the reads that tolerate lag go (``EVENTYARD_READ_DATABASE_URL``).

:class:`ReadReplicas` is a store beside the primary ``Database``. A read
unit of work (``write=False``) runs on a replica that is up and at most
``max_lag_seconds`` behind, taking them in turn; with none usable it runs on
the primary. A writing unit of work always runs on the primary, so a read
route that happens to write does not fail on a standby.

Whether a replica is usable is decided by a background thread every
``check_seconds``, never by a request. A replica found down by a request
(its connection refused) is skipped at once until the next check sees it up.

Lag is measured on the replica, as ``now() - pg_last_xact_replay_timestamp()``:
how long ago the last transaction it replayed committed on the primary. On
an idle primary that age grows although nothing is missing, so a replica
that has replayed everything it received (``pg_last_wal_receive_lsn() =
pg_last_wal_replay_lsn()``) counts as 0 behind. While a new transaction
is arriving, before it is replayed, the age is again that of the one before
(seconds, on a quiet primary): a replica is skipped for lag only when two
checks in a row find it too far behind.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from eventyard.core.errors import StoreUnavailable
from eventyard.core.model import ReplicaStatus
from eventyard.settings import Settings
from eventyard.storage.database import Database, UnitOfWork

log = logging.getLogger("eventyard")

_LAG = text(
    """
    SELECT pg_is_in_recovery() AS standby,
           CASE
               WHEN NOT pg_is_in_recovery() THEN 0
               WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
               ELSE coalesce(
                   extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 'Infinity'
               )
           END AS lag
    """
)


def split_urls(value: str) -> list[str]:
    """The URLs of ``EVENTYARD_READ_DATABASE_URL`` (comma-separated, blanks ignored)."""
    return [url.strip() for url in value.split(",") if url.strip()]


def replica_name(url: str) -> str:
    """How a replica is named in ``/readyz``, metrics and logs: host:port/database, no secret."""
    parsed = make_url(url)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"


@dataclass
class _Replica:
    name: str
    database: Database
    status: ReplicaStatus
    #: Whether the last check found it too far behind (skipped from the second).
    behind: bool = False


class ReadReplicas:
    """The store of lag-tolerant reads: replicas in turn, the primary when none will do."""

    def __init__(
        self,
        primary: Database,
        replicas: Sequence[tuple[str, Database]],
        *,
        max_lag_seconds: float,
        check_seconds: float,
        on_read: Callable[[str], None] = lambda target: None,
        on_check: Callable[[Sequence[ReplicaStatus]], None] = lambda statuses: None,
    ) -> None:
        self.primary = primary
        self._replicas = [
            _Replica(name, database, ReplicaStatus(name, "unknown", None))
            for name, database in replicas
        ]
        self.max_lag_seconds = max_lag_seconds
        self.check_seconds = check_seconds
        self._on_read = on_read
        self._on_check = on_check
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(
        cls,
        primary: Database,
        settings: Settings,
        *,
        pool_size: int | None = None,
        on_read: Callable[[str], None] = lambda target: None,
        on_check: Callable[[Sequence[ReplicaStatus]], None] = lambda statuses: None,
    ) -> ReadReplicas | None:
        """The replicas of ``EVENTYARD_READ_DATABASE_URL``; ``None`` when it names none."""
        urls = split_urls(settings.read_database_url)
        if not urls:
            return None
        replicas = [
            (
                replica_name(url),
                Database.from_settings(
                    settings.model_copy(update={"database_url": url}), pool_size=pool_size
                ),
            )
            for url in urls
        ]
        return cls(
            primary,
            replicas,
            max_lag_seconds=settings.read_max_lag_seconds,
            check_seconds=settings.read_check_seconds,
            on_read=on_read,
            on_check=on_check,
        )

    # -- the Store protocol ---------------------------------------------------

    @contextmanager
    def unit_of_work(self, *, write: bool = True) -> Iterator[UnitOfWork]:
        if write:
            with self.primary.unit_of_work(write=True) as uow:
                yield uow
            return
        with ExitStack() as stack:
            uow = self._enter_read(stack)
            yield uow

    def ping(self) -> None:
        self.primary.ping()

    def checkpoint(self) -> None:
        self.primary.checkpoint()

    # -- choosing ---------------------------------------------------------------

    def _enter_read(self, stack: ExitStack) -> UnitOfWork:
        uow: UnitOfWork
        usable = [r for r in self._replicas if r.status.state == "ok"]
        if usable:
            start = next(self._turn) % len(usable)
            for replica in usable[start:] + usable[:start]:
                try:
                    uow = stack.enter_context(replica.database.unit_of_work(write=False))
                except StoreUnavailable:
                    self._set(replica, ReplicaStatus(replica.name, "down", None))
                    log.warning("read replica down", extra={"replica": replica.name})
                    continue
                self._on_read("replica")
                return uow
        uow = stack.enter_context(self.primary.unit_of_work(write=False))
        self._on_read("primary")
        return uow

    def statuses(self) -> list[ReplicaStatus]:
        """Each replica's state as last seen: ``ok``, ``lagging``, ``down`` or ``unknown``."""
        with self._lock:
            return [r.status for r in self._replicas]

    def _set(self, replica: _Replica, status: ReplicaStatus) -> None:
        with self._lock:
            replica.status = status

    # -- checking ---------------------------------------------------------------

    def check(self) -> list[ReplicaStatus]:
        """Look at every replica once (reachable, lag) and remember what was seen."""
        for replica in self._replicas:
            self._set(replica, self._measure(replica))
        statuses = self.statuses()
        self._on_check(statuses)
        return statuses

    def _measure(self, replica: _Replica) -> ReplicaStatus:
        try:
            with replica.database.engine.connect() as conn:
                row = conn.execute(_LAG).one()
                conn.rollback()
        except DBAPIError:
            return ReplicaStatus(replica.name, "down", None)
        lag = float(row.lag)
        behind, replica.behind = replica.behind, lag > self.max_lag_seconds
        state = "lagging" if behind and replica.behind else "ok"
        return ReplicaStatus(replica.name, state, lag)

    def start(self) -> None:
        """Check now, then every ``check_seconds`` in a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name="eventyard-read-replicas", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            before = {r.name: r.status.state for r in self._replicas}
            try:
                self.check()
            except Exception:
                log.exception("read replica check failed")
            for replica in self._replicas:
                if before[replica.name] != replica.status.state:
                    log.info(
                        "read replica state",
                        extra={
                            "replica": replica.name,
                            "state": replica.status.state,
                            "lag_seconds": replica.status.lag_seconds,
                        },
                    )
            self._stop.wait(self.check_seconds)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def dispose(self) -> None:
        """Stop checking and close the replicas' connections (the primary is its owner's)."""
        self.stop()
        for replica in self._replicas:
            replica.database.dispose()
