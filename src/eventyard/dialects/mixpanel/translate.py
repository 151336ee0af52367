"""Mixpanel ingestion bodies -> canonical activities and profile updates.

Pure functions: the routes authenticate and read the request, these decide
what it means. Rules quote the digest of Mixpanel's ingestion API
(``shared/specs/mixpanel.md``); ``docs/dialects/mixpanel.md`` has the
mapping table and every decision.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qsl

import orjson

from eventyard.core.commands import Record
from eventyard.core.identifiers import ANONID, EMAIL, IDENTITY, MOBILE, Identifier
from eventyard.core.identifiers import normalize_identifier as _normalize
from eventyard.core.model import MergeStrategy, NewActivity, ProfileUpdate
from eventyard.core.payload import decode_json, unstorable_values
from eventyard.dialects.mixpanel.errors import mixpanel_error
from eventyard.dialects.toolkit.identifiers import identifier_text
from eventyard.dialects.toolkit.records import Fail, RecordError, RecordErrors

DIALECT = "mixpanel"
#: The project token: inside each event (``properties.token``) or update (``$token``).
TOKEN_KIND = "mixpanel"  # noqa: S105 (a kind's name, not a secret)
#: The project's API secret: the Basic user name of ``/import``.
SECRET_KIND = "mixpanel_import"  # noqa: S105
TOKEN_PREFIX = "eymp"  # noqa: S105
SECRET_PREFIX = "eymx"  # noqa: S105

Endpoint = Literal["track", "engage", "groups", "import"]

#: "up to 2000 events" per request (every endpoint), and "≤ 2000 updates".
MAX_RECORDS = 2000
#: "Per request: ≤ 2000 events; 10 MB uncompressed (current docs)".
MAX_BODY_BYTES = 10 * 1024 * 1024
#: "Per event: < 1 MB uncompressed JSON"; "≤ 1 MB per update".
MAX_RECORD_BYTES = 1024 * 1024
#: "< 255 properties; nested objects < 255 keys; arrays < 255 elements".
MAX_KEYS = 255
#: "Strings are truncated to 255 characters."
MAX_STRING = 255
#: "``$insert_id``: ≤ 36 bytes; only alphanumerics and ``-``".
MAX_INSERT_ID_BYTES = 36
INSERT_ID = re.compile(r"\A[A-Za-z0-9-]+\Z")
#: "/track ingests only events from the last 5 days".
TRACK_WINDOW = timedelta(days=5)
#: "rejected if before 1971-01-01 or more than 1 hour in the future".
EARLIEST = datetime(1971, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(hours=1)
#: A time at or above this is in milliseconds (1e11 seconds is the year 5138).
MILLISECONDS_FROM = 100_000_000_000
#: "Rejected placeholder values" of ``distinct_id`` and ``$insert_id``.
PLACEHOLDERS = frozenset(
    {
        "00000000-0000-0000-0000-000000000000",
        "anon",
        "anonymous",
        "nil",
        "none",
        "null",
        "n/a",
        "na",
        "undefined",
        "unknown",
        "<nil>",
        "0",
        "-1",
        "true",
        "false",
        "[]",
        "{}",
    }
)
DEVICE_PREFIX = "$device:"
IDENTIFY, CREATE_ALIAS, MERGE = "$identify", "$create_alias", "$merge"
DEFAULT_SOURCE = "api"
MAX_SOURCE_LENGTH = 32
#: /engage operations and the merge strategy each becomes, in the digest's order.
PEOPLE_OPERATIONS: dict[str, MergeStrategy] = {
    "$set": "overwrite",
    "$set_once": "fill_empty",
    "$add": "increment",
    "$append": "append",
    "$union": "append_missing",
    "$remove": "remove",
    "$unset": "unset",
    "$delete": "clear",
}
#: Profile properties that also name the contact.
IDENTIFYING_PROPERTIES = (("$email", EMAIL), ("$phone", MOBILE))
GROUPS_REFUSED = (
    "group profiles have no place in eventyard's contact model (a group is not a contact);"
    " the update was not stored. A user's groups travel as profile properties (/engage) and"
    " event properties (/track), which are stored"
)


# --- the request ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Incoming:
    """A request's records and the flags its form carried (``verbose``, ``strict`` …)."""

    objects: list[Any]
    fields: dict[str, str]
    #: Sent as a form (``data=…``) or a query string rather than a JSON body.
    form: bool
    suspicious: bool = False


