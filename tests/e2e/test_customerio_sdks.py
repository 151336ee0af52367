"""Customer.io's Python SDK (``customerio`` from PyPI) against a real eventyard server.

The SDK builds every URL as ``https://{host}[:{port}]/{url_prefix}`` and
"https is forced" (``customerio/track.py``), so the server here serves HTTPS
with a certificate made for the test (``tests/support.py`` ``tls_files``);
the SDK's ``requests`` session finds the CA through ``REQUESTS_CA_BUNDLE``,
the standard variable. Its ``host`` and ``port`` are the server's; nothing
of the SDK is patched. Everything is read back through ``/api/v1/...``.

Issue 22, done when: tests "drive it against a real eventyard server with
only the host (or base URL) changed, and read the result back through
/api/v1: every call type the SDK offers, a flush of 1,000 events, identify
and alias, and a contact first seen through Netcore receiving the events of
the same person. Where an SDK can only speak HTTPS, the test serves eventyard
over TLS with a certificate it makes and points the SDK's CA bundle at it".
"""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from customerio import CustomerIO, CustomerIOException

from eventyard.core.model import NewAccount
from tests.support import (
    Server,
    activities_by_id,
    admin,
    find_contact,
    identifier_pairs,
    read_contact,
    running_server,
    tls_files,
    upload_netcore_event,
)

BULK = 1000


@pytest.fixture(scope="module")
def tls_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory: Path = tmp_path_factory.mktemp("customerio-tls")
    with running_server(database_url, directory / "server.log", tls=tls_files(directory)) as srv:
        yield srv


@pytest.fixture
def https(tls_server: Server) -> Iterator[httpx.Client]:
    trusted = ssl.create_default_context(cafile=str(tls_server.ca))
    with httpx.Client(base_url=tls_server.base_url, timeout=30, verify=trusted) as c:
        yield c


