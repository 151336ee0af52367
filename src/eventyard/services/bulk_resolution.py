"""Identity resolution of large chunks: imports and backfills, tens of thousands of rows.

The rules are ``core.identity``'s, as for API batches. The common rows of a
chunk (every identifier owned by one contact, or by nobody) are resolved by
the store through staging tables (``storage/repositories/staging.py``); the
rare rest is left to the caller, who passes it through the planner in the
same transaction (``resolve_contacts``, ``store_records``). Nothing is kept
per row in Python but the row's slot and contact.

Attributes, when given, are merged here by the account's rules
(``core.profiles.apply_update``, strategy ``overwrite``), row by row in file
order, starting from the stored attributes (read after the owners are
locked): the last value of a key wins, as when the rows come one request
at a time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventyard.core.ids import new_id
from eventyard.core.model import Account, MergeStrategy
from eventyard.core.profiles import apply_update
from eventyard.services.ports import StagedChunk, UnitOfWork
from eventyard.services.resolution import retry_lost_races


@dataclass(frozen=True, slots=True)
class ChunkResolution:
    """Who each row of a chunk belongs to; the rare rows are still the caller's."""

    #: The contact of each row (``None`` for a rare row).
    contact_of: list[str | None]
    #: The rows that created their contact (the first row of each new contact).
    creating: set[int]
    #: The rows the caller resolves with the planner, in order.
    rare: list[int]


def resolve_chunk(
    uow: UnitOfWork,
    account: Account,
    batch: Sequence[Sequence[tuple[str, str]]],
    now: datetime,
    *,
    attributes: Sequence[Mapping[str, Any]] | None = None,
    strategy: MergeStrategy = "overwrite",
    list_id: int | None = None,
) -> ChunkResolution:
    """Resolve the common rows of ``batch`` (each a row's (kind, value) pairs) in ``uow``.

    ``attributes[i]``, when given, is merged into row ``i``'s contact;
    ``list_id`` names a list that every contact of the common rows joins.
    A lost race with a concurrent writer stages the chunk again.
    """

    uow.contacts.share_identity_operations(account.id)

    def attempt(number: int) -> ChunkResolution:
        staged = uow.staging.stage_identities(account.id, batch)
        staged.lock_owners(every=attributes is not None)
        return _write(uow, account, staged, batch, now, attributes, strategy, list_id)

    return retry_lost_races(uow, account, attempt)


def _write(
    uow: UnitOfWork,
    account: Account,
    staged: StagedChunk,
    batch: Sequence[Sequence[tuple[str, str]]],
    now: datetime,
    attributes: Sequence[Mapping[str, Any]] | None,
    strategy: MergeStrategy,
    list_id: int | None,
) -> ChunkResolution:
    contact_of: list[str | None] = [None] * len(batch)
    creating: set[int] = set()
    group_ids: dict[int, str] = {}
    new_status: dict[str, str] = {}
    new_identifiers: dict[tuple[str, str], str] = {}
    for row in staged.simple:
        if row.owner is not None:
            contact_of[row.slot] = row.owner
            continue
        assert row.first_slot is not None
        contact_id = group_ids.get(row.first_slot)
        if contact_id is None:
            contact_id = group_ids[row.first_slot] = new_id()
            new_status[contact_id] = "known" if row.known else "anonymous"
            creating.add(row.slot)
        contact_of[row.slot] = contact_id
        for pair in batch[row.slot]:
            new_identifiers[pair] = contact_id

    merged: dict[str, dict[str, Any]] = {}
    if attributes is not None:
        owners = {row.owner for row in staged.simple if row.owner is not None}
        merged = uow.contacts.attributes_of(account.id, owners)
        merged.update((contact_id, {}) for contact_id in new_status)
        for row in staged.simple:
            contact_id = contact_of[row.slot]
            assert contact_id is not None
            merged[contact_id] = apply_update(
                merged[contact_id],
                dict(attributes[row.slot]),
                strategy,
                created=contact_id in new_status,
            )
    new_contacts = [(cid, status, merged.get(cid, {})) for cid, status in new_status.items()]
    changed = {cid: attrs for cid, attrs in merged.items() if cid not in new_status}
    staged.write(now, new_contacts, new_identifiers, changed, list_id)
    return ChunkResolution(contact_of, creating, staged.rare)