def parse_body(body: bytes) -> Incoming:
    """The records of a body: JSON (array, object or NDJSON) or a form's ``data``.

    "Detect which by trying JSON first, then base64": ``data`` holds JSON
    text (the Python SDK) or base64 of it (the Node SDK, mixpanel-browser).
    A body that cannot be read is a 400.
    """
    text = body.lstrip()
    if not text:
        # Nothing names a token: /track answers 401, /import "data, missing or empty".
        return Incoming([], {}, form=True)
    if text[:1] in (b"[", b"{"):
        value, suspicious = _json_or_ndjson(body)
        return _incoming(value, {}, form=False, suspicious=suspicious)
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise mixpanel_error("the body is neither JSON nor a form in UTF-8") from exc
    fields = dict(pairs)
    data = fields.pop("data", "")
    if not data.strip():
        return Incoming([], fields, form=True)
    value, suspicious = _data_field(data)
    return _incoming(value, fields, form=True, suspicious=suspicious)


def _incoming(value: Any, fields: dict[str, str], *, form: bool, suspicious: bool) -> Incoming:
    objects = value if isinstance(value, list) else [value]
    if len(objects) > MAX_RECORDS:
        raise mixpanel_error(
            f"the request holds {len(objects)} records; at most {MAX_RECORDS} are accepted",
            field="data",
        )
    return Incoming(objects, fields, form=form, suspicious=suspicious)


def _json_or_ndjson(body: bytes) -> tuple[Any, bool]:
    try:
        payload = decode_json(body)
        return payload.value, payload.suspicious
    except ValueError as exc:
        lines = [line for line in body.splitlines() if line.strip()]
        if len(lines) < 2:
            raise mixpanel_error(f"the body is not valid JSON: {exc}", field="data") from exc
    values, suspicious = [], False
    for number, line in enumerate(lines, start=1):
        try:
            payload = decode_json(line)
        except ValueError as exc:
            raise mixpanel_error(
                f"line {number} of the NDJSON body is not valid JSON: {exc}", field="data"
            ) from exc
        values.append(payload.value)
        suspicious = suspicious or payload.suspicious
    return values, suspicious


def _data_field(data: str) -> tuple[Any, bool]:
    raw = data.strip().encode("utf-8", "surrogatepass")
    if raw[:1] in (b"[", b"{"):
        try:
            payload = decode_json(raw)
            return payload.value, payload.suspicious
        except ValueError:
            pass
    try:
        padded = raw.replace(b" ", b"+") + b"=" * (-len(raw) % 4)
        decoded = base64.b64decode(padded.replace(b"-", b"+").replace(b"_", b"/"), validate=True)
        payload = decode_json(decoded)
    except (binascii.Error, ValueError) as exc:
        raise mixpanel_error("data is neither JSON nor base64-encoded JSON", field="data") from exc
    return payload.value, payload.suspicious


def first_token(objects: list[Any], endpoint: Endpoint) -> str | None:
    """The project token of the first record that names one (``properties.token``/``$token``)."""
    for obj in objects:
        token = record_token(obj, endpoint)
        if token:
            return token
    return None


def record_token(obj: Any, endpoint: Endpoint) -> str | None:
    if not isinstance(obj, dict):
        return None
    if endpoint in ("track", "import"):
        properties = obj.get("properties")
        value = properties.get("token") if isinstance(properties, dict) else None
    else:
        value = obj.get("$token")
    return value if isinstance(value, str) and value else None


# --- the records ---------------------------------------------------------


@dataclass
class Translation:
    """The valid records, where each came from, and what was wrong with the others."""

    records: list[Record] = field(default_factory=list)
    #: ``positions[i]`` is the index in the request of ``records[i]``.
    positions: list[int] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)
    #: Indexes of events ``/track`` drops without an error (older than 5 days).
    skipped: list[int] = field(default_factory=list)
    #: ``$insert_id`` of each record of the request (``None`` where it has none).
    insert_ids: dict[int, str] = field(default_factory=dict)
    total: int = 0


@dataclass(frozen=True, slots=True)
class Context:
    """What a translation needs besides the records."""

    endpoint: Endpoint
    now: datetime
    #: The token every record must name (``None``: /import, authenticated by header).
    token: str | None
    suspicious: bool = False
    #: /import's strict validation: ``$insert_id`` is required ("strict=1 … Each
    #: event needs … ``properties.$insert_id``"); a non-strict import may omit it.
    strict: bool = False


