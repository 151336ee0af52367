"""Two real eventyard servers: events sent to the first (the hub) in one dialect arrive at
the second (the "vendor") in each vendor destination kind, each exactly once, in order per
contact, under the right contact identifiers.

docs/destinations.md, "Kinds", and each dialect's "As a destination" section. The hub
delivers from its own delivery threads, through the whole machinery (outbox, lanes,
Idempotency-Keys); the vendor is an eventyard server answering in the kind's dialect,
each on a database of its own, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventyard.core.model import NewAccount
from eventyard.dialects.registry import create_account, destination_formats
from eventyard.storage.database import Database
from tests.e2e.destination_support import wait_for
from tests.e2e.test_destinations import FAST_DELIVERY
from tests.support import (
    activities_by_id,
    admin,
    find_contact,
    identifier_pairs,
    netcore_event,
    own_database,
    running_server,
)

#: Vendor kind -> the identifier the vendor finds the contact by.
LOOKUP = {
    "segment": "identity",
    "netcore": "identity",
    "clevertap": "identity",
    "cordial": "email",
    "ortto": "email",
}
KINDS = [kind for kind in LOOKUP if kind in destination_formats()]
#: Fast polls and retries, but the vendor (a second server on this machine) may take
#: seconds to answer under load: a short lease or timeout would send a delivery
#: again while it is in flight, which is the worker-kill tests' business, not this.
UNHURRIED_DELIVERY = {
    **FAST_DELIVERY,
    "EVENTYARD_DESTINATION_TIMEOUT_SECONDS": "20",
    "EVENTYARD_DESTINATION_LEASE_SECONDS": "60",
}
CONTACTS = 4
PER_CONTACT = 5
FIRST_TIME = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@dataclass
class Side:
    api: httpx.Client
    store: Database


@pytest.fixture(scope="module")
def servers(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: Any
) -> Iterator[tuple[Side, Side]]:
    """The hub (it may reach 127.0.0.1) and the vendor, each on a database of its own."""
    if backend == "postgresql":
        request.getfixturevalue("postgres_url")
    folder: Path = tmp_path_factory.mktemp(f"two-servers-{backend}")
    (folder / "hub").mkdir()
    (folder / "vendor").mkdir()
    with (
        own_database(backend, folder / "hub") as hub_url,
        own_database(backend, folder / "vendor") as vendor_url,
        running_server(hub_url, folder / "hub" / "server.log", UNHURRIED_DELIVERY) as hub,
        running_server(vendor_url, folder / "vendor" / "server.log") as vendor,
        httpx.Client(base_url=hub.base_url, timeout=60) as hub_api,
        httpx.Client(base_url=vendor.base_url, timeout=60) as vendor_api,
    ):
        hub_store = Database.from_url(hub_url, pool_size=2)
        vendor_store = Database.from_url(vendor_url, pool_size=2)
        try:
            yield Side(hub_api, hub_store), Side(vendor_api, vendor_store)
        finally:
            hub_store.dispose()
            vendor_store.dispose()


def credentials_at(kind: str, vendor: NewAccount) -> dict[str, str]:
    """The vendor account's own credentials of the kind's dialect."""
    if kind == "segment":
        return {"write_key": vendor.segment_write_key}
    if kind == "clevertap":
        return {"account_id": vendor.clevertap_account_id, "passcode": vendor.clevertap_passcode}
    return {"api_key": getattr(vendor, f"{kind}_api_key")}


def person(tag: str, n: int) -> tuple[str, str]:
    return f"{tag}-buyer-{n}", f"{tag}.buyer{n}@example.com"


def send_netcore(hub: Side, account: NewAccount, tag: str, rounds: range) -> None:
    """Netcore batches to the hub: each contact's events one second apart, in order."""
    for step in rounds:
        events = []
        for n in range(CONTACTS):
            identity, email = person(tag, n)
            moment = FIRST_TIME + timedelta(seconds=step)
            events.append(
                netcore_event(
                    identity=identity,
                    activity_name="Viewed Product",
                    timestamp=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    activity_params={"step": step, "email": email},
                )
            )
            events[-1]["email"] = email
        r = hub.api.post(
            "/v1/activity/upload", json=events, headers={"api-key": account.netcore_api_key}
        )
        assert r.status_code == 200, r.text


