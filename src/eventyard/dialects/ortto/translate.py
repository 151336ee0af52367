"""Ortto ``activities/create`` bodies -> canonical activities and profile updates.

Spec: ``shared/specs/ortto-activities-create.txt``. Decisions the spec leaves
open are written down in ``docs/dialects/ortto.md``. Nothing here does I/O:
the route hands the parsed body in and renders what comes out.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from eventyard.core.definitions import check_activity_id, field_type
from eventyard.core.identifiers import (
    EMAIL,
    MOBILE,
    Identifier,
    canonical_kind,
    normalize_identifier,
)
from eventyard.core.ids import is_id
from eventyard.core.model import (
    ContactHint,
    IngestRules,
    MergeStrategy,
    NewActivity,
    ProfileUpdate,
    RecordRejection,
    RecordsOutcome,
)
from eventyard.core.payload import unstorable_values
from eventyard.dialects.toolkit.records import RecordError
from eventyard.dialects.toolkit.timestamps import (
    NotADateTime,
    NoTimeZone,
    OutOfRange,
    parse_iso_datetime,
)

DIALECT = "ortto"
SOURCE = "api"
#: "Max activities per request | 100"
MAX_ACTIVITIES = 100
#: "Max payload size | 2 MB"
MAX_BODY_BYTES = 2 * 1024 * 1024
#: "Max activity events per activity per contact per 24 hours | 50"
DAILY_LIMIT = 50
RULES = IngestRules(require_definitions=True, daily_limit=DAILY_LIMIT)
#: "Activities up to 90 days old (or your retention period) process
#: immediately. Activities older than 90 days are queued".
IMMEDIATE_WINDOW = timedelta(days=90)
#: Clock skew allowed to ``created``; later timestamps are refused.
MAX_FUTURE = timedelta(hours=1)
#: "Field IDs to match existing contacts (max 2)"
MAX_MERGE_BY = 2
MAX_KEY_LENGTH = 255

#: "merge_strategy ... 1 (append only), 2 (overwrite), 3 (ignore existing)"
STRATEGIES: dict[int, MergeStrategy] = {1: "fill_empty", 2: "overwrite", 3: "create_only"}

#: "int::v | Conversion value (currency x 1000)"
CONVERSION_VALUE = "int::v"
#: Person fields that are identifiers of the contact, and their kinds.
IDENTIFIER_FIELDS = {"str::email": EMAIL, "str::phone": MOBILE}
ACTIVITY_KEYS = frozenset(
    {
        "activity_id",
        "attributes",
        "person_id",
        "fields",
        "merge_by",
        "created",
        "key",
        "location",
        "merge_strategy",
    }
)
BODY_KEYS = frozenset({"activities", "async"})
#: The three location methods of the spec and the keys each allows.
LOCATION_KEYS = {
    "source_ip": None,
    "custom": frozenset(
        {
            "name",
            "region",
            "country",
            "country_code",
            "latitude",
            "longitude",
            "timezone",
        }
    ),
    "address": frozenset(
        {"address1", "address2", "city", "region", "country", "country_code", "postal_code"}
    ),
}
#: Largest integer a 64-bit column holds: conversion values are stored exactly.
MAX_INT = 2**63 - 1
#: The type of a field id. Ids repeat from activity to activity and request
#: to request, so each is checked once (a refused id raises, and is not kept).
_field_type = lru_cache(maxsize=4096)(field_type)


class ActivityError(Exception):
    """One problem with one activity; ``path`` names the field.

    Ortto answers one error per activity: the first problem found stops
    the activity's translation, and :func:`translate` reports it as the
    activity's :class:`RecordError`.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid activity: its records and whether it waits for the worker."""

    index: int
    activity_id: str
    records: tuple[NewActivity | ProfileUpdate, ...]
    queued: bool
    person_id: str | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    index: int
    activity_id: str | None
    message: str


