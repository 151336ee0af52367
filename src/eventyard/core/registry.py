"""The event type registry: which event names and property keys an account uses.

Vendors cap both (CleverTap: "the maximum number of event types per account
is 512, some events are reserved for system events ... For each event type,
the maximum number of properties is 256"). Admission is decided record by
record, in order, so that the records that fit are stored and only those
beyond a limit are refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from eventyard.core.model import EventTypeLimits, RecordRejection


@dataclass
class RegistryState:
    """What the account has registered, as far as a batch needs to know."""

    #: Registered event types of the account (all of them, not only the batch's).
    type_count: int
    #: Properties registered per event type, for the types the batch names.
    properties: dict[str, set[str]] = field(default_factory=dict)

    def knows(self, name: str) -> bool:
        return name in self.properties


@dataclass
class Admission:
    rejections: list[RecordRejection]
    new_types: list[str]
    new_properties: list[tuple[str, str]]

    @property
    def changes_registry(self) -> bool:
        return bool(self.new_types or self.new_properties)


def admit_event_types(
    usage: Sequence[tuple[int, str, Iterable[str]]],
    state: RegistryState,
    limits: EventTypeLimits,
) -> Admission:
    """Admit each ``(index, event name, property keys)`` in order against ``limits``.

    ``state`` is updated as records are admitted, so a later record sees the
    types and keys an earlier one registered.
    """
    capacity = limits.max_types - len(limits.reserved_names)
    admission = Admission(rejections=[], new_types=[], new_properties=[])
    for index, name, keys in usage:
        known_keys = state.properties.get(name, set())
        new_keys = [k for k in dict.fromkeys(keys) if k not in known_keys]
        is_new_type = not state.knows(name)
        if is_new_type and state.type_count >= capacity:
            reason = (
                f"event type {name!r} is new and the account already has {limits.max_types}"
                f" event types ({len(limits.reserved_names)} reserved for system events)"
            )
            admission.rejections.append(RecordRejection(index, "event_type_limit", reason))
            continue
        total_keys = len(known_keys) + len(new_keys)
        if total_keys > limits.max_properties_per_type:
            reason = (
                f"event type {name!r} would have {total_keys} property keys, more than"
                f" the {limits.max_properties_per_type} allowed"
            )
            admission.rejections.append(RecordRejection(index, "event_property_limit", reason))
            continue
        if is_new_type:
            state.type_count += 1
            state.properties[name] = set()
            admission.new_types.append(name)
        state.properties[name].update(new_keys)
        admission.new_properties.extend((name, k) for k in new_keys)
    return admission


def value_type(value: object) -> str | None:
    """The recognised type of a property value; ``None`` for null (no type).

    Whole and decimal numbers are one type, ``number``: a price sent as
    ``10`` and later as ``9.99`` stays searchable.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "string"


def property_types(properties: dict[str, object]) -> dict[str, str]:
    """The recognised type of each property that has one."""
    types = {}
    for key, value in properties.items():
        kind = value_type(value)
        if kind is not None:
            types[key] = kind
    return types


def mistyped(properties: dict[str, object], recognised: dict[str, str]) -> list[str]:
    """Keys whose value has another type than the one recognised for them first."""
    return [
        key for key, kind in property_types(properties).items() if recognised.get(key, kind) != kind
    ]
