"""Ingest: resolve who each activity belongs to and store the batch, once."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from eventyard.core.errors import ConcurrentUpdate, EventyardError, IdempotencyConflict
from eventyard.core.identifiers import Identifier
from eventyard.core.identity import ContactRef, plan_resolution
from eventyard.core.ids import new_id
from eventyard.core.model import (
    JOURNEY_WINDOW,
    Account,
    EventTypeLimits,
    IngestOutcome,
    NewActivity,
    ProfileUpdate,
    RecordRejection,
    RecordsOutcome,
    StoredResponse,
)
from eventyard.core.registry import admit_event_types
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

    def respond_to_records(outcome: RecordsOutcome) -> StoredResponse:
        return respond(
            IngestOutcome(
                stored=outcome.stored_activities,
                duplicates=len(activities) - outcome.stored_activities,
                skipped=skipped,
                contact_ids=[c for c in outcome.contact_ids if c is not None],
            )
        )

    return ingest_records(
        store, account, activities, now=now, respond=respond_to_records, idempotency=idempotency
    )


def ingest_records(
    store: Store,
    account: Account,
    records: Sequence[NewActivity | ProfileUpdate],
    *,
    now: datetime,
    respond: Callable[[RecordsOutcome], StoredResponse],
    idempotency: IdempotencyRequest | None = None,
    dry_run: bool = False,
    event_limits: EventTypeLimits | None = None,
) -> StoredResponse:
    """Store activities and profile updates in one transaction, record by record.

    Records the service must refuse (registry limits, a contact id that names
    no contact) are reported in the outcome while the others are stored.
    ``dry_run`` does everything, renders the same response and rolls back:
    no contact, activity or event type remains and no Idempotency-Key is
    remembered.
    """
    with store.unit_of_work() as uow:
        if idempotency is not None and not dry_run:
            state, previous = uow.idempotency.claim(
                account.id, idempotency.key, idempotency.fingerprint, now, idempotency.ttl_seconds
            )
            if state == "conflict":
                raise IdempotencyConflict()
            if previous is not None:
                return previous
        outcome = store_records(uow, account, records, now=now, event_limits=event_limits)
        if dry_run:
            return respond(replace(outcome, dry_run=True))  # the unit of work rolls back
        response = respond(outcome)
        if idempotency is not None:
            uow.idempotency.complete(account.id, idempotency.key, response)
        uow.commit()
    return response


def store_records(
    uow: UnitOfWork,
    account: Account,
    records: Sequence[NewActivity | ProfileUpdate],
    *,
    now: datetime,
    event_limits: EventTypeLimits | None = None,
) -> RecordsOutcome:
    """Admit, resolve and write ``records`` inside ``uow`` (no commit)."""
    rejected: dict[int, RecordRejection] = {}
    if event_limits is not None:
        for rejection in admit_to_registry(uow, account, records, event_limits, now):
            rejected[rejection.index] = rejection

    hinted = {r.contact_hint.contact_id for r in records if r.contact_hint is not None}
    live = uow.contacts.live_contacts(account.id, hinted) if hinted else {}
    positions: list[int] = []
    batch: list[tuple[Identifier, ...]] = []
    pinned: list[ContactRef | None] = []
    for index, record in enumerate(records):
        if index in rejected:
            continue
        identifiers, pin = record.identifiers, None
        hint = record.contact_hint
        if hint is not None:
            if hint.contact_id in live:
                pin = live[hint.contact_id]
            elif hint.fallback is not None:
                identifiers = (*identifiers, hint.fallback)
            else:
                rejected[index] = RecordRejection(
                    index, "unknown_contact", f"no contact has the id {hint.contact_id!r}"
                )
                continue
        positions.append(index)
        batch.append(identifiers)
        pinned.append(pin)

    profile_slots = [
        slot for slot, index in enumerate(positions) if isinstance(records[index], ProfileUpdate)
    ]

    def refresh_pins() -> list[ContactRef | None]:
        # A pinned contact merged by a concurrent writer now stands for its survivor.
        fresh = uow.contacts.live_contacts(account.id, [p.id for p in pinned if p is not None])
        return [None if p is None else fresh.get(p.id, p) for p in pinned]

    contact_of = resolve_contacts(
        uow, account, batch, now, pinned=pinned, refresh_pins=refresh_pins, locked=profile_slots
    )
    contact_ids: list[str | None] = [None] * len(records)
    for index, contact_id in zip(positions, contact_of, strict=True):
        contact_ids[index] = contact_id

    patches: dict[str, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    for index, owner in zip(positions, contact_of, strict=True):
        record = records[index]
        if isinstance(record, ProfileUpdate):
            patches.setdefault(owner, {}).update(record.attributes)
        else:
            rows.append(activity_row(account, record, owner, now))
    uow.contacts.merge_attributes(account.id, patches, now)
    stored = uow.activities.insert(rows)
    return RecordsOutcome(
        stored_activities=stored,
        updated_profiles=sum(1 for i in positions if isinstance(records[i], ProfileUpdate)),
        rejected=sorted(rejected.values(), key=lambda r: r.index),
        contact_ids=contact_ids,
    )


def activity_row(
    account: Account, activity: NewActivity, contact_id: str, now: datetime
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "account_id": account.id,
        "contact_id": contact_id,
        "name": activity.name,
        "occurred_at": activity.occurred_at,
        "received_at": now,
        "source": activity.source,
        "dialect": activity.dialect,
        "asset_id": activity.asset_id,
        "journey_eligible": activity.occurred_at >= now - JOURNEY_WINDOW,
        "properties": activity.properties,
        "dedup_key": activity.dedup_key,
    }


def admit_to_registry(
    uow: UnitOfWork,
    account: Account,
    records: Sequence[NewActivity | ProfileUpdate],
    limits: EventTypeLimits,
    now: datetime,
) -> list[RecordRejection]:
    """Register the batch's event types and keys within ``limits``; refuse what exceeds them.

    Batches that only use known types and keys take no lock. One that adds
    something takes the account's registry turn and decides again on what
    is registered then, so concurrent batches never overshoot a limit.
    """
    usage = [
        (index, r.name, list(r.properties))
        for index, r in enumerate(records)
        if isinstance(r, NewActivity)
    ]
    if not usage:
        return []
    names = [name for _, name, _ in usage]
    admission = admit_event_types(usage, uow.event_types.load(account.id, names), limits)
    if admission.changes_registry:
        uow.event_types.take_registry_turn(account.id)
        admission = admit_event_types(usage, uow.event_types.load(account.id, names), limits)
        uow.event_types.add(account.id, admission.new_types, admission.new_properties, now)
    return admission.rejections


def store_activities(
    uow: UnitOfWork,
    account: Account,
    activities: Sequence[NewActivity],
    *,
    now: datetime,
    skipped: int = 0,
) -> IngestOutcome:
    """Resolve contacts for ``activities`` and insert them (no commit)."""
    outcome = store_records(uow, account, activities, now=now)
    return IngestOutcome(
        stored=outcome.stored_activities,
        duplicates=len(activities) - outcome.stored_activities,
        skipped=skipped,
        contact_ids=[c for c in outcome.contact_ids if c is not None],
    )


def resolve_contacts(
    uow: UnitOfWork,
    account: Account,
    batch: Sequence[Sequence[Identifier]],
    now: datetime,
    *,
    pinned: Sequence[ContactRef | None] | None = None,
    refresh_pins: Callable[[], Sequence[ContactRef | None]] | None = None,
    locked: Sequence[int] = (),
) -> list[str]:
    """The contact id of each entry of ``batch``, creating and converting as needed.

    One lookup for the whole batch, one plan, a handful of set-based writes.
    When a concurrent transaction claimed one of the new identifiers first,
    the savepoint is rolled back and the batch planned again against what
    that transaction committed, so two writers never create two contacts for
    one identifier. The contacts of the entries at ``locked`` stay locked to
    the end of the transaction (their attributes are about to change).
    """
    if not batch:
        return []
    wanted = {ident for idents in batch for ident in idents}
    for attempt in range(MAX_RESOLUTION_ATTEMPTS):
        if attempt and refresh_pins is not None:
            pinned = refresh_pins()
        if attempt == TAKE_TURNS_AFTER:
            # Lost twice: queue behind the other writers of this account that
            # also lost, so that every one of them gets through in turn.
            uow.contacts.take_identity_turn(account.id)
        try:
            with uow.savepoint():
                owners = uow.contacts.find_owners(account.id, wanted)
                plan = plan_resolution(batch, owners, account.primary_kinds, new_id, pinned)
                also_lock = {plan.contact_ids[slot] for slot in locked}
                uow.contacts.apply_resolution(account.id, plan, now, also_lock)
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
