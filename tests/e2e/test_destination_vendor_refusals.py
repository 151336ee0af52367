"""Vendor destination kinds end to end, beside ``test_destination_vendors.py``.

That module proves the five kinds of issue 21 (segment, netcore, cordial,
ortto, clevertap) deliver each event once, in order, under the right
identifiers. This one does the same for the other vendor kinds (mixpanel,
amplitude, posthog, customerio), and proves for every kind whose receiver
refuses records that a refusal becomes a dead letter with the receiver's
reason while its neighbours are delivered once: issue 21, "activities whose
definition the target lacks are failed deliveries with the target's reason,
not silent drops". The hub takes Netcore events; the receiver is a second
eventyard server answering in the kind's dialect, with a receiving account's
own credentials.
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
from tests.support import activities_of, admin, netcore_event, own_database
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


#: The vendor kinds beyond issue 21's five (``test_destination_vendors.py`` has those).
OTHER_KINDS = ("mixpanel", "amplitude", "posthog", "customerio")


def create_destination(
    hub: Hub, tenant: NewAccount, kind: str, receiver: Receiver, target: NewAccount
) -> str:
    body = {
        "name": f"to {kind}",
        "kind": kind,
        "url": str(receiver.api.base_url).rstrip("/"),
        "credentials": credentials_of(kind, target),
    }
    r = hub.api.post("/api/v1/destinations", json=body, headers=admin(tenant))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def an_hour_ago() -> str:
    return (datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)).isoformat()


@pytest.mark.parametrize("kind", OTHER_KINDS)
def test_netcore_events_arrive_once_in_the_vendor_dialect(
    kind: str, sender: Hub, receiver: Receiver
) -> None:
    hub = sender
    tenant = create_account(hub.store, f"hub-{kind}")
    target = create_account(receiver.store, f"vendor-{kind}")
    destination_id = create_destination(hub, tenant, kind, receiver, target)
    when = an_hour_ago()
    send_events(
        hub,
        tenant,
        [
            netcore_event(identity=f"buyer-{c}", timestamp=when, activity_params={"n": n})
            for n in range(PER_CONTACT)
            for c in range(CONTACTS)
        ],
    )

    def stored_of(c: int) -> list[dict[str, Any]]:
        return activities_of(receiver.api, target, f"identity:buyer-{c}")

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
        assert {a["name"] for a in stored} == {"Add To Cart"}
        assert {a["occurred_at"] for a in stored} == {when.replace("+00:00", "Z")}
        assert sorted(number_of(a) for a in stored) == list(range(PER_CONTACT))
        assert stored[0]["dialect"] == kind


def number_of(activity: dict[str, Any]) -> int:
    """The event's ``n`` as the receiver stored it (Ortto's typed ``int:cm:n``)."""
    properties = activity["properties"]
    return int(properties.get("int:cm:n", properties.get("n")))


#: kind -> (the identity of the event the receiver refuses, its name, a word of the reason)
REFUSALS = {
    # "ensure the activity definition exists": the receiver has none for it.
    "ortto": ("buyer-x", "Never Defined", "no activity definition"),
    # A CleverTap system event: "unprocessed" names its record (code 1012).
    "clevertap": ("buyer-x", "App Launched", "1012"),
    # Amplitude refuses the user id "anonymous" and stores none of the request; the
    # other events are sent again without it.
    "amplitude": ("anonymous", "Add To Cart", "user_id"),
}


@pytest.mark.parametrize("kind", list(REFUSALS))
def test_what_the_receiver_refuses_becomes_a_dead_letter_with_its_reason(
    kind: str, sender: Hub, receiver: Receiver
) -> None:
    """Issue 21: "activities whose definition the target lacks are failed deliveries with the
    target's reason, not silent drops"; their neighbours are delivered once."""
    hub = sender
    tenant = create_account(hub.store, f"hub-refusal-{kind}")
    target = create_account(receiver.store, f"vendor-refusal-{kind}")
    destination_id = create_destination(hub, tenant, kind, receiver, target)
    if kind == "ortto":
        r = receiver.api.post(
            "/api/v1/activity-definitions",
            json={
                "activity_id": "act:cm:add-to-cart",
                "name": "cart",
                "fields": {"int:cm:n": "int"},
            },
            headers=admin(target),
        )
        assert r.status_code == 201, r.text
    refused_identity, refused_name, reason = REFUSALS[kind]
    when = an_hour_ago()
    good = [
        netcore_event(identity="buyer-ok", timestamp=when, activity_params={"n": n}) for n in (0, 1)
    ]
    bad = netcore_event(
        identity=refused_identity,
        activity_name=refused_name,
        timestamp=when,
        activity_params={"n": 9},
    )
    send_events(hub, tenant, [good[0], bad, good[1]])

    figures = wait_for(
        lambda: (d := destination(hub, tenant, destination_id))["delivered"] + d["dead"] == 3 and d,
        what="every activity delivered or dead",
    )

    assert (figures["delivered"], figures["dead"], figures["pending"]) == (2, 1, 0)
    letters = hub.api.get(
        f"/api/v1/destinations/{destination_id}/dead-letters", headers=admin(tenant)
    ).json()["dead_letters"]
    assert len(letters) == 1
    assert reason in letters[0]["reason"], letters[0]
    (refused,) = activities_of(hub.api, tenant, f"identity:{refused_identity}")
    assert letters[0]["activity_id"] == refused["id"]
    stored = activities_of(receiver.api, target, "identity:buyer-ok")
    assert sorted(a["properties"].get("int:cm:n", a["properties"].get("n")) for a in stored) == [
        0,
        1,
    ]
