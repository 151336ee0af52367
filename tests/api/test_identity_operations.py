"""Identity operations over HTTP on a real server: merge (with a dry run), revert, split.

Issue 23: "merge then revert restores both contacts exactly (identifiers,
activity ids per contact, memberships, attributes), also when new
activities arrived for the merged identifiers in between; dry run changes
nothing; split moves exactly the named identifiers' activities; revert of a
revert, merge of a contact into itself and cross-account ids are refused".
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from eventyard.core.model import NewAccount
from eventyard.dialects.registry import create_account
from eventyard.storage.database import Database
from tests.support import activities_by_id, admin, find_contact, identity_events

SEGMENT = "/v1/batch"


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def segment(http: httpx.Client, account: NewAccount, *messages: dict[str, Any]) -> None:
    r = http.post(SEGMENT, json={"batch": list(messages)}, auth=(account.segment_write_key, ""))
    assert r.status_code == 200, r.text


def contact_id_of(http: httpx.Client, account: NewAccount, identifier: str) -> str:
    found = find_contact(http, account, identifier)
    assert found is not None, identifier
    return str(found["id"])


def new_list(http: httpx.Client, account: NewAccount) -> int:
    r = http.post("/api/v1/lists", json={"name": uid("list")}, headers=admin(account))
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def join_list(store: Database, account: NewAccount, list_id: int, *contact_ids: str) -> None:
    """List membership as a contact import makes it (no HTTP route adds one member)."""
    with store.unit_of_work() as uow:
        uow.lists.add_members(account.account.id, list_id, contact_ids, account.account.created_at)
        uow.commit()


def dump(
    http: httpx.Client, account: NewAccount, contact_id: str, lists: list[int]
) -> dict[str, Any]:
    """Everything the read API shows of a contact, in a comparable form."""
    r = http.get(f"/api/v1/contacts/{contact_id}", headers=admin(account))
    assert r.status_code == 200, r.text
    contact = r.json()
    members = []
    for list_id in lists:
        page = http.get(
            f"/api/v1/lists/{list_id}/contacts", params={"limit": 1000}, headers=admin(account)
        ).json()
        if contact["id"] in [c["id"] for c in page["contacts"]]:
            members.append(list_id)
    activities = activities_by_id(http, account, contact["id"], one_page=True)
    return {
        "id": contact["id"],
        "status": contact["status"],
        "identifiers": sorted((i["kind"], i["value"]) for i in contact["identifiers"]),
        "attributes": contact["attributes"],
        "groups": {g["group_id"]: g["traits"] for g in contact["groups"]},
        "lists": members,
        "activities": sorted(a["id"] for a in activities),
        "provenance": sorted(
            (a["id"], a["resolved_by"]["kind"], a["resolved_by"]["value"]) for a in activities
        ),
    }


def merge(
    http: httpx.Client,
    account: NewAccount,
    survivor: str,
    other: str,
    *,
    dry_run: bool = False,
    **extra: Any,
) -> httpx.Response:
    return http.post(
        f"/api/v1/contacts/{survivor}/merge",
        params={"dry_run": "1"} if dry_run else None,
        json={"contact_id": other, **extra},
        headers=admin(account),
    )


def revert(http: httpx.Client, account: NewAccount, event_id: str) -> httpx.Response:
    return http.post(f"/api/v1/identity-events/{event_id}/revert", headers=admin(account))


class People:
    """Jane and Bob, two known contacts with activities, attributes, groups and lists."""

    def __init__(self, http: httpx.Client, account: NewAccount, store: Database) -> None:
        self.jane, self.bob = uid("jane"), uid("bob")
        segment(
            http,
            account,
            {
                "type": "identify",
                "userId": self.jane,
                "traits": {"plan": "pro", "city": "Paris"},
            },
            {"type": "track", "userId": self.jane, "event": "Viewed"},
            {"type": "track", "userId": self.jane, "event": "Bought"},
            {"type": "group", "userId": self.jane, "groupId": "g-jane", "traits": {"n": 1}},
            {"type": "group", "userId": self.jane, "groupId": "g-both", "traits": {"tier": "gold"}},
            {
                "type": "identify",
                "userId": self.bob,
                "anonymousId": f"cookie-{self.bob}",
                "traits": {"plan": "free", "age": 40},
            },
            {"type": "track", "userId": self.bob, "event": "Viewed"},
            {"type": "track", "anonymousId": f"cookie-{self.bob}", "event": "Scrolled"},
            {"type": "group", "userId": self.bob, "groupId": "g-bob", "traits": {"n": 2}},
            {
                "type": "group",
                "userId": self.bob,
                "groupId": "g-both",
                "traits": {"tier": "silver", "size": 5},
            },
        )
        self.jane_id = contact_id_of(http, account, f"identity:{self.jane}")
        self.bob_id = contact_id_of(http, account, f"identity:{self.bob}")
        self.lists = [new_list(http, account), new_list(http, account)]
        join_list(store, account, self.lists[0], self.jane_id, self.bob_id)
        join_list(store, account, self.lists[1], self.bob_id)


@pytest.fixture
def people(http: httpx.Client, account: NewAccount, store: Database) -> People:
    return People(http, account, store)


class TestMerge:
    def test_dry_run_answers_what_would_move_and_changes_nothing(
        self, http: httpx.Client, account: NewAccount, people: People
    ) -> None:
        """Issue 23: "`?dry_run=1` answers with what would move (counts of identifiers,
        activities, memberships, the attributes that would change) and changes nothing"."""
        before = [dump(http, account, c, people.lists) for c in (people.jane_id, people.bob_id)]
        r = merge(http, account, people.jane_id, people.bob_id, dry_run=True)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["dry_run"] is True
        assert body["identity_event"] is None
        assert body["moved"] == {
            "contact_id": people.jane_id,
            "merged_contact_id": people.bob_id,
            "identifiers": 2,
            "activities": 2,
            "lists": 2,
            "groups": 2,
            # Jane's values win: only the key she lacks changes.
            "attributes": {"age": {"from": None, "to": 40}},
        }
        preferring = merge(
            http, account, people.jane_id, people.bob_id, dry_run=True, prefer="other"
        )
        assert preferring.json()["moved"]["attributes"] == {
            "age": {"from": None, "to": 40},
            "plan": {"from": "pro", "to": "free"},
        }
        after = [dump(http, account, c, people.lists) for c in (people.jane_id, people.bob_id)]
        assert after == before
        assert identity_events(http, account, people.jane_id) == []

    def test_merge_moves_everything_and_audits_the_actor(
        self, http: httpx.Client, account: NewAccount, people: People
    ) -> None:
        jane = dump(http, account, people.jane_id, people.lists)
        bob = dump(http, account, people.bob_id, people.lists)
        r = merge(http, account, people.jane_id, people.bob_id, prefer="other")
        assert r.status_code == 200, r.text
        event = r.json()["identity_event"]
        assert event["kind"] == "merged"
        assert event["other_contact_ids"] == [people.bob_id]
        assert event["details"]["actor"]["via"] == "api"
        assert event["revertible"] is True
        assert "snapshot" not in event["details"]

        merged = dump(http, account, people.jane_id, people.lists)
        assert merged["identifiers"] == sorted(jane["identifiers"] + bob["identifiers"])
        assert merged["activities"] == sorted(jane["activities"] + bob["activities"])
        assert merged["lists"] == people.lists
        assert merged["attributes"] == {"plan": "free", "city": "Paris", "age": 40}
        # In a group both belong to, the survivor's traits win.
        assert merged["groups"] == {
            "g-jane": {"n": 1},
            "g-bob": {"n": 2},
            "g-both": {"tier": "gold", "size": 5},
        }
        # Bob's id now leads to Jane, and his identifiers too.
        assert dump(http, account, people.bob_id, people.lists)["id"] == people.jane_id
        assert contact_id_of(http, account, f"identity:{people.bob}") == people.jane_id
        history = identity_events(http, account, people.jane_id)
        assert [e["kind"] for e in history] == ["merged"]

    def test_merge_into_itself_is_422(
        self, http: httpx.Client, account: NewAccount, people: People
    ) -> None:
        r = merge(http, account, people.jane_id, people.jane_id)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "merge_into_itself"
        assert r.json()["error"]["errors"][0]["field"] == "contact_id"
        # Also through a contact already merged into it.
        assert merge(http, account, people.jane_id, people.bob_id).status_code == 200
        again = merge(http, account, people.bob_id, people.jane_id)
        assert again.status_code == 422, again.text

    def test_ids_of_another_account_are_404_and_change_nothing(
        self, http: httpx.Client, account: NewAccount, store: Database, people: People
    ) -> None:
        """DESIGN.md: "Tenants never see each other's data"."""
        other = create_account(store, uid("other"))
        segment(http, other, {"type": "track", "userId": "someone", "event": "E"})
        theirs = contact_id_of(http, other, "identity:someone")
        before = dump(http, account, people.jane_id, people.lists)
        assert merge(http, account, people.jane_id, theirs).status_code == 404
        assert merge(http, account, theirs, people.jane_id).status_code == 404
        assert merge(http, other, theirs, people.jane_id).status_code == 404
        r = http.post(
            f"/api/v1/contacts/{people.jane_id}/split",
            json={"identifiers": [f"identity:{people.jane}"]},
            headers=admin(other),
        )
        assert r.status_code == 404
        event = merge(http, account, people.jane_id, people.bob_id).json()["identity_event"]
        assert revert(http, other, event["id"]).status_code == 404
        assert revert(http, account, event["id"]).status_code == 200
        assert dump(http, account, people.jane_id, people.lists) == before

    def test_a_read_token_may_not_merge_revert_or_split(
        self, http: httpx.Client, account: NewAccount, people: People
    ) -> None:
        r = http.post("/api/v1/credentials", json={"kind": "read"}, headers=admin(account))
        reader = {"Authorization": f"Bearer {r.json()['secret']}"}
        calls = [
            (f"/api/v1/contacts/{people.jane_id}/merge", {"contact_id": people.bob_id}),
            (f"/api/v1/contacts/{people.jane_id}/split", {"identifiers": ["email:x@y.io"]}),
            ("/api/v1/identity-events/0HB5K0ZJ3VQ0X1M5Q8T4N2P6/revert", None),
        ]
        for path, body in calls:
            refused = http.post(path, json=body, headers=reader)
            assert refused.status_code == 403, (path, refused.text)
        assert dump(http, account, people.bob_id, people.lists)["id"] == people.bob_id


