"""The console's Credentials page, in real headless Chromium against a real server on
SQLite and PostgreSQL, and its rules over plain HTTP.

"Credentials that can be rotated and revoked": an admin issues a key on the page and
sees its secret once; revokes it through a confirmation, after which clients are
refused within 2 seconds; cannot revoke the account's last admin token. A console
session signed in with a read token sees every page and changes nothing: every
console route that writes (all its POST routes but sign-in and sign-out) answers
it 403. Revoking the credential a session signed in with ends the session.
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from eventyard.core.model import NewAccount
from eventyard.dialects.registry import create_account
from eventyard.storage.database import Database
from tests.e2e.console_support import page_csrf, shoot, sign_in, sign_in_http, unique
from tests.support import admin, app_routes, netcore_event

CREDENTIALS = "/api/v1/credentials"
UPLOAD = "/v1/activity/upload"
#: Clients of a revoked key are refused within 2 s; the tests give it 3.
REFUSED_WITHIN_SECONDS = 3.0
READ_ONLY = "This session signed in with a read token"
#: The console's POST routes a read session may use: they change nothing of the account.
SESSION_FORMS = {"/console/sign-in", "/console/sign-out"}


# -- helpers ---------------------------------------------------------------


@pytest.fixture
def other_account(store: Database) -> NewAccount:
    return create_account(store, f"other-{unique()}")


def issue(http: httpx.Client, account: NewAccount, kind: str) -> dict[str, Any]:
    r = http.post(CREDENTIALS, json={"kind": kind}, headers=admin(account))
    assert r.status_code == 201, r.text
    document: dict[str, Any] = r.json()
    return document


def listed(http: httpx.Client, account: NewAccount) -> dict[str, dict[str, Any]]:
    """The account's credentials by id, as the credentials API shows them."""
    r = http.get(CREDENTIALS, headers=admin(account))
    assert r.status_code == 200, r.text
    return {c["id"]: c for c in r.json()["credentials"]}


def states(http: httpx.Client, account: NewAccount) -> dict[str, tuple[str, str | None]]:
    """Each credential's status and revocation time (``last_used_at`` moves with every look)."""
    return {cid: (c["status"], c["revoked_at"]) for cid, c in listed(http, account).items()}


def credential_of(http: httpx.Client, account: NewAccount, kind: str) -> dict[str, Any]:
    """The account's first credential of ``kind`` (the one it was created with)."""
    return next(c for c in listed(http, account).values() if c["kind"] == kind)


def netcore_upload_status(http: httpx.Client, key: str) -> int:
    r = http.post(
        UPLOAD, json=[netcore_event(identity=f"key-{unique()}")], headers={"api-key": key}
    )
    return r.status_code


def poll_netcore_status(http: httpx.Client, key: str, wanted: int) -> int:
    """The Netcore API's status for ``key``, asked again until it is ``wanted`` (or 3 s)."""
    deadline = time.monotonic() + REFUSED_WITHIN_SECONDS
    while True:
        status = netcore_upload_status(http, key)
        if status == wanted or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def console_writes() -> list[tuple[str, str]]:
    """Every console route that changes something: its POST routes but sign-in and
    sign-out, read from the application itself, so that a new one is checked too."""
    writes = [
        (method, route.path)
        for route in app_routes("/console")
        if route.path not in SESSION_FORMS
        for method in sorted((route.methods or set()) - {"GET", "HEAD"})
    ]
    assert ("POST", "/console/credentials") in writes
    return writes


# -- in the browser --------------------------------------------------------


