"""``POST /1/upload``: CleverTap's Upload Events API (events and profiles)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request, Response

from eventyard.context import AppContext, get_context
from eventyard.core.errors import EventyardError
from eventyard.core.model import RecordsOutcome, StoredResponse
from eventyard.core.payload import JsonBody
from eventyard.dialects.clevertap.translate import (
    DIALECT,
    EVENT_TYPE_LIMITS,
    MAX_RECORDS,
    Translation,
    records_of,
    translate_records,
    upload_result,
)
from eventyard.dialects.pipeline import (
    Arrival,
    Credential,
    IngestEndpoint,
    Report,
    Submission,
    receive,
)
from eventyard.http import parse_json_body
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
    return await receive(request, ctx, ENDPOINT)


@dataclass(eq=False)
class Upload(Submission):
    """A batch of records: answered with every record's result, stored or not."""

    sent: Sequence[Any] = ()
    translation: Translation = field(default_factory=Translation)
    result: dict[str, Any] = field(default_factory=dict)

    def respond(self, outcome: RecordsOutcome | None) -> StoredResponse:
        rejected = outcome.rejected if outcome is not None else ()
        self.result = upload_result(self.sent, self.translation, rejected)
        return StoredResponse(status_code=200, body=dump_json(self.result))

    def report(self) -> Report:
        unprocessed = self.result["unprocessed"]
        errors = [RejectionError(e.index, e.field, e.message) for e in self.translation.errors]
        return Report(
            {"accepted": self.result["processed"], "rejected": len(unprocessed)},
            errors or [RejectionError(None, "d", e["error"]) for e in unprocessed],
        )

    def headers(self, stored: StoredResponse) -> dict[str, str]:
        return {"X-Eventyard-Dry-Run": "true"} if self.dry_run else {}


def read_credential(request: Request) -> Credential:
    account_id = request.headers.get("x-clevertap-account-id")
    passcode = request.headers.get("x-clevertap-passcode")
    if not account_id or not passcode:
        raise EventyardError(
            "unauthorized", "Missing X-CleverTap-Account-Id or X-CleverTap-Passcode header", 401
        )
    return Credential(DIALECT, passcode, account_id)


def invalid_credential() -> EventyardError:
    return EventyardError("unauthorized", "Invalid Account Id or Passcode", 401)


def translate_body(payload: JsonBody, arrival: Arrival) -> Upload:
    """The records of the body and their translation; 400 when the body is not a batch."""
    dry_run = dry_run_requested(arrival.request)
    records, problem = records_of(payload.value)
    if problem:
        raise EventyardError("bad_request", problem, 400)
    translation = translate_records(records, now=arrival.now, check_unstorable=payload.suspicious)
    return Upload(
        translation.commands,
        dry_run=dry_run,
        event_limits=EVENT_TYPE_LIMITS,
        sent=records,
        translation=translation,
    )


ENDPOINT = IngestEndpoint(
    dialect=DIALECT,
    read_credential=read_credential,
    invalid_credential=invalid_credential,
    parse=parse_json_body,
    translate=translate_body,
)


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