def translate_records(objects: list[Any], context: Context) -> Translation:
    """Every record -> its canonical records, or the problems that refuse it."""
    translation = Translation(total=len(objects))
    errors = RecordErrors(translation.errors)
    translate: Callable[[Any, Context, Fail, Translation, int], list[Record]]
    translate = {
        "track": translate_event,
        "import": translate_event,
        "engage": translate_update,
        "groups": translate_group_update,
    }[context.endpoint]
    for index, obj in enumerate(objects):
        before = len(errors)
        records = translate(obj, context, errors.reporter(index), translation, index)
        if len(errors) > before:
            continue
        for record in records:
            translation.records.append(record)
            translation.positions.append(index)
    return translation


def _check_record(obj: Any, context: Context, fail: Fail, token_field: str) -> bool:
    """An object of at most 1 MB of storable values, naming the request's token."""
    if not isinstance(obj, dict):
        fail("", "each record must be a JSON object")
        return False
    size = _size(obj)
    if size >= MAX_RECORD_BYTES:
        fail("", f"the record is {size} bytes; each must be less than 1 MB")
        return False
    if problems := unstorable_values(obj, thorough=context.suspicious):
        for path, why in problems:
            fail(path, f"{path} {why}")
        return False
    if context.token is not None:
        token = record_token(obj, context.endpoint)
        if token is None:
            fail(token_field, "token, missing or empty")
            return False
        if not hmac.compare_digest(token.encode(), context.token.encode()):
            fail(token_field, "the token names another project than the request's first record")
            return False
    return True


def _size(obj: Any) -> int:
    try:
        return len(orjson.dumps(obj))
    except (orjson.JSONEncodeError, TypeError):
        return 0  # beyond what orjson writes: unstorable_values names it


# --- events (/track, /import) --------------------------------------------


def translate_event(
    obj: Any, context: Context, fail: Fail, translation: Translation, index: int
) -> list[Record]:
    """One event -> an activity, or a profile update for the identity events."""
    if not _check_record(obj, context, fail, "properties.token"):
        return []
    strict = context.endpoint == "import"
    properties = obj.get("properties")
    if not isinstance(properties, dict):
        fail("properties", "'properties' must be an object")
        return []
    sent_id = properties.get("$insert_id")
    if isinstance(sent_id, str) and sent_id:
        # failed_records names it whatever else is wrong with the event.
        translation.insert_ids[index] = sent_id
    event = obj.get("event")
    if not isinstance(event, str) or not event.strip():
        fail("event", "'event' must be a non-empty string")
        return []
    if event in (IDENTIFY, CREATE_ALIAS, MERGE):
        return _identity_event(event, properties, context, fail)
    insert_id = _insert_id(
        properties, required=strict and context.strict, checked=strict, fail=fail
    )
    identifiers, distinct_id = event_identifiers(properties, strict=strict, fail=fail)
    occurred_at = _event_time(properties, context, fail)
    _check_sizes(properties, "properties", fail, top=True)
    if occurred_at is None or not identifiers:
        return []
    if not strict and occurred_at < context.now - TRACK_WINDOW:
        # "events older than 5 days are silently not ingested while still answering 1".
        translation.skipped.append(index)
        return []
    kept = {
        key: truncated(value) for key, value in properties.items() if key not in ("token", "time")
    }
    name = event[:MAX_STRING]
    return [
        NewActivity(
            identifiers=identifiers,
            name=name,
            occurred_at=occurred_at,
            source=_source(properties),
            dialect=DIALECT,
            properties=kept,
            dedup_key=_dedup_key(name, distinct_id, insert_id),
        )
    ]