class TestInTheBrowser:
    def test_a_new_netcore_key_is_shown_once_works_and_is_refused_once_revoked(
        self, page: Page, http: httpx.Client, account: NewAccount, backend: str
    ) -> None:
        """Issue a Netcore key named "web shop": its secret is shown once and uploads
        with it; the list shows it without the secret; revoked through the confirmation,
        it is listed as revoked and the Netcore API refuses it within 2 seconds."""
        sign_in(page, account)
        page.get_by_role("link", name="Credentials").click()
        expect(page.get_by_role("heading", name="Credentials", level=1)).to_be_visible()
        page.get_by_label("Kind").select_option("netcore")
        page.get_by_label("Name").fill("web shop")
        page.get_by_role("button", name="Create credential").click()

        expect(page.get_by_role("heading", level=1)).to_have_text("New netcore credential")
        expect(page.get_by_role("alert")).to_contain_text("it is not shown again")
        secret = page.locator("#secret").inner_text()
        assert secret.startswith("eyn_")
        shoot(page, "credential-issued", backend)
        assert netcore_upload_status(http, secret) == 200

        page.get_by_role("link", name="Back to the credentials").click()
        page.reload()
        row = page.locator("#credentials tbody tr", has_text="web shop")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("netcore")
        expect(row).to_contain_text(secret[: len("eyn_") + 8])
        expect(row.locator(".tag")).to_have_text("active")
        assert secret not in page.content()
        shoot(page, "credentials", backend)

        row.get_by_role("link", name=re.compile(r"^Revoke")).click()
        heading = page.get_by_role("heading", level=1)
        expect(heading).to_contain_text("Revoke netcore")
        expect(heading).to_contain_text("web shop")
        expect(page.get_by_text("Clients using it are refused within 2 seconds")).to_be_visible()
        shoot(page, "credential-revoke", backend)
        page.get_by_role("button", name="Revoke").click()

        expect(page).to_have_url(re.compile(r"/console/credentials$"))
        expect(row.locator(".tag")).to_have_text("revoked")
        expect(row.get_by_role("link", name=re.compile(r"^Revoke"))).to_have_count(0)
        assert poll_netcore_status(http, secret, 401) == 401

    def test_the_last_admin_token_cannot_be_revoked(
        self, page: Page, http: httpx.Client, account: NewAccount, backend: str
    ) -> None:
        """Revoking the account's only admin token is refused (409) with a message
        saying why; the token stays active and keeps the session signed in."""
        only_admin = credential_of(http, account, "admin")
        sign_in(page, account)
        page.goto("/console/credentials")
        row = page.locator(f"#credential-{only_admin['id']}")
        row.get_by_role("link", name=re.compile(r"^Revoke")).click()
        with page.expect_response(
            lambda r: r.request.method == "POST" and r.url.endswith("/revoke")
        ) as answer:
            page.get_by_role("button", name="Revoke").click()
        assert answer.value.status == 409
        expect(page.get_by_role("alert")).to_contain_text(
            "This is the account's last active admin credential: create another before revoking it"
        )
        shoot(page, "credential-last-admin", backend)

        page.get_by_role("link", name="Back to the credentials").click()
        expect(page.locator(f"#credential-{only_admin['id']} .tag")).to_have_text("active")
        assert listed(http, account)[only_admin["id"]]["status"] == "active"

    def test_a_bad_expiry_is_refused_naming_the_field_and_a_good_one_is_read_as_utc(
        self, page: Page, account: NewAccount, backend: str
    ) -> None:
        sign_in(page, account)
        page.goto("/console/credentials")
        page.get_by_label("Kind").select_option("cordial")
        page.get_by_label("Name").fill("expiring")
        page.get_by_label("Expires (UTC").fill("2020-01-31T09:30")
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            page.get_by_role("button", name="Create credential").click()
        assert answer.value.status == 400
        expect(page.get_by_role("alert")).to_have_text(
            "Expires (UTC): expires_at must be in the future"
        )
        expect(page.get_by_label("Expires (UTC")).to_have_attribute("aria-invalid", "true")
        # What was typed is kept, to correct it.
        expect(page.get_by_label("Kind")).to_have_value("cordial")
        expect(page.get_by_label("Name")).to_have_value("expiring")
        expect(page.locator("#credentials")).not_to_contain_text("expiring")

        page.get_by_label("Expires (UTC").fill("2099-01-31T09:30")
        page.get_by_role("button", name="Create credential").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("New cordial credential")
        expect(page.locator("dl.issued")).to_contain_text("2099-01-31T09:30:00Z")
        page.get_by_role("link", name="Back to the credentials").click()
        row = page.locator("#credentials tbody tr", has_text="expiring")
        expect(row).to_contain_text("2099-01-31 09:30:00")

    def test_a_read_session_sees_every_page_and_no_control_that_writes(
        self, page: Page, http: httpx.Client, account: NewAccount, backend: str
    ) -> None:
        read = issue(http, account, "read")
        sign_in(page, account, token=read["secret"])
        expect(page.get_by_text("read only", exact=True)).to_be_visible()
        page.get_by_role("link", name="Contacts").click()
        expect(page.get_by_role("heading", name="Contacts", level=1)).to_be_visible()
        page.get_by_role("link", name="Jobs").click()
        expect(page.get_by_role("heading", name="Jobs", level=1)).to_be_visible()
        page.get_by_role("link", name="Credentials").click()
        expect(page.get_by_role("heading", name="Credentials", level=1)).to_be_visible()

        # Every credential of the account, the read token itself included …
        expect(page.locator("#credentials tbody tr")).to_have_count(len(listed(http, account)))
        expect(page.locator(f"#credential-{read['id']}")).to_contain_text(read["prefix"])
        # … and nothing to change them with, but a way out.
        expect(page.get_by_role("button", name="Create credential")).to_have_count(0)
        expect(page.get_by_role("link", name=re.compile(r"^Revoke"))).to_have_count(0)
        expect(page.locator("form")).to_have_count(1)
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        expect(page.get_by_text("cannot create or revoke them")).to_be_visible()
        shoot(page, "credentials-read-only", backend)

    def test_revoking_the_credential_a_session_signed_in_with_ends_the_session(
        self, page: Page, http: httpx.Client, console: httpx.Client, account: NewAccount
    ) -> None:
        """A second admin token signs in twice (the browser, a plain client), then the
        browser revokes it: both sessions end and the token no longer signs in."""
        second = issue(http, account, "admin")
        assert sign_in_http(console, second["secret"]).status_code == 303
        assert console.get("/console").status_code == 200
        sign_in(page, account, token=second["secret"])
        page.goto(f"/console/credentials/{second['id']}/revoke")
        page.get_by_role("button", name="Revoke").click()

        expect(page).to_have_url(re.compile(r"/console/sign-in$"))
        page.goto("/console/jobs")
        expect(page).to_have_url(re.compile(r"/console/sign-in$"))
        assert console.get("/console").status_code == 303
        page.get_by_label("Admin or read token").fill(second["secret"])
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_have_text(
            "That is not an admin or read token of any account."
        )
        assert listed(http, account)[second["id"]]["status"] == "revoked"


