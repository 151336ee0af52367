"""Destination kind ``posthog``: activities as events of the capture API's ``/batch/``.

``POST <url>/batch/`` with ``{"api_key", "batch": [...]}``: the project API
key travels in the body. The event is what ``translate.py`` reads, so an
eventyard receiver stores what was sent (``docs/dialects/posthog.md``, "As a
destination").
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from eventyard.core.delivery import (
    AnswerReading,
    OutgoingActivity,
    OutgoingRequest,
    ReceiverAnswer,
)
from eventyard.core.identifiers import ANONID, IDENTITY
from eventyard.dialects.posthog.routes import REJECTED_HEADER
from eventyard.dialects.posthog.translate import MAX_EVENT_BYTES
from eventyard.dialects.toolkit.outgoing import (
    JsonArray,
    dump_json,
    first_value,
    json_array_format,
    read_dropped_count,
    refuse_all,
)
from eventyard.dialects.toolkit.timestamps import format_utc

KIND = "posthog"
PATH = "/batch/"
#: PostHog takes 20 MB per ``/batch`` (an eventyard receiver, 16 MiB by
#: default); batches stay far below, as its SDKs' do. "single events over
#: 1 MB are discarded": such an event goes alone.
BODY = JsonArray(
    prefix=b'{"batch":[',
    suffix=b"]}",
    max_records=1000,
    max_bytes=5_000_000,
    max_record_bytes=MAX_EVENT_BYTES,
)
#: The namespace of the event uuids made from activity ids.
UUID_NAMESPACE = uuid.UUID("6c5ad3c0-3c39-4a8e-9f3e-1d7b7a0f2f4e")


def event_uuid(activity: OutgoingActivity) -> str:
    """The event's ``uuid``, the same on every delivery: "uuid is the event identity …
    Retried SDK sends keep the same uuid", so a re-delivery is one event."""
    return str(uuid.uuid5(UUID_NAMESPACE, activity.id))


def capture_event(activity: OutgoingActivity) -> dict[str, Any]:
    """The event of one activity.

    ``distinct_id`` is the contact's ``identity``; an anonymous contact's
    ``anonid`` goes with ``$is_identified: false`` (how posthog-js marks a
    visitor not yet identified); a contact with neither goes under its
    eventyard contact id. ``$lib`` carries the activity's source when the
    properties have none.
    """
    user_id = first_value(activity.identifiers, IDENTITY)
    properties: dict[str, Any] = dict(activity.properties)
    properties.setdefault("$lib", activity.source)
    if user_id is None and (anonymous := first_value(activity.identifiers, ANONID)) is not None:
        distinct_id = anonymous
        properties["$is_identified"] = False
    else:
        distinct_id = user_id or activity.contact_id
    return {
        "event": activity.name,
        "distinct_id": distinct_id,
        "properties": properties,
        "timestamp": format_utc(activity.occurred_at),
        "uuid": event_uuid(activity),
    }


def body_prefix(credentials: Mapping[str, str]) -> bytes:
    return b'{"api_key":' + dump_json(credentials["api_key"]) + b',"batch":['


def read_answer(request: OutgoingRequest, answer: ReceiverAnswer) -> AnswerReading:
    """What PostHog's answer says of the request's events.

    Success is ``200 {"status": 1}``; events "with no name, no distinct_id,
    or an empty distinct_id are dropped but still get 200", unnamed. An
    eventyard receiver counts them in ``X-Eventyard-Rejected-Events``: when
    that is every event of the request, all were refused. A 4xx the
    machinery does not retry (400 ``{"type": "validation_error", "detail"}``,
    413) refuses every event of the request with the answer.
    """
    if 200 <= answer.status < 300:
        return read_dropped_count(request.activity_ids, answer, REJECTED_HEADER)
    return refuse_all(request.activity_ids, answer)


DESTINATION = json_array_format(
    kind=KIND,
    credential_fields=("api_key",),
    path=PATH,
    shape=BODY,
    record=lambda activity, credentials: capture_event(activity),
    read_answer=read_answer,
    prefix=body_prefix,
)
