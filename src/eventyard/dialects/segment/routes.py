"""Segment's HTTP Tracking API: ``POST /v1/batch`` and the six single-call endpoints."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from eventyard.context import AppContext, get_context
from eventyard.core.errors import EventyardError
from eventyard.core.model import ProfileUpdate, RecordsOutcome, StoredResponse
from eventyard.core.payload import decode_json
from eventyard.dialects.pipeline import (
    Arrival,
    Credential,
    IngestEndpoint,
    Report,
    Submission,
    receive,
)
from eventyard.dialects.segment.auth import HeaderCredential, credential_from_authorization
from eventyard.dialects.segment.errors import segment_error
from eventyard.dialects.segment.schemas import CALL_MODELS, Batch, request_schema
from eventyard.dialects.segment.translate import (
    CALL_TYPES,
    DIALECT,
    MAX_BATCH_BYTES,
    MAX_MESSAGE_BYTES,
    MessageProblem,
    ParsedRequest,
    Translation,
    parse_request,
    translate_messages,
)
from eventyard.services.ingest_stats import RejectionError

BATCH_PATH = "/v1/batch"
CALL_PATHS = {call: f"/v1/{call}" for call in CALL_TYPES}
PATHS = (BATCH_PATH, *CALL_PATHS.values())
#: "a valid batch -> 200 {"success": true}", also when messages were dropped.
SUCCESS = b'{"success":true}'
#: Set on a 200 that dropped messages, so that a curl user sees it at once.
REJECTED_HEADER = "X-Eventyard-Rejected-Messages"

router = APIRouter(tags=["Segment"])

_AUTH = (
    "Authenticate with HTTP Basic (the account's Segment write key as user name, empty "
    "password), a `writeKey` field in the body, or `Authorization: Bearer <write key>`. "
)
_ANSWERS = (
    'Answers 200 `{"success": true}` once stored; a message that is invalid (no userId '
    "nor anonymousId, a track without event, a bad timestamp …) is dropped while the others "
    "are stored, and shows in the account's ingest rejections. 400 for malformed JSON and "
    "bodies beyond the size limits; 503 with Retry-After when the database is unavailable."
)


@dataclass(eq=False)
class Calls(Submission):
    """A request's messages: answered ``{"success": true}``, dropped ones counted aside."""

    translation: Translation = field(default_factory=Translation)
    refused: list[MessageProblem] = field(default_factory=list)

    def respond(self, outcome: RecordsOutcome | None) -> StoredResponse:
        # A group commit may render a request twice: the last rendering counts.
        self.refused = [
            MessageProblem(self.translation.positions[r.index], r.code, r.message)
            for r in (outcome.rejected if outcome is not None else ())
        ]
        return StoredResponse(status_code=200, body=SUCCESS)

    @property
    def dropped(self) -> int:
        return self.translation.dropped + len(self.refused)

    def report(self) -> Report:
        # Segment: "To debug events that return 200 responses but aren't accepted by
        # Segment, use the Segment Debugger"; the console's ingest rejections play that part.
        problems = (*self.translation.errors, *self.refused)
        return Report(
            {"accepted": len(self.records) - len(self.refused), "rejected": self.dropped},
            [RejectionError(p.index, p.field, p.message) for p in problems],
        )

    def headers(self, stored: StoredResponse) -> dict[str, str]:
        return {REJECTED_HEADER: str(self.dropped)} if self.dropped else {}


def read_credential(request: Request) -> Credential | None:
    """The write key of a Basic header; ``None`` when the body may carry it."""
    header = _authorization(request)
    if header is not None and header.basic_key is not None:
        return Credential(DIALECT, header.basic_key)
    return None


def body_credential(
    parsed: ParsedRequest, request: Request, header: Credential | None
) -> Credential:
    """The write key of the body (or of a Bearer header) when no Basic header gave one."""
    if header is not None:
        if parsed.write_key is not None and parsed.write_key != header.secret:
            raise _unauthorized("the body's writeKey names another source than the Authorization")
        return header
    authorization = _authorization(request)
    bearer = authorization.bearer if authorization is not None else None
    write_key = parsed.write_key or parsed.first_message_key or bearer
    if write_key is None:
        raise _unauthorized(
            "Missing write key: send HTTP Basic with the write key as user name, "
            "a writeKey field in the body, or Authorization: Bearer <write key>"
        )
    return Credential(DIALECT, write_key)


