"""A plan made on a stale view of the contacts is never written; merges keep attributes."""

from __future__ import annotations

import pytest

from eventyard.core.errors import ConcurrentUpdate
from eventyard.core.identifiers import DEFAULT_PRIMARY_KINDS, Identifier
from eventyard.core.identity import plan_resolution
from eventyard.core.ids import new_id
from eventyard.core.model import ProfileUpdate, StoredResponse
from eventyard.services.contacts import find_contacts, get_contact
from eventyard.services.ingest import ingest_records
from eventyard.storage.database import Database
from tests.integration.helpers import NOW, activity, ingest, new_account


def test_plan_merging_a_contact_that_became_known_meanwhile_is_refused(store: Database) -> None:
    """Known contacts are never merged, even when one turned known after the plan was made."""
    acct = new_account(store, "stale")
    ingest(store, acct, [activity("Visit", anonid="a-1")])
    ingest(store, acct, [activity("Login", identity="k-1")])
    batch = [[Identifier("anonid", "a-1"), Identifier("identity", "k-1")]]
    with store.unit_of_work(write=False) as reader:
        owners = reader.contacts.find_owners(acct.id, batch[0])
    stale = plan_resolution(batch, owners, DEFAULT_PRIMARY_KINDS, new_id)
    assert stale.merges  # planned while the visitor was anonymous

    # Meanwhile another writer converts the visitor: it is known now.
    ingest(store, acct, [activity("Signup", anonid="a-1", email="v@x.io")])

    with store.unit_of_work() as writer, pytest.raises(ConcurrentUpdate):
        writer.contacts.apply_resolution(acct.id, stale, NOW)
    # Planned afresh, the same event is a conflict and nothing is merged.
    ingest(store, acct, [activity("Both", anonid="a-1", identity="k-1")])
    visitor = find_contacts(store, acct, Identifier("email", "v@x.io"))[0]
    known = find_contacts(store, acct, Identifier("identity", "k-1"))[0]
    assert visitor.id != known.id
    assert visitor.status == known.status == "known"


def test_attributes_of_a_merged_anonymous_contact_are_kept(store: Database) -> None:
    acct = new_account(store, "attrs")
    ingest_records(
        store,
        acct,
        [
            ProfileUpdate((Identifier("anonid", "a-2"),), {"Plan": "gold", "Name": "Anon"}, "test"),
            ProfileUpdate((Identifier("identity", "k-2"),), {"Name": "Kay"}, "test"),
        ],
        now=NOW,
        respond=lambda outcome: StoredResponse(200, b"{}"),
    )
    ingest(store, acct, [activity("Join", anonid="a-2", identity="k-2")])
    known = find_contacts(store, acct, Identifier("identity", "k-2"))[0]
    # The known contact's own values win; what only the visitor had is kept.
    assert get_contact(store, acct, known.id).attributes == {"Plan": "gold", "Name": "Kay"}
