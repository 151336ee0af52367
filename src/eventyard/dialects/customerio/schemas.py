"""The request bodies and path parameters of the Customer.io routes, for the OpenAPI document.

The routes read the body themselves (gzip, empty DELETE bodies, problems
named in Customer.io's words), so these schemas describe the wire format;
``translate.py`` enforces it. They say no more than what is refused: a body
the schema allows may still be refused for a rule a schema cannot state
(one identifier of a merge side, the byte limits), never the other way.
"""

from __future__ import annotations

from typing import Any

from eventyard.dialects.customerio.translate import (
    EVENT_TYPES,
    MAX_ATTRIBUTES,
    MERGE_KEYS,
)

_ID = {"type": ["string", "integer", "null"]}
_IDENTIFIER = {
    "name": "identifier",
    "in": "path",
    "required": True,
    "description": "An id, an e-mail address, or `cio_<contact id>` (percent-encoded).",
    "schema": {"type": "string"},
}
_DEVICE_ID = {
    "name": "device_id",
    "in": "path",
    "required": True,
    "description": "The device's token (percent-encoded).",
    "schema": {"type": "string"},
}

IDENTIFY: dict[str, Any] = {
    "type": "object",
    "description": "The person's attributes as top-level keys.",
    "maxProperties": MAX_ATTRIBUTES,
    "properties": {
        "id": _ID,
        "anonymous_id": _ID,
        "cio_relationships": {"type": ["object", "null"]},
    },
}

EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "pattern": r"\S"},
        "type": {"enum": [*EVENT_TYPES, None]},
        "id": _ID,
        "timestamp": {"type": ["number", "null"], "description": "Unix seconds"},
        "data": {"type": ["object", "null"]},
    },
}

ANONYMOUS_EVENT: dict[str, Any] = {
    **EVENT,
    "properties": {**EVENT["properties"], "anonymous_id": _ID},
}

DEVICE: dict[str, Any] = {
    "type": "object",
    "required": ["device"],
    "properties": {
        "device": {
            "type": "object",
            "required": ["id", "platform"],
            "properties": {
                "id": {"type": ["string", "integer"]},
                "platform": {"enum": ["ios", "android"]},
                "last_used": {"type": ["number", "null"]},
                "attributes": {"type": ["object", "null"]},
            },
        }
    },
}

EMPTY: dict[str, Any] = {"type": "object", "description": "`{}` (or no body at all)."}

_SIDE: dict[str, Any] = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "additionalProperties": False,
    "properties": {key: {"type": ["string", "integer"]} for key in MERGE_KEYS},
}
MERGE: dict[str, Any] = {
    "type": "object",
    "required": ["primary", "secondary"],
    "properties": {"primary": _SIDE, "secondary": _SIDE},
}

ENTITY: dict[str, Any] = {
    "type": "object",
    "required": ["type", "action"],
    "properties": {
        "type": {"enum": ["person", "object", "delivery"]},
        "action": {"type": "string"},
    },
}

BATCH: dict[str, Any] = {
    "type": "object",
    "required": ["batch"],
    "properties": {"batch": {"type": "array", "items": {}}},
}


def body(schema: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": schema}},
        }
    }


def customer_parameters(suffix: str) -> list[dict[str, Any]]:
    """The path parameters of ``/api/v1/customers/{identifier}<suffix>``."""
    return [_IDENTIFIER, _DEVICE_ID] if "{device_id}" in suffix else [_IDENTIFIER]
