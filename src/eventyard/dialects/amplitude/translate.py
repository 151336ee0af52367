"""Amplitude events and identifications -> canonical activities, profile updates, memberships.

Pure functions: the routes authenticate and read the request, these decide
what it means. Rules quote Amplitude's HTTP V2, Batch Event Upload and
Identify API pages (``docs/dialects/amplitude.md`` has the mapping table and
every decision):

- ``user_id`` is the identifier ``identity``, ``device_id`` the identifier
  ``anonid``; an event naming both links them (identity resolution).
- An event is an activity named by its ``event_type``; ``$identify`` is a
  profile update (its ``user_properties`` operations, each one update of the
  matching merge strategy), ``$groupidentify`` a group membership.
- ``insert_id`` is the dedup key, scoped by ``device_id`` (else ``user_id``):
  "Amplitude ignores subsequent events sent with the same insert_id on the
  same device_id".
- A request is stored whole or not at all: a 400 lists the bad events by
  index and the SDK sends the others again.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import parse_qs

import orjson

from eventyard.core.commands import Record
from eventyard.core.errors import FieldError
from eventyard.core.identifiers import ANONID, IDENTITY, Identifier, normalize_identifier
from eventyard.core.model import GroupMembership, MergeStrategy, NewActivity, ProfileUpdate
from eventyard.core.payload import decode_json, unstorable_values
from eventyard.dialects.amplitude.errors import (
    INVALID_FIELDS,
    INVALID_JSON,
    MISSING_BODY,
    MISSING_FIELD,
    TOO_LARGE,
    AmplitudeError,
    amplitude_error,
    plain_error,
)
from eventyard.dialects.toolkit.identifiers import identifier_text
from eventyard.dialects.toolkit.records import RecordError

DIALECT = "amplitude"
#: HTTP V2: "Keep request size under 1MB and fewer than 2000 events per request".
HTTPAPI_MAX_BYTES = 1024 * 1024
#: Batch: "The JSON serialized payload must not exceed 20MB in size."
BATCH_MAX_BYTES = 20 * 1024 * 1024
#: Batch, 413 row: "The limit per batch is 2000 events" (HTTP V2: "fewer than 2000").
MAX_EVENTS = 2000
#: "Device IDs and user IDs must be strings of 5 characters or more"
#: (``options.min_id_length`` overrides it).
DEFAULT_MIN_ID_LENGTH = 5
#: "String values ... have a maximum length of 1024 characters."
MAX_STRING_LENGTH = 1024
#: GroupMembership ids (``type:value``) are kept up to this length.
MAX_GROUP_ID_LENGTH = 255
#: "You can only track up to 5 groups" / "up to 10 values per group type".
MAX_GROUP_TYPES = 5
MAX_GROUP_VALUES = 10
#: HTTP V2 "Considerations": these ids are refused (compared case-insensitively).
BLOCKED_IDS = frozenset(
    {
        "anonymous",
        "nil",
        "none",
        "null",
        "n/a",
        "na",
        "undefined",
        "unknown",
        "00000000-0000-0000-0000-000000000000",
        "{}",
        "lmy47d",
        "0",
        "-1",
    }
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
IDENTIFY = "$identify"
GROUP_IDENTIFY = "$groupidentify"
DEFAULT_SOURCE = "api"
MAX_SOURCE_LENGTH = 32
#: identify.md's user property operations, in the order eventyard applies them,
#: with the merge strategy each becomes. ``$clearAll`` is refused (see below).
OPERATIONS: dict[str, MergeStrategy] = {
    "$unset": "unset",
    "$setOnce": "fill_empty",
    "$set": "overwrite",
    "$add": "increment",
    "$append": "append",
    "$prepend": "prepend",
    "$preInsert": "prepend_missing",
    "$postInsert": "append_missing",
    "$remove": "remove",
}
CLEAR_ALL = "$clearAll"
#: Identify API keys that Amplitude keeps as the user's own properties.
IDENTIFY_USER_FIELDS = (
    "app_version",
    "platform",
    "os_name",
    "os_version",
    "device_brand",
    "device_manufacturer",
    "device_model",
    "carrier",
    "country",
    "region",
    "city",
    "dma",
    "language",
    "paying",
    "start_version",
)
LOCATION_FIELDS = ("location_lat", "location_lng", "city", "region", "country", "dma")

#: Which of the three maps of a 400 a problem belongs to.
Category = Literal["invalid", "missing", "id_length"]


@dataclass(frozen=True, slots=True)
class Upload:
    """A ``/2/httpapi`` or ``/batch`` body: the key, the events and their options."""

    api_key: str
    events: list[Any]
    min_id_length: int
    size: int
    #: Set when the body may hold values no backend can store as sent.
    suspicious: bool = False


@dataclass(frozen=True, slots=True)
class Identification:
    """A ``/identify`` form: the key and the identifications (one object or an array)."""

    api_key: str
    identifications: list[Any]
    suspicious: bool = False


@dataclass
class Problems:
    """What is wrong with the events, by map (``events_with_invalid_fields`` …) and field."""

    maps: dict[Category, dict[str, list[int]]] = field(
        default_factory=lambda: {"invalid": {}, "missing": {}, "id_length": {}}
    )
    errors: list[RecordError] = field(default_factory=list)

    def add(self, category: Category, index: int, key: str, message: str) -> None:
        indexes = self.maps[category].setdefault(key, [])
        if not indexes or indexes[-1] != index:
            indexes.append(index)
        self.errors.append(RecordError(index, key, message))

    def __bool__(self) -> bool:
        return bool(self.errors)

    def refusal(self, records: int) -> AmplitudeError:
        """The 400 naming every bad event; nothing of the request is stored."""
        extra: dict[str, Any] = {}
        for category, key in (
            ("invalid", "events_with_invalid_fields"),
            ("missing", "events_with_missing_fields"),
            ("id_length", "events_with_invalid_id_lengths"),
        ):
            if self.maps[category]:  # type: ignore[index]
                extra[key] = self.maps[category]  # type: ignore[index]
        extra["errors"] = [
            {"index": e.index, "field": e.field, "message": e.message} for e in self.errors
        ]
        error = amplitude_error(INVALID_FIELDS, code="invalid_events", **extra)
        error.errors = [FieldError(e.field, e.message, e.index) for e in self.errors]
        error.records = records
        return error


@dataclass
class Translation:
    """The records of the valid events, which event each came from, and the events' ids."""

    records: list[Record] = field(default_factory=list)
    #: ``positions[i]``: the index of the event ``records[i]`` came from.
    positions: list[int] = field(default_factory=list)
    #: ``(device_id, user_id)`` of every event, as kept (for the throttle).
    ids: list[tuple[str | None, str | None]] = field(default_factory=list)


