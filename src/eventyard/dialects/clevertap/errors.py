"""CleverTap's error body: ``{"status": "fail", "error": "<message>", "code": <status>}``.

Every request-level error on CleverTap paths (401, 400 for a body that is not
``{"d": [...]}``, 404, 405, 408, 409, 413, 415, 500, 503) uses this shape, so a
client that reads ``status`` and ``error`` works whatever went wrong. Problems
with single records are not errors of the request: they are listed in the
200 response's ``unprocessed`` array (``translate.upload_result``).
"""

from __future__ import annotations

from typing import Any

from fastapi import Response

from eventyard.core.errors import EventyardError
from eventyard.http import json_response

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status", "error", "code"],
    "properties": {
        "status": {"const": "fail"},
        "error": {"type": "string"},
        "code": {"type": "integer"},
    },
}


def render_error(exc: EventyardError) -> Response:
    body = {"status": "fail", "error": exc.message, "code": exc.status}
    return json_response(body, exc.status, exc.headers)
