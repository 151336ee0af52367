"""Destination kind ``amplitude``: activities as events of the HTTP V2 API.

``POST <url>/2/httpapi`` with ``{"api_key", "events": [...], "options"}``:
Amplitude has no auth header, the key travels in the body. The event is what
``translate.py`` reads, so an eventyard receiver stores what was sent
(``docs/dialects/amplitude.md``, "As a destination").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eventyard.core.delivery import (
    AnswerReading,
    OutgoingActivity,
    OutgoingRequest,
    ReceiverAnswer,
)
from eventyard.core.identifiers import ANONID, IDENTITY
from eventyard.dialects.amplitude.translate import DIALECT, LOCATION_FIELDS, MAX_EVENTS
from eventyard.dialects.toolkit.outgoing import (
    JsonArray,
    dump_json,
    first_value,
    indexed_reasons,
    json_array_format,
    read_json,
    refuse_all,
)

KIND = "amplitude"
PATH = "/2/httpapi"
#: "min_id_length": ids are sent as the contact holds them, however short
#: ("An ID shorter than the minimum is removed from the event").
OPTIONS = b'"options":{"min_id_length":1}'
#: 2000 events and 1 MB (10^6 bytes, inside an eventyard receiver's 1 MiB) per request.
BODY = JsonArray(
    prefix=b'{"events":[',
    suffix=b"]," + OPTIONS + b"}",
    max_records=MAX_EVENTS,
    max_bytes=1_000_000,
)
#: The answer's maps of field -> indexes of the events at fault.
PROBLEM_MAPS = (
    "events_with_invalid_fields",
    "events_with_missing_fields",
    "events_with_invalid_id_lengths",
)


def amplitude_event(activity: OutgoingActivity) -> dict[str, Any]:
    """The event of one activity.

    ``user_id`` is the contact's ``identity``, ``device_id`` its ``anonid``;
    a contact with neither goes under its eventyard contact id.
    ``insert_id`` is the activity id: "Amplitude ignores subsequent events
    sent with the same insert_id on the same device_id ... in the past 7
    days", so a re-delivery is one event.
    """
    event: dict[str, Any] = {}
    user_id = first_value(activity.identifiers, IDENTITY)
    device_id = first_value(activity.identifiers, ANONID)
    if user_id is None and device_id is None:
        user_id = activity.contact_id
    if user_id is not None:
        event["user_id"] = user_id
    if device_id is not None:
        event["device_id"] = device_id
    event["event_type"] = activity.name
    moment = activity.occurred_at
    event["time"] = int(moment.timestamp()) * 1000 + moment.microsecond // 1000
    event["event_properties"] = dict(activity.properties)
    event["insert_id"] = activity.id
    event["library"] = activity.source
    if activity.value_milli is not None:
        event["revenue"] = activity.value_milli / 1000
    if activity.dialect == DIALECT and activity.location:
        event.update({k: v for k, v in activity.location.items() if k in LOCATION_FIELDS})
    return event


def body_prefix(credentials: Mapping[str, str]) -> bytes:
    return b'{"api_key":' + dump_json(credentials["api_key"]) + b',"events":['


def read_answer(request: OutgoingRequest, answer: ReceiverAnswer) -> AnswerReading:
    """The events Amplitude refused.

    200 ``{"code": 200, "events_ingested": N, ...}``: all taken. 400
    ``{"code": 400, "error": "Invalid field values on some events",
    "events_with_invalid_fields": {"time": [3]}, "events_with_missing_fields":
    {"event_type": [0]}}``: the listed events "fail and all others are
    retried" (an eventyard receiver stores none of the request), and its
    ``errors`` ``[{"index", "field", "message"}]`` say why. Any other answer
    (a 400 for the request, "Invalid API key", a 413) refuses every event.
    """
    ids = request.activity_ids
    if 200 <= answer.status < 300:
        return AnswerReading()
    body = read_json(answer.body)
    if answer.status != 400 or not isinstance(body, dict):
        return refuse_all(ids, answer)
    refused = indexed_reasons(ids, body.get("errors"))
    for name in PROBLEM_MAPS:
        problems = body.get(name)
        for field, indexes in problems.items() if isinstance(problems, dict) else ():
            positions = indexes if isinstance(indexes, list) else []
            listed = [{"index": i, "message": f"{name}: {field}"} for i in positions]
            for activity_id, reason in indexed_reasons(ids, listed).items():
                refused.setdefault(activity_id, reason)
    if not refused:
        return refuse_all(ids, answer)
    return AnswerReading(refused=refused, resend_others=len(refused) < len(ids))


DESTINATION = json_array_format(
    kind=KIND,
    credential_fields=("api_key",),
    path=PATH,
    shape=BODY,
    record=lambda activity, credentials: amplitude_event(activity),
    read_answer=read_answer,
    prefix=body_prefix,
)
