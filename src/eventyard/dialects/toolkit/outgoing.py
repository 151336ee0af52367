"""Building the requests of a destination format (``core/delivery.py``): what every format shares.

A format writes each activity as one JSON record (``dump_json``), then
:func:`pack_json_array` packs the records, in order, into bodies of the shape
``prefix + record,record,... + suffix`` that respect the receiver's record
and byte limits. Records are written once and joined as bytes, so a body's
size is known exactly before it is made, and the same activities always
give the same bytes (keys keep the order they were stored in).

The rule for a record too large for any body: it is sent alone, in a body of
its own, and the receiver's refusal of it dead-letters only that activity.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from eventyard.core.delivery import (
    AnswerReading,
    DestinationFormat,
    OutgoingActivity,
    OutgoingRequest,
    ReceiverAnswer,
)
from eventyard.core.identifiers import Identifier

#: The headers of a JSON body without credentials in its headers.
JSON_HEADERS: Mapping[str, str] = {"Content-Type": "application/json"}
#: How much of a receiver's answer a refusal quotes.
MAX_QUOTED_ANSWER = 500


def dump_json(value: Any) -> bytes:
    """``value`` as compact JSON (UTF-8), keys in their own order."""
    return orjson.dumps(value)


def read_json(body: bytes) -> Any:
    """The JSON value of an answer's body, or ``None`` when it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


@dataclass(frozen=True, slots=True)
class JsonArray:
    """A receiver's body: ``prefix + record,record,... + suffix``, and its limits."""

    prefix: bytes
    suffix: bytes
    #: Most records one body may hold, and most bytes it may have.
    max_records: int
    max_bytes: int
    #: The receiver's limit for one record, when it has one: a record over it
    #: is sent in a body of its own.
    max_record_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class PackedBody:
    """One body and the positions (in the records given) of the records it holds."""

    positions: range
    body: bytes


def pack_json_array(records: Sequence[bytes], shape: JsonArray) -> list[PackedBody]:
    """``records`` in order, in as few bodies of ``shape`` as its limits allow.

    A record that does not fit even alone, or that is over the limit for one
    record, gets a body of its own.
    """
    bodies: list[PackedBody] = []
    envelope = len(shape.prefix) + len(shape.suffix)
    limit = shape.max_record_bytes
    start = 0
    size = envelope
    alone = False
    for index, record in enumerate(records):
        extra = len(record) + (1 if index > start else 0)
        oversized = limit is not None and len(record) > limit
        if index > start and (
            alone
            or oversized
            or index - start >= shape.max_records
            or size + extra > shape.max_bytes
        ):
            bodies.append(_body(records, start, index, shape))
            start, size, extra = index, envelope, len(record)
        size += extra
        alone = oversized
    if start < len(records):
        bodies.append(_body(records, start, len(records), shape))
    return bodies


def _body(records: Sequence[bytes], start: int, end: int, shape: JsonArray) -> PackedBody:
    body = b"".join((shape.prefix, b",".join(records[start:end]), shape.suffix))
    return PackedBody(range(start, end), body)


def json_array_requests(
    url: str,
    headers: Mapping[str, str],
    activities: Sequence[OutgoingActivity],
    records: Sequence[bytes],
    shape: JsonArray,
) -> list[OutgoingRequest]:
    """``POST url`` requests carrying ``records`` (one per activity, in order), packed
    by :func:`pack_json_array`; each names the activities whose records it holds."""
    return [
        OutgoingRequest(
            method="POST",
            url=url,
            headers=headers,
            body=packed.body,
            activity_ids=tuple(activities[i].id for i in packed.positions),
        )
        for packed in pack_json_array(records, shape)
    ]


