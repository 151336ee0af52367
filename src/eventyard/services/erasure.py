"""Right to erasure: remove a contact and everything eventyard holds about them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from eventyard.core.errors import NotFound
from eventyard.core.identifiers import Identifier
from eventyard.core.ids import is_id, new_id
from eventyard.core.model import Account, Erasure
from eventyard.services.exports import drop_contact_from_exports
from eventyard.services.ports import Store

MAX_AUDIT_PAGE = 1000


def erase_contact(
    store: Store,
    account: Account,
    contact_id: str,
    *,
    requested_via: str,
    now: datetime,
    export_dir: Path,
) -> Erasure:
    """Erase the contact ``contact_id`` names (following a merge) and every contact merged into it.

    One transaction removes the contacts, their identifiers, activities,
    list and group memberships and identity history; blanks their values
    where other records only mention them (stored idempotent responses,
    rejection reasons, jobs, other contacts' identity events); drops their
    records from batches still queued; and takes their rows out of export
    files not yet fetched. What remains is the audit record: ids and counts,
    no personal data. ``NotFound`` for an unknown id or another account's.
    """
    with store.unit_of_work() as uow:
        contact = uow.contacts.get(account.id, contact_id) if is_id(contact_id) else None
        if contact is None:
            raise NotFound("No such contact")
        ids = uow.erasures.person(account.id, contact.id)
        export_rows = drop_contact_from_exports(uow, export_dir, account, set(ids))
        erasure = uow.erasures.erase(
            account.id,
            ids,
            erasure_id=new_id(),
            requested_via=requested_via,
            now=now,
            removed_elsewhere={"export_rows": export_rows},
        )
        uow.commit()
    store.checkpoint()
    return erasure


def erase_by_identifier(
    store: Store,
    account: Account,
    identifier: Identifier,
    *,
    requested_via: str,
    now: datetime,
    export_dir: Path,
) -> Erasure:
    """Erase the contact owning ``identifier``; ``NotFound`` when nobody owns it."""
    with store.unit_of_work(write=False) as uow:
        found = uow.contacts.find_by_identifier(account.id, identifier)
    if not found:
        raise NotFound(f"No contact has the identifier {identifier}")
    return erase_contact(
        store,
        account,
        found[0].id,
        requested_via=requested_via,
        now=now,
        export_dir=export_dir,
    )


def list_erasures(store: Store, account: Account, limit: int = 100) -> list[Erasure]:
    """The account's erasures, newest first."""
    with store.unit_of_work(write=False) as uow:
        return uow.erasures.list(account.id, min(max(limit, 1), MAX_AUDIT_PAGE))
