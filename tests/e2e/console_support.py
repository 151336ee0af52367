"""Helpers of the console tests: signing in (in Chromium and over plain HTTP),
the pages' CSRF tokens and screenshots. The browser fixtures are in conftest.py."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from eventyard.core.model import NewAccount

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(
    os.environ.get(
        "EVENTYARD_SCREENSHOT_DIR",
        Path(__file__).resolve().parents[2] / "build" / "console-screenshots",
    )
)


def unique() -> str:
    return uuid.uuid4().hex[:10]


def sign_in_http(client: httpx.Client, token: str) -> httpx.Response:
    """Sign in as a browser would: fetch the form (its CSRF token and cookie), post it."""
    form = client.get("/console/sign-in")
    assert form.status_code == 200
    return client.post(
        "/console/sign-in", data={"csrf_token": page_csrf(form.text), "token": token}
    )


def page_csrf(html: str) -> str:
    """The CSRF token of a page's first form (every signed-in page has the sign-out form)."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def shoot(page: Page, name: str, backend: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{backend}-{name}.png"))


def sign_in(page: Page, account: NewAccount, token: str | None = None) -> None:
    """Sign in to the console with ``token`` (the account's admin token by default)."""
    page.goto("/console")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    page.get_by_label("Admin or read token").fill(token or account.admin_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/console$"))
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
