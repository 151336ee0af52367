"""Amplitude's error bodies: JSON carrying the status again in ``code``.

HTTP V2 and Batch ("All bodies are JSON and carry the HTTP status again in
``code``"): ``{"code": 400, "error": "Request missing required field",
"missing_field": "api_key"}``, ``{"code": 413, "error": "Payload too
large"}``, the 429 with ``eps_threshold`` and the throttled devices, users
and event indexes. The official Python SDK reads the status from the
body's ``code``, not from the status line, so every answer on these paths,
eventyard's own refusals included (401-like, 404, 405, 408, 503), is such a
body. The Identify API answers in plain text (``success``,
``missing_event``): an :class:`AmplitudeError` with ``plain`` set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Response

from eventyard.core.errors import EventyardError
from eventyard.http import json_response

#: The ``error`` strings the HTTP V2 and Batch pages list, by eventyard's error code.
MISSING_BODY = "Missing request body"
INVALID_JSON = "Invalid JSON request body"
MISSING_FIELD = "Request missing required field"
INVALID_FIELDS = "Invalid field values on some events"
INVALID_PATH = "Invalid request path"
TOO_LARGE = "Payload too large"
THROTTLED = "Too many requests for some devices and users"
#: The SDK: ``if res.error.startswith("Invalid API key:")`` it drops the batch.
INVALID_API_KEY = "Invalid API key: "

_ERRORS_BY_STATUS = {
    404: INVALID_PATH,
    405: INVALID_PATH,
    413: TOO_LARGE,
}


@dataclass(eq=False)
class AmplitudeError(EventyardError):
    """A refusal with Amplitude's extra keys (``missing_field``, ``events_with_*``)."""

    extra: dict[str, Any] = field(default_factory=dict)
    #: The Identify API's plain-text answer, sent instead of JSON.
    plain: str | None = None


def amplitude_error(
    error: str, status: int = 400, *, code: str = "bad_request", **extra: Any
) -> AmplitudeError:
    return AmplitudeError(code, error, status, extra=extra)


def plain_error(text: str, status: int = 400, *, code: str = "bad_request") -> AmplitudeError:
    """An Identify API refusal: ``text`` as the whole body."""
    return AmplitudeError(code, text, status, plain=text)


def error_body(error: str, status: int, **extra: Any) -> dict[str, Any]:
    return {"code": status, "error": error, **extra}


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code", "error"],
    "properties": {
        "code": {"type": "integer", "description": "The HTTP status again"},
        "error": {"type": "string"},
        "missing_field": {"type": "string"},
        "events_with_invalid_fields": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "integer"}},
        },
        "events_with_missing_fields": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "integer"}},
        },
        "events_with_invalid_id_lengths": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "integer"}},
        },
        "eps_threshold": {"type": "integer"},
        "throttled_devices": {"type": "object"},
        "throttled_users": {"type": "object"},
        "throttled_events": {"type": "array", "items": {"type": "integer"}},
        "message": {"type": "string", "description": "eventyard's own words, where they add"},
    },
}


def render_error(exc: EventyardError) -> Response:
    headers = dict(exc.headers)  # Retry-After of a 429/503, Connection: close of a 413
    if isinstance(exc, AmplitudeError):
        if exc.plain is not None:
            return Response(exc.plain, exc.status, headers, media_type="text/plain")
        return json_response(error_body(exc.message, exc.status, **exc.extra), exc.status, headers)
    if exc.status == 429:
        # eventyard's per-API-key request limit, taken before the events are
        # translated: no event is named, so the SDK sends them all again.
        body = error_body(
            THROTTLED,
            429,
            throttled_devices={},
            throttled_users={},
            throttled_events=[],
            message=exc.message,
        )
        return json_response(body, 429, headers)
    error = _ERRORS_BY_STATUS.get(exc.status, exc.message)
    extra: dict[str, Any] = {} if error == exc.message else {"message": exc.message}
    if exc.errors:
        extra["errors"] = [
            {"index": e.index, "field": e.field, "message": e.reason} for e in exc.errors
        ]
    return json_response(error_body(error, exc.status, **extra), exc.status, headers)
