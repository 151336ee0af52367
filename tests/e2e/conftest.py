"""Fixtures of the tests that run eventyard as real processes: scratch databases, and
the console tests' Chromium and HTTP client."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.console_support import CHROMIUM
from tests.support import Server, scratch_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own with nothing in it, not even the schema: a SQLite file in
    ``tmp_path`` or a fresh PostgreSQL database beside the one of ``postgres_url``."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cli.db'}"
        return
    with scratch_postgres_database(str(request.getfixturevalue("postgres_url"))) as url:
        yield url


# Module scope: Playwright's sync API keeps an event loop running in this
# thread while it is open, which other modules' asyncio.run() must not meet.
@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium (scripts/test installs it); with CI=true a missing one fails."""
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium (scripts/test does)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Browser, server: Server) -> Iterator[Page]:
    """A tab of its own (no cookies shared with other tests) on the test server."""
    context = chromium.new_context(
        viewport={"width": 1280, "height": 800}, base_url=server.base_url
    )
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    yield tab
    context.close()


@pytest.fixture
def console(server: Server) -> Iterator[httpx.Client]:
    """A client of the console's pages with a cookie jar of its own (not signed in)."""
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield client
