"""Amplitude's ingestion: ``POST /2/httpapi``, ``POST /batch`` (shared) and ``POST /identify``."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request, Response

from eventyard.context import AppContext, get_context
from eventyard.core.errors import EventyardError
from eventyard.core.model import RecordsOutcome, StoredResponse
from eventyard.dialects.amplitude.errors import (
    ERROR_SCHEMA,
    INVALID_API_KEY,
    INVALID_FIELDS,
    TOO_LARGE,
    amplitude_error,
    error_body,
    plain_error,
)
from eventyard.dialects.amplitude.throttle import (
    BATCH,
    HTTPAPI,
    Threshold,
    check_throttle,
    limiter_for,
)
from eventyard.dialects.amplitude.translate import (
    BATCH_MAX_BYTES,
    DIALECT,
    HTTPAPI_MAX_BYTES,
    Identification,
    Translation,
    Upload,
    parse_identification,
    parse_upload,
    success_body,
    translate_events,
    translate_identifications,
)
from eventyard.dialects.base import SharedRoute
from eventyard.dialects.pipeline import (
    Arrival,
    Credential,
    IngestEndpoint,
    Report,
    Submission,
    receive,
)
from eventyard.services.ingest_stats import RejectionError

HTTPAPI_PATH = "/2/httpapi"
BATCH_PATH = "/batch"
IDENTIFY_PATH = "/identify"
PATHS = (HTTPAPI_PATH, IDENTIFY_PATH)

router = APIRouter(tags=["Amplitude"])


@dataclass(eq=False)
class Events(Submission):
    """A request's events, answered ``{"code": 200, "events_ingested": …}``."""

    translation: Translation = field(default_factory=Translation)
    events: int = 0
    size: int = 0
    now: datetime | None = None
    refused: dict[int, str] = field(default_factory=dict)

    def respond(self, outcome: RecordsOutcome | None) -> StoredResponse:
        # A group commit may render a request twice: the last rendering counts.
        self.refused = {
            self.translation.positions[r.index]: r.message
            for r in (outcome.rejected if outcome is not None else ())
        }
        if self.refused:
            # Refused by the store (its other events are stored): named like a
            # bad field, so that the SDK drops these and sends the others
            # again, which their insert_id makes no-ops.
            body = error_body(
                INVALID_FIELDS,
                400,
                events_with_invalid_fields={"event": sorted(self.refused)},
                errors=[
                    {"index": index, "field": "event", "message": message}
                    for index, message in sorted(self.refused.items())
                ],
            )
            return StoredResponse(status_code=400, body=orjson.dumps(body))
        assert self.now is not None
        return StoredResponse(status_code=200, body=success_body(self.events, self.size, self.now))

    def report(self) -> Report:
        return Report(
            {"accepted": self.events - len(self.refused), "rejected": len(self.refused)},
            [RejectionError(index, "event", message) for index, message in self.refused.items()],
        )


@dataclass(eq=False)
class Identifications(Submission):
    """``/identify``'s identifications, answered ``success`` in plain text."""

    count: int = 0

    def respond(self, outcome: RecordsOutcome | None) -> StoredResponse:
        rejected = len({r.index for r in outcome.rejected}) if outcome is not None else 0
        if rejected:
            return StoredResponse(400, b"invalid_event", media_type="text/plain")
        return StoredResponse(200, b"success", media_type="text/plain")

    def report(self) -> Report:
        return Report({"accepted": self.count})


# --- credentials ---------------------------------------------------------


def read_credential(request: Request) -> Credential | None:
    """The API key travels in the body ("api_key", or the form field of /identify)."""
    return None


def upload_credential(parsed: Upload, request: Request, header: Credential | None) -> Credential:
    return Credential(DIALECT, parsed.api_key)


def identification_credential(
    parsed: Identification, request: Request, header: Credential | None
) -> Credential:
    return Credential(DIALECT, parsed.api_key)


def invalid_api_key() -> EventyardError:
    # The SDK: an error starting "Invalid API key:" drops the batch for good.
    # The key is not echoed back.
    return amplitude_error(
        INVALID_API_KEY + "no project of this server has this key", code="unauthorized"
    )


def invalid_identify_key() -> EventyardError:
    return plain_error("invalid_api_key", code="unauthorized")


def too_large(limit: int, exc: EventyardError) -> EventyardError:
    """413 ``{"code": 413, "error": "Payload too large"}``: the SDK halves its batches."""
    refusal = amplitude_error(
        TOO_LARGE, 413, code="payload_too_large", message=f"the body is larger than {limit} bytes"
    )
    refusal.headers.update(exc.headers)  # Connection: close, so the rest is never read
    return refusal


# --- translation ---------------------------------------------------------


def events_translator(threshold: Threshold) -> Callable[[Upload, Arrival], Events]:
    def translate(upload: Upload, arrival: Arrival) -> Events:
        translation, problems = translate_events(upload, now=arrival.now)
        if problems:
            raise problems.refusal(len(upload.events))
        limiter = limiter_for(arrival.request, threshold)
        if limiter is not None:
            throttled = check_throttle(limiter, threshold, arrival.account.id, translation.ids)
            if throttled is not None:
                raise throttled
        return Events(
            translation.records,
            groups=translation.positions,
            translation=translation,
            events=len(upload.events),
            size=upload.size,
            now=arrival.now,
        )

    return translate


