"""Destination kind ``netcore``: activities as events of the Add Activity API.

``POST <url>/v1/activity/upload`` with the ``api-key`` header; a JSON array
of events, "up to 1000 in one request". The event is what ``translate.py``
reads, so an eventyard receiver stores what was sent
(``docs/dialects/netcore.md``, "As a destination").
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
from eventyard.core.identifiers import IDENTITY
from eventyard.dialects.netcore.translate import IDENTIFIER_FIELDS, MAX_EVENTS, SOURCES
from eventyard.dialects.toolkit.outgoing import (
    JsonArray,
    first_value,
    header_value,
    json_array_format,
    read_batch_refusal,
)
from eventyard.dialects.toolkit.timestamps import format_utc

KIND = "netcore"
PATH = "/v1/activity/upload"
#: The spec sets no byte limit; a body stays well inside an eventyard
#: receiver's default ``EVENTYARD_MAX_BODY_BYTES`` (16 MiB).
MAX_BODY_BYTES = 4 * 1024 * 1024
BODY = JsonArray(prefix=b"[", suffix=b"]", max_records=MAX_EVENTS, max_bytes=MAX_BODY_BYTES)
#: ``asset_id`` of an activity that has none, when the credentials name none.
DEFAULT_ASSET_ID = "eventyard"
#: ``activity_source`` of an activity whose source is neither ``web`` nor ``app``.
DEFAULT_SOURCE = "web"
#: Indexes of events an eventyard receiver skipped (an empty array in activity_params).
SKIPPED_HEADER = "x-eventyard-skipped-events"
SKIPPED = (
    "not inserted: activity_params held an empty array ('if it is blank, the system will"
    " not insert such events')"
)


def activity_event(activity: OutgoingActivity, asset_id: str | None) -> dict[str, Any]:
    """The event of one activity (``asset_id``: the destination's, for activities without one)."""
    event: dict[str, Any] = {
        "asset_id": activity.asset_id or asset_id or DEFAULT_ASSET_ID,
        "activity_name": activity.name,
        "timestamp": format_utc(activity.occurred_at),
    }
    # "At least one of the identifiers is required: identity, email, mobile, or anonid."
    for kind in IDENTIFIER_FIELDS:
        value = first_value(activity.identifiers, kind)
        if value is not None:
            event[kind] = value
    if len(event) == 3:
        event[IDENTITY] = activity.contact_id
    source = activity.source.strip().lower()
    event["activity_source"] = source if source in SOURCES else DEFAULT_SOURCE
    # "if you are passing the data in the format of an array and if it is blank,
    # the system will not insert such events ... Do not Pass an Empty Array."
    # The event is sent without the key rather than lost.
    event["activity_params"] = {
        key: value for key, value in activity.properties.items() if value != []
    }
    return event


def request_headers(credentials: Mapping[str, str]) -> dict[str, str]:
    return {"Content-Type": "application/json", "api-key": credentials["api_key"]}


def read_answer(request: OutgoingRequest, answer: ReceiverAnswer) -> AnswerReading:
    """What Netcore's answer says of the request's events.

    The spec's only answer is ``{"status": "success"}``; an eventyard
    receiver names the events it skipped in ``X-Eventyard-Skipped-Events``
    (0-based indexes), which are refused. A 400 ("400 | Bad Request |
    Missing Parameter - Activity Name") stores nothing of the request; an
    eventyard receiver lists every invalid event, ``"errors": [{"index": 1,
    "field": "activity_name", "reason": "Missing Parameter - Activity Name"}]``:
    those are refused and the others sent again without them. A 400 naming
    no event, and any other 4xx, refuses every event with the answer.
    """
    ids = request.activity_ids
    if 200 <= answer.status < 300:
        skipped = header_value(answer.headers, SKIPPED_HEADER) or ""
        positions = {int(p) for p in skipped.split(",") if p.strip().isdigit()}
        return AnswerReading(refused={ids[p]: SKIPPED for p in sorted(positions) if p < len(ids)})
    return read_batch_refusal(ids, answer, reason_key="reason")


DESTINATION = json_array_format(
    kind=KIND,
    credential_fields=("api_key",),
    path=PATH,
    shape=BODY,
    headers=request_headers,
    record=lambda activity, credentials: activity_event(activity, credentials.get("asset_id")),
    read_answer=read_answer,
    optional_credential_fields=("asset_id",),
)
