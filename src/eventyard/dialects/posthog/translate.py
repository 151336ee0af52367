"""PostHog capture events -> canonical activities, profile updates and group memberships.

Pure functions: the routes authenticate and read the request, these decide
what it means. The rules quote PostHog's capture API page, its person and
timestamp pages and the capture service; ``docs/dialects/posthog.md`` has
the mapping table and every decision.
"""

from __future__ import annotations

import uuid as uuid_module
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from eventyard.core.commands import Record
from eventyard.core.identifiers import ANONID, IDENTITY, Identifier, normalize_identifier
from eventyard.core.model import GroupMembership, NewActivity, ProfileUpdate
from eventyard.core.payload import decode_json, unstorable_values
from eventyard.dialects.posthog.decode import decode_body
from eventyard.dialects.posthog.errors import posthog_error, unauthorized
from eventyard.dialects.toolkit.identifiers import identifier_text
from eventyard.dialects.toolkit.records import Fail, RecordError, RecordErrors
from eventyard.dialects.toolkit.timestamps import format_utc, parse_iso_datetime

DIALECT = "posthog"
#: "the entire request body must be less than 20MB by default" (``/batch``);
#: the capture service's other paths take 2 MB (``router.rs``).
MAX_BATCH_BYTES = 20 * 1024 * 1024
MAX_EVENT_PATH_BYTES = 2 * 1024 * 1024
#: "single events over 1 MB are discarded with an ingestion warning".
MAX_EVENT_BYTES = 1024 * 1024
#: The capture service cuts a distinct_id to 200 characters.
MAX_DISTINCT_ID_LENGTH = 200
MAX_NAME_LENGTH = 255
MAX_SOURCE_LENGTH = 32
DEFAULT_SOURCE = "api"
#: Distinct ids PostHog refuses to merge on ``$identify``/``$create_alias``
#: (``isDistinctIdIllegal`` of the ingestion's person-merge service): values
#: that clients send by mistake and that would merge unrelated people.
ILLEGAL_MERGE_IDS = frozenset(
    {
        "anonymous",
        "guest",
        "distinctid",
        "distinct_id",
        "id",
        "not_authenticated",
        "email",
        "undefined",
        "true",
        "false",
    }
)
ILLEGAL_MERGE_IDS_CASED = frozenset({"[object Object]", "NaN", "None", "none", "null", "0"})
#: Event names that change persons rather than record what a person did.
IDENTIFY, CREATE_ALIAS, MERGE_DANGEROUSLY = "$identify", "$create_alias", "$merge_dangerously"
SET, SET_ONCE, GROUP_IDENTIFY = "$set", "$set_once", "$groupidentify"
PERSON_EVENTS = frozenset(
    {IDENTIFY, CREATE_ALIAS, MERGE_DANGEROUSLY, SET, SET_ONCE, GROUP_IDENTIFY}
)
#: Properties that carry the project API key: never stored with the event.
TOKEN_PROPERTIES = ("token", "$token")

#: One event's problem: its index in the request's events, field, why.
EventProblem = RecordError


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """A capture body: its events, the one project API key they name, the batch's keys."""

    events: list[Any]
    api_key: str
    sent_at: Any = None
    historical_migration: bool = False
    suspicious: bool = False


@dataclass
class Translation:
    """The valid events as records, and what was wrong with the others."""

    records: list[Record] = field(default_factory=list)
    #: ``positions[i]`` is the index among the request's events of ``records[i]``.
    positions: list[int] = field(default_factory=list)
    errors: list[EventProblem] = field(default_factory=list)
    #: ``(slot in records, anonymous id)`` of each ``$identify`` that merges one.
    aliases: list[tuple[int, str]] = field(default_factory=list)

    @property
    def dropped(self) -> int:
        return len({problem.index for problem in self.errors})


# --- the request ---------------------------------------------------------


