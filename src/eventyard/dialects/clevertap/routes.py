"""``POST /1/upload``: CleverTap's Upload Events API (events and profiles)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from eventyard.context import AppContext, get_context
from eventyard.core.errors import EventyardError, Unauthorized
from eventyard.core.model import RecordsOutcome, StoredResponse
from eventyard.dialects.clevertap.translate import (
    DIALECT,
    EVENT_TYPE_LIMITS,
    MAX_RECORDS,
    Translation,
    records_of,
    translate_records,
    upload_result,
)
from eventyard.http import (
    decode_content,
    idempotency_key,
    parse_json_body,
    read_body,
    send_stored,
)
from eventyard.services.accounts import authenticate
from eventyard.services.ingest import IdempotencyRequest
from eventyard.services.ingest_stats import RejectionError

PATH = "/1/upload"
router = APIRouter(tags=["CleverTap"])

_IDENTITY_PROPERTIES: dict[str, Any] = {
    "identity": {"type": ["string", "integer"]},
    "FBID": {"type": ["string", "integer"]},
    "GPID": {"type": ["string", "integer"]},
    "objectId": {"type": ["string", "integer"]},
    "ts": {"type": ["integer", "string"], "description": "UNIX epoch seconds"},
}
_RECORD_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {
            "type": "object",
            "required": ["type", "evtName", "evtData"],
            "properties": {
                "type": {"const": "event"},
                "evtName": {"type": "string", "maxLength": 120},
                "evtData": {"type": "object"},
                **_IDENTITY_PROPERTIES,
            },
        },
        {
            "type": "object",
            "required": ["type", "profileData"],
            "properties": {
                "type": {"const": "profile"},
                "profileData": {"type": "object"},
                **_IDENTITY_PROPERTIES,
            },
        },
    ]
}
_TRUE = {"1", "true"}
_FALSE = {"0", "false", ""}


@router.post(
    PATH,
    summary="Upload Events and profiles (CleverTap)",
    description=(
        "Uploads 1 to 1000 event or profile records. Headers `X-CleverTap-Account-Id` and "
        "`X-CleverTap-Passcode` authenticate. Answers 200 with "
        '`{"status": "success"|"partial"|"fail", "processed": N, "unprocessed": [...]}`.'
    ),
    openapi_extra={
        "parameters": [
            {
                "name": "dryRun",
                "in": "query",
                "required": False,
                "description": "1: validate everything and answer as usual, store nothing.",
                "schema": {"type": "string", "enum": ["0", "1", "true", "false"]},
            }
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["d"],
                        "properties": {
                            "d": {
                                "type": "array",
                                "items": _RECORD_SCHEMA,
                                "minItems": 1,
                                "maxItems": MAX_RECORDS,
                            }
                        },
                    }
                }
            },
        },
    },
)
async def upload_records(request: Request, ctx: AppContext = Depends(get_context)) -> Response:
    account_id = request.headers.get("x-clevertap-account-id")
    passcode = request.headers.get("x-clevertap-passcode")
    if not account_id or not passcode:
        raise EventyardError(
            "unauthorized", "Missing X-CleverTap-Account-Id or X-CleverTap-Passcode header", 401
        )
    try:
        account = await run_in_threadpool(
            authenticate, ctx.store, DIALECT, passcode, account_id, ctx.credentials
        )
    except Unauthorized as exc:
        raise EventyardError("unauthorized", "Invalid Account Id or Passcode", 401) from exc
    ctx.limit_rate(DIALECT, account.id)
    ctx.note_ingest(request, DIALECT, account.id)
    body = await read_body(
        request,
        max_bytes=ctx.settings.max_body_bytes,
        timeout_seconds=ctx.settings.body_timeout_seconds,
    )
    body = await decode_content(request, body, ctx.settings.max_body_bytes)
    key = idempotency_key(request)
    dry_run = dry_run_requested(request)
    now = ctx.now()
    # Parsing and validating a large body takes CPU time: off the event loop,
    # so that other requests (and health probes) are not held up meanwhile.
    records, translation = await run_in_threadpool(translate_body, body, now)
    result: dict[str, Any] = {}

    def respond(outcome: RecordsOutcome) -> StoredResponse:
        result.update(upload_result(records, translation, outcome.rejected))
        return StoredResponse(status_code=200, body=dump_json(result))

    if not translation.commands:
        # Nothing valid: nothing to store, look up or remember.
        result.update(upload_result(records, translation))
        stored = StoredResponse(status_code=200, body=dump_json(result))
    else:
        idempotency = (
            IdempotencyRequest.for_request(key, PATH, body, ctx.settings.idempotency_ttl_seconds)
            if key and not dry_run
            else None
        )
        stored = await ctx.ingest_records(
            account,
            translation.commands,
            now=now,
            respond=respond,
            idempotency=idempotency,
            dry_run=dry_run,
            event_limits=EVENT_TYPE_LIMITS,
        )
    if not stored.replayed and not dry_run:
        ctx.metrics.count_events(DIALECT, "accepted", result["processed"])
        ctx.metrics.count_events(DIALECT, "rejected", len(result["unprocessed"]))
        await ctx.remember_rejection(
            request,
            status_code=200,
            rejected_records=len(result["unprocessed"]),
            errors=[RejectionError(e.index, e.field, e.message) for e in translation.errors]
            or [RejectionError(None, "d", e["error"]) for e in result["unprocessed"]],
        )
    response = send_stored(stored)
    if dry_run:
        response.headers["X-Eventyard-Dry-Run"] = "true"
    return response


def translate_body(body: bytes, now: datetime) -> tuple[list[Any], Translation]:
    """The records of the body and their translation; 400 when the body is not a batch."""
    payload = parse_json_body(body)
    records, problem = records_of(payload.value)
    if problem:
        raise EventyardError("bad_request", problem, 400)
    return records, translate_records(records, now=now, check_unstorable=payload.suspicious)


def dry_run_requested(request: Request) -> bool:
    """``?dryRun=1`` ("add the parameter dryRun=1 to the URL"); also ``true``, ``0``, ``false``."""
    raw = request.query_params.get("dryRun")
    if raw is None:
        return False
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise EventyardError("bad_request", f"dryRun must be 1 or 0, got {raw!r}", 400)


def dump_json(body: dict[str, Any]) -> bytes:
    """``body`` as JSON, echoing every unprocessed record as sent where JSON allows.

    Integers beyond 64 bits are written by the standard codec. A record
    nested too deeply to be written back at all is replaced by a note saying
    so (its entry still has its code and error).
    """
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        pass
    for entry in body.get("unprocessed", []):
        try:
            json.dumps(entry["record"])
        except RecursionError:
            entry["record"] = "(not echoed: nested more than 254 levels deep)"
    return json.dumps(body, separators=(",", ":")).encode()
