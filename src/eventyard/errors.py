"""The canonical error body of eventyard's own API, and its handlers.

Dialects render ``EventyardError`` in their vendor's shape (``dialects/*/errors.py``);
everything else gets ``{"error": {"code", "message", "errors": [...]}}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import Response

from eventyard.core.errors import EventyardError, FieldError
from eventyard.http import json_response

#: The JSON schema of :func:`field_errors_json`'s items.
FIELD_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["field", "reason"],
    "properties": {
        "index": {"type": "integer", "description": "The record's position in the batch."},
        "field": {"type": "string"},
        "reason": {"type": "string"},
    },
}
#: The JSON schema of :func:`render_error`'s body, for the OpenAPI document.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "errors": {"type": "array", "items": FIELD_ERROR_SCHEMA},
            },
        }
    },
}


def field_errors_json(errors: list[FieldError]) -> list[dict[str, Any]]:
    return [
        {"index": e.index, "field": e.field, "reason": e.reason}
        if e.index is not None
        else {"field": e.field, "reason": e.reason}
        for e in errors
    ]


def render_error(exc: EventyardError) -> Response:
    body: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.errors:
        body["errors"] = field_errors_json(exc.errors)
    return json_response({"error": body}, exc.status, exc.headers)
