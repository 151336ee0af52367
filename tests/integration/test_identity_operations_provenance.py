"""Provenance of activities whose record named their contact by id, through a merge and its
revert (issue 23: the revert moves back "the activities that were resolved through those
identifiers (including ones that arrived after the merge)")."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from eventyard.core.identifiers import Identifier
from eventyard.core.identity import CONTACT_ID_KIND
from eventyard.core.model import ContactHint, NewAccount
from eventyard.services.contacts import list_activities
from eventyard.services.identity_operations import merge_contacts, revert_merge
from eventyard.storage.database import Database
from tests.integration import helpers
from tests.integration.helpers import NOW, activity


def names_by_provenance(store: Database, account: NewAccount, contact_id: str) -> set[Any]:
    page = list_activities(store, account.account, contact_id, limit=100, cursor=None)
    return {(a.name, a.resolved_by) for a in page.activities}


def test_an_activity_naming_its_contact_by_id_follows_that_contact_back(
    store: Database, account: NewAccount
) -> None:
    acct = account.account
    [jane, bob] = helpers.contact_ids(
        helpers.ingest(
            store, acct, [activity("Start", identity="jane"), activity("Start", identity="bob")]
        )
    )
    pinned = replace(activity("Pinned"), contact_hint=ContactHint(bob))
    helpers.ingest(store, acct, [pinned])
    actor = {"via": "test"}
    _, event = merge_contacts(store, acct, jane, bob, actor=actor, now=NOW)
    assert event is not None
    helpers.ingest(store, acct, [replace(pinned, name="Pinned later")])
    by_id = Identifier(CONTACT_ID_KIND, bob)
    assert ("Pinned later", by_id) in names_by_provenance(store, account, jane)

    revert_merge(store, acct, event["id"], actor=actor, now=NOW)
    assert names_by_provenance(store, account, bob) == {
        ("Start", Identifier("identity", "bob")),
        ("Pinned", by_id),
        ("Pinned later", by_id),
    }
    assert names_by_provenance(store, account, jane) == {("Start", Identifier("identity", "jane"))}
