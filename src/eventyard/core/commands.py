"""Canonical commands as JSON, so that queued work can be stored and run later.

A batch queued for a worker (Ortto ``"async": true``, backdated activities)
is kept as these documents in the job's payload; the worker turns them back
into the very records the request would have stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from eventyard.core.identifiers import Identifier
from eventyard.core.model import (
    ContactHint,
    GroupMembership,
    MergeStrategy,
    NewActivity,
    ProfileUpdate,
)

Record = NewActivity | ProfileUpdate | GroupMembership


def _identifiers_json(identifiers: Sequence[Identifier]) -> list[list[str]]:
    return [[i.kind, i.value] for i in identifiers]


def _identifiers_of(raw: list[list[str]]) -> tuple[Identifier, ...]:
    return tuple(Identifier(kind, value) for kind, value in raw)


def _hint_json(hint: ContactHint | None) -> dict[str, Any] | None:
    if hint is None:
        return None
    fallback = None if hint.fallback is None else [hint.fallback.kind, hint.fallback.value]
    return {"contact_id": hint.contact_id, "fallback": fallback}


def _hint_of(raw: dict[str, Any] | None) -> ContactHint | None:
    if raw is None:
        return None
    fallback = raw.get("fallback")
    return ContactHint(
        contact_id=raw["contact_id"],
        fallback=None if fallback is None else Identifier(fallback[0], fallback[1]),
    )


def record_to_json(record: Record) -> dict[str, Any]:
    """One record as a JSON-ready document (timestamps in ISO 8601 with offset)."""
    common = {
        "identifiers": _identifiers_json(record.identifiers),
        "dialect": record.dialect,
        "contact_hint": _hint_json(record.contact_hint),
        "message_id": record.message_id,
    }
    if isinstance(record, ProfileUpdate):
        return {
            "type": "profile",
            **common,
            "attributes": record.attributes,
            "strategy": record.strategy,
            "alias_of": record.alias_of,
        }
    if isinstance(record, GroupMembership):
        return {"type": "group", **common, "group_id": record.group_id, "traits": record.traits}
    return {
        "type": "activity",
        **common,
        "name": record.name,
        "occurred_at": record.occurred_at.isoformat(),
        "source": record.source,
        "properties": record.properties,
        "asset_id": record.asset_id,
        "dedup_key": record.dedup_key,
        "location": record.location,
        "value_milli": record.value_milli,
        "context": record.context,
    }


def record_from_json(doc: dict[str, Any]) -> Record:
    """The record :func:`record_to_json` wrote."""
    identifiers = _identifiers_of(doc["identifiers"])
    hint = _hint_of(doc.get("contact_hint"))
    if doc["type"] == "profile":
        return ProfileUpdate(
            identifiers=identifiers,
            attributes=doc["attributes"],
            dialect=doc["dialect"],
            contact_hint=hint,
            strategy=cast(MergeStrategy, doc.get("strategy", "overwrite")),
            message_id=doc.get("message_id"),
            alias_of=doc.get("alias_of"),
        )
    if doc["type"] == "group":
        return GroupMembership(
            identifiers=identifiers,
            group_id=doc["group_id"],
            traits=doc["traits"],
            dialect=doc["dialect"],
            contact_hint=hint,
            message_id=doc.get("message_id"),
        )
    return NewActivity(
        identifiers=identifiers,
        name=doc["name"],
        occurred_at=datetime.fromisoformat(doc["occurred_at"]),
        source=doc["source"],
        dialect=doc["dialect"],
        properties=doc["properties"],
        asset_id=doc.get("asset_id"),
        dedup_key=doc.get("dedup_key"),
        contact_hint=hint,
        location=doc.get("location"),
        value_milli=doc.get("value_milli"),
        context=doc.get("context"),
        message_id=doc.get("message_id"),
    )