@pytest.fixture
def client(
    tls_server: Server, account: NewAccount, monkeypatch: pytest.MonkeyPatch
) -> Iterator[CustomerIO]:
    """The SDK as an application builds it, with the server's host and port."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_server.ca))
    where = urlsplit(tls_server.base_url)
    sdk = CustomerIO(
        account.customerio_site_id,
        account.customerio_api_key,
        host=where.hostname,
        port=where.port,
        retries=1,
    )
    try:
        yield sdk
    finally:
        sdk.close()


def uid() -> str:
    return f"sdk-{uuid.uuid4().hex[:10]}"


def test_the_sdk_speaks_only_https(client: CustomerIO, tls_server: Server) -> None:
    """Spec: "The base URL is always built as https://{host}[:{port}]/{url_prefix}"."""
    assert client.base_url == f"{tls_server.base_url}/api/v1"


def test_every_call_type_reaches_a_contact_first_seen_through_netcore(
    client: CustomerIO, https: httpx.Client, account: NewAccount
) -> None:
    """identify, track, track_anonymous, pageview, backfill, add_device, delete_device,
    suppress, unsuppress and batch from the SDK; the person was first seen through
    Netcore with the same ``identity`` (Customer.io's ``id``), and joins that contact."""
    user, anon = uid(), uid()
    upload_netcore_event(https, account, user)
    netcore_contact = read_contact(https, account, f"identity:{user}")

    client.track_anonymous(anon, "Browsed", {"sku": "A-1"}, id=uid())
    client.identify(
        user,
        email=f"{user}@Example.com",
        first_name="Pat",
        plan="pro",
        anonymous_id=anon,
        created_at=datetime(2024, 5, 1, tzinfo=UTC),
    )
    client.track(user, "Order Completed", {"revenue": 14.99, "currency": "EUR"}, id=uid())
    client.pageview(user, "https://example.com/start", referrer="ad")
    client.backfill(user, "Signed Up", 1700000000, plan="free")
    client.add_device(user, "push-token/1", "ios", last_used=1700000100, app_version="2.3")
    client.delete_device(user, "push-token/1")
    client.suppress(user)
    client.unsuppress(user)
    client.batch(
        [
            {
                "type": "person",
                "identifiers": {"id": user},
                "action": "event",
                "name": "Batched",
                "attributes": {"n": 1},
            },
            {
                "type": "person",
                "identifiers": {"id": user},
                "action": "identify",
                "attributes": {"tier": "gold"},
            },
        ]
    )

    contact = read_contact(https, account, f"identity:{user}")
    assert contact["id"] == netcore_contact["id"]
    assert identifier_pairs(contact) >= {
        ("identity", user),
        ("email", f"{user}@example.com"),
        ("anonid", anon),
    }
    attributes = contact["attributes"]
    assert attributes["first_name"] == "Pat"
    assert attributes["plan"] == "pro"
    assert attributes["created_at"] == 1714521600  # the SDK sends datetimes as unix seconds
    assert attributes["cio_suppressed"] is False
    assert attributes["tier"] == "gold"

    by_name = {a["name"]: a for a in activities_by_id(https, account, contact["id"])}
    assert set(by_name) == {
        "Add To Cart",  # the Netcore event
        "Browsed",  # anonymous, attached by the identify's anonymous_id
        "Order Completed",
        "Page Viewed",
        "Signed Up",
        "add_device",
        "delete_device",
        "Batched",
    }
    order = by_name["Order Completed"]
    assert (order["dialect"], order["properties"]) == (
        "customerio",
        {"revenue": 14.99, "currency": "EUR"},
    )
    assert by_name["Page Viewed"]["properties"] == {
        "url": "https://example.com/start",
        "referrer": "ad",
    }
    assert by_name["Signed Up"]["occurred_at"] == "2023-11-14T22:13:20Z"
    device = by_name["add_device"]["properties"]["device"]
    assert (device["id"], device["platform"], device["app_version"]) == (
        "push-token/1",
        "ios",
        "2.3",
    )
    assert by_name["Browsed"]["properties"] == {"sku": "A-1"}
    assert by_name["Batched"]["properties"] == {"n": 1}


def test_a_loop_of_1000_events_and_a_batch_of_1000_are_stored_once_each(
    client: CustomerIO, https: httpx.Client, account: NewAccount
) -> None:
    """The SDK has no queue: 1,000 ``track`` calls over its pooled connection, then one
    v2 ``batch`` of 1,000 operations; retried ids are stored once."""
    user = uid()
    ids = [uid() for _ in range(BULK)]
    for i, event_id in enumerate(ids):
        client.track(user, "Bulk Event", {"i": i}, id=event_id)
    client.track(user, "Bulk Event", {"i": 0}, id=ids[0])  # a retry: ignored
    client.batch(
        [
            {
                "type": "person",
                "identifiers": {"id": user},
                "action": "event",
                "name": "Batch Event",
                "id": uid(),
                "attributes": {"i": i},
            }
            for i in range(BULK)
        ]
    )
    contact = read_contact(https, account, f"identity:{user}")
    stored = activities_by_id(https, account, contact["id"])
    assert len(stored) == 2 * BULK
    for name in ("Bulk Event", "Batch Event"):
        numbers = sorted(a["properties"]["i"] for a in stored if a["name"] == name)
        assert numbers == list(range(BULK)), name


def test_identify_merge_and_delete(
    client: CustomerIO, https: httpx.Client, account: NewAccount
) -> None:
    """``merge_customers`` gives the primary what nobody else owns; ``delete`` erases."""
    user = uid()
    client.identify(user, plan="pro")
    client.merge_customers("id", user, "email", f"{user}@dup.io")
    merged = read_contact(https, account, f"email:{user}@dup.io")
    assert ("identity", user) in identifier_pairs(merged)

    client.identify(f"{user}@mail.io", first_name="Mo")  # the path is an e-mail address
    assert read_contact(https, account, f"email:{user}@mail.io")["attributes"] == {
        "first_name": "Mo"
    }

    client.delete(user)
    assert find_contact(https, account, f"identity:{user}") is None
    r = https.get("/api/v1/erasures", headers=admin(account))
    assert [e["requested_via"] for e in r.json()["erasures"]] == ["customerio"]


def test_refusals_raise_the_sdks_exception(client: CustomerIO, account: NewAccount) -> None:
    """Spec: "non-2xx raises CustomerIOException("<status>: <url> <data> <body>")"."""
    with pytest.raises(CustomerIOException, match=r"400.*event name must not be blank"):
        client.track(uid(), " ")
    with pytest.raises(CustomerIOException, match=r"device\.platform must be ios or android"):
        client.add_device(uid(), "token", "windows")