Fail = Callable[[Category, str, str], None]


# --- the request bodies --------------------------------------------------


def parse_upload(body: bytes) -> Upload:
    """The ``{"api_key", "events", "options"}`` body, or the documented 400/413."""
    if not body.strip():
        raise amplitude_error(MISSING_BODY, code="missing_body")
    try:
        payload = decode_json(body)
    except ValueError as exc:
        raise amplitude_error(INVALID_JSON, code="invalid_json", message=str(exc)) from exc
    value = payload.value
    if not isinstance(value, dict):
        raise amplitude_error(
            INVALID_JSON, code="invalid_json", message="the body must be a JSON object"
        )
    api_key = value.get("api_key")
    if not isinstance(api_key, str) or not api_key.strip():
        raise amplitude_error(MISSING_FIELD, code="missing_field", missing_field="api_key")
    events = value.get("events")
    if not isinstance(events, list) or not events:
        raise amplitude_error(MISSING_FIELD, code="missing_field", missing_field="events")
    if len(events) > MAX_EVENTS:
        raise amplitude_error(
            TOO_LARGE,
            413,
            code="payload_too_large",
            message=f"{len(events)} events; the limit per request is {MAX_EVENTS}",
        )
    return Upload(
        api_key=api_key.strip(),
        events=events,
        min_id_length=_min_id_length(value.get("options")),
        size=len(body),
        suspicious=payload.suspicious,
    )


def _min_id_length(options: Any) -> int:
    if options is None:
        return DEFAULT_MIN_ID_LENGTH
    raw = options.get("min_id_length") if isinstance(options, dict) else None
    if raw is None and isinstance(options, dict):
        return DEFAULT_MIN_ID_LENGTH
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise amplitude_error(
            INVALID_JSON,
            code="invalid_options",
            message="options must be an object whose min_id_length is a positive integer",
        )
    return raw


