"""Destination kind ``clevertap``: activities as event records of the Upload Events API.

``POST <url>/1/upload`` with ``X-CleverTap-Account-Id`` and
``X-CleverTap-Passcode``; ``{"d": [record, …]}``, "1000 event records ...
per API call". The record is what ``translate.py`` reads, so an eventyard
receiver stores what was sent (``docs/dialects/clevertap.md``, "As a
destination").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from eventyard.core.delivery import (
    AnswerReading,
    OutgoingActivity,
    OutgoingRequest,
    ReceiverAnswer,
)
from eventyard.core.identifiers import EMAIL, IDENTITY, MOBILE
from eventyard.dialects.clevertap.translate import MAX_RECORDS, USER_ID_FIELDS
from eventyard.dialects.toolkit.outgoing import (
    JsonArray,
    first_value,
    json_array_format,
    quote_answer,
    read_json,
    refuse_all,
)

KIND = "clevertap"
PATH = "/1/upload"
#: The spec sets no byte limit; a body stays well inside an eventyard
#: receiver's default ``EVENTYARD_MAX_BODY_BYTES`` (16 MiB).
MAX_BODY_BYTES = 4 * 1024 * 1024
BODY = JsonArray(prefix=b'{"d":[', suffix=b"]}", max_records=MAX_RECORDS, max_bytes=MAX_BODY_BYTES)


def event_record(activity: OutgoingActivity) -> dict[str, Any]:
    """The event record of one activity.

    "You have to set a value for one of these parameters to identify the
    user: identity, FBID, GPID, or objectId": every identifier of those
    kinds is sent. A contact with none of them is sent under ``identity``
    = its e-mail, else its mobile number ("It can be the user's email, a
    phone number, or any other identifier"), else its eventyard contact id.
    """
    record: dict[str, Any] = {}
    for kind in USER_ID_FIELDS:
        value = first_value(activity.identifiers, kind)
        if value is not None:
            record[kind] = value
    if not record:
        record[IDENTITY] = (
            first_value(activity.identifiers, EMAIL)
            or first_value(activity.identifiers, MOBILE)
            or activity.contact_id
        )
    # "ts ... Formatted as a UNIX epoch in seconds": the fraction is dropped.
    record["ts"] = math.floor(activity.occurred_at.timestamp())
    record["type"] = "event"
    record["evtName"] = activity.name
    record["evtData"] = dict(activity.properties)
    return record


def request_headers(credentials: Mapping[str, str]) -> dict[str, str]:
    return {
        "Content-Type": "application/json; charset=utf-8",
        "X-CleverTap-Account-Id": credentials["account_id"],
        "X-CleverTap-Passcode": credentials["passcode"],
    }


def read_answer(request: OutgoingRequest, answer: ReceiverAnswer) -> AnswerReading:
    """The records CleverTap did not process.

    The spec's answer: ``{"status": <success, partial, fail>, "processed":
    <count>, "unprocessed": [{"status": "fail", "code": <error code>,
    "error": <error msg>, "record": <record>}]}``. An entry names its record
    by ``index`` when it has one, else by the ``record`` it echoes, matched
    against the records sent in order (an eventyard receiver echoes "the
    record exactly as sent", in the order of ``d``). A 4xx refuses every
    record of the request with the answer.
    """
    ids = request.activity_ids
    body = read_json(answer.body)
    if not 200 <= answer.status < 300 or not isinstance(body, dict):
        return refuse_all(ids, answer)
    unprocessed = body.get("unprocessed")
    if not isinstance(unprocessed, list) or not unprocessed:
        return AnswerReading()
    sent = read_json(request.body)["d"]
    refused: dict[str, str] = {}
    after = 0
    for entry in unprocessed:
        if not isinstance(entry, dict):
            continue
        position = _position(entry, sent, after, refused, ids)
        if position is None:
            continue
        refused[ids[position]] = f"{entry.get('code')}: {entry.get('error')}"
        after = position + 1
    if len(refused) < len(unprocessed) and body.get("status") == "fail":
        # "fail": nothing was processed, whatever could not be matched.
        reason = quote_answer(answer)
        refused = {activity_id: refused.get(activity_id, reason) for activity_id in ids}
    return AnswerReading(refused=refused)


def _position(
    entry: dict[str, Any],
    sent: list[Any],
    after: int,
    refused: dict[str, str],
    ids: tuple[str, ...],
) -> int | None:
    """The position in ``d`` of the record an ``unprocessed`` entry is about."""
    index = entry.get("index")
    if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(sent):
        return index
    record = entry.get("record")
    order: list[int] = [*range(after, len(sent)), *range(after)]
    for position in order:
        if sent[position] == record and ids[position] not in refused:
            return position
    return None


DESTINATION = json_array_format(
    kind=KIND,
    credential_fields=("account_id", "passcode"),
    path=PATH,
    shape=BODY,
    headers=request_headers,
    record=lambda activity, credentials: event_record(activity),
    read_answer=read_answer,
)
