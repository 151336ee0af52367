"""Activity definitions and account settings through the canonical API, on a real server.

Ortto: "ensure the activity definition exists" before sending activities, ids
like ``act:cm:product-purchase``, attribute fields ``type:namespace:field``.
Both databases; ``Authorization: Bearer <admin token>`` as for the read API.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from eventyard.core.model import NewAccount
from eventyard.dialects.registry import create_account
from eventyard.storage.database import Database
from tests.support import admin

DEFINITIONS = "/api/v1/activity-definitions"
PURCHASE = {
    "activity_id": "act:cm:product-purchase",
    "name": "Product purchase",
    "fields": {"str:cm:product-name": "str", "int::v": "int"},
}
DEFAULT_SETTINGS = {
    "primary_kinds": ["identity", "email", "mobile"],
    "auto_create_definitions": False,
    "ortto_merge_strategy": 2,
    "retention_days": 548,
    "dedup_window_hours": 24,
}


@pytest.fixture
def other_account(store: Database) -> NewAccount:
    """A second tenant in the same database."""
    return create_account(store, f"other-{uuid.uuid4().hex[:8]}")


def create(
    http: httpx.Client, account: NewAccount, body: dict[str, Any] = PURCHASE
) -> dict[str, Any]:
    r = http.post(DEFINITIONS, json=body, headers=admin(account))
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def assert_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The canonical error body: ``{"error": {"code", "message", "errors"?}}``."""
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error"}
    error: dict[str, Any] = r.json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    return error


def error_fields(r: httpx.Response, code: str = "invalid_definition") -> list[str]:
    return [e["field"] for e in assert_error(r, 400, code)["errors"]]


class TestCreate:
    def test_returns_201_with_the_definition(self, http: httpx.Client, account: NewAccount) -> None:
        """Spec example: act:cm:product-purchase with str:cm:product-name and int::v."""
        created = create(http, account)
        assert set(created) == {
            "activity_id",
            "name",
            "fields",
            "auto_created",
            "created_at",
            "updated_at",
        }
        assert {k: created[k] for k in PURCHASE} == PURCHASE
        assert created["auto_created"] is False
        assert created["created_at"] == created["updated_at"]
        assert created["created_at"].endswith("Z")
        # Stored: the read gives back the same.
        r = http.get(f"{DEFINITIONS}/act:cm:product-purchase", headers=admin(account))
        assert r.json() == created

    def test_existing_id_is_409_and_keeps_the_first(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        first = create(http, account)
        r = http.post(DEFINITIONS, json={**PURCHASE, "name": "Other"}, headers=admin(account))
        assert "act:cm:product-purchase" in assert_error(r, 409, "definition_exists")["message"]
        r = http.get(f"{DEFINITIONS}/act:cm:product-purchase", headers=admin(account))
        assert r.json() == first

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"activity_id": "product-purchase"}, "activity_id"),
            ({"activity_id": "act:cm:Product"}, "activity_id"),
            ({"name": "  "}, "name"),
            ({"name": "n" * 256}, "name"),
            ({"fields": {"colour": "str"}}, "fields.colour"),
            ({"fields": {"txt:cm:colour": "txt"}}, "fields.txt:cm:colour"),
            ({"fields": {"str:cm:colour": "int"}}, "fields.str:cm:colour"),
            ({"fields": {f"int:cm:f{i}": "int" for i in range(101)}}, "fields"),
        ],
    )
    def test_rule_breaking_definition_is_400_naming_the_field(
        self, http: httpx.Client, account: NewAccount, change: dict[str, Any], field: str
    ) -> None:
        r = http.post(DEFINITIONS, json={**PURCHASE, **change}, headers=admin(account))
        assert error_fields(r) == [field]
        assert r.json()["error"]["errors"][0]["reason"].startswith(field)
        assert http.get(DEFINITIONS, headers=admin(account)).json() == {"activity_definitions": []}

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"name": "X", "fields": {}}, "activity_id"),
            ({"activity_id": "act:cm:x", "fields": {}}, "name"),
            ({"activity_id": "act:cm:x", "name": "X"}, "fields"),
            ({**PURCHASE, "colour": "blue"}, "colour"),
            ({**PURCHASE, "name": 5}, "name"),
            ({**PURCHASE, "fields": ["str:cm:x"]}, "fields"),
            ({**PURCHASE, "fields": {"int::v": 1}}, "fields.int::v"),
        ],
    )
    def test_malformed_body_is_400_naming_the_field(
        self, http: httpx.Client, account: NewAccount, body: dict[str, Any], field: str
    ) -> None:
        r = http.post(DEFINITIONS, json=body, headers=admin(account))
        assert error_fields(r, "invalid_request") == [field]

    def test_body_that_is_not_json_is_400(self, http: httpx.Client, account: NewAccount) -> None:
        r = http.post(
            DEFINITIONS,
            content=b"{not json",
            headers={**admin(account), "Content-Type": "application/json"},
        )
        assert_error(r, 400, "invalid_request")


