"""The credentials API (issue 20) against a real server, and what a read token may do.

"A credential is a row of its own: id, kind, a short non-secret prefix …
Kinds: one per dialect that has a secret …, plus admin (everything on
/api/v1 and the console) and read (the GET endpoints of /api/v1 and the
console, no writes, no erasure …)."
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from eventyard.core.model import NewAccount
from eventyard.dialects.registry import create_account
from eventyard.storage.database import Database
from tests.support import admin, app_routes, netcore_event

BASE = "/api/v1/credentials"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def issue(http: httpx.Client, account: NewAccount, **body: Any) -> dict[str, Any]:
    r = http.post(BASE, json=body, headers=admin(account))
    assert r.status_code == 201, r.text
    document: dict[str, Any] = r.json()
    return document


def listed(http: httpx.Client, account: NewAccount) -> list[dict[str, Any]]:
    r = http.get(BASE, headers=admin(account))
    assert r.status_code == 200, r.text
    credentials: list[dict[str, Any]] = r.json()["credentials"]
    return credentials


def netcore_upload(http: httpx.Client, key: str) -> httpx.Response:
    return http.post(
        "/v1/activity/upload", json=[netcore_event(identity="rotation")], headers={"api-key": key}
    )


class TestIssuing:
    def test_a_new_key_is_shown_once_and_works_beside_the_first(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        created = issue(http, account, kind="netcore", name="web shop")
        assert set(created) == {
            "id", "kind", "prefix", "name", "created_at", "expires_at", "secret"
        }  # fmt: skip
        assert created["kind"] == "netcore"
        assert created["name"] == "web shop"
        assert created["expires_at"] is None
        assert created["secret"].startswith(created["prefix"])
        assert len(created["prefix"]) < len(created["secret"]) // 3
        assert netcore_upload(http, created["secret"]).status_code == 200
        assert netcore_upload(http, account.netcore_api_key).status_code == 200

        r = http.get(BASE, headers=admin(account))
        assert created["secret"] not in r.text
        mine = next(c for c in r.json()["credentials"] if c["id"] == created["id"])
        assert mine["status"] == "active"
        assert mine["prefix"] == created["prefix"]
        assert "secret" not in mine

    def test_the_accounts_first_credentials_were_issued_one_per_kind(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        kinds = sorted(c["kind"] for c in listed(http, account))
        assert kinds == [
            "admin",
            "amplitude",
            "clevertap",
            "cordial",
            "customerio",
            "mixpanel",
            "mixpanel_import",
            "netcore",
            "ortto",
            "posthog",
            "segment",
        ]

    def test_a_clevertap_key_keeps_the_account_id_and_answers_the_passcode(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "for clevertap the body also has "account_id" and "passcode"."""
        created = issue(http, account, kind="clevertap")
        assert created["account_id"] == account.clevertap_account_id
        assert created["passcode"] == created["secret"]
        r = http.post(
            "/1/upload",
            json={"d": [{"identity": "ct-1", "type": "event", "evtName": "Viewed", "ts": 1}]},
            headers={
                "X-CleverTap-Account-Id": created["account_id"],
                "X-CleverTap-Passcode": created["passcode"],
            },
        )
        assert r.status_code == 200, r.text
        mine = next(c for c in listed(http, account) if c["id"] == created["id"])
        assert mine["account_id"] == account.clevertap_account_id

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"kind": "mixpanel-ish"}, "kind"),
            ({}, "kind"),
            ({"kind": "read", "name": "x" * 201}, "name"),
            ({"kind": "read", "expires_at": "next week"}, "expires_at"),
            ({"kind": "read", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ],
    )
    def test_a_bad_request_is_a_400_naming_the_field(
        self, http: httpx.Client, account: NewAccount, body: dict[str, Any], field: str
    ) -> None:
        r = http.post(BASE, json=body, headers=admin(account))
        assert r.status_code == 400, r.text
        assert [e["field"] for e in r.json()["error"]["errors"]] == [field]


