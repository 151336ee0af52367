"""Client threads for the crash and outage tests: steady batches, retried until acknowledged.

Each :class:`RetryingClient` sends batches of one dialect (from ``DIALECTS``)
one after the other. A batch that gets no 2xx (a connection error, a 503) is
sent again, byte for byte, with the same ``Idempotency-Key`` until it is
acknowledged, as a careful client does. Every answer is recorded with the
moment it was asked and answered, so that a test can look at the answers of
a window (the database outage) and at the acknowledged markers afterwards.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from sqlalchemy import func, select

from eventyard.core.model import NewAccount
from eventyard.storage.database import Database
from eventyard.storage.tables import jobs
from tests.reliability.dialects import DIALECTS, Dialect, Request, stored_markers
from tests.support import create_account_at

#: How long a client waits before sending an unacknowledged batch again. Shorter
#: than the servers' Retry-After (5 s) so that an outage of seconds sees many tries.
RETRY_PAUSE_SECONDS = 0.1
#: At most this many markers per request, whatever the dialect allows.
MAX_MARKERS = 20
#: Markers of one dialect spread over this many contacts, shared by its clients,
#: so that concurrent batches race to create and update the same contacts. Every
#: fourth batch moves on to new ones, keeping each contact well under the daily
#: limits of Ortto and Cordial (50 activities of a kind per contact and day).
CONTACTS = 5


@dataclass(frozen=True)
class Answer:
    """One attempt at sending a batch: when, and what came back (``None``: no answer)."""

    asked: float
    answered: float
    status: int | None
    retry_after: str | None
    replayed: bool
    #: The ``Server`` header: ``uvicorn`` from an eventyard node, none from a balancer's page.
    server: str | None = None
    #: For no answer, the transport error's class (``ConnectError``, ``ReadTimeout`` ...).
    error: str | None = None


@dataclass
class RetryingClient:
    """Sends batches of ``dialect`` as ``account`` until ``stop`` is set; see the module."""

    base_url: str
    dialect: Dialect
    account: NewAccount
    name: str
    stop: threading.Event
    #: Turns the request of a batch into the one sent (the Ortto client makes it async).
    shape: Callable[[Request], Request] = lambda r: r
    acknowledged: list[list[str]] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    #: Answers no careful client can act on: a 4xx, a 500, a 2xx that stored less.
    unexpected: list[str] = field(default_factory=list)
    #: Called after every acknowledged batch (a test waits on it).
    on_acknowledged: Callable[[RetryingClient], None] = lambda c: None
    #: Seconds after ``stop`` a client still retries its batch in flight.
    give_up_after: float = 120.0
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def join(self) -> None:
        assert self._thread is not None
        self._thread.join(self.give_up_after + 30)
        assert not self._thread.is_alive(), f"{self.name} is still sending"

    @property
    def retries(self) -> int:
        return len(self.answers) - len(self.acknowledged)

    def _run(self) -> None:
        size = min(self.dialect.batch_size, MAX_MARKERS)
        with httpx.Client(base_url=self.base_url, timeout=20) as http:
            number = 0
            while not self.stop.is_set():
                marks = [
                    f"{self.dialect.name}-c{number // 4}.{(number + i) % CONTACTS}"
                    f"#{self.name}-{number}-{i}"
                    for i in range(size)
                ]
                request = self.shape(self.dialect.batch(self.account, marks))
                key = f"{self.name}-{number}-{uuid.uuid4().hex[:8]}"
                if not self._send_until_acknowledged(http, request, key, marks):
                    return
                number += 1

    def _send_until_acknowledged(
        self, http: httpx.Client, request: Request, key: str, marks: list[str]
    ) -> bool:
        """Send until a 2xx; False when it makes no sense to go on (an unexpected answer)."""
        stopped_at: float | None = None
        while True:
            asked = time.monotonic()
            try:
                response = request.send(http, **{"Idempotency-Key": key})
            except httpx.TransportError as exc:
                error = type(exc).__name__
                self.answers.append(Answer(asked, time.monotonic(), None, None, False, None, error))
            else:
                answer = Answer(
                    asked,
                    time.monotonic(),
                    response.status_code,
                    response.headers.get("retry-after"),
                    response.headers.get("idempotent-replayed") == "true",
                    response.headers.get("server"),
                )
                self.answers.append(answer)
                if 200 <= response.status_code < 300:
                    if not self.dialect.accepted(response):
                        self.unexpected.append(f"{response.status_code} {response.text[:300]}")
                        return False
                    self.acknowledged.append(marks)
                    self.on_acknowledged(self)
                    return True
                if response.status_code != 503:
                    self.unexpected.append(f"{response.status_code} {response.text[:300]}")
                    return False
            if self.stop.is_set():
                stopped_at = stopped_at or time.monotonic()
                if time.monotonic() - stopped_at > self.give_up_after:
                    self.unexpected.append(f"batch {key} never acknowledged")
                    return False
            time.sleep(RETRY_PAUSE_SECONDS)


class Progress:
    """Counts acknowledged batches, in all and per client, for a test to wait on."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.acknowledged = 0
        self.per_client: Counter[str] = Counter()
        #: ``time.monotonic()`` of every acknowledgement, in order.
        self.moments: list[float] = []

    def note(self, client: RetryingClient) -> None:
        with self.changed:
            self.acknowledged += 1
            self.per_client[client.name] += 1
            self.moments.append(time.monotonic())
            self.changed.notify_all()

    def wait_for_more(self, count: int, client: str | None = None, timeout: float = 60) -> None:
        """Wait until ``count`` more batches (of ``client``, or of any) are acknowledged."""
        with self.changed:
            target = (self.per_client[client] if client else self.acknowledged) + count
            done = self.changed.wait_for(
                lambda: (self.per_client[client] if client else self.acknowledged) >= target,
                timeout,
            )
        assert done, f"the server acknowledged fewer than {count} more batches in {timeout} s"


