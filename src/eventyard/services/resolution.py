"""Identity resolution of a batch inside the write transaction.

Which contact each entry of a batch belongs to, creating and converting
contacts as needed. The rules are ``core.identity``'s; this module decides
how they are applied: the common cases set-based in the database when the
store can (storage/set_resolution.py), the rare ones and every batch on
other stores through the pure planner, and again after a lost race.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar, cast

from eventyard.core.errors import ConcurrentUpdate, EventyardError
from eventyard.core.identifiers import Identifier
from eventyard.core.identity import ContactRef, plan_resolution
from eventyard.core.ids import new_id
from eventyard.core.model import Account
from eventyard.services.ports import BulkResolution, UnitOfWork

#: How often a batch is planned again when a concurrent writer took one of its
#: new identifiers first. Each retry sees that writer's committed contacts.
MAX_RESOLUTION_ATTEMPTS = 10
#: After this many lost races a batch takes its account's identity turn.
TAKE_TURNS_AFTER = 2

T = TypeVar("T")


def resolve_contacts(
    uow: UnitOfWork,
    account: Account,
    batch: Sequence[Sequence[Identifier]],
    now: datetime,
    *,
    pinned: Sequence[ContactRef | None] | None = None,
    refresh_pins: Callable[[], Sequence[ContactRef | None]] | None = None,
    locked: Sequence[int] = (),
) -> tuple[list[str], set[str]]:
    """The contact id of each entry of ``batch`` and the ids of the contacts created.

    Contacts are created and converted as needed.

    A batch without pinned contacts is resolved by the store itself,
    set-based, when it can (PostgreSQL), but for its rare entries, which the
    planner decides; it waits for concurrent batches creating the same
    contacts instead of failing. Otherwise: one lookup for the whole batch, one plan, a handful of
    set-based writes. When a concurrent transaction claimed one of the new
    identifiers first, the savepoint is rolled back and the batch resolved
    again against what that transaction committed, so two writers never
    create two contacts for one identifier. The contacts of the entries at
    ``locked`` stay locked to the end of the transaction (their attributes
    are about to change).
    """
    if not batch:
        return [], set()
    # Pinned contacts (named by id) take part in the planner's rules only.
    in_bulk = pinned is None or all(pin is None for pin in pinned)
    wanted: set[Identifier] | None = None

    def attempt(number: int) -> tuple[list[str], set[str]]:
        nonlocal pinned, wanted
        if number and refresh_pins is not None:
            pinned = refresh_pins()
        bulk = uow.contacts.start_bulk_resolution(account.id, batch) if in_bulk else None
        if bulk is not None:
            return _finish_in_bulk(uow, account, batch, now, bulk, locked)
        if wanted is None:
            wanted = {ident for idents in batch for ident in idents}
        owners = uow.contacts.find_owners(account.id, wanted)
        plan = plan_resolution(batch, owners, account.primary_kinds, new_id, pinned)
        also_lock = {plan.contact_ids[slot] for slot in locked}
        uow.contacts.apply_resolution(account.id, plan, now, also_lock)
        return plan.contact_ids, set(plan.new_contacts)

    return retry_lost_races(uow, account, attempt)


def retry_lost_races(uow: UnitOfWork, account: Account, attempt: Callable[[int], T]) -> T:
    """``attempt(n)`` in a savepoint, again while it raises ``ConcurrentUpdate``.

    Each retry sees what the concurrent writer committed. After
    :data:`TAKE_TURNS_AFTER` lost races the caller queues behind the other
    writers of the account that also lost, so that each gets through in turn;
    after :data:`MAX_RESOLUTION_ATTEMPTS`, a 503 the client may retry.
    """
    for number in range(MAX_RESOLUTION_ATTEMPTS):
        if number == TAKE_TURNS_AFTER:
            uow.contacts.take_identity_turn(account.id)
        try:
            with uow.savepoint():
                return attempt(number)
        except ConcurrentUpdate:
            # Another writer is creating the same contacts right now; let it
            # finish before trying again (jitter keeps retries apart).
            time.sleep(random.uniform(0, 0.002 * 2**number))
    raise EventyardError(
        "contention",
        "Too many concurrent changes to the same contacts; retry the request",
        503,
        headers={"Retry-After": "1"},
    )


def _finish_in_bulk(
    uow: UnitOfWork,
    account: Account,
    batch: Sequence[Sequence[Identifier]],
    now: datetime,
    bulk: BulkResolution,
    locked: Sequence[int],
) -> tuple[list[str], set[str]]:
    """Plan the rare entries of a staged batch, then write both parts.

    The store locks the contacts the plan changes together with its own, in
    one sorted pass, before the plan is written: writers never lock in
    different orders.
    """
    if not bulk.rare:
        contact_of, created = bulk.finish(now, locked)
        return cast(list[str], contact_of), created
    rare = [batch[slot] for slot in bulk.rare]
    owners = uow.contacts.find_owners(account.id, {i for idents in rare for i in idents})
    plan = plan_resolution(rare, owners, account.primary_kinds, new_id)
    locked_set = set(locked)
    also_lock = {
        plan.contact_ids[j] for j, slot in enumerate(bulk.rare) if slot in locked_set
    } - set(plan.new_contacts)
    contact_of, created = bulk.finish(now, locked, plan.touched_existing | also_lock)
    uow.contacts.apply_resolution(account.id, plan, now, also_lock)
    for j, slot in enumerate(bulk.rare):
        contact_of[slot] = plan.contact_ids[j]
    return cast(list[str], contact_of), created | set(plan.new_contacts)
