"""Storing a batch of records inside a unit of work: admit, resolve, write."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, cast

from eventyard.core.commands import Record
from eventyard.core.identifiers import ANONID, IDENTITY, Identifier
from eventyard.core.identity import (
    CONTACT_ID_KIND,
    ContactRef,
    primary_rank,
    resolving_identifier,
)
from eventyard.core.ids import new_id
from eventyard.core.model import (
    JOURNEY_WINDOW,
    Account,
    EventTypeLimits,
    GroupMembership,
    IngestRules,
    NewActivity,
    ProfileUpdate,
    RecordRejection,
    RecordsOutcome,
)
from eventyard.services.destinations.outbox import queue_for_destinations
from eventyard.services.identity_operations import absorb_requested
from eventyard.services.ingest.admission import (
    admit_to_definitions,
    admit_to_registry,
    enforce_daily_limit,
    flag_unsearchable,
)
from eventyard.services.ingest.profiles import apply_profile_updates
from eventyard.services.ports import UnitOfWork
from eventyard.services.resolution import resolve_contacts

#: No rule beyond the defaults: every record is admitted as it comes.
NO_RULES = IngestRules()


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
    # First: a merge, revert or split of this account in flight finishes before
    # this batch reads any contact, and none starts until it commits.
    uow.contacts.share_identity_operations(account.id)
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
    # Provenance: the identifier (or named contact id) each activity is resolved by.
    resolved_by: dict[int, Identifier | None] = {}
    rank = primary_rank(account.primary_kinds)
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
        resolved_by[index] = (
            Identifier(CONTACT_ID_KIND, hint.contact_id)
            if pin is not None and hint is not None
            else resolving_identifier(identifiers, rank)
        )

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

    absorbing = [
        (owner, record.absorbs, record.dialect)
        for index, owner in owner_of.items()
        if isinstance(record := records[index], ProfileUpdate) and record.absorbs
    ]
    if absorbing:
        absorb_requested(uow, account, absorbing, now)

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
            rows.append(activity_row(account, record, owner, now, resolved_by[index]))
    if rules.recognize_types:
        flag_unsearchable(uow, account, rows, now)
    apply_profile_updates(uow, account, updates, created, now)
    uow.groups.merge_memberships(account.id, memberships, now)
    stored = uow.activities.insert(rows)
    queue_for_destinations(uow, account.id, rows, stored, now)
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


def spread_to_groups(rejected: dict[int, RecordRejection], groups: Sequence[int]) -> None:
    """Refuse every record of a group one of whose records was refused."""
    first_of_group: dict[int, RecordRejection] = {}
    for index in sorted(rejected):
        first_of_group.setdefault(groups[index], rejected[index])
    for index, group in enumerate(groups):
        if index not in rejected and group in first_of_group:
            reason = first_of_group[group]
            rejected[index] = RecordRejection(index, reason.code, reason.message)


def activity_row(
    account: Account,
    activity: NewActivity,
    contact_id: str,
    now: datetime,
    resolved_by: Identifier | None = None,
) -> dict[str, Any]:
    """The stored row of ``activity``; ``resolved_by`` is its provenance."""
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
        "resolved_kind": None if resolved_by is None else resolved_by.kind,
        "resolved_value": None if resolved_by is None else resolved_by.value,
    }


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
