"""Segment's HTTP Tracking API: ``POST /v1/batch`` and the six single-call endpoints."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from eventyard.context import AppContext, get_context
from eventyard.core.errors import EventyardError, Unauthorized
from eventyard.core.identifiers import ANONID, IDENTITY, Identifier
from eventyard.core.model import Account, ProfileUpdate, RecordsOutcome, StoredResponse
from eventyard.core.payload import decode_json
from eventyard.dialects.segment.auth import credential_from_authorization
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
from eventyard.http import (
    decode_content,
    idempotency_key,
    parse_off_loop,
    read_body,
    send_stored,
)
from eventyard.services.contacts import find_contacts
from eventyard.services.ingest import IdempotencyRequest
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


async def receive(request: Request, ctx: AppContext, call_type: str | None) -> Response:
    """Authenticate, read, translate and store one request; answer as Segment does."""
    try:
        header = credential_from_authorization(request.headers.get("authorization"))
    except ValueError as exc:
        raise _unauthorized(str(exc)) from exc
    account: Account | None = None
    write_key: str | None = None
    if header is not None and header.basic_key is not None:
        write_key = header.basic_key
        account = await _account_of(ctx, write_key)
        ctx.note_ingest(request, DIALECT, account.id)
    limit = MAX_BATCH_BYTES if call_type is None else MAX_MESSAGE_BYTES
    body, parsed = await _read_request(
        request, ctx, call_type, min(limit, ctx.settings.max_body_bytes)
    )
    if account is None:
        bearer = header.bearer if header is not None else None
        write_key = parsed.write_key or parsed.first_message_key or bearer
        if write_key is None:
            raise _unauthorized(
                "Missing write key: send HTTP Basic with the write key as user name, "
                "a writeKey field in the body, or Authorization: Bearer <write key>"
            )
        account = await _account_of(ctx, write_key)
        ctx.note_ingest(request, DIALECT, account.id)
    elif parsed.write_key is not None and parsed.write_key != write_key:
        raise _unauthorized("the body's writeKey names another source than the Authorization")
    ctx.limit_rate(DIALECT, account.id)
    now = ctx.now()
    translation = await run_in_threadpool(
        lambda: translate_messages(parsed, call_type, now=now, write_key=write_key)
    )
    refused: list[MessageProblem] = []
    if translation.records:
        checked = account
        if translation.aliases:
            await run_in_threadpool(resolve_aliases, ctx, checked, translation)

        def respond(outcome: RecordsOutcome) -> StoredResponse:
            # A group commit may render a request twice: the last rendering counts.
            refused[:] = [
                MessageProblem(translation.positions[r.index], r.code, r.message)
                for r in outcome.rejected
            ]
            return StoredResponse(status_code=200, body=SUCCESS)

        key = idempotency_key(request)
        idempotency = (
            IdempotencyRequest.for_request(
                key, request.url.path, body, ctx.settings.idempotency_ttl_seconds
            )
            if key
            else None
        )
        stored = await ctx.ingest_records(
            checked, translation.records, now=now, respond=respond, idempotency=idempotency
        )
    else:
        stored = StoredResponse(status_code=200, body=SUCCESS)
    dropped = translation.dropped + len(refused)
    if not stored.replayed:
        ctx.metrics.count_events(DIALECT, "accepted", len(translation.records) - len(refused))
        ctx.metrics.count_events(DIALECT, "rejected", dropped)
        # Segment: "To debug events that return 200 responses but aren't accepted by
        # Segment, use the Segment Debugger"; the console's ingest rejections play that part.
        await ctx.remember_rejection(
            request,
            status_code=200,
            rejected_records=dropped,
            errors=[
                RejectionError(p.index, p.field, p.message) for p in (*translation.errors, *refused)
            ],
        )
    response = send_stored(stored)
    if dropped:
        response.headers[REJECTED_HEADER] = str(dropped)
    return response


async def _read_request(
    request: Request, ctx: AppContext, call_type: str | None, limit: int
) -> tuple[bytes, ParsedRequest]:
    """The body, gunzipped at most to ``limit`` bytes, and its messages; 400 beyond the limit.

    "If these limits are exceeded, Segment returns a 400 Bad Request error."
    """
    try:
        body = await read_body(
            request, max_bytes=limit, timeout_seconds=ctx.settings.body_timeout_seconds
        )
        body = await decode_content(request, body, limit)
    except EventyardError as exc:
        if exc.status != 413:
            raise
        what = "a batch request" if call_type is None else "a single call"
        error = segment_error(
            f"the body is larger than {limit} bytes, the limit of {what}",
            code="payload_too_large",
        )
        error.headers.update(exc.headers)  # Connection: close, so the rest is never read
        raise error from exc
    return body, await parse_off_loop(body, _parse, call_type)


def _parse(body: bytes, call_type: str | None) -> ParsedRequest:
    try:
        payload = decode_json(body)
    except ValueError as exc:
        raise segment_error(f"the body is not valid JSON: {exc}", code="invalid_json") from exc
    return parse_request(payload.value, call_type, suspicious=payload.suspicious)


async def _account_of(ctx: AppContext, write_key: str) -> Account:
    try:
        return await ctx.authenticate(DIALECT, write_key)
    except Unauthorized as exc:
        raise _unauthorized("Invalid write key") from exc


def _unauthorized(message: str) -> EventyardError:
    return segment_error(message, code="unauthorized", status=401)


def resolve_aliases(ctx: AppContext, account: Account, translation: Translation) -> None:
    """Give each alias's ``previousId`` the kind that already names a contact.

    ``previousId`` "may be an earlier anonymousId or an earlier userId": a
    user id (``identity``) when a contact has it, or an earlier message of the
    same request sent it as ``userId``; otherwise an anonymous id (``anonid``).
    """
    for slot, previous in translation.aliases:
        record = translation.records[slot]
        assert isinstance(record, ProfileUpdate)
        as_user = Identifier(IDENTITY, previous)
        earlier = any(as_user in r.identifiers for r in translation.records[:slot])
        if not earlier and not find_contacts(ctx.store, account, as_user):
            continue
        identifiers = tuple(
            as_user if i == Identifier(ANONID, previous) else i for i in record.identifiers
        )
        translation.records[slot] = ProfileUpdate(
            identifiers=tuple(dict.fromkeys(identifiers)),
            attributes=record.attributes,
            dialect=record.dialect,
            message_id=record.message_id,
        )


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
    return await receive(request, ctx, None)


def _single_call(call: str) -> Callable[[Request, AppContext], Awaitable[Response]]:
    async def endpoint(request: Request, ctx: AppContext = Depends(get_context)) -> Response:
        return await receive(request, ctx, call)

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