def parse_request(body: bytes, max_bytes: int) -> ParsedRequest:
    """The events and the API key of a capture body, whatever its encoding and shape.

    Shapes (``v0_request.rs``, tried in order): an array of events
    (posthog-js), a batch ``{"api_key", "batch": [...], "sent_at",
    "historical_migration"}``, or one event. "a request must resolve to
    exactly one token — none → error, different tokens in one batch → error".
    """
    text = decode_body(body, max_bytes)
    try:
        payload = decode_json(text)
    except ValueError as exc:
        raise posthog_error(f"failed to parse request: {exc}", attr="body") from exc
    value = payload.value
    batch_key: Any = None
    sent_at: Any = None
    historical = False
    if isinstance(value, list):
        events = value
    elif isinstance(value, dict) and "batch" in value:
        events = value["batch"]
        if not isinstance(events, list):
            raise posthog_error(
                "failed to parse request: batch must be an array of events", attr="batch"
            )
        batch_key = _first_key(value)
        sent_at = value.get("sent_at")
        historical = value.get("historical_migration") is True
    elif isinstance(value, dict) and "event" in value:
        events = [value]
    else:
        raise posthog_error(
            "failed to parse request: the body must be an event, an array of events or"
            ' {"api_key": …, "batch": [...]}',
            attr="body",
        )
    if not events:
        raise posthog_error("request holds no event", attr="batch")
    return ParsedRequest(
        events=events,
        api_key=_request_key(events, batch_key),
        sent_at=sent_at,
        historical_migration=historical,
        suspicious=payload.suspicious,
    )


def _first_key(holder: dict[str, Any]) -> str | None:
    """``api_key``, also spelled ``token`` or ``$token``, of a body or an event."""
    for name in ("api_key", "token", "$token"):
        value = holder.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _request_key(events: list[Any], batch_key: str | None) -> str:
    """The one key of the request: each event's own (or ``properties.token``), or the batch's."""
    keys: set[str] = set()
    for event in events:
        if not isinstance(event, dict):
            continue
        key = _first_key(event)
        properties = event.get("properties")
        if key is None and isinstance(properties, dict):
            key = _first_key(properties)
        if key is not None:
            keys.add(key)
    if batch_key is not None:
        keys.add(batch_key)
    if not keys:
        raise unauthorized("event submitted without an api_key", code="missing_api_key")
    if len(keys) > 1:
        raise unauthorized(
            "batch submitted with inconsistent api_key values", code="inconsistent_api_key"
        )
    return keys.pop()


# --- the events ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Clock:
    """What an event's time is computed from besides its own fields."""

    now: datetime
    #: The batch's ``sent_at`` (or the query's ``_``), when the client sent one.
    sent_at: datetime | None


def request_clock(parsed: ParsedRequest, query_sent_ms: str | None, now: datetime) -> Clock:
    """``sent_at`` "comes from the batch body (ISO) or the ``_`` query parameter (ms)"."""
    sent_at = _iso(parsed.sent_at)
    if sent_at is None and query_sent_ms is not None and query_sent_ms.strip().isdigit():
        millis = int(query_sent_ms.strip())
        # "values that look like seconds are ignored"
        if millis >= 10**11:
            try:
                sent_at = datetime.fromtimestamp(millis / 1000, now.tzinfo)
            except (OverflowError, OSError, ValueError):
                sent_at = None
    return Clock(now, sent_at)


def translate_events(parsed: ParsedRequest, clock: Clock) -> Translation:
    """Every event -> its records, or the problems that drop it (answered 200 all the same)."""
    translation = Translation()
    errors = RecordErrors(translation.errors)
    for index, event in enumerate(parsed.events):
        before = len(errors)
        fail = errors.reporter(index)
        records, alias = translate_event(event, clock, thorough=parsed.suspicious, fail=fail)
        if len(errors) > before:
            continue
        if alias is not None:
            translation.aliases.append((len(translation.records), alias))
        for record in records:
            translation.records.append(record)
            translation.positions.append(index)
    return translation


