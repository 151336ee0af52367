"""Ingest: resolve who each activity belongs to and store the batch, once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, cast

from eventyard.core.commands import Record, record_to_json
from eventyard.core.definitions import (
    DefinitionSpec,
    check_attributes,
    definition_from_attributes,
)
from eventyard.core.errors import EventyardError
from eventyard.core.identifiers import ANONID, IDENTITY, Identifier
from eventyard.core.identity import ContactRef
from eventyard.core.ids import new_id
from eventyard.core.model import (
    JOURNEY_WINDOW,
    Account,
    EventTypeLimits,
    GroupMembership,
    IngestOutcome,
    IngestRules,
    NewActivity,
    ProfileUpdate,
    RecordRejection,
    RecordsOutcome,
    StoredResponse,
)
from eventyard.core.profiles import apply_update
from eventyard.core.registry import admit_event_types, mistyped, property_types
from eventyard.services.idempotency import (  # IdempotencyRequest: the dialects import it here
    IdempotencyRequest as IdempotencyRequest,
)
from eventyard.services.idempotency import claim_key, complete_key
from eventyard.services.jobs import enqueue
from eventyard.services.ports import Store, UnitOfWork
from eventyard.services.resolution import MAX_RESOLUTION_ATTEMPTS as MAX_RESOLUTION_ATTEMPTS
from eventyard.services.resolution import TAKE_TURNS_AFTER as TAKE_TURNS_AFTER
from eventyard.services.resolution import resolve_contacts

#: Expired Idempotency-Keys deleted per transaction by the purge.
PURGE_BATCH = 10_000
#: The window of ``IngestRules.daily_limit``.
DAILY_WINDOW = timedelta(hours=24)
NO_RULES = IngestRules()


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


@dataclass(frozen=True, slots=True)
class DeferredRecords:
    """Records to queue for the worker instead of storing them in the request.

    ``groups`` ties records that stand or fall together (an Ortto activity
    and the profile update it carries); ``labels`` name each record for the
    job's report (``activities[3]``).
    """

    records: Sequence[Record]
    groups: Sequence[int] | None = None
    labels: Sequence[str] | None = None


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


def store_records(
    uow: UnitOfWork,
    account: Account,
    records: Sequence[Record],
    *,
    now: datetime,
    event_limits: EventTypeLimits | None = None,
    rules: IngestRules = NO_RULES,
    groups: Sequence[int] | None = None,
) -> RecordsOutcome:
    """Admit, resolve and write ``records`` inside ``uow`` (no commit).

    A record refused before its contact is resolved takes the other records
    of its group (``groups[i]``) with it; one refused by the daily limit
    leaves them be (the contact is still updated, only the activity is not
    stored).
    """
    rejected: dict[int, RecordRejection] = {}
    if event_limits is not None:
        for rejection in admit_to_registry(uow, account, records, event_limits, now):
            rejected[rejection.index] = rejection
    if rules.require_definitions:
        for rejection in admit_to_definitions(uow, account, records, rejected, now):
            rejected[rejection.index] = rejection

    hinted = {r.contact_hint.contact_id for r in records if r.contact_hint is not None}
    live = uow.contacts.live_contacts(account.id, hinted) if hinted else {}
    for index, record in enumerate(records):
        hint = record.contact_hint
        if index in rejected or hint is None:
            continue
        if hint.contact_id not in live and hint.fallback is None:
            rejected[index] = RecordRejection(
                index, "unknown_contact", f"no contact has the id {hint.contact_id!r}"
            )
    if groups is not None:
        spread_to_groups(rejected, groups)
    repeated = drop_repeated_messages(uow, account, records, rejected, now)
    records = settle_aliases(uow, account, records)

    positions: list[int] = []
    batch: list[tuple[Identifier, ...]] = []
    pinned: list[ContactRef | None] = []
    for index, record in enumerate(records):
        if index in rejected or index in repeated:
            continue
        identifiers, pin = record.identifiers, None
        hint = record.contact_hint
        if hint is not None:
            if hint.contact_id in live:
                pin = live[hint.contact_id]
            elif hint.fallback is not None:
                identifiers = (*identifiers, hint.fallback)
        positions.append(index)
        batch.append(identifiers)
        pinned.append(pin)

    # Contacts whose rows must stay locked to the end: those whose attributes
    # change, and those whose daily count is about to be checked.
    locked = [
        slot
        for slot, index in enumerate(positions)
        if isinstance(records[index], ProfileUpdate) or rules.daily_limit is not None
    ]

    def refresh_pins() -> list[ContactRef | None]:
        # A pinned contact merged by a concurrent writer now stands for its survivor.
        fresh = uow.contacts.live_contacts(account.id, [p.id for p in pinned if p is not None])
        return [None if p is None else fresh.get(p.id, p) for p in pinned]

    contact_of, created = resolve_contacts(
        uow, account, batch, now, pinned=pinned, refresh_pins=refresh_pins, locked=locked
    )
    owner_of = dict(zip(positions, contact_of, strict=True))
    if rules.daily_limit is not None:
        for rejection in enforce_daily_limit(
            uow, account, records, owner_of, rules.daily_limit, now
        ):
            rejected[rejection.index] = rejection
            del owner_of[rejection.index]

    contact_ids: list[str | None] = [owner_of.get(index) for index in range(len(records))]
    updates: list[tuple[str, ProfileUpdate]] = []
    memberships: list[tuple[str, str, dict[str, Any]]] = []
    rows: list[dict[str, Any]] = []
    for index, owner in owner_of.items():
        record = records[index]
        if isinstance(record, ProfileUpdate):
            updates.append((owner, record))
        elif isinstance(record, GroupMembership):
            memberships.append((owner, record.group_id, record.traits))
        else:
            rows.append(activity_row(account, record, owner, now))
    if rules.recognize_types:
        flag_unsearchable(uow, account, rows, now)
    apply_profile_updates(uow, account, updates, created, now)
    uow.groups.merge_memberships(account.id, memberships, now)
    stored = uow.activities.insert(rows)
    count_received(uow, account, rows, stored, now)
    return RecordsOutcome(
        stored_activities=len(stored),
        updated_profiles=len(updates),
        rejected=sorted(rejected.values(), key=lambda r: r.index),
        contact_ids=contact_ids,
        created_contacts=frozenset(created),
    )


def settle_aliases(
    uow: UnitOfWork, account: Account, records: Sequence[Record]
) -> Sequence[Record]:
    """Give each alias's earlier id the kind that already names a contact (one lookup).

    Segment: ``previousId`` "may be an earlier anonymousId or an earlier
    userId": a user id (``identity``) when a contact has it, or an earlier
    record of the same batch names it; otherwise an anonymous id (``anonid``).
    """
    aliased = [
        index
        for index, record in enumerate(records)
        if isinstance(record, ProfileUpdate) and record.alias_of is not None
    ]
    if not aliased:
        return records
    as_user = {
        index: Identifier(IDENTITY, cast(ProfileUpdate, records[index]).alias_of or "")
        for index in aliased
    }
    owned = uow.contacts.find_owners(account.id, as_user.values())
    settled = list(records)
    for index in aliased:
        record = cast(ProfileUpdate, settled[index])
        user = as_user[index]
        earlier = any(user in r.identifiers for r in settled[:index])
        if not earlier and user not in owned:
            continue
        anonymous = Identifier(ANONID, user.value)
        identifiers = (user if i == anonymous else i for i in record.identifiers)
        settled[index] = replace(record, identifiers=tuple(dict.fromkeys(identifiers)))
    return settled


def drop_repeated_messages(
    uow: UnitOfWork,
    account: Account,
    records: Sequence[Record],
    rejected: dict[int, RecordRejection],
    now: datetime,
) -> set[int]:
    """Indexes of records whose ``message_id`` was already stored within the dedup window.

    The first record of the batch carrying an id claims it; the others, and
    every record whose id an earlier request claimed, are dropped without an
    error (a client retrying a batch it got no answer for). Records refused
    for another reason claim nothing, so a corrected retry is stored.
    """
    first_of: dict[str, int] = {}
    repeated: set[int] = set()
    for index, record in enumerate(records):
        if record.message_id is None or index in rejected:
            continue
        if record.message_id in first_of:
            repeated.add(index)
        else:
            first_of[record.message_id] = index
    if not first_of:
        return repeated
    window_start = now - timedelta(hours=account.dedup_window_hours)
    claimed = uow.message_ids.claim(account.id, list(first_of), now, window_start)
    repeated.update(index for message_id, index in first_of.items() if message_id not in claimed)
    return repeated


def count_received(
    uow: UnitOfWork,
    account: Account,
    rows: Sequence[dict[str, Any]],
    stored: set[str],
    now: datetime,
) -> None:
    """Add the stored rows to the hourly counts the console charts."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    counts: Counter[tuple[datetime, str, str]] = Counter(
        (hour, row["dialect"], row["name"]) for row in rows if row["id"] in stored
    )
    uow.ingest_stats.add_counts(account.id, counts)


