"""Destination kind ``ortto``: activities as custom activity events of ``activities/create``.

``POST <url>/v1/activities/create`` with ``X-Api-Key``; ``{"activities":
[…]}``, "Max activities per request | 100", "Max payload size | 2 MB". Ortto
only takes typed field ids and ``act:cm:`` activity ids: an activity received
in another dialect is given them by the documented rules below, and one
received as Ortto goes back as it came (``docs/dialects/ortto.md``, "As a
destination").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from eventyard.core.definitions import (
    ACTIVITY_ID_PREFIX,
    MAX_ACTIVITY_ID_LENGTH,
    MAX_FIELD_NAME_LENGTH,
    check_activity_id,
    field_type,
)
from eventyard.core.delivery import (
    AnswerReading,
    OutgoingActivity,
    OutgoingRequest,
    ReceiverAnswer,
)
from eventyard.core.identifiers import EMAIL, MOBILE, Identifier
from eventyard.dialects.ortto.translate import (
    CONVERSION_VALUE,
    MAX_ACTIVITIES,
    MAX_INT,
    MAX_MERGE_BY,
)
from eventyard.dialects.toolkit.outgoing import (
    JsonArray,
    dump_json,
    json_array_format,
    numbered_name,
    quote_answer,
    read_json,
    refuse_all,
)
from eventyard.dialects.toolkit.timestamps import format_utc

KIND = "ortto"
PATH = "/v1/activities/create"
#: "Max payload size | 2 MB", read as 2 000 000 bytes (an eventyard receiver
#: allows 2 MiB, so this fits both).
MAX_BODY_BYTES = 2_000_000
BODY = JsonArray(
    prefix=b'{"activities":[', suffix=b"]}", max_records=MAX_ACTIVITIES, max_bytes=MAX_BODY_BYTES
)
#: Person fields of the identifier kinds Ortto has fields for.
PERSON_FIELDS = {EMAIL: "str::email", MOBILE: "str::phone"}
#: The activity name of an activity whose name keeps no letter or digit.
FALLBACK_NAME = "activity"

_NOT_NAME = re.compile(r"[^a-z0-9]+")
_NOT_FIELD = re.compile(r"[^a-z0-9_-]+")


def activity_id(name: str) -> str:
    """The ``act:cm:`` id of an activity name.

    A name that is one already stays; another is lower-cased, every run of
    characters other than letters and digits becomes a hyphen, and it is cut
    to fit the 200 characters of an id: ``Order Completed`` ->
    ``act:cm:order-completed``.
    """
    try:
        return check_activity_id(name)
    except ValueError:
        pass
    room = MAX_ACTIVITY_ID_LENGTH - len(ACTIVITY_ID_PREFIX)
    slug = _NOT_NAME.sub("-", name.lower()).strip("-")[:room].strip("-")
    return ACTIVITY_ID_PREFIX + (slug or FALLBACK_NAME)


def typed_attributes(properties: Mapping[str, Any]) -> dict[str, Any]:
    """Properties as ``type:cm:field`` attributes.

    A key that is a field id already (an activity received as Ortto) stays
    with its value. Another key becomes a field name (lower-cased, runs of
    characters other than letters, digits, ``_`` and ``-`` become ``-``, at
    most 100; a key with none of them is written in hex) typed by its value:
    text ``str``, ``true``/``false`` ``bol``, an integer within 64 bits
    ``int``, an object ``obj``, ``null`` ``str``; a decimal number, a larger
    integer or an array has no Ortto type and is sent as ``str``, its JSON
    text. Two keys that make the same id get ``-2``, ``-3`` … in order.
    """
    attributes: dict[str, Any] = {}
    for key, value in properties.items():
        try:
            field_type(key)
        except ValueError:
            pass
        else:
            attributes.setdefault(key, value)
            continue
        kind, sent = _typed(value)
        prefix = f"{kind}:cm:"
        field_id = numbered_name(
            prefix + _field_name(key), attributes, len(prefix) + MAX_FIELD_NAME_LENGTH
        )
        attributes[field_id] = sent
    return attributes


def _typed(value: Any) -> tuple[str, Any]:
    if isinstance(value, bool):
        return "bol", value
    if isinstance(value, int) and -MAX_INT <= value <= MAX_INT:
        return "int", value
    if isinstance(value, Mapping):
        return "obj", value
    if value is None or isinstance(value, str):
        return "str", value
    return "str", dump_json(value).decode()


def _field_name(key: str) -> str:
    name = _NOT_FIELD.sub("-", key.lower()).strip("-")
    if not name:
        name = "x-" + key.encode().hex()
    return name[:MAX_FIELD_NAME_LENGTH]


def person(activity: OutgoingActivity) -> tuple[dict[str, str], list[str]]:
    """``fields`` and ``merge_by`` naming the activity's contact.

    ``str::email`` and ``str::phone`` are sent whenever the contact has them
    (a receiver takes them as identifiers wherever they are). ``merge_by``
    holds at most two ("max 2"): the e-mail first, then the contact's other
    identifiers in order as custom fields ``str:cm:<kind>`` (``identity`` ->
    ``str:cm:identity``), then the phone. A contact with none goes under
    ``str:cm:contact-id``, its eventyard contact id.
    """
    fields: dict[str, str] = {}
    others: list[str] = []
    for identifier in activity.identifiers:
        field_id = _field_of(identifier)
        if field_id in fields:
            continue
        fields[field_id] = identifier.value
        if identifier.kind not in PERSON_FIELDS:
            others.append(field_id)
    if not fields:
        fields["str:cm:contact-id"] = activity.contact_id
        others.append("str:cm:contact-id")
    order = [
        *(["str::email"] if "str::email" in fields else []),
        *others,
        *(["str::phone"] if "str::phone" in fields else []),
    ]
    merge_by = order[:MAX_MERGE_BY]
    kept = {
        field_id: value
        for field_id, value in fields.items()
        if field_id in PERSON_FIELDS.values() or field_id in merge_by
    }
    return kept, merge_by


def _field_of(identifier: Identifier) -> str:
    return PERSON_FIELDS.get(identifier.kind) or f"str:cm:{identifier.kind.lower()}"


def ortto_activity(activity: OutgoingActivity) -> dict[str, Any]:
    """The activity object of one activity.

    ``key`` is the activity id: "If same ``key`` + ``created`` pair sent
    multiple times, Ortto merges requests", so a re-delivery is stored once.
    """
    attributes = typed_attributes(activity.properties)
    if activity.value_milli is not None:
        attributes.setdefault(CONVERSION_VALUE, activity.value_milli)
    fields, merge_by = person(activity)
    body: dict[str, Any] = {
        "activity_id": activity_id(activity.name),
        "attributes": attributes,
        "fields": fields,
        "merge_by": merge_by,
        "created": format_utc(activity.occurred_at),
        "key": activity.id,
    }
    if activity.location:
        body["location"] = dict(activity.location)
    return body


def request_headers(credentials: Mapping[str, str]) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Api-Key": credentials["api_key"]}


def read_answer(request: OutgoingRequest, answer: ReceiverAnswer) -> AnswerReading:
    """The activities Ortto did not take, with its reason.

    The spec's answer lists one result per activity, in request order:
    ``{"activities": [{"person_id": "…", "status": "ingested", "person_status":
    "created", "activity_id": "act:cm:product-purchase"}]}`` (``"queued"``
    when processed asynchronously). An eventyard receiver gives a refused
    one ``error`` instead: ``{"activity_id": "act:cm:product-purchase",
    "error": "activities[0]: activity_id 'act:cm:product-purchase' has no
    activity definition; create it first"}``, with status 200 when another
    was taken and 400 when none was. An answer without that list ("400 Bad
    Request - Invalid parameters or malformed JSON", "413 Payload Too
    Large") refuses every activity of the request with the answer.
    """
    ids = request.activity_ids
    body = read_json(answer.body)
    results = body.get("activities") if isinstance(body, dict) else None
    if not isinstance(results, list) or len(results) != len(ids):
        if 200 <= answer.status < 300:
            return AnswerReading()
        return refuse_all(ids, answer)
    refused: dict[str, str] = {}
    for activity, result in zip(ids, results, strict=True):
        if not isinstance(result, dict):
            refused[activity] = quote_answer(answer)
        elif result.get("status") not in {"ingested", "queued"}:
            refused[activity] = str(result.get("error") or result)
    return AnswerReading(refused=refused)


DESTINATION = json_array_format(
    kind=KIND,
    credential_fields=("api_key",),
    path=PATH,
    shape=BODY,
    headers=request_headers,
    record=lambda activity, credentials: ortto_activity(activity),
    read_answer=read_answer,
)