def translate_event(
    event: Any, clock: Clock, *, thorough: bool, fail: Fail
) -> tuple[list[Record], str | None]:
    """One event -> its records (and a merged anonymous id); problems go to ``fail``."""
    if not isinstance(event, dict):
        fail("event", "each event must be a JSON object")
        return [], None
    if _too_large_or_unstorable(event, thorough, fail):
        return [], None
    name = event.get("event")
    if not isinstance(name, str) or not name.strip():
        fail("event", "event submitted with an empty event name")
        return [], None
    if len(name) > MAX_NAME_LENGTH:
        fail("event", f"event is {len(name)} characters; at most {MAX_NAME_LENGTH}")
    properties = event.get("properties")
    if properties is None:
        properties = {}
    elif not isinstance(properties, dict):
        fail("properties", "properties must be an object")
        return [], None
    distinct_id = _distinct_id(event, properties, fail)
    message_id = _uuid(event, fail)
    person = _person_changes(event, properties, fail)
    if distinct_id is None:
        return [], None
    # "$process_person_profile: false = personless event: no person created/updated"
    personless = properties.get("$process_person_profile") is False
    # posthog-js marks events of a visitor not yet identified ``$is_identified: false``;
    # the distinct_id of an $identify is the identified one by definition.
    anonymous = personless or (properties.get("$is_identified") is False and name != IDENTIFY)
    own = _identifier(ANONID if anonymous else IDENTITY, distinct_id, "distinct_id", fail)
    if own is None:
        return [], None
    if personless and name in PERSON_EVENTS:
        fail(
            "properties.$process_person_profile",
            f"{name} sent personless ($process_person_profile: false) changes no person: dropped",
        )
        return [], None
    keys = _MessageIds(message_id)
    if name == GROUP_IDENTIFY:
        return _group_identify(distinct_id, properties, keys, fail), None
    records: list[Record] = []
    alias: str | None = None
    if name == IDENTIFY:
        update, alias = _identify(own, distinct_id, properties, person.set, keys, fail)
        records.append(update)
        records.extend(person.updates(own, keys, skip_set=True))
    elif name in (CREATE_ALIAS, MERGE_DANGEROUSLY):
        records.extend(_create_alias(name, own, distinct_id, properties, keys, fail))
        records.extend(person.updates(own, keys))
    elif name in (SET, SET_ONCE):
        records.extend(person.updates(own, keys, always=True))
    else:
        if not personless:
            records.extend(person.updates(own, keys))
            records.extend(_memberships(own, properties, keys, fail))
        records.insert(0, _activity(name, own, event, properties, clock, keys.main, fail))
    return records, alias


def _too_large_or_unstorable(event: dict[str, Any], thorough: bool, fail: Fail) -> bool:
    try:
        size = len(orjson.dumps(event))
        serializable = True
    except (orjson.JSONEncodeError, TypeError):
        size, serializable = 0, False
    if size > MAX_EVENT_BYTES:
        fail("event", f"maximum event size exceeded: {size} bytes, the limit is 1 MB")
        return True
    if thorough or not serializable:
        problems = unstorable_values(event, thorough=True)
        for path, reason in problems:
            fail(path, f"{path} {reason}")
        return bool(problems)
    return False


def _distinct_id(event: dict[str, Any], properties: dict[str, Any], fail: Fail) -> str | None:
    """``distinct_id`` (also ``$distinct_id``, else ``properties.distinct_id``) as text.

    "any JSON value (stringified, NUL replaced, cut to 200 chars)".
    """
    raw = None
    places = ((event, "distinct_id"), (event, "$distinct_id"), (properties, "distinct_id"))
    for holder, key in places:
        if holder.get(key) is not None:
            raw = holder[key]
            break
    if raw is None:
        fail("distinct_id", "event submitted without a distinct_id")
        return None
    text = identifier_text(raw, "int_or_float")
    if text is None:
        text = orjson.dumps(raw).decode() if isinstance(raw, (dict, list, bool)) else str(raw)
    text = text.replace("\x00", "\ufffd")[:MAX_DISTINCT_ID_LENGTH].strip()
    if not text:
        fail("distinct_id", "event submitted with an empty distinct_id")
        return None
    return text