@dataclass
class Translation:
    """The body's activities, in order, each either accepted or refused."""

    run_async: bool
    items: list[Accepted | Refused] = field(default_factory=list)

    def accepted(self, *, queued: bool) -> list[Accepted]:
        return [i for i in self.items if isinstance(i, Accepted) and i.queued is queued]


def activities_of(payload: Any) -> tuple[list[Any], bool]:
    """The ``activities`` and ``async`` of a body, or a 400-worthy ``ValueError``."""
    if not isinstance(payload, dict):
        raise ValueError('The body must be a JSON object with an "activities" array')
    unknown = sorted(set(payload) - BODY_KEYS)
    if unknown:
        raise ValueError(f"Unknown body element {unknown[0]!r}; allowed: activities, async")
    activities = payload.get("activities")
    if not isinstance(activities, list):
        raise ValueError('"activities" is required and must be an array')
    if not activities:
        raise ValueError('"activities" must hold at least one activity')
    if len(activities) > MAX_ACTIVITIES:
        raise ValueError(
            f'"activities" holds {len(activities)} activities; at most {MAX_ACTIVITIES} '
            "are allowed per request"
        )
    run_async = payload.get("async", False)
    if not isinstance(run_async, bool):
        raise ValueError('"async" must be true or false')
    return activities, run_async


def translate(
    activities: Sequence[Any],
    *,
    run_async: bool,
    now: datetime,
    default_strategy: MergeStrategy,
    retention: timedelta,
    check_unstorable: bool = False,
) -> Translation:
    translation = Translation(run_async=run_async)
    for index, raw in enumerate(activities):
        activity_id = raw.get("activity_id") if isinstance(raw, dict) else None
        label = activity_id if isinstance(activity_id, str) else None
        try:
            accepted = translate_activity(
                index,
                raw,
                run_async=run_async,
                now=now,
                default_strategy=default_strategy,
                retention=retention,
                check_unstorable=check_unstorable,
            )
        except ActivityError as exc:
            problem = RecordError(index, exc.path, exc.reason)
            translation.items.append(Refused(index, label, refusal_message(problem)))
            continue
        translation.items.append(accepted)
    return translation


def refusal_message(problem: RecordError) -> str:
    """``activities[3].attributes.int::v: must be an integer``: how Ortto names a problem."""
    return f"activities[{problem.index}].{problem.field}: {problem.message}"


def translate_activity(
    index: int,
    raw: Any,
    *,
    run_async: bool,
    now: datetime,
    default_strategy: MergeStrategy,
    retention: timedelta,
    check_unstorable: bool,
) -> Accepted:
    if not isinstance(raw, dict):
        raise ActivityError("activity", "must be a JSON object")
    unknown = sorted(set(raw) - ACTIVITY_KEYS)
    if unknown:
        raise ActivityError(unknown[0], "is not an element of an activity")
    # Always: nesting deeper than the store writes back (an ``obj`` value) and
    # invalid Unicode; when the body may hold them, also U+0000 and integers
    # beyond 64 bits. As on the other dialects, a 500 at commit time otherwise.
    problems = unstorable_values(raw, thorough=check_unstorable)
    if problems:
        path, reason = problems[0]
        raise ActivityError("activity" if path == "record" else path, reason)

    activity_id = raw.get("activity_id")
    if activity_id is None:
        raise ActivityError("activity_id", "is required (for example act:cm:product-purchase)")
    try:
        activity_id = check_activity_id(activity_id)
    except ValueError as exc:
        raise ActivityError("activity_id", str(exc)) from exc
    attributes = raw.get("attributes")
    if not isinstance(attributes, dict):
        raise ActivityError("attributes", "is required and must be an object")
    for field_id, value in attributes.items():
        check_typed_value(f"attributes.{field_id}", field_id, value)
    value_milli = attributes.get(CONVERSION_VALUE)

    occurred_at = now
    created = raw.get("created")
    if created is not None:
        occurred_at = parse_created(created, now, retention)
    dedup_key = None
    key = raw.get("key")
    if key is not None:
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
            raise ActivityError("key", f"must be a string of 1 to {MAX_KEY_LENGTH} characters")
        # "Combined with created to create unique identifier for duplicate
        # prevention": the same key and created are one activity.
        moment = occurred_at.isoformat() if created is not None else ""
        digest = hashlib.sha256(f"{key}\0{moment}".encode()).hexdigest()
        dedup_key = f"ortto:{digest}"
    location = raw.get("location")
    if location is not None:
        check_location(location)

    identifiers: tuple[Identifier, ...] = ()
    hint: ContactHint | None = None
    profile: ProfileUpdate | None = None
    person_id = raw.get("person_id")
    if person_id is not None:
        # "If provided, ignores fields and merge_by."
        if not isinstance(person_id, str) or not is_id(person_id):
            raise ActivityError("person_id", "must be a 24-character person id")
        hint = ContactHint(person_id)
    else:
        identifiers, profile = person_of(raw, default_strategy)

    activity = NewActivity(
        identifiers=identifiers,
        name=activity_id,
        occurred_at=occurred_at,
        source=SOURCE,
        dialect=DIALECT,
        properties=dict(attributes),
        dedup_key=dedup_key,
        contact_hint=hint,
        location=location,
        value_milli=value_milli,
    )
    records = (activity,) if profile is None else (profile, activity)
    queued = run_async or occurred_at < now - IMMEDIATE_WINDOW
    return Accepted(index, activity_id, records, queued, person_id)


