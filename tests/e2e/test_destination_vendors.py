"""Every vendor destination kind end to end: a hub delivering to a second eventyard server.

Issue 21, "Done when": "events sent to the first in one dialect arrive at the
second in another, each exactly once, with the right contact identifiers".
The hub takes Netcore events; a destination of each vendor kind delivers
them, through the outbox and its workers, to the receiving server in that
vendor's dialect, with a receiving account's own credentials. The test reads
back, through the receiver's read API, what it stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from eventyard.core.model import NewAccount
from eventyard.dialects.registry import create_account
from eventyard.storage.database import Database
from tests.e2e.destination_support import wait_for
from tests.e2e.test_destinations import Hub, destination, send_events
from tests.e2e.test_destinations import hub as hub  # the sending server, a fixture
from tests.support import activities_of, admin, find_contact, netcore_event, own_database
from tests.support import running_server as start_server

CONTACTS, PER_CONTACT = 2, 3


@pytest.fixture
def sender(request: pytest.FixtureRequest) -> Hub:
    """The hub of ``test_destinations.py``: a server whose destinations deliver fast."""
    found: Hub = request.getfixturevalue("hub")
    return found


class Receiver:
    def __init__(self, store: Database, api: httpx.Client) -> None:
        self.store, self.api = store, api


@pytest.fixture(scope="module")
def receiver(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: Any
) -> Iterator[Receiver]:
    """The second eventyard server: the "vendor" the hub delivers to."""
    if backend == "postgresql":
        request.getfixturevalue("postgres_url")
    directory = tmp_path_factory.mktemp(f"receiver-{backend}")
    with (
        own_database(backend, directory) as url,
        start_server(url, directory / "server.log") as server,
        httpx.Client(base_url=server.base_url, timeout=60) as api,
    ):
        store = Database.from_url(url, pool_size=2)
        try:
            yield Receiver(store, api)
        finally:
            store.dispose()


def credentials_of(kind: str, account: NewAccount) -> dict[str, str]:
    """The receiving account's credentials, as the destination kind names them."""
    return {
        "segment": {"write_key": account.segment_write_key},
        "clevertap": {
            "account_id": account.clevertap_account_id,
            "passcode": account.clevertap_passcode,
        },
        "netcore": {"api_key": account.netcore_api_key},
        "ortto": {"api_key": account.ortto_api_key},
        "cordial": {"api_key": account.cordial_api_key},
        "mixpanel": {"api_secret": account.mixpanel_api_secret},
        "amplitude": {"api_key": account.amplitude_api_key},
        "posthog": {"api_key": account.posthog_api_key},
        "customerio": {
            "site_id": account.customerio_site_id,
            "api_key": account.customerio_api_key,
        },
    }[kind]


#: kind -> (the identifier the receiver's contact is found by, the name it stores)
EXPECTED = {
    "segment": ("identity", "Add To Cart"),
    "clevertap": ("identity", "Add To Cart"),
    "netcore": ("identity", "Add To Cart"),
    "ortto": ("identity", "act:cm:add-to-cart"),
    "cordial": ("email", "Add To Cart"),
    "mixpanel": ("identity", "Add To Cart"),
    "amplitude": ("identity", "Add To Cart"),
    "posthog": ("identity", "Add To Cart"),
    "customerio": ("identity", "Add To Cart"),
}


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_netcore_events_arrive_once_in_the_vendor_dialect(
    kind: str, sender: Hub, receiver: Receiver
) -> None:
    hub = sender
    tenant = create_account(hub.store, f"hub-{kind}")
    target = create_account(receiver.store, f"vendor-{kind}")
    if kind == "ortto":
        # Ortto refuses activities without a definition; let first use create it.
        r = receiver.api.patch(
            "/api/v1/account/settings",
            json={"auto_create_definitions": True},
            headers=admin(target),
        )
        assert r.status_code == 200, r.text
    body = {
        "name": f"to {kind}",
        "kind": kind,
        "url": str(receiver.api.base_url).rstrip("/"),
        "credentials": credentials_of(kind, target),
    }
    r = hub.api.post("/api/v1/destinations", json=body, headers=admin(tenant))
    assert r.status_code == 201, r.text
    destination_id = r.json()["id"]
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    send_events(
        hub,
        tenant,
        [
            netcore_event(
                identity=f"buyer-{c}",
                email=f"buyer-{c}@example.com",
                timestamp=when.isoformat().replace("+00:00", "Z"),
                activity_params={"n": n},
            )
            for n in range(PER_CONTACT)
            for c in range(CONTACTS)
        ],
    )
    lookup, name = EXPECTED[kind]

    def stored_of(c: int) -> list[dict[str, Any]]:
        return activities_of(receiver.api, target, f"{lookup}:{stored_value(lookup, c)}")

    wait_for(
        lambda: sum(len(stored_of(c)) for c in range(CONTACTS)) >= CONTACTS * PER_CONTACT,
        what=f"the activities at the {kind} receiver",
    )
    figures = wait_for(
        lambda: (
            (d := destination(hub, tenant, destination_id))["delivered"] == CONTACTS * PER_CONTACT
            and d
        ),
        what="the hub's delivered count",
    )
    assert (figures["dead"], figures["pending"]) == (0, 0)
    for c in range(CONTACTS):
        stored = stored_of(c)
        assert len(stored) == PER_CONTACT, stored
        assert {a["name"] for a in stored} == {name}
        assert {a["occurred_at"] for a in stored} == {when.isoformat().replace("+00:00", "Z")}
        numbers = sorted(a["properties"].get("int:cm:n", a["properties"].get("n")) for a in stored)
        assert numbers == list(range(PER_CONTACT))
        contact = find_contact(receiver.api, target, f"{lookup}:{stored_value(lookup, c)}")
        assert contact is not None
        assert (lookup, stored_value(lookup, c)) in {
            (i["kind"], i["value"]) for i in contact["identifiers"]
        }


def stored_value(lookup: str, c: int) -> str:
    return f"buyer-{c}@example.com" if lookup == "email" else f"buyer-{c}"
