"""Identity resolution through the ingest service, checked in the database.

DESIGN.md: "an activity names one or more identifiers. Find the contacts they
point to; none -> create one; an anonymous contact plus a known identifier ->
convert it to known (Netcore rule); two different known contacts -> follow the
account's merge policy and record every merge in an audit table. Batched: one
round trip per batch, not per event."
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from eventyard.core.errors import NotFound
from eventyard.core.identifiers import Identifier, normalize_identifier
from eventyard.core.model import Account, NewAccount, NewActivity
from eventyard.dialects.netcore.translate import translate_events
from eventyard.services.contacts import (
    find_contacts,
    get_contact,
    identity_history,
    list_activities,
)
from eventyard.storage.database import Database
from eventyard.storage.tables import activities, contact_identifiers, contacts
from tests.integration import helpers
from tests.integration.helpers import (
    NOW,
    activity,
    activity_owners,
    audit_kinds,
    contact_rows,
    count,
    counting_statements,
    new_account,
)
from tests.support import netcore_event


def ingest(store: Database, account: Account, *batch: NewActivity) -> list[str]:
    """Ingest one batch; the contact id of each activity, in order."""
    return helpers.contact_ids(helpers.ingest(store, account, batch))


def timeline(store: Database, account: Account, contact_id: str) -> list[str]:
    """Names of the contact's activities as the read service returns them."""
    page = list_activities(store, account, contact_id, limit=1000, cursor=None)
    assert page.next_cursor is None
    return sorted(a.name for a in page.activities)


def identifiers_of(store: Database, account: Account, contact_id: str) -> set[tuple[str, str]]:
    return {(i.kind, i.value) for i in get_contact(store, account, contact_id).identifiers}


class TestNewContacts:
    def test_identifiers_nobody_owns_create_one_known_contact(
        self, store: Database, account: NewAccount
    ) -> None:
        """Netcore: "If no profile exists, a new user profile is created
        automatically before the activity is recorded." All identifiers of the
        event name that one contact, and a later event naming any of them finds it."""
        acct = account.account
        first = ingest(
            store, acct, activity("Add To Cart", identity="cust-1", email="a@x.com", mobile="98765")
        )
        later = ingest(store, acct, activity("Checkout", mobile="98765"))

        assert later == first
        contact = get_contact(store, acct, first[0])
        assert contact.status == "known"
        assert identifiers_of(store, acct, contact.id) == {
            ("identity", "cust-1"),
            ("email", "a@x.com"),
            ("mobile", "98765"),
        }
        for kind, value in [("identity", "cust-1"), ("email", "a@x.com"), ("mobile", "98765")]:
            assert [c.id for c in find_contacts(store, acct, Identifier(kind, value))] == [
                contact.id
            ]
        assert [r.id for r in contact_rows(store, acct)] == [contact.id]
        assert timeline(store, acct, contact.id) == ["Add To Cart", "Checkout"]

    def test_an_anonid_alone_creates_an_anonymous_contact(
        self, store: Database, account: NewAccount
    ) -> None:
        """Netcore: anonid is the "Anonymous identifier used when the user is not
        logged in (for example, cookie ID, device ID)"."""
        acct = account.account
        [contact_id] = ingest(store, acct, activity("Page View", anonid="cookie-1"))

        contact = get_contact(store, acct, contact_id)
        assert contact.status == "anonymous"
        assert identifiers_of(store, acct, contact_id) == {("anonid", "cookie-1")}

    def test_one_batch_naming_one_new_identifier_many_times_creates_one_contact(
        self, store: Database, account: NewAccount
    ) -> None:
        acct = account.account
        ids = ingest(
            store,
            acct,
            activity("A", email="one@x.com"),
            activity("B", email="two@x.com"),
            activity("C", email="one@x.com", mobile="5551234"),
            activity("D", mobile="5551234"),
        )

        assert ids[0] == ids[2] == ids[3] != ids[1]
        assert len(contact_rows(store, acct)) == 2
        assert timeline(store, acct, ids[0]) == ["A", "C", "D"]
        assert timeline(store, acct, ids[1]) == ["B"]

    def test_emails_and_mobiles_are_stored_normalised(
        self, store: Database, account: NewAccount
    ) -> None:
        """DESIGN.md: "Emails lower-cased, phones normalised." Two spellings of
        the same address or number name the same contact."""
        acct = account.account
        translation, errors = translate_events(
            [
                netcore_event(
                    identity=None, email="  Jane.Doe@Example.COM ", mobile="+91 352 525-2568"
                ),
                netcore_event(identity=None, email="JANE.DOE@example.com"),
                netcore_event(identity=None, mobile="+91 (352) 525.2568"),
            ]
        )
        assert errors == []
        ids = ingest(store, acct, *translation.activities)

        assert len(set(ids)) == 1
        with store.engine.connect() as conn:
            stored = {
                tuple(row)
                for row in conn.execute(
                    select(contact_identifiers.c.kind, contact_identifiers.c.value).where(
                        contact_identifiers.c.account_id == acct.id
                    )
                )
            }
        assert stored == {("email", "jane.doe@example.com"), ("mobile", "+913525252568")}
        found = find_contacts(store, acct, normalize_identifier("email", " JANE.doe@EXAMPLE.com"))
        assert [c.id for c in found] == ids[:1]