def _uuid(event: dict[str, Any], fail: Fail) -> str | None:
    """``uuid``: the event's identity and dedup key; "empty string = absent"."""
    raw = event.get("uuid")
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        fail("uuid", "uuid must be a string (a UUID)")
        return None
    try:
        return str(uuid_module.UUID(raw.strip()))
    except ValueError:
        # "an invalid UUID makes ingestion drop the event"
        fail("uuid", f"uuid {raw!r} is not a valid UUID")
        return None


def _identifier(kind: str, value: str, key: str, fail: Fail) -> Identifier | None:
    try:
        return normalize_identifier(kind, value)
    except ValueError as exc:
        fail(key, f"{key} {exc}")
        return None


@dataclass(frozen=True, slots=True)
class _MessageIds:
    """The dedup key of each record an event makes: its ``uuid``, suffixed for the extra ones.

    The first record claims the uuid itself; a retried event finds every one
    of its records already claimed and none is applied twice.
    """

    main: str | None

    def derived(self, role: str) -> str | None:
        return None if self.main is None else f"{self.main}/{role}"


@dataclass(frozen=True, slots=True)
class _PersonChanges:
    """``$set``, ``$set_once`` and ``$unset`` of an event (top level and properties)."""

    set: dict[str, Any]
    set_once: dict[str, Any]
    unset: tuple[str, ...]
    present: bool

    def updates(
        self, own: Identifier, keys: _MessageIds, *, skip_set: bool = False, always: bool = False
    ) -> list[Record]:
        """The profile updates: ``$set`` overwrites, ``$set_once`` fills only what is missing,
        ``$unset`` writes null (eventyard keeps the key, without a value)."""
        updates: list[Record] = []
        if (self.set and not skip_set) or (always and not self.present):
            updates.append(
                ProfileUpdate((own,), dict(self.set), DIALECT, message_id=keys.derived("set"))
            )
        if self.set_once:
            updates.append(
                ProfileUpdate(
                    (own,),
                    dict(self.set_once),
                    DIALECT,
                    strategy="fill_empty",
                    message_id=keys.derived("set_once"),
                )
            )
        if self.unset:
            updates.append(
                ProfileUpdate(
                    (own,), dict.fromkeys(self.unset), DIALECT, message_id=keys.derived("unset")
                )
            )
        if always and updates:
            first = updates[0]
            assert isinstance(first, ProfileUpdate)
            updates[0] = ProfileUpdate(
                first.identifiers,
                first.attributes,
                DIALECT,
                strategy=first.strategy,
                message_id=keys.main,
            )
        return updates


def _person_changes(
    event: dict[str, Any], properties: dict[str, Any], fail: Fail
) -> _PersonChanges:
    """ "``$set``, ``$set_once`` (top-level person-property maps, also accepted inside
    ``properties``)" and ``$unset`` (a list of property names); the top level wins."""
    maps: dict[str, dict[str, Any]] = {}
    for key in ("$set", "$set_once"):
        merged: dict[str, Any] = {}
        for holder, path in ((properties, f"properties.{key}"), (event, key)):
            value = holder.get(key)
            if value is None:
                continue
            if not isinstance(value, dict):
                fail(path, f"{path} must be an object of person properties")
                continue
            merged.update(value)
        maps[key] = merged
    unset: list[str] = []
    for holder, path in ((properties, "properties.$unset"), (event, "$unset")):
        value = holder.get("$unset")
        if value is None:
            continue
        if isinstance(value, dict):
            value = list(value)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            fail(path, f"{path} must be a list of property names")
            continue
        unset.extend(value)
    keys = ("$set", "$set_once", "$unset")
    present = any(key in holder for holder in (event, properties) for key in keys)
    return _PersonChanges(maps["$set"], maps["$set_once"], tuple(dict.fromkeys(unset)), present)