def spread_to_groups(rejected: dict[int, RecordRejection], groups: Sequence[int]) -> None:
    """Refuse every record of a group one of whose records was refused."""
    first_of_group: dict[int, RecordRejection] = {}
    for index in sorted(rejected):
        first_of_group.setdefault(groups[index], rejected[index])
    for index, group in enumerate(groups):
        if index not in rejected and group in first_of_group:
            reason = first_of_group[group]
            rejected[index] = RecordRejection(index, reason.code, reason.message)


def apply_profile_updates(
    uow: UnitOfWork,
    account: Account,
    updates: Sequence[tuple[str, ProfileUpdate]],
    created: set[str],
    now: datetime,
) -> None:
    """Apply each update to its contact in order, following its merge strategy."""
    if not updates:
        return
    current = uow.contacts.attributes_of(account.id, {owner for owner, _ in updates})
    changed: dict[str, dict[str, Any]] = {}
    for owner, update in updates:
        before = changed.get(owner, current.get(owner))
        if before is None:
            continue  # merged away meanwhile; its survivor was locked instead
        after = apply_update(before, update.attributes, update.strategy, created=owner in created)
        if after is not before:
            changed[owner] = after
    uow.contacts.set_attributes(account.id, changed, now)


def enforce_daily_limit(
    uow: UnitOfWork,
    account: Account,
    records: Sequence[Record],
    owner_of: dict[int, str],
    limit: int,
    now: datetime,
) -> list[RecordRejection]:
    """Refuse activities beyond ``limit`` per name per contact in the last 24 hours.

    The contacts are locked by now, so concurrent batches for one contact
    count one after the other and never overshoot together.
    """
    activities = [
        (index, owner, records[index])
        for index, owner in owner_of.items()
        if isinstance(records[index], NewActivity)
    ]
    if not activities:
        return []
    counts = uow.activities.count_received_since(
        account.id,
        {owner for _, owner, _ in activities},
        {cast(NewActivity, record).name for _, _, record in activities},
        now - DAILY_WINDOW,
    )
    rejections = []
    for index, owner, record in activities:
        name = cast(NewActivity, record).name
        seen = counts.get((owner, name), 0)
        if seen >= limit:
            rejections.append(
                RecordRejection(
                    index,
                    "daily_limit",
                    f"contact {owner} already has {limit} {name!r} activities in the last "
                    "24 hours, the most allowed",
                )
            )
            continue
        counts[(owner, name)] = seen + 1
    return rejections