def parse_identification(body: bytes) -> Identification:
    """The ``api_key`` and ``identification`` form fields of ``POST /identify``.

    "identification: Either a single JSON identification object or an array
    of JSON objects"; a missing or malformed one is answered 400
    ``missing_event``.
    """
    try:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise plain_error("missing_event", code="invalid_form") from exc
    api_key = (form.get("api_key") or [""])[0].strip()
    if not api_key:
        raise plain_error("invalid_api_key", code="missing_api_key")
    raw = (form.get("identification") or [""])[0]
    if not raw.strip():
        raise plain_error("missing_event", code="missing_event")
    try:
        payload = decode_json(raw.encode("utf-8", "surrogatepass"))
    except ValueError as exc:
        raise plain_error("missing_event", code="invalid_json") from exc
    value = payload.value
    identifications = value if isinstance(value, list) else [value]
    if not identifications or not all(isinstance(i, dict) for i in identifications):
        raise plain_error("missing_event", code="invalid_identification")
    if len(identifications) > MAX_EVENTS:
        raise plain_error("too many identifications", 413, code="payload_too_large")
    return Identification(api_key, identifications, payload.suspicious)


# --- events --------------------------------------------------------------


def translate_events(upload: Upload, *, now: datetime) -> tuple[Translation, Problems]:
    """Every event -> its records; the problems of the bad ones (nothing is then stored)."""
    translation = Translation()
    problems = Problems()
    for index, event in enumerate(upload.events):
        before = len(problems.errors)

        def fail(category: Category, key: str, message: str, index: int = index) -> None:
            problems.add(category, index, key, message)

        records, ids = translate_event(
            event,
            now=now,
            min_id_length=upload.min_id_length,
            thorough=upload.suspicious,
            fail=fail,
        )
        translation.ids.append(ids)
        if len(problems.errors) > before:
            continue
        translation.records.extend(records)
        translation.positions.extend([index] * len(records))
    return translation, problems


def translate_event(
    event: Any, *, now: datetime, min_id_length: int, thorough: bool, fail: Fail
) -> tuple[list[Record], tuple[str | None, str | None]]:
    """One event -> its records and its kept ``(device_id, user_id)``; problems go to ``fail``."""
    if not isinstance(event, dict):
        fail("invalid", "event", "each event must be a JSON object")
        return [], (None, None)
    if problems := unstorable_values(event, thorough=thorough):
        for path, reason in problems:
            fail("invalid", path.split(".")[0], f"{path} {reason}")
        return [], (None, None)
    event_type = _event_type(event, fail)
    identifiers, device_id, user_id = _identifiers(
        event, min_id_length, fail, group_identify=event_type == GROUP_IDENTIFY
    )
    occurred_at = _time(event, now, fail)
    insert_id = _insert_id(event, fail)
    event_properties = _object(event, "event_properties", fail)
    user_properties = _object(event, "user_properties", fail)
    group_properties = _object(event, "group_properties", fail)
    groups = _groups(event.get("groups"), fail)
    if event_type is None or not identifiers:
        return [], (device_id, user_id)
    key = dedup_key(insert_id, device_id, user_id)
    records: list[Record] = []
    if event_type == IDENTIFY:
        updates = profile_operations(user_properties or {}, "user_properties", fail)
        records.extend(_updates(identifiers, updates or [("overwrite", {})]))
        records.extend(_memberships(identifiers, groups, {}))
    elif event_type == GROUP_IDENTIFY:
        traits = group_traits(group_properties or {}, fail)
        if not groups:
            fail("missing", "groups", "a $groupidentify names its group in groups")
        records.extend(_memberships(identifiers, groups, traits))
    else:
        records.append(
            NewActivity(
                identifiers=identifiers,
                name=event_type,
                occurred_at=occurred_at,
                source=activity_source(event),
                dialect=DIALECT,
                properties=event_properties or {},
                location=_location(event),
                value_milli=revenue_milli(event, event_properties or {}),
                context=_context(event),
                message_id=key,
            )
        )
        plain = {k: v for k, v in (user_properties or {}).items() if not k.startswith("$")}
        if plain:
            # Plain user_properties on an event are set; the operations are
            # honoured on $identify only (kept in the activity's context).
            records.extend(_updates(identifiers, [("overwrite", plain)]))
    if key is not None:
        # Each record of the event its own id (a retried $identify adds once);
        # an activity, first of its event, carries the key itself already.
        records = [
            record
            if record.message_id == key
            else replace(record, message_id=key if slot == 0 else f"{key}.{slot}")
            for slot, record in enumerate(records)
        ]
    return records, (device_id, user_id)