def merge_refused(distinct_id: str) -> bool:
    """Whether PostHog refuses to merge on ``distinct_id`` (an "illegal" distinct id)."""
    return distinct_id.lower() in ILLEGAL_MERGE_IDS or distinct_id in ILLEGAL_MERGE_IDS_CASED


def _identify(
    own: Identifier,
    distinct_id: str,
    properties: dict[str, Any],
    attributes: dict[str, Any],
    keys: _MessageIds,
    fail: Fail,
) -> tuple[Record, str | None]:
    """``$identify``: "merge anon person into identified person; marks person identified".

    ``properties.$anon_distinct_id`` joins the contact as an anonymous id
    (``anonid``), or as the user id ``identity`` where a contact already has
    it (settled in the write transaction); an illegal one merges nothing.
    """
    identifiers = [own]
    alias: str | None = None
    raw = properties.get("$anon_distinct_id")
    anon = identifier_text(raw, "int") if raw is not None else None
    if anon is not None:
        anon = anon.replace("\x00", "\ufffd")[:MAX_DISTINCT_ID_LENGTH].strip()
    if anon and anon != distinct_id and not merge_refused(anon) and not merge_refused(distinct_id):
        earlier = _identifier(ANONID, anon, "properties.$anon_distinct_id", fail)
        if earlier is not None:
            identifiers.append(earlier)
            alias = anon
    update = ProfileUpdate(tuple(identifiers), dict(attributes), DIALECT, message_id=keys.main)
    return update, alias


def _create_alias(
    name: str,
    own: Identifier,
    distinct_id: str,
    properties: dict[str, Any],
    keys: _MessageIds,
    fail: Fail,
) -> list[Record]:
    """``$create_alias``: "merge ``alias`` person into ``distinct_id`` person".

    The alias joins the contact of the distinct_id as a user id
    (``identity``): later events sent with it find the same contact. For
    ``$merge_dangerously`` the alias's contact is merged in even when known.
    """
    raw = properties.get("alias")
    text = identifier_text(raw, "int") if raw is not None else None
    if text is None or not text.strip():
        fail("properties.alias", f"{name} needs properties.alias: the distinct id to merge")
        return []
    alias = text.replace("\x00", "\ufffd")[:MAX_DISTINCT_ID_LENGTH].strip()
    if merge_refused(alias) or merge_refused(distinct_id):
        fail("properties.alias", f"refused to merge on an illegal distinct id ({alias!r})")
        return []
    other = _identifier(IDENTITY, alias, "properties.alias", fail)
    if other is None:
        return []
    if name == MERGE_DANGEROUSLY and other != own:
        # "merge with no restriction": the alias's person is merged into the
        # distinct_id's, identified or not ("target wins on conflicts"),
        # audited and revertible.
        return [ProfileUpdate((own,), {}, DIALECT, message_id=keys.main, absorbs=(other,))]
    return [ProfileUpdate(tuple(dict.fromkeys((own, other))), {}, DIALECT, message_id=keys.main)]


def _group_identify(
    distinct_id: str, properties: dict[str, Any], keys: _MessageIds, fail: Fail
) -> list[Record]:
    """``$groupidentify``: "create/update group" ``$group_type``/``$group_key`` with ``$group_set``.

    Groups are not persons, and the SDKs invent the event's distinct_id
    (posthog-python a random uuid4, posthog-node ``$<type>_<key>``): the
    group's properties are kept on the membership of an anonymous stand-in
    contact (``anonid`` = that distinct_id), never on a person's contact.
    """
    group_id = _group_id(properties.get("$group_type"), properties.get("$group_key"), fail)
    traits = properties.get("$group_set")
    if traits is None:
        traits = {}
    if not isinstance(traits, dict):
        fail("properties.$group_set", "properties.$group_set must be an object")
        return []
    stand_in = _identifier(ANONID, distinct_id, "distinct_id", fail)
    if group_id is None or stand_in is None:
        return []
    return [GroupMembership((stand_in,), group_id, dict(traits), DIALECT, message_id=keys.main)]


