"""``POST /v1/activities/create``: Ortto's custom activity events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request, Response

from eventyard.context import AppContext, get_context
from eventyard.core.errors import EventyardError
from eventyard.core.model import RecordsOutcome, StoredResponse
from eventyard.core.payload import JsonBody
from eventyard.dialects.ortto.translate import (
    DIALECT,
    MAX_ACTIVITIES,
    MAX_BODY_BYTES,
    RULES,
    STRATEGIES,
    Flattened,
    Translation,
    activities_of,
    flatten,
    response_body,
    translate,
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
from eventyard.services.ingest import DeferredRecords
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
    return await receive(request, ctx, ENDPOINT)


@dataclass(eq=False)
class Create(Submission):
    """A request's activities: those stored now, those queued, and the answer per activity."""

    translation: Translation = field(default_factory=lambda: Translation(run_async=False))
    stored_now: Flattened = field(default_factory=lambda: Flattened([], [], []))
    entries: list[dict[str, Any]] = field(default_factory=list)
    job_id: str | None = None

    def respond(self, outcome: RecordsOutcome | None) -> StoredResponse:
        status, content = response_body(self.translation, self.stored_now, outcome)
        self.entries = content["activities"]
        if outcome is not None and outcome.job_id is not None:
            self.job_id = outcome.job_id
        return StoredResponse(status_code=status, body=orjson.dumps(content))

    def report(self) -> Report:
        refused = [(i, e) for i, e in enumerate(self.entries) if "error" in e]
        return Report(
            {"accepted": len(self.entries) - len(refused), "rejected": len(refused)},
            [RejectionError(i, f"activities[{i}]", e["error"]) for i, e in refused],
        )

    def headers(self, stored: StoredResponse) -> dict[str, str]:
        if self.job_id is None or stored.replayed:
            return {}
        # Where the queued activities can be followed: GET /api/v1/jobs/{id}.
        return {"X-Eventyard-Job-Id": self.job_id}


def read_credential(request: Request) -> Credential:
    api_key = request.headers.get("x-api-key")
    if not api_key:
        raise EventyardError("unauthorized", "Missing X-Api-Key header", 401)
    return Credential(DIALECT, api_key)


def invalid_credential() -> EventyardError:
    return EventyardError("unauthorized", "Invalid API key", 401)


def translate_body(payload: JsonBody, arrival: Arrival) -> Create:
    """The activities of the body, translated; 400 when the body is not a request."""
    try:
        activities, run_async = activities_of(payload.value)
    except ValueError as exc:
        raise EventyardError("bad_request", str(exc), 400) from exc
    account = arrival.account
    translation = translate(
        activities,
        run_async=run_async,
        now=arrival.now,
        default_strategy=STRATEGIES[account.ortto_merge_strategy],
        retention=timedelta(days=account.retention_days),
        check_unstorable=payload.suspicious,
    )
    stored_now = flatten(translation.accepted(queued=False))
    queued = flatten(translation.accepted(queued=True))
    return Create(
        stored_now.records,
        rules=RULES,
        groups=stored_now.groups,
        deferred=DeferredRecords(queued.records, queued.groups, queued.labels)
        if queued.records
        else None,
        translation=translation,
        stored_now=stored_now,
    )


ENDPOINT = IngestEndpoint(
    dialect=DIALECT,
    read_credential=read_credential,
    invalid_credential=invalid_credential,
    parse=parse_json_body,
    translate=translate_body,
    max_body_bytes=MAX_BODY_BYTES,
    wakes_worker=True,
)
