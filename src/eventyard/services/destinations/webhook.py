"""The ``webhook`` kind: eventyard's own activity JSON, signed, to any HTTPS endpoint.

Each request is ``POST url`` of ``{"activities": [...]}``: each activity as
the read API lists it (``GET /api/v1/contacts/{id}/activities``) plus its
``contact_id`` and the contact's ``identifiers`` at delivery time, with

- ``X-Eventyard-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed
  with the destination's secret>``,
- ``X-Eventyard-Delivery: <delivery id>`` (the same on every attempt).

A 2xx answer delivers the request; any other 4xx the machinery does not
handle itself refuses every activity of it (dead letters, with the answer).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from eventyard.core.activity_document import activity_json
from eventyard.core.delivery import (
    AnswerReading,
    DestinationFormat,
    OutgoingActivity,
    OutgoingRequest,
    ReceiverAnswer,
)

KIND = "webhook"
MAX_RECORDS = 500
MAX_BYTES = 1_000_000
#: Most characters of the receiver's answer kept as a dead letter's reason.
REASON_LENGTH = 500


def webhook_activity(activity: OutgoingActivity) -> dict[str, Any]:
    """The activity as a webhook receives it."""
    return {
        **activity_json(activity),
        "contact_id": activity.contact_id,
        "identifiers": [{"kind": i.kind, "value": i.value} for i in activity.identifiers],
    }


def signature(secret: str, body: bytes) -> str:
    """The ``X-Eventyard-Signature`` of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def build_requests(
    url: str,
    credentials: Mapping[str, str],
    activities: Sequence[OutgoingActivity],
    delivery_id: str,
) -> list[OutgoingRequest]:
    """Requests of at most ``MAX_RECORDS`` activities and ``MAX_BYTES`` each, in order."""
    encoded = [orjson.dumps(webhook_activity(a)) for a in activities]
    groups: list[list[int]] = []
    size = 0
    for index, item in enumerate(encoded):
        # '{"activities":[' + items joined by ',' + ']}'
        grown = size + len(item) + 1
        if not groups or len(groups[-1]) >= MAX_RECORDS or grown + 16 > MAX_BYTES:
            groups.append([])
            grown = len(item) + 1
        groups[-1].append(index)
        size = grown
    requests = []
    for group in groups:
        body = b'{"activities":[' + b",".join(encoded[i] for i in group) + b"]}"
        requests.append(
            OutgoingRequest(
                method="POST",
                url=url,
                headers={
                    "Content-Type": "application/json",
                    "X-Eventyard-Signature": signature(credentials["secret"], body),
                    "X-Eventyard-Delivery": delivery_id,
                },
                body=body,
                activity_ids=tuple(activities[i].id for i in group),
            )
        )
    return requests


def read_answer(request: OutgoingRequest, answer: ReceiverAnswer) -> AnswerReading:
    if 200 <= answer.status < 300:
        return AnswerReading()
    text = answer.body[:REASON_LENGTH].decode(errors="replace")
    reason = f"HTTP {answer.status}: {text}" if text else f"HTTP {answer.status}"
    return AnswerReading(refused=dict.fromkeys(request.activity_ids, reason))


WEBHOOK = DestinationFormat(
    kind=KIND,
    credential_fields=("secret",),
    max_records=MAX_RECORDS,
    max_bytes=MAX_BYTES,
    build_requests=build_requests,
    read_answer=read_answer,
)
