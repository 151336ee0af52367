"""Segment's and RudderStack's Python SDKs, from PyPI, against a real eventyard server.

``segment-analytics-python`` and ``rudder-sdk-python`` (the ``test`` extra)
are used as shipped; only their ``host`` is the server's. Nothing is a fake:
their queue, background consumer thread, batching (100 calls a request),
gzip bodies, Basic auth with the write key and retry logic run. The only
instrument is a ``requests`` response hook on each SDK's own session, which
records the ``Content-Encoding`` of what was really sent. Everything is then
read back through eventyard's read API (``/api/v1/...``).

Issue 10, done when: "Tests install Segment's segment-analytics-python and
RudderStack's rudder-sdk-python from PyPI and drive them against a real
eventyard server (host override only), sending every call type, a
1000-message flush and gzip bodies; the data is checked through the read
API, and a contact that was first seen through Netcore with the same
identity receives the Segment events."
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import requests
import rudderstack.analytics.client as rudder_client
import rudderstack.analytics.request as rudder_request
import segment.analytics.client as segment_client
import segment.analytics.request as segment_request

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
    """One SDK client pointed at the server, and what it saw."""

    name: str
    client: Any
    errors: list[Any] = field(default_factory=list)
    encodings: list[str | None] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


def hook_session(session: requests.Session, sdk: Sdk) -> Callable[[], None]:
    """Record each request the SDK's own session sends; returns the undo."""

    def seen(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        sdk.encodings.append(response.request.headers.get("Content-Encoding"))
        sdk.statuses.append(response.status_code)

    session.hooks["response"].append(seen)
    return lambda: session.hooks["response"].remove(seen)


@pytest.fixture(params=["segment-analytics-python", "rudder-sdk-python"])
def sdk(request: pytest.FixtureRequest, server: Server, account: NewAccount) -> Iterator[Sdk]:
    name = str(request.param)
    holder = Sdk(name=name, client=None)

    def on_error(error: Exception, batch: Any) -> None:
        holder.errors.append(error)

    if name == "segment-analytics-python":
        holder.client = segment_client.Client(
            account.segment_write_key,
            host=server.base_url,
            gzip=True,
            on_error=on_error,
            max_retries=2,
        )
        undo = hook_session(segment_request._session, holder)
    else:
        holder.client = rudder_client.Client(
            account.segment_write_key,
            host=server.base_url,
            gzip=True,
            on_error=on_error,
            max_retries=2,
        )
        undo = hook_session(rudder_request._session, holder)
    try:
        yield holder
    finally:
        holder.client.shutdown()
        undo()


def uid() -> str:
    return f"sdk-{uuid.uuid4().hex[:10]}"


def test_every_call_type_reaches_a_contact_first_seen_through_netcore(
    sdk: Sdk, http: httpx.Client, account: NewAccount
) -> None:
    """identify, track, page, screen, group and alias from the SDK; the person was
    first seen through Netcore with the same ``identity``, and the Segment events join
    that contact (``userId`` is the ``identity`` kind)."""
    user, anon = uid(), uid()
    upload_netcore_event(http, account, user)
    netcore_contact = read_contact(http, account, f"identity:{user}")

    client = sdk.client
    client.track(anonymous_id=anon, event="Browsed", properties={"sku": "A-1"})
    client.identify(user, {"email": f"{user}@Example.com", "name": "Pat", "plan": "pro"})
    client.alias(anon, user)
    client.track(user, "Order Completed", {"revenue": 14.99, "currency": "EUR"})
    client.page(user, "Docs", "Getting started", {"url": "https://example.com/start"})
    client.screen(user, "Settings", "Profile", {"theme": "dark"})
    client.group(user, "acme-inc", {"name": "Acme", "employees": 42})
    client.flush()

    assert sdk.errors == []
    assert sdk.statuses
    assert set(sdk.statuses) == {200}
    contact = read_contact(http, account, f"identity:{user}")
    assert contact["id"] == netcore_contact["id"]
    assert identifier_pairs(contact) >= {
        ("identity", user),
        ("email", f"{user}@example.com"),
        ("anonid", anon),
    }
    assert contact["attributes"]["name"] == "Pat"
    assert contact["attributes"]["plan"] == "pro"
    [group] = contact["groups"]
    assert (group["group_id"], group["traits"]) == ("acme-inc", {"name": "Acme", "employees": 42})

    by_name = {a["name"]: a for a in activities_by_id(http, account, contact["id"], one_page=True)}
    assert set(by_name) == {
        "Add To Cart",  # the Netcore event
        "Browsed",  # sent anonymously, merged in by the alias
        "Order Completed",
        "Page Viewed",
        "Screen Viewed",
    }
    assert by_name["Add To Cart"]["dialect"] == "netcore"
    order = by_name["Order Completed"]
    assert order["dialect"] == "segment"
    assert order["source"] == "analytics-python"
    assert order["properties"] == {"revenue": 14.99, "currency": "EUR"}
    assert order["context"]["context"]["library"]["name"] == "analytics-python"
    assert order["context"]["messageId"]
    page = by_name["Page Viewed"]["properties"]
    assert page == {
        "url": "https://example.com/start",
        "category": "Docs",
        "name": "Getting started",
    }
    screen = by_name["Screen Viewed"]["properties"]
    assert screen == {"theme": "dark", "category": "Settings", "name": "Profile"}
    assert by_name["Browsed"]["properties"] == {"sku": "A-1"}


def test_a_flush_of_1000_calls_is_stored_once_each_gzipped(
    sdk: Sdk, http: httpx.Client, account: NewAccount
) -> None:
    """1000 queued tracks, then ``flush()``: the SDK sends them in batches of 100 with
    ``Content-Encoding: gzip``; every call is stored exactly once."""
    user = uid()
    for i in range(BULK):
        sdk.client.track(user, "Bulk Event", {"i": i})
    sdk.client.flush()

    assert sdk.errors == []
    assert len(sdk.statuses) >= BULK // 100
    assert set(sdk.statuses) == {200}
    assert set(sdk.encodings) == {"gzip"}
    contact = read_contact(http, account, f"identity:{user}")
    stored = activities_by_id(http, account, contact["id"], one_page=True)
    assert len(stored) == BULK
    assert sorted(a["properties"]["i"] for a in stored) == list(range(BULK))
    assert {a["name"] for a in stored} == {"Bulk Event"}
