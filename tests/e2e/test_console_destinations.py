"""The console's Destinations pages, in real headless Chromium against a real server on
SQLite and PostgreSQL, delivering to a real webhook receiver.

docs/console.md, "Destinations": the list, one page per destination with its figures
(enabled, delivered, pending, failed attempts, dead letters, lag, last error), its dead
letters with the receiver's answer, and a replay button that sends them again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from eventyard.dialects.registry import create_account
from eventyard.storage.database import Database
from tests.e2e.console_support import page_csrf, shoot, sign_in, sign_in_http, unique
from tests.e2e.destination_support import wait_for, webhook_receiver
from tests.e2e.test_destinations import FAST_DELIVERY
from tests.support import Server, admin, netcore_event, own_database, running_server


@pytest.fixture(scope="module")
def hub(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: Any
) -> Iterator[tuple[Server, Database]]:
    """A server whose delivery threads may reach 127.0.0.1, on a database of its own."""
    if backend == "postgresql":
        request.getfixturevalue("postgres_url")
    directory = tmp_path_factory.mktemp(f"console-destinations-{backend}")
    with (
        own_database(backend, directory) as url,
        running_server(url, directory / "server.log", FAST_DELIVERY) as server,
    ):
        store = Database.from_url(url, pool_size=2)
        try:
            yield server, store
        finally:
            store.dispose()


@pytest.fixture
def tab(chromium: Browser, hub: tuple[Server, Database]) -> Iterator[Page]:
    context = chromium.new_context(
        viewport={"width": 1280, "height": 800}, base_url=hub[0].base_url
    )
    found = context.new_page()
    found.set_default_timeout(20_000)
    yield found
    context.close()


def test_a_destinations_dead_letters_are_shown_and_replayed_from_its_page(
    tab: Page, hub: tuple[Server, Database], backend: str
) -> None:
    server, store = hub
    account = create_account(store, f"console-{unique()}")
    with (
        webhook_receiver() as receiver,
        httpx.Client(base_url=server.base_url, timeout=30) as api,
    ):
        r = api.post(
            "/api/v1/destinations",
            json={
                "name": f"warehouse-{unique()}",
                "kind": "webhook",
                "url": receiver.url,
                "credentials": {"secret": "not-the-receivers"},
            },
            headers=admin(account),
        )
        assert r.status_code == 201, r.text
        destination = r.json()
        path = f"/api/v1/destinations/{destination['id']}"
        events = [netcore_event(identity=f"shopper-{n}") for n in range(3)]
        r = api.post(
            "/v1/activity/upload", json=events, headers={"api-key": account.netcore_api_key}
        )
        assert r.status_code == 200, r.text
        wait_for(
            lambda: api.get(path, headers=admin(account)).json()["dead"] == 3,
            what="three dead letters",
        )

        sign_in(tab, account)
        tab.get_by_role("link", name="Destinations").click()
        expect(tab).to_have_url(re.compile(r"/console/destinations$"))
        tab.get_by_role("link", name=destination["name"]).click()
        expect(tab.locator('[data-figure="dead"]')).to_have_text("3")
        expect(tab.locator('[data-figure="delivered"]')).to_have_text("0")
        expect(tab.locator("#dead-letters tbody tr")).to_have_count(3)
        expect(tab.locator("#dead-letters")).to_contain_text("401")
        expect(tab.locator("#last-error")).to_contain_text("401")
        shoot(tab, "destination-dead-letters", backend)

        # The credentials are fixed through the API; the page replays the dead letters.
        r = api.patch(
            path, json={"credentials": {"secret": receiver.secret}}, headers=admin(account)
        )
        assert r.status_code == 200, r.text
        tab.get_by_role("button", name="Replay the 3 dead letters").click()
        expect(tab.locator("#replayed")).to_contain_text("Replay queued as job")
        wait_for(lambda: len(receiver.taken) >= 3, what="the replayed activities")
        assert sorted(a["id"] for a in receiver.taken) == sorted(set(receiver.taken_ids()))
        wait_for(
            lambda: api.get(path, headers=admin(account)).json()["delivered"] == 3,
            what="three delivered",
        )
        tab.reload()
        expect(tab.locator('[data-figure="delivered"]')).to_have_text("3")
        expect(tab.locator('[data-figure="dead"]')).to_have_text("0")
        expect(tab.locator('[data-figure="pending"]')).to_have_text("0")


def test_a_read_session_sees_a_destination_but_cannot_replay_it(
    hub: tuple[Server, Database],
) -> None:
    server, store = hub
    account = create_account(store, f"console-read-{unique()}")
    with httpx.Client(base_url=server.base_url, timeout=30) as api:
        r = api.post(
            "/api/v1/destinations",
            json={
                "name": "read-only",
                "kind": "webhook",
                "url": "http://127.0.0.1:9/hook",
                "credentials": {"secret": "s"},
            },
            headers=admin(account),
        )
        destination = r.json()["id"]
        read = api.post("/api/v1/credentials", json={"kind": "read"}, headers=admin(account))
        token = read.json()["secret"]
    with httpx.Client(base_url=server.base_url, timeout=30) as console:
        assert sign_in_http(console, token).status_code in (200, 303)
        page = console.get(f"/console/destinations/{destination}")
        assert page.status_code == 200
        assert "Replay the" not in page.text
        r = console.post(
            f"/console/destinations/{destination}/replay",
            data={"csrf_token": page_csrf(page.text), "dead_letters": "true"},
        )
        assert r.status_code == 403
        other = create_account(store, f"console-other-{unique()}")
    with httpx.Client(base_url=server.base_url, timeout=30) as console:
        sign_in_http(console, other.admin_token)
        assert console.get(f"/console/destinations/{destination}").status_code == 404
