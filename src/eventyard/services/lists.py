"""Contact lists: create them, list them, page through their members."""

from __future__ import annotations

from datetime import UTC, datetime

from eventyard.core.errors import EventyardError, NotFound
from eventyard.core.ids import is_id
from eventyard.core.lists import ContactList, check_list_name
from eventyard.core.model import Account, Contact
from eventyard.services.ports import Store

MAX_PAGE_SIZE = 1000


def create_list(store: Store, account: Account, name: object) -> ContactList:
    """A new list of ``account``; 409 when it already has a list of that name."""
    checked = check_list_name(name)
    with store.unit_of_work() as uow:
        created = uow.lists.create(account.id, checked, datetime.now(UTC))
        if created is None:
            raise EventyardError("list_exists", f"a list named {checked!r} exists already", 409)
        uow.commit()
    return created


def list_lists(store: Store, account: Account) -> list[ContactList]:
    with store.unit_of_work(write=False) as uow:
        return uow.lists.of_account(account.id)


def get_list(store: Store, account: Account, list_id: int) -> ContactList:
    """The list, or ``NotFound`` (also when it is another account's)."""
    with store.unit_of_work(write=False) as uow:
        found = uow.lists.get(account.id, list_id)
    if found is None:
        raise NotFound(f"No list {list_id}")
    return found


def list_members(
    store: Store, account: Account, list_id: int, limit: int, cursor: str | None
) -> tuple[list[Contact], str | None]:
    """A page of the list's contacts by id and the cursor of the next page (``None`` at the end)."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise EventyardError("invalid_limit", f"limit must be between 1 and {MAX_PAGE_SIZE}")
    if cursor is not None and not is_id(cursor):
        raise EventyardError("invalid_cursor", "cursor must be the next_cursor of a page")
    with store.unit_of_work(write=False) as uow:
        if uow.lists.get(account.id, list_id) is None:
            raise NotFound(f"No list {list_id}")
        members = uow.lists.members(account.id, list_id, limit, cursor)
    next_cursor = members[-1].id if len(members) == limit else None
    return members, next_cursor