def _group_id(group_type: Any, group_key: Any, fail: Fail, path: str = "properties") -> str | None:
    """``<group type>:<group key>``, the group's id in eventyard (``company:acme``)."""
    kind = group_type if isinstance(group_type, str) and group_type.strip() else None
    key = identifier_text(group_key, "int")
    if kind is None:
        fail(f"{path}.$group_type", "$group_type is required (a string)")
    if key is None or not key.strip():
        fail(f"{path}.$group_key", "$group_key is required (a string or an integer)")
    if kind is None or key is None or not key.strip():
        return None
    group_id = f"{kind.strip()}:{key.strip()}"
    if len(group_id) > MAX_NAME_LENGTH:
        fail(f"{path}.$group_key", f"the group id is at most {MAX_NAME_LENGTH} characters")
        return None
    return group_id


def _memberships(
    own: Identifier, properties: dict[str, Any], keys: _MessageIds, fail: Fail
) -> list[Record]:
    """``properties.$groups = {type: key}``: "attach event to groups (does not create group)";
    eventyard records the contact's membership of each (traits untouched)."""
    groups = properties.get("$groups")
    if groups is None:
        return []
    if not isinstance(groups, dict):
        fail("properties.$groups", "properties.$groups must be an object {group type: key}")
        return []
    memberships: list[Record] = []
    for group_type, group_key in groups.items():
        group_id = _group_id(group_type, group_key, fail, "properties.$groups")
        if group_id is not None:
            memberships.append(
                GroupMembership((own,), group_id, {}, DIALECT, message_id=keys.derived(group_id))
            )
    return memberships


def _activity(
    name: str,
    own: Identifier,
    event: dict[str, Any],
    properties: dict[str, Any],
    clock: Clock,
    message_id: str | None,
    fail: Fail,
) -> NewActivity:
    kept = {k: v for k, v in properties.items() if k not in TOKEN_PROPERTIES}
    context: dict[str, Any] = {
        key: event[key] for key in ("uuid", "timestamp", "offset") if event.get(key) is not None
    }
    if clock.sent_at is not None:
        context["sent_at"] = format_utc(clock.sent_at)
    context["received_at"] = format_utc(clock.now)
    return NewActivity(
        identifiers=(own,),
        name=name,
        occurred_at=occurrence(event, properties, clock),
        source=activity_source(properties),
        dialect=DIALECT,
        properties=kept,
        context=context,
        message_id=message_id,
    )


def occurrence(event: dict[str, Any], properties: dict[str, Any], clock: Clock) -> datetime:
    """When the event happened (docs/data/timestamps).

    "``timestamp`` and ``sent_at`` both present → stored = ``timestamp`` +
    (server receive time - ``sent_at``)"; with ``$ignore_sent_at: true`` the
    ``timestamp`` as is; ``offset`` only (ms) → receive time - offset;
    nothing → receive time. "Unparseable timestamps are ignored".
    """
    timestamp = _iso(event.get("timestamp"))
    if timestamp is not None:
        if clock.sent_at is None or properties.get("$ignore_sent_at") is True:
            return timestamp
        try:
            return timestamp + (clock.now - clock.sent_at)
        except OverflowError:
            return timestamp
    offset = event.get("offset")
    if isinstance(offset, int) and not isinstance(offset, bool):
        try:
            return clock.now - timedelta(milliseconds=offset)
        except OverflowError:
            return clock.now
    return clock.now


def _iso(raw: Any) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        return parse_iso_datetime(raw.strip(), lower_z=True)
    except ValueError:
        return None


def activity_source(properties: dict[str, Any]) -> str:
    """``properties.$lib`` (``posthog-python``, ``posthog-node``, ``web``), else ``api``."""
    lib = properties.get("$lib")
    if isinstance(lib, str) and lib.strip():
        return lib.strip()[:MAX_SOURCE_LENGTH]
    return DEFAULT_SOURCE
