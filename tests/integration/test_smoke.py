from eventyard.core.model import NewAccount
from tests.support import netcore_event


def test_upload_and_read_back(http, account: NewAccount) -> None:
    r = http.post(
        "/v1/activity/upload", json=[netcore_event()], headers={"api-key": account.netcore_api_key}
    )
    assert r.status_code == 200, r.text
    r = http.get(
        "/api/v1/contacts",
        params={"identifier": "identity:customer-1"},
        headers={"Authorization": f"Bearer {account.admin_token}"},
    )
    assert r.json()["contacts"][0]["status"] == "known"
