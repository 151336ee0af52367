"""Dialects meet on one contact model (DESIGN.md: "everything lands in one canonical model")."""

from __future__ import annotations

import httpx

from eventyard.core.model import NewAccount
from tests.support import netcore_event


def test_netcore_and_clevertap_events_for_one_identity_share_a_contact(
    http: httpx.Client, account: NewAccount
) -> None:
    netcore = http.post(
        "/v1/activity/upload",
        json=[netcore_event(identity="cust-77", email="c77@example.com", activity_name="Visit")],
        headers={"api-key": account.netcore_api_key},
    )
    assert netcore.status_code == 200, netcore.text
    clevertap = http.post(
        "/1/upload",
        json={
            "d": [
                {"identity": "cust-77", "type": "event", "evtName": "Charged", "evtData": {"A": 1}},
                {"identity": "cust-77", "type": "profile", "profileData": {"Name": "C"}},
            ]
        },
        headers={
            "X-CleverTap-Account-Id": account.clevertap_account_id,
            "X-CleverTap-Passcode": account.clevertap_passcode,
        },
    )
    assert clevertap.json() == {"status": "success", "processed": 2, "unprocessed": []}

    admin = {"Authorization": f"Bearer {account.admin_token}"}
    found = http.get(
        "/api/v1/contacts", params={"identifier": "email:c77@example.com"}, headers=admin
    )
    (contact,) = found.json()["contacts"]
    assert contact["attributes"] == {"Name": "C"}
    page = http.get(f"/api/v1/contacts/{contact['id']}/activities", headers=admin).json()
    assert sorted((a["dialect"], a["name"]) for a in page["activities"]) == [
        ("clevertap", "Charged"),
        ("netcore", "Visit"),
    ]
