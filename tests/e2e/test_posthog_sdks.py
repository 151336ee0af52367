"""PostHog's Python SDK (PyPI ``posthog``) against a real eventyard server.

``posthog`` (the ``test`` extra) is used as shipped; only its ``host`` is the
server's. Its queue, background consumer thread, batching (100 events a
request), gzip bodies (``gzip=True``: ``Content-Encoding: gzip``) and retry
logic run; feature flags are not configured (no personal API key), so the
SDK never calls ``/flags``. The only instrument is a ``requests`` response
hook on the SDK's own session, which records what was really sent.
Everything is read back through eventyard's read API (``/api/v1/...``).

Issue 22, done when: "tests install its official SDK from PyPI ... drive it
against a real eventyard server with only the host (or base URL) changed, and
read the result back through /api/v1: every call type the SDK offers, a flush
of 1,000 events, identify and alias, and a contact first seen through Netcore
receiving the events of the same person."
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import posthog.request as posthog_request
import pytest
import requests
from posthog import Posthog

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
    """The SDK client pointed at the server, and what it saw."""

    client: Any
    errors: list[Any] = field(default_factory=list)
    encodings: list[str | None] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)


def hook_session(session: requests.Session, sdk: Sdk) -> Callable[[], None]:
    """Record each request the SDK's own session sends; returns the undo."""

    def seen(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        sdk.encodings.append(response.request.headers.get("Content-Encoding"))
        sdk.statuses.append(response.status_code)
        sdk.paths.append(str(response.request.path_url))

    session.hooks["response"].append(seen)
    return lambda: session.hooks["response"].remove(seen)


@pytest.fixture(params=[True, False], ids=["gzip", "plain"])
def sdk(request: pytest.FixtureRequest, server: Server, account: NewAccount) -> Iterator[Sdk]:
    holder = Sdk(client=None)

    def on_error(error: Exception, batch: Any) -> None:
        holder.errors.append(error)

    holder.client = Posthog(
        account.posthog_api_key,
        host=server.base_url,
        gzip=bool(request.param),
        on_error=on_error,
        max_retries=1,
    )
    undo = hook_session(posthog_request._session, holder)
    try:
        yield holder
    finally:
        holder.client.shutdown()
        undo()


def uid() -> str:
    return f"ph-{uuid.uuid4().hex[:10]}"


def test_every_call_type_reaches_a_contact_first_seen_through_netcore(
    sdk: Sdk, http: httpx.Client, account: NewAccount
) -> None:
    """capture (with groups, $pageview, $screen), set, set_once, group_identify, alias and
    capture_exception; the person was first seen through Netcore with the same
    ``identity`` and the PostHog events join that contact (``distinct_id`` is the
    ``identity`` kind). An alias nobody has yet joins the contact, so later events sent
    with it land there too."""
    user, other_id = uid(), uid()
    upload_netcore_event(http, account, user)
    netcore_contact = read_contact(http, account, f"identity:{user}")

    client = sdk.client
    client.capture(
        "Order Completed",
        distinct_id=user,
        properties={"revenue": 14.99, "currency": "EUR", "items": [{"sku": "A-1"}]},
        groups={"company": "acme"},
    )
    client.capture("$pageview", distinct_id=user, properties={"$current_url": "https://x.test/a"})
    client.capture("$screen", distinct_id=user, properties={"$screen_name": "Settings"})
    client.set(distinct_id=user, properties={"name": "Pat", "plan": "pro"})
    client.set_once(distinct_id=user, properties={"plan": "free", "first_seen": "2026-01-01"})
    client.group_identify(
        "company", "acme", {"name": "Acme", "employees": 42}, distinct_id="$company_acme"
    )
    client.alias(previous_id=user, distinct_id=other_id)
    client.capture("After Alias", distinct_id=other_id)
    client.capture("Nobody In Particular")  # no distinct_id: a personless event
    try:
        raise ValueError("boom")
    except ValueError as exc:
        client.capture_exception(exc, distinct_id=user)
    client.flush()

    assert sdk.errors == []
    assert sdk.statuses
    assert set(sdk.statuses) == {200}
    assert set(sdk.paths) == {"/batch/"}
    contact = read_contact(http, account, f"identity:{user}")
    assert contact["id"] == netcore_contact["id"]
    assert identifier_pairs(contact) >= {
        ("identity", user),
        ("identity", other_id),
    }
    attributes = contact["attributes"]
    assert (attributes["name"], attributes["plan"], attributes["first_seen"]) == (
        "Pat",
        "pro",  # $set_once does not overwrite
        "2026-01-01",
    )
    assert [g["group_id"] for g in contact["groups"]] == ["company:acme"]
    stand_in = read_contact(http, account, "anonid:$company_acme")
    assert [(g["group_id"], g["traits"]) for g in stand_in["groups"]] == [
        ("company:acme", {"name": "Acme", "employees": 42})
    ]

    by_name = {a["name"]: a for a in activities_by_id(http, account, contact["id"], one_page=True)}
    assert set(by_name) == {
        "Add To Cart",  # the Netcore event
        "Order Completed",
        "$pageview",
        "$screen",
        "After Alias",
        "$exception",
    }
    assert by_name["Add To Cart"]["dialect"] == "netcore"
    order = by_name["Order Completed"]
    assert order["dialect"] == "posthog"
    assert order["source"] == "posthog-python"
    assert order["properties"]["revenue"] == 14.99
    assert order["properties"]["items"] == [{"sku": "A-1"}]
    assert order["properties"]["$groups"] == {"company": "acme"}
    assert uuid.UUID(order["context"]["uuid"])
    assert by_name["$pageview"]["properties"]["$current_url"] == "https://x.test/a"
    assert by_name["$exception"]["properties"]["$exception_list"][0]["type"] == "ValueError"


def test_a_flush_of_1000_events_is_stored_once_each(
    sdk: Sdk, http: httpx.Client, account: NewAccount
) -> None:
    """1000 queued captures, then ``flush()``: the SDK sends them in batches of 100 to
    ``/batch/`` (gzip or plain as configured); every event is stored exactly once."""
    user = uid()
    for i in range(BULK):
        sdk.client.capture("Bulk Event", distinct_id=user, properties={"i": i})
    sdk.client.flush()

    assert sdk.errors == []
    assert len(sdk.statuses) >= BULK // 100
    assert set(sdk.statuses) == {200}
    gzip = sdk.client.gzip
    assert set(sdk.encodings) == ({"gzip"} if gzip else {None})
    contact = read_contact(http, account, f"identity:{user}")
    stored = activities_by_id(http, account, contact["id"], one_page=True)
    assert len(stored) == BULK
    assert sorted(a["properties"]["i"] for a in stored) == list(range(BULK))


def test_feature_flags_unconfigured_fall_back_and_capture_goes_on(
    sdk: Sdk, http: httpx.Client, account: NewAccount
) -> None:
    """Feature flags are out of scope (docs/dialects/posthog.md): asking for one gets the
    SDK's fallback (``None``) without an exception, and captures go on being stored."""
    user = uid()
    flags = sdk.client.evaluate_flags(user)
    assert flags.get_flag("beta") is None
    assert not flags.is_enabled("beta")
    sdk.client.capture("After Flags", distinct_id=user, flags=flags)
    sdk.client.flush()
    assert sdk.errors == []
    contact = read_contact(http, account, f"identity:{user}")
    names = {a["name"] for a in activities_by_id(http, account, contact["id"], one_page=True)}
    # The SDK reports the flag it was asked for as an ordinary event: stored as sent.
    assert names == {"After Flags", "$feature_flag_called"}


def test_a_retried_event_is_stored_once_by_its_uuid(
    sdk: Sdk, http: httpx.Client, account: NewAccount
) -> None:
    """The SDK keeps an event's ``uuid`` across its retries; a second send of the same
    uuid (a retry after a lost answer) stores nothing new."""
    user, event_id = uid(), str(uuid.uuid4())
    for _ in range(2):
        sdk.client.capture("Paid", distinct_id=user, uuid=event_id, properties={"n": 1})
        sdk.client.flush()
    assert sdk.errors == []
    contact = read_contact(http, account, f"identity:{user}")
    [stored] = activities_by_id(http, account, contact["id"], one_page=True)
    assert stored["context"]["uuid"] == event_id


def test_sync_mode_and_historical_migration_are_stored(
    server: Server, http: httpx.Client, account: NewAccount
) -> None:
    """``sync_mode=True``: "one event per request", sent at once; ``historical_migration``
    (the SDK's import mode) is accepted and changes nothing."""
    errors: list[Any] = []
    client = Posthog(
        account.posthog_api_key,
        host=server.base_url,
        sync_mode=True,
        historical_migration=True,
        on_error=lambda error, batch: errors.append(error),
    )
    user = uid()
    try:
        client.capture("Imported", distinct_id=user, timestamp=datetime(2024, 5, 1, tzinfo=UTC))
        client.set(distinct_id=user, properties={"source": "import"})
    finally:
        client.shutdown()
    assert errors == []
    contact = read_contact(http, account, f"identity:{user}")
    assert contact["attributes"] == {"source": "import"}
    [stored] = activities_by_id(http, account, contact["id"], one_page=True)
    assert stored["name"] == "Imported"
    # sent_at corrects the clock skew, so the time is the timestamp give or take a second.
    occurred = datetime.fromisoformat(stored["occurred_at"])
    assert abs(occurred - datetime(2024, 5, 1, tzinfo=UTC)) < timedelta(seconds=5)
