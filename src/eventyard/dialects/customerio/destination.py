"""Destination kind ``customerio``: activities as ``event`` operations of the v2 Track API batch.

``POST <url>/api/v2/batch`` with HTTP Basic (the site id as user name, the
API key as password); ``{"batch": [operation, ...]}``, "500 KB and 32 KB an
operation". The operation is what ``translate.py`` reads, so an eventyard
receiver stores what was sent (``docs/dialects/customerio.md``, "As a
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
from eventyard.core.identifiers import ANONID, EMAIL, IDENTITY, MOBILE
from eventyard.dialects.customerio.translate import MAX_BATCH_BYTES, MAX_ENTITY_BYTES
from eventyard.dialects.toolkit.outgoing import (
    JsonArray,
    basic_authorization,
    first_value,
    indexed_reasons,
    json_array_format,
    read_json,
    refuse_all,
)

KIND = "customerio"
PATH = "/api/v2/batch"
#: Customer.io states no count per batch, only bytes; 1000 keeps requests short.
BODY = JsonArray(
    prefix=b'{"batch":[',
    suffix=b"]}",
    max_records=1000,
    max_bytes=MAX_BATCH_BYTES,
    max_record_bytes=MAX_ENTITY_BYTES,
)
#: "exactly one of id, email, phone, cio_id": the contact's, in this order.
IDENTIFIER_KEYS = ((IDENTITY, "id"), (EMAIL, "email"), (MOBILE, "phone"))


def event_operation(activity: OutgoingActivity) -> dict[str, Any]:
    """The ``event`` operation of one activity.

    ``identifiers`` holds one of the contact's ``identity`` (as ``id``),
    ``email`` or ``mobile`` (as ``phone``); an anonymous contact's event
    carries ``anonymous_id`` instead ("anonymous_id in place of
    identifiers"); a contact with none of these goes under ``id`` = its
    eventyard contact id. The operation's ``id`` is the activity id ("id:
    ULID used for dedup — a repeated value is ignored"), so a re-delivery
    is one event. ``timestamp`` is in whole unix seconds.
    """
    operation: dict[str, Any] = {"type": "person"}
    for kind, key in IDENTIFIER_KEYS:
        value = first_value(activity.identifiers, kind)
        if value is not None:
            operation["identifiers"] = {key: value}
            break
    else:
        anonymous = first_value(activity.identifiers, ANONID)
        if anonymous is not None:
            operation["anonymous_id"] = anonymous
        else:
            operation["identifiers"] = {"id": activity.contact_id}
    operation["action"] = "event"
    operation["name"] = activity.name
    operation["id"] = activity.id
    operation["timestamp"] = math.floor(activity.occurred_at.timestamp())
    operation["attributes"] = dict(activity.properties)
    return operation


def request_headers(credentials: Mapping[str, str]) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Authorization": basic_authorization(credentials["site_id"], credentials["api_key"]),
    }


def read_answer(request: OutgoingRequest, answer: ReceiverAnswer) -> AnswerReading:
    """The operations the batch refused.

    ``200 {}``: all stored. ``207 {"errors": [{"batch_index", "reason",
    "field", "message"}]}``: the named operations refused, the others
    stored. Any other answer (a 400 for the request, 413 beyond 500 KB)
    refuses every operation of the request with the answer.
    """
    ids = request.activity_ids
    if answer.status == 207:
        body = read_json(answer.body)
        errors = body.get("errors") if isinstance(body, dict) else None
        refused = indexed_reasons(ids, errors, index_key="batch_index")
        return AnswerReading(refused=refused) if refused else refuse_all(ids, answer)
    if 200 <= answer.status < 300:
        return AnswerReading()
    return refuse_all(ids, answer)


DESTINATION = json_array_format(
    kind=KIND,
    credential_fields=("site_id", "api_key"),
    path=PATH,
    shape=BODY,
    headers=request_headers,
    record=lambda activity, credentials: event_operation(activity),
    read_answer=read_answer,
)
