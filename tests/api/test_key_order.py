"""Properties and attributes come back in the order they were sent, on both databases."""

from __future__ import annotations

import httpx

from eventyard.core.model import NewAccount
from tests.support import netcore_event


def test_property_and_attribute_keys_keep_their_order(
    http: httpx.Client, account: NewAccount
) -> None:
    """docs/dialects/netcore.md: properties are kept exactly as sent."""
    params = {"zeta": 1, "currency": "INR", "a": 2, "total_item_qty": "1", "price": 250.1}
    r = http.post(
        "/v1/activity/upload",
        json=[netcore_event(identity="order-1", activity_params=params)],
        headers={"api-key": account.netcore_api_key},
    )
    assert r.status_code == 200, r.text
    profile = {"Zed": 1, "Alpha": 2, "Mid": 3}
    r = http.post(
        "/1/upload",
        json={"d": [{"identity": "order-1", "type": "profile", "profileData": profile}]},
        headers={
            "X-CleverTap-Account-Id": account.clevertap_account_id,
            "X-CleverTap-Passcode": account.clevertap_passcode,
        },
    )
    assert r.json()["status"] == "success", r.text
    admin = {"Authorization": f"Bearer {account.admin_token}"}
    (contact,) = http.get(
        "/api/v1/contacts", params={"identifier": "identity:order-1"}, headers=admin
    ).json()["contacts"]
    assert list(contact["attributes"]) == ["Zed", "Alpha", "Mid"]
    page = http.get(f"/api/v1/contacts/{contact['id']}/activities", headers=admin).json()
    assert list(page["activities"][0]["properties"]) == list(params)
