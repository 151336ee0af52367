"""PostHog's capture API: ``POST /batch``, ``/capture``, ``/e``, ``/i/v0/e`` (each also with ``/``).

``/batch`` (and ``/batch/``, where posthog-python and posthog-node post) is
shared with Amplitude: it is declared as a :class:`SharedRoute` and PostHog,
the last to share it, takes every body nobody else claims. The other paths
are this router's own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from fastapi import APIRouter, Depends, Request, Response

from eventyard.context import AppContext, get_context
from eventyard.core.errors import EventyardError
from eventyard.core.model import ProfileUpdate, RecordsOutcome, StoredResponse
from eventyard.dialects.base import SharedRoute
from eventyard.dialects.pipeline import (
    Arrival,
    Credential,
    IngestEndpoint,
    Report,
    Submission,
    receive,
)
from eventyard.dialects.posthog.decode import GZIP_MAGIC
from eventyard.dialects.posthog.errors import INVALID_API_KEY, posthog_error, unauthorized
from eventyard.dialects.posthog.schemas import request_body
from eventyard.dialects.posthog.translate import (
    DIALECT,
    MAX_BATCH_BYTES,
    MAX_EVENT_PATH_BYTES,
    EventProblem,
    ParsedRequest,
    Translation,
    parse_request,
    request_clock,
    translate_events,
)
from eventyard.services.ingest_stats import RejectionError

BATCH_PATHS = ("/batch", "/batch/")
#: "Serve every path with and without trailing slash directly (a redirect on POST is fragile)."
EVENT_PATHS = ("/capture", "/capture/", "/e", "/e/", "/i/v0/e", "/i/v0/e/")
PATHS = EVENT_PATHS
#: Docs (post-only endpoints): "200 {"status": 1}", also when events were dropped.
SUCCESS = b'{"status":1}'
#: Set on a 200 that dropped events, so that a curl user sees it at once.
REJECTED_HEADER = "X-Eventyard-Rejected-Events"

router = APIRouter(tags=["Posthog"])

_DESCRIPTION = (
    "The project API key travels in the body (`api_key`, also `token`, or each event's "
    "`properties.token`). Bodies: JSON (one event, an array, or `{api_key, batch: [...]}`), "
    "gzip (`Content-Encoding: gzip` or `?compression=gzip-js`), lz-string "
    "(`compression=lz64`), base64, or a form whose `data` field holds one of those. "
    'Answers 200 `{"status": 1}` once stored (204 with `?beacon=1`); an event without a name '
    "or a distinct_id, with an invalid uuid or over 1 MB is dropped while the others are "
    "stored, and shows in the account's ingest rejections. A repeated `uuid` is stored once."
)


@dataclass(eq=False)
class Events(Submission):
    """A request's events: answered ``{"status": 1}``, dropped ones counted aside."""

    translation: Translation = field(default_factory=Translation)
    beacon: bool = False
    refused: list[EventProblem] = field(default_factory=list)

    def respond(self, outcome: RecordsOutcome | None) -> StoredResponse:
        # A group commit may render a request twice: the last rendering counts.
        self.refused = [
            EventProblem(self.translation.positions[r.index], r.code, r.message)
            for r in (outcome.rejected if outcome is not None else ())
        ]
        if self.beacon:
            return StoredResponse(status_code=204, body=b"")
        return StoredResponse(status_code=200, body=SUCCESS)

    @property
    def dropped(self) -> int:
        refused = {problem.index for problem in self.refused}
        return self.translation.dropped + len(refused)

    def report(self) -> Report:
        problems = (*self.translation.errors, *self.refused)
        events = len(set(self.translation.positions))
        return Report(
            {"accepted": events - len({p.index for p in self.refused}), "rejected": self.dropped},
            [RejectionError(p.index, p.field, p.message) for p in problems],
        )

    def headers(self, stored: StoredResponse) -> dict[str, str]:
        return {REJECTED_HEADER: str(self.dropped)} if self.dropped else {}


def read_credential(request: Request) -> Credential | None:
    """Always ``None``: "the project API key in the body"."""
    return None


def body_credential(
    parsed: ParsedRequest, request: Request, header: Credential | None
) -> Credential:
    return Credential(DIALECT, parsed.api_key)


def invalid_credential() -> EventyardError:
    return unauthorized(INVALID_API_KEY)


def too_large(limit: int, exc: EventyardError) -> EventyardError:
    refusal = posthog_error(
        f"the body is larger than {limit} bytes, the limit of this path",
        code="payload_too_large",
        status=413,
    )
    refusal.headers.update(exc.headers)  # Connection: close, so the rest is never read
    return refusal


def parser(limit: int) -> Callable[[bytes], ParsedRequest]:
    def parse(body: bytes) -> ParsedRequest:
        return parse_request(body, limit)

    return parse


def translate(parsed: ParsedRequest, arrival: Arrival) -> Events:
    query = arrival.request.query_params
    clock = request_clock(parsed, query.get("_") or query.get("sent_at"), arrival.now)
    translation = translate_events(parsed, clock)
    for slot, anonymous in translation.aliases:
        # Whether $anon_distinct_id is already someone's user id is settled when written.
        record = translation.records[slot]
        assert isinstance(record, ProfileUpdate)
        translation.records[slot] = replace(record, alias_of=anonymous)
    return Events(
        translation.records,
        translation=translation,
        beacon=query.get("beacon") == "1",
    )


def endpoint(limit: int) -> IngestEndpoint[ParsedRequest]:
    return IngestEndpoint(
        dialect=DIALECT,
        read_credential=read_credential,
        invalid_credential=invalid_credential,
        parse=parser(limit),
        translate=translate,
        max_body_bytes=limit,
        body_credential=body_credential,
        too_large=too_large,
    )


BATCH_ENDPOINT = endpoint(MAX_BATCH_BYTES)
EVENT_ENDPOINT = endpoint(MAX_EVENT_PATH_BYTES)


def claims(request: Request, body: bytes) -> bool:
    """Whether a ``/batch`` body is PostHog's: a JSON object with a ``batch`` array
    (or an array of events), or a compressed or form body (which only posthog-js sends).

    PostHog is the last to share ``/batch`` and takes unclaimed bodies anyway;
    this says what it recognises, for a dialect registered after it.
    """
    if request.query_params.get("compression"):
        return True
    head = body.lstrip()[:1]
    if head == b"{":
        return b'"batch"' in body
    return head == b"[" or body.startswith(GZIP_MAGIC) or head.isalpha()


async def capture(request: Request, ctx: AppContext = Depends(get_context)) -> Response:
    return await receive(request, ctx, EVENT_ENDPOINT)


for _path in EVENT_PATHS:
    router.add_api_route(
        _path,
        capture,
        methods=["POST"],
        summary=f"Capture events (PostHog {_path})",
        description="One event or a batch, at most 2 MB. " + _DESCRIPTION,
        name=f"posthog_capture_{_path.strip('/').replace('/', '_')}",
        openapi_extra=request_body(),
        responses={200: {"description": 'Stored: `{"status": 1}`'}},
    )

SHARED_ROUTES = tuple(
    SharedRoute(
        path=path,
        claims=claims,
        endpoint=BATCH_ENDPOINT,
        summary="Capture a batch of events (PostHog)",
        description="A batch of events, at most 20 MB. " + _DESCRIPTION,
    )
    for path in BATCH_PATHS
)

__all__ = ["PATHS", "SHARED_ROUTES", "router"]