def person_of(
    raw: dict[str, Any], default_strategy: MergeStrategy
) -> tuple[tuple[Identifier, ...], ProfileUpdate | None]:
    """The contact an activity names through ``fields`` and ``merge_by``."""
    fields = raw.get("fields")
    if not isinstance(fields, dict) or not fields:
        raise ActivityError("fields", "is required when person_id is not given")
    merge_by = raw.get("merge_by")
    if not isinstance(merge_by, list) or not 1 <= len(merge_by) <= MAX_MERGE_BY:
        raise ActivityError(
            "merge_by", f"is required when person_id is not given: 1 or {MAX_MERGE_BY} field ids"
        )
    if len(set(map(str, merge_by))) != len(merge_by):
        raise ActivityError("merge_by", "names the same field twice")
    for field_id, value in fields.items():
        check_typed_value(f"fields.{field_id}", field_id, value)

    identifiers: dict[Identifier, None] = {}
    for position, field_id in enumerate(merge_by):
        path = f"merge_by[{position}]"
        if not isinstance(field_id, str) or field_id not in fields:
            raise ActivityError(path, f"{field_id!r} must be one of the ids in fields")
        # The kind first: "bol::p": true is not an empty merge field but one
        # that cannot identify anybody.
        kind_of(path, field_id)
        value = fields[field_id]
        if not isinstance(value, str) or not value.strip():
            raise ActivityError(f"fields.{field_id}", "is a merge_by field and must not be empty")
        identifiers[identifier_of(path, field_id, value)] = None
    attributes: dict[str, Any] = {}
    for field_id, value in fields.items():
        if field_id in IDENTIFIER_FIELDS:
            if isinstance(value, str) and value.strip():
                identifiers[identifier_of(f"fields.{field_id}", field_id, value)] = None
            continue
        attributes[field_id] = value

    strategy = default_strategy
    raw_strategy = raw.get("merge_strategy")
    if raw_strategy is not None:
        # type() first: a list or object is unhashable, and 1.0 or true would match 1.
        if type(raw_strategy) is not int or raw_strategy not in STRATEGIES:
            raise ActivityError(
                "merge_strategy", "must be 1 (append only), 2 (overwrite) or 3 (ignore existing)"
            )
        strategy = STRATEGIES[raw_strategy]
    ids = tuple(identifiers)
    profile = ProfileUpdate(ids, attributes, DIALECT, strategy=strategy) if attributes else None
    return ids, profile


