"""The web console at /console, driven in real headless Chromium against a real
server on SQLite and PostgreSQL, plus its HTTP rules (sign-in, CSRF, sessions,
tenants, headers, the live tail's filter) checked with plain HTTP.

Screenshots of every page (1280x800) go to ``EVENTYARD_SCREENSHOT_DIR``, by
default ``build/console-screenshots/`` at the repository root.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from eventyard.core.model import NewAccount
from eventyard.dialects.registry import create_account
from eventyard.storage.database import Database
from tests.e2e.console_support import page_csrf, shoot, sign_in, sign_in_http, unique
from tests.support import find_contact, netcore_event

UPLOAD = "/v1/activity/upload"


# -- helpers ---------------------------------------------------------------


def send_netcore(http: httpx.Client, account: NewAccount, events: list[dict[str, Any]]) -> None:
    r = http.post(UPLOAD, json=events, headers={"api-key": account.netcore_api_key})
    assert r.status_code == 200, r.text


def now_stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def other_account(store: Database) -> NewAccount:
    return create_account(store, f"other-{unique()}")


# -- in the browser --------------------------------------------------------


class TestInTheBrowser:
    def test_sign_in_search_a_netcore_contact_and_read_its_timeline(
        self,
        page: Page,
        http: httpx.Client,
        account: NewAccount,
        backend: str,
    ) -> None:
        """Sign in, find a contact made through the Netcore API by an e-mail prefix,
        open it: identifiers, attributes, lists, the anonymous -> known conversion,
        and its timeline newest first with each activity's properties."""
        tag = unique()
        anon = f"anon-{tag}"
        send_netcore(
            http,
            account,
            [
                netcore_event(
                    identity=None,
                    anonid=anon,
                    activity_name="Page Browse",
                    timestamp="2025-09-30T08:00:00Z",
                    activity_params={"page": "/home"},
                )
            ],
        )
        send_netcore(
            http,
            account,
            [
                netcore_event(
                    identity=f"cust-{tag}",
                    anonid=anon,
                    email=f"Jane.{tag}@Example.com",
                    activity_name="Add To Cart",
                    timestamp="2025-09-30T09:00:00Z",
                    activity_params={"currency": "INR", "sku": f"sku-{tag}"},
                )
            ],
        )
        contact = find_contact(http, account, f"identity:cust-{tag}")
        assert contact is not None

        page.goto("/console/sign-in")
        shoot(page, "sign-in", backend)
        sign_in(page, account)

        page.get_by_role("link", name="Contacts").click()
        page.get_by_label("Identifier, e-mail prefix or contact id").fill(f"jane.{tag}@ex")
        page.get_by_role("button", name="Search").click()
        results = page.locator("#results tbody tr")
        expect(results).to_have_count(1)
        expect(results.first).to_contain_text(f"email:jane.{tag}@example.com")
        shoot(page, "contact-search", backend)

        page.get_by_role("link", name=contact["id"]).click()
        expect(page.get_by_role("heading", level=1)).to_contain_text(contact["id"])
        expect(page.locator("#identifiers")).to_contain_text(f"cust-{tag}")
        expect(page.locator("#identifiers")).to_contain_text(anon)
        expect(page.locator("#identity-history")).to_contain_text("conver")
        items = page.locator("#timeline-section ol.timeline > li")
        expect(items).to_have_count(2)
        expect(items.nth(0)).to_contain_text("Add To Cart")  # newest first
        expect(items.nth(1)).to_contain_text("Page Browse")
        expect(page.get_by_text(f'"sku": "sku-{tag}"')).to_be_hidden()
        items.nth(0).locator("summary").click()
        expect(items.nth(0).locator("pre")).to_contain_text(f'"sku": "sku-{tag}"')
        shoot(page, "contact", backend)

    def test_timeline_pages_through_the_read_api_cursor(
        self, page: Page, http: httpx.Client, account: NewAccount, backend: str
    ) -> None:
        """More activities than a page: "Older activities" appends the next page."""
        tag = unique()
        events = [
            netcore_event(
                identity=f"pager-{tag}",
                activity_name=f"Step {n:02d}",
                timestamp=f"2025-09-01T{n // 60:02d}:{n % 60:02d}:00Z",
            )
            for n in range(60)
        ]
        send_netcore(http, account, events)
        contact = find_contact(http, account, f"identity:pager-{tag}")
        assert contact is not None
        sign_in(page, account)
        page.goto(f"/console/contacts/{contact['id']}")
        items = page.locator("#timeline-section ol.timeline > li")
        expect(items).to_have_count(50)
        expect(items.first).to_contain_text("Step 59")
        page.get_by_role("link", name="Older activities").click()
        expect(items).to_have_count(60)
        expect(items.last).to_contain_text("Step 00")
        expect(page.locator("#timeline-end")).to_have_text("No older activities.")

    def test_overview_charts_the_events_received_with_their_totals(
        self, page: Page, http: httpx.Client, account: NewAccount, backend: str
    ) -> None:
        """The chart and its tables total exactly what was sent this hour; the rejected
        record shows with its index and reason."""
        tag = unique()
        names = ["Add To Cart"] * 7 + ["Product View"] * 4 + ["Checkout"] * 2
        send_netcore(
            http,
            account,
            [
                netcore_event(
                    identity=f"ov-{tag}-{i % 3}", activity_name=name, timestamp=now_stamp()
                )
                for i, name in enumerate(names)
            ],
        )
        bad = http.post(
            UPLOAD,
            json=[netcore_event(identity=f"ov-{tag}", activity_name=None)],
            headers={"api-key": account.netcore_api_key},
        )
        assert bad.status_code == 400, bad.text

        sign_in(page, account)
        for figure in ("#chart-dialect", "#chart-name"):
            expect(page.locator(figure)).to_have_attribute("data-rendered", "true")
            expect(page.locator(f"{figure} canvas")).to_have_count(1)
        expect(page.locator("#chart-dialect .chart-total")).to_have_text(str(len(names)))
        expect(page.locator("#chart-name .chart-total")).to_have_text(str(len(names)))
        expect(page.locator("#events-total")).to_have_text(str(len(names)))
        dialects = page.locator("#table-dialect tbody tr")
        expect(dialects).to_have_count(1)
        expect(dialects.first).to_have_text(re.compile(rf"netcore\s*{len(names)}"))
        by_name = page.locator("#table-name tbody")
        expect(by_name.locator("tr").nth(0)).to_have_text(re.compile(r"Add To Cart\s*7"))
        expect(by_name.locator("tr").nth(1)).to_have_text(re.compile(r"Product View\s*4"))
        expect(by_name.locator("tr").nth(2)).to_have_text(re.compile(r"Checkout\s*2"))
        expect(page.locator("#rejected-total")).to_have_text("1")
        expect(page.locator("#rejections tbody tr").first).to_contain_text("record 0")
        expect(page.locator("#rejections tbody tr").first).to_contain_text("activity_name")
        expect(page.locator('#totals [data-figure="activities"]')).to_have_text(str(len(names)))
        expect(page.locator('#totals [data-figure="known"]')).to_have_text("3")
        shoot(page, "overview", backend)

    def test_a_job_progress_bar_reaches_100(
        self, page: Page, http: httpx.Client, account: NewAccount, backend: str
    ) -> None:
        """The jobs page, left open, follows an export started after it loaded."""
        tag = unique()
        send_netcore(http, account, [netcore_event(identity=f"job-{tag}", timestamp=now_stamp())])
        sign_in(page, account)
        page.get_by_role("link", name="Jobs").click()
        expect(page.locator("#job-rows")).to_contain_text("No jobs yet.")
        r = http.post(
            "/v2/contactactivityexport",
            json={"exportType": "json", "name": f"console-{tag}"},
            auth=(account.cordial_api_key, ""),
        )
        assert r.status_code == 202, r.text
        job_id = r.json()["jobID"]
        row = page.locator(f"#job-{job_id}")
        expect(row.locator("progress")).to_have_attribute("value", "100", timeout=60_000)
        expect(row).to_contain_text("completed")
        expect(row).to_contain_text("100 %")
        expect(row).to_contain_text("rows 1")
        shoot(page, "jobs", backend)

    def test_the_live_tail_shows_an_event_sent_during_the_test(
        self, page: Page, http: httpx.Client, account: NewAccount, backend: str
    ) -> None:
        """Filtered by event name, the tail shows the matching event and not the other."""
        tag = unique()
        wanted = f"Tail {tag}"
        sign_in(page, account)
        page.goto(f"/console/tail?dialect=netcore&name={wanted.replace(' ', '+')}")
        expect(page.locator("#tail-status")).to_have_attribute("data-state", "open")
        send_netcore(
            http,
            account,
            [
                netcore_event(
                    identity=f"tail-{tag}", activity_name="Other Event", timestamp=now_stamp()
                ),
                netcore_event(
                    identity=f"tail-{tag}",
                    activity_name=wanted,
                    timestamp=now_stamp(),
                    activity_params={"order": tag},
                ),
            ],
        )
        arrived = page.locator("#tail > li")
        expect(arrived).to_have_count(1)
        expect(arrived.first).to_contain_text(wanted)
        arrived.first.locator("summary").click()
        expect(arrived.first.locator("pre")).to_contain_text(tag)
        shoot(page, "tail", backend)
        assert page.locator('#tail > li[data-name="Other Event"]').count() == 0

    def test_another_accounts_contact_cannot_be_reached(
        self,
        page: Page,
        http: httpx.Client,
        account: NewAccount,
        other_account: NewAccount,
        backend: str,
    ) -> None:
        tag = unique()
        send_netcore(http, other_account, [netcore_event(identity=f"theirs-{tag}")])
        theirs = find_contact(http, other_account, f"identity:theirs-{tag}")
        assert theirs is not None
        sign_in(page, account)
        response = page.goto(f"/console/contacts/{theirs['id']}")
        assert response is not None
        assert response.status == 404
        expect(page.get_by_role("alert")).to_have_text("There is no such contact in this account.")
        shoot(page, "not-found", backend)
        page.goto(f"/console/contacts?q=theirs-{tag}")
        expect(page.locator("#results tbody")).to_have_text("No contact matches.")
        page.goto(f"/console/contacts?q={theirs['id']}")
        expect(page.locator("#results tbody")).to_have_text("No contact matches.")


