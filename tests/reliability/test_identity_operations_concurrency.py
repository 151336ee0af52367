"""Ingest during merges and reverts, on a real server: nothing lost, one owner per identifier.

Issue 23: "Concurrent ingest for the contacts involved is safe: an
operation takes the same locks as ingest, and an event that arrives during
it lands on the contact that owns its identifier afterwards." Twenty
clients keep sending events naming both people's identifiers while one
contact is merged into the other and the merge reverted, twice over.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from typing import Any

import httpx

from eventyard.core.model import NewAccount
from tests.support import activities_by_id, admin, find_contact

CLIENTS = 20
BATCHES = 4
PER_BATCH = 6


def test_twenty_concurrent_clients_during_merges_and_reverts_lose_nothing(
    http: httpx.Client, account: NewAccount
) -> None:
    token = uuid.uuid4().hex[:8]
    jane, bob, cookie = f"jane-{token}", f"bob-{token}", f"cookie-{token}"
    key = (account.segment_write_key, "")
    first = [
        {"type": "track", "userId": jane, "event": "Start", "messageId": f"s-{token}-1"},
        {
            "type": "track",
            "userId": bob,
            "anonymousId": cookie,
            "event": "Start",
            "messageId": f"s-{token}-2",
        },
    ]
    assert http.post("/v1/batch", json={"batch": first}, auth=key).status_code == 200
    jane_id = _owner(http, account, f"identity:{jane}")
    bob_id = _owner(http, account, f"identity:{bob}")

    # Each event names one identifier: Jane's user id, Bob's user id or Bob's cookie.
    names: list[dict[str, str]] = [{"userId": jane}, {"userId": bob}, {"anonymousId": cookie}]
    sent: Counter[str] = Counter()
    failures: list[str] = []
    lock = threading.Lock()
    base = str(http.base_url)

    def client(number: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as own:
            for batch in range(BATCHES):
                messages = []
                for i in range(PER_BATCH):
                    who = names[(number + batch + i) % len(names)]
                    messages.append(
                        {"type": "track", "event": "Tick", "messageId": uuid.uuid4().hex, **who}
                    )
                r = own.post("/v1/batch", json={"batch": messages}, auth=key)
                with lock:
                    if r.status_code != 200:
                        failures.append(r.text)
                    else:
                        sent.update(m.get("userId") or m["anonymousId"] for m in messages)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    operations = []
    for _ in range(2):
        r = http.post(
            f"/api/v1/contacts/{jane_id}/merge", json={"contact_id": bob_id}, headers=admin(account)
        )
        assert r.status_code == 200, r.text
        event_id = r.json()["identity_event"]["id"]
        r = http.post(f"/api/v1/identity-events/{event_id}/revert", headers=admin(account))
        assert r.status_code == 200, r.text
        operations.append(event_id)
    for thread in threads:
        thread.join()
    assert not failures, failures[:3]

    # Every identifier has one owner, and it is the contact that held it before.
    assert _owner(http, account, f"identity:{jane}") == jane_id
    assert _owner(http, account, f"identity:{bob}") == bob_id
    assert _owner(http, account, f"anonid:{cookie}") == bob_id
    # Nothing lost: every event acknowledged is stored once, on the contact that owns
    # the identifier it named.
    stored: dict[str, list[Any]] = {
        jane_id: activities_by_id(http, account, jane_id, one_page=True),
        bob_id: activities_by_id(http, account, bob_id, one_page=True),
    }
    by_identifier: Counter[str] = Counter()
    for contact_id, activities in stored.items():
        owned = {
            i["value"]
            for i in http.get(f"/api/v1/contacts/{contact_id}", headers=admin(account)).json()[
                "identifiers"
            ]
        }
        for activity in activities:
            assert activity["resolved_by"]["value"] in owned, (contact_id, activity)
            if activity["name"] == "Tick":
                by_identifier[activity["resolved_by"]["value"]] += 1
    assert by_identifier == sent
    assert sum(sent.values()) == CLIENTS * BATCHES * PER_BATCH
    assert len(operations) == 2


def _owner(http: httpx.Client, account: NewAccount, identifier: str) -> str:
    found = find_contact(http, account, identifier)
    assert found is not None, identifier
    return str(found["id"])