def _identity_event(
    event: str, properties: dict[str, Any], context: Context, fail: Fail
) -> list[Record]:
    """``$identify``, ``$create_alias`` and ``$merge``: one contact for the ids they name.

    For ``$identify`` and ``$create_alias`` identity resolution settles it and
    keeps its audit: an anonymous contact meeting a known one is merged into
    it; two known contacts are a recorded conflict, never merged. ``$merge``
    ("irreversible") merges the second id's contact into the first's, known
    or not, audited and revertible.
    """
    if event == IDENTIFY:
        identified = _id(properties, "$identified_id", fail, required=True)
        anonymous = _id(properties, "$anon_id", fail, required=True)
        if identified is None or anonymous is None:
            return []
        # $anon_id names an anonymous user: an anonymous id, unless a contact
        # already has it as a user id (then it is one), settled when written.
        anon = distinct_identifier(anonymous, None, "$anon_id", fail)
        user = _identifier(IDENTITY, identified, "$identified_id", fail)
        if anon is None or user is None:
            return []
        alias_of = anonymous if anon.kind == IDENTITY else None
        if alias_of is not None:
            anon = Identifier(ANONID, anon.value)
        return [_link((user, anon), alias_of)]
    if event == CREATE_ALIAS:
        alias = _id(properties, "alias", fail, required=True)
        original = _id(properties, "distinct_id", fail, required=True)
        if alias is None or original is None:
            return []
        new = _identifier(IDENTITY, alias, "alias", fail)
        old = distinct_identifier(original, None, "distinct_id", fail)
        return [_link((new, old))] if new is not None and old is not None else []
    if context.endpoint != "import":
        fail("event", "$merge is only accepted by /import (authenticated with the API secret)")
        return []
    ids = properties.get("$distinct_ids")
    if not isinstance(ids, list) or len(ids) != 2:
        fail("properties.$distinct_ids", "'$distinct_ids' must list exactly 2 distinct ids")
        return []
    named: list[Identifier] = []
    for position, raw in enumerate(ids):
        path = f"properties.$distinct_ids.{position}"
        text = identifier_text(raw, "int")
        if text is None or not text.strip():
            fail(path, f"'{path}' must be a non-empty string")
            continue
        ident = distinct_identifier(text, None, path, fail)
        if ident is not None:
            named.append(ident)
    if len(named) != 2 or named[0] == named[1]:
        return [_link(tuple(named))] if len(named) == 2 else []
    # Mixpanel merges the two ids' people irreversibly: the second is merged
    # into the first, known or not, as a merge by hand (audited, revertible).
    return [
        ProfileUpdate(identifiers=(named[0],), attributes={}, dialect=DIALECT, absorbs=(named[1],))
    ]


def _link(identifiers: tuple[Identifier, ...], alias_of: str | None = None) -> ProfileUpdate:
    return ProfileUpdate(
        identifiers=tuple(dict.fromkeys(identifiers)),
        attributes={},
        dialect=DIALECT,
        alias_of=alias_of,
    )


def event_identifiers(
    properties: dict[str, Any], *, strict: bool, fail: Fail
) -> tuple[tuple[Identifier, ...], str]:
    """``$user_id`` (identity), ``$device_id`` (anonid) and ``distinct_id``; and distinct_id.

    /import requires ``distinct_id`` ("empty string allowed"); an event
    naming no id at all names no contact and is refused.
    """
    if strict and "distinct_id" not in properties:
        fail("properties.distinct_id", "'properties.distinct_id' must be specified")
        return (), ""
    user = _id(properties, "$user_id", fail)
    device = _id(properties, "$device_id", fail)
    distinct = _id(properties, "distinct_id", fail)
    found: list[Identifier | None] = []
    if user is not None:
        found.append(_identifier(IDENTITY, user, "$user_id", fail))
    if device is not None:
        found.append(_identifier(ANONID, device.removeprefix(DEVICE_PREFIX), "$device_id", fail))
    if distinct is not None:
        found.append(distinct_identifier(distinct, device, "distinct_id", fail))
    identifiers = tuple(dict.fromkeys(i for i in found if i is not None))
    if not found:
        fail(
            "properties.distinct_id",
            "the event names no user: set distinct_id, $user_id or $device_id",
        )
    return identifiers, distinct or ""


def distinct_identifier(value: str, device: str | None, path: str, fail: Fail) -> Identifier | None:
    """A distinct id: ``$device:<id>`` and the event's own ``$device_id`` are anonymous
    ids (``anonid``), any other is a user id (``identity``)."""
    if value.startswith(DEVICE_PREFIX):
        return _identifier(ANONID, value.removeprefix(DEVICE_PREFIX), path, fail)
    if device is not None and value == device:
        return _identifier(ANONID, value, path, fail)
    return _identifier(IDENTITY, value, path, fail)


def _id(properties: dict[str, Any], key: str, fail: Fail, *, required: bool = False) -> str | None:
    """An id property: a string or an integer; absent, null or "" is none.

    Mixpanel's placeholder values (``undefined``, ``null``, ``0`` …) are refused.
    """
    raw = properties.get(key)
    path = f"properties.{key}"
    if raw is None or raw == "":
        if required:
            fail(path, f"'{path}' must be specified")
        return None
    text = identifier_text(raw, "int")
    if text is None:
        fail(path, f"'{path}' must be a string")
        return None
    text = text.strip()
    if text.lower() in PLACEHOLDERS:
        fail(path, f"'{path}' is invalid: {text!r} is a placeholder value")
        return None
    return text or None


