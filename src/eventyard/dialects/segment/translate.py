"""Segment Tracking API messages -> canonical activities, profile updates, group memberships.

Pure functions: the routes authenticate and read the request, these decide
what it means. Rules quote Segment's HTTP Tracking API page and its Spec
(``docs/dialects/segment.md`` has the mapping table and every decision).
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
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
from eventyard.core.model import GroupMembership, NewActivity, ProfileUpdate
from eventyard.core.payload import unstorable_values
from eventyard.dialects.segment.errors import segment_error
from eventyard.dialects.toolkit.identifiers import identifier_text
from eventyard.dialects.toolkit.records import Fail, RecordError, RecordErrors
from eventyard.dialects.toolkit.timestamps import (
    NotADateTime,
    OutOfRange,
    format_utc,
    parse_iso_datetime,
)

DIALECT = "segment"
#: "There is a maximum of 32KB per normal API request. The batch API endpoint
#: accepts a maximum of 500KB per request, with a limit of 32KB per event in
#: the batch." (KB read as 1024 bytes, as Segment's own SDKs count them:
#: ``MAX_MSG_SIZE = 32 << 10``.)
MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
CALL_TYPES = ("identify", "track", "page", "screen", "group", "alias")
PAGE_VIEWED = "Page Viewed"
SCREEN_VIEWED = "Screen Viewed"
#: When a message's ``context.library.name`` says nothing.
DEFAULT_SOURCE = "api"
MAX_SOURCE_LENGTH = 32
MAX_NAME_LENGTH = 255
MAX_MESSAGE_ID_LENGTH = 255
MAX_GROUP_ID_LENGTH = 255
MISSING_ID = "The HTTP API requires that each payload has a userId and/or anonymousId"

#: One message's problem: its index in ``batch`` (0 for a single call), field, why.
MessageProblem = RecordError


@dataclass(frozen=True, slots=True)
class Envelope:
    """What a request says for all its messages (a ``batch`` body's own keys)."""

    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    sent_at: Any = None


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    messages: list[Any]
    envelope: Envelope
    #: The body's own ``writeKey`` (a batch's, or a single call's).
    write_key: str | None
    #: The first message's ``writeKey``, for a batch without one of its own.
    first_message_key: str | None
    #: Set when the body may hold values no backend can store as sent.
    suspicious: bool
    #: Indexes of the messages that the fast JSON codec wrote when measuring
    #: them: nothing in them is nested too deeply or invalid Unicode.
    serializable: frozenset[int] = frozenset()


@dataclass
class Translation:
    """The valid messages as records, and what was wrong with the others."""

    records: list[Record] = field(default_factory=list)
    #: ``positions[i]`` is the index in ``batch`` of ``records[i]``.
    positions: list[int] = field(default_factory=list)
    #: Messages dropped, with why.
    errors: list[MessageProblem] = field(default_factory=list)
    #: ``(slot in records, previousId)`` of every alias: the route decides
    #: whether ``previousId`` names a user id or an anonymous id.
    aliases: list[tuple[int, str]] = field(default_factory=list)

    @property
    def dropped(self) -> int:
        return len({problem.index for problem in self.errors})


# --- the request ---------------------------------------------------------


def parse_request(
    payload: Any, call_type: str | None, *, suspicious: bool = False
) -> ParsedRequest:
    """The messages of a ``/v1/batch`` body (``call_type`` None) or of a single call.

    A body that is not an object, or a batch without a ``batch`` array, is a
    400; so is a message of more than 32 KB. Every other problem belongs to
    one message and drops only it.
    """
    if not isinstance(payload, dict):
        raise segment_error("the body must be a JSON object", field="body")
    if call_type is not None:
        return ParsedRequest(
            messages=[payload],
            envelope=Envelope(),
            write_key=_key(payload.get("writeKey")),
            first_message_key=None,
            suspicious=suspicious,
        )
    messages = payload.get("batch")
    if not isinstance(messages, list):
        raise segment_error(
            'the body must have "batch": an array of identify, track, page, screen, group'
            " and alias calls",
            field="batch",
        )
    serializable: set[int] = set()
    for index, message in enumerate(messages):
        try:
            size = len(orjson.dumps(message))
            serializable.add(index)
        except (orjson.JSONEncodeError, TypeError):
            size = message_size(message)
        if size > MAX_MESSAGE_BYTES:
            raise segment_error(
                f"batch[{index}] is {size} bytes; the limit is {MAX_MESSAGE_BYTES} bytes"
                " (32KB) per event in the batch",
                field=f"batch[{index}]",
                index=index,
            )
    first = messages[0] if messages and isinstance(messages[0], dict) else {}
    context, integrations = payload.get("context"), payload.get("integrations")
    return ParsedRequest(
        messages=messages,
        envelope=Envelope(
            context=context if isinstance(context, dict) else None,
            integrations=integrations if isinstance(integrations, dict) else None,
            sent_at=payload.get("sentAt"),
        ),
        write_key=_key(payload.get("writeKey")),
        first_message_key=_key(first.get("writeKey")),
        suspicious=suspicious,
        serializable=frozenset(serializable),
    )


def _key(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def message_size(message: Any) -> int:
    """Bytes of ``message`` as compact JSON (what Segment's SDKs measure)."""
    try:
        return len(orjson.dumps(message))
    except (orjson.JSONEncodeError, TypeError):
        # Integers beyond 64 bits: the standard codec writes them.
        return len(json.dumps(message, separators=(",", ":")).encode("utf-8", "surrogatepass"))


# --- the messages --------------------------------------------------------


def translate_messages(
    parsed: ParsedRequest,
    call_type: str | None,
    *,
    now: datetime,
    write_key: str | None,
) -> Translation:
    """Every message -> a record, or the problems that drop it (answered 200 all the same).

    ``write_key`` is the key the request authenticated with: a message naming
    another ``writeKey`` belongs to another source and is dropped.
    """
    translation = Translation()
    errors = RecordErrors(translation.errors)
    for index, message in enumerate(parsed.messages):
        before = len(errors)
        record, previous_id = translate_message(
            message,
            call_type,
            parsed.envelope,
            now=now,
            write_key=write_key,
            thorough=parsed.suspicious,
            fail=errors.reporter(index),
            serializable=index in parsed.serializable,
        )
        if len(errors) > before or record is None:
            continue
        if previous_id is not None:
            translation.aliases.append((len(translation.records), previous_id))
        translation.records.append(record)
        translation.positions.append(index)
    return translation


def translate_message(
    message: Any,
    call_type: str | None,
    envelope: Envelope,
    *,
    now: datetime,
    write_key: str | None,
    thorough: bool,
    fail: Fail,
    serializable: bool = False,
) -> tuple[Record | None, str | None]:
    """One message -> its record (and an alias's ``previousId``); problems go to ``fail``.

    ``serializable``: the fast JSON codec already wrote ``message`` (when its
    size was measured), so unless ``thorough`` it holds nothing unstorable.
    """
    if not isinstance(message, dict):
        fail("message", "each call must be a JSON object")
        return None, None
    if (thorough or not serializable) and (
        problems := unstorable_values(message, thorough=thorough)
    ):
        for path, reason in problems:
            fail(path, f"{path} {reason}")
        return None, None
    kind = call_type or message.get("type")
    if kind not in CALL_TYPES:
        shown = "missing" if kind is None else repr(kind)
        fail("type", f"type must be one of {', '.join(CALL_TYPES)} ({shown})")
        return None, None
    key = message.get("writeKey")
    if (
        isinstance(key, str)
        and key
        and write_key is not None
        and not hmac.compare_digest(key.encode(), write_key.encode())
    ):
        fail("writeKey", "writeKey names another source than the request's write key")
        return None, None
    user_id = _id_value(message, "userId", fail)
    anonymous_id = _id_value(message, "anonymousId", fail)
    message_id = _message_id(message, fail)
    occurred_at = occurrence(message, envelope, now, fail)
    context = kept_context(message, envelope, now, fail)
    identifiers = tuple(
        ident
        for ident in (
            _identifier(IDENTITY, user_id, "userId", fail),
            _identifier(ANONID, anonymous_id, "anonymousId", fail),
        )
        if ident is not None
    )
    if kind == "alias":
        return _alias(message, user_id, identifiers, message_id, fail)
    if user_id is None and anonymous_id is None:
        fail("userId", MISSING_ID)
    if kind == "identify":
        traits = _identify_traits(message, fail)
        extra = _trait_identifiers(traits or {})
        record: Record = ProfileUpdate(
            identifiers=tuple(dict.fromkeys((*identifiers, *extra))),
            attributes=traits or {},
            dialect=DIALECT,
            message_id=message_id,
        )
    elif kind == "group":
        group_id = _text_id(message, "groupId", MAX_GROUP_ID_LENGTH, fail)
        traits = _object(message, "traits", fail)
        record = GroupMembership(
            identifiers=identifiers,
            group_id=group_id or "",
            traits=traits or {},
            dialect=DIALECT,
            message_id=message_id,
        )
    else:
        name, properties = _activity(kind, message, fail)
        record = NewActivity(
            identifiers=identifiers,
            name=name,
            occurred_at=occurred_at,
            source=activity_source(context),
            dialect=DIALECT,
            properties=properties,
            context=context,
            message_id=message_id,
        )
    return record, None


def _alias(
    message: dict[str, Any],
    user_id: str | None,
    identifiers: tuple[Identifier, ...],
    message_id: str | None,
    fail: Fail,
) -> tuple[Record | None, str | None]:
    """Alias: "associate one identity with another": ``previousId`` and ``userId``.

    The record carries ``identity:userId`` and, for now, ``anonid:previousId``;
    the route makes it ``identity:previousId`` when that is what names a contact.
    """
    previous = _text_id(message, "previousId", MAX_NAME_LENGTH, fail)
    if user_id is None:
        fail("userId", "an alias needs the userId that previousId becomes")
    if previous is None or user_id is None:
        return None, None
    previous_id = _identifier(ANONID, previous, "previousId", fail)
    if previous_id is None:
        return None, None
    user = tuple(i for i in identifiers if i.kind == IDENTITY)
    record = ProfileUpdate(
        identifiers=(*user, previous_id),
        attributes={},
        dialect=DIALECT,
        message_id=message_id,
    )
    return record, previous_id.value


def _activity(kind: str, message: dict[str, Any], fail: Fail) -> tuple[str, dict[str, Any]]:
    properties = _object(message, "properties", fail) or {}
    if kind == "track":
        event = message.get("event")
        if not isinstance(event, str) or not event.strip():
            fail("event", "All Track events sent to Segment must have an event field")
            return "", properties
        if len(event) > MAX_NAME_LENGTH:
            fail("event", f"event is {len(event)} characters; at most {MAX_NAME_LENGTH}")
        return event, properties
    # page/screen: "name" and "category" are kept as properties of the same names.
    properties = dict(properties)
    for key in ("name", "category"):
        value = message.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            fail(key, f"{key} must be a string")
            continue
        properties[key] = value
    return (PAGE_VIEWED if kind == "page" else SCREEN_VIEWED), properties


def _identify_traits(message: dict[str, Any], fail: Fail) -> dict[str, Any] | None:
    """``traits``, over ``context.traits`` key by key.

    RudderStack's SDK sends an identify's traits only as ``context.traits``
    ("putting traits inside context"); Segment's at the top level.
    """
    own = _object(message, "traits", fail)
    context = message.get("context")
    shared = context.get("traits") if isinstance(context, dict) else None
    if not isinstance(shared, dict):
        return own
    return {**shared, **(own or {})}


def _trait_identifiers(traits: dict[str, Any]) -> tuple[Identifier, ...]:
    """``traits.email`` and ``traits.phone`` as identifiers ``email`` and ``mobile``.

    A value that is no valid e-mail address or phone number stays an
    attribute as sent (the call is not lost) but names no contact.
    """
    found: list[Identifier] = []
    for trait, kind in (("email", EMAIL), ("phone", MOBILE)):
        text = identifier_text(traits.get(trait), "int" if kind == MOBILE else "none")
        if text is None or not text.strip():
            continue
        try:
            found.append(normalize_identifier(kind, text))
        except ValueError:
            continue
    return tuple(found)


def _id_value(message: dict[str, Any], key: str, fail: Fail) -> str | None:
    """``userId``/``anonymousId``: a string or a number; null or "" means none."""
    raw = message.get(key)
    if raw is None:
        return None
    text = identifier_text(raw, "int_or_float")
    if text is None:
        fail(key, f"{key} must be a string or a number")
        return None
    return text.strip() or None


def _identifier(kind: str, value: str | None, key: str, fail: Fail) -> Identifier | None:
    if value is None:
        return None
    try:
        return normalize_identifier(kind, value)
    except ValueError as exc:
        fail(key, f"{key} {exc}")
        return None


def _text_id(message: dict[str, Any], key: str, limit: int, fail: Fail) -> str | None:
    text = identifier_text(message.get(key), "int")
    if text is None or not text.strip():
        fail(key, f"{key} is required (a string)")
        return None
    if len(text) > limit:
        fail(key, f"{key} is {len(text)} characters; at most {limit}")
        return None
    return text


def _message_id(message: dict[str, Any], fail: Fail) -> str | None:
    raw = message.get("messageId")
    if raw is None or raw == "":
        return None
    text = identifier_text(raw, "int")
    if text is None:
        fail("messageId", "messageId must be a string")
        return None
    if len(text) > MAX_MESSAGE_ID_LENGTH:
        fail("messageId", f"messageId is {len(text)} characters; at most {MAX_MESSAGE_ID_LENGTH}")
        return None
    return text


def _object(message: dict[str, Any], key: str, fail: Fail) -> dict[str, Any] | None:
    value = message.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        fail(key, f"{key} must be an object")
        return None
    return value


# --- timestamps and context ----------------------------------------------


def parse_timestamp(value: Any) -> datetime:
    """An ISO 8601 date string in UTC ("All timestamps are ISO-8601 date strings").

    Without an offset it is UTC; ``2015-2-02T00:30:08.276Z`` (from Segment's
    own batch example) has a one-digit month and is read as ``2015-02-02``.
    ``ValueError`` says what is wrong.
    """
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date string")
    try:
        return parse_iso_datetime(value.strip(), loose_date=True)
    except NotADateTime as exc:
        raise ValueError(f"{value!r} is not an ISO 8601 date-time") from exc
    except OutOfRange as exc:
        raise ValueError(f"{value!r} is out of range") from exc


#: :func:`parse_timestamp` of a ``sentAt`` string, remembered: the messages of
#: a batch share it (a refusal is not remembered).
_parse_sent_at = lru_cache(maxsize=64)(parse_timestamp)


def occurrence(message: dict[str, Any], envelope: Envelope, now: datetime, fail: Fail) -> datetime:
    """When it happened: ``receivedAt - (sentAt - timestamp)``, Segment's skew correction.

    The client's time is ``timestamp``, else ``originalTimestamp``; without
    either it is ``receivedAt`` (now): "leave out the timestamp and Segment
    servers will timestamp the requests for you". Without ``sentAt`` (the
    message's, else the batch's) the client's time is taken as it is.
    """
    key = "timestamp" if message.get("timestamp") is not None else "originalTimestamp"
    raw = message.get(key)
    if raw is None:
        return now
    try:
        client_time = parse_timestamp(raw)
    except ValueError as exc:
        fail(key, f"{key} {exc}")
        return now
    raw_sent = message.get("sentAt")
    if raw_sent is None:
        raw_sent = envelope.sent_at
    if raw_sent is None:
        return client_time
    try:
        sent_at = (
            _parse_sent_at(raw_sent) if isinstance(raw_sent, str) else parse_timestamp(raw_sent)
        )
    except ValueError as exc:
        fail("sentAt", f"sentAt {exc}")
        return now
    try:
        return client_time + (now - sent_at)
    except OverflowError:
        fail(key, f"{key} corrected by sentAt falls outside the years 1 to 9999")
        return now


def kept_context(
    message: dict[str, Any], envelope: Envelope, now: datetime, fail: Fail
) -> dict[str, Any]:
    """What the activity keeps of the message: ``context``, ``integrations``,
    ``_metadata`` as sent (a batch's own ``context``/``integrations`` "merged
    with any context inside each of the items", the item's keys winning), the
    ``messageId`` and the original timestamps next to ``receivedAt``."""
    kept: dict[str, Any] = {}
    for key, shared in (("context", envelope.context), ("integrations", envelope.integrations)):
        own = message.get(key)
        if own is not None and not isinstance(own, dict):
            fail(key, f"{key} must be an object")
            own = None
        if shared or own is not None:
            kept[key] = {**(shared or {}), **(own or {})}
    for key in ("_metadata", "messageId", "timestamp", "originalTimestamp", "sentAt"):
        if message.get(key) is not None:
            kept[key] = message[key]
    if "sentAt" not in kept and envelope.sent_at is not None:
        kept["sentAt"] = envelope.sent_at
    kept["receivedAt"] = _received_at(now)
    return kept


@lru_cache(maxsize=8)
def _received_at(now: datetime) -> str:
    """``now`` as ``receivedAt``: written once for all the messages of a request."""
    return format_utc(now)


def activity_source(context: dict[str, Any]) -> str:
    """``context.library.name`` (``analytics-python``), else ``api``."""
    library = (context.get("context") or {}).get("library")
    name = library.get("name") if isinstance(library, dict) else None
    if isinstance(name, str) and name.strip():
        return name.strip()[:MAX_SOURCE_LENGTH]
    return DEFAULT_SOURCE
