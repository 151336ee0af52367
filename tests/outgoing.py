"""Outgoing activities for the destination format tests, and sending their requests."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from eventyard.core.delivery import (
    AnswerReading,
    DestinationFormat,
    OutgoingActivity,
    OutgoingRequest,
    ReceiverAnswer,
)
from eventyard.core.identifiers import Identifier

OCCURRED = datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC)
RECEIVED = datetime(2026, 3, 14, 9, 27, 0, tzinfo=UTC)


def outgoing(
    *identifiers: tuple[str, str],
    name: str = "Order Completed",
    properties: Mapping[str, Any] | None = None,
    activity_id: str | None = None,
    **fields: Any,
) -> OutgoingActivity:
    """An activity as a destination sees it; ``identifiers`` as ``(kind, value)`` pairs."""
    values: dict[str, Any] = {
        "id": activity_id or uuid.uuid4().hex[:24],
        "contact_id": uuid.uuid4().hex[:24],
        "identifiers": tuple(Identifier(kind, value) for kind, value in identifiers),
        "name": name,
        "occurred_at": OCCURRED,
        "received_at": RECEIVED,
        "source": "api",
        "dialect": "netcore",
        "asset_id": None,
        "properties": {"total": 42} if properties is None else properties,
    }
    values.update(fields)
    return OutgoingActivity(**values)


def base_url(http: httpx.Client) -> str:
    """The server's base URL as a destination's ``url`` is given to a format."""
    return str(http.base_url).rstrip("/")


def send(http: httpx.Client, request: OutgoingRequest) -> tuple[httpx.Response, ReceiverAnswer]:
    """Send one built request as the delivery machinery would, and its answer."""
    r = http.request(request.method, request.url, content=request.body, headers=request.headers)
    return r, ReceiverAnswer(r.status_code, dict(r.headers), r.content)


def deliver(
    http: httpx.Client,
    destination: DestinationFormat,
    credentials: Mapping[str, str],
    activities: Sequence[OutgoingActivity],
) -> dict[str, str]:
    """Build the requests of ``activities`` for the server ``http`` speaks to, send them and
    read every answer; the refusals, by activity id."""
    refused: dict[str, str] = {}
    url = base_url(http)
    for request in destination.build_requests(url, credentials, activities, "delivery-1"):
        _, answer = send(http, request)
        reading: AnswerReading = destination.read_answer(request, answer)
        assert reading.retry is None, (answer.status, answer.body)
        refused.update(reading.refused)
    return refused