def translate_identify(parsed: Identification, arrival: Arrival) -> Identifications:
    translation, problems = translate_identifications(parsed)
    if problems:
        first = problems.errors[0]
        error = plain_error(
            f"invalid_event: identification[{first.index}].{first.field}: {first.message}",
            code="invalid_identification",
        )
        error.errors = problems.refusal(len(parsed.identifications)).errors
        error.records = len(parsed.identifications)
        raise error
    return Identifications(
        translation.records,
        groups=translation.positions,
        count=len(parsed.identifications),
    )


def events_endpoint(threshold: Threshold, max_bytes: int) -> IngestEndpoint[Upload]:
    return IngestEndpoint(
        dialect=DIALECT,
        read_credential=read_credential,
        invalid_credential=invalid_api_key,
        parse=parse_upload,
        translate=events_translator(threshold),
        max_body_bytes=max_bytes,
        body_credential=upload_credential,
        too_large=too_large,
    )


HTTPAPI_ENDPOINT = events_endpoint(HTTPAPI, HTTPAPI_MAX_BYTES)
BATCH_ENDPOINT = events_endpoint(BATCH, BATCH_MAX_BYTES)
IDENTIFY_ENDPOINT: IngestEndpoint[Identification] = IngestEndpoint(
    dialect=DIALECT,
    read_credential=read_credential,
    invalid_credential=invalid_identify_key,
    parse=parse_identification,
    translate=translate_identify,
    max_body_bytes=HTTPAPI_MAX_BYTES,
    body_credential=identification_credential,
)


# --- the shared /batch -----------------------------------------------------

_OBJECT_START = re.compile(rb"\A\s*\{")
_EVENTS_KEY = re.compile(rb'"events"\s*:')
_BATCH_KEY = re.compile(rb'"batch"\s*:')


def claims_batch(request: Request, body: bytes) -> bool:
    """Whether a ``POST /batch`` body is Amplitude's: an object with ``events``, no ``batch``.

    PostHog's batch is ``{"api_key", "batch": [...]}`` (or not JSON at all
    when compressed); both carry ``api_key``, so the array's key decides. A
    glance first: no ``"events":`` anywhere is not Amplitude's, and
    ``"events":`` without any ``"batch":`` is. Only a body holding both
    (one of them inside a property) is parsed to read its top-level keys.
    """
    if not _OBJECT_START.match(body) or _EVENTS_KEY.search(body) is None:
        return False
    if _BATCH_KEY.search(body) is None:
        return True
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(value, dict) and "events" in value and "batch" not in value


_BODY = (
    'A JSON body `{"api_key": "<amplitude_api_key>", "events": [...], "options": '
    '{"min_id_length": 5}}`: at most 2000 events. '
)
_ANSWERS = (
    'Answers 200 `{"code": 200, "events_ingested": N, "payload_size_bytes": B, '
    '"server_upload_time": ms}` once stored. 400 `{"code": 400, "error": "Invalid field '
    'values on some events", "events_with_invalid_fields": {field: [indexes]}, '
    '"events_with_missing_fields": {...}}` stores nothing (the SDK sends the other events '
    "again); 413 beyond the size or event limits; 429 with `throttled_devices`, "
    "`throttled_users` and `throttled_events` for a device or user beyond its event rate."
)

BATCH_ROUTE = SharedRoute(
    path=BATCH_PATH,
    claims=claims_batch,
    endpoint=BATCH_ENDPOINT,
    summary="Upload a batch of events (Amplitude Batch Event Upload)",
    description=(
        "Amplitude's Batch Event Upload API, taken when the body is an object with an "
        "`events` array and no `batch` array. " + _BODY + "At most 20 MB; 1000 events per "
        "second per device or user. " + _ANSWERS
    ),
)


@router.post(
    HTTPAPI_PATH,
    summary="Upload events (Amplitude HTTP V2)",
    description=_BODY + "At most 1 MB; 30 events per second per device or user. " + _ANSWERS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
    responses={200: {"description": "Stored"}},
)
async def httpapi(request: Request, ctx: AppContext = Depends(get_context)) -> Response:
    return await receive(request, ctx, HTTPAPI_ENDPOINT)


_IDENTIFY_FORM: dict[str, Any] = {
    "type": "object",
    "required": ["api_key", "identification"],
    "properties": {
        "api_key": {"type": "string"},
        "identification": {
            "type": "string",
            "description": "One JSON identification object or a JSON array of them",
        },
    },
}


@router.post(
    IDENTIFY_PATH,
    summary="Set user properties without an event (Amplitude Identify API)",
    description=(
        "Form fields `api_key` and `identification` (one JSON object or an array): "
        "`user_id`/`device_id`, `user_properties` with the operations $set, $setOnce, $add, "
        "$append, $prepend, $preInsert, $postInsert, $remove and $unset, `groups`. Answers "
        "`success` (text/plain); 400 `missing_event`, `invalid_api_key` or `invalid_event: …`."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": _IDENTIFY_FORM}},
        }
    },
    responses={
        200: {"description": "`success`", "content": {"text/plain": {}}},
        # The Identify API's refusals are its plain words; a body that cannot be read
        # at all (bad gzip, too large before parsing) gets the JSON error of the rest.
        **{
            status: {
                "description": description,
                "content": {
                    "text/plain": {},
                    "application/json": {"schema": ERROR_SCHEMA},
                },
            }
            for status, description in (
                (400, "`missing_event`, `invalid_api_key` or `invalid_event: …`"),
                (413, "`too many identifications`, or a body over the limit"),
            )
        },
    },
)
async def identify(request: Request, ctx: AppContext = Depends(get_context)) -> Response:
    return await receive(request, ctx, IDENTIFY_ENDPOINT)


__all__ = ["BATCH_ROUTE", "PATHS", "router"]
