"""Customer.io Track API operations -> canonical records (pure: no I/O).

Every operation of the Track API, v1 (``PUT /api/v1/customers/{identifier}``
…) and v2 (one ``{"type": "person", "action": …}`` object), becomes the
records the canonical model holds:

- identify -> a :class:`ProfileUpdate` of the person's attributes (plus a
  :class:`GroupMembership` per relationship added with ``cio_relationships``);
- event / page / screen -> a :class:`NewActivity` whose ``message_id`` is
  the event ``id`` ("a repeated value is ignored");
- add_device / delete_device -> an activity of that name holding the device
  (eventyard has no device table: the history of a person's devices is kept);
- suppress / unsuppress -> the attribute ``cio_suppressed`` true / false;
- merge -> a profile update of the primary that absorbs the secondary (a merge);
- delete -> an :class:`Erase`: the route runs eventyard's erasure service.

Identifiers: ``id`` -> ``identity``, ``email`` -> ``email``, ``phone`` (v2)
-> ``mobile``, ``anonymous_id`` -> ``anonid``, and ``cio_id`` is eventyard's
own contact id (the hub's id for a person, as Customer.io's is): it names
the contact directly, and an unknown one drops the request's record.

A problem raises nothing here: it is reported with ``fail(field, message)``
in Customer.io's words (the spec's limit messages), and the route renders the
problems in the shape of the API version it serves.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from eventyard.core.commands import Record
from eventyard.core.identifiers import (
    ANONID,
    EMAIL,
    IDENTITY,
    MOBILE,
    Identifier,
    normalize_identifier,
)
from eventyard.core.model import ContactHint, GroupMembership, NewActivity, ProfileUpdate
from eventyard.core.payload import unstorable_values
from eventyard.dialects.toolkit.identifiers import identifier_text

DIALECT = "customerio"
SOURCE = "api"

# The limits of the spec's table ("Rate Limits" section of the OpenAPI document).
MAX_ID_BYTES = 150
MAX_ATTRIBUTE_NAME_BYTES = 150
MAX_ATTRIBUTE_VALUE_BYTES = 1000
MAX_ATTRIBUTES = 300
MAX_EVENT_NAME_BYTES = 100
MAX_EVENT_DATA_BYTES = 100_000
MAX_ENTITY_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024

#: Keys of an identify body that steer the call rather than describe the person.
CONTROL_KEYS = frozenset({"_update", "_timestamp", "cio_relationships", "anonymous_id"})
PAGE_VIEWED = "Page Viewed"
SCREEN_VIEWED = "Screen Viewed"
ADD_DEVICE = "add_device"
DELETE_DEVICE = "delete_device"
SUPPRESSED = "cio_suppressed"
EVENT_TYPES = ("event", "page", "screen")
PERSON_ACTIONS = (
    "identify",
    "delete",
    "event",
    "screen",
    "page",
    "add_relationships",
    "delete_relationships",
    "add_device",
    "delete_device",
    "merge",
    "suppress",
    "unsuppress",
)
MERGE_KEYS = ("id", "email", "cio_id")
_CIO_PREFIX = "cio_"
_EMAIL_SHAPE = re.compile(r"\A[^@\s]+@[^@\s]+\Z")


class Problems:
    """The problems of one operation as ``(field, message)``; called as ``fail(field, message)``."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def __call__(self, field: str, message: str) -> None:
        self.items.append((field, message))

    def count(self) -> int:
        return len(self.items)


@dataclass(frozen=True, slots=True)
class Person:
    """Who an operation is about: identifiers, or eventyard's contact id (``cio_id``)."""

    identifiers: tuple[Identifier, ...] = ()
    contact_id: str | None = None

    @property
    def hint(self) -> ContactHint | None:
        return None if self.contact_id is None else ContactHint(self.contact_id)


@dataclass(frozen=True, slots=True)
class Erase:
    """Delete the person (``DELETE /customers/{identifier}``, v2 ``delete``): their erasure."""

    person: Person


