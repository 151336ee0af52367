"""The canonical activity as JSON: the read API's shape, which the webhook destination sends too."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from eventyard.core.identifiers import Identifier
from eventyard.core.money import milli_to_decimal
from eventyard.core.timestamps import format_utc


class StoredActivity(Protocol):
    """What both a read API ``Activity`` and a destination's ``OutgoingActivity`` have."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def received_at(self) -> datetime: ...
    @property
    def source(self) -> str: ...
    @property
    def dialect(self) -> str: ...
    @property
    def asset_id(self) -> str | None: ...
    @property
    def journey_eligible(self) -> bool: ...
    @property
    def properties(self) -> Mapping[str, Any]: ...
    @property
    def location(self) -> Mapping[str, Any] | None: ...
    @property
    def value_milli(self) -> int | None: ...
    @property
    def unsearchable(self) -> Sequence[str]: ...
    @property
    def context(self) -> Mapping[str, Any] | None: ...
    @property
    def resolved_by(self) -> Identifier | None: ...


def activity_json(activity: StoredActivity) -> dict[str, Any]:
    """The activity as ``GET /api/v1/contacts/{id}/activities`` lists it."""
    body: dict[str, Any] = {
        "id": activity.id,
        "name": activity.name,
        "occurred_at": format_utc(activity.occurred_at),
        "received_at": format_utc(activity.received_at),
        "source": activity.source,
        "dialect": activity.dialect,
        "asset_id": activity.asset_id,
        "journey_eligible": activity.journey_eligible,
        "properties": activity.properties,
        "location": activity.location,
        # Raw thousandths as sent (Ortto int::v) and the amount they stand for.
        "conversion_value": None
        if activity.value_milli is None
        else {"raw": activity.value_milli, "decimal": milli_to_decimal(activity.value_milli)},
        # Properties whose value had another type than the one first recognised
        # for them (Cordial type recognition): stored, not searchable.
        "unsearchable": list(activity.unsearchable),
        # Provenance: the identifier that resolved the activity to its contact.
        "resolved_by": None
        if activity.resolved_by is None
        else {"kind": activity.resolved_by.kind, "value": activity.resolved_by.value},
    }
    if activity.context is not None:
        # What the sending library said (Segment context, integrations, _metadata).
        body["context"] = activity.context
    return body
