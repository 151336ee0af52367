"""Destination kind ``mixpanel``: activities as events of the strict ``/import``.

``POST <url>/import?strict=1`` with the project secret as Basic user name
("Project secret (legacy): ``Basic base64(<api_secret>:)``"); a JSON array of
events, each with ``time``, ``distinct_id`` and ``$insert_id``, which strict
import requires. The event is what ``translate.py`` reads, so an eventyard
receiver stores what was sent (``docs/dialects/mixpanel.md``, "As a
destination").
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
from eventyard.dialects.mixpanel.translate import DEVICE_PREFIX, MAX_RECORDS
from eventyard.dialects.toolkit.outgoing import (
    JsonArray,
    basic_authorization,
    first_value,
    indexed_reasons,
    json_array_format,
    read_json,
    refuse_all,
)

KIND = "mixpanel"
PATH = "/import?strict=1"
#: "10 MB uncompressed" per request, each record "< 1 MB" (read as 10^6 bytes,
#: which also fits an eventyard receiver's 10 MiB and 1 MiB).
BODY = JsonArray(
    prefix=b"[",
    suffix=b"]",
    max_records=MAX_RECORDS,
    max_bytes=10_000_000,
    max_record_bytes=1_000_000,
)


def import_event(activity: OutgoingActivity) -> dict[str, Any]:
    """The ``/import`` event of one activity.

    ``distinct_id`` is the contact's ``identity``; an anonymous contact's is
    ``$device:<anonid>`` (how Mixpanel names a device), and a contact known
    by identity and device also sends ``$device_id``. A contact with neither
    goes under its eventyard contact id. ``$insert_id`` is the activity id
    ("≤ 36 bytes; only alphanumerics and -"): "Dedup key: (event,
    distinct_id, time, $insert_id)", so a re-delivery is one event.
    ``mp_lib`` carries the activity's source when the properties have none.
    """
    user_id = first_value(activity.identifiers, IDENTITY)
    device_id = first_value(activity.identifiers, ANONID)
    properties: dict[str, Any] = dict(activity.properties)
    properties.setdefault("mp_lib", activity.source)
    if user_id is not None:
        properties["distinct_id"] = user_id
        if device_id is not None:
            properties["$device_id"] = device_id
    elif device_id is not None:
        properties["distinct_id"] = DEVICE_PREFIX + device_id
    else:
        properties["distinct_id"] = activity.contact_id
    properties["time"] = _milliseconds(activity)
    properties["$insert_id"] = activity.id
    return {"event": activity.name, "properties": properties}


def _milliseconds(activity: OutgoingActivity) -> int:
    moment = activity.occurred_at
    return int(moment.timestamp()) * 1000 + moment.microsecond // 1000


def request_headers(credentials: Mapping[str, str]) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Authorization": basic_authorization(credentials["api_secret"]),
    }


def read_answer(request: OutgoingRequest, answer: ReceiverAnswer) -> AnswerReading:
    """The events ``/import`` did not take.

    200 ``{"code": 200, "num_records_imported": n, "status": "OK"}``: all
    taken. 400 ``{"code": 400, "error": "some data points in the request
    failed validation", "num_records_imported": n, "failed_records":
    [{"index", "insert_id", "field", "message"}]}``: a "partial success", the
    named events refused and the others imported. Any other answer (a 400
    without ``failed_records``, 413) refuses every event of the request.
    """
    ids = request.activity_ids
    if 200 <= answer.status < 300:
        return AnswerReading()
    body = read_json(answer.body)
    failed = body.get("failed_records") if isinstance(body, dict) else None
    refused = indexed_reasons(ids, failed)
    if answer.status == 400 and refused:
        return AnswerReading(refused=refused)
    return refuse_all(ids, answer)


DESTINATION = json_array_format(
    kind=KIND,
    credential_fields=("api_secret",),
    path=PATH,
    shape=BODY,
    headers=request_headers,
    record=lambda activity, credentials: import_event(activity),
    read_answer=read_answer,
)