def json_array_format(
    *,
    kind: str,
    credential_fields: tuple[str, ...],
    path: str,
    shape: JsonArray,
    record: Callable[[OutgoingActivity, Mapping[str, str]], Any],
    read_answer: Callable[[OutgoingRequest, ReceiverAnswer], AnswerReading],
    headers: Callable[[Mapping[str, str]], Mapping[str, str]] | None = None,
    optional_credential_fields: tuple[str, ...] = (),
    prefix: Callable[[Mapping[str, str]], bytes] | None = None,
) -> DestinationFormat:
    """A format whose requests ``POST <url><path>`` bodies of ``shape``, one ``record``
    (given the activity and the credentials) per activity, with ``headers(credentials)``
    (by default only ``Content-Type: application/json``).

    ``prefix(credentials)``, when given, opens the body in place of the
    shape's own prefix (for receivers that read a key from the body).
    """

    def build_requests(
        url: str,
        credentials: Mapping[str, str],
        activities: Sequence[OutgoingActivity],
        delivery_id: str,
    ) -> list[OutgoingRequest]:
        body = shape if prefix is None else replace(shape, prefix=prefix(credentials))
        records = [dump_json(record(activity, credentials)) for activity in activities]
        sent = JSON_HEADERS if headers is None else headers(credentials)
        return json_array_requests(url + path, sent, activities, records, body)

    return DestinationFormat(
        kind=kind,
        credential_fields=credential_fields,
        max_records=shape.max_records,
        max_bytes=shape.max_bytes,
        build_requests=build_requests,
        read_answer=read_answer,
        optional_credential_fields=optional_credential_fields,
    )


def numbered_name(name: str, taken: Container[str], limit: int) -> str:
    """``name``, or when it is ``taken`` the first free ``name-2``, ``name-3`` … cut to ``limit``.

    For formats that rename keys the receiver cannot take: two keys that make
    the same name keep both values, numbered in order.
    """
    found, number = name, 1
    while found in taken:
        number += 1
        tail = f"-{number}"
        found = name[: limit - len(tail)] + tail
    return found


def basic_authorization(user: str, password: str = "") -> str:
    """The ``Authorization`` header value of HTTP Basic for ``user:password``."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def first_value(identifiers: Iterable[Identifier], kind: str) -> str | None:
    """The value of the first identifier of ``kind`` (compared without case), or ``None``."""
    wanted = kind.lower()
    for identifier in identifiers:
        if identifier.kind.lower() == wanted:
            return identifier.value
    return None


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` (compared without case), or ``None``."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def quote_answer(answer: ReceiverAnswer) -> str:
    """The answer as a refusal's reason: its status and the start of its body."""
    text = answer.body[:MAX_QUOTED_ANSWER].decode("utf-8", "replace")
    return f"HTTP {answer.status}: {text}" if text else f"HTTP {answer.status}"


def indexed_reasons(
    ids: Sequence[str], errors: Any, *, index_key: str = "index", reason_key: str = "message"
) -> dict[str, str]:
    """The records an answer's list of errors names: ``[{<index_key>: 1, <reason_key>:
    "..."}, ...]`` (indexes into the request's records), each record's reasons joined
    with ``; ``. Entries without a usable index are passed over."""
    reasons: dict[str, list[str]] = {}
    for error in errors if isinstance(errors, list) else ():
        index = error.get(index_key) if isinstance(error, dict) else None
        if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(ids):
            reasons.setdefault(ids[index], []).append(str(error.get(reason_key)))
    return {activity_id: "; ".join(found) for activity_id, found in reasons.items()}


def read_dropped_count(ids: Sequence[str], answer: ReceiverAnswer, header: str) -> AnswerReading:
    """A 2xx from a receiver that takes a batch and drops bad records without naming them.

    An eventyard receiver counts the dropped ones in ``header``: when that is
    every record of the request, all were refused; otherwise the request was
    delivered (which of them were dropped, the answer does not say).
    """
    dropped = header_value(answer.headers, header)
    if dropped is not None and dropped.isdigit() and int(dropped) >= len(ids):
        reason = f"the receiver dropped every record of the request ({quote_answer(answer)})"
        return AnswerReading(refused=dict.fromkeys(ids, reason))
    return AnswerReading()


def refuse_all(ids: Sequence[str], answer: ReceiverAnswer) -> AnswerReading:
    """Every record of the request refused, with the answer as the reason."""
    return AnswerReading(refused=dict.fromkeys(ids, quote_answer(answer)))


def read_batch_refusal(
    ids: Sequence[str], answer: ReceiverAnswer, *, reason_key: str
) -> AnswerReading:
    """A 4xx answer to a batch the receiver takes whole or not at all.

    When the body lists the records at fault, ``{"errors": [{"index": 1,
    <reason_key>: "..."}, ...]}``, those are refused and the others must be
    sent again without them; otherwise every record is refused with the answer.
    """
    body = read_json(answer.body)
    errors = body.get("errors") if isinstance(body, dict) else None
    refused = indexed_reasons(ids, errors, reason_key=reason_key)
    if not refused:
        return refuse_all(ids, answer)
    return AnswerReading(refused=refused, resend_others=len(refused) < len(ids))