# -- over plain HTTP -------------------------------------------------------


class TestSignIn:
    def test_pages_redirect_to_the_sign_in_form_and_data_answers_401(
        self, console: httpx.Client
    ) -> None:
        for path in ("/console", "/console/contacts", "/console/jobs", "/console/tail"):
            r = console.get(path)
            assert r.status_code == 303, path
            assert r.headers["location"] == "/console/sign-in"
        for path in ("/console/overview/totals", "/console/jobs/rows", "/console/tail/stream"):
            assert console.get(path).status_code == 401, path

    def test_the_session_cookie_is_httponly_strict_and_signed(
        self, console: httpx.Client, account: NewAccount
    ) -> None:
        r = sign_in_http(console, account.admin_token)
        assert r.status_code == 303
        assert r.headers["location"] == "/console"
        cookie = next(
            c for c in r.headers.get_list("set-cookie") if c.startswith("eventyard_console=")
        )
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert "Path=/console" in cookie
        assert console.get("/console").status_code == 200
        # A cookie whose signature does not match opens nothing.
        value = console.cookies.get("eventyard_console", path="/console")
        assert value is not None
        token, _, mac = value.rpartition(".")
        forged = f"{token}.{'0' * len(mac)}"
        with httpx.Client(base_url=str(console.base_url)) as other:
            other.cookies.set("eventyard_console", forged, path="/console")
            assert other.get("/console").status_code == 303

    def test_a_wrong_token_is_refused(self, console: httpx.Client) -> None:
        r = sign_in_http(console, "not-a-token")
        assert r.status_code == 401
        assert "That is not an admin or read token of any account." in r.text
        assert console.get("/console").status_code == 303

    def test_sign_in_without_the_forms_csrf_token_is_refused(
        self, console: httpx.Client, account: NewAccount
    ) -> None:
        console.get("/console/sign-in")
        r = console.post(
            "/console/sign-in", data={"csrf_token": "guess", "token": account.admin_token}
        )
        assert r.status_code == 403
        assert console.get("/console").status_code == 303

    def test_sign_out_needs_the_csrf_token_and_ends_the_session_everywhere(
        self, console: httpx.Client, account: NewAccount
    ) -> None:
        sign_in_http(console, account.admin_token)
        page = console.get("/console")
        assert page.status_code == 200
        cookie = console.cookies.get("eventyard_console", path="/console")
        assert console.post("/console/sign-out", data={"csrf_token": "guess"}).status_code == 403
        assert console.get("/console").status_code == 200
        r = console.post("/console/sign-out", data={"csrf_token": page_csrf(page.text)})
        assert r.status_code == 303
        assert r.headers["location"] == "/console/sign-in"
        # The old cookie, replayed, no longer opens anything: the session row is gone.
        with httpx.Client(base_url=str(console.base_url)) as replay:
            replay.cookies.set("eventyard_console", str(cookie), path="/console")
            assert replay.get("/console").status_code == 303
            assert replay.get("/console/jobs/rows").status_code == 401

    def test_console_responses_carry_the_security_headers(
        self, console: httpx.Client, account: NewAccount
    ) -> None:
        sign_in_http(console, account.admin_token)
        for path in ("/console/sign-in", "/console", "/console/static/console.js"):
            r = console.get(path)
            assert r.status_code == 200, path
            csp = r.headers["content-security-policy"]
            assert "script-src 'self'" in csp
            assert "unsafe-inline" not in csp
            assert "frame-ancestors 'none'" in csp
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["referrer-policy"] == "no-referrer"


