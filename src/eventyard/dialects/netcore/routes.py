"""``POST /v1/activity/upload``: Netcore's Add Activity API."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from eventyard.context import AppContext, get_context
from eventyard.core.errors import EventyardError, Unauthorized
from eventyard.core.model import IngestOutcome, StoredResponse
from eventyard.dialects.netcore.translate import (
    DIALECT,
    Translation,
    events_of,
    translate_events,
)
from eventyard.http import (
    idempotency_key,
    parse_json_body,
    read_body,
    send_stored,
    stored_json,
)
from eventyard.services.accounts import authenticate
from eventyard.services.ingest import IdempotencyRequest, respond_to_activities

PATH = "/v1/activity/upload"
router = APIRouter(tags=["Netcore"])

_EVENT_SCHEMA = {
    "type": "object",
    "required": ["asset_id", "activity_name", "timestamp", "activity_source", "activity_params"],
    "properties": {
        "asset_id": {"type": "string"},
        "activity_name": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time"},
        "identity": {"type": ["string", "integer"]},
        "email": {"type": "string"},
        "mobile": {"type": ["string", "integer"]},
        "anonid": {"type": "string"},
        "activity_source": {"type": "string", "enum": ["web", "app"]},
        "activity_params": {"type": "object"},
    },
}


def _success(_outcome: IngestOutcome) -> StoredResponse:
    return stored_json({"status": "success"})


@router.post(
    PATH,
    summary="Add Activity (Netcore)",
    description="Uploads 1 to 1000 activities. Header `api-key` authenticates.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {
                                "type": "array",
                                "items": _EVENT_SCHEMA,
                                "minItems": 1,
                                "maxItems": 1000,
                            },
                            _EVENT_SCHEMA,
                        ]
                    }
                }
            },
        }
    },
)
async def upload_activities(request: Request, ctx: AppContext = Depends(get_context)) -> Response:
    api_key = request.headers.get("api-key")
    try:
        account = await run_in_threadpool(
            authenticate, ctx.store, DIALECT, api_key, None, ctx.credentials
        )
    except Unauthorized as exc:
        raise EventyardError("unauthorized", "Invalid API Key", 401) from exc
    ctx.limit_rate(DIALECT, account.id)
    ctx.note_ingest(request, DIALECT, account.id)
    body = await read_body(
        request,
        max_bytes=ctx.settings.max_body_bytes,
        timeout_seconds=ctx.settings.body_timeout_seconds,
    )
    key = idempotency_key(request)
    # Parsing and validating a large body takes CPU time: off the event loop,
    # so that other requests (and health probes) are not held up meanwhile.
    translation = await run_in_threadpool(translate_body, body, ctx)
    now = ctx.now()
    idempotency = (
        IdempotencyRequest.for_request(key, PATH, body, ctx.settings.idempotency_ttl_seconds)
        if key
        else None
    )
    stored = await ctx.ingest_records(
        account,
        translation.activities,
        now=now,
        respond=respond_to_activities(
            translation.activities, _success, skipped=len(translation.skipped)
        ),
        idempotency=idempotency,
    )
    if not stored.replayed:
        ctx.metrics.count_events(DIALECT, "accepted", len(translation.activities))
        ctx.metrics.count_events(DIALECT, "skipped", len(translation.skipped))
    response = send_stored(stored)
    if translation.skipped:
        # The body must stay {"status": "success"}; say what was dropped here.
        response.headers["X-Eventyard-Skipped-Events"] = ",".join(map(str, translation.skipped))
    return response


def translate_body(body: bytes, ctx: AppContext) -> Translation:
    """The request body as canonical activities, or the 400 listing every invalid event."""
    payload = parse_json_body(body)
    events, request_errors = events_of(payload.value)
    if request_errors:
        raise EventyardError("bad_request", request_errors[0].reason, 400, errors=request_errors)
    translation, errors = translate_events(events, check_unstorable=payload.suspicious)
    if errors:
        invalid = len({e.index for e in errors})
        ctx.metrics.count_events(DIALECT, "rejected", len(events))
        message = (
            errors[0].reason
            if len(errors) == 1
            else f"{invalid} of {len(events)} events are invalid; nothing was stored"
        )
        raise EventyardError("invalid_events", message, 400, errors=errors, records=len(events))
    return translation