class TestAnonymousContacts:
    def test_an_anonymous_contact_becomes_known_keeping_its_id(
        self, store: Database, account: NewAccount
    ) -> None:
        """Netcore: "the system checks for a matching anonymous profile. If an
        anonymous profile is found, it is converted into a known user.\""""
        acct = account.account
        [anonymous] = ingest(store, acct, activity("Page View", anonid="cookie-7"))

        [known] = ingest(store, acct, activity("Login", anonid="cookie-7", email="Ann@x.com"))

        assert known == anonymous
        contact = get_contact(store, acct, known)
        assert contact.status == "known"
        assert identifiers_of(store, acct, known) == {
            ("anonid", "cookie-7"),
            ("email", "ann@x.com"),
        }
        assert [r.id for r in contact_rows(store, acct)] == [known]
        assert timeline(store, acct, known) == ["Login", "Page View"]
        [converted] = identity_history(store, acct, known)
        assert converted["kind"] == "converted"
        assert converted["contact_id"] == known
        assert {"kind": "email", "value": "ann@x.com"} in converted["identifiers"]

    def test_an_anonymous_contact_met_with_a_known_one_is_merged_into_it(
        self, store: Database, account: NewAccount
    ) -> None:
        """The anonymous contact's activities and identifiers move to the known
        contact; its old id still leads to the survivor; the merge is audited."""
        acct = account.account
        anonymous, same = ingest(
            store,
            acct,
            activity("Page View", anonid="cookie-9"),
            activity("Add To Cart", anonid="cookie-9"),
        )
        assert same == anonymous
        [known] = ingest(store, acct, activity("Signup", email="k@x.com"))

        [target] = ingest(store, acct, activity("Purchase", anonid="cookie-9", email="k@x.com"))

        assert target == known != anonymous
        everything = ["Add To Cart", "Page View", "Purchase", "Signup"]
        assert timeline(store, acct, known) == everything
        assert set(activity_owners(store, acct)) == {known}
        assert identifiers_of(store, acct, known) == {("anonid", "cookie-9"), ("email", "k@x.com")}
        # Reading the old id returns the surviving contact and its timeline.
        assert get_contact(store, acct, anonymous).id == known
        assert timeline(store, acct, anonymous) == everything
        assert [c.id for c in find_contacts(store, acct, Identifier("anonid", "cookie-9"))] == [
            known
        ]
        assert {r.id: r.merged_into for r in contact_rows(store, acct)} == {
            anonymous: known,
            known: None,
        }
        merges = [e for e in identity_history(store, acct, known) if e["kind"] == "merged"]
        assert [e["other_contact_ids"] for e in merges] == [[anonymous]]
        # The anonid now names the known contact for good.
        assert ingest(store, acct, activity("Page View", anonid="cookie-9")) == [known]

    def test_a_batch_resolves_like_its_events_sent_in_order(
        self, store: Database, account: NewAccount
    ) -> None:
        """Anonymous visit, sign-up and the event linking them in one batch end
        on one contact, with no left-over anonymous contact in the database."""
        acct = account.account
        ids = ingest(
            store,
            acct,
            activity("Page View", anonid="cookie-3"),
            activity("Signup", email="b@x.com"),
            activity("Login", anonid="cookie-3", email="b@x.com"),
        )

        assert len(set(ids)) == 1
        [row] = contact_rows(store, acct)
        assert (row.id, row.status, row.merged_into) == (ids[0], "known", None)
        assert timeline(store, acct, ids[0]) == ["Login", "Page View", "Signup"]


