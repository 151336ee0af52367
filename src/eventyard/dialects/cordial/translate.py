"""Cordial contact activities <-> the canonical model.

Pure functions: the routes authenticate and read the request, these decide
what it means. Every rule quotes the spec
(``shared/specs/cordial-contactactivities.txt``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from eventyard.core.activity_query import ActivityQuery, TimeBound, decode_query_token
from eventyard.core.identifiers import Identifier, normalize_identifier
from eventyard.core.model import Activity, ContactHint, IngestRules, NewActivity
from eventyard.core.payload import unstorable_values
from eventyard.dialects.cordial.errors import (
    INCORRECT_ACTION_NAME,
    INVALID_PAYLOAD,
    TOO_MANY_PARAMS,
    VALIDATION_ERROR,
    cordial_error,
)
from eventyard.dialects.toolkit.basic_auth import decode_basic, split_authorization
from eventyard.dialects.toolkit.identifiers import identifier_text
from eventyard.dialects.toolkit.timestamps import (
    NotADateTime,
    OutOfRange,
    format_utc,
    parse_iso_datetime,
)

DIALECT = "cordial"
#: "The maximum length of the parameter is 40 characters."
MAX_ACTION_LENGTH = 40
#: "Reserved actions cannot be added via the POST method."
RESERVED_ACTIONS = frozenset(
    {"message-sent", "open", "click", "optout", "bounce", "complaint", "pageview",
     "message-stopped"}
)  # fmt: skip
#: "Six is the maximum number of parameters allowed for the payload."
MAX_PARAMS = 6
#: "The default maximum number of properties an event can have is 1,000."
MAX_PROPERTIES = 1000
#: "The default is 25." / "can retrieve up to 10,000 records at a time."
DEFAULT_PER_PAGE = 25
MAX_PER_PAGE = 10_000
#: Identifier keys every account accepts; an account adds its primary kinds.
CONTACT_KEYS = ("email", "custID", "cID")
#: A type is recognised per property and action (spec: "its data type ... will
#: be recognized and searchable").
RULES = IngestRules(recognize_types=True)
MAX_BODY_BYTES = 1024 * 1024

_STRIPPED_KEY = re.compile(r"\A\d+\Z")
_DATE = re.compile(r"\A\d{4}-\d{2}-\d{2}\Z")
_TIME_PARAMS = {
    "time": "eq",
    "time[lt]": "lt",
    "time[gt]": "gt",
    "time[lte]": "lte",
    "time[gte]": "gte",
    "time[between][start]": "gte",
    "time[between][end]": "lte",
}
_LISTING_PARAMS = {"action", "sort_by", "sort_dir", "page", "per_page", "return_count"}
PAGING_TOKEN = "__paging_token"  # noqa: S105 (a parameter name, not a secret)


# --- authentication -------------------------------------------------------


def api_key_from_authorization(header: str | None) -> str | None:
    """The API key of an ``Authorization: Basic …`` header, or ``None``.

    The key is the user name with an empty password (``key:``), or the whole
    decoded credential when it has no colon (Cordial's "encoded API key").
    A password, bad base64 or text that is not UTF-8 gives ``None``.
    """
    authorization = split_authorization(header)
    if authorization is None or authorization.scheme != "basic" or not authorization.credential:
        return None
    try:
        basic = decode_basic(authorization.credential)
    except ValueError:
        return None
    if basic.password:
        return None
    key = basic.user.strip()
    return key or None


# --- POST /v2/contactactivities ------------------------------------------


@dataclass(frozen=True, slots=True)
class Translation:
    activity: NewActivity
    #: Property keys dropped by the spec's rule, in the order sent.
    stripped: list[str]


def contact_keys(primary_kinds: Iterable[str]) -> tuple[str, ...]:
    """The identifier keys an account accepts: the defaults and its primary kinds."""
    return tuple(dict.fromkeys((*CONTACT_KEYS, *primary_kinds)))


def translate_activity(
    payload: Any,
    *,
    keys: Sequence[str],
    now: datetime,
    check_unstorable: bool = False,
) -> Translation:
    """The canonical activity of one POST body, or the Cordial error that refuses it."""
    if not isinstance(payload, dict) or not payload:
        raise cordial_error(INVALID_PAYLOAD, "the body must be a non-empty JSON object")
    if len(payload) > MAX_PARAMS:
        raise cordial_error(
            TOO_MANY_PARAMS,
            f"the body has {len(payload)} top-level parameters; at most {MAX_PARAMS} are"
            f" allowed ({', '.join(sorted(payload))})",
        )
    allowed = {"a", "ats", "properties", *keys}
    for name in payload:
        if name not in allowed:
            raise cordial_error(
                VALIDATION_ERROR,
                f"unknown parameter {name!r}; send a, ats, properties and a contact"
                f" identifier ({', '.join(keys)})",
                name,
            )
    action = _action(payload.get("a"))
    identifiers, hint = _identifiers(payload, keys)
    occurred_at = _timestamp(payload.get("ats"), now)
    properties, stripped = _properties(payload.get("properties"))
    if problems := unstorable_values(properties, thorough=check_unstorable):
        path, reason = problems[0]
        field = "properties" if path == "record" else f"properties.{path}"
        raise cordial_error(VALIDATION_ERROR, f"{field} {reason}", field)
    activity = NewActivity(
        identifiers=identifiers,
        name=action,
        occurred_at=occurred_at,
        source="api",
        dialect=DIALECT,
        properties=properties,
        contact_hint=hint,
    )
    return Translation(activity=activity, stripped=stripped)


def _action(value: Any) -> str:
    if value is None:
        raise cordial_error(VALIDATION_ERROR, "a is required (the action name)", "a")
    if not isinstance(value, str) or not value.strip():
        raise cordial_error(VALIDATION_ERROR, "a must be a non-empty string", "a")
    if len(value) > MAX_ACTION_LENGTH:
        raise cordial_error(
            VALIDATION_ERROR,
            f"a is {len(value)} characters long; the maximum is {MAX_ACTION_LENGTH}",
            "a",
        )
    if value.strip().lower() in RESERVED_ACTIONS:
        raise cordial_error(
            INCORRECT_ACTION_NAME,
            f"{value!r} is a reserved action; reserved actions cannot be added via POST",
            "a",
        )
    return value


def _identifiers(
    payload: dict[str, Any], keys: Sequence[str]
) -> tuple[tuple[Identifier, ...], ContactHint | None]:
    identifiers: list[Identifier] = []
    hint = None
    for key in keys:
        if key not in payload:
            continue
        text = identifier_text(payload[key], "int")
        if text is None:
            raise cordial_error(VALIDATION_ERROR, f"{key} must be a string", key)
        try:
            identifier = normalize_identifier(key, text)
        except ValueError as exc:
            raise cordial_error(VALIDATION_ERROR, f"{key} {exc}", key) from exc
        if key == "cID":
            # eventyard's own contact id; a cID it never issued is kept as an
            # identifier of kind cID (a contact id from another system).
            hint = ContactHint(contact_id=identifier.value, fallback=identifier)
        else:
            identifiers.append(identifier)
    if not identifiers and hint is None:
        raise cordial_error(
            VALIDATION_ERROR,
            f"a contact identifier is required: one of {', '.join(keys)}",
            "email",
        )
    return tuple(identifiers), hint


def _timestamp(value: Any, now: datetime) -> datetime:
    """``ats``: "If undefined, the current date and time will be used".

    Any past date is accepted (the spec's own example is older than 18
    months); activities older than the account's retention are removed by
    the next purge, as Cordial's "systematically purged" data is.
    """
    if value is None:
        return now
    if not isinstance(value, str):
        raise cordial_error(VALIDATION_ERROR, "ats must be an ISO 8601 date string", "ats")
    try:
        return parse_moment(value)[0]
    except ValueError as exc:
        raise cordial_error(VALIDATION_ERROR, f"ats {exc}", "ats") from exc


def _properties(value: Any) -> tuple[dict[str, Any], list[str]]:
    if value is None:
        return {}, []
    if not isinstance(value, dict):
        raise cordial_error(VALIDATION_ERROR, "properties must be an object", "properties")
    if len(value) > MAX_PROPERTIES:
        raise cordial_error(
            VALIDATION_ERROR,
            f"properties has {len(value)} keys; an event can have at most {MAX_PROPERTIES}",
            "properties",
        )
    kept: dict[str, Any] = {}
    stripped: list[str] = []
    for key, item in value.items():
        # "Property keys consisting of numeric-only values (e.g. 57) or keys
        # containing a period, like shoes.color, will be stripped."
        if _STRIPPED_KEY.match(key) or "." in key:
            stripped.append(key)
        else:
            kept[key] = item
    return kept, stripped


def parse_moment(text: str) -> tuple[datetime, bool]:
    """An ISO 8601 date or date-time (``2025-01-09 17:47:43`` too) in UTC.

    Returns the moment and whether the text was a date only (midnight UTC).
    A date-time without an offset is UTC.
    """
    text = text.strip()
    if _DATE.match(text):
        try:
            day = date.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"{text!r} is not a valid date") from exc
        return datetime.combine(day, time(), UTC), True
    try:
        return parse_iso_datetime(text, lower_z=True), False
    except NotADateTime as exc:
        raise ValueError(
            f"{text!r} is not an ISO 8601 date-time (e.g. 2025-01-09 17:47:43)"
        ) from exc
    except OutOfRange as exc:
        raise ValueError(f"{text!r} is out of range") from exc


# --- GET /v2/contactactivities -------------------------------------------


@dataclass(frozen=True, slots=True)
class Listing:
    query: ActivityQuery
    per_page: int
    return_count: bool
    #: True when only the count was asked for (``return_count=true`` alone).
    count_only: bool


def parse_listing(params: Sequence[tuple[str, str]], keys: Sequence[str]) -> Listing:
    """The query of a GET's parameters, or a Cordial validation error naming the one at fault."""
    seen: dict[str, list[str]] = {}
    for name, value in params:
        seen.setdefault(name, []).append(value)
    for name in seen:
        known = name in _TIME_PARAMS or name in _LISTING_PARAMS or name in keys
        if not known and name != PAGING_TOKEN:
            raise cordial_error(
                VALIDATION_ERROR,
                f"unknown query parameter {name!r}; filters are time[lt|gt|lte|gte],"
                f" time[between][start|end], action, {', '.join(keys)}",
                name,
            )
        if name != "action" and len(seen[name]) > 1:
            raise cordial_error(VALIDATION_ERROR, f"{name} is given more than once", name)

    def one(name: str) -> str | None:
        values = seen.get(name)
        return values[0] if values else None

    per_page = _whole(one("per_page"), "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
    page = _whole(one("page"), "page", 1, 1, 10**9)
    return_count = _boolean(one("return_count"), "return_count")
    token = one(PAGING_TOKEN)
    count_only = return_count and not ({"per_page", "page", PAGING_TOKEN} & seen.keys())
    if token is not None:
        try:
            query = decode_query_token(token)
        except ValueError as exc:
            raise cordial_error(VALIDATION_ERROR, f"{PAGING_TOKEN} {exc}", PAGING_TOKEN) from exc
        return Listing(query, per_page, return_count, count_only)

    sort_by = one("sort_by")
    if sort_by is not None and sort_by != "ats":
        raise cordial_error(VALIDATION_ERROR, "sort_by can only be ats", "sort_by")
    sort_dir = (one("sort_dir") or "desc").lower()
    if sort_dir not in ("asc", "desc"):
        raise cordial_error(VALIDATION_ERROR, "sort_dir must be asc or desc", "sort_dir")
    names = []
    for value in seen.get("action", []):
        if not value or len(value) > 255:
            raise cordial_error(VALIDATION_ERROR, "action must be 1 to 255 characters", "action")
        names.append(value)
    identifiers: list[Identifier] = []
    contact_id = None
    for key in keys:
        raw = one(key)
        if raw is None:
            continue
        try:
            identifier = normalize_identifier(key, raw)
        except ValueError as exc:
            raise cordial_error(VALIDATION_ERROR, f"{key} {exc}", key) from exc
        if key == "cID":
            contact_id = identifier.value
        else:
            identifiers.append(identifier)
    lower: TimeBound | None = None
    upper: TimeBound | None = None
    for name, op in _TIME_PARAMS.items():
        raw = one(name)
        if raw is None:
            continue
        try:
            moment, whole_day = parse_moment(raw)
        except ValueError as exc:
            raise cordial_error(VALIDATION_ERROR, f"{name} {exc}", name) from exc
        try:
            low, high = _bounds(op, moment, whole_day)
        except OverflowError as exc:
            # A date's whole day (or the day after it) past year 9999.
            raise cordial_error(VALIDATION_ERROR, f"{name} {raw!r} is out of range", name) from exc
        lower = _tighter(lower, low, lower=True)
        upper = _tighter(upper, high, lower=False)
    query = ActivityQuery(
        names=tuple(names),
        identifiers=tuple(identifiers),
        contact_id=contact_id,
        lower=lower,
        upper=upper,
        descending=sort_dir == "desc",
        offset=(page - 1) * per_page,
    )
    return Listing(query, per_page, return_count, count_only)


def _bounds(
    op: str, moment: datetime, whole_day: bool
) -> tuple[TimeBound | None, TimeBound | None]:
    """The time bounds of one ``time`` filter. A date stands for the whole day:
    ``lte``/``between.end`` include it, ``gt`` starts after it, ``lt`` before it."""
    if op == "gte":
        return TimeBound(moment, True), None
    if op == "lt":
        return None, TimeBound(moment, False)
    if not whole_day:
        if op == "eq":
            return TimeBound(moment, True), TimeBound(moment, True)
        if op == "gt":
            return TimeBound(moment, False), None
        return None, TimeBound(moment, True)  # lte
    # Only a date's whole day needs the next day (OverflowError after 9999-12-31).
    next_day = moment + timedelta(days=1)
    if op == "eq":
        return TimeBound(moment, True), TimeBound(next_day, False)
    if op == "gt":
        return TimeBound(next_day, True), None
    return None, TimeBound(next_day, False)  # lte


def _tighter(current: TimeBound | None, new: TimeBound | None, *, lower: bool) -> TimeBound | None:
    if new is None:
        return current
    if current is None:
        return new
    if new.moment == current.moment:
        return TimeBound(new.moment, new.inclusive and current.inclusive)
    if lower:
        return new if new.moment > current.moment else current
    return new if new.moment < current.moment else current


def _whole(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    if raw is None:
        return default
    # isdigit() alone accepts "²" and other digits int() refuses or reads
    # differently; only ASCII digits are a number here.
    if not (raw.strip().isascii() and raw.strip().isdigit()):
        raise cordial_error(VALIDATION_ERROR, f"{name} must be a whole number", name)
    value = int(raw)
    if not low <= value <= high:
        raise cordial_error(VALIDATION_ERROR, f"{name} must be from {low} to {high}", name)
    return value


def _boolean(raw: str | None, name: str) -> bool:
    if raw is None:
        return False
    value = raw.strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise cordial_error(VALIDATION_ERROR, f"{name} must be true or false", name)


@dataclass(frozen=True, slots=True)
class ExportRequest:
    query: ActivityQuery
    export_format: str
    name: str | None


#: The fields of an exported record and the CSV columns, in order; the
#: contact identifier columns come between ``cID`` and ``a``.
def export_fields(keys: Sequence[str], export_format: str) -> list[tuple[str, str]]:
    fields = [("_id", "id"), ("cID", "contact_id")]
    if export_format == "json":
        fields.append(("identifiers", "identifiers"))
    else:
        fields.extend((key, f"identifier:{key}") for key in keys if key != "cID")
    fields.extend([("a", "name"), ("ats", "occurred_at"), ("properties", "properties")])
    if export_format == "json":
        fields.append(("unsearchable", "unsearchable"))
    return fields


def parse_export(payload: Any, keys: Sequence[str]) -> ExportRequest:
    """``POST /v2/contactactivityexport``: the GET's filters as a JSON object.

    ``{"name": "...", "format": "json"|"csv", "action": "browse" | [...],
    "email": "...", "time": {"gte": "...", "between": {"start", "end"}},
    "sort_dir": "asc"}``; every key is optional, and an empty body is ``{}``.
    """
    if not isinstance(payload, dict):
        raise cordial_error(INVALID_PAYLOAD, "the body must be a JSON object")
    params: list[tuple[str, str]] = []
    name = payload.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > 200):
        raise cordial_error(VALIDATION_ERROR, "name must be a string of at most 200", "name")
    export_format = payload.get("format", payload.get("exportType", "json"))
    if export_format not in ("json", "csv"):
        raise cordial_error(VALIDATION_ERROR, "format must be json or csv", "format")
    for key, value in payload.items():
        if key in ("name", "format", "exportType"):
            continue
        if key == "time":
            if not isinstance(value, dict):
                raise cordial_error(VALIDATION_ERROR, "time must be an object", "time")
            for op, bound in value.items():
                if op == "between" and isinstance(bound, dict):
                    for edge, moment in bound.items():
                        params.append((f"time[between][{edge}]", _text(moment, "time")))
                else:
                    params.append((f"time[{op}]", _text(bound, "time")))
        elif key == "action" and isinstance(value, list):
            params.extend(("action", _text(item, "action")) for item in value)
        elif key in ("per_page", "page", "return_count", PAGING_TOKEN):
            raise cordial_error(
                VALIDATION_ERROR, f"{key} does not apply to an export: it has every record", key
            )
        else:
            params.append((key, _text(value, key)))
    listing = parse_listing(params, keys)
    return ExportRequest(listing.query, export_format, name)


def _text(value: Any, field: str) -> str:
    text = identifier_text(value, "int")
    if text is None:
        raise cordial_error(VALIDATION_ERROR, f"{field} must be a string", field)
    return text


def record_json(
    activity: Activity, contact_id: str, identifiers: Sequence[Identifier]
) -> dict[str, Any]:
    """One contact activity as Cordial lists it: ``_id``, ``cID``, identifiers, ``a``, ``ats``."""
    record: dict[str, Any] = {"_id": activity.id, "cID": contact_id}
    for identifier in identifiers:
        record.setdefault(identifier.kind, identifier.value)
    record["a"] = activity.name
    record["ats"] = format_utc(activity.occurred_at)
    record["properties"] = activity.properties
    if activity.unsearchable:
        record["unsearchable"] = list(activity.unsearchable)
    return record


__all__ = [
    "DIALECT",
    "ExportRequest",
    "Listing",
    "Translation",
    "api_key_from_authorization",
    "contact_keys",
    "export_fields",
    "parse_export",
    "parse_listing",
    "record_json",
    "translate_activity",
]
