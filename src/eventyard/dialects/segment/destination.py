"""Destination kind ``segment``: activities as ``track`` calls to a Segment-protocol collector.

``POST <url>/v1/batch`` with the write key as Basic user name and an empty
password ("taking a Segment source Write Key ... as the username, adding a
colon, and then the password field is left empty"). The mapping is the
inbound one of ``translate.py`` read backwards, so an eventyard receiver
stores what was sent (``docs/dialects/segment.md``, "As a destination").
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
from eventyard.core.identifiers import ANONID, EMAIL, IDENTITY, MOBILE
from eventyard.dialects.segment.translate import DIALECT, MAX_BATCH_BYTES, MAX_MESSAGE_BYTES
from eventyard.dialects.toolkit.outgoing import (
    JsonArray,
    basic_authorization,
    first_value,
    json_array_format,
    read_batch_refusal,
    read_dropped_count,
)
from eventyard.dialects.toolkit.timestamps import format_utc

KIND = "segment"
PATH = "/v1/batch"
#: Segment's batch has no count limit of its own; its SDKs send at most 100
#: calls per batch, and 500 KB (``MAX_BATCH_BYTES``) is the real bound.
MAX_CALLS = 1000
#: The count of calls an eventyard receiver dropped from a batch it answered 200.
REJECTED_HEADER = "x-eventyard-rejected-messages"
BODY = JsonArray(
    prefix=b'{"batch":[',
    suffix=b"]}",
    max_records=MAX_CALLS,
    max_bytes=MAX_BATCH_BYTES,
    max_record_bytes=MAX_MESSAGE_BYTES,
)


def message_id(activity: OutgoingActivity) -> str:
    """The call's ``messageId``: the same for every delivery of one activity, so
    a receiver that deduplicates on it ("Segment deduplicates events using the
    messageId field") stores a re-delivery once."""
    return f"eventyard-{activity.id}"


def track_call(activity: OutgoingActivity) -> dict[str, Any]:
    """The ``track`` call of one activity."""
    call: dict[str, Any] = {"type": "track", "messageId": message_id(activity)}
    user_id = first_value(activity.identifiers, IDENTITY)
    anonymous_id = first_value(activity.identifiers, ANONID)
    if user_id is None and anonymous_id is None:
        # "The HTTP API requires that each payload has a userId and/or
        # anonymousId": a contact known by neither goes under its own id.
        user_id = activity.contact_id
    if user_id is not None:
        call["userId"] = user_id
    if anonymous_id is not None:
        call["anonymousId"] = anonymous_id
    call["event"] = activity.name
    call["properties"] = dict(activity.properties)
    call["timestamp"] = format_utc(activity.occurred_at)
    context, integrations = _context(activity)
    call["context"] = context
    if integrations is not None:
        call["integrations"] = integrations
    return call


def _context(activity: OutgoingActivity) -> tuple[dict[str, Any], Any]:
    """The call's ``context`` (and ``integrations``) from the stored context.

    An activity received as Segment keeps its call's ``context`` and
    ``integrations`` under those keys; another dialect's stored context is
    sent as the context itself. ``library.name`` carries the activity's
    ``source`` when the context has no library (the receiver reads its
    source from it), and ``traits`` the contact's e-mail and phone when it
    has no traits.
    """
    stored = activity.context or {}
    integrations = None
    if activity.dialect == DIALECT:
        inner = stored.get("context")
        context = dict(inner) if isinstance(inner, Mapping) else {}
        integrations = stored.get("integrations")
    else:
        context = dict(stored)
    context.setdefault("library", {"name": activity.source})
    traits = {
        key: value
        for key, value in (
            ("email", first_value(activity.identifiers, EMAIL)),
            ("phone", first_value(activity.identifiers, MOBILE)),
        )
        if value is not None
    }
    if traits:
        context.setdefault("traits", traits)
    return context, integrations if isinstance(integrations, Mapping) else None


def request_headers(credentials: Mapping[str, str]) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Authorization": basic_authorization(credentials["write_key"]),
    }


def read_answer(request: OutgoingRequest, answer: ReceiverAnswer) -> AnswerReading:
    """What Segment's answer says of the request's calls.

    "Segment returns a 200 response for all API requests except errors
    caused by large payloads and JSON errors (which return 400 responses.)"
    A 200 takes the batch; Segment names no call it drops afterwards. An
    eventyard receiver counts them in ``X-Eventyard-Rejected-Messages``:
    when that count is every call of the request, all were refused.

    A 400 refuses the whole batch. eventyard's names the call at fault
    (``{"errors": [{"index": 1, "field": "batch[1]", "message": ...}]}``):
    those are refused and the others sent again without them. Without
    indexes, or on another 4xx, every call is refused with the answer.
    """
    ids = request.activity_ids
    if 200 <= answer.status < 300:
        return read_dropped_count(ids, answer, REJECTED_HEADER)
    return read_batch_refusal(ids, answer, reason_key="message")


DESTINATION = json_array_format(
    kind=KIND,
    credential_fields=("write_key",),
    path=PATH,
    shape=BODY,
    headers=request_headers,
    record=lambda activity, credentials: track_call(activity),
    read_answer=read_answer,
)
