"""Reading contacts, their activities and their identity history."""

from __future__ import annotations

from typing import Any

from eventyard.core.cursor import decode_cursor
from eventyard.core.errors import EventyardError, NotFound
from eventyard.core.identifiers import Identifier
from eventyard.core.ids import is_id
from eventyard.core.model import Account, ActivityPage, Contact, ContactGroup
from eventyard.services.ports import Store, UnitOfWork

MAX_PAGE_SIZE = 1000


def find_contacts(store: Store, account: Account, identifier: Identifier) -> list[Contact]:
    with store.unit_of_work(write=False) as uow:
        return uow.contacts.find_by_identifier(account.id, identifier)


def get_contact(store: Store, account: Account, contact_id: str) -> Contact:
    """The contact, or ``NotFound`` (also when it belongs to another account)."""
    with store.unit_of_work(write=False) as uow:
        return _existing_contact(uow, account, contact_id)


def list_activities(
    store: Store, account: Account, contact_id: str, limit: int, cursor: str | None
) -> ActivityPage:
    """A page of the contact's activities, newest first, continued by ``cursor``."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise EventyardError("invalid_limit", f"limit must be between 1 and {MAX_PAGE_SIZE}")
    try:
        position = decode_cursor(cursor) if cursor else None
    except ValueError as exc:
        raise EventyardError("invalid_cursor", str(exc)) from exc
    with store.unit_of_work(write=False) as uow:
        contact = _existing_contact(uow, account, contact_id)
        return uow.activities.page(account.id, contact.id, limit, position)


def identity_history(store: Store, account: Account, contact_id: str) -> list[dict[str, Any]]:
    with store.unit_of_work(write=False) as uow:
        contact = _existing_contact(uow, account, contact_id)
        return uow.contacts.identity_events(account.id, contact.id)


def contact_groups(store: Store, account: Account, contact_id: str) -> list[ContactGroup]:
    """The groups the contact belongs to (Segment ``group``), by group id."""
    with store.unit_of_work(write=False) as uow:
        contact = _existing_contact(uow, account, contact_id)
        return uow.groups.of_contact(account.id, contact.id)


def _existing_contact(uow: UnitOfWork, account: Account, contact_id: str) -> Contact:
    """The contact of this account, or ``NotFound``: 404, never 403, for other tenants."""
    contact = uow.contacts.get(account.id, contact_id) if is_id(contact_id) else None
    if contact is None:
        raise NotFound("No such contact")
    return contact
