"""Merge two contacts by hand (with a preview), revert a merge, split a contact.

The rules are ``core.identity_operations``'s. Each operation is one
transaction that first takes the account's identity operations lock
(``hold_identity_operations``): it waits for the ingest transactions in
flight, which hold a share of that lock from their start, and new ones wait
for it. So an event arriving during an operation is resolved after it, and
lands on the contact that owns its identifier then. Then the contacts'
rows are locked in id order, as ingest locks them. Every operation is
audited as an identity event naming its actor.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from eventyard.core.errors import EventyardError, FieldError, NotFound
from eventyard.core.identifiers import Identifier
from eventyard.core.identity_operations import (
    MergePreview,
    Prefer,
    changed_attributes,
    check_split,
    merge_attributes,
)
from eventyard.core.ids import is_id
from eventyard.core.model import Account, Contact
from eventyard.services.ports import Store, UnitOfWork


def merge_contacts(
    store: Store,
    account: Account,
    contact_id: str,
    other_id: Any,
    *,
    prefer: Prefer = "survivor",
    actor: dict[str, Any],
    now: datetime,
    dry_run: bool = False,
) -> tuple[MergePreview, dict[str, Any] | None]:
    """Merge ``other_id`` into ``contact_id``: what moved, and the audit record.

    ``dry_run``: what would move, and ``None``; nothing changes. 404 for an
    unknown id or another account's; 422 for a contact merged into itself
    (also when one was already merged into the other).
    """
    if not isinstance(other_id, str) or not other_id:
        raise EventyardError(
            "invalid_contact_id",
            "contact_id must name the contact to merge into this one",
            422,
            errors=[FieldError("contact_id", "is required")],
        )
    with store.unit_of_work(write=not dry_run) as uow:
        if not dry_run:
            uow.contacts.hold_identity_operations(account.id)
        survivor = _contact(uow, account, contact_id, "No such contact")
        other = _contact(uow, account, other_id, "No contact has the id given as contact_id")
        if survivor.id == other.id:
            raise EventyardError(
                "merge_into_itself",
                "A contact cannot be merged into itself",
                422,
                errors=[FieldError("contact_id", "names the same contact")],
            )
        if not dry_run:
            # No writer of the account runs now (the operations lock): the rows
            # read above stay as they are; locked all the same, in id order.
            _lock(uow, account, [survivor.id, other.id])
        after = merge_attributes(survivor.attributes, other.attributes, prefer)
        counts = uow.identity.preview_merge(account.id, other.id)
        preview = MergePreview(
            survivor_id=survivor.id,
            other_id=other.id,
            attributes=changed_attributes(survivor.attributes, after),
            **counts,
        )
        if dry_run:
            return preview, None
        snapshot = uow.identity.merge(account.id, other.id, survivor.id, after, now)
        event = uow.identity.record_event(
            account.id,
            kind="merged",
            contact_id=survivor.id,
            other_contact_ids=[other.id],
            identifiers=snapshot["merged"]["identifiers"],
            details={
                "reason": "merged by hand",
                "actor": actor,
                "prefer": prefer,
                "moved": counts,
                "snapshot": snapshot,
            },
            now=now,
        )
        uow.commit()
    return preview, event


def absorb_requested(
    uow: UnitOfWork,
    account: Account,
    requests: Sequence[tuple[str, Sequence[Identifier], str]],
    now: datetime,
) -> None:
    """Merges a client asked for, inside its ingest transaction (no commit).

    Each request is ``(survivor id, identifiers of the other person, dialect)``:
    the owner of each identifier is merged into the survivor (the survivor's
    attribute values win), audited as a merge with ``actor.via`` the dialect
    and revertible like any other; identifiers nobody owns are given to the
    survivor. The survivor's row is already locked (a profile update's).
    """
    for survivor_id, identifiers, dialect in requests:
        survivor = _contact(uow, account, survivor_id, "No such contact")
        owners = uow.contacts.find_owners(account.id, identifiers)
        unowned = [i for i in identifiers if i not in owners]
        live = uow.contacts.live_contacts(account.id, {ref.id for ref in owners.values()})
        for other_id in sorted({ref.id for ref in live.values()} - {survivor.id}):
            _lock(uow, account, [survivor.id, other_id])
            attributes = uow.contacts.attributes_of(account.id, [survivor.id, other_id])
            after = merge_attributes(attributes[survivor.id], attributes[other_id])
            snapshot = uow.identity.merge(account.id, other_id, survivor.id, after, now)
            uow.identity.record_event(
                account.id,
                kind="merged",
                contact_id=survivor.id,
                other_contact_ids=[other_id],
                identifiers=snapshot["merged"]["identifiers"],
                details={
                    "reason": "merge asked by the client",
                    "actor": {"via": dialect},
                    "snapshot": snapshot,
                },
                now=now,
            )
        if unowned:
            uow.identity.attach(account.id, survivor.id, unowned, now)


def revert_merge(
    store: Store, account: Account, event_id: str, *, actor: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """Undo the merge audited as ``event_id``; the audit record of the revert.

    404 for an unknown event or another account's; 422 for an event that is
    not a merge (a revert, a split, a conversion, a conflict) or a merge
    recorded before merges kept what they moved; 409 for a merge already
    reverted, or one a later merge or an erasure makes impossible to undo.
    """
    if not is_id(event_id):
        raise NotFound("No such identity event")
    with store.unit_of_work() as uow:
        uow.contacts.hold_identity_operations(account.id)
        event = uow.identity.event(account.id, event_id, lock=True)
        details = dict(event["details"])
        if event["kind"] != "merged":
            raise EventyardError(
                "not_a_merge",
                f"Only a merge can be reverted; this identity event is a {event['kind']!r}",
                422,
            )
        if "reverted_by" in details:
            raise EventyardError(
                "already_reverted",
                f"This merge was already reverted (identity event {details['reverted_by']})",
                409,
            )
        snapshot = details.get("snapshot")
        if snapshot is None:
            raise EventyardError(
                "not_revertible",
                "This merge was recorded before merges kept what they moved: it cannot be reverted",
                422,
            )
        moved = uow.identity.revert_merge(account.id, snapshot, now)
        merged_id = snapshot["merged"]["id"]
        revert = uow.identity.record_event(
            account.id,
            kind="reverted",
            contact_id=event["contact_id"],
            other_contact_ids=[merged_id],
            identifiers=snapshot["merged"]["identifiers"],
            details={
                "reason": "merge reverted",
                "actor": actor,
                "reverts": event["id"],
                "moved": moved,
            },
            now=now,
        )
        # What the merge moved is back where it was: its copy goes (an erasure of the
        # merged contact later must find none of its attributes here).
        del details["snapshot"]
        details["reverted_by"] = revert["id"]
        uow.identity.set_event_details(account.id, event["id"], details)
        uow.commit()
    return revert


def split_contact(
    store: Store,
    account: Account,
    contact_id: str,
    identifiers: list[Identifier],
    *,
    actor: dict[str, Any],
    now: datetime,
) -> tuple[str, dict[str, Any]]:
    """Move ``identifiers`` of the contact, and the activities resolved through them, to a
    new contact; its id and the audit record. 404 for an unknown contact; 422 for an
    identifier the contact does not hold, or a split that would leave it none."""
    with store.unit_of_work() as uow:
        uow.contacts.hold_identity_operations(account.id)
        contact = _contact(uow, account, contact_id, "No such contact")
        _lock(uow, account, [contact.id])
        check_split(contact.identifiers, identifiers)
        new_id, moved = uow.identity.split(account.id, contact.id, identifiers, now)
        event = uow.identity.record_event(
            account.id,
            kind="split",
            contact_id=contact.id,
            other_contact_ids=[new_id],
            identifiers=[{"kind": i.kind, "value": i.value} for i in identifiers],
            details={"reason": "split by hand", "actor": actor, "moved": moved},
            now=now,
        )
        uow.commit()
    return new_id, event


def _contact(uow: UnitOfWork, account: Account, contact_id: Any, missing: str) -> Contact:
    """The live contact ``contact_id`` stands for (following merges); 404 otherwise."""
    contact = (
        uow.contacts.get(account.id, contact_id)
        if isinstance(contact_id, str) and is_id(contact_id)
        else None
    )
    if contact is None:
        raise NotFound(missing)
    return contact


def _lock(uow: UnitOfWork, account: Account, contact_ids: list[str]) -> None:
    """Lock the contacts' rows; 404 if one was erased meanwhile (erasure takes no turn)."""
    locked = uow.identity.lock(account.id, contact_ids)
    if any(locked.get(cid, "gone") is not None for cid in contact_ids):
        raise NotFound("No such contact")
