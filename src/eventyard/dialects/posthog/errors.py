"""PostHog's error body: ``{"type": "…", "code": "…", "detail": "…", "attr": …}``.

The capture docs show errors in this shape ("``{"type": "authentication_error",
"code": "invalid_api_key", "detail": "Project API key invalid. …"}``"), and
posthog-python reports ``body["detail"]`` of a failed answer (the raw text
otherwise). ``attr`` names the field at fault (``batch[3].distinct_id``) or
is null; ``type`` follows the status: ``validation_error`` (400, 413),
``authentication_error`` (401), ``throttled_error`` (429), ``server_error``
(5xx) and ``invalid_request`` for any other.
"""

from __future__ import annotations

from typing import Any

from fastapi import Response

from eventyard.core.errors import EventyardError, FieldError
from eventyard.http import json_response

_TYPES = {400: "validation_error", 401: "authentication_error", 413: "validation_error"}
#: The docs' words for a key that opens no project.
INVALID_API_KEY = (
    "Project API key invalid. You can find your project API key in PostHog project settings."
)


def posthog_error(
    detail: str,
    *,
    attr: str | None = None,
    index: int | None = None,
    code: str = "invalid_payload",
    status: int = 400,
) -> EventyardError:
    """An error of the request; ``attr`` (and ``index``) name the record and field at fault."""
    errors = [FieldError(attr, detail, index)] if attr is not None else []
    return EventyardError(code, detail, status, errors=errors)


def unauthorized(detail: str, code: str = "invalid_api_key") -> EventyardError:
    return posthog_error(detail, code=code, status=401)


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "code", "detail", "attr"],
    "properties": {
        "type": {"type": "string"},
        "code": {"type": "string"},
        "detail": {"type": "string"},
        "attr": {"type": ["string", "null"]},
    },
}


def _type(status: int) -> str:
    if status in _TYPES:
        return _TYPES[status]
    if status == 429:
        return "throttled_error"
    return "server_error" if status >= 500 else "invalid_request"


def render_error(exc: EventyardError) -> Response:
    attr = exc.errors[0].field if exc.errors else None
    body = {"type": _type(exc.status), "code": exc.code, "detail": exc.message, "attr": attr}
    # Retry-After of a 503 or 429 is kept: posthog-python waits as long as it says.
    return json_response(body, exc.status, dict(exc.headers))