Operation = list[Record] | Erase


# --- identifiers ---------------------------------------------------------


def path_person(raw: str, fail: Problems) -> Person | None:
    """The ``{identifier}`` of a path: "an id, an email, or cio_<cio_id>".

    "The type is inferred from the value's shape: cio_ prefix -> cio_id,
    email-looking -> email, anything else -> id. A phone number in the path
    is treated as an id."
    """
    if not raw.strip():
        fail("identifier", "identifier cannot be blank")
        return None
    if raw.startswith(_CIO_PREFIX) and len(raw) > len(_CIO_PREFIX):
        return Person(contact_id=raw[len(_CIO_PREFIX) :])
    kind = EMAIL if _EMAIL_SHAPE.match(raw.strip()) else IDENTITY
    found = _identifier(kind, raw, "identifier", fail)
    return None if found is None else Person((found,))


def _identifier(kind: str, raw: str, field: str, fail: Problems) -> Identifier | None:
    if kind == IDENTITY and len(raw.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
        fail(field, f"{field} cannot be longer than {MAX_ID_BYTES} bytes")
        return None
    try:
        return normalize_identifier(kind, raw)
    except ValueError as exc:
        fail(field, f"{field} {exc}")
        return None


def identifiers_person(
    raw: Any, field: str, fail: Problems, *, phone: bool = True
) -> Person | None:
    """A v2 ``identifiers`` object (or a merge side): exactly one of id, email, phone, cio_id.

    "You cannot pass multiple identifiers."
    """
    keys = ("id", "email", "phone", "cio_id") if phone else MERGE_KEYS
    if not isinstance(raw, dict):
        fail(field, f"{field} must be an object with one of {', '.join(keys)}")
        return None
    given = [key for key in raw if raw[key] is not None]
    if len(given) != 1 or given[0] not in keys:
        fail(field, f"{field} must hold exactly one of {', '.join(keys)} (got {given or 'none'})")
        return None
    key = given[0]
    text = identifier_text(raw[key], "int")
    if text is None or not text.strip():
        fail(f"{field}.{key}", f"{field}.{key} must be a non-empty string")
        return None
    if key == "cio_id":
        return Person(contact_id=text.removeprefix(_CIO_PREFIX))
    kind = {"id": IDENTITY, "email": EMAIL, "phone": MOBILE}[key]
    found = _identifier(kind, text, f"{field}.{key}", fail)
    return None if found is None else Person((found,))


def anonymous_identifier(raw: Any, field: str, fail: Problems) -> Identifier | None:
    if raw is None or raw == "":
        return None
    text = identifier_text(raw, "int")
    if text is None:
        fail(field, f"{field} must be a string")
        return None
    return _identifier(ANONID, text, field, fail)


# --- identify ------------------------------------------------------------


def identify(person: Person, attributes: Any, fail: Problems) -> list[Record]:
    """``PUT /customers/{identifier}`` (body = attributes) or v2 ``identify``.

    The body's ``id`` and ``email`` are identifiers of the person besides the
    path's ("Path identifier unknown but a body identifier matches -> that
    person is updated and receives the path identifier"); ``anonymous_id``
    links the person's anonymous events (identity resolution folds the
    anonymous contact into the person).
    """
    if not isinstance(attributes, dict):
        fail("attributes", "attributes must be a hash")
        return []
    before = fail.count()
    _check_attributes(attributes, fail)
    identifiers = list(person.identifiers)
    raw_id = attributes.get("id")
    if raw_id is not None:
        if not isinstance(raw_id, str | int) or isinstance(raw_id, bool):
            fail("id", "id attribute must be a string value")
        elif str(raw_id).strip() == "":
            fail("id", "id attribute cannot be an empty string")
        elif (found := _identifier(IDENTITY, str(raw_id), "id", fail)) is not None:
            identifiers.append(found)
    raw_email = attributes.get("email")
    if isinstance(raw_email, str) and raw_email.strip():
        # An address that is no valid e-mail stays an attribute as sent, naming no one.
        with contextlib.suppress(ValueError):
            identifiers.append(normalize_identifier(EMAIL, raw_email))
    anonymous = anonymous_identifier(attributes.get("anonymous_id"), "anonymous_id", fail)
    if anonymous is not None:
        identifiers.append(anonymous)
    memberships = relationships(person, attributes.get("cio_relationships"), fail)
    if fail.count() > before:
        return []
    kept = {key: value for key, value in attributes.items() if key not in CONTROL_KEYS}
    update = ProfileUpdate(
        identifiers=tuple(dict.fromkeys(identifiers)),
        attributes=kept,
        dialect=DIALECT,
        contact_hint=person.hint,
    )
    return [update, *memberships]


def _check_attributes(attributes: dict[str, Any], fail: Problems) -> None:
    if len(attributes) > MAX_ATTRIBUTES:
        fail("attributes", f"cannot identify more than {MAX_ATTRIBUTES} attributes in one request")
    for name, value in attributes.items():
        if name in CONTROL_KEYS:
            continue
        if _bytes(name) > MAX_ATTRIBUTE_NAME_BYTES:
            fail(name, f"attribute name cannot be longer than {MAX_ATTRIBUTE_NAME_BYTES} bytes")
        elif json_bytes(value) > MAX_ATTRIBUTE_VALUE_BYTES:
            fail(
                name,
                f"value for attribute '{name}' cannot be longer than "
                f"{MAX_ATTRIBUTE_VALUE_BYTES} bytes",
            )


def relationships(person: Person, raw: Any, fail: Problems) -> list[Record]:
    """``cio_relationships`` of an identify: ``add_relationships`` -> group memberships.

    The canonical model has memberships and no way to end one, so
    ``delete_relationships`` is refused.
    """
    if raw is None:
        return []
    if not isinstance(raw, dict):
        fail("cio_relationships", "cio_relationships must be a hash")
        return []
    action = raw.get("action", "add_relationships")
    if action != "add_relationships":
        fail(
            "cio_relationships.action",
            f"cio_relationships.action {action!r} is not supported: eventyard can add "
            "relationships (add_relationships) but not remove them",
        )
        return []
    return relationship_list(person, raw.get("relationships"), "cio_relationships.", fail)


def relationship_list(person: Person, raw: Any, prefix: str, fail: Problems) -> list[Record]:
    field = f"{prefix}relationships"
    if not isinstance(raw, list):
        fail(field, f"{field} must be an array")
        return []
    found: list[Record] = []
    for position, item in enumerate(raw):
        at = f"{field}.{position}"
        identifiers = item.get("identifiers") if isinstance(item, dict) else None
        if not isinstance(identifiers, dict):
            fail(f"{at}.identifiers", f"{at}.identifiers must be an object")
            continue
        group = object_group_id(identifiers, f"{at}.identifiers", fail)
        traits = item.get("relationship_attributes") or {}
        if not isinstance(traits, dict):
            fail(f"{at}.relationship_attributes", f"{at}.relationship_attributes must be a hash")
            continue
        if group is not None:
            found.append(
                GroupMembership(
                    identifiers=person.identifiers,
                    group_id=group,
                    traits=traits,
                    dialect=DIALECT,
                    contact_hint=person.hint,
                )
            )
    return found


def object_group_id(identifiers: dict[str, Any], field: str, fail: Problems) -> str | None:
    """An object as a group id: ``<object_type_id>:<object_id>`` (or its ``cio_object_id``)."""
    cio_object = identifier_text(identifiers.get("cio_object_id"), "int")
    if cio_object:
        return f"cio_object:{cio_object}"
    type_id = identifier_text(identifiers.get("object_type_id"), "int")
    object_id = identifier_text(identifiers.get("object_id"), "int")
    if not type_id or not object_id:
        fail(field, f"{field} needs object_type_id and object_id (or cio_object_id)")
        return None
    if _bytes(object_id) > MAX_ID_BYTES:
        fail(f"{field}.object_id", f"object_id cannot be longer than {MAX_ID_BYTES} bytes")
        return None
    return f"{type_id}:{object_id}"


# --- events --------------------------------------------------------------


def event(
    person: Person,
    body: Any,
    *,
    now: datetime,
    fail: Problems,
    data_key: str = "data",
    kind: str | None = None,
) -> list[Record]:
    """``POST /customers/{identifier}/events``, ``POST /events`` or a v2 event/page/screen.

    "name required (leading/trailing spaces trimmed)"; ``type`` ``event``
    (default), ``page`` (name = URL) or ``screen``; ``timestamp`` unix
    seconds, absent -> receive time; ``id`` dedups ("a repeated value is
    ignored"); ``data`` (v2: ``attributes``) must be a hash of at most
    100,000 bytes. A page view is stored as ``Page Viewed`` with the URL as
    ``url``, a screen view as ``Screen Viewed`` with ``screen``; the activity's
    context keeps the type, name, id and timestamp as sent.
    """
    if not isinstance(body, dict):
        fail("body", "the body must be a hash")
        return []
    before = fail.count()
    if kind is None:
        kind = "event" if body.get("type") is None else body["type"]
    if kind not in EVENT_TYPES:
        fail("type", f"type must be one of {', '.join(EVENT_TYPES)} (got {kind!r})")
    raw_name = body.get("name")
    name = raw_name.strip() if isinstance(raw_name, str) else ""
    if not name:
        fail("name", "event name must not be blank")
    elif _bytes(name) > MAX_EVENT_NAME_BYTES:
        fail("name", f"event name cannot be longer than {MAX_EVENT_NAME_BYTES} bytes")
    data = body.get(data_key)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        fail(data_key, "event data must be a hash")
    elif json_bytes(data) > MAX_EVENT_DATA_BYTES:
        fail(data_key, f"event data cannot be longer than {MAX_EVENT_DATA_BYTES} bytes")
    occurred_at = timestamp(body.get("timestamp"), now, "timestamp", fail)
    message_id = event_id(body.get("id"), fail)
    if fail.count() > before:
        return []
    properties = dict(data)
    activity_name = name
    if kind == "page":
        activity_name, properties = PAGE_VIEWED, {"url": name, **data}
    elif kind == "screen":
        activity_name, properties = SCREEN_VIEWED, {"screen": name, **data}
    context: dict[str, Any] = {"type": kind, "name": name}
    for key in ("id", "timestamp"):
        if body.get(key) is not None:
            context[key] = body[key]
    return [
        NewActivity(
            identifiers=person.identifiers,
            name=activity_name,
            occurred_at=occurred_at,
            source=SOURCE,
            dialect=DIALECT,
            properties=properties,
            contact_hint=person.hint,
            context=context,
            message_id=message_id,
        )
    ]


def event_id(raw: Any, fail: Problems) -> str | None:
    if raw is None or raw == "":
        return None
    text = identifier_text(raw, "int")
    if text is None:
        fail("id", "id must be a string (a ULID)")
        return None
    if _bytes(text) > MAX_ID_BYTES:
        fail("id", f"id cannot be longer than {MAX_ID_BYTES} bytes")
        return None
    return text


def timestamp(raw: Any, now: datetime, field: str, fail: Problems) -> datetime:
    """Unix seconds (an integer, or a number with a fraction); absent -> ``now``."""
    if raw is None:
        return now
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        fail(field, f"{field} must be a unix timestamp in seconds")
        return now
    try:
        return datetime.fromtimestamp(raw, UTC)
    except (OverflowError, OSError, ValueError):
        fail(field, f"{field} {raw} is out of range")
        return now


# --- devices, suppression, merge -----------------------------------------


def device(person: Person, raw: Any, *, now: datetime, action: str, fail: Problems) -> list[Record]:
    """A device added (``PUT /customers/{id}/devices``) or deleted, kept as an activity.

    "device.id and device.platform (ios|android) required; last_used unix
    seconds (default: request time)". A deletion needs only the id.
    """
    if not isinstance(raw, dict):
        fail("device", "device must be a hash")
        return []
    before = fail.count()
    device_id = identifier_text(raw.get("id"), "int")
    if device_id is None or not device_id.strip():
        fail("device.id", "device.id must be present")
    if action == ADD_DEVICE:
        platform = raw.get("platform")
        if platform not in ("ios", "android"):
            fail("device.platform", "device.platform must be ios or android")
        attributes = raw.get("attributes")
        if attributes is not None and not isinstance(attributes, dict):
            fail("device.attributes", "device.attributes must be a hash")
    occurred_at = timestamp(raw.get("last_used"), now, "device.last_used", fail)
    if fail.count() > before:
        return []
    return [
        NewActivity(
            identifiers=person.identifiers,
            name=action,
            occurred_at=occurred_at,
            source=SOURCE,
            dialect=DIALECT,
            properties={"device": raw},
            contact_hint=person.hint,
            context={"type": action},
        )
    ]


def suppression(person: Person, suppressed: bool) -> list[Record]:
    """Suppress / unsuppress: eventyard sends no messages; the person's state is kept."""
    return [
        ProfileUpdate(
            identifiers=person.identifiers,
            attributes={SUPPRESSED: suppressed},
            dialect=DIALECT,
            contact_hint=person.hint,
        )
    ]


def merge(body: Any, fail: Problems) -> list[Record]:
    """``{"primary": {"id": "42"}, "secondary": {"email": "dup@example.com"}}``.

    A profile update of the primary (by its contact id when it is a
    ``cio_id``) that absorbs the secondary: "``secondary`` is deleted" into
    the primary, known or not, as a merge asked for by hand
    (core/identity_operations.py: the primary's attribute values win, as
    Customer.io copies only "attributes empty/unset on primary"), audited
    and revertible; a secondary identifier nobody owns is given to the
    primary.
    """
    if not isinstance(body, dict):
        fail("body", "the body must be a hash with primary and secondary")
        return []
    primary = identifiers_person(body.get("primary"), "primary", fail, phone=False)
    secondary = identifiers_person(body.get("secondary"), "secondary", fail, phone=False)
    if primary is None or secondary is None:
        return []
    if secondary.contact_id is not None:
        fail("secondary.cio_id", "eventyard merges a secondary named by id or email, not cio_id")
        return []
    return [
        ProfileUpdate(
            identifiers=primary.identifiers,
            attributes={},
            dialect=DIALECT,
            contact_hint=primary.hint,
            absorbs=secondary.identifiers,
        )
    ]


# --- v2 ------------------------------------------------------------------


def entity(
    operation: Any,
    *,
    now: datetime,
    fail: Problems,
    thorough: bool = True,
    serialized: bool = False,
) -> Operation | None:
    """One v2 operation (``/api/v2/entity``, an item of ``/api/v2/batch``).

    Person actions map as the module says; ``object`` and ``delivery``
    operations have no place in the canonical model and are refused, naming
    ``type``, as is ``delete_relationships`` (a membership cannot be ended).
    ``thorough``: look for every unstorable value, not only too deep a nesting
    (the body held a NUL or a long integer). ``serialized``: the fast JSON
    codec already wrote ``operation`` (measuring it), so unless ``thorough``
    it holds nothing unstorable.
    """
    if not isinstance(operation, dict):
        fail("body", "each operation must be an object")
        return None
    checked = serialized and not thorough
    problems = [] if checked else unstorable_values(operation, thorough=thorough)
    if problems:
        for path, reason in problems:
            fail(path, f"{path} {reason}")
        return None
    kind, action = operation.get("type"), operation.get("action")
    if kind in ("object", "delivery"):
        fail("type", f"type {kind!r} is not supported by eventyard: only person operations are")
        return None
    if kind != "person":
        fail("type", f"type must be person, object or delivery (got {kind!r})")
        return None
    if action not in PERSON_ACTIONS:
        fail("action", f"action must be one of {', '.join(PERSON_ACTIONS)} (got {action!r})")
        return None
    if action == "merge":
        return merge(operation, fail)
    person = _v2_person(operation, action, fail)
    if person is None:
        return None
    attributes = operation.get("attributes")
    return _PERSON_ACTIONS[action](person, operation, attributes, now, fail)


def _v2_person(operation: dict[str, Any], action: str, fail: Problems) -> Person | None:
    if action in EVENT_TYPES and operation.get("identifiers") is None:
        # An anonymous event: "anonymous_id" in place of identifiers.
        anonymous = anonymous_identifier(operation.get("anonymous_id"), "anonymous_id", fail)
        if anonymous is None:
            fail("identifiers", "identifiers (or anonymous_id for an event) must be present")
            return None
        return Person((anonymous,))
    return identifiers_person(operation.get("identifiers"), "identifiers", fail)


Action = Callable[[Person, dict[str, Any], Any, datetime, "Problems"], Operation | None]


def _v2_identify(
    person: Person, op: dict[str, Any], attributes: Any, now: datetime, fail: Problems
) -> Operation:
    attributes = {} if attributes is None else attributes
    if isinstance(attributes, dict) and op.get("cio_relationships") is not None:
        attributes = {**attributes, "cio_relationships": op["cio_relationships"]}
    return identify(person, attributes, fail)


def _v2_event(
    person: Person, op: dict[str, Any], attributes: Any, now: datetime, fail: Problems
) -> Operation:
    return event(person, op, now=now, fail=fail, data_key="attributes", kind=op["action"])


def _v2_delete(
    person: Person, op: dict[str, Any], attributes: Any, now: datetime, fail: Problems
) -> Operation:
    return Erase(person)


def _v2_add_relationships(
    person: Person, op: dict[str, Any], attributes: Any, now: datetime, fail: Problems
) -> Operation:
    return relationship_list(person, op.get("cio_relationships"), "", fail)


def _v2_delete_relationships(
    person: Person, op: dict[str, Any], attributes: Any, now: datetime, fail: Problems
) -> Operation | None:
    fail("action", "action delete_relationships is not supported: eventyard cannot end one")
    return None


def _v2_device(
    person: Person, op: dict[str, Any], attributes: Any, now: datetime, fail: Problems
) -> Operation:
    return device(person, op.get("device"), now=now, action=op["action"], fail=fail)


def _v2_suppress(
    person: Person, op: dict[str, Any], attributes: Any, now: datetime, fail: Problems
) -> Operation:
    return suppression(person, op["action"] == "suppress")


_PERSON_ACTIONS: dict[str, Action] = {
    "identify": _v2_identify,
    "event": _v2_event,
    "page": _v2_event,
    "screen": _v2_event,
    "delete": _v2_delete,
    "add_relationships": _v2_add_relationships,
    "delete_relationships": _v2_delete_relationships,
    "add_device": _v2_device,
    "delete_device": _v2_device,
    "suppress": _v2_suppress,
    "unsuppress": _v2_suppress,
}


# --- sizes ---------------------------------------------------------------


def _bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def json_bytes(value: Any) -> int:
    """Bytes of a value as Customer.io counts them: a string's text, anything else as JSON."""
    if isinstance(value, str):
        return _bytes(value)
    try:
        return len(orjson.dumps(value))
    except (orjson.JSONEncodeError, TypeError):
        return len(str(value).encode("utf-8", "surrogatepass"))
