"""Segment's error body: ``{"success": false, "code": "…", "message": "…"}``.

Segment documents only the status codes ("Segment returns a 200 response
for all API requests except errors caused by large payloads and JSON errors
(which return 400 responses.)"). Its own Python SDK reads ``code`` and
``message`` from a failed response (``APIError(res.status_code,
payload["code"], payload["message"])``), so every error on Segment paths has
both, next to ``success: false``; ``errors`` names the message index and the
field when the problem is one message's.
"""

from __future__ import annotations

from typing import Any

from fastapi import Response

from eventyard.core.errors import EventyardError, FieldError
from eventyard.http import json_response


def segment_error(
    message: str,
    *,
    field: str | None = None,
    index: int | None = None,
    code: str = "bad_request",
    status: int = 400,
) -> EventyardError:
    """A request-level error; with ``field`` it names the message and field at fault."""
    errors = [FieldError(field, message, index)] if field is not None else []
    return EventyardError(code, message, status, errors=errors)


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["success", "code", "message"],
    "properties": {
        "success": {"const": False},
        "code": {"type": "string"},
        "message": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": ["integer", "null"]},
                    "field": {"type": ["string", "null"]},
                    "message": {"type": "string"},
                },
            },
        },
    },
}


def render_error(exc: EventyardError) -> Response:
    body: dict[str, Any] = {"success": False, "code": exc.code, "message": exc.message}
    if exc.errors:
        body["errors"] = [
            {"index": e.index, "field": e.field, "message": e.reason} for e in exc.errors
        ]
    # Retry-After of a 503 or 429 is kept: the SDKs wait as long as it says.
    headers = dict(exc.headers)
    if exc.status == 401:
        headers.setdefault("WWW-Authenticate", 'Basic realm="eventyard"')
    return json_response(body, exc.status, headers)
