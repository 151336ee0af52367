"""What every route needs, built once by ``create_app`` and kept on ``app.state``."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from eventyard.core.credentials import CredentialKind
from eventyard.core.delivery import DestinationFormat
from eventyard.core.errors import EventyardError
from eventyard.core.model import (
    Account,
    ReplicaStatus,
    StoredResponse,
)
from eventyard.core.ratelimit import RateLimiter
from eventyard.observability import Metrics
from eventyard.services.credentials import Authenticated, Authenticator
from eventyard.services.destinations.sealing import CredentialSealer
from eventyard.services.group_commit import GroupCommitter
from eventyard.services.ingest import (
    IngestRequest,
    ingest_request,
)
from eventyard.services.ingest_stats import RejectionError, record_rejection
from eventyard.services.pacing import Foreground
from eventyard.services.ports import ReadStore, Store
from eventyard.settings import Settings


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class AppContext:
    settings: Settings
    store: Store
    metrics: Metrics
    #: Checks credentials, remembering the live ones (see services/credentials.py).
    authenticator: Authenticator
    #: The kinds of credential the credentials API issues: admin, read and each dialect's.
    credential_kinds: tuple[CredentialKind, ...] = ()
    now: Callable[[], datetime] = field(default=utc_now)
    #: Wakes this process's job worker after a job was committed; ``None``
    #: when the process runs no worker (``EVENTYARD_RUN_WORKER=false``).
    wake: Callable[[], None] | None = None
    #: Per-credential request rate limits (None: unlimited).
    rate_limiter: RateLimiter | None = None
    #: Shares one transaction among concurrent small ingest requests; ``None``
    #: stores every request in a transaction of its own.
    committer: GroupCommitter | None = None
    #: When this process last received an ingest request (bulk work gives way).
    foreground: Foreground = field(default_factory=Foreground)
    #: Destination kind -> its wire format (the webhook and each dialect's).
    destination_formats: Mapping[str, DestinationFormat] = field(default_factory=dict)
    #: Encrypts destination credentials (``None``: built from ``store`` on first use).
    sealer: CredentialSealer | None = None

    def credential_sealer(self) -> CredentialSealer:
        if self.sealer is None:
            self.sealer = CredentialSealer(self.store, self.settings)
        return self.sealer

    #: Read replicas for the reads that tolerate lag (``EVENTYARD_READ_DATABASE_URL``);
    #: ``None``: every read goes to ``store``.
    read_store: ReadStore | None = None

    @property
    def reads(self) -> Store:
        """Where a read that tolerates a replica's lag goes: a replica, or the primary.

        Only for reads that do not follow the request's own writes: listings,
        searches, exports, the console's pages. Its writing units of work still
        run on the primary.
        """
        return self.store if self.read_store is None else self.read_store

    def replica_statuses(self) -> list[ReplicaStatus]:
        return [] if self.read_store is None else self.read_store.statuses()

    async def authenticate(
        self, kind: str, secret: str | None, public_id: str | None = None
    ) -> Account:
        """The account a credential of ``kind`` opens, or ``Unauthorized``."""
        return (await self.identify((kind,), secret, public_id)).account

    async def identify(
        self, kinds: tuple[str, ...], secret: str | None, public_id: str | None = None
    ) -> Authenticated:
        """The account and credential a secret of one of ``kinds`` stands for, or ``Unauthorized``.

        A credential this process checked lately is answered from memory on
        the event loop; any other goes to the database in a worker thread.
        """
        cached = self.authenticator.cached(kinds, secret, public_id)
        if cached is not None:
            return cached
        return await run_in_threadpool(self.authenticator.check, kinds, secret, public_id)

    async def ingest(self, request: IngestRequest) -> StoredResponse:
        """Store ``request`` off the event loop; its response once it has committed.

        A small request joins the process's group commit, a large one has a
        transaction of its own (:func:`~eventyard.services.ingest.ingest_request`).
        """
        if self.committer is not None and self.committer.accepts(request):
            return await asyncio.wrap_future(self.committer.submit(request))
        return await run_in_threadpool(ingest_request, self.store, request)

    def limit_rate(self, dialect: str, account_id: str) -> None:
        """Take one request from the account's bucket for ``dialect``, or raise 429.

        The 429 carries ``Retry-After`` (whole seconds until a token is free);
        each dialect renders it in its own error shape.
        """
        if self.rate_limiter is None:
            return
        wait = self.rate_limiter.acquire(f"{dialect}:{account_id}")
        if wait > 0:
            raise EventyardError(
                "rate_limited",
                "Too many requests for this API key; retry later",
                429,
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )

    def note_ingest(self, request: Request, dialect: str, account_id: str) -> None:
        """Mark ``request`` as ingest by the account through ``dialect``.

        From then on a refusal of the request (or of some of its records) is
        kept in the account's ingest rejections, which the console shows.
        """
        request.state.ingest_source = (dialect, account_id)

    async def remember_rejection(
        self,
        request: Request,
        *,
        status_code: int,
        rejected_records: int,
        errors: Sequence[RejectionError],
    ) -> None:
        """Keep a refusal of a request marked by :meth:`note_ingest`; otherwise do nothing.

        Runs in a transaction of its own after the request's; a failure to
        keep it is logged, never turned into the request's answer.
        """
        source = getattr(request.state, "ingest_source", None)
        if source is None or rejected_records <= 0:
            return
        dialect, account_id = source
        try:
            await run_in_threadpool(
                lambda: record_rejection(
                    self.store,
                    account_id,
                    dialect=dialect,
                    route=request.url.path,
                    status_code=status_code,
                    rejected_records=rejected_records,
                    errors=errors,
                    now=self.now(),
                )
            )
        except Exception:
            _log.exception("could not record an ingest rejection")


_log = logging.getLogger("eventyard")


async def get_context(request: Request) -> AppContext:
    """The application's context, as a route dependency.

    ``async`` so that FastAPI calls it on the event loop: a plain function
    dependency is run in the thread pool, a hop per request that cost
    11-14 % of the event loop's time on single-event requests.
    """
    ctx: AppContext = request.app.state.ctx
    return ctx
