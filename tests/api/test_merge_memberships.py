"""A merged contact's lists and groups move to the contact that absorbs it.

DESIGN: a merge folds the anonymous contact into the known one; what the
anonymous contact belonged to is the person's too. A Segment ``group`` call
made before sign-in, or a list it joined, stays with the person after
``alias`` (Segment: "alias ... merge two user identities").
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from eventyard.core.model import NewAccount
from eventyard.storage.database import Database
from tests.support import admin, find_contact


def batch(http: httpx.Client, account: NewAccount, *calls: dict[str, Any]) -> None:
    r = http.post("/v1/batch", json={"batch": list(calls)}, auth=(account.segment_write_key, ""))
    assert r.status_code == 200, r.text
    assert "X-Eventyard-Rejected-Messages" not in r.headers


def test_lists_and_groups_follow_the_person_through_a_merge(
    http: httpx.Client, account: NewAccount, store: Database
) -> None:
    anon, user = f"a-{uuid.uuid4().hex[:8]}", f"u-{uuid.uuid4().hex[:8]}"
    batch(
        http,
        account,
        {"type": "group", "anonymousId": anon, "groupId": "acme", "traits": {"plan": "free"}},
        {"type": "group", "anonymousId": anon, "groupId": "beta", "traits": {"seats": 3}},
    )
    batch(
        http,
        account,
        {"type": "group", "userId": user, "groupId": "acme", "traits": {"plan": "pro"}},
    )
    anonymous = find_contact(http, account, f"anonid:{anon}")
    known = find_contact(http, account, f"identity:{user}")
    assert anonymous is not None
    assert known is not None
    now = datetime.now(UTC)
    with store.unit_of_work() as uow:
        both = uow.lists.create(account.account.id, f"both-{anon}", now)
        only_anon = uow.lists.create(account.account.id, f"anon-{anon}", now)
        assert both is not None
        assert only_anon is not None
        uow.lists.add_members(account.account.id, both.id, [anonymous["id"], known["id"]], now)
        uow.lists.add_members(account.account.id, only_anon.id, [anonymous["id"]], now)
        uow.commit()

    batch(http, account, {"type": "alias", "previousId": anon, "userId": user})

    r = http.get(f"/api/v1/contacts/{known['id']}", headers=admin(account))
    groups = {g["group_id"]: g["traits"] for g in r.json()["groups"]}
    # The known contact's own traits win; what it lacked comes from the merged one.
    assert groups == {"acme": {"plan": "pro"}, "beta": {"seats": 3}}
    for contact_list in (both, only_anon):
        r = http.get(f"/api/v1/lists/{contact_list.id}/contacts", headers=admin(account))
        assert r.status_code == 200, r.text
        assert [c["id"] for c in r.json()["contacts"]] == [known["id"]]
