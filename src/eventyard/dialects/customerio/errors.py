"""Customer.io's error bodies: v1's ``meta`` and v2's ``errors`` list.

v1 (the OpenAPI schema of every v1 operation's 400):
``{"meta": {"errors": ["<message>", …]}}``. The invalid-requests page shows
a singular ``{"meta": {"error": "…"}}`` for some messages; eventyard emits
the plural form for every v1 error (401, 404, 405, 413 … included), the
form the schema documents.

v2: ``{"errors": [{"reason": "…", "field": "…", "message": "…"}]}``, with
``batch_index`` naming the operation of a ``/api/v2/batch`` request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Response

from eventyard.core.errors import EventyardError, FieldError
from eventyard.http import json_response

V1_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["meta"],
    "properties": {
        "meta": {
            "type": "object",
            "required": ["errors"],
            "properties": {"errors": {"type": "array", "items": {"type": "string"}}},
        }
    },
}

V2_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["errors"],
    "properties": {
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["reason", "message"],
                "properties": {
                    "batch_index": {"type": "integer"},
                    "reason": {"type": "string"},
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        }
    },
}


def invalid(problems: Sequence[tuple[str, str]], *, index: int | None = None) -> EventyardError:
    """The 400 of an operation with ``(field, message)`` problems."""
    errors = [FieldError(field, message, index) for field, message in problems]
    return EventyardError("invalid", errors[0].reason, 400, errors=errors)


def unauthorized(message: str) -> EventyardError:
    return EventyardError(
        "unauthorized", message, 401, headers={"WWW-Authenticate": 'Basic realm="Customer.io"'}
    )


def render_v1(exc: EventyardError) -> Response:
    messages = [e.reason for e in exc.errors] or [exc.message]
    return json_response({"meta": {"errors": messages}}, exc.status, exc.headers)


def v2_items(exc: EventyardError) -> list[dict[str, Any]]:
    if not exc.errors:
        return [{"reason": exc.code, "message": exc.message}]
    return [v2_item(e, exc.code) for e in exc.errors]


def v2_item(error: FieldError, reason: str = "invalid") -> dict[str, Any]:
    item: dict[str, Any] = {}
    if error.index is not None:
        item["batch_index"] = error.index
    item.update(reason=reason, field=error.field, message=error.reason)
    return item


def render_v2(exc: EventyardError) -> Response:
    return json_response({"errors": v2_items(exc)}, exc.status, exc.headers)
