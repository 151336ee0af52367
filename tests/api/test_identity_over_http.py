"""Identity resolution cases seen over HTTP that planning alone cannot show."""

from __future__ import annotations

import httpx

from eventyard.core.model import NewAccount
from tests.support import netcore_event


def test_anonymous_visitor_merged_into_contact_created_in_same_batch(
    http: httpx.Client, account: NewAccount
) -> None:
    """Netcore: "If an anonymous profile is found, it is converted into a known user."

    A visitor known only by anonid, then one batch that first creates jane and
    then names jane with the visitor's anonid: the visitor folds into jane,
    and the batch is stored (it once failed with 503 on every retry).
    """
    key = {"api-key": account.netcore_api_key}
    admin = {"Authorization": f"Bearer {account.admin_token}"}
    first = http.post(
        "/v1/activity/upload",
        json=[netcore_event(identity=None, anonid="cookie-1", activity_name="Visit")],
        headers=key,
    )
    assert first.status_code == 200, first.text
    visitor = http.get("/api/v1/contacts", params={"identifier": "anonid:cookie-1"}, headers=admin)
    visitor_id = visitor.json()["contacts"][0]["id"]

    batch = [
        netcore_event(identity=None, email="jane@x.io", activity_name="Signup"),
        netcore_event(identity=None, email="jane@x.io", anonid="cookie-1", activity_name="Buy"),
    ]
    r = http.post("/v1/activity/upload", json=batch, headers=key)
    assert r.status_code == 200, r.text

    jane = http.get("/api/v1/contacts", params={"identifier": "email:jane@x.io"}, headers=admin)
    (contact,) = jane.json()["contacts"]
    assert {(i["kind"], i["value"]) for i in contact["identifiers"]} == {
        ("email", "jane@x.io"),
        ("anonid", "cookie-1"),
    }
    names = [
        a["name"]
        for a in http.get(f"/api/v1/contacts/{contact['id']}/activities", headers=admin).json()[
            "activities"
        ]
    ]
    assert sorted(names) == ["Buy", "Signup", "Visit"]
    # The visitor's old id now leads to jane.
    old = http.get(f"/api/v1/contacts/{visitor_id}", headers=admin)
    assert old.json()["id"] == contact["id"]
    history = http.get(f"/api/v1/contacts/{contact['id']}/identity-events", headers=admin).json()
    assert [(e["kind"], e["other_contact_ids"]) for e in history["identity_events"]] == [
        ("merged", [visitor_id])
    ]