def send_segment(hub: Side, account: NewAccount, tag: str, rounds: range) -> None:
    """Segment track calls to the hub (the Netcore kind is fed from another dialect)."""
    for step in rounds:
        batch = []
        for n in range(CONTACTS):
            identity, email = person(tag, n)
            moment = FIRST_TIME + timedelta(seconds=step)
            batch.append(
                {
                    "type": "track",
                    "userId": identity,
                    "event": "Viewed Product",
                    "timestamp": moment.isoformat().replace("+00:00", "Z"),
                    "properties": {"step": step},
                    "context": {"traits": {"email": email}},
                    "messageId": uuid.uuid4().hex,
                }
            )
        r = hub.api.post("/v1/batch", json={"batch": batch}, auth=(account.segment_write_key, ""))
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("kind", KINDS)
def test_events_sent_to_the_hub_arrive_once_in_order_at_the_vendor(
    servers: tuple[Side, Side], kind: str
) -> None:
    hub, vendor = servers
    tag = f"{kind}{uuid.uuid4().hex[:6]}"
    hub_account = create_account(hub.store, f"hub-{tag}")
    vendor_account = create_account(vendor.store, f"vendor-{tag}")
    if kind == "ortto":
        # "ensure the activity definition exists": the vendor defines what it receives.
        r = vendor.api.patch(
            "/api/v1/account/settings",
            json={"auto_create_definitions": True},
            headers=admin(vendor_account),
        )
        assert r.status_code == 200, r.text
    r = hub.api.post(
        "/api/v1/destinations",
        json={
            "name": f"vendor {kind}",
            "kind": kind,
            "url": str(vendor.api.base_url).rstrip("/"),
            "credentials": credentials_at(kind, vendor_account),
        },
        headers=admin(hub_account),
    )
    assert r.status_code == 201, r.text
    destination = r.json()["id"]
    send = send_segment if kind == "netcore" else send_netcore
    send(hub, hub_account, tag, range(PER_CONTACT))

    def figures() -> dict[str, Any]:
        answer = hub.api.get(f"/api/v1/destinations/{destination}", headers=admin(hub_account))
        return dict(answer.json())

    done = wait_for(
        lambda: (f := figures())["pending"] == 0 and f["delivered"] + f["dead"] > 0 and f,
        what=f"the {kind} deliveries",
    )
    assert done["dead"] == 0, hub.api.get(
        f"/api/v1/destinations/{destination}/dead-letters", headers=admin(hub_account)
    ).text
    assert done["delivered"] == CONTACTS * PER_CONTACT
    lookup = LOOKUP[kind]
    for n in range(CONTACTS):
        identity, email = person(tag, n)
        value = identity if lookup == "identity" else email
        contact = find_contact(vendor.api, vendor_account, f"{lookup}:{value}")
        assert contact is not None, f"the vendor has no contact {lookup}:{value}"
        pairs = identifier_pairs(contact)
        assert ("identity", identity) in pairs or ("email", email) in pairs
        stored = activities_by_id(vendor.api, vendor_account, contact["id"], one_page=True)
        # Exactly once: one activity per event sent, each at its own second.
        times = [a["occurred_at"] for a in stored]
        assert len(stored) == PER_CONTACT
        assert len(set(times)) == PER_CONTACT
        # In order: the vendor stored them (ids grow) in the order they occurred.
        by_storage = sorted(stored, key=lambda a: a["id"])
        assert [a["occurred_at"] for a in by_storage] == sorted(times)
