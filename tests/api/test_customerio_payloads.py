"""Customer.io's documented request bodies (``tests/payloads/customerio/``) replayed
and checked as stored, read back through ``/api/v1``.

Issue 22: "Each vendor's documented sample bodies are replayed from
tests/payloads/<vendor>/ and stored as documented."
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from eventyard.core.model import NewAccount
from tests.support import activities_by_id, identifier_pairs, read_contact

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads" / "customerio"


def payload(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())


def send(http: httpx.Client, account: NewAccount, method: str, path: str, name: str) -> None:
    auth = (account.customerio_site_id, account.customerio_api_key)
    r = http.request(method, path, json=payload(name), auth=auth)
    assert r.status_code == 200, r.text
    assert r.json() == {}


def test_identify_stores_the_attributes_and_the_email(
    http: httpx.Client, account: NewAccount
) -> None:
    """§3.1: the person ``5`` gets the attributes and the e-mail identifier."""
    send(http, account, "PUT", "/api/v1/customers/5", "identify.json")
    found = read_contact(http, account, "identity:5")
    assert found["attributes"] == payload("identify.json")
    assert identifier_pairs(found) == {
        ("identity", "5"),
        ("email", "customer@example.com"),
    }


def test_subscription_preferences_are_kept_as_sent(http: httpx.Client, account: NewAccount) -> None:
    """Dot-notation keys are attributes with their name as sent."""
    send(http, account, "PUT", "/api/v1/customers/5", "identify_subscription_preferences.json")
    attributes = read_contact(http, account, "identity:5")["attributes"]
    assert attributes["cio_subscription_preferences.topics.topic_3"] is True
    assert attributes["unsubscribed"] is False


def test_relationships_are_group_memberships(http: httpx.Client, account: NewAccount) -> None:
    send(http, account, "PUT", "/api/v1/customers/5", "identify_relationships.json")
    found = read_contact(http, account, "identity:5")
    assert found["attributes"] == {}
    assert [(g["group_id"], g["traits"]) for g in found["groups"]] == [
        ("1:acme", {"role": "admin"})
    ]


def test_the_event_is_stored_at_its_timestamp(http: httpx.Client, account: NewAccount) -> None:
    send(http, account, "POST", "/api/v1/customers/5/events", "event.json")
    [stored] = activities_by_id(http, account, read_contact(http, account, "identity:5")["id"])
    assert (stored["name"], stored["occurred_at"]) == ("purchase", "2023-11-14T22:13:20Z")
    assert stored["properties"] == {"price": 23.45, "product": "socks"}
    assert stored["context"] == {
        "type": "event",
        "name": "purchase",
        "id": "01BX5ZZKBKACTAV9WEVGEMMVRY",
        "timestamp": 1700000000,
    }


def test_the_anonymous_event_waits_for_its_person(http: httpx.Client, account: NewAccount) -> None:
    send(http, account, "POST", "/api/v1/events", "anonymous_event.json")
    anonymous = read_contact(http, account, "anonid:anon-7f3c")
    assert anonymous["status"] == "anonymous"
    r = http.put(
        "/api/v1/customers/5",
        json={"anonymous_id": "anon-7f3c"},
        auth=(account.customerio_site_id, account.customerio_api_key),
    )
    assert r.status_code == 200
    person = read_contact(http, account, "identity:5")
    assert [a["name"] for a in activities_by_id(http, account, person["id"])] == ["purchase"]


def test_the_device_is_an_add_device_activity(http: httpx.Client, account: NewAccount) -> None:
    send(http, account, "PUT", "/api/v1/customers/5/devices", "device.json")
    [stored] = activities_by_id(http, account, read_contact(http, account, "identity:5")["id"])
    assert stored["name"] == "add_device"
    assert stored["properties"] == payload("device.json")
    assert stored["occurred_at"] == "2023-11-14T22:13:20Z"


def test_merge_gives_the_primary_the_secondary_email(
    http: httpx.Client, account: NewAccount
) -> None:
    send(http, account, "PUT", "/api/v1/customers/42", "identify.json")
    send(http, account, "POST", "/api/v1/merge_customers", "merge.json")
    merged = read_contact(http, account, "identity:42")
    assert ("email", "dup@example.com") in identifier_pairs(merged)


def test_entity_and_batch(http: httpx.Client, account: NewAccount) -> None:
    send(http, account, "POST", "/api/v2/entity", "entity_identify.json")
    send(http, account, "POST", "/api/v2/batch", "batch.json")
    found = read_contact(http, account, "identity:42")
    assert found["attributes"] == {"first_name": "Jane"}
    [stored] = activities_by_id(http, account, found["id"])
    assert (stored["name"], stored["properties"]) == (
        "purchase",
        {"price": 23.45, "product": "socks"},
    )
