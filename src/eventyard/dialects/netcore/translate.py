"""Netcore Activity API bodies -> canonical activities.

Spec: ``shared/specs/netcore-activity-upload.txt``. Decisions the spec leaves
open are written down in ``docs/dialects/netcore.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventyard.core.errors import FieldError
from eventyard.core.identifiers import (
    ANONID,
    EMAIL,
    IDENTITY,
    MOBILE,
    Identifier,
    normalize_identifier,
)
from eventyard.core.model import NewActivity
from eventyard.core.payload import unstorable_values
from eventyard.dialects.toolkit.identifiers import identifier_text
from eventyard.dialects.toolkit.records import Fail, RecordErrors
from eventyard.dialects.toolkit.timestamps import parse_iso_datetime

DIALECT = "netcore"
#: "You can send single or bulk events (up to 1000 in one request)."
MAX_EVENTS = 1000
MAX_NAME_LENGTH = 255
SOURCES = ("web", "app")
#: Identifier fields in the order the spec lists them.
IDENTIFIER_FIELDS = (IDENTITY, EMAIL, MOBILE, ANONID)
MISSING_ACTIVITY_NAME = "Missing Parameter - Activity Name"

_DATETIME_RE = re.compile(
    r"\A\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}(:?\d{2})?)?\Z"
)


@dataclass(frozen=True, slots=True)
class Translation:
    activities: list[NewActivity]
    #: Events not stored because ``activity_params`` held an empty array.
    skipped: list[int]


def events_of(payload: Any) -> tuple[list[Any], list[FieldError]]:
    """The list of events in a request body, or the request-level error.

    A JSON array is a batch; a bare object is one event; an array of arrays
    (the spec's own ``[[{…}]]`` sample) is flattened one level.
    """
    if isinstance(payload, dict):
        return [payload], []
    if not isinstance(payload, list):
        return [], [FieldError("body", "body must be a JSON array of events or one event object")]
    if payload and all(isinstance(item, list) for item in payload):
        payload = [event for group in payload for event in group]
    if not payload:
        return [], [FieldError("body", "body must hold at least one event")]
    if len(payload) > MAX_EVENTS:
        return [], [
            FieldError("body", f"at most {MAX_EVENTS} events per request, got {len(payload)}")
        ]
    return payload, []


def translate_events(
    events: list[Any], *, check_unstorable: bool = False
) -> tuple[Translation, list[FieldError]]:
    """Validate every event; return the activities, or every error by index and field.

    Values no backend can store as sent are refused first (too deeply
    nested, invalid Unicode; with ``check_unstorable``, set when the body may
    hold them, also U+0000 and integers beyond 64 bits).
    """
    activities: list[NewActivity] = []
    skipped: list[int] = []
    errors = RecordErrors()
    for index, event in enumerate(events):
        problems = unstorable_values(event, thorough=check_unstorable)
        if problems:
            for path, reason in problems:
                errors.add(index, path, f"{path} {reason}")
            continue
        before = len(errors)
        activity = _translate(index, event, errors)
        if len(errors) > before:
            continue
        if activity is None:
            skipped.append(index)
        else:
            activities.append(activity)
    return Translation(activities, skipped), errors.field_errors()


def translate_event(index: int, event: Any) -> tuple[NewActivity | None, list[FieldError]]:
    """One event -> a canonical activity; ``(None, [])`` when the spec says to drop it."""
    errors = RecordErrors()
    activity = _translate(index, event, errors)
    return (None if errors else activity), errors.field_errors()


def _translate(index: int, event: Any, errors: RecordErrors) -> NewActivity | None:
    """One event -> its activity, or ``None`` with its problems added to ``errors``
    (``None`` and no problem: the spec says to drop it)."""
    if not isinstance(event, dict):
        errors.add(index, "event", "each event must be a JSON object")
        return None
    before = len(errors)
    fail = errors.reporter(index)
    asset_id = _required_string(event, "asset_id", fail)
    name = event.get("activity_name")
    if name is None or (isinstance(name, str) and not name.strip()):
        fail("activity_name", MISSING_ACTIVITY_NAME)
    elif not isinstance(name, str):
        fail("activity_name", "activity_name must be a string")
    elif len(name) > MAX_NAME_LENGTH:
        fail("activity_name", f"activity_name must be at most {MAX_NAME_LENGTH} characters")

    occurred_at = _timestamp(event.get("timestamp"), fail)

    source = event.get("activity_source")
    if source is None or source == "":
        fail("activity_source", "Missing Parameter - activity_source (web or app)")
    elif not isinstance(source, str) or source.strip().lower() not in SOURCES:
        fail("activity_source", f"activity_source must be 'web' or 'app', got {source!r}")

    params = event.get("activity_params")
    if params is None:
        fail("activity_params", "Missing Parameter - activity_params (an object)")
    elif not isinstance(params, dict):
        fail("activity_params", "activity_params must be a JSON object")

    identifiers = _identifiers(event, fail)

    if len(errors) > before:
        return None
    assert isinstance(name, str)
    assert isinstance(source, str)
    assert isinstance(params, dict)
    assert occurred_at is not None
    # "if you are passing the data in the format of an array and if it is
    # blank, the system will not insert such events ... Do not Pass an Empty Array."
    if [] in params.values():
        return None
    return NewActivity(
        identifiers=identifiers,
        name=name.strip(),
        occurred_at=occurred_at,
        source=source.strip().lower(),
        dialect=DIALECT,
        asset_id=asset_id,
        properties=params,
    )


def _required_string(event: dict[str, Any], field: str, fail: Fail) -> str | None:
    value = event.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        fail(field, f"Missing Parameter - {field}")
        return None
    if not isinstance(value, str):
        fail(field, f"{field} must be a string")
        return None
    if len(value) > MAX_NAME_LENGTH:
        fail(field, f"{field} must be at most {MAX_NAME_LENGTH} characters")
        return None
    return value.strip()


def _timestamp(value: Any, fail: Fail) -> datetime | None:
    if value is None or value == "":
        fail("timestamp", "Missing Parameter - timestamp")
        return None
    if not isinstance(value, str) or not _DATETIME_RE.match(value.strip()):
        fail(
            "timestamp",
            "timestamp must be an ISO 8601 date-time such as 2021-12-29T12:06:28Z "
            f"or 2021-12-29T06:12:28+05:30, got {value!r}",
        )
        return None
    try:
        # "We currently support the UTC and ISO-8601 time zones": no zone means UTC.
        return parse_iso_datetime(value.strip(), lower_z=True)
    except ValueError:
        fail("timestamp", f"timestamp is not a representable date-time: {value!r}")
        return None


def _identifiers(event: dict[str, Any], fail: Fail) -> tuple[Identifier, ...]:
    found: list[Identifier] = []
    bad = False
    for field in IDENTIFIER_FIELDS:
        raw = event.get(field)
        if raw is None or raw == "":
            continue
        # identity is "String/Integer"; a numeric mobile is as good as a string.
        numeric = field in (IDENTITY, MOBILE)
        text = identifier_text(raw, "int" if numeric else "none")
        if text is None:
            kinds = "a string or an integer" if numeric else "a string"
            fail(field, f"{field} must be {kinds}")
            bad = True
            continue
        if not text.strip():
            continue
        try:
            found.append(normalize_identifier(field, text))
        except ValueError as exc:
            fail(field, f"{field} {exc}")
            bad = True
    if not found and not bad:
        fail(
            "identity",
            "At least one of the identifiers is required: identity, email, mobile, or anonid",
        )
    return tuple(found)
