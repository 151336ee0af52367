"""The console's identity operations in real headless Chromium: merge with a preview,
then undo it from the identity history (issue 23: "The console's contact page shows
a merge action (with the preview) and an undo button on each merge in the identity
history")."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from eventyard.core.model import NewAccount
from tests.e2e.console_support import shoot, sign_in, unique
from tests.support import activities_by_id, find_contact, netcore_event

UPLOAD = "/v1/activity/upload"


def test_merge_with_preview_then_undo_from_the_identity_history(
    page: Page, http: httpx.Client, account: NewAccount, backend: str
) -> None:
    tag = unique()
    events = [
        netcore_event(identity=f"jane-{tag}", activity_name="Browse"),
        netcore_event(identity=f"old-{tag}", activity_name="Buy"),
        netcore_event(identity=f"old-{tag}", activity_name="Return"),
    ]
    r = http.post(UPLOAD, json=events, headers={"api-key": account.netcore_api_key})
    assert r.status_code == 200, r.text
    jane = find_contact(http, account, f"identity:jane-{tag}")
    old = find_contact(http, account, f"identity:old-{tag}")
    assert jane is not None
    assert old is not None

    sign_in(page, account)
    page.goto(f"/console/contacts/{jane['id']}")
    page.get_by_label("Merge another contact into this one").fill(old["id"])
    page.get_by_role("button", name="Preview merge…").click()
    counts = page.locator("#merge-counts")
    expect(counts).to_contain_text("Identifiers")
    expect(counts.locator("tr", has_text="Activities")).to_contain_text("2")
    expect(counts.locator("tr", has_text="Identifiers")).to_contain_text("1")
    shoot(page, "merge-preview", backend)
    # The preview changed nothing.
    assert find_contact(http, account, f"identity:old-{tag}")["id"] == old["id"]  # type: ignore[index]

    page.get_by_role("button", name="Merge", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(jane["id"])
    expect(page.locator("#identifiers")).to_contain_text(f"old-{tag}")
    expect(page.locator("#identity-history")).to_contain_text("merged")
    assert len(activities_by_id(http, account, jane["id"], one_page=True)) == 3
    shoot(page, "merged-contact", backend)

    page.get_by_role("button", name="Undo merge").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(jane["id"])
    expect(page.locator("#identity-history")).to_contain_text("reverted")
    expect(page.locator("#identifiers")).not_to_contain_text(f"old-{tag}")
    expect(page.get_by_role("button", name="Undo merge")).to_have_count(0)
    assert find_contact(http, account, f"identity:old-{tag}")["id"] == old["id"]  # type: ignore[index]
    assert len(activities_by_id(http, account, old["id"], one_page=True)) == 2
    assert len(activities_by_id(http, account, jane["id"], one_page=True)) == 1


def test_a_preview_naming_an_unknown_contact_says_so(
    page: Page, account: NewAccount, http: httpx.Client, backend: str
) -> None:
    tag = unique()
    r = http.post(
        UPLOAD,
        json=[netcore_event(identity=f"solo-{tag}")],
        headers={"api-key": account.netcore_api_key},
    )
    assert r.status_code == 200, r.text
    solo = find_contact(http, account, f"identity:solo-{tag}")
    assert solo is not None
    sign_in(page, account)
    response = page.goto(f"/console/contacts/{solo['id']}/merge?other={solo['id']}")
    assert response is not None
    assert response.status == 422
    expect(page.locator("#merge-error")).to_contain_text("cannot be merged into itself")
    response = page.goto(f"/console/contacts/{solo['id']}/merge?other=0HB5K0ZJ3VQ0X1M5Q8T4N2P6")
    assert response is not None
    assert response.status == 404
    expect(page.locator("#merge-error")).to_contain_text("No contact has the id")
