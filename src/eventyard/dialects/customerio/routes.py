"""Customer.io's Track API: the v1 person endpoints and v2 ``/entity`` and ``/batch``.

Every write runs through the ingest pipeline (Basic auth with the site id
and API key, rate limit, body limits, gzip, ``Idempotency-Key``, one
transaction). A deletion (``DELETE /customers/{identifier}``, v2 ``delete``)
is eventyard's erasure of the person, run once the request's other records
are stored.

Paths are matched on the raw path: the SDKs percent-encode an identifier
with no safe characters (``a/b`` -> ``a%2Fb``), which a router working on
the decoded path would split into two segments.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import orjson
from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from eventyard.context import AppContext, get_context
from eventyard.core.commands import Record
from eventyard.core.errors import EventyardError, NotFound
from eventyard.core.model import Account, RecordRejection, RecordsOutcome, StoredResponse
from eventyard.core.payload import JsonBody, decode_json, unstorable_values
from eventyard.dialects.customerio import schemas
from eventyard.dialects.customerio.errors import V2_ERROR_SCHEMA, invalid, unauthorized
from eventyard.dialects.customerio.translate import (
    ADD_DEVICE,
    DELETE_DEVICE,
    DIALECT,
    MAX_BATCH_BYTES,
    MAX_ENTITY_BYTES,
    Erase,
    Person,
    Problems,
    anonymous_identifier,
    device,
    entity,
    event,
    identify,
    merge,
    path_person,
    suppression,
)
from eventyard.dialects.pipeline import (
    Arrival,
    Credential,
    IngestEndpoint,
    Report,
    Submission,
    receive,
)
from eventyard.dialects.toolkit.basic_auth import decode_basic, split_authorization
from eventyard.services import erasure
from eventyard.services.ingest_stats import RejectionError

CUSTOMERS = "/api/v1/customers"
EVENTS_PATH = "/api/v1/events"
MERGE_PATH = "/api/v1/merge_customers"
ENTITY_PATH = "/api/v2/entity"
BATCH_PATH = "/api/v2/batch"
#: Whose errors answer in v1's shape ("/api/v1/customers/" covers the paths below it).
V1_PATHS = (CUSTOMERS, CUSTOMERS + "/", EVENTS_PATH, MERGE_PATH)
V2_PATHS = (ENTITY_PATH, BATCH_PATH)
#: "A successful request returns an empty object response".
EMPTY = b"{}"

v1_router = APIRouter(tags=["Customer.io"])
v2_router = APIRouter(tags=["Customer.io"])


# --- the answers ---------------------------------------------------------


@dataclass(eq=False)
class Single(Submission):
    """A v1 call or a v2 ``/entity`` operation: ``200 {}`` once stored.

    A record the store refuses (a ``cio_id`` naming no contact: "request
    dropped") is answered 200 as Customer.io does and shows in the
    account's ingest rejections; so is an anonymous event without
    ``anonymous_id``, which no one could ever be credited with.
    """

    dropped: list[RejectionError] = field(default_factory=list)
    refused: list[RejectionError] = field(default_factory=list)

    def respond(self, outcome: RecordsOutcome | None) -> StoredResponse:
        self.refused = [
            RejectionError(None, "identifier", refusal_message(r))
            for r in (outcome.rejected if outcome is not None else ())
        ]
        return StoredResponse(status_code=200, body=EMPTY)

    def report(self) -> Report:
        problems = [*self.dropped, *self.refused]
        accepted = len(self.records) - len(self.refused)
        return Report({"accepted": accepted, "rejected": len(problems)}, problems)


@dataclass(eq=False)
class Batch(Submission):
    """A v2 batch: ``200 {}``, or 207 naming each refused operation by ``batch_index``."""

    #: The batch index of each record.
    positions: Sequence[int] = ()
    problems: list[RejectionError] = field(default_factory=list)
    refused: list[RejectionError] = field(default_factory=list)
    operations: int = 0

    def respond(self, outcome: RecordsOutcome | None) -> StoredResponse:
        self.refused = [
            RejectionError(self.positions[r.index], "identifiers", refusal_message(r))
            for r in (outcome.rejected if outcome is not None else ())
        ]
        errors = sorted([*self.problems, *self.refused], key=lambda e: e.index or 0)
        if not errors:
            return StoredResponse(status_code=200, body=EMPTY)
        items = [
            {"batch_index": e.index, "reason": "invalid", "field": e.field, "message": e.message}
            for e in errors
        ]
        return StoredResponse(status_code=207, body=dump({"errors": items}))

    def report(self) -> Report:
        rejected = {e.index for e in (*self.problems, *self.refused)}
        return Report(
            {"accepted": self.operations - len(rejected), "rejected": len(rejected)},
            [*self.problems, *self.refused],
        )


def refusal_message(rejection: RecordRejection) -> str:
    """Why the store refused a record, without echoing a contact id."""
    if rejection.code == "unknown_contact":
        return "no person has this cio_id"
    return rejection.message


def dump(body: Any) -> bytes:
    return orjson.dumps(body)


# --- credentials and bodies ----------------------------------------------


def read_credential(request: Request) -> Credential:
    """Spec: "HTTP Basic: username = Site ID, password = Track API key"."""
    authorization = split_authorization(request.headers.get("authorization"))
    if authorization is None or authorization.scheme != "basic":
        raise unauthorized("Unauthorized request: send HTTP Basic with site id and API key")
    try:
        basic = decode_basic(authorization.credential)
    except ValueError as exc:
        raise unauthorized(f"Unauthorized request: {exc}") from exc
    if not basic.user or not basic.password:
        raise unauthorized("Unauthorized request: the site id or the API key is missing")
    return Credential(DIALECT, basic.password, basic.user)


def invalid_credential() -> EventyardError:
    return unauthorized("Unauthorized request: unknown site id or API key")


def parse_body(body: bytes) -> JsonBody:
    """The JSON body; an empty one is ``{}`` (the SDK sends ``{}`` with DELETEs, others none)."""
    if not body.strip():
        return JsonBody({}, suspicious=False)
    try:
        return decode_json(body)
    except ValueError as exc:
        raise invalid([("body", f"the body is not valid JSON: {exc}")]) from exc


def refuse_unstorable(payload: JsonBody) -> None:
    # Unless the body looked suspicious, one serialisation in C checks the nesting.
    if problems := unstorable_values(payload.value, thorough=payload.suspicious):
        raise invalid([(path, f"{path} {reason}") for path, reason in problems])


def customer_segments(request: Request) -> list[str]:
    """The decoded segments after ``/api/v1/customers/``, split on the raw path."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path
    path = path.split("?", 1)[0]
    rest = path[len(CUSTOMERS) + 1 :] if path.startswith(CUSTOMERS + "/") else ""
    return [unquote(segment, errors="surrogateescape") for segment in rest.split("/")]


# --- v1 ------------------------------------------------------------------

#: What a v1 call under /customers/{identifier} does, by method and the segments after it.
CustomerCall = Callable[[Person, Any, Arrival, list[str], Problems], "list[Record] | Erase"]


def _identify(person: Person, body: Any, arrival: Arrival, rest: list[str], fail: Problems) -> Any:
    return identify(person, body, fail)


def _event(person: Person, body: Any, arrival: Arrival, rest: list[str], fail: Problems) -> Any:
    return event(person, body, now=arrival.now, fail=fail)


def _add_device(
    person: Person, body: Any, arrival: Arrival, rest: list[str], fail: Problems
) -> Any:
    raw = body.get("device") if isinstance(body, dict) else None
    return device(person, raw, now=arrival.now, action=ADD_DEVICE, fail=fail)


def _delete_device(
    person: Person, body: Any, arrival: Arrival, rest: list[str], fail: Problems
) -> Any:
    return device(person, {"id": rest[1]}, now=arrival.now, action=DELETE_DEVICE, fail=fail)


def _suppress(person: Person, body: Any, arrival: Arrival, rest: list[str], fail: Problems) -> Any:
    return suppression(person, rest[0] == "suppress")


def _delete(person: Person, body: Any, arrival: Arrival, rest: list[str], fail: Problems) -> Any:
    return Erase(person)


#: The calls under /customers/{identifier}, by method, first segment after it and count.
_CUSTOMER_CALLS: dict[tuple[Any, ...], CustomerCall] = {
    ("PUT", 0): _identify,
    ("DELETE", 0): _delete,
    ("POST", "events", 1): _event,
    ("PUT", "devices", 1): _add_device,
    ("DELETE", "devices", 2): _delete_device,
    ("POST", "suppress", 1): _suppress,
    ("POST", "unsuppress", 1): _suppress,
}


def _shape(rest: list[str]) -> tuple[Any, ...]:
    return (*(rest[:1] if rest else ()), len(rest))


def customer_call(method: str, rest: list[str]) -> CustomerCall | None:
    """The call of ``method`` on ``/customers/{identifier}/<rest>``; ``None``: no such path."""
    return _CUSTOMER_CALLS.get((method, *_shape(rest)))


def check_customer_path(request: Request) -> None:
    """404 for a path under /customers that is no call, 405 (with ``Allow``) for another method.

    The routes match the decoded path, where an identifier's ``%2F`` became a
    separator; the raw path decides, before anything else is read.
    """
    segments = customer_segments(request)
    if not segments[0]:
        raise EventyardError("not_found", "Not Found", 404)
    if customer_call(request.method, segments[1:]) is not None:
        return
    shape = _shape(segments[1:])
    allowed = sorted(method for method, *rest in _CUSTOMER_CALLS if tuple(rest) == shape)
    if not allowed:
        raise EventyardError("not_found", "Not Found", 404)
    raise EventyardError(
        "method_not_allowed", "Method Not Allowed", 405, headers={"Allow": ", ".join(allowed)}
    )


def translate_customer(payload: JsonBody, arrival: Arrival) -> Single:
    """A call on ``/api/v1/customers/{identifier}[/…]``, read from the raw path."""
    segments = customer_segments(arrival.request)
    call = customer_call(arrival.request.method, segments[1:])
    if call is None:  # checked before: the route answered 404 or 405
        raise EventyardError("not_found", "Not Found", 404)
    if not isinstance(payload.value, dict):
        raise invalid([("body", "the body must be a hash")])
    refuse_unstorable(payload)
    fail = Problems()
    person = path_person(segments[0], fail)
    done = None if person is None else call(person, payload.value, arrival, segments[1:], fail)
    if fail.items or done is None:
        raise invalid(fail.items)
    if isinstance(done, Erase):
        remember_erasures(arrival, [done])
        return Single([])
    return Single(done)


def translate_anonymous_event(payload: JsonBody, arrival: Arrival) -> Single:
    """``POST /api/v1/events``: "without [anonymous_id] the event can never be attributed"."""
    refuse_unstorable(payload)
    fail = Problems()
    body = payload.value
    raw = body.get("anonymous_id") if isinstance(body, dict) else None
    anonymous = anonymous_identifier(raw, "anonymous_id", fail)
    person = Person(() if anonymous is None else (anonymous,))
    records = event(person, body, now=arrival.now, fail=fail)
    if fail.items:
        raise invalid(fail.items)
    if anonymous is None:
        note = "an event without anonymous_id can never be attributed to a person; not stored"
        return Single([], dropped=[RejectionError(None, "anonymous_id", note)])
    return Single(records)


def translate_merge(payload: JsonBody, arrival: Arrival) -> Single:
    fail = Problems()
    records = merge(payload.value, fail)
    if fail.items:
        raise invalid(fail.items)
    return Single(records)


# --- v2 ------------------------------------------------------------------


def translate_entity(payload: JsonBody, arrival: Arrival) -> Single:
    """One operation: "``/api/v2/entity`` (one operation, ≤ 32 KB)"."""
    fail = Problems()
    done = entity(payload.value, now=arrival.now, fail=fail, thorough=payload.suspicious)
    if fail.items or done is None:
        raise invalid(fail.items or [("body", "the operation cannot be stored")])
    if isinstance(done, Erase):
        remember_erasures(arrival, [done])
        return Single([])
    return Single(done)


def translate_batch(payload: JsonBody, arrival: Arrival) -> Batch:
    """``{"batch": [<entity operation>, …]}``: each operation ≤ 32 KB; 207 names the bad ones."""
    body = payload.value
    operations = body.get("batch") if isinstance(body, dict) else None
    if not isinstance(operations, list):
        raise invalid([("batch", 'the body must be {"batch": [operations]}')])
    records: list[Record] = []
    positions: list[int] = []
    problems: list[RejectionError] = []
    erasures: list[Erase] = []
    for index, operation in enumerate(operations):
        size = serialized_size(operation)
        if size is not None and size > MAX_ENTITY_BYTES:
            message = f"batch[{index}] is larger than {MAX_ENTITY_BYTES} bytes (32 KB)"
            problems.append(RejectionError(index, "batch", message))
            continue
        fail = Problems()
        done = entity(
            operation,
            now=arrival.now,
            fail=fail,
            thorough=payload.suspicious,
            serialized=size is not None,
        )
        if fail.items or done is None:
            problems.extend(RejectionError(index, f, m) for f, m in fail.items)
            continue
        if isinstance(done, Erase):
            erasures.append(done)
            continue
        records.extend(done)
        positions.extend([index] * len(done))
    remember_erasures(arrival, erasures)
    return Batch(records, positions=positions, problems=problems, operations=len(operations))


def serialized_size(operation: Any) -> int | None:
    """Bytes of ``operation`` as compact JSON; ``None`` when the fast codec cannot write it
    (too deep, not Unicode, an integer beyond 64 bits: ``entity`` says which)."""
    try:
        return len(orjson.dumps(operation))
    except orjson.JSONEncodeError:
        return None


# --- deletions -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PendingErasures:
    account: Account
    erasures: list[Erase]


def remember_erasures(arrival: Arrival, erasures: list[Erase]) -> None:
    """Keep the request's deletions for the route to run once its records are stored."""
    if erasures:
        arrival.request.state.customerio_erasures = PendingErasures(arrival.account, erasures)


async def run_erasures(request: Request, ctx: AppContext) -> None:
    pending = getattr(request.state, "customerio_erasures", None)
    if not isinstance(pending, PendingErasures):
        return
    for erase in pending.erasures:
        await run_in_threadpool(erase_person, ctx, pending.account, erase.person)


def erase_person(ctx: AppContext, account: Account, person: Person) -> None:
    """Erase the person and all their data ("Removes the person and all data").

    A person nobody knows is already gone: the deletion answers 200 all the same.
    """
    options: dict[str, Any] = {
        "requested_via": DIALECT,
        "now": ctx.now(),
        "export_dir": Path(ctx.settings.export_dir),
    }
    try:
        if person.contact_id is not None:
            erasure.erase_contact(ctx.store, account, person.contact_id, **options)
        else:
            erasure.erase_by_identifier(ctx.store, account, person.identifiers[0], **options)
    except NotFound:
        return


# --- the endpoints ---------------------------------------------------------


def _endpoint(
    translate: Callable[[JsonBody, Arrival], Submission], limit: int | None = None
) -> IngestEndpoint[JsonBody]:
    return IngestEndpoint(
        dialect=DIALECT,
        read_credential=read_credential,
        invalid_credential=invalid_credential,
        parse=parse_body,
        translate=translate,
        max_body_bytes=limit,
        too_large=_too_large,
    )


def _too_large(limit: int, exc: EventyardError) -> EventyardError:
    refusal = invalid([("body", f"the request is larger than {limit} bytes")])
    refusal.status, refusal.code = 413, "payload_too_large"
    refusal.headers.update(exc.headers)
    return refusal


CUSTOMER = _endpoint(translate_customer)
ANONYMOUS_EVENT = _endpoint(translate_anonymous_event)
MERGE = _endpoint(translate_merge)
ENTITY = _endpoint(translate_entity, MAX_ENTITY_BYTES)
BATCH = _endpoint(translate_batch, MAX_BATCH_BYTES)


async def _run(request: Request, ctx: AppContext, endpoint: IngestEndpoint[JsonBody]) -> Response:
    response = await receive(request, ctx, endpoint)
    if response.status_code < 300:
        await run_erasures(request, ctx)
    return response


_OK: dict[int | str, dict[str, Any]] = {200: {"description": "Stored: `{}`"}}
_PARTIAL: dict[int | str, dict[str, Any]] = {
    **_OK,
    207: {
        "description": "Some operations refused (named by `batch_index`), the others stored",
        "content": {"application/json": {"schema": V2_ERROR_SCHEMA}},
    },
}
_AUTH = "HTTP Basic: the account's Customer.io site id as user name, its API key as password. "


def _customer_route(
    method: str,
    suffix: str,
    summary: str,
    description: str,
    schema: dict[str, Any],
    *,
    required: bool = True,
) -> None:
    async def handler(request: Request, ctx: AppContext = Depends(get_context)) -> Response:
        check_customer_path(request)
        return await _run(request, ctx, CUSTOMER)

    handler.__name__ = "customerio_" + summary.lower().replace(" ", "_")
    v1_router.add_api_route(
        CUSTOMERS + "/{identifier:path}" + suffix,
        handler,
        methods=[method],
        summary=summary + " (Customer.io)",
        description=description + " " + _AUTH,
        responses=_OK,
        openapi_extra={
            "parameters": schemas.customer_parameters(suffix),
            **schemas.body(schema, required=required),
        },
    )


# Longest suffixes first: the router tries routes in order (the handler reads the raw
# path whichever matched).
_customer_route(
    "DELETE",
    "/devices/{device_id}",
    "Delete a device",
    "Kept as a `delete_device` activity of the person.",
    schemas.EMPTY,
    required=False,
)
_customer_route(
    "PUT",
    "/devices",
    "Add or update a device",
    '`{"device": {"id", "platform": ios|android, "last_used", "attributes"}}`, kept '
    "as an `add_device` activity of the person.",
    schemas.DEVICE,
)
_customer_route(
    "POST",
    "/events",
    "Track an event for a person",
    '`{"name", "type": event|page|screen, "id", "timestamp", "data"}`; a repeated `id` is ignored.',
    schemas.EVENT,
)
_customer_route(
    "POST",
    "/suppress",
    "Suppress a person",
    "Sets the person's `cio_suppressed` to true.",
    schemas.EMPTY,
    required=False,
)
_customer_route(
    "POST",
    "/unsuppress",
    "Unsuppress a person",
    "Sets the person's `cio_suppressed` to false.",
    schemas.EMPTY,
    required=False,
)
_customer_route(
    "PUT",
    "",
    "Add or update a person",
    "The body is the person's attributes; `{identifier}` is an id, an e-mail address or "
    "`cio_<contact id>`.",
    schemas.IDENTIFY,
    required=False,  # no body: no attributes, as {}
)
_customer_route(
    "DELETE",
    "",
    "Delete a person",
    "Erases the person and everything eventyard holds about them (right to erasure).",
    schemas.EMPTY,
    required=False,
)


def _simple_route(
    router: APIRouter,
    path: str,
    endpoint: IngestEndpoint[JsonBody],
    summary: str,
    text: str,
    schema: dict[str, Any],
    responses: dict[int | str, dict[str, Any]] = _OK,
) -> None:
    async def handler(request: Request, ctx: AppContext = Depends(get_context)) -> Response:
        return await _run(request, ctx, endpoint)

    handler.__name__ = "customerio_" + summary.lower().replace(" ", "_")
    router.add_api_route(
        path,
        handler,
        methods=["POST"],
        summary=summary + " (Customer.io)",
        description=text + " " + _AUTH,
        responses=responses,
        openapi_extra=schemas.body(schema),
    )


_simple_route(
    v1_router,
    EVENTS_PATH,
    ANONYMOUS_EVENT,
    "Track an anonymous event",
    "As a person's event, with `anonymous_id`: identifying a person with that "
    "`anonymous_id` later gives them the event.",
    schemas.ANONYMOUS_EVENT,
)
_simple_route(
    v1_router,
    MERGE_PATH,
    MERGE,
    "Merge two people",
    '`{"primary": {"id"|"email"|"cio_id": …}, "secondary": {…}}`: the secondary is '
    "merged into the primary, known or not (audited; revertible through "
    "`POST /api/v1/identity-events/{id}/revert`).",
    schemas.MERGE,
)
_simple_route(
    v2_router,
    ENTITY_PATH,
    ENTITY,
    "One person operation",
    '`{"type": "person", "identifiers", "action", …}`, at most 32 KB.',
    schemas.ENTITY,
)
_simple_route(
    v2_router,
    BATCH_PATH,
    BATCH,
    "A batch of person operations",
    '`{"batch": [operations]}`, at most 500 KB and 32 KB an operation; 207 names the '
    "operations refused by `batch_index`.",
    schemas.BATCH,
    _PARTIAL,
)

__all__ = ["V1_PATHS", "V2_PATHS", "v1_router", "v2_router"]
