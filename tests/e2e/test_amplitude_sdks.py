"""Amplitude's official Python SDK, from PyPI, against a real eventyard server.

``amplitude-analytics`` (the ``test`` extra) is used as shipped; only its
``server_url`` is the server's (``.../2/httpapi``, or ``.../batch`` for the
Batch Event Upload API: "``server_url`` is used verbatim (full URL including
path)"). Its storage, worker threads, batching, retries and response
processing all run; the only instrument is the SDK's own ``callback``
option, which reports the code each event ended with. Everything is then
read back through eventyard's read API (``/api/v1/...``).

Issue 22, done when: "tests install its official SDK from PyPI ... drive it
against a real eventyard server with only the host (or base URL) changed,
and read the result back through /api/v1: every call type the SDK offers, a
flush of 1,000 events, identify and alias, and a contact first seen through
Netcore receiving the events of the same person."
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from amplitude import (
    Amplitude,
    BaseEvent,
    Config,
    EventOptions,
    Identify,
    Revenue,
)

from eventyard.core.model import NewAccount
from tests.support import (
    Server,
    activities_by_id,
    identifier_pairs,
    read_contact,
    upload_netcore_event,
)

BULK = 1000


@dataclass
class Sdk:
    """An SDK client pointed at the server, and the code each event ended with."""

    mode: str
    client: Any = None
    outcomes: list[tuple[str, int, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def callback(self, event: BaseEvent, code: int, message: str | None = None) -> None:
        with self.lock:
            self.outcomes.append((event.event_type, code, message))

    def settle(self, count: int, timeout: float = 60) -> list[tuple[str, int, str | None]]:
        """Flush, then wait until ``count`` events have ended (sent or failed)."""
        deadline = time.monotonic() + timeout
        while True:
            # One future per destination plugin (None when it had nothing to send).
            for future in self.client.flush():
                if future is not None:
                    future.result(timeout=timeout)
            with self.lock:
                if len(self.outcomes) >= count:
                    return list(self.outcomes)
            assert time.monotonic() < deadline, self.outcomes
            time.sleep(0.1)


@pytest.fixture(params=["httpapi", "batch"])
def sdk(request: pytest.FixtureRequest, server: Server) -> Iterator[Sdk]:
    holder = Sdk(mode=str(request.param))
    path = "/2/httpapi" if holder.mode == "httpapi" else "/batch"
    config = Config(
        server_url=server.base_url + path,
        callback=holder.callback,
        flush_queue_size=200,
        flush_interval_millis=200,
        flush_max_retries=3,
    )
    holder.config = config  # type: ignore[attr-defined]
    yield holder
    if holder.client is not None:
        holder.client.shutdown()


def start(sdk: Sdk, account: NewAccount) -> Amplitude:
    sdk.client = Amplitude(account.amplitude_api_key, sdk.config)  # type: ignore[attr-defined]
    return sdk.client


def uid(prefix: str = "sdk") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_every_call_type_reaches_a_contact_first_seen_through_netcore(
    sdk: Sdk, http: httpx.Client, account: NewAccount
) -> None:
    """track, identify (every operation of ``Identify``), set_group, group_identify with a
    member and revenue; the device's earlier event joins the user once an identify names
    both (Amplitude has no alias call: sending user_id and device_id together links them).
    The person was first seen through Netcore with the same ``identity``."""
    user, device = uid(), uid("device")
    upload_netcore_event(http, account, user)
    netcore_contact = read_contact(http, account, f"identity:{user}")

    client = start(sdk, account)
    client.track(BaseEvent("Browsed", device_id=device, event_properties={"sku": "A-1"}))
    client.track(
        BaseEvent(
            "Order Completed",
            user_id=user,
            event_properties={"total": 14.99, "items": [{"sku": "A-1"}]},
            user_properties={"plan": "pro"},
        )
    )
    identify = (
        Identify()
        .set("name", "Pat")
        .set_once("first_seen", "2024-01-01")
        .add("logins", 2)
        .append("tags", "a")
        .prepend("history", "p")
        .pre_insert("uniq_front", "x")
        .post_insert("uniq_back", "y")
        .unset("obsolete")
    )
    client.identify(identify, EventOptions(user_id=user, device_id=device))
    client.identify(Identify().remove("tags", "a").add("logins", 1), EventOptions(user_id=user))
    client.set_group("org", ["acme", "umbrella"], EventOptions(user_id=user))
    client.group_identify("org", "acme", Identify().set("tier", "gold"), EventOptions(user_id=user))
    revenue = Revenue(price=4.5, quantity=2, product_id="sku-1", revenue_type="purchase")
    client.revenue(revenue, EventOptions(user_id=user))
    outcomes = sdk.settle(7)
    assert {code for _, code, _ in outcomes} == {200}, outcomes

    contact = read_contact(http, account, f"identity:{user}")
    assert contact["id"] == netcore_contact["id"]
    assert identifier_pairs(contact) == {
        ("identity", user),
        ("anonid", device),
    }
    assert contact["attributes"] == {
        "plan": "pro",
        "name": "Pat",
        "first_seen": "2024-01-01",
        "logins": 3,
        "tags": [],
        "history": ["p"],
        "uniq_front": ["x"],
        "uniq_back": ["y"],
        "org": ["acme", "umbrella"],
    }
    groups = {g["group_id"]: g["traits"] for g in contact["groups"]}
    assert groups == {
        "org:acme": {"group_type": "org", "group_name": "acme", "tier": "gold"},
        "org:umbrella": {"group_type": "org", "group_name": "umbrella"},
    }
    by_name = {a["name"]: a for a in activities_by_id(http, account, contact["id"])}
    assert set(by_name) == {"Add To Cart", "Browsed", "Order Completed", "revenue_amount"}
    assert by_name["Add To Cart"]["dialect"] == "netcore"
    order = by_name["Order Completed"]
    assert order["dialect"] == "amplitude"
    assert order["source"] == "amplitude-python"
    assert order["properties"] == {"total": 14.99, "items": [{"sku": "A-1"}]}
    assert order["context"]["insert_id"]
    sale = by_name["revenue_amount"]
    assert sale["conversion_value"]["decimal"] == "9.00"
    assert sale["properties"]["$productId"] == "sku-1"
    assert by_name["Browsed"]["properties"] == {"sku": "A-1"}


def test_group_identify_without_a_member_is_refused_by_index(
    sdk: Sdk, http: httpx.Client, account: NewAccount
) -> None:
    """The SDK's ``group_identify`` sends no user_id/device_id unless told; eventyard keeps
    groups on members' memberships and refuses it with 400 (the SDK calls back with it and
    does not retry)."""
    client = start(sdk, account)
    client.group_identify("org", "lonely", Identify().set("tier", "gold"))
    [(event_type, code, _message)] = sdk.settle(1)
    assert (event_type, code) == ("$groupidentify", 400)


def test_a_flush_of_1000_events_is_stored_once_each(
    sdk: Sdk, http: httpx.Client, account: NewAccount
) -> None:
    """1000 queued tracks of 10 users (100 each, within the per-user rate of either API),
    then ``flush()``: the SDK sends them in batches of 200; every event is stored once."""
    client = start(sdk, account)
    users = [uid() for _ in range(10)]
    for i in range(BULK):
        client.track(BaseEvent("Bulk Event", user_id=users[i % 10], event_properties={"i": i}))
    outcomes = sdk.settle(BULK)
    assert len(outcomes) == BULK
    assert {code for _, code, _ in outcomes} == {200}
    seen: list[int] = []
    for user in users:
        contact = read_contact(http, account, f"identity:{user}")
        activities = activities_by_id(http, account, contact["id"])
        assert len(activities) == 100
        seen.extend(a["properties"]["i"] for a in activities)
    assert sorted(seen) == list(range(BULK))