def dedup_key(insert_id: str | None, device_id: str | None, user_id: str | None) -> str | None:
    """The message id of an event's ``insert_id`` within its device (else its user).

    Hashed: ids of up to 1024 characters each fit the 255 of a message id,
    and no other dialect's ids (Segment ``messageId``) can collide with it.
    """
    if insert_id is None:
        return None
    scope = f"device:{device_id}" if device_id is not None else f"user:{user_id}"
    digest = hashlib.sha256(f"{scope}\x00{insert_id}".encode("utf-8", "surrogatepass"))
    return f"amplitude:{digest.hexdigest()}"


def _event_type(event: dict[str, Any], fail: Fail) -> str | None:
    raw = event.get("event_type")
    if raw is None or raw == "":
        fail("missing", "event_type", "event_type is required")
        return None
    if not isinstance(raw, str) or not raw.strip():
        fail("invalid", "event_type", "event_type must be a non-empty string")
        return None
    if len(raw) > MAX_STRING_LENGTH:
        fail("invalid", "event_type", f"event_type is longer than {MAX_STRING_LENGTH} characters")
        return None
    return raw


def _identifiers(
    event: dict[str, Any], min_id_length: int, fail: Fail, *, group_identify: bool
) -> tuple[tuple[Identifier, ...], str | None, str | None]:
    """``user_id`` -> ``identity``, ``device_id`` -> ``anonid``.

    "If an event has an ID that's too short, the ID value is dropped from
    the event. If an event has no user or device ID, the API may reject the
    upload with a 400 error."
    """
    kept: dict[str, str] = {}
    found: list[Identifier] = []
    short: list[str] = []
    for key, kind in (("user_id", IDENTITY), ("device_id", ANONID)):
        raw = event.get(key)
        if raw is None or raw == "":
            continue
        text = identifier_text(raw, "int")
        if text is None:
            fail("invalid", key, f"{key} must be a string")
            continue
        if text.strip().lower() in BLOCKED_IDS:
            fail("invalid", key, f"{key} {text!r} is one of the values Amplitude refuses")
            continue
        if len(text) > MAX_STRING_LENGTH:
            fail("invalid", key, f"{key} is longer than {MAX_STRING_LENGTH} characters")
            continue
        if len(text) < min_id_length:
            short.append(key)
            continue
        try:
            found.append(normalize_identifier(kind, text))
        except ValueError as exc:
            fail("invalid", key, f"{key} {exc}")
            continue
        kept[key] = text
    identifiers = tuple(found)
    given = any(event.get(key) not in (None, "") for key in ("user_id", "device_id"))
    if not kept and short:
        for key in short:
            fail(
                "id_length",
                key,
                f"{key} is shorter than {min_id_length} characters (options.min_id_length)"
                " and the event has no other id",
            )
    elif not given:
        # A $groupidentify: Amplitude keeps a group's own properties, eventyard
        # keeps groups as memberships of contacts, so it must name a member.
        message = (
            "eventyard keeps group properties on a member's membership: send the"
            " $groupidentify with the user_id or device_id of a member"
            if group_identify
            else "an event needs a user_id or a device_id"
        )
        for key in ("user_id", "device_id"):
            fail("missing", key, message)
    return identifiers, kept.get("device_id"), kept.get("user_id")


def _time(event: dict[str, Any], now: datetime, fail: Fail) -> datetime:
    """``time``: "The timestamp of the event in milliseconds since epoch"; absent: upload time."""
    raw = event.get("time")
    if raw is None:
        return now
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        fail("invalid", "time", "time must be an integer: milliseconds since epoch")
        return now
    try:
        # Exact for integers (no float division): the stored moment is the sent millisecond.
        moment = EPOCH + timedelta(milliseconds=raw)
    except (OverflowError, OSError, ValueError):
        fail("invalid", "time", "time is out of range (milliseconds since epoch)")
        return now
    if raw < 0:
        fail("invalid", "time", "time must not be before 1970 (milliseconds since epoch)")
    return moment