def _authorization(request: Request) -> HeaderCredential | None:
    try:
        return credential_from_authorization(request.headers.get("authorization"))
    except ValueError as exc:
        raise _unauthorized(str(exc)) from exc


def invalid_credential() -> EventyardError:
    return _unauthorized("Invalid write key")


def _unauthorized(message: str) -> EventyardError:
    return segment_error(message, code="unauthorized", status=401)


def too_large(call_type: str | None) -> Callable[[int, EventyardError], EventyardError]:
    """The 413 as Segment words it.

    "If these limits are exceeded, Segment returns a 400 Bad Request error."
    """

    def error(limit: int, exc: EventyardError) -> EventyardError:
        what = "a batch request" if call_type is None else "a single call"
        refusal = segment_error(
            f"the body is larger than {limit} bytes, the limit of {what}",
            code="payload_too_large",
        )
        refusal.headers.update(exc.headers)  # Connection: close, so the rest is never read
        return refusal

    return error


def parser(call_type: str | None) -> Callable[[bytes], ParsedRequest]:
    def parse(body: bytes) -> ParsedRequest:
        try:
            payload = decode_json(body)
        except ValueError as exc:
            raise segment_error(f"the body is not valid JSON: {exc}", code="invalid_json") from exc
        return parse_request(payload.value, call_type, suspicious=payload.suspicious)

    return parse


def translator(call_type: str | None) -> Callable[[ParsedRequest, Arrival], Calls]:
    def translate(parsed: ParsedRequest, arrival: Arrival) -> Calls:
        translation = translate_messages(
            parsed, call_type, now=arrival.now, write_key=arrival.credential.secret
        )
        for slot, previous in translation.aliases:
            # Whether previousId is a user id is settled in the write transaction.
            record = translation.records[slot]
            assert isinstance(record, ProfileUpdate)
            translation.records[slot] = replace(record, alias_of=previous)
        return Calls(translation.records, translation=translation)

    return translate


def endpoint(call_type: str | None) -> IngestEndpoint[ParsedRequest]:
    """The endpoint of a batch (``None``) or of one call type."""
    return IngestEndpoint(
        dialect=DIALECT,
        read_credential=read_credential,
        invalid_credential=invalid_credential,
        parse=parser(call_type),
        translate=translator(call_type),
        max_body_bytes=MAX_BATCH_BYTES if call_type is None else MAX_MESSAGE_BYTES,
        body_credential=body_credential,
        too_large=too_large(call_type),
    )


ENDPOINTS = {call: endpoint(call) for call in (None, *CALL_TYPES)}


def _openapi(model: Any) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": request_schema(model)}},
        }
    }


_OK: dict[int | str, dict[str, Any]] = {200: {"description": 'Stored: `{"success": true}`'}}


@router.post(
    BATCH_PATH,
    summary="Send a batch of calls (Segment)",
    description=(
        "A series of identify, track, page, screen, group and alias calls, at most 500 KB "
        "(after gzip) and 32 KB per call. " + _AUTH + _ANSWERS
    ),
    openapi_extra=_openapi(Batch),
    responses=_OK,
)
async def batch(request: Request, ctx: AppContext = Depends(get_context)) -> Response:
    return await receive(request, ctx, ENDPOINTS[None])


def _single_call(call: str) -> Callable[[Request, AppContext], Awaitable[Response]]:
    async def endpoint(request: Request, ctx: AppContext = Depends(get_context)) -> Response:
        return await receive(request, ctx, ENDPOINTS[call])

    endpoint.__name__ = f"segment_{call}"
    return endpoint


_CALL_SUMMARIES = {
    "identify": "Identify a user and set their traits (Segment)",
    "track": "Track an event (Segment)",
    "page": "Record a page view (Segment)",
    "screen": "Record a screen view (Segment)",
    "group": "Associate a user with a group (Segment)",
    "alias": "Associate one identity with another (Segment)",
}
for _call, _path in CALL_PATHS.items():
    router.add_api_route(
        _path,
        _single_call(_call),
        methods=["POST"],
        summary=_CALL_SUMMARIES[_call],
        description=f"One {_call} call, at most 32 KB. " + _AUTH + _ANSWERS,
        openapi_extra=_openapi(CALL_MODELS[_call]),
        responses=_OK,
    )

__all__ = ["BATCH_PATH", "PATHS", "router"]
