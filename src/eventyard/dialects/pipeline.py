"""The one ingest pipeline that every dialect's write endpoint runs through.

A dialect declares an :class:`IngestEndpoint`: how the credential is read
from a request, how a body is parsed and translated into canonical records
(a :class:`Submission`), and how the outcome is rendered in its vendor's
shape. Everything else is here and runs in the same order for every dialect:

1. **authenticate**: the dialect reads the credential from the headers; a
   credential this process checked lately is answered from the cache on the
   event loop, any other goes to the database in a worker thread. A wrong
   one is the dialect's 401.
2. **rate limit**: one token of the account's bucket for the dialect, or 429.
3. **read the body**: 408 when it is too slow, 413 beyond the smaller of the
   dialect's and the server's limit; gzip (``Content-Encoding``) is inflated
   for every dialect, bounded by the same limit.
4. **parse**: JSON and the body's outer shape, on the event loop for a small
   body and in a worker thread for a large one. A dialect whose credential
   may travel in the body (Segment's ``writeKey``) authenticates here, then
   rate-limits.
5. **idempotency**: an ``Idempotency-Key`` is checked and fingerprinted with
   the path and the body; the claim is made in the store's transaction.
6. **translate**: canonical records, every record's error collected.
7. **store**: admission (registry, definitions, limits), identity resolution
   and the writes in one transaction (the group commit for small requests);
   nothing is answered before it has committed.
8. **respond**: the dialect renders the outcome; the pipeline counts the
   accepted and refused records and keeps refusals for the console.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from fastapi import Request, Response

from eventyard.context import AppContext
from eventyard.core.commands import Record
from eventyard.core.errors import EventyardError, Unauthorized
from eventyard.core.model import (
    Account,
    EventTypeLimits,
    IngestRules,
    RecordsOutcome,
    StoredResponse,
)
from eventyard.http import (
    body_too_large,
    decode_content,
    idempotency_key,
    off_loop_if_large,
    read_body,
    send_stored,
)
from eventyard.services.idempotency import IdempotencyRequest
from eventyard.services.ingest import NO_RULES, DeferredRecords, IngestRequest
from eventyard.services.ingest_stats import RejectionError

P = TypeVar("P")


@dataclass(frozen=True, slots=True)
class Credential:
    """A credential as a request presents it: its kind, secret and public id (if any)."""

    kind: str
    secret: str | None
    public_id: str | None = None


@dataclass(frozen=True, slots=True)
class Report:
    """What a stored request did, for the metrics and the console's rejections.

    ``counts`` maps an outcome (``accepted``, ``rejected``, ``skipped``) to
    its number of records; ``errors`` names the refused records.
    """

    counts: Mapping[str, int] = field(default_factory=dict)
    errors: Sequence[RejectionError] = ()


@dataclass(eq=False)
class Submission:
    """One request translated into canonical records, and how to answer it.

    A dialect subclasses it to keep what its answer needs (the records as
    sent, the translation's errors) and overrides :meth:`respond`. The
    store calls :meth:`respond` with the outcome once per attempt (a group
    commit may run a request twice: the last rendering is the answer), or
    the pipeline calls it with ``None`` when nothing is to be stored.
    """

    records: Sequence[Record]
    dry_run: bool = False
    event_limits: EventTypeLimits | None = None
    rules: IngestRules = NO_RULES
    groups: Sequence[int] | None = None
    deferred: DeferredRecords | None = None

    @property
    def has_work(self) -> bool:
        """Whether anything is to be stored or queued (otherwise nothing is remembered)."""
        return bool(self.records) or (self.deferred is not None and bool(self.deferred.records))

    def respond(self, outcome: RecordsOutcome | None) -> StoredResponse:
        raise NotImplementedError

    def report(self) -> Report:
        """Counts and refusals of the last :meth:`respond` (not called for a replay)."""
        return Report()

    def headers(self, stored: StoredResponse) -> dict[str, str]:
        """Headers the answer carries besides the stored response (replays included)."""
        return {}


@dataclass(frozen=True, slots=True)
class Arrival:
    """What translation may need to know about the request besides its body."""

    request: Request
    account: Account
    #: The credential that opened the account.
    credential: Credential
    now: datetime


@dataclass(frozen=True, slots=True)
class IngestEndpoint(Generic[P]):
    """A dialect's write endpoint, as the pipeline runs it.

    ``read_credential`` reads the headers and raises the dialect's 401 when
    they are malformed; ``None`` means the credential travels in the body
    and ``body_credential`` finds it after parsing (it also checks that a
    body credential agrees with the header's). ``invalid_credential`` is
    the dialect's answer to a credential that opens no account.
    ``too_large`` turns the 413 of a body beyond ``limit`` into the
    dialect's own, where it words it differently.
    """

    dialect: str
    read_credential: Callable[[Request], Credential | None]
    invalid_credential: Callable[[], EventyardError]
    parse: Callable[[bytes], P]
    translate: Callable[[P, Arrival], Submission]
    #: The dialect's own body limit; the server's ``max_body_bytes`` applies too.
    max_body_bytes: int | None = None
    body_credential: Callable[[P, Request, Credential | None], Credential] | None = None
    too_large: Callable[[int, EventyardError], EventyardError] | None = None
    #: Wakes the worker after the request queued records for it.
    wakes_worker: bool = False

    def body_limit(self, ctx: AppContext) -> int:
        if self.max_body_bytes is None:
            return ctx.settings.max_body_bytes
        return min(self.max_body_bytes, ctx.settings.max_body_bytes)


async def receive(
    request: Request,
    ctx: AppContext,
    endpoint: IngestEndpoint[Any],
    *,
    body: bytes | None = None,
) -> Response:
    """Run one request through the pipeline and answer it in the dialect's shape.

    ``body``: the body already read and inflated (by the dispatch of a
    shared path), checked against the endpoint's limit instead of read again.
    """
    with ctx.foreground.serving():
        return await _receive(request, ctx, endpoint, body)


async def _receive(
    request: Request, ctx: AppContext, endpoint: IngestEndpoint[Any], body: bytes | None
) -> Response:
    credential = endpoint.read_credential(request)
    account: Account | None = None
    if credential is not None:
        account = await _admit(request, ctx, endpoint, credential)
    limit = endpoint.body_limit(ctx)
    try:
        if body is None:
            body = await read_inflated_body(request, ctx, limit)
        elif len(body) > limit:
            raise body_too_large()
    except EventyardError as exc:
        if exc.status != 413 or endpoint.too_large is None:
            raise
        raise endpoint.too_large(limit, exc) from exc
    parsed = await off_loop_if_large(body, endpoint.parse, body)
    if endpoint.body_credential is not None:
        found = endpoint.body_credential(parsed, request, credential)
        if account is None:
            credential, account = found, await _admit(request, ctx, endpoint, found)
    if account is None or credential is None:
        raise endpoint.invalid_credential()
    key = idempotency_key(request)
    now = ctx.now()
    arrival = Arrival(request, account, credential, now)
    try:
        submission = await off_loop_if_large(body, endpoint.translate, parsed, arrival)
    except EventyardError as exc:
        if exc.records:
            ctx.metrics.count_events(endpoint.dialect, "rejected", exc.records)
        raise
    if not submission.has_work:
        # Nothing valid: nothing to store, look up or remember.
        stored = submission.respond(None)
    else:
        idempotency = (
            IdempotencyRequest.for_request(
                key, request.url.path, body, ctx.settings.idempotency_ttl_seconds
            )
            if key and not submission.dry_run
            else None
        )
        stored = await ctx.ingest(
            IngestRequest(
                account,
                submission.records,
                now,
                submission.respond,
                idempotency=idempotency,
                dry_run=submission.dry_run,
                event_limits=submission.event_limits,
                rules=submission.rules,
                groups=submission.groups,
                deferred=submission.deferred,
            )
        )
        if (
            endpoint.wakes_worker
            and submission.deferred is not None
            and not stored.replayed
            and ctx.wake is not None
        ):
            ctx.wake()
    if not stored.replayed and not submission.dry_run:
        report = submission.report()
        for outcome, count in report.counts.items():
            ctx.metrics.count_events(endpoint.dialect, outcome, count)
        await ctx.remember_rejection(
            request,
            status_code=stored.status_code,
            rejected_records=report.counts.get("rejected", 0),
            errors=report.errors,
        )
    response = send_stored(stored)
    response.headers.update(submission.headers(stored))
    return response


async def read_inflated_body(request: Request, ctx: AppContext, limit: int) -> bytes:
    """The request's body read in time and without its ``Content-Encoding``, at most ``limit``."""
    body = await read_body(
        request, max_bytes=limit, timeout_seconds=ctx.settings.body_timeout_seconds
    )
    return await decode_content(request, body, limit)


async def _admit(
    request: Request, ctx: AppContext, endpoint: IngestEndpoint[Any], credential: Credential
) -> Account:
    """Authenticate ``credential`` and take a token of its account's rate limit."""
    try:
        account = await ctx.authenticate(credential.kind, credential.secret, credential.public_id)
    except Unauthorized as exc:
        raise endpoint.invalid_credential() from exc
    ctx.limit_rate(endpoint.dialect, account.id)
    ctx.note_ingest(request, endpoint.dialect, account.id)
    return account