def admit_to_definitions(
    uow: UnitOfWork,
    account: Account,
    records: Sequence[Record],
    rejected: dict[int, RecordRejection],
    now: datetime,
) -> list[RecordRejection]:
    """Refuse activities without a definition, or with fields their definition lacks.

    An account that allows it gets a definition created from the first
    activity that uses an unknown id (concurrent first uses agree on one).
    """
    activities = [
        (index, r)
        for index, r in enumerate(records)
        if isinstance(r, NewActivity) and index not in rejected
    ]
    if not activities:
        return []
    names = {r.name for _, r in activities}
    known = uow.definitions.get_many(account.id, names)
    missing = names - set(known)
    unfit: dict[str, str] = {}
    if missing and account.auto_create_definitions:
        specs: dict[str, DefinitionSpec] = {}
        # First uses that cannot become a definition (more than 100 attributes).
        for _, r in activities:
            if r.name not in missing or r.name in specs or r.name in unfit:
                continue
            try:
                specs[r.name] = definition_from_attributes(r.name, r.properties)
            except EventyardError as exc:
                unfit[r.name] = exc.message
        uow.definitions.add_missing(account.id, list(specs.values()), now)
        known = uow.definitions.get_many(account.id, names)
    rejections = []
    for index, record in activities:
        if record.name not in known and record.name in unfit:
            rejections.append(
                RecordRejection(
                    index,
                    "undefined_activity",
                    f"activity_id {record.name!r} has no activity definition and this "
                    f"activity cannot create one: {unfit[record.name]}",
                )
            )
            continue
        definition = known.get(record.name)
        if definition is None:
            rejections.append(
                RecordRejection(
                    index,
                    "undefined_activity",
                    f"activity_id {record.name!r} has no activity definition; create it first",
                )
            )
            continue
        problems = check_attributes(definition, list(record.properties))
        if problems:
            field_id, reason = problems[0]
            rejections.append(RecordRejection(index, "undefined_field", f"{field_id}: {reason}"))
    return rejections


