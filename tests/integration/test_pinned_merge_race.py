"""A profile pinned to a contact that a concurrent writer merges away lands on the survivor.

PostgreSQL only (it needs a second writer to commit while the first request
is between planning and writing; SQLite writers cannot overlap at all).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from eventyard.core.identifiers import Identifier
from eventyard.core.identity import ResolutionPlan
from eventyard.core.model import ContactHint, ProfileUpdate
from eventyard.services.contacts import find_contacts, get_contact
from eventyard.services.ingest import ingest_records
from eventyard.storage.database import Database
from eventyard.storage.migrate import upgrade_database
from tests.integration.helpers import NOW, activity, ingest, new_account, stored_names


class MergeFirst:
    """Before the first plan is written, another connection merges the pinned visitor."""

    def __init__(self, real: Any, merge: Any) -> None:
        self.real, self.merge, self.done = real, merge, False

    def apply_resolution(
        self, account_id: str, plan: ResolutionPlan, now: datetime, also_lock: Any = ()
    ) -> None:
        if not self.done:
            self.done = True
            self.merge()
        self.real.apply_resolution(account_id, plan, now, also_lock)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_profile_pinned_to_a_contact_merged_meanwhile_goes_to_the_survivor(
    postgres_url: str,
) -> None:
    upgrade_database(postgres_url)
    store = Database.from_url(postgres_url)
    other = Database.from_url(postgres_url)
    try:
        acct = new_account(store, "pinrace")
        ingest(store, acct, [activity("Visit", anonid="v-1")])
        ingest(store, acct, [activity("Login", identity="k-1")])
        visitor = find_contacts(store, acct, Identifier("anonid", "v-1"))[0].id

        @contextmanager
        def unit_of_work(*, write: bool = True) -> Iterator[Any]:
            with store.unit_of_work(write=write) as uow:
                contacts = MergeFirst(
                    uow.contacts,
                    lambda: ingest(other, acct, [activity("Join", anonid="v-1", identity="k-1")]),
                )
                yield type(
                    "UoW", (), {"contacts": contacts, "__getattr__": lambda s, n: getattr(uow, n)}
                )()

        racing = type("Store", (), {"unit_of_work": staticmethod(unit_of_work)})()
        pinned = ProfileUpdate(
            identifiers=(),
            attributes={"Plan": "gold"},
            dialect="test",
            contact_hint=ContactHint(visitor, Identifier("objectId", visitor)),
        )
        ingest_records(racing, acct, [pinned], now=NOW, respond=lambda o: o)

        # The profile reached the contact that absorbed the visitor.
        known = find_contacts(store, acct, Identifier("identity", "k-1"))[0]
        assert get_contact(store, acct, known.id).attributes == {"Plan": "gold"}
        assert get_contact(store, acct, visitor).id == known.id
        assert sorted(stored_names(store, acct)) == ["Join", "Login", "Visit"]
    finally:
        store.dispose()
        other.dispose()
