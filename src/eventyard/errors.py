"""The canonical error body of eventyard's own API, and its handlers.

Dialects render ``EventyardError`` in their vendor's shape (``dialects/*/errors.py``);
everything else gets ``{"error": {"code", "message", "errors": [...]}}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import Response

from eventyard.core.errors import EventyardError, FieldError
from eventyard.http import json_response


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