@dataclass
class DialectLoad:
    """The clients of every dialect in ``DIALECTS``, each dialect with an account of its own."""

    clients: list[RetryingClient]
    accounts: dict[str, NewAccount]

    @classmethod
    def prepare(
        cls,
        database_url: str,
        base_url: str,
        stop: threading.Event,
        *,
        per_dialect: int,
        on_acknowledged: Callable[[RetryingClient], None] = lambda c: None,
    ) -> DialectLoad:
        """Accounts (prepared through the server) and ``per_dialect`` clients per dialect."""
        accounts = {d.name: create_account_at(database_url, f"crash-{d.name}") for d in DIALECTS}
        with httpx.Client(base_url=base_url, timeout=30) as http:
            for dialect in DIALECTS:
                dialect.prepare(http, accounts[dialect.name])
        clients = [
            RetryingClient(
                base_url,
                dialect,
                accounts[dialect.name],
                f"{dialect.name}{n}",
                stop,
                on_acknowledged=on_acknowledged,
            )
            for dialect in DIALECTS
            for n in range(per_dialect)
        ]
        return cls(clients, accounts)

    def start(self) -> None:
        for client in self.clients:
            client.start()

    def join(self) -> None:
        for client in self.clients:
            client.join()

    @property
    def answers(self) -> list[Answer]:
        return [a for c in self.clients for a in c.answers]

    def unexpected(self) -> list[str]:
        return [f"{c.name}: {u}" for c in self.clients for u in c.unexpected]


def check_stored_once(store: Database, clients: list[RetryingClient]) -> tuple[int, int]:
    """Every acknowledged marker stored exactly once, nothing else stored: (requests, markers).

    Every batch a client started was acknowledged in the end (a client stops
    only between batches), so the stored markers are exactly the
    acknowledged ones: a missing marker is a lost acknowledged write, an
    extra copy a retry stored twice.
    """
    requests = markers = 0
    by_account: dict[str, list[RetryingClient]] = {}
    for client in clients:
        by_account.setdefault(client.account.account.id, []).append(client)
    for account_id, group in by_account.items():
        dialect = group[0].dialect
        acknowledged = [m for c in group for batch in c.acknowledged for m in batch]
        stored = stored_markers(store, account_id, dialect)
        twice = sorted(m for m, n in Counter(stored).items() if n > 1)
        assert not twice, f"{dialect.name}: stored more than once: {twice[:10]}"
        missing = sorted(set(acknowledged) - set(stored))
        assert not missing, f"{dialect.name}: acknowledged but not stored: {missing[:10]}"
        unasked = sorted(set(stored) - set(acknowledged))
        assert not unasked, f"{dialect.name}: stored but never acknowledged: {unasked[:10]}"
        requests += sum(len(c.acknowledged) for c in group)
        markers += len(acknowledged)
    return requests, markers


def queued(request: Request) -> Request:
    """The Ortto batch with ``"async": true``: answered ``queued``, stored by the worker."""
    return Request(
        request.method, request.path, request.headers, {**request.json, "async": True}, request.auth
    )


def unfinished_jobs(store: Database, account_id: str) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(jobs)
                .where(jobs.c.account_id == account_id, jobs.c.status != "completed")
            ).scalar_one()
        )


def wait_until_no_jobs_left(store: Database, account_id: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while unfinished_jobs(store, account_id):
        assert time.monotonic() < deadline, "queued batches were not all stored after restart"
        time.sleep(0.2)