class TestRevert:
    def test_merge_then_revert_restores_both_contacts_exactly(
        self, http: httpx.Client, account: NewAccount, people: People
    ) -> None:
        """Issue 23: "the merged contact comes back with its original id, the identifiers it
        held, the activities that were resolved through those identifiers (including ones
        that arrived after the merge), its memberships and its attributes"."""
        jane = dump(http, account, people.jane_id, people.lists)
        bob = dump(http, account, people.bob_id, people.lists)
        r = merge(http, account, people.jane_id, people.bob_id, prefer="other")
        event = r.json()["identity_event"]
        # After the merge, new activities name Bob's identifiers, and Jane's.
        segment(
            http,
            account,
            {"type": "track", "userId": people.bob, "event": "Later"},
            {"type": "track", "anonymousId": f"cookie-{people.bob}", "event": "Later"},
            {"type": "track", "userId": people.jane, "event": "Later"},
        )
        during = dump(http, account, people.jane_id, people.lists)
        assert len(during["activities"]) == len(jane["activities"]) + len(bob["activities"]) + 3

        r = revert(http, account, event["id"])
        assert r.status_code == 200, r.text
        reverted = r.json()["identity_event"]
        assert reverted["kind"] == "reverted"
        assert reverted["details"]["reverts"] == event["id"]
        assert reverted["other_contact_ids"] == [people.bob_id]

        jane_after = dump(http, account, people.jane_id, people.lists)
        bob_after = dump(http, account, people.bob_id, people.lists)
        later_bob = set(bob_after["activities"]) - set(bob["activities"])
        later_jane = set(jane_after["activities"]) - set(jane["activities"])
        assert len(later_bob) == 2
        assert len(later_jane) == 1
        assert {**bob_after, "activities": bob["activities"], "provenance": []} == {
            **bob,
            "provenance": [],
        }
        assert {**jane_after, "activities": jane["activities"], "provenance": []} == {
            **jane,
            "provenance": [],
        }
        assert set(bob["activities"]) <= set(bob_after["activities"])
        assert set(jane["activities"]) <= set(jane_after["activities"])
        # The merge is marked reverted in the history.
        history = {e["id"]: e for e in identity_events(http, account, people.jane_id)}
        assert history[event["id"]]["revertible"] is False
        assert history[event["id"]]["details"]["reverted_by"] == reverted["id"]

    def test_revert_keeps_attributes_written_after_the_merge(
        self, http: httpx.Client, account: NewAccount, people: People
    ) -> None:
        """The survivor's attributes the merge changed go back, unless written again since."""
        event = merge(http, account, people.jane_id, people.bob_id, prefer="other").json()
        segment(http, account, {"type": "identify", "userId": people.jane, "traits": {"age": 41}})
        assert revert(http, account, event["identity_event"]["id"]).status_code == 200
        attributes = dump(http, account, people.jane_id, people.lists)["attributes"]
        assert attributes == {"plan": "pro", "city": "Paris", "age": 41}

    def test_reverting_twice_is_409_and_a_revert_is_not_reverted(
        self, http: httpx.Client, account: NewAccount, people: People
    ) -> None:
        event = merge(http, account, people.jane_id, people.bob_id).json()["identity_event"]
        first = revert(http, account, event["id"])
        assert first.status_code == 200
        again = revert(http, account, event["id"])
        assert again.status_code == 409, again.text
        assert again.json()["error"]["code"] == "already_reverted"
        of_revert = revert(http, account, first.json()["identity_event"]["id"])
        assert of_revert.status_code == 422, of_revert.text
        assert of_revert.json()["error"]["code"] == "not_a_merge"
        assert revert(http, account, "not-an-id").status_code == 404
        assert revert(http, account, "0HB5K0ZJ3VQ0X1M5Q8T4N2P6").status_code == 404

    def test_a_merge_whose_survivor_was_merged_since_waits_for_that_merge_to_be_reverted(
        self, http: httpx.Client, account: NewAccount, people: People
    ) -> None:
        third = uid("third")
        segment(http, account, {"type": "track", "userId": third, "event": "E"})
        third_id = contact_id_of(http, account, f"identity:{third}")
        first = merge(http, account, people.jane_id, people.bob_id).json()["identity_event"]
        later = merge(http, account, third_id, people.jane_id).json()["identity_event"]
        refused = revert(http, account, first["id"])
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "survivor_merged_since"
        assert revert(http, account, later["id"]).status_code == 200
        assert revert(http, account, first["id"]).status_code == 200
        assert contact_id_of(http, account, f"identity:{people.bob}") == people.bob_id
        assert contact_id_of(http, account, f"identity:{people.jane}") == people.jane_id
        assert contact_id_of(http, account, f"identity:{third}") == third_id

    def test_an_automatic_merge_can_be_reverted(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """A visitor known by a cookie meets a known user: identity resolution merges
        the visitor; reverting gives the visitor back with its activities and group."""
        user, cookie = uid("user"), uid("cookie")
        segment(
            http,
            account,
            {"type": "track", "userId": user, "event": "Signup"},
            {"type": "track", "anonymousId": cookie, "event": "Visit"},
            {"type": "track", "anonymousId": cookie, "event": "Visit"},
            {"type": "group", "anonymousId": cookie, "groupId": "g-visitor", "traits": {}},
        )
        user_id = contact_id_of(http, account, f"identity:{user}")
        visitor_id = contact_id_of(http, account, f"anonid:{cookie}")
        user_before = dump(http, account, user_id, [])
        visitor_before = dump(http, account, visitor_id, [])
        segment(
            http, account, {"type": "track", "userId": user, "anonymousId": cookie, "event": "Buy"}
        )
        assert contact_id_of(http, account, f"anonid:{cookie}") == user_id
        [event] = [e for e in identity_events(http, account, user_id) if e["kind"] == "merged"]
        assert event["revertible"] is True
        segment(http, account, {"type": "track", "anonymousId": cookie, "event": "Visit"})

        assert revert(http, account, event["id"]).status_code == 200
        visitor_after = dump(http, account, visitor_id, [])
        user_after = dump(http, account, user_id, [])
        assert visitor_after["identifiers"] == visitor_before["identifiers"]
        assert visitor_after["status"] == "anonymous"
        assert visitor_after["groups"] == {"g-visitor": {}}
        assert set(visitor_before["activities"]) < set(visitor_after["activities"])
        assert len(visitor_after["activities"]) == 3
        # The merging activity named the user: it stays with the user.
        assert user_after["identifiers"] == user_before["identifiers"]
        assert user_after["groups"] == {}
        assert len(user_after["activities"]) == 2


class TestSplit:
    def test_split_moves_exactly_the_named_identifiers_activities(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Issue 23: "moves those identifiers, and the activities resolved through them,
        to a new contact"; nothing else moves."""
        user, cookie = uid("user"), uid("cookie")
        segment(
            http,
            account,
            {"type": "track", "anonymousId": cookie, "event": "Visit"},
            {"type": "track", "anonymousId": cookie, "event": "Visit"},
            {"type": "track", "userId": user, "anonymousId": cookie, "event": "Signup"},
            {"type": "track", "userId": user, "event": "Buy"},
            {"type": "identify", "userId": user, "traits": {"plan": "pro"}},
        )
        contact_id = contact_id_of(http, account, f"identity:{user}")
        before = dump(http, account, contact_id, [])
        by_anonid = {a for a, kind, _ in before["provenance"] if kind == "anonid"}
        assert len(by_anonid) == 2

        r = http.post(
            f"/api/v1/contacts/{contact_id}/split",
            json={"identifiers": [f"anonid:{cookie}"]},
            headers=admin(account),
        )
        assert r.status_code == 201, r.text
        new_id = r.json()["contact_id"]
        assert r.json()["identity_event"]["kind"] == "split"
        assert r.json()["identity_event"]["other_contact_ids"] == [new_id]

        new = dump(http, account, new_id, [])
        kept = dump(http, account, contact_id, [])
        assert new["identifiers"] == [("anonid", cookie)]
        assert new["status"] == "anonymous"
        assert set(new["activities"]) == by_anonid
        assert set(kept["activities"]) == set(before["activities"]) - by_anonid
        assert kept["identifiers"] == [("identity", user)]
        assert kept["attributes"] == {"plan": "pro"}
        assert new["attributes"] == {}
        # The cookie now leads to the new contact.
        assert contact_id_of(http, account, f"anonid:{cookie}") == new_id

    def test_split_refuses_identifiers_the_contact_does_not_hold_or_all_of_them(
        self, http: httpx.Client, account: NewAccount, people: People
    ) -> None:
        path = f"/api/v1/contacts/{people.jane_id}/split"
        r = http.post(path, json={"identifiers": ["email:nobody@x.io"]}, headers=admin(account))
        assert r.status_code == 422, r.text
        assert r.json()["error"]["errors"][0]["field"] == "identifiers[0]"
        r = http.post(
            path, json={"identifiers": [f"identity:{people.jane}"]}, headers=admin(account)
        )
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "split_takes_everything"
        r = http.post(path, json={"identifiers": ["no-colon"]}, headers=admin(account))
        assert r.status_code == 422, r.text
        r = http.post(path, json={"identifiers": []}, headers=admin(account))
        assert r.status_code == 422, r.text