class TestConflictsBetweenKnownContacts:
    @pytest.mark.parametrize(
        ("first", "second", "winner"),
        [
            (("identity", "cust-x"), ("email", "y@x.com"), 0),
            (("mobile", "5550001"), ("email", "y@x.com"), 1),
        ],
    )
    def test_the_default_primary_kinds_pick_the_contact(
        self,
        store: Database,
        account: NewAccount,
        first: tuple[str, str],
        second: tuple[str, str],
        winner: int,
    ) -> None:
        """Two known contacts are never merged: the activity goes to the owner
        of the highest-ranked kind (default identity, email, mobile) and the
        conflict is recorded."""
        acct = account.account
        [x] = ingest(store, acct, activity("X", **dict([first])))
        [y] = ingest(store, acct, activity("Y", **dict([second])))

        [target] = ingest(store, acct, activity("Purchase", **dict([first, second])))

        chosen, other = (x, y) if winner == 0 else (y, x)
        assert target == chosen
        assert "Purchase" in timeline(store, acct, chosen)
        assert "Purchase" not in timeline(store, acct, other)
        self.assert_nothing_merged(store, acct, x, y, first, second)
        [conflict] = identity_history(store, acct, chosen)
        assert conflict["kind"] == "conflict"
        assert conflict["other_contact_ids"] == [other]

    def test_the_account_setting_primary_kinds_picks_the_contact(
        self, store: Database, account: NewAccount
    ) -> None:
        """Settings hold "which identifier is the primary key" (DESIGN.md): with
        ``primary_kinds`` = email first, the e-mail's owner gets the activity."""
        acct = new_account(store, "email-first", {"primary_kinds": ["email", "identity"]})
        [x] = ingest(store, acct, activity("X", identity="cust-x"))
        [y] = ingest(store, acct, activity("Y", email="y@x.com"))

        [target] = ingest(store, acct, activity("Purchase", identity="cust-x", email="y@x.com"))

        assert target == y
        assert timeline(store, acct, y) == ["Purchase", "Y"]
        assert timeline(store, acct, x) == ["X"]
        self.assert_nothing_merged(store, acct, x, y, ("identity", "cust-x"), ("email", "y@x.com"))
        [conflict] = identity_history(store, acct, y)
        assert (conflict["kind"], conflict["other_contact_ids"]) == ("conflict", [x])

    @staticmethod
    def assert_nothing_merged(
        store: Database,
        acct: Account,
        x: str,
        y: str,
        x_ident: tuple[str, str],
        y_ident: tuple[str, str],
    ) -> None:
        rows = contact_rows(store, acct)
        assert {(r.id, r.status, r.merged_into) for r in rows} == {
            (x, "known", None),
            (y, "known", None),
        }
        assert identifiers_of(store, acct, x) == {x_ident}
        assert identifiers_of(store, acct, y) == {y_ident}
        assert audit_kinds(store, acct) == ["conflict"]


def test_tenants_never_see_each_others_contacts(store: Database, account: NewAccount) -> None:
    """DESIGN.md: "Tenants never see each other's data." The same e-mail in two
    accounts is two contacts, and one account cannot read the other's."""
    mine = account.account
    theirs = new_account(store, "other")
    [my_contact] = ingest(store, mine, activity("Mine", email="same@x.com"))
    [their_contact] = ingest(store, theirs, activity("Theirs", email="same@x.com"))

    assert my_contact != their_contact
    with pytest.raises(NotFound):
        get_contact(store, mine, their_contact)
    with pytest.raises(NotFound):
        list_activities(store, mine, their_contact, limit=10, cursor=None)
    assert timeline(store, mine, my_contact) == ["Mine"]


