"""Listing an account's activities across contacts: search, count, stream.

The dialect hands over an ``ActivityQuery``; identifiers in it are resolved
to the contact they name here, and each activity comes back with the contact
that now stands for its contact (after merges) and that contact's identifiers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from eventyard.core.activity_query import ActivityQuery
from eventyard.core.identifiers import Identifier
from eventyard.core.model import Account, Activity
from eventyard.services.ports import Store, UnitOfWork


@dataclass(frozen=True, slots=True)
class FoundActivity:
    activity: Activity
    #: The contact the activity belongs to now (a merged contact's survivor).
    contact_id: str
    identifiers: list[Identifier]


@dataclass(frozen=True, slots=True)
class SearchPage:
    items: list[FoundActivity]
    #: The query that continues after the last item; ``None`` when there is no more.
    next_query: ActivityQuery | None
    total: int | None = None


#: Marks a query whose identifiers name no contact: nothing can match.
_NOBODY = ""


def search_activities(
    store: Store, account: Account, query: ActivityQuery, limit: int, *, with_total: bool = False
) -> SearchPage:
    """Up to ``limit`` activities matching ``query``, and how to continue."""
    with store.unit_of_work(write=False) as uow:
        contact = _contact_of(uow, account, query)
        total = None
        if with_total:
            total = 0 if contact == _NOBODY else _count(uow, account, query, contact)
        if contact == _NOBODY or query.empty_range:
            return SearchPage(items=[], next_query=None, total=total)
        rows = uow.activities.search(account.id, query, limit + 1, contact_id=contact)
        items = _with_contacts(uow, account, rows[:limit])
    next_query = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_query = query.continued_after(last.occurred_at, last.id)
    return SearchPage(items=items, next_query=next_query, total=total)


def count_activities(store: Store, account: Account, query: ActivityQuery) -> int:
    with store.unit_of_work(write=False) as uow:
        contact = _contact_of(uow, account, query)
        return 0 if contact == _NOBODY else _count(uow, account, query, contact)


def stream_activities(
    store: Store, account: Account, query: ActivityQuery, batch_size: int = 5000
) -> Iterator[list[FoundActivity]]:
    """Every matching activity, in batches, each batch read in its own short transaction.

    Keyset continuation keeps memory flat and never holds a transaction open
    across the whole listing.
    """
    current: ActivityQuery | None = query
    while current is not None:
        page = search_activities(store, account, current, batch_size)
        if page.items:
            yield page.items
        current = page.next_query


def _count(uow: UnitOfWork, account: Account, query: ActivityQuery, contact: str | None) -> int:
    if query.empty_range:
        return 0
    return uow.activities.count(account.id, query, contact_id=contact)


def _contact_of(uow: UnitOfWork, account: Account, query: ActivityQuery) -> str | None:
    """The contact the query's identifiers name; ``None`` for any, ``_NOBODY`` for none."""
    if not query.identifiers and query.contact_id is None:
        return None
    candidates: set[str] = set()
    if query.contact_id is not None:
        live = uow.contacts.live_contacts(account.id, [query.contact_id])
        if query.contact_id in live:
            candidates.add(live[query.contact_id].id)
        else:
            owners = uow.contacts.find_owners(account.id, [Identifier("cID", query.contact_id)])
            if not owners:
                return _NOBODY
            candidates.update(ref.id for ref in owners.values())
    if query.identifiers:
        owners = uow.contacts.find_owners(account.id, query.identifiers)
        if len(owners) < len(set(query.identifiers)):
            return _NOBODY
        candidates.update(ref.id for ref in owners.values())
    return candidates.pop() if len(candidates) == 1 else _NOBODY


def _with_contacts(uow: UnitOfWork, account: Account, rows: list[Activity]) -> list[FoundActivity]:
    contacts = uow.contacts.identifiers_of(account.id, {r.contact_id for r in rows})
    found = []
    for row in rows:
        owner, identifiers = contacts.get(row.contact_id, (row.contact_id, []))
        found.append(FoundActivity(activity=row, contact_id=owner, identifiers=identifiers))
    return found
