"""Netcore's error body.

The spec lists status codes and reasons ("400 | Bad Request | Missing
Parameter - Activity Name", "401 | Unauthorized | Invalid API Key") but no
body; we answer ``{"status": "error", "code": <status>, "message": "<reason>
| <detail>", "errors": [{"index", "field", "reason"}]}`` (see
``docs/dialects/netcore.md``).
"""

from __future__ import annotations

from typing import Any

from fastapi import Response

from eventyard.core.errors import EventyardError
from eventyard.errors import FIELD_ERROR_SCHEMA, field_errors_json
from eventyard.http import json_response

REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Time Out",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status", "code", "message"],
    "properties": {
        "status": {"const": "error"},
        "code": {"type": "integer"},
        "message": {"type": "string"},
        "errors": {"type": "array", "items": FIELD_ERROR_SCHEMA},
    },
}


def render_error(exc: EventyardError) -> Response:
    reason = REASONS.get(exc.status, "Error")
    message = reason if exc.message in (reason, "") else f"{reason} | {exc.message}"
    body: dict[str, Any] = {"status": "error", "code": exc.status, "message": message}
    if exc.errors:
        body["errors"] = field_errors_json(exc.errors)
    return json_response(body, exc.status, exc.headers)