def test_activities_are_stored_as_sent(store: Database, account: NewAccount) -> None:
    """Times come back as the same instant in UTC, JSON properties round-trip
    (escapes included, whichever bulk path the backend uses),
    and an activity older than 24 h is not journey-eligible (Netcore: "If
    timestamp passed ... is more than 24hrs old, it wont trigger a journey")."""
    acct = account.account
    ist = timezone(timedelta(hours=5, minutes=30))
    recent = NewActivity(
        identifiers=(Identifier("identity", "cust-r"),),
        name="Add To Cart",
        occurred_at=datetime(2026, 3, 2, 15, 0, tzinfo=ist),  # 09:30 UTC
        source="app",
        dialect="netcore",
        properties={
            "prid": 2,
            "name": "Ünïcode ✓",
            "note": 'tab\there, new\nline, back\\slash, "quotes"',
            "items": [{"qty": 1.5, "tags": []}],
            "gift": None,
        },
        asset_id="asset-1",
    )
    old = NewActivity(
        identifiers=(Identifier("identity", "cust-r"),),
        name="Old Purchase",
        occurred_at=NOW - timedelta(hours=24, seconds=1),
        source="web",
        dialect="netcore",
        properties={},
    )
    [contact_id, _] = ingest(store, acct, recent, old)

    page = list_activities(store, acct, contact_id, limit=10, cursor=None)
    by_name = {a.name: a for a in page.activities}
    stored = by_name["Add To Cart"]
    assert stored.occurred_at == datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    assert stored.occurred_at.utcoffset() == timedelta(0)
    assert stored.received_at == NOW
    assert (stored.source, stored.dialect, stored.asset_id) == ("app", "netcore", "asset-1")
    assert stored.properties == recent.properties
    assert stored.journey_eligible is True
    assert by_name["Old Purchase"].journey_eligible is False
    assert by_name["Old Purchase"].asset_id is None
    assert [a.name for a in page.activities] == ["Add To Cart", "Old Purchase"]  # newest first


class TestBatching:
    """DESIGN.md: "Hot paths are set-based: a batch of 1000 activities is a
    handful of statements (COPY / multi-row insert), never 1000 round trips."
    """

    #: Measured 7 on SQLite (BEGIN IMMEDIATE, SAVEPOINT, owner lookup, insert
    #: contacts, insert identifiers, RELEASE, insert activities) and 6 on
    #: PostgreSQL (BEGIN is implicit; the activities go in with COPY).
    MAX_STATEMENTS = 15

    def run_batch(self, store: Database, acct: Account, events: int, prefix: str) -> list[str]:
        """Ingest ``events`` events for 0.6 x ``events`` people, 10% of them new.

        Checks that every event went to the right contact and returns the
        statements the ingest sent.
        """
        distinct = events * 6 // 10
        new = max(1, distinct // 10)
        people = [f"{prefix}-{i}@x.com" for i in range(distinct)]
        existing = ingest(
            store, acct, *(activity("Signup", email=p, identity=p) for p in people[new:])
        )
        batch = [
            activity(
                f"{prefix} event {i}", email=people[i % distinct], identity=people[i % distinct]
            )
            for i in range(events)
        ]

        with counting_statements(store.engine) as statements:
            ids = ingest(store, acct, *batch)

        contact_of: dict[str, set[str]] = defaultdict(set)
        for i, contact_id in enumerate(ids):
            contact_of[people[i % distinct]].add(contact_id)
        for person, contact_id in zip(people[new:], existing, strict=True):
            assert contact_of[person] == {contact_id}
        created = {contact_id for p in people[:new] for contact_id in contact_of[p]}
        assert len(created) == new
        assert not created & set(existing)
        with store.engine.connect() as conn:
            stored = conn.execute(
                select(activities.c.contact_id).where(
                    activities.c.account_id == acct.id,
                    activities.c.name.like(f"{prefix} event %"),
                )
            ).scalars()
            assert sorted(stored) == sorted(ids)
        return statements

    def test_a_batch_costs_a_fixed_handful_of_statements(
        self, store: Database, account: NewAccount
    ) -> None:
        acct = account.account
        small = self.run_batch(store, acct, 10, "small")
        large = self.run_batch(store, acct, 1000, "large")

        detail = "\n".join(s.split("\n")[0][:120] for s in large)
        assert len(large) <= self.MAX_STATEMENTS, detail
        assert len(large) == len(small), detail
        assert count(store, contacts, acct) == 6 + 600
