"""One ingest request: its records, how to answer it, and its transaction.

The entry point owns the transaction: :func:`ingest_request` opens one unit
of work for a request and commits it once; a group commit runs several
requests through :func:`store_request` in one transaction of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from eventyard.core.commands import Record
from eventyard.core.model import (
    Account,
    EventTypeLimits,
    IngestOutcome,
    IngestRules,
    NewActivity,
    RecordsOutcome,
    StoredResponse,
)
from eventyard.services.idempotency import IdempotencyRequest, claim_key, complete_key
from eventyard.services.ingest.queue import DeferredRecords, enqueue_records
from eventyard.services.ingest.records import NO_RULES, store_records
from eventyard.services.ports import Store, UnitOfWork


@dataclass(frozen=True, slots=True)
class IngestRequest:
    """One request's records and how to answer it: the arguments of :func:`ingest_records`."""

    account: Account
    records: Sequence[Record]
    now: datetime
    respond: Callable[[RecordsOutcome], StoredResponse]
    idempotency: IdempotencyRequest | None = None
    dry_run: bool = False
    event_limits: EventTypeLimits | None = None
    rules: IngestRules = NO_RULES
    groups: Sequence[int] | None = None
    deferred: DeferredRecords | None = None


def ingest_records(
    store: Store,
    account: Account,
    records: Sequence[Record],
    *,
    now: datetime,
    respond: Callable[[RecordsOutcome], StoredResponse],
    idempotency: IdempotencyRequest | None = None,
    dry_run: bool = False,
    event_limits: EventTypeLimits | None = None,
    rules: IngestRules = NO_RULES,
    groups: Sequence[int] | None = None,
    deferred: DeferredRecords | None = None,
) -> StoredResponse:
    """Store activities and profile updates in one transaction, record by record.

    Records the service must refuse (registry limits, a contact id that names
    no contact, an undefined activity) are reported in the outcome while the
    others are stored. ``deferred`` records are queued as one job in the same
    transaction, to be stored by a worker in order. ``dry_run`` does
    everything, renders the same response and rolls back: no contact,
    activity, event type or job remains and no Idempotency-Key is remembered.
    """
    request = IngestRequest(
        account,
        records,
        now,
        respond,
        idempotency=idempotency,
        dry_run=dry_run,
        event_limits=event_limits,
        rules=rules,
        groups=groups,
        deferred=deferred,
    )
    return ingest_request(store, request)


def ingest_request(store: Store, request: IngestRequest) -> StoredResponse:
    """:func:`ingest_records` for a request already gathered: its own transaction."""
    with store.unit_of_work() as uow:
        response, keep = store_request(uow, request)
        if keep:
            uow.commit()
    return response


def store_request(uow: UnitOfWork, request: IngestRequest) -> tuple[StoredResponse, bool]:
    """Do ``request``'s work inside ``uow`` (no commit): its response, and whether to keep it.

    Nothing is to be kept for a dry run or a replayed Idempotency-Key. A
    group commit runs several requests through this in one transaction.
    """
    account, idempotency, now = request.account, request.idempotency, request.now
    if idempotency is not None and not request.dry_run:
        previous = claim_key(uow, account.id, idempotency, now)
        if previous is not None:
            return previous, False
    outcome = store_records(
        uow,
        account,
        request.records,
        now=now,
        event_limits=request.event_limits,
        rules=request.rules,
        groups=request.groups,
    )
    deferred = request.deferred
    if deferred is not None and deferred.records:
        job_id = enqueue_records(uow, account, deferred, rules=request.rules, now=now)
        outcome = replace(outcome, job_id=job_id)
    if request.dry_run:
        return request.respond(replace(outcome, dry_run=True)), False  # rolled back
    response = request.respond(outcome)
    if idempotency is not None:
        complete_key(uow, account.id, idempotency, response)
    return response, True


def ingest_activities(
    store: Store,
    account: Account,
    activities: Sequence[NewActivity],
    *,
    now: datetime,
    respond: Callable[[IngestOutcome], StoredResponse],
    idempotency: IdempotencyRequest | None = None,
    skipped: int = 0,
) -> StoredResponse:
    """Store ``activities`` in one transaction and return the response to send.

    ``respond`` renders the dialect's response from what was stored; with an
    ``Idempotency-Key`` that response is kept and a retry of the same request
    gets it again without storing anything. The caller sends the response only
    after this function returns, that is after the commit.
    """
    return ingest_records(
        store,
        account,
        activities,
        now=now,
        respond=respond_to_activities(activities, respond, skipped=skipped),
        idempotency=idempotency,
    )


def respond_to_activities(
    activities: Sequence[NewActivity],
    respond: Callable[[IngestOutcome], StoredResponse],
    *,
    skipped: int = 0,
) -> Callable[[RecordsOutcome], StoredResponse]:
    """``respond`` to an :class:`IngestOutcome`, as a responder to the records' outcome."""

    def respond_to_records(outcome: RecordsOutcome) -> StoredResponse:
        return respond(
            IngestOutcome(
                stored=outcome.stored_activities,
                duplicates=len(activities) - outcome.stored_activities,
                skipped=skipped,
                contact_ids=[c for c in outcome.contact_ids if c is not None],
            )
        )

    return respond_to_records
