"""Activity definitions: which attribute fields an activity may carry, and their types.

Ortto asks clients to "ensure the activity definition exists" before sending
an activity; its ids look like ``act:cm:product-purchase`` and its attribute
fields like ``type:namespace:field`` (``str:cm:product-name``, ``int::v`` for
the conversion value). This module checks definitions and compares an
activity's attributes with one; it does no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from eventyard.core.errors import EventyardError, FieldError
from eventyard.core.model import ActivityDefinition

#: The field types of Ortto's ``type:namespace:field`` ids: text, integer,
#: boolean, date-time and JSON object.
FIELD_TYPES = ("str", "int", "bol", "dtz", "obj")
#: Namespaces a field id may name: ``cm`` (custom) or none (``int::v``).
FIELD_NAMESPACES = ("cm", "")
ACTIVITY_ID_PREFIX = "act:cm:"
MAX_ACTIVITY_ID_LENGTH = 200
MAX_NAME_LENGTH = 255
MAX_FIELD_NAME_LENGTH = 100
MAX_FIELDS = 100

_ACTIVITY_NAME_RE = re.compile(r"\A[a-z0-9-]+\Z")
_FIELD_NAME_RE = re.compile(r"\A[a-z0-9_-]+\Z")


@dataclass(frozen=True, slots=True)
class DefinitionSpec:
    """A checked definition as a client declared it (no timestamps yet)."""

    activity_id: str
    name: str
    fields: dict[str, str]


def check_activity_id(activity_id: object) -> str:
    """``activity_id`` if it is a custom activity id (``act:cm:<name>``); else ``ValueError``."""
    if not isinstance(activity_id, str):
        raise ValueError("must be a string")
    if len(activity_id) > MAX_ACTIVITY_ID_LENGTH:
        raise ValueError(f"must be at most {MAX_ACTIVITY_ID_LENGTH} characters")
    name = activity_id.removeprefix(ACTIVITY_ID_PREFIX)
    if name == activity_id or not _ACTIVITY_NAME_RE.match(name):
        raise ValueError(
            "must look like act:cm:<name>, the name made of lower-case letters, "
            "digits and hyphens (for example act:cm:product-purchase)"
        )
    return activity_id


def field_type(field_id: object) -> str:
    """The type of a ``type:namespace:field`` id (``int`` for ``int::v``); else ``ValueError``."""
    if not isinstance(field_id, str):
        raise ValueError("must be a string")
    parts = field_id.split(":")
    if len(parts) != 3:
        raise ValueError("must have the form type:namespace:field (for example str:cm:name)")
    kind, namespace, name = parts
    if kind not in FIELD_TYPES:
        raise ValueError(f"has type {kind!r}; the type must be one of {', '.join(FIELD_TYPES)}")
    if namespace not in FIELD_NAMESPACES:
        raise ValueError(f"has namespace {namespace!r}; the namespace must be cm or empty")
    if not 1 <= len(name) <= MAX_FIELD_NAME_LENGTH or not _FIELD_NAME_RE.match(name):
        raise ValueError(
            f"has field name {name!r}; it must be 1 to {MAX_FIELD_NAME_LENGTH} lower-case "
            "letters, digits, hyphens or underscores"
        )
    return kind


def validate_definition(activity_id: object, name: object, fields: object) -> DefinitionSpec:
    """A checked definition, or ``EventyardError`` listing every problem by field.

    ``name`` is trimmed; ``fields`` maps each field id to its type, which must
    be the id's own type prefix (``"int::v": "int"``).
    """
    errors: list[FieldError] = []
    try:
        checked_id = check_activity_id(activity_id)
    except ValueError as exc:
        errors.append(_error("activity_id", exc))
        checked_id = ""
    checked_name = ""
    if not isinstance(name, str) or not name.strip():
        errors.append(FieldError("name", "name must be a non-empty string"))
    elif len(name.strip()) > MAX_NAME_LENGTH:
        errors.append(FieldError("name", f"name must be at most {MAX_NAME_LENGTH} characters"))
    else:
        checked_name = name.strip()
    checked_fields = _check_fields(fields, errors)
    if errors:
        raise invalid_definition(errors)
    return DefinitionSpec(checked_id, checked_name, checked_fields)


def _check_fields(fields: object, errors: list[FieldError]) -> dict[str, str]:
    if not isinstance(fields, Mapping):
        errors.append(FieldError("fields", "fields must be an object of field id to type"))
        return {}
    if len(fields) > MAX_FIELDS:
        errors.append(
            FieldError("fields", f"fields has {len(fields)} entries; at most {MAX_FIELDS}")
        )
    checked: dict[str, str] = {}
    for field_id, declared in fields.items():
        path = f"fields.{field_id}"
        try:
            kind = field_type(field_id)
        except ValueError as exc:
            errors.append(_error(path, exc))
            continue
        if declared != kind:
            errors.append(
                FieldError(path, f"{path} must have type {kind!r} (its prefix), not {declared!r}")
            )
            continue
        checked[field_id] = kind
    return checked


def definition_from_attributes(activity_id: str, attributes: Iterable[str]) -> DefinitionSpec:
    """The definition a first activity creates when its account allows it.

    Its fields are the activity's attribute ids, each typed by its prefix; its
    name is the id's own (``product-purchase`` for ``act:cm:product-purchase``).
    Bad ids are ``EventyardError`` naming ``activity_id`` or ``attributes.<id>``.
    """
    errors: list[FieldError] = []
    try:
        check_activity_id(activity_id)
    except ValueError as exc:
        errors.append(_error("activity_id", exc))
    fields: dict[str, str] = {}
    for field_id in attributes:
        try:
            fields[field_id] = field_type(field_id)
        except ValueError as exc:
            errors.append(_error(f"attributes.{field_id}", exc))
    if len(fields) > MAX_FIELDS:
        errors.append(
            FieldError(
                "attributes",
                f"attributes has {len(fields)} fields; a definition holds at most {MAX_FIELDS}",
            )
        )
    if errors:
        raise invalid_definition(errors)
    return DefinitionSpec(activity_id, activity_id.removeprefix(ACTIVITY_ID_PREFIX), fields)


def check_attributes(
    definition: ActivityDefinition, attribute_ids: Iterable[str]
) -> list[tuple[str, str]]:
    """``(field id, reason)`` for each attribute the definition does not declare, in order.

    The reason does not repeat the field id: ``"not declared by activity
    definition act:cm:purchase"``.
    """
    declared_by_name = {_field_key(f): f for f in definition.fields}
    problems: list[tuple[str, str]] = []
    for field_id in dict.fromkeys(attribute_ids):
        if field_id in definition.fields:
            continue
        reason = f"not declared by activity definition {definition.activity_id}"
        other = declared_by_name.get(_field_key(field_id))
        if other is not None:
            reason += f", which declares {other} (another type)"
        problems.append((field_id, reason))
    return problems


def invalid_definition(errors: list[FieldError]) -> EventyardError:
    """The 400 for a definition that breaks the rules; the message is the first problem."""
    return EventyardError("invalid_definition", errors[0].reason, 400, errors=errors)


def _field_key(field_id: str) -> str:
    """A field id without its type: ``cm:qty`` for both ``int:cm:qty`` and ``str:cm:qty``."""
    return field_id.partition(":")[2]


def _error(path: str, exc: ValueError) -> FieldError:
    return FieldError(path, f"{path} {exc}")