def _identifier(kind: str, value: str, path: str, fail: Fail) -> Identifier | None:
    try:
        return _normalize(kind, value)
    except ValueError as exc:
        fail(path, f"'{path}' {exc}")
        return None


def _insert_id(
    properties: dict[str, Any], *, required: bool, checked: bool, fail: Fail
) -> str | None:
    """``$insert_id``: /import checks it ("≤ 36 bytes; only alphanumerics and ``-``");
    /track takes any string of at most 255 characters (the track reference's own example
    is ``unique_event_id_123``)."""
    raw = properties.get("$insert_id")
    path = "properties.$insert_id"
    if raw is None or raw == "":
        if required:
            fail(path, f"'{path}' must be specified")
        return None
    if not isinstance(raw, str):
        fail(path, f"'{path}' must be a string")
        return None
    if not checked:
        if len(raw) > MAX_STRING:
            fail(path, f"'{path}' is invalid: at most {MAX_STRING} characters")
            return None
        return raw
    if len(raw.encode()) > MAX_INSERT_ID_BYTES or not INSERT_ID.match(raw):
        fail(path, f"'{path}' is invalid: at most 36 bytes of letters, digits and '-'")
        return None
    if raw.lower() in PLACEHOLDERS:
        fail(path, f"'{path}' is invalid: {raw!r} is a placeholder value")
        return None
    return raw


def _event_time(properties: dict[str, Any], context: Context, fail: Fail) -> datetime | None:
    """``properties.time``: seconds or milliseconds since the epoch, int or float.

    Absent on /track: when received. /import requires it and refuses a time
    before 1971 or more than an hour ahead.
    """
    raw = properties.get("time")
    path = "properties.time"
    strict = context.endpoint == "import"
    if raw is None:
        if strict:
            fail(path, f"'{path}' must be specified as seconds since epoch")
            return None
        return context.now
    seconds: float | None = None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        seconds = float(raw)
    elif isinstance(raw, str):
        try:
            seconds = float(raw.strip())
        except ValueError:
            seconds = None
    if seconds is None or seconds != seconds or seconds in (float("inf"), float("-inf")):
        fail(path, f"'{path}' is invalid: must be specified as seconds since epoch")
        return None
    if seconds >= MILLISECONDS_FROM:
        seconds /= 1000
    try:
        moment = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        fail(path, f"'{path}' is invalid: out of range")
        return None
    if moment < EARLIEST:
        fail(path, f"'{path}' is invalid: must be after 1971-01-01")
        return None
    if strict and moment > context.now + FUTURE_SLACK:
        fail(path, f"'{path}' is invalid: more than 1 hour in the future")
        return None
    return moment


def _check_sizes(value: Any, path: str, fail: Fail, *, top: bool = False) -> None:
    if isinstance(value, dict):
        if len(value) >= MAX_KEYS:
            what = "properties" if top else "keys"
            fail(path, f"'{path}' has {len(value)} {what}; at most {MAX_KEYS - 1}")
            return
        for key, item in value.items():
            _check_sizes(item, f"{path}.{key}", fail)
    elif isinstance(value, list):
        if len(value) >= MAX_KEYS:
            fail(path, f"'{path}' has {len(value)} elements; at most {MAX_KEYS - 1}")
            return
        for position, item in enumerate(value):
            _check_sizes(item, f"{path}.{position}", fail)


def truncated(value: Any) -> Any:
    """``value`` with every string cut to 255 characters ("Strings are truncated")."""
    if isinstance(value, str):
        return value[:MAX_STRING]
    if isinstance(value, dict):
        return {key: truncated(item) for key, item in value.items()}
    if isinstance(value, list):
        return [truncated(item) for item in value]
    return value


def _source(properties: dict[str, Any]) -> str:
    """``mp_lib`` (``python``, ``node``, ``web``), else ``api``."""
    lib = properties.get("mp_lib")
    if isinstance(lib, str) and lib.strip():
        return lib.strip()[:MAX_SOURCE_LENGTH]
    return DEFAULT_SOURCE


def _dedup_key(event: str, distinct_id: str, insert_id: str | None) -> str | None:
    """Mixpanel's key "(event, distinct_id, time, $insert_id)": the time is the
    activity's ``occurred_at``, which the store's unique key holds beside this."""
    if insert_id is None:
        return None
    digest = hashlib.sha256("\x1f".join((event, distinct_id, insert_id)).encode()).hexdigest()
    return f"mixpanel:{digest[:40]}"