class TestTenants:
    def test_another_accounts_contact_and_timeline_answer_404(
        self,
        console: httpx.Client,
        http: httpx.Client,
        account: NewAccount,
        other_account: NewAccount,
    ) -> None:
        tag = unique()
        send_netcore(http, other_account, [netcore_event(identity=f"x-{tag}")])
        theirs = find_contact(http, other_account, f"identity:x-{tag}")
        assert theirs is not None
        sign_in_http(console, account.admin_token)
        assert console.get(f"/console/contacts/{theirs['id']}").status_code == 404
        assert console.get(f"/console/contacts/{theirs['id']}/timeline").status_code == 404
        assert theirs["id"] not in console.get("/console/contacts", params={"q": f"x-{tag}"}).text


class TestLiveTail:
    def test_the_stream_sends_only_activities_of_the_filter(
        self, console: httpx.Client, http: httpx.Client, account: NewAccount
    ) -> None:
        tag = unique()
        sign_in_http(console, account.admin_token)
        seen: list[str] = []
        with console.stream(
            "GET", "/console/tail/stream", params={"name": f"Wanted {tag}"}, timeout=40
        ) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            send_netcore(
                http,
                account,
                [
                    netcore_event(
                        identity=f"s-{tag}", activity_name=f"Unwanted {tag}", timestamp=now_stamp()
                    ),
                    netcore_event(
                        identity=f"s-{tag}", activity_name=f"Wanted {tag}", timestamp=now_stamp()
                    ),
                ],
            )
            for line in stream.iter_lines():
                if line.startswith("data: ") and "name" in line:
                    seen.append(line)
                    break
        assert len(seen) == 1
        assert f'"name":"Wanted {tag}"' in seen[0]
