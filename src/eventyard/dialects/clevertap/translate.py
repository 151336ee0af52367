"""CleverTap Upload Events bodies -> canonical activities and profile updates.

Spec: ``shared/specs/clevertap-upload-events.txt``. Decisions the spec leaves
open are written down in ``docs/dialects/clevertap.md``. Nothing here does
I/O: the route hands the parsed body in and renders what comes out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from eventyard.core.identifiers import (
    EMAIL,
    IDENTITY,
    MOBILE,
    Identifier,
    normalize_identifier,
)
from eventyard.core.ids import is_id
from eventyard.core.model import (
    ContactHint,
    EventTypeLimits,
    NewActivity,
    ProfileUpdate,
    RecordRejection,
)
from eventyard.core.payload import unstorable_values
from eventyard.dialects.toolkit.identifiers import identifier_text
from eventyard.dialects.toolkit.records import RecordError, RecordErrors
from eventyard.dialects.toolkit.timestamps import format_utc

DIALECT = "clevertap"
#: Activities from this API are server-to-server uploads.
SOURCE = "api"
#: "1000 event records can be sent per API call."
MAX_RECORDS = 1000
#: "Event keys are limited to 120 characters" (event names and property keys).
MAX_KEY_LENGTH = 120
#: "... and property values are limited to 512 bytes" (UTF-8 bytes of a string).
MAX_VALUE_BYTES = 512
#: "the maximum number of event types per account is 512 ... For each event
#: type, the maximum number of properties is 256."
MAX_EVENT_TYPES = 512
MAX_PROPERTIES_PER_TYPE = 256

#: CleverTap's system events, from CleverTap's documentation of system events
#: (not from the spec). Clients may not send them; they count against the 512
#: event types ("some events are reserved for system events").
RESERVED_EVENT_NAMES: tuple[str, ...] = (
    "App Installed",
    "App Launched",
    "App Uninstalled",
    "Notification Sent",
    "Notification Viewed",
    "Notification Clicked",
    "UTM Visited",
    "Stayed",
)
_RESERVED_FOLDED = frozenset(name.casefold() for name in RESERVED_EVENT_NAMES)

EVENT_TYPE_LIMITS = EventTypeLimits(
    max_types=MAX_EVENT_TYPES,
    max_properties_per_type=MAX_PROPERTIES_PER_TYPE,
    reserved_names=frozenset(RESERVED_EVENT_NAMES),
)

#: "You have to set a value for one of these parameters to identify the user:
#: identity, FBID, GPID, or objectId."
USER_ID_FIELDS = (IDENTITY, "FBID", "GPID", "objectId")
MISSING_USER_ID = (
    "You have to set a value for one of these parameters to identify the user: "
    "identity, FBID, GPID, or objectId"
)

#: Epoch seconds of 9999-12-31T23:59:59Z, the last moment a timestamp can hold.
MAX_EPOCH_SECONDS = 253_402_300_799
_EPOCH_RE = re.compile(r"\A-?[0-9]{1,12}\Z")
DATE_PREFIX = "$D_"


class Code:
    """The ``code`` of an ``unprocessed`` entry; eventyard's own numbers (see the docs)."""

    RECORD_NOT_OBJECT = 1000
    BAD_TYPE = 1001
    MISSING_USER_ID = 1002
    BAD_USER_ID = 1003
    BAD_TS = 1004
    BAD_EVENT_NAME = 1010
    EVENT_NAME_TOO_LONG = 1011
    RESERVED_EVENT_NAME = 1012
    BAD_EVENT_DATA = 1013
    BAD_PROFILE_DATA = 1020
    BAD_PROFILE_IDENTIFIER = 1021
    KEY_TOO_LONG = 1030
    VALUE_TOO_LONG = 1031
    BAD_DATE = 1032
    UNSTORABLE_VALUE = 1033
    EVENT_TYPE_LIMIT = 1040
    EVENT_PROPERTY_LIMIT = 1041
    UNKNOWN_CONTACT = 1042


#: The service's rejection codes -> ours.
REJECTION_CODES = {
    "event_type_limit": Code.EVENT_TYPE_LIMIT,
    "event_property_limit": Code.EVENT_PROPERTY_LIMIT,
    "unknown_contact": Code.UNKNOWN_CONTACT,
}

Command = NewActivity | ProfileUpdate


@dataclass(frozen=True, slots=True)
class Translation:
    """The valid records as canonical commands, and the problems of the others."""

    commands: list[Command] = field(default_factory=list)
    #: ``positions[i]`` is the index in ``d`` of ``commands[i]``.
    positions: list[int] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)