# --- profile updates (/engage) -------------------------------------------


def translate_update(
    obj: Any, context: Context, fail: Fail, translation: Translation, index: int
) -> list[Record]:
    """One update -> a profile update per operation it holds, in the order sent."""
    if not _check_record(obj, context, fail, "$token"):
        return []
    identifiers = update_identifiers(obj, fail)
    operations = [key for key in obj if key in PEOPLE_OPERATIONS]
    if not operations:
        fail("$set", f"the update holds no operation ({', '.join(PEOPLE_OPERATIONS)})")
    updates: list[Record] = []
    for op in operations:
        attributes = _operation_value(op, obj[op], fail)
        if attributes is None or not identifiers:
            continue
        extra = _identifying(attributes) if op in ("$set", "$set_once") else ()
        updates.append(
            ProfileUpdate(
                identifiers=tuple(dict.fromkeys((*identifiers, *extra))),
                attributes=attributes,
                dialect=DIALECT,
                strategy=PEOPLE_OPERATIONS[op],
            )
        )
    return updates


def update_identifiers(obj: dict[str, Any], fail: Fail) -> tuple[Identifier, ...]:
    """``$distinct_id`` (as an event's distinct_id), ``$user_id`` and ``$device_id``."""
    found: list[Identifier | None] = []
    user = _update_id(obj, "$user_id", fail)
    device = _update_id(obj, "$device_id", fail)
    distinct = _update_id(obj, "$distinct_id", fail)
    if user is not None:
        found.append(_identifier(IDENTITY, user, "$user_id", fail))
    if device is not None:
        found.append(_identifier(ANONID, device.removeprefix(DEVICE_PREFIX), "$device_id", fail))
    if distinct is not None:
        found.append(distinct_identifier(distinct, device, "$distinct_id", fail))
    if not found:
        fail("$distinct_id", "$distinct_id, missing or empty")
    return tuple(dict.fromkeys(i for i in found if i is not None))


def _update_id(obj: dict[str, Any], key: str, fail: Fail) -> str | None:
    raw = obj.get(key)
    if raw is None or raw == "":
        return None
    text = identifier_text(raw, "int")
    if text is None:
        fail(key, f"'{key}' must be a string")
        return None
    text = text.strip()
    if text.lower() in PLACEHOLDERS:
        fail(key, f"'{key}' is invalid: {text!r} is a placeholder value")
        return None
    return text or None


def _operation_value(op: str, value: Any, fail: Fail) -> dict[str, Any] | None:
    """The attributes an operation names, checked as its operation needs them."""
    if op == "$delete":
        return {}
    if op == "$unset":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            fail(op, "$unset must be an array of property names")
            return None
        return dict.fromkeys(value)
    if not isinstance(value, dict):
        fail(op, f"{op} must be an object")
        return None
    if op == "$add":
        for key, amount in value.items():
            if not isinstance(amount, int | float) or isinstance(amount, bool):
                fail(f"$add.{key}", f"$add.{key} must be a number")
                return None
    if op == "$union":
        for key, items in value.items():
            if not isinstance(items, list):
                fail(f"$union.{key}", f"$union.{key} must be an array")
                return None
    if op in ("$append", "$remove"):
        # One value each, a list included: "$append" adds it as one item.
        return {key: [item] for key, item in value.items()}
    return dict(value)


def _identifying(attributes: dict[str, Any]) -> tuple[Identifier, ...]:
    """``$email`` and ``$phone`` also name the contact (an invalid one stays an attribute)."""
    found: list[Identifier] = []
    for key, kind in IDENTIFYING_PROPERTIES:
        text = identifier_text(attributes.get(key), "int")
        if text is None or not text.strip():
            continue
        try:
            found.append(_normalize(kind, text))
        except ValueError:
            continue
    return tuple(found)


# --- group profiles (/groups) --------------------------------------------


def translate_group_update(
    obj: Any, context: Context, fail: Fail, translation: Translation, index: int
) -> list[Record]:
    """A group profile update: refused, naming the group (see ``GROUPS_REFUSED``)."""
    if not _check_record(obj, context, fail, "$token"):
        return []
    key, group = obj.get("$group_key"), obj.get("$group_id")
    if not isinstance(key, str) or not key or group is None or group == "":
        fail("$group_key", "$group_key and $group_id, missing or empty")
        return []
    fail("$group_key", f"group {key}={group}: {GROUPS_REFUSED}")
    return []