# -- over plain HTTP -------------------------------------------------------


class TestReadSessions:
    def test_the_credential_forms_answer_403_and_change_nothing(
        self, console: httpx.Client, http: httpx.Client, account: NewAccount
    ) -> None:
        read = issue(http, account, "read")
        before = states(http, account)
        netcore = credential_of(http, account, "netcore")
        assert sign_in_http(console, read["secret"]).status_code == 303
        csrf = page_csrf(console.get("/console/credentials").text)

        created = console.post("/console/credentials", data={"csrf_token": csrf, "kind": "read"})
        assert created.status_code == 403
        assert READ_ONLY in created.text
        revoked = console.post(
            f"/console/credentials/{netcore['id']}/revoke", data={"csrf_token": csrf}
        )
        assert revoked.status_code == 403
        assert READ_ONLY in revoked.text
        confirmation = console.get(f"/console/credentials/{netcore['id']}/revoke")
        assert confirmation.status_code == 403

        assert states(http, account) == before
        assert netcore_upload_status(http, account.netcore_api_key) == 200
        # The session itself lives on.
        assert console.get("/console/credentials").status_code == 200

    @pytest.mark.parametrize(("method", "path"), console_writes())
    def test_every_console_route_that_writes_refuses_a_read_session(
        self,
        console: httpx.Client,
        http: httpx.Client,
        account: NewAccount,
        method: str,
        path: str,
    ) -> None:
        read = issue(http, account, "read")
        before = states(http, account)
        netcore = credential_of(http, account, "netcore")
        assert sign_in_http(console, read["secret"]).status_code == 303
        csrf = page_csrf(console.get("/console").text)
        # Path parameters name something the account has: the refusal is the role's.
        concrete = re.sub(r"\{\w+\}", netcore["id"], path)

        r = console.request(method, concrete, data={"csrf_token": csrf})
        assert r.status_code == 403, r.text
        assert READ_ONLY in r.text
        assert states(http, account) == before


class TestAdminForms:
    def test_a_form_without_the_sessions_csrf_token_changes_nothing(
        self, console: httpx.Client, http: httpx.Client, account: NewAccount
    ) -> None:
        before = states(http, account)
        netcore = credential_of(http, account, "netcore")
        sign_in_http(console, account.admin_token)
        created = console.post("/console/credentials", data={"csrf_token": "guess", "kind": "read"})
        assert created.status_code == 403
        assert "This form has expired" in created.text
        revoked = console.post(
            f"/console/credentials/{netcore['id']}/revoke", data={"kind": "netcore"}
        )
        assert revoked.status_code == 403
        assert states(http, account) == before

    def test_a_clevertap_passcode_is_shown_with_the_accounts_clevertap_account_id(
        self, console: httpx.Client, http: httpx.Client, account: NewAccount
    ) -> None:
        """CleverTap clients send an account id beside the passcode: the new passcode
        keeps the account's, and the page shows both (this once), uncached."""
        account_id = credential_of(http, account, "clevertap")["account_id"]
        sign_in_http(console, account.admin_token)
        csrf = page_csrf(console.get("/console/credentials").text)
        r = console.post("/console/credentials", data={"csrf_token": csrf, "kind": "clevertap"})
        assert r.status_code == 201
        assert r.headers["cache-control"] == "no-store"
        secret = re.search(r'id="secret">([^<]+)<', r.text)
        shown_id = re.search(r'id="public-id">([^<]+)<', r.text)
        assert secret is not None
        assert shown_id is not None
        assert shown_id.group(1) == account_id
        assert "it is not shown again" in r.text
        issued = [c for c in listed(http, account).values() if c["kind"] == "clevertap"]
        assert len(issued) == 2
        assert {c["account_id"] for c in issued} == {account_id}
        assert secret.group(1) not in console.get("/console/credentials").text

    def test_another_accounts_credential_is_not_found(
        self,
        console: httpx.Client,
        http: httpx.Client,
        account: NewAccount,
        other_account: NewAccount,
    ) -> None:
        theirs = credential_of(http, other_account, "netcore")
        sign_in_http(console, account.admin_token)
        csrf = page_csrf(console.get("/console/credentials").text)
        for r in (
            console.get(f"/console/credentials/{theirs['id']}/revoke"),
            console.post(f"/console/credentials/{theirs['id']}/revoke", data={"csrf_token": csrf}),
            console.post("/console/credentials/not-an-id/revoke", data={"csrf_token": csrf}),
        ):
            assert r.status_code == 404, r.url
            assert "There is no such credential in this account." in r.text
        assert listed(http, other_account)[theirs["id"]]["status"] == "active"
        assert netcore_upload_status(http, other_account.netcore_api_key) == 200