def flag_unsearchable(
    uow: UnitOfWork, account: Account, rows: list[dict[str, Any]], now: datetime
) -> None:
    """Recognise the rows' property types and mark values of another type unsearchable."""
    usage: dict[str, dict[str, str]] = {}
    for row in rows:
        seen = usage.setdefault(row["name"], {})
        for key, kind in property_types(row["properties"]).items():
            seen.setdefault(key, kind)
    recognised = uow.event_types.recognize_types(account.id, usage, now)
    for row in rows:
        row["unsearchable"] = mistyped(row["properties"], recognised[row["name"]]) or None


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
        "location": activity.location,
        "value_milli": activity.value_milli,
        "context": activity.context,
    }


def admit_to_registry(
    uow: UnitOfWork,
    account: Account,
    records: Sequence[Record],
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


#: The job kind of queued records, and the queue that keeps an account's in order.
INGEST_JOB = "ingest.records"


def ingest_queue(account_id: str) -> str:
    return f"ingest:{account_id}"


def enqueue_records(
    uow: UnitOfWork,
    account: Account,
    deferred: DeferredRecords,
    *,
    rules: IngestRules,
    now: datetime,
) -> str:
    """Queue ``deferred`` as one job of the account's ingest queue; returns its id.

    The job commits with the caller's transaction: once the client has its
    answer, the records are durable and will be stored exactly once.
    """

    return enqueue(
        uow,
        account_id=account.id,
        kind=INGEST_JOB,
        queue=ingest_queue(account.id),
        payload={
            "records": [record_to_json(r) for r in deferred.records],
            "groups": None if deferred.groups is None else list(deferred.groups),
            "labels": None if deferred.labels is None else list(deferred.labels),
            "rules": {
                "require_definitions": rules.require_definitions,
                "daily_limit": rules.daily_limit,
            },
            "received_at": now.isoformat(),
        },
        now=now,
    )