def _insert_id(event: dict[str, Any], fail: Fail) -> str | None:
    raw = event.get("insert_id")
    if raw is None or raw == "":
        return None
    text = identifier_text(raw, "int")
    if text is None:
        fail("invalid", "insert_id", "insert_id must be a string")
        return None
    if len(text) > MAX_STRING_LENGTH:
        fail("invalid", "insert_id", f"insert_id is longer than {MAX_STRING_LENGTH} characters")
        return None
    return text


def _object(event: dict[str, Any], key: str, fail: Fail) -> dict[str, Any] | None:
    value = event.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        fail("invalid", key, f"{key} must be an object")
        return None
    return value


def _groups(raw: Any, fail: Fail) -> list[tuple[str, str]]:
    """``groups``: ``{type: value or [values]}`` as ``(type, value)`` pairs."""
    if raw is None:
        return []
    if not isinstance(raw, dict):
        fail("invalid", "groups", "groups must be an object of group type to group name(s)")
        return []
    if len(raw) > MAX_GROUP_TYPES:
        fail("invalid", "groups", f"at most {MAX_GROUP_TYPES} group types per event")
        return []
    pairs: list[tuple[str, str]] = []
    for group_type, value in raw.items():
        values = value if isinstance(value, list) else [value]
        if len(values) > MAX_GROUP_VALUES:
            fail("invalid", "groups", f"at most {MAX_GROUP_VALUES} values per group type")
            return []
        for item in values:
            name = identifier_text(item, "int_or_float")
            if name is None or not name.strip():
                fail("invalid", "groups", f"groups.{group_type} must be a name or a list of names")
                return []
            group_id = f"{group_type}:{name}"
            if len(group_id) > MAX_GROUP_ID_LENGTH:
                fail("invalid", "groups", f"groups.{group_type} is too long")
                return []
            pairs.append((group_type, name))
    return pairs


def profile_operations(
    properties: dict[str, Any], where: str, fail: Fail
) -> list[tuple[MergeStrategy, dict[str, Any]]]:
    """``user_properties`` -> ``(strategy, attributes)`` in the order they are applied.

    identify.md: operations may not be mixed with plain properties ("put
    plain keys under $set"); a body of plain keys alone is a ``$set``.
    ``$clearAll`` is refused: a contact's attributes are shared with the
    other dialects, and clearing them all would erase what those sent.
    """
    operations = {k: v for k, v in properties.items() if k.startswith("$")}
    plain = {k: v for k, v in properties.items() if not k.startswith("$")}
    if operations and plain:
        fail(
            "invalid",
            where,
            f"{where} mixes operations ({', '.join(operations)}) with plain properties;"
            " put the plain ones under $set",
        )
        return []
    if not operations:
        return [("overwrite", plain)] if plain else []
    updates: list[tuple[MergeStrategy, dict[str, Any]]] = []
    for name in operations:
        if name == CLEAR_ALL:
            fail(
                "invalid",
                where,
                f"{where}.$clearAll is refused: the contact's attributes are shared with the"
                " other dialects; $unset the properties to remove instead",
            )
        elif name not in OPERATIONS:
            fail("invalid", where, f"{where}.{name} is not a user property operation")
        elif not isinstance(operations[name], dict):
            fail("invalid", where, f"{where}.{name} must be an object of property to value")
    for name, strategy in OPERATIONS.items():
        value = operations.get(name)
        if isinstance(value, dict) and value:
            updates.append((strategy, value))
    return updates


def group_traits(properties: dict[str, Any], fail: Fail) -> dict[str, Any]:
    """``group_properties`` -> the traits merged into each membership.

    A membership's traits are merged key by key (each key replaces the
    stored one): ``$set``, ``$setOnce`` and plain keys are set, ``$unset``
    sets null; the list and number operations cannot be applied to traits
    and are refused.
    """
    traits: dict[str, Any] = {}
    for strategy, values in profile_operations(properties, "group_properties", fail):
        if strategy in ("overwrite", "fill_empty"):
            traits.update(values)
        elif strategy == "unset":
            traits.update(dict.fromkeys(values))
        else:
            fail(
                "invalid",
                "group_properties",
                "group_properties supports $set, $setOnce and $unset in eventyard",
            )
    return traits


def _updates(
    identifiers: tuple[Identifier, ...], updates: list[tuple[MergeStrategy, dict[str, Any]]]
) -> list[Record]:
    return [
        ProfileUpdate(identifiers=identifiers, attributes=attributes, dialect=DIALECT, strategy=s)
        for s, attributes in updates
    ]


