"""``POST /v1/activities/create``: Ortto's custom activity events."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from eventyard.context import AppContext, get_context
from eventyard.core.errors import EventyardError, Unauthorized
from eventyard.core.model import Account, RecordsOutcome, StoredResponse
from eventyard.dialects.ortto.translate import (
    DIALECT,
    MAX_ACTIVITIES,
    MAX_BODY_BYTES,
    RULES,
    STRATEGIES,
    Translation,
    activities_of,
    flatten,
    response_body,
    translate,
)
from eventyard.http import decode_content, idempotency_key, parse_json_body, read_body, send_stored
from eventyard.services.accounts import authenticate
from eventyard.services.ingest import DeferredRecords, IdempotencyRequest
from eventyard.services.ingest_stats import RejectionError

PATH = "/v1/activities/create"
router = APIRouter(tags=["Ortto"])

_TYPED_MAP = {
    "type": "object",
    "description": "Field ids `type:namespace:field` (str, int, bol, dtz, obj) to values.",
    "additionalProperties": True,
}
_ACTIVITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["activity_id", "attributes"],
    "properties": {
        "activity_id": {"type": "string", "example": "act:cm:product-purchase"},
        "attributes": _TYPED_MAP,
        "person_id": {"type": "string", "minLength": 24, "maxLength": 24},
        "fields": _TYPED_MAP,
        "merge_by": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
        "created": {"type": "string", "format": "date-time"},
        "key": {"type": "string", "maxLength": 255},
        "location": {"type": "object"},
        "merge_strategy": {"type": "integer", "enum": [1, 2, 3]},
    },
}


@router.post(
    PATH,
    summary="Create custom activity events (Ortto)",
    description=(
        "Creates 1 to 100 activities, each finding or creating its person. Header "
        "`X-Api-Key` authenticates. Answers 200 with one entry per activity "
        "(`ingested` or `queued`, or an `error`), or 400 when none was accepted."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["activities"],
                        "properties": {
                            "activities": {
                                "type": "array",
                                "items": _ACTIVITY_SCHEMA,
                                "minItems": 1,
                                "maxItems": MAX_ACTIVITIES,
                            },
                            "async": {"type": "boolean", "default": False},
                        },
                    }
                }
            },
        },
    },
)
async def create_activities(request: Request, ctx: AppContext = Depends(get_context)) -> Response:
    api_key = request.headers.get("x-api-key")
    if not api_key:
        raise EventyardError("unauthorized", "Missing X-Api-Key header", 401)
    try:
        account = await run_in_threadpool(
            authenticate, ctx.store, DIALECT, api_key, None, ctx.credentials
        )
    except Unauthorized as exc:
        raise EventyardError("unauthorized", "Invalid API key", 401) from exc
    ctx.limit_rate(DIALECT, account.id)
    ctx.note_ingest(request, DIALECT, account.id)
    limit = min(MAX_BODY_BYTES, ctx.settings.max_body_bytes)
    body = await read_body(
        request, max_bytes=limit, timeout_seconds=ctx.settings.body_timeout_seconds
    )
    body = await decode_content(request, body, limit)
    now = ctx.now()
    translation = await run_in_threadpool(translate_body, body, account, now)
    stored_now = flatten(translation.accepted(queued=False))
    queued = flatten(translation.accepted(queued=True))
    result: dict[str, Any] = {}
    job_ids: list[str] = []

    def respond(outcome: RecordsOutcome | None) -> StoredResponse:
        status, content = response_body(translation, stored_now, outcome)
        result.update(content)
        if outcome is not None and outcome.job_id is not None:
            # A group commit may render a request twice: the last rendering counts.
            job_ids[:] = [outcome.job_id]
        return StoredResponse(status_code=status, body=orjson.dumps(content))

    if not stored_now.records and not queued.records:
        # Nothing valid: nothing to store, look up or remember.
        stored = respond(None)
    else:
        key = idempotency_key(request)
        idempotency = (
            IdempotencyRequest.for_request(key, PATH, body, ctx.settings.idempotency_ttl_seconds)
            if key
            else None
        )
        stored = await ctx.ingest_records(
            account,
            stored_now.records,
            now=now,
            respond=respond,
            idempotency=idempotency,
            rules=RULES,
            groups=stored_now.groups,
            deferred=DeferredRecords(queued.records, queued.groups, queued.labels)
            if queued.records
            else None,
        )
        if queued.records and not stored.replayed and ctx.wake is not None:
            ctx.wake()
    if not stored.replayed and result:
        entries = result["activities"]
        ctx.metrics.count_events(DIALECT, "accepted", sum(1 for e in entries if "error" not in e))
        ctx.metrics.count_events(DIALECT, "rejected", sum(1 for e in entries if "error" in e))
        refused = [(i, e) for i, e in enumerate(entries) if "error" in e]
        await ctx.remember_rejection(
            request,
            status_code=stored.status_code,
            rejected_records=len(refused),
            errors=[RejectionError(i, f"activities[{i}]", e["error"]) for i, e in refused],
        )
    response = send_stored(stored)
    if job_ids:
        # Where the queued activities can be followed: GET /api/v1/jobs/{id}.
        response.headers["X-Eventyard-Job-Id"] = job_ids[0]
    return response


def translate_body(body: bytes, account: Account, now: datetime) -> Translation:
    """The activities of the body, translated; 400 when the body is not a request."""
    payload = parse_json_body(body)
    try:
        activities, run_async = activities_of(payload.value)
    except ValueError as exc:
        raise EventyardError("bad_request", str(exc), 400) from exc
    return translate(
        activities,
        run_async=run_async,
        now=now,
        default_strategy=STRATEGIES[account.ortto_merge_strategy],
        retention=timedelta(days=account.retention_days),
        check_unstorable=payload.suspicious,
    )