def identifier_of(path: str, field_id: str, value: str) -> Identifier:
    """The identifier a person field stands for: e-mail, phone, or a custom string id."""
    kind = kind_of(path, field_id)
    try:
        return normalize_identifier(kind, value)
    except ValueError as exc:
        raise ActivityError(f"fields.{field_id}", str(exc)) from exc


def kind_of(path: str, field_id: str) -> str:
    """The identifier kind of a person field that may identify a contact."""
    kind = IDENTIFIER_FIELDS.get(field_id)
    if kind is not None:
        return kind
    if not field_id.startswith("str:cm:"):
        raise ActivityError(
            path,
            f"{field_id!r} cannot identify a contact: use str::email, str::phone or a "
            "custom text field str:cm:<name>",
        )
    return custom_kind(field_id.removeprefix("str:cm:"))


def custom_kind(name: str) -> str:
    """The identifier kind of a custom merge field: ``str:cm:customer-id`` -> ``customer_id``.

    A name that spells a well-known kind in another case is that kind
    (``str:cm:custid`` -> ``custID``): the read API and ``primary_kinds``
    match well-known kinds in any case, so ``custid`` could never be found.
    """
    kind = name.replace("-", "_")
    if not kind[0].isalpha() or len(kind) > 40:
        raise ActivityError(
            "merge_by", f"custom field {name!r} must start with a letter and be at most 40 long"
        )
    return canonical_kind(kind)


def check_typed_value(path: str, field_id: Any, value: Any) -> None:
    """A ``type:namespace:field`` id and a value of its type (``null`` is always allowed)."""
    try:
        kind = _field_type(field_id)
    except ValueError as exc:
        raise ActivityError(path, f"is not a valid field id: it {exc}") from exc
    if value is None:
        # "Set to null - Excludes field from searches": kept, as null.
        return
    if kind == "str" and not isinstance(value, str):
        raise ActivityError(path, "must be a string")
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ActivityError(path, "must be an integer")
        if not -MAX_INT <= value <= MAX_INT:
            raise ActivityError(path, "is too large")
    if kind == "bol" and not isinstance(value, bool):
        raise ActivityError(path, "must be true or false")
    if kind == "dtz":
        if not isinstance(value, str):
            raise ActivityError(path, "must be an ISO 8601 date-time string")
        try:
            parse_iso(value)
        except ValueError as exc:
            raise ActivityError(path, str(exc)) from exc
    if kind == "obj" and not isinstance(value, dict):
        raise ActivityError(path, "must be a JSON object")


def parse_iso(text: str) -> datetime:
    """An ISO 8601 date-time with a time zone (``Z`` or an offset), as UTC."""
    try:
        return parse_iso_datetime(text, naive="refuse")
    except NotADateTime:
        raise ValueError(f"{text!r} is not an ISO 8601 date-time") from None
    except NoTimeZone:
        raise ValueError(f"{text!r} needs a time zone (Z or +hh:mm)") from None
    except OutOfRange:
        raise ValueError(f"{text!r} is out of range") from None


def parse_created(created: Any, now: datetime, retention: timedelta) -> datetime:
    if not isinstance(created, str):
        raise ActivityError("created", "must be an ISO 8601 date-time string")
    try:
        moment = parse_iso(created)
    except ValueError as exc:
        raise ActivityError("created", str(exc)) from exc
    if moment > now + MAX_FUTURE:
        raise ActivityError("created", f"{created} is in the future")
    if moment < now - retention:
        raise ActivityError(
            "created", f"{created} is older than the account's retention of {retention.days} days"
        )
    return moment


