"""Ortto's error body on its paths: ``{"error": "<message>", "code": <status>}``.

The spec lists the statuses (400 bad request or malformed JSON, 401 invalid
or missing API key, 413 over 2 MB, 429 rate limit) but no error body; this
one names the problem in ``error`` and repeats the status in ``code``, and
field problems are listed in ``errors`` with their path. Problems with single
activities are not request errors: they are the ``error`` of that activity's
entry in the ``activities`` answer (``translate.response_body``).
"""

from __future__ import annotations

from typing import Any

from fastapi import Response

from eventyard.core.errors import EventyardError
from eventyard.http import json_response

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "code"],
    "properties": {
        "error": {"type": "string"},
        "code": {"type": "integer"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "error": {"type": "string"}},
            },
        },
    },
}


def render_error(exc: EventyardError) -> Response:
    body: dict[str, Any] = {"error": exc.message, "code": exc.status}
    if exc.errors:
        body["errors"] = [{"path": e.field, "error": e.reason} for e in exc.errors]
    return json_response(body, exc.status, exc.headers)