def _memberships(
    identifiers: tuple[Identifier, ...], groups: list[tuple[str, str]], traits: dict[str, Any]
) -> list[Record]:
    return [
        GroupMembership(
            identifiers=identifiers,
            group_id=f"{group_type}:{name}",
            traits={"group_type": group_type, "group_name": name, **traits},
            dialect=DIALECT,
        )
        for group_type, name in groups
    ]


def activity_source(event: dict[str, Any]) -> str:
    """The library's name (``amplitude-python`` of ``amplitude-python/1.3.0``), else ``api``."""
    library = event.get("library")
    if isinstance(library, str) and library.strip():
        return library.split("/")[0].strip()[:MAX_SOURCE_LENGTH] or DEFAULT_SOURCE
    return DEFAULT_SOURCE


def _location(event: dict[str, Any]) -> dict[str, Any] | None:
    location = {key: event[key] for key in LOCATION_FIELDS if event.get(key) is not None}
    return location or None


def _context(event: dict[str, Any]) -> dict[str, Any]:
    """Everything of the event but its type and properties, as sent."""
    return {k: v for k, v in event.items() if k not in ("event_type", "event_properties")}


def revenue_milli(event: dict[str, Any], properties: dict[str, Any]) -> int | None:
    """The event's revenue in thousandths: ``revenue``, else ``price`` x ``quantity``.

    "revenue = price x quantity when all three sent"; the Python SDK's
    ``revenue()`` sends ``$revenue``, ``$price`` and ``$quantity`` in
    ``event_properties`` instead, read the same way.
    """
    for prefix, source in (("", event), ("$", properties)):
        if f"{prefix}price" not in source and f"{prefix}revenue" not in source:
            continue
        revenue = _number(source.get(f"{prefix}revenue"))
        price = _number(source.get(f"{prefix}price"))
        quantity = _number(source.get(f"{prefix}quantity"))
        amount = None
        if price is not None:
            amount = price * (quantity if quantity is not None else Decimal(1))
        elif revenue is not None:
            amount = revenue
        if amount is not None:
            try:
                return int((amount * 1000).to_integral_value())
            except (InvalidOperation, OverflowError):
                return None
    return None


def _number(raw: Any) -> Decimal | None:
    if raw is None or isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    if isinstance(raw, float) and not math.isfinite(raw):
        return None
    return Decimal(raw) if isinstance(raw, int) else Decimal(repr(raw))


# --- identifications ---------------------------------------------------------


def translate_identifications(
    parsed: Identification,
) -> tuple[Translation, Problems]:
    """Every identification -> its profile updates and memberships (``/identify``)."""
    translation = Translation()
    problems = Problems()
    for index, identification in enumerate(parsed.identifications):
        before = len(problems.errors)

        def fail(category: Category, key: str, message: str, index: int = index) -> None:
            problems.add(category, index, key, message)

        if unstorable := unstorable_values(identification, thorough=parsed.suspicious):
            for path, reason in unstorable:
                fail("invalid", path.split(".")[0], f"{path} {reason}")
            continue
        identifiers, device_id, user_id = _identifiers(
            identification, DEFAULT_MIN_ID_LENGTH, fail, group_identify=False
        )
        properties = _object(identification, "user_properties", fail) or {}
        updates = profile_operations(properties, "user_properties", fail)
        fields = {
            key: identification[key]
            for key in IDENTIFY_USER_FIELDS
            if identification.get(key) is not None
        }
        if fields:
            updates.insert(0, ("overwrite", fields))
        groups = _groups(identification.get("groups"), fail)
        translation.ids.append((device_id, user_id))
        if len(problems.errors) > before or not identifiers:
            continue
        records = [
            *_updates(identifiers, updates or [("overwrite", {})]),
            *_memberships(identifiers, groups, {}),
        ]
        translation.records.extend(records)
        translation.positions.extend([index] * len(records))
    return translation, problems


def success_body(events: int, size: int, now: datetime) -> bytes:
    """200: ``{"code": 200, "events_ingested": 50, "payload_size_bytes": 50,
    "server_upload_time": 1396381378123}``."""
    return orjson.dumps(
        {
            "code": 200,
            "events_ingested": events,
            "payload_size_bytes": size,
            "server_upload_time": int(now.timestamp() * 1000),
        }
    )