def check_location(location: Any) -> None:
    """``location``: ``source_ip``, ``custom`` or ``address``, as the spec lists them."""
    if not isinstance(location, dict) or not location:
        raise ActivityError("location", "must be an object with source_ip, custom or address")
    for method, value in location.items():
        if method not in LOCATION_KEYS:
            raise ActivityError(
                f"location.{method}", "is not a location method (source_ip, custom, address)"
            )
        path = f"location.{method}"
        if method == "source_ip":
            try:
                ipaddress.ip_address(value if isinstance(value, str) else "")
            except ValueError:
                raise ActivityError(path, "must be an IPv4 or IPv6 address") from None
            continue
        if not isinstance(value, dict):
            raise ActivityError(path, "must be an object")
        for key, part in value.items():
            if key not in LOCATION_KEYS[method]:  # type: ignore[operator]
                raise ActivityError(f"{path}.{key}", f"is not a key of {method}")
            if key in ("latitude", "longitude"):
                limit = 90 if key == "latitude" else 180
                if (
                    isinstance(part, bool)
                    or not isinstance(part, int | float)
                    or not math.isfinite(part)
                    or abs(part) > limit
                ):
                    raise ActivityError(
                        f"{path}.{key}", f"must be a number from -{limit} to {limit}"
                    )
            elif not isinstance(part, str):
                raise ActivityError(f"{path}.{key}", "must be a string")


@dataclass(frozen=True, slots=True)
class Flattened:
    """The records of accepted activities, with their groups and labels."""

    records: list[NewActivity | ProfileUpdate]
    groups: list[int]
    labels: list[str]


def flatten(accepted: Sequence[Accepted]) -> Flattened:
    records: list[NewActivity | ProfileUpdate] = []
    groups: list[int] = []
    labels: list[str] = []
    for item in accepted:
        for record in item.records:
            records.append(record)
            groups.append(item.index)
            labels.append(f"activities[{item.index}]")
    return Flattened(records, groups, labels)


def rejection_message(index: int, rejection: RecordRejection) -> str:
    return f"activities[{index}]: {rejection.message}"


def response_body(
    translation: Translation, stored: Flattened, outcome: RecordsOutcome | None
) -> tuple[int, dict[str, Any]]:
    """The status and body of the answer: one entry per activity, in request order.

    Stored activities say ``ingested`` and whether their person was
    ``created`` or ``updated``; queued ones say ``queued``; refused ones
    carry an ``error``. The status is 200 when at least one activity was
    accepted, else 400.
    """
    rejected = {r.index: r for r in outcome.rejected} if outcome is not None else {}
    # The activity of each stored item is its group's last record.
    position_of = {group: position for position, group in enumerate(stored.groups)}
    seen_contacts: set[str] = set()
    entries: list[dict[str, Any]] = []
    accepted_any = False
    for item in translation.items:
        if isinstance(item, Refused):
            entry: dict[str, Any] = {"error": item.message}
            if item.activity_id is not None:
                entry = {"activity_id": item.activity_id, **entry}
            entries.append(entry)
            continue
        if item.queued:
            accepted_any = True
            entry = {"status": "queued", "person_status": "queued", "activity_id": item.activity_id}
            if item.person_id is not None:
                entry = {"person_id": item.person_id, **entry}
            entries.append(entry)
            continue
        assert outcome is not None
        position = position_of[item.index]
        if position in rejected:
            entries.append(
                {
                    "activity_id": item.activity_id,
                    "error": rejection_message(item.index, rejected[position]),
                }
            )
            continue
        accepted_any = True
        contact_id = outcome.contact_ids[position]
        assert contact_id is not None
        created = contact_id in outcome.created_contacts and contact_id not in seen_contacts
        seen_contacts.add(contact_id)
        entries.append(
            {
                "person_id": contact_id,
                "status": "ingested",
                "person_status": "created" if created else "updated",
                "activity_id": item.activity_id,
            }
        )
    body: dict[str, Any] = {"activities": entries}
    if accepted_any:
        return 200, body
    return 400, {
        **body,
        "error": "No activity was accepted; see each activity's error",
        "code": 400,
    }