def records_of(payload: Any) -> tuple[list[Any], str | None]:
    """The records of a body ``{"d": [...]}``, or why the request as a whole is invalid."""
    if not isinstance(payload, dict):
        return [], 'body must be a JSON object {"d": [record, ...]}'
    if "d" not in payload:
        return [], 'body must have the key "d" holding the array of records'
    records = payload["d"]
    if not isinstance(records, list):
        return [], '"d" must be an array of records'
    if not records:
        return [], '"d" must hold at least one record'
    if len(records) > MAX_RECORDS:
        return [], f'"d" may hold at most {MAX_RECORDS} records, got {len(records)}'
    return records, None


def translate_records(
    records: Sequence[Any], *, now: datetime, check_unstorable: bool = False
) -> Translation:
    """Validate every record; the good ones become commands, the others errors.

    ``now`` is the time of events without ``ts``. Values no backend can
    store as sent are refused first (too deeply nested, invalid Unicode; with
    ``check_unstorable``, set when the body may hold them, also U+0000 and
    integers beyond 64 bits).
    """
    translation = Translation()
    errors = RecordErrors(translation.errors)
    for index, record in enumerate(records):
        plain = False
        if isinstance(record, dict):
            plain = not check_unstorable and _is_plain(record)
            problems = [] if plain else unstorable_values(record, thorough=check_unstorable)
            if problems:
                for path, reason in problems:
                    errors.add(index, path, f"{path} {reason}", Code.UNSTORABLE_VALUE)
                continue
        before = len(errors)
        command = _translate(index, record, now, errors, plain=plain)
        if len(errors) == before:
            assert command is not None
            translation.commands.append(command)
            translation.positions.append(index)
    return translation


def translate_record(
    index: int, record: Any, *, now: datetime
) -> tuple[Command | None, list[RecordError]]:
    """One record of ``d`` -> an activity or a profile update, or its errors."""
    errors = RecordErrors()
    command = _translate(index, record, now, errors, plain=False)
    return (None if errors else command), errors.items


#: ``fail(code, field, message)``: a problem of the record being translated.
Fail = Callable[[int, str, str], None]


#: In a record's JSON without escaped quotes: a key of more than
#: ``MAX_KEY_LENGTH`` bytes (a key's closing quote is followed by a colon),
#: which a key beyond ``MAX_KEY_LENGTH`` characters always is, and a run of
#: more than ``MAX_VALUE_BYTES`` bytes after a quote, which a value beyond
#: ``MAX_VALUE_BYTES`` always is (escapes only lengthen a string).
_LONG_KEY = re.compile(b'"[^"]{%d,}":' % (MAX_KEY_LENGTH + 1))
_LONG_VALUE = re.compile(b'"[^"]{%d}' % (MAX_VALUE_BYTES + 1))


def _is_plain(record: dict[str, Any]) -> bool:
    """Whether none of ``record``'s values needs a look: its data can be kept as sent.

    Most records hold no ``$D_`` date, no key or string longer than
    ``MAX_KEY_LENGTH`` and nothing that cannot be stored: for them one
    serialisation in C and a scan of its bytes replace a walk in Python.
    Every test here errs on the side of ``False``, which sends the record
    down the walk (:func:`_convert`) that decides and words each problem:
    a ``"$D_`` anywhere, an escaped quote (which would hide the length of a
    string), a key of more than ``MAX_KEY_LENGTH`` bytes or a run of more
    than ``MAX_VALUE_BYTES`` bytes after a quote. ``False`` too when the
    record cannot be serialised, so that :func:`unstorable_values` says why.
    """
    try:
        dumped = orjson.dumps(record)
    except orjson.JSONEncodeError:
        return False
    return not (
        b'"$D_' in dumped
        or b'\\"' in dumped
        or _LONG_KEY.search(dumped)
        or _LONG_VALUE.search(dumped)
    )


