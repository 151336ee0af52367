"""The error answers of every operation, added to the OpenAPI document FastAPI builds.

FastAPI documents a route's success answer and a 422 it never sends here
(validation errors are 400 in each dialect's own shape). A client generated
from the document, and the schema fuzzing suite, need the answers eventyard
does send: each error status with the body of the dialect that owns the path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: Every error status an authenticated route may answer, and why.
ERROR_STATUSES: dict[int, str] = {
    400: "The request is malformed or a record in it is invalid; the body names the field.",
    401: "No credentials, or credentials no account holds.",
    404: "Nothing of this account at this path.",
    408: "The request body did not arrive within EVENTYARD_BODY_TIMEOUT_SECONDS.",
    413: "The body is larger than EVENTYARD_MAX_BODY_BYTES (or the dialect's own limit).",
    429: "This key is over its rate limit; Retry-After says when to try again.",
    503: "The database is unavailable or busy; nothing was stored. Retry after Retry-After.",
}
#: Statuses whose answer carries a ``Retry-After`` header.
RETRY_STATUSES = (429, 503)
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "string"},
    }
}


def add_error_answers(
    document: dict[str, Any],
    *,
    error_schema: Callable[[str], dict[str, Any]],
    public: frozenset[tuple[str, str]],
) -> dict[str, Any]:
    """``document`` with every operation's error answers, in place.

    ``error_schema(path)`` is the body schema of the dialect owning ``path``;
    ``public`` operations (method, path) take no credentials and document their
    own answers.
    """
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            if "HTTPValidationError" in str(responses.get("422")):
                del responses["422"]
            statuses = () if (method, path) in public else tuple(ERROR_STATUSES)
            for code, declared in responses.items():
                # An error a route declares (409, Cordial's 422) has the dialect's body.
                if code.isdigit() and int(code) >= 400 and "content" not in declared:
                    declared["content"] = {"application/json": {"schema": error_schema(path)}}
            for status in statuses:
                answer: dict[str, Any] = {
                    "description": ERROR_STATUSES[status],
                    "content": {"application/json": {"schema": error_schema(path)}},
                }
                if status in RETRY_STATUSES:
                    answer["headers"] = _RETRY_AFTER
                responses.setdefault(str(status), answer)
    # FastAPI's own validation-error schemas are referenced from nowhere now.
    schemas = document.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return document