class TestRevoking:
    def test_a_revoked_admin_token_is_refused_and_stays_listed(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        second = issue(http, account, kind="admin", name="ops")
        first = next(c for c in listed(http, account) if c["kind"] == "admin" and c["name"] is None)
        r = http.delete(f"{BASE}/{first['id']}", headers=bearer(second["secret"]))
        assert r.status_code == 204
        assert http.get("/api/v1/account", headers=admin(account)).status_code == 401
        again = next(c for c in listed_with(http, second["secret"]) if c["id"] == first["id"])
        assert again["status"] == "revoked"
        assert again["revoked_at"] is not None
        # Revoking it again changes nothing.
        r = http.delete(f"{BASE}/{first['id']}", headers=bearer(second["secret"]))
        assert r.status_code == 204

    def test_revoking_the_last_admin_credential_is_refused(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        only = next(c for c in listed(http, account) if c["kind"] == "admin")
        r = http.delete(f"{BASE}/{only['id']}", headers=admin(account))
        assert r.status_code == 409
        assert r.json()["error"]["code"] == "last_admin_credential"
        assert http.get("/api/v1/account", headers=admin(account)).status_code == 200

    def test_another_accounts_credential_is_not_found(
        self, http: httpx.Client, account: NewAccount, other_account: NewAccount
    ) -> None:
        theirs = next(c for c in listed(http, other_account) if c["kind"] == "netcore")
        r = http.delete(f"{BASE}/{theirs['id']}", headers=admin(account))
        assert r.status_code == 404
        assert netcore_upload(http, other_account.netcore_api_key).status_code == 200
        assert http.delete(f"{BASE}/not-an-id", headers=admin(account)).status_code == 404


@pytest.fixture
def other_account(store: Database) -> NewAccount:
    return create_account(store, "credentials-other")


def listed_with(http: httpx.Client, token: str) -> list[dict[str, Any]]:
    r = http.get(BASE, headers=bearer(token))
    assert r.status_code == 200, r.text
    credentials: list[dict[str, Any]] = r.json()["credentials"]
    return credentials


def test_last_used_at_moves_when_a_key_is_used(http: httpx.Client, account: NewAccount) -> None:
    created = issue(http, account, kind="segment")
    assert (
        next(c for c in listed(http, account) if c["id"] == created["id"])["last_used_at"] is None
    )
    r = http.post(
        "/v1/track",
        json={"userId": "u-1", "event": "Signed Up", "writeKey": created["secret"]},
    )
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        mine = next(c for c in listed(http, account) if c["id"] == created["id"])
        if mine["last_used_at"] is not None:
            break
        time.sleep(0.1)
    assert mine["last_used_at"] is not None


# -- the read token ------------------------------------------------------------

#: A value for each kind of path parameter of the API's routes.
PATH_VALUES = {"list_id": "1", "activity_id": "act:cm:x"}


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES.get(m.group(1), "0" * 24), path)


WRITES = [
    (method, route.path)
    for route in app_routes("/api/v1/")
    for method in sorted((route.methods or set()) - {"GET", "HEAD"})
]
READS = [route.path for route in app_routes("/api/v1/") if "GET" in (route.methods or set())]


def test_the_api_has_writing_and_reading_routes_to_walk() -> None:
    assert ("DELETE", "/api/v1/credentials/{credential_id}") in WRITES
    assert ("DELETE", "/api/v1/contacts/{contact_id}") in WRITES
    assert "/api/v1/credentials" in READS


@pytest.fixture
def read_token(http: httpx.Client, account: NewAccount) -> str:
    token: str = issue(http, account, kind="read", name="analyst")["secret"]
    return token


@pytest.mark.parametrize(("method", "path"), WRITES, ids=[f"{m} {p}" for m, p in WRITES])
def test_a_read_token_gets_403_on_every_writing_route(
    http: httpx.Client, read_token: str, method: str, path: str
) -> None:
    r = http.request(method, concrete(path), json={}, headers=bearer(read_token))
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("path", READS)
def test_a_read_token_is_never_refused_on_a_reading_route(
    http: httpx.Client, read_token: str, path: str
) -> None:
    """Not 401 or 403: a reading route answers a read token as it answers an admin
    (a 404 for the made-up ids, a 400 for a missing query parameter)."""
    r = http.get(concrete(path), headers=bearer(read_token))
    assert r.status_code not in (401, 403), r.text


def test_a_read_token_reads_but_never_sees_the_signing_secret(
    http: httpx.Client, account: NewAccount, read_token: str
) -> None:
    assert netcore_upload(http, account.netcore_api_key).status_code == 200
    seen = http.get("/api/v1/account", headers=bearer(read_token))
    assert seen.status_code == 200
    assert seen.json()["id"] == account.account.id
    assert "signing_secret" not in seen.json()
    assert "signing_secret" in http.get("/api/v1/account", headers=admin(account)).json()
    found = http.get(
        "/api/v1/contacts", params={"identifier": "identity:rotation"}, headers=bearer(read_token)
    )
    assert found.status_code == 200, found.text
    assert len(found.json()["contacts"]) == 1


def test_a_read_token_is_no_dialect_key(
    http: httpx.Client, account: NewAccount, read_token: str
) -> None:
    assert netcore_upload(http, read_token).status_code == 401