def _translate(
    index: int, record: Any, now: datetime, found: RecordErrors, *, plain: bool
) -> Command | None:
    """One record -> its command, or ``None`` with its problems added to ``found``.

    ``plain``: :func:`_is_plain` said so, and ``evtData`` or ``profileData``
    is kept as sent (as Netcore's and Segment's properties are), without a walk.
    """
    if not isinstance(record, dict):
        found.add(index, "record", "record must be a JSON object", Code.RECORD_NOT_OBJECT)
        return None
    errors: list[RecordError] = []

    def fail(code: int, path: str, message: str) -> None:
        errors.append(RecordError(index, path, message, code))

    kind = record.get("type")
    identifiers, hint = _user_identity(record, fail)
    occurred_at = _timestamp(record.get("ts"), now, fail)
    if kind == "event":
        name = _event_name(record.get("evtName"), fail)
        data = _object(record, "evtData", Code.BAD_EVENT_DATA, fail)
        properties = _values(data, "evtData", plain, fail)
        if errors:
            found.items.extend(errors)
            return None
        assert name is not None
        assert properties is not None
        return NewActivity(
            identifiers=identifiers,
            name=name,
            occurred_at=occurred_at,
            source=SOURCE,
            dialect=DIALECT,
            properties=properties,
            contact_hint=hint,
        )
    if kind == "profile":
        data = _object(record, "profileData", Code.BAD_PROFILE_DATA, fail)
        attributes = _values(data, "profileData", plain, fail)
        extra = _profile_identifiers(data or {}, identifiers, fail)
        if errors:
            found.items.extend(errors)
            return None
        assert attributes is not None
        return ProfileUpdate(
            identifiers=_unique((*identifiers, *extra)),
            attributes=attributes,
            dialect=DIALECT,
            contact_hint=hint,
        )
    if kind is None:
        message = 'type is required: "event" or "profile"'
    else:
        message = f'type must be "event" or "profile", got {_show(kind)}'
    # Report the type first: it decides what the rest of the record means.
    found.add(index, "type", message, Code.BAD_TYPE)
    found.items.extend(errors)
    return None


def upload_result(
    records: Sequence[Any],
    translation: Translation,
    rejected: Sequence[RecordRejection] = (),
) -> dict[str, Any]:
    """The spec's response body for the whole request.

    ``rejected`` are the service's refusals, indexed by position in
    ``translation.commands``; they are mapped back to indexes in ``d``. Each
    failed record appears once in ``unprocessed``, in the order of ``d``, with
    the code of its first problem and every problem in ``error``.
    """
    problems: dict[int, list[tuple[int, str]]] = {}
    for error in translation.errors:
        assert error.code is not None  # every CleverTap problem has its code
        problems.setdefault(error.index, []).append((error.code, error.message))
    for rejection in rejected:
        index = translation.positions[rejection.index]
        code = REJECTION_CODES.get(rejection.code, Code.UNKNOWN_CONTACT)
        problems.setdefault(index, []).append((code, rejection.message))
    processed = len(records) - len(problems)
    unprocessed = [
        {
            "status": "fail",
            "code": found[0][0],
            "error": "; ".join(message for _, message in found),
            "record": records[index],
        }
        for index, found in sorted(problems.items())
    ]
    status = "success" if not unprocessed else "fail" if processed == 0 else "partial"
    return {"status": status, "processed": processed, "unprocessed": unprocessed}


def parse_date_value(value: str) -> str:
    """``"$D_1468322268"`` -> ``"2016-07-12T11:17:48Z"``; ``ValueError`` says what is wrong."""
    digits = value[len(DATE_PREFIX) :]
    if not _EPOCH_RE.match(digits):
        raise ValueError(f"must be {DATE_PREFIX} followed by UNIX epoch seconds, got {value!r}")
    return format_utc(_epoch_moment(int(digits)))


def _epoch_moment(seconds: int) -> datetime:
    if not 0 <= seconds <= MAX_EPOCH_SECONDS:
        hint = " (milliseconds? send seconds)" if seconds > MAX_EPOCH_SECONDS else ""
        raise ValueError(f"is out of range: {seconds} is not a UNIX epoch in seconds{hint}")
    return datetime.fromtimestamp(seconds, UTC)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _user_identity(
    record: dict[str, Any], fail: Fail
) -> tuple[tuple[Identifier, ...], ContactHint | None]:
    found: list[Identifier] = []
    hint: ContactHint | None = None
    bad = False
    for name in USER_ID_FIELDS:
        raw = record.get(name)
        if raw is None or raw == "":
            continue
        # Numeric ids (Facebook's, a shop's customer number) are common as JSON numbers.
        text = identifier_text(raw, "int")
        if text is None:
            fail(Code.BAD_USER_ID, name, f"{name} must be a string or an integer")
            bad = True
            continue
        if not text.strip():
            continue
        try:
            identifier = normalize_identifier(name, text)
        except ValueError as exc:
            fail(Code.BAD_USER_ID, name, f"{name} {exc}")
            bad = True
            continue
        if name == "objectId" and is_id(identifier.value):
            # Possibly one of our contact ids (as the read API shows them);
            # if the account has no such contact, it is an identifier after all.
            hint = ContactHint(contact_id=identifier.value, fallback=identifier)
        else:
            found.append(identifier)
    if not found and hint is None and not bad:
        fail(Code.MISSING_USER_ID, "identity", MISSING_USER_ID)
    return tuple(found), hint


