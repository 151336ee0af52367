"""Cordial's error body: ``{"error": true, "errorKey": "…", "message": "…"}``.

The spec: "The Cordial API will return an error object with an errorKey and
message if there is a problem with an API call." Contact-activity errors use
the spec's keys (``CONTACT_ACTIVITIES_VALIDATION_ERROR`` …); eventyard's own
errors on Cordial paths (401, 413, 429, 404 …) use their code in upper case
(``UNAUTHORIZED``, ``PAYLOAD_TOO_LARGE`` …). The message names the field.
"""

from __future__ import annotations

from typing import Any

from fastapi import Response

from eventyard.core.errors import EventyardError, FieldError
from eventyard.http import json_response

INVALID_PAYLOAD = "CONTACT_ACTIVITIES_INVALID_PAYLOAD"
VALIDATION_ERROR = "CONTACT_ACTIVITIES_VALIDATION_ERROR"
INCORRECT_ACTION_NAME = "CONTACT_ACTIVITIES_INCORRECT_ACTION_NAME"
TOO_MANY_PARAMS = "CONTACT_ACTIVITIES_TOO_MANY_PARAMS"

#: The status of each contact-activities error (docs/dialects/cordial.md).
STATUS = {
    INVALID_PAYLOAD: 400,
    TOO_MANY_PARAMS: 400,
    VALIDATION_ERROR: 422,
    INCORRECT_ACTION_NAME: 422,
}
#: The spec's message of each key; eventyard appends what exactly is wrong.
MESSAGES = {
    INVALID_PAYLOAD: "Invalid payload",
    VALIDATION_ERROR: "Validation error",
    INCORRECT_ACTION_NAME: "Incorrect action name",
    TOO_MANY_PARAMS: "Too many parameters",
}


def cordial_error(key: str, detail: str, field: str | None = None) -> EventyardError:
    """An error with Cordial's key, status and message (``Validation error: ats …``)."""
    errors = [FieldError(field, detail)] if field is not None else []
    return EventyardError(key, f"{MESSAGES[key]}: {detail}", STATUS[key], errors=errors)


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "errorKey", "message"],
    "properties": {
        "error": {"const": True},
        "errorKey": {"type": "string"},
        "message": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}


def render_error(exc: EventyardError) -> Response:
    key = exc.code if exc.code.isupper() else exc.code.upper()
    body: dict[str, Any] = {"error": True, "errorKey": key, "message": exc.message}
    if exc.errors:
        body["errors"] = [{"field": e.field, "message": e.reason} for e in exc.errors]
    headers = dict(exc.headers)
    if exc.status == 401:
        headers.setdefault("WWW-Authenticate", 'Basic realm="eventyard"')
    return json_response(body, exc.status, headers)
