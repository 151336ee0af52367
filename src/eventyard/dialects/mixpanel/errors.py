"""Mixpanel's error body: ``{"code": 401, "error": "…", "status": "Unauthorized"}``.

The ingestion OpenAPI documents this shape for ``/import`` ("401:
``{"code": 401, "error": "Invalid credentials", "status": "Unauthorized"}``",
413, 429) and ``{"error": …, "status": …}`` (``ErrorResponse``) for
``/track``, ``/engage`` and ``/groups``. One renderer serves all four paths:
the routes cannot be told apart once an error is raised, and both SDKs read
only ``error`` and a ``status`` other than ``1`` (the Python SDK:
``if response_dict["status"] != 1: raise MixpanelException(… ["error"])``).
A record-level problem is never an exception: it is answered in the body of
a 200 (``/track``) or in ``failed_records`` (``/import``).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import Response

from eventyard.core.errors import EventyardError, FieldError
from eventyard.http import json_response

#: The 429 body of the ingestion OpenAPI, word for word.
RATE_LIMITED = "Project exceeded rate limits. Please retry the request with exponential backoff."


def mixpanel_error(
    message: str, *, status: int = 400, code: str = "bad_request", field: str | None = None
) -> EventyardError:
    """A request-level error (``field`` names the part of the request at fault)."""
    errors = [FieldError(field, message)] if field is not None else []
    return EventyardError(code, message, status, errors=errors)


def unauthorized(message: str = "Invalid credentials") -> EventyardError:
    return mixpanel_error(message, status=401, code="unauthorized")


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code", "error", "status"],
    "properties": {
        "code": {"type": "integer", "description": "the HTTP status"},
        "error": {"type": "string"},
        "status": {"type": "string", "description": "the status's reason phrase"},
    },
}


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def render_error(exc: EventyardError) -> Response:
    message = RATE_LIMITED if exc.status == 429 else exc.message
    body: dict[str, Any] = {"code": exc.status, "error": message, "status": reason(exc.status)}
    headers = dict(exc.headers)
    if exc.status == 401:
        headers.setdefault("WWW-Authenticate", 'Basic realm="eventyard"')
    return json_response(body, exc.status, headers)
