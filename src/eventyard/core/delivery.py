"""What a destination format is given and what it must say back.

A destination delivers stored activities to another platform in that
platform's own wire format. The delivery machinery (outbox, retries, dead
letters, replay; ``services/destinations``) is the same for every kind; a
kind only declares how a batch of activities becomes HTTP requests and how
the receiver's answer to one of those requests reads:

- ``DestinationFormat.build_requests`` splits a batch into requests that
  respect the target's own record and byte limits, in the batch's order,
  each naming the activities it carries;
- ``DestinationFormat.read_answer`` is asked about every answer that is not
  a retryable failure (the machinery itself retries 408, 425, 429, 5xx and
  connection errors, honouring ``Retry-After``, and sends every activity
  of a 401 or 403 to the dead letters): it names the activities the
  receiver refused for good, with the receiver's reason, so that they go to
  the dead letters while their neighbours count as delivered.

A format is pure: no I/O, no clock, no randomness. The same batch with the
same delivery id always builds the same requests, so a retried delivery is
byte-for-byte the one that failed, and an ``Idempotency-Key`` (which the
machinery adds, derived from the destination and the activity ids a request
carries) lets a receiver that honours it store it once.

Vendor formats are declared by their dialect (``Dialect.destination``);
only the vendor-neutral ``webhook`` kind is built in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from eventyard.core.identifiers import Identifier


@dataclass(frozen=True, slots=True)
class OutgoingActivity:
    """A stored activity as a destination sees it: the read API's activity plus its contact."""

    id: str
    contact_id: str
    #: The identifiers the contact holds when the activity is delivered.
    identifiers: tuple[Identifier, ...]
    name: str
    occurred_at: datetime
    received_at: datetime
    source: str
    dialect: str
    asset_id: str | None
    properties: Mapping[str, Any]
    location: Mapping[str, Any] | None = None
    value_milli: int | None = None
    context: Mapping[str, Any] | None = None
    #: Whether the activity was recent enough to start a journey when stored.
    journey_eligible: bool = True
    #: Property keys whose value's type differs from the one first recognised.
    unsearchable: tuple[str, ...] = ()
    #: The identifier that resolved the activity to its contact (provenance).
    resolved_by: Identifier | None = None


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """One HTTP request of a delivery and the activities it carries (ids, in order)."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    activity_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReceiverAnswer:
    """The receiver's answer to one ``OutgoingRequest``."""

    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class AnswerReading:
    """What an answer means for the activities of its request.

    ``refused`` maps activity ids the receiver refused for good to its
    reason (quoted from the answer); every other activity of the request was
    delivered, unless ``resend_others`` says the receiver took none of them.
    ``retry`` says the whole request must be sent again later (a
    format may know that an answer with a success status still means "not
    taken": then it says so here, with the reason).
    """

    refused: Mapping[str, str] = field(default_factory=dict)
    retry: str | None = None
    #: The receiver took none of the request because of the ``refused`` ones
    #: (it refuses a batch as a whole, naming the records at fault): the
    #: request's other activities were NOT delivered and must be sent again,
    #: in requests built without the refused ones.
    resend_others: bool = False


@dataclass(frozen=True)
class DestinationFormat:
    """A destination ``kind``: how activities travel to one kind of receiver."""

    #: The ``kind`` of ``POST /api/v1/destinations``.
    kind: str
    #: The keys its ``credentials`` object must have (each a non-empty string).
    credential_fields: tuple[str, ...]
    #: Most activities one request may carry, and most bytes one body may have.
    max_records: int
    max_bytes: int
    #: ``(base_url, credentials, activities, delivery_id) -> requests``.
    #: ``base_url`` is the destination's ``url`` as the user gave it, without
    #: a trailing slash; an activity too large for any request on its own is
    #: sent alone (the receiver's refusal then dead-letters it).
    build_requests: Callable[
        [str, Mapping[str, str], Sequence[OutgoingActivity], str], list[OutgoingRequest]
    ]
    #: ``(request, answer) -> reading``; called for 2xx and for 4xx answers
    #: other than 401, 403, 408, 425 and 429.
    read_answer: Callable[[OutgoingRequest, ReceiverAnswer], AnswerReading]
    #: Keys its ``credentials`` object may also have (each a non-empty string
    #: when given): settings of the receiver that are not secrets but travel
    #: with them, such as the asset id a Netcore event needs.
    optional_credential_fields: tuple[str, ...] = ()