def _timestamp(raw: Any, now: datetime, fail: Fail) -> datetime:
    if raw is None:
        return now
    if isinstance(raw, str) and _EPOCH_RE.match(raw.strip()):
        raw = int(raw.strip())
    if not isinstance(raw, int) or isinstance(raw, bool):
        fail(
            Code.BAD_TS, "ts", f"ts must be a UNIX epoch in seconds (an integer), got {_show(raw)}"
        )
        return now
    try:
        return _epoch_moment(raw)
    except ValueError as exc:
        fail(Code.BAD_TS, "ts", f"ts {exc}")
        return now


def _event_name(raw: Any, fail: Fail) -> str | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        fail(Code.BAD_EVENT_NAME, "evtName", "evtName is required")
        return None
    if not isinstance(raw, str):
        fail(Code.BAD_EVENT_NAME, "evtName", "evtName must be a string")
        return None
    name = raw.strip()
    if len(name) > MAX_KEY_LENGTH:
        fail(
            Code.EVENT_NAME_TOO_LONG,
            "evtName",
            f"evtName is {len(name)} characters long; event keys are limited to "
            f"{MAX_KEY_LENGTH} characters",
        )
        return None
    if name.casefold() in _RESERVED_FOLDED:
        fail(
            Code.RESERVED_EVENT_NAME,
            "evtName",
            f"evtName {name!r} is a CleverTap system event and cannot be uploaded",
        )
        return None
    return name


def _object(record: dict[str, Any], name: str, code: int, fail: Fail) -> dict[str, Any] | None:
    value = record.get(name)
    if value is None:
        fail(code, name, f"{name} is required (an object of key/value pairs)")
        return None
    if not isinstance(value, dict):
        fail(code, name, f"{name} must be a JSON object of key/value pairs")
        return None
    return value


def _values(
    data: dict[str, Any] | None, path: str, plain: bool, fail: Fail
) -> dict[str, Any] | None:
    if data is None or plain:
        return data
    return _convert_values(data, path, fail)


def _convert_values(data: dict[str, Any], path: str, fail: Fail) -> dict[str, Any]:
    """A copy of ``data`` with ``$D_`` dates as ISO 8601; key and value limits checked."""
    converted = _convert(data, path, fail)
    assert isinstance(converted, dict)
    return converted


def _convert(value: Any, path: str, fail: Fail) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            item_path = f"{path}.{key}"
            if len(key) > MAX_KEY_LENGTH:
                fail(
                    Code.KEY_TOO_LONG,
                    item_path,
                    f"{item_path}: the key is {len(key)} characters long; event keys are "
                    f"limited to {MAX_KEY_LENGTH} characters",
                )
            out[key] = _convert(item, item_path, fail)
        return out
    if isinstance(value, list):
        return [_convert(item, f"{path}.{i}", fail) for i, item in enumerate(value)]
    if isinstance(value, str):
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > MAX_VALUE_BYTES:
            fail(
                Code.VALUE_TOO_LONG,
                path,
                f"{path} is {size} bytes long; property values are limited to "
                f"{MAX_VALUE_BYTES} bytes",
            )
            return value
        if value.startswith(DATE_PREFIX):
            try:
                return parse_date_value(value)
            except ValueError as exc:
                fail(Code.BAD_DATE, path, f"{path} is not a date: {exc}")
    return value


def _profile_identifiers(
    data: dict[str, Any], user: tuple[Identifier, ...], fail: Fail
) -> tuple[Identifier, ...]:
    """``Email``, ``Phone`` and ``Identity`` of ``profileData`` as identifiers."""
    found: list[Identifier] = []
    for key, kind in (("Email", EMAIL), ("Phone", MOBILE), ("Identity", IDENTITY)):
        raw = data.get(key)
        if raw is None or raw == "":
            continue
        path = f"profileData.{key}"
        text = identifier_text(raw, "none" if kind == EMAIL else "int")
        if text is None:
            fail(Code.BAD_PROFILE_IDENTIFIER, path, f"{path} must be a string")
            continue
        if not text.strip():
            continue
        try:
            identifier = normalize_identifier(kind, text)
        except ValueError as exc:
            fail(Code.BAD_PROFILE_IDENTIFIER, path, f"{path} {exc}")
            continue
        other = next((u for u in user if u.kind == IDENTITY), None)
        if kind == IDENTITY and other is not None and other != identifier:
            fail(
                Code.BAD_PROFILE_IDENTIFIER,
                path,
                f"{path} {identifier.value!r} differs from identity {other.value!r}; "
                "a record names one user",
            )
            continue
        found.append(identifier)
    return tuple(found)


def _unique(identifiers: tuple[Identifier, ...]) -> tuple[Identifier, ...]:
    return tuple(dict.fromkeys(identifiers))
