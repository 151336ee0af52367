"""The request and answer shapes of the Mixpanel endpoints, for the OpenAPI document.

The routes read the body themselves (a form's ``data`` holds JSON text or
base64, a bad record must be refused alone), so these schemas describe the
wire format; ``translate.py`` enforces it.
"""

from __future__ import annotations

from typing import Any

from eventyard.dialects.mixpanel.errors import ERROR_SCHEMA

_TEXT: dict[str, Any] = {"type": "string"}
_OBJECT: dict[str, Any] = {"type": "object"}
_ID = {"type": ["string", "integer"]}

EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["event", "properties"],
    "properties": {
        "event": {"type": "string", "description": "the activity's name"},
        "properties": {
            "type": "object",
            "description": "kept as the activity's properties, but for `token` and `time`",
            "properties": {
                "token": {"type": "string", "description": "the project token (/track)"},
                "distinct_id": {**_ID, "description": "`identity`, or `anonid` for `$device:…`"},
                "$user_id": {**_ID, "description": "identifier kind `identity`"},
                "$device_id": {**_ID, "description": "identifier kind `anonid`"},
                "time": {"type": ["number", "string"], "description": "seconds or milliseconds"},
                "$insert_id": {"type": "string", "description": "the dedup key"},
            },
        },
    },
}
UPDATE: dict[str, Any] = {
    "type": "object",
    "required": ["$token"],
    "properties": {
        "$token": _TEXT,
        "$distinct_id": _ID,
        "$user_id": _ID,
        "$device_id": _ID,
        "$set": _OBJECT,
        "$set_once": _OBJECT,
        "$add": {"type": "object", "additionalProperties": {"type": "number"}},
        "$append": _OBJECT,
        "$union": {"type": "object", "additionalProperties": {"type": "array"}},
        "$remove": _OBJECT,
        "$unset": {"type": "array", "items": _TEXT},
        "$delete": {"description": "any value: clears the profile's attributes"},
    },
}
GROUP_UPDATE: dict[str, Any] = {
    "type": "object",
    "required": ["$token", "$group_key", "$group_id"],
    "properties": {"$token": _TEXT, "$group_key": _TEXT, "$group_id": _ID, "$set": _OBJECT},
}
RECORDS = {"track": EVENT, "import": EVENT, "engage": UPDATE, "groups": GROUP_UPDATE}

VERBOSE: dict[str, Any] = {
    "type": "object",
    "required": ["status", "error"],
    "properties": {
        "status": {"enum": [0, 1], "description": "1 when at least one record was stored"},
        "error": {"type": ["string", "null"], "description": "each refused record, when 0"},
    },
}
BARE: dict[str, Any] = {"type": "string", "enum": ["1", "0"]}
IMPORTED: dict[str, Any] = {
    "type": "object",
    "required": ["code", "num_records_imported", "status"],
    "properties": {
        "code": {"const": 200},
        "num_records_imported": {"type": "integer"},
        "status": {"const": "OK"},
    },
}
IMPORT_FAILED: dict[str, Any] = {
    "type": "object",
    "required": ["code", "error", "status"],
    "properties": {
        **ERROR_SCHEMA["properties"],
        "num_records_imported": {"type": "integer"},
        "failed_records": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["index", "field", "message"],
                "properties": {
                    "index": {"type": "integer"},
                    "insert_id": {"type": ["string", "null"]},
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}


def _parameter(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": _TEXT,
        "description": description,
    }


def openapi_extra(endpoint: str, method: str) -> dict[str, Any]:
    """The request (body or query) and the answers of ``method`` on ``/endpoint``."""
    record = RECORDS[endpoint]
    parameters = [
        _parameter("verbose", '`1`: answer `{"status": 1, "error": null}` rather than `1`'),
        _parameter("ip", "accepted and ignored (nothing is geolocated)"),
    ]
    if method == "GET":
        parameters.insert(0, _parameter("data", "the records, JSON text or base64 of it"))
    if endpoint == "import":
        parameters += [
            _parameter("strict", "`0`: answer 200 whatever was refused (default `1`)"),
            _parameter("project_id", "a service account's project (the account is the project)"),
        ]
    extra: dict[str, Any] = {"parameters": parameters}
    if method == "POST":
        content: dict[str, Any] = {
            "application/json": {
                "schema": {"anyOf": [record, {"type": "array", "items": record, "maxItems": 2000}]}
            },
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "data": {"type": "string", "description": "the records as JSON or base64"},
                        "verbose": _TEXT,
                        "ip": _TEXT,
                    },
                }
            },
        }
        # /import also reads application/x-ndjson (one event a line); the description says
        # so, the document lists only the media types its fuzzing can send.
        extra["requestBody"] = {"required": False, "content": content}
    answers: dict[str, Any] = {"text/plain": {"schema": BARE}}
    if endpoint == "import":
        answers["application/json"] = {"schema": {"anyOf": [IMPORTED, VERBOSE]}}
    else:
        answers["application/json"] = {"schema": VERBOSE}
    extra["responses"] = {"200": {"description": "Stored", "content": answers}}
    if endpoint == "import":
        extra["responses"]["400"] = {
            "description": "Some events failed validation (the others are stored), or the "
            "request could not be read",
            "content": {"application/json": {"schema": IMPORT_FAILED}},
        }
    return extra