class TestRead:
    def test_list_is_every_definition_by_id(self, http: httpx.Client, account: NewAccount) -> None:
        second = create(http, account, {**PURCHASE, "activity_id": "act:cm:page-view"})
        first = create(http, account)
        r = http.get(DEFINITIONS, headers=admin(account))
        assert r.status_code == 200, r.text
        assert r.json() == {"activity_definitions": [second, first]}

    @pytest.mark.parametrize(
        "path", ["act:cm:product-purchase", quote("act:cm:product-purchase", safe="")]
    )
    def test_colons_in_the_path_plain_or_encoded(
        self, http: httpx.Client, account: NewAccount, path: str
    ) -> None:
        created = create(http, account)
        r = http.get(f"{DEFINITIONS}/{path}", headers=admin(account))
        assert r.status_code == 200, r.text
        assert r.json() == created

    @pytest.mark.parametrize("activity_id", ["act:cm:nothing", "garbage", "act:cm:"])
    def test_unknown_id_is_404(
        self, http: httpx.Client, account: NewAccount, activity_id: str
    ) -> None:
        r = http.get(f"{DEFINITIONS}/{activity_id}", headers=admin(account))
        assert_error(r, 404, "not_found")


class TestReplace:
    def test_replaces_name_and_fields(self, http: httpx.Client, account: NewAccount) -> None:
        created = create(http, account)
        body = {"name": "Purchase", "fields": {"int:cm:quantity": "int"}}
        r = http.put(f"{DEFINITIONS}/act:cm:product-purchase", json=body, headers=admin(account))
        assert r.status_code == 200, r.text
        replaced = r.json()
        assert replaced["name"] == "Purchase"
        assert replaced["fields"] == {"int:cm:quantity": "int"}
        assert replaced["created_at"] == created["created_at"]
        assert replaced["updated_at"] >= created["updated_at"]
        r = http.get(f"{DEFINITIONS}/act:cm:product-purchase", headers=admin(account))
        assert r.json() == replaced

    def test_body_may_repeat_the_id_but_not_another(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        create(http, account)
        path = f"{DEFINITIONS}/act:cm:product-purchase"
        r = http.put(path, json=PURCHASE, headers=admin(account))
        assert r.status_code == 200, r.text
        r = http.put(path, json={**PURCHASE, "activity_id": "act:cm:other"}, headers=admin(account))
        assert error_fields(r) == ["activity_id"]

    def test_unknown_id_is_404_and_creates_nothing(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        r = http.put(
            f"{DEFINITIONS}/act:cm:nothing",
            json={"name": "X", "fields": {}},
            headers=admin(account),
        )
        assert_error(r, 404, "not_found")
        assert http.get(DEFINITIONS, headers=admin(account)).json()["activity_definitions"] == []

    def test_invalid_fields_are_400(self, http: httpx.Client, account: NewAccount) -> None:
        create(http, account)
        r = http.put(
            f"{DEFINITIONS}/act:cm:product-purchase",
            json={"name": "X", "fields": {"int::v": "str"}},
            headers=admin(account),
        )
        assert error_fields(r) == ["fields.int::v"]


class TestDelete:
    def test_204_then_gone(self, http: httpx.Client, account: NewAccount) -> None:
        create(http, account)
        path = f"{DEFINITIONS}/act:cm:product-purchase"
        r = http.delete(path, headers=admin(account))
        assert r.status_code == 204, r.text
        assert r.content == b""
        assert_error(http.get(path, headers=admin(account)), 404, "not_found")
        assert_error(http.delete(path, headers=admin(account)), 404, "not_found")


class TestTenants:
    def test_another_account_sees_and_changes_nothing(
        self, http: httpx.Client, account: NewAccount, other_account: NewAccount
    ) -> None:
        """DESIGN.md: "Tenants never see each other's data"."""
        created = create(http, account)
        path = f"{DEFINITIONS}/act:cm:product-purchase"
        theirs = admin(other_account)
        assert http.get(DEFINITIONS, headers=theirs).json() == {"activity_definitions": []}
        assert_error(http.get(path, headers=theirs), 404, "not_found")
        assert_error(http.put(path, json=PURCHASE, headers=theirs), 404, "not_found")
        assert_error(http.delete(path, headers=theirs), 404, "not_found")
        # The id is theirs to declare too.
        assert create(http, other_account)["activity_id"] == PURCHASE["activity_id"]
        assert http.get(path, headers=admin(account)).json() == created


class TestAuthentication:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", DEFINITIONS),
            ("POST", DEFINITIONS),
            ("GET", f"{DEFINITIONS}/act:cm:x"),
            ("PUT", f"{DEFINITIONS}/act:cm:x"),
            ("DELETE", f"{DEFINITIONS}/act:cm:x"),
            ("GET", "/api/v1/account"),
            ("PATCH", "/api/v1/account/settings"),
        ],
    )
    @pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}])
    def test_needs_the_admin_token(
        self,
        http: httpx.Client,
        account: NewAccount,
        method: str,
        path: str,
        headers: dict[str, str],
    ) -> None:
        r = http.request(method, path, json=PURCHASE, headers=headers)
        assert_error(r, 401, "unauthorized")

    def test_other_credentials_are_not_admin_tokens(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        r = http.get(DEFINITIONS, headers={"Authorization": f"Bearer {account.ortto_api_key}"})
        assert_error(r, 401, "unauthorized")


class TestAccount:
    def test_get_shows_the_account_with_default_settings(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        r = http.get("/api/v1/account", headers=admin(account))
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"id", "name", "created_at", "signing_secret", "settings"}
        assert len(body["signing_secret"]) == 64, "it signs the account's callbacks"
        assert body["id"] == account.account.id
        assert body["name"] == account.account.name
        assert body["created_at"].endswith("Z")
        assert body["settings"] == DEFAULT_SETTINGS

    def test_patch_changes_only_the_keys_given(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        patch = {"auto_create_definitions": True, "ortto_merge_strategy": 1}
        r = http.patch("/api/v1/account/settings", json=patch, headers=admin(account))
        assert r.status_code == 200, r.text
        expected = {**DEFAULT_SETTINGS, **patch}
        assert r.json() == expected
        r = http.patch(
            "/api/v1/account/settings", json={"retention_days": 30}, headers=admin(account)
        )
        expected["retention_days"] = 30
        assert r.json() == expected
        # Seen at once, by the same server process, through the cached token.
        assert http.get("/api/v1/account", headers=admin(account)).json()["settings"] == expected

    def test_null_resets_to_the_default(self, http: httpx.Client, account: NewAccount) -> None:
        """JSON merge patch (RFC 7396): null removes the member, so the default applies."""
        headers = admin(account)
        http.patch("/api/v1/account/settings", json={"retention_days": 30}, headers=headers)
        r = http.patch(
            "/api/v1/account/settings",
            content=b'{"retention_days": null}',
            headers={**headers, "Content-Type": "application/merge-patch+json"},
        )
        assert r.status_code == 200, r.text
        assert r.json() == DEFAULT_SETTINGS

    @pytest.mark.parametrize(
        ("patch", "field"),
        [
            ({"retention": 30}, "retention"),
            ({"retention_days": 0}, "retention_days"),
            ({"retention_days": "30"}, "retention_days"),
            ({"ortto_merge_strategy": 4}, "ortto_merge_strategy"),
            ({"auto_create_definitions": "yes"}, "auto_create_definitions"),
            ({"primary_kinds": []}, "primary_kinds"),
        ],
    )
    def test_bad_settings_are_400_naming_the_key_and_change_nothing(
        self, http: httpx.Client, account: NewAccount, patch: dict[str, Any], field: str
    ) -> None:
        r = http.patch(
            "/api/v1/account/settings",
            json={"retention_days": 99, **patch},
            headers=admin(account),
        )
        assert error_fields(r, "invalid_settings") == [field]
        assert field in r.json()["error"]["message"]
        settings = http.get("/api/v1/account", headers=admin(account)).json()["settings"]
        assert settings == DEFAULT_SETTINGS

    @pytest.mark.parametrize("body", [b"[]", b'"x"', b"{nope"])
    def test_patch_must_be_a_json_object(
        self, http: httpx.Client, account: NewAccount, body: bytes
    ) -> None:
        r = http.patch(
            "/api/v1/account/settings",
            content=body,
            headers={**admin(account), "Content-Type": "application/json"},
        )
        assert_error(r, 400, "invalid_request")

    def test_settings_of_one_account_leave_another_alone(
        self, http: httpx.Client, account: NewAccount, other_account: NewAccount
    ) -> None:
        http.patch("/api/v1/account/settings", json={"retention_days": 7}, headers=admin(account))
        other = http.get("/api/v1/account", headers=admin(other_account)).json()
        assert other["id"] == other_account.account.id
        assert other["settings"] == DEFAULT_SETTINGS
