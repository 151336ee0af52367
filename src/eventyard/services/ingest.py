"""Ingest: resolve who each activity belongs to and store the batch, once."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from eventyard.core.errors import ConcurrentUpdate, EventyardError, IdempotencyConflict
from eventyard.core.identifiers import Identifier
from eventyard.core.identity import plan_resolution
from eventyard.core.ids import new_id
from eventyard.core.model import JOURNEY_WINDOW, Account, IngestOutcome, NewActivity, StoredResponse
from eventyard.services.ports import Store, UnitOfWork

#: How often a batch is planned again when a concurrent writer took one of its
#: new identifiers first. Each retry sees that writer's committed contacts.
MAX_RESOLUTION_ATTEMPTS = 10
#: After this many lost races a batch takes its account's identity turn.
TAKE_TURNS_AFTER = 2
#: Expired Idempotency-Keys deleted per transaction by the purge.
PURGE_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class IdempotencyRequest:
    """An ``Idempotency-Key`` and the fingerprint of the request it came with."""

    key: str
    fingerprint: str
    ttl_seconds: int

    @classmethod
    def for_request(cls, key: str, route: str, body: bytes, ttl_seconds: int) -> IdempotencyRequest:
        digest = hashlib.sha256(route.encode() + b"\0" + body).hexdigest()
        return cls(key=key, fingerprint=digest, ttl_seconds=ttl_seconds)


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
    with store.unit_of_work() as uow:
        if idempotency is not None:
            state, previous = uow.idempotency.claim(
                account.id, idempotency.key, idempotency.fingerprint, now, idempotency.ttl_seconds
            )
            if state == "conflict":
                raise IdempotencyConflict()
            if previous is not None:
                return previous
        outcome = store_activities(uow, account, activities, now=now, skipped=skipped)
        response = respond(outcome)
        if idempotency is not None:
            uow.idempotency.complete(account.id, idempotency.key, response)
        uow.commit()
    return response


def store_activities(
    uow: UnitOfWork,
    account: Account,
    activities: Sequence[NewActivity],
    *,
    now: datetime,
    skipped: int = 0,
) -> IngestOutcome:
    """Resolve contacts for the batch and insert its activities (no commit)."""
    if not activities:
        return IngestOutcome(stored=0, skipped=skipped)
    batch = [a.identifiers for a in activities]
    plan = resolve_contacts(uow, account, batch, now)
    rows: list[dict[str, Any]] = [
        {
            "id": new_id(),
            "account_id": account.id,
            "contact_id": contact_id,
            "name": a.name,
            "occurred_at": a.occurred_at,
            "received_at": now,
            "source": a.source,
            "dialect": a.dialect,
            "asset_id": a.asset_id,
            "journey_eligible": a.occurred_at >= now - JOURNEY_WINDOW,
            "properties": a.properties,
            "dedup_key": a.dedup_key,
        }
        for a, contact_id in zip(activities, plan, strict=True)
    ]
    stored = uow.activities.insert(rows)
    return IngestOutcome(
        stored=stored,
        duplicates=len(rows) - stored,
        skipped=skipped,
        contact_ids=list(plan),
    )


def resolve_contacts(
    uow: UnitOfWork, account: Account, batch: Sequence[Sequence[Identifier]], now: datetime
) -> list[str]:
    """The contact id of each entry of ``batch``, creating and converting as needed.

    One lookup for the whole batch, one plan, a handful of set-based writes.
    When a concurrent transaction claimed one of the new identifiers first,
    the savepoint is rolled back and the batch planned again against what
    that transaction committed, so two writers never create two contacts for
    one identifier.
    """
    wanted = {ident for idents in batch for ident in idents}
    for attempt in range(MAX_RESOLUTION_ATTEMPTS):
        if attempt == TAKE_TURNS_AFTER:
            # Lost twice: queue behind the other writers of this account that
            # also lost, so that every one of them gets through in turn.
            uow.contacts.take_identity_turn(account.id)
        try:
            with uow.savepoint():
                owners = uow.contacts.find_owners(account.id, wanted)
                plan = plan_resolution(batch, owners, account.primary_kinds, new_id)
                uow.contacts.apply_resolution(account.id, plan, now)
                return plan.contact_ids
        except ConcurrentUpdate:
            # Another writer is creating the same contacts right now; let it
            # finish before planning again (jitter keeps retries apart).
            time.sleep(random.uniform(0, 0.002 * 2**attempt))
    raise EventyardError(
        "contention",
        "Too many concurrent changes to the same contacts; retry the request",
        503,
        headers={"Retry-After": "1"},
    )


def purge_idempotency_keys(store: Store, now: datetime, ttl_seconds: int) -> int:
    """Forget Idempotency-Keys older than their lifetime; returns how many went."""
    purged = 0
    while True:
        with store.unit_of_work() as uow:
            batch = uow.idempotency.purge_expired(
                now - timedelta(seconds=ttl_seconds), limit=PURGE_BATCH
            )
            uow.commit()
        purged += batch
        if batch < PURGE_BATCH:
            return purged
