"""``POST /v1/activity/upload``: Netcore's Add Activity API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import APIRouter, Depends, Request, Response

from eventyard.context import AppContext, get_context
from eventyard.core.errors import EventyardError
from eventyard.core.model import RecordsOutcome, StoredResponse
from eventyard.core.payload import JsonBody
from eventyard.dialects.netcore.translate import DIALECT, events_of, translate_events
from eventyard.dialects.pipeline import (
    Arrival,
    Credential,
    IngestEndpoint,
    Report,
    Submission,
    receive,
)
from eventyard.http import parse_json_body, stored_json

PATH = "/v1/activity/upload"
SUCCESS = stored_json({"status": "success"})
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
    return await receive(request, ctx, ENDPOINT)


@dataclass(eq=False)
class Upload(Submission):
    """A batch of events: answered ``{"status": "success"}`` once stored."""

    skipped: Sequence[int] = ()

    def respond(self, outcome: RecordsOutcome | None) -> StoredResponse:
        return SUCCESS

    def report(self) -> Report:
        return Report({"accepted": len(self.records), "skipped": len(self.skipped)})

    def headers(self, stored: StoredResponse) -> dict[str, str]:
        # The body must stay {"status": "success"}; say what was dropped here.
        if not self.skipped:
            return {}
        return {"X-Eventyard-Skipped-Events": ",".join(map(str, self.skipped))}


def read_credential(request: Request) -> Credential:
    return Credential(DIALECT, request.headers.get("api-key"))


def invalid_credential() -> EventyardError:
    return EventyardError("unauthorized", "Invalid API Key", 401)


def translate_body(payload: JsonBody, arrival: Arrival) -> Upload:
    """The request's canonical activities, or the 400 listing every invalid event."""
    events, request_errors = events_of(payload.value)
    if request_errors:
        raise EventyardError("bad_request", request_errors[0].reason, 400, errors=request_errors)
    translation, errors = translate_events(events, check_unstorable=payload.suspicious)
    if errors:
        invalid = len({e.index for e in errors})
        message = (
            errors[0].reason
            if len(errors) == 1
            else f"{invalid} of {len(events)} events are invalid; nothing was stored"
        )
        raise EventyardError("invalid_events", message, 400, errors=errors, records=len(events))
    return Upload(translation.activities, skipped=translation.skipped)


ENDPOINT = IngestEndpoint(
    dialect=DIALECT,
    read_credential=read_credential,
    invalid_credential=invalid_credential,
    parse=parse_json_body,
    translate=translate_body,
)
