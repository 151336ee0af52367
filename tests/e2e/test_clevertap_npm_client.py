"""CleverTap's own Node.js client (npm ``clevertap`` 1.3.0) against a real eventyard server.

The package is installed with npm into a temporary folder once per session
and used as shipped; ``tests/e2e/clevertap_client.js`` changes only its base
URL (the API object's ``apiEndpoint``, built in ``lib/clevertap-api.js`` as
``https://${region}.api.clevertap.com/1``) to ``<server>/1``. Nothing is a
capture or a fake: the client's own batching, headers (it sends
``Content-Type: application/json`` without a charset) and response handling
run. Without npm the tests fail under ``CI=true`` and skip loudly elsewhere.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventyard.core.model import NewAccount
from tests.support import (
    Server,
    activities_by_id,
    identifier_pairs,
    npm_install,
    read_contact,
)

CLIENT_SCRIPT = Path(__file__).with_name("clevertap_client.js")
PACKAGE = "clevertap@1.3.0"


@pytest.fixture(scope="session")
def clevertap_modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``node_modules`` holding the real ``clevertap`` package, installed once."""
    folder = tmp_path_factory.mktemp("clevertap-npm")
    modules = npm_install(folder, PACKAGE, "CleverTap npm client")
    installed = json.loads((modules / "clevertap" / "package.json").read_text())
    assert installed["version"] == "1.3.0", installed
    return modules


def run_client(
    modules: Path, server: Server, account: NewAccount, records: list[Any], tmp_path: Path
) -> dict[str, Any]:
    """Run the npm client's ``upload(records)``; return what it printed."""
    records_file = tmp_path / "records.json"
    records_file.write_text(json.dumps(records))
    run = subprocess.run(
        [
            "node",
            str(CLIENT_SCRIPT),
            str(modules),
            server.base_url,
            account.clevertap_account_id,
            account.clevertap_passcode,
            str(records_file),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    printed: dict[str, Any] = json.loads(run.stdout)
    return printed


def test_npm_client_uploads_events_and_profiles(
    clevertap_modules: Path,
    server: Server,
    http: httpx.Client,
    account: NewAccount,
    tmp_path: Path,
) -> None:
    """The client's ``upload(data)`` "Sends an array of event and/or profile objects to
    CleverTap" in batches (50 here); every batch answers success and the data is
    stored as sent."""
    events = [
        {
            "identity": f"npm-user-{i % 5}",
            "ts": 1468308340 + i,
            "type": "event",
            "evtName": "Product viewed",
            "evtData": {"Product name": "Casio Chronograph Watch", "Price": 59.99, "n": i},
        }
        for i in range(55)
    ]
    events.append(
        {
            "FBID": "npm-fb-1",
            "type": "event",
            "evtName": "Charged",
            "evtData": {"Amount": 300, "Delivery By": "$D_1468322268", "Items": [{"Qty": 1}]},
        }
    )
    profiles = [
        {
            "identity": "npm-user-0",
            "type": "profile",
            "profileData": {
                "Name": "Npm User",
                "Email": "Npm.User@Example.com",
                "Phone": "+14155550100",
                "MSG-email": False,
            },
        },
        {"objectId": "npm-object-1", "type": "profile", "profileData": {"Plan": "gold"}},
    ]

    printed = run_client(clevertap_modules, server, account, events + profiles, tmp_path)

    assert printed["vendorEndpoint"] == "https://eu1.api.clevertap.com/1"
    # 58 records in batches of 50: the client resolves with one response per batch.
    assert printed["response"] == [
        {"status": "success", "processed": 50, "unprocessed": []},
        {"status": "success", "processed": 8, "unprocessed": []},
    ]

    user = read_contact(http, account, "email:npm.user@example.com")
    assert ("identity", "npm-user-0") in identifier_pairs(user)
    assert ("mobile", "+14155550100") in identifier_pairs(user)
    assert user["attributes"]["Name"] == "Npm User"
    assert user["attributes"]["MSG-email"] is False
    viewed = activities_by_id(http, account, user["id"])
    assert sorted(a["properties"]["n"] for a in viewed) == list(range(0, 55, 5))
    assert {a["name"] for a in viewed} == {"Product viewed"}
    assert {a["dialect"] for a in viewed} == {"clevertap"}

    buyer = read_contact(http, account, "FBID:npm-fb-1")
    [charged] = activities_by_id(http, account, buyer["id"])
    assert charged["name"] == "Charged"
    assert charged["properties"] == {
        "Amount": 300,
        "Delivery By": "2016-07-12T11:17:48Z",
        "Items": [{"Qty": 1}],
    }
    assert read_contact(http, account, "objectId:npm-object-1")["attributes"]["Plan"] == "gold"


def test_npm_client_sees_unprocessed_records(
    clevertap_modules: Path,
    server: Server,
    http: httpx.Client,
    account: NewAccount,
    tmp_path: Path,
) -> None:
    """ "Requests with processing errors will be returned in the API call response":
    the client hands the partial answer through, naming the refused record."""
    good = {"identity": "npm-partial", "type": "event", "evtName": "Ok", "evtData": {"a": 1}}
    too_long = {
        "identity": "npm-partial",
        "type": "event",
        "evtName": "N" * 121,
        "evtData": {"a": 2},
    }

    printed = run_client(clevertap_modules, server, account, [good, too_long], tmp_path)

    response = printed["response"]
    assert response["status"] == "partial", response
    assert response["processed"] == 1
    [entry] = response["unprocessed"]
    assert entry["record"] == too_long
    assert entry["status"] == "fail"
    contact = read_contact(http, account, "identity:npm-partial")
    assert [a["name"] for a in activities_by_id(http, account, contact["id"])] == ["Ok"]
