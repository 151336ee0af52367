"""Cordial ``POST /v2/contactactivities`` over real HTTP, on SQLite and PostgreSQL.

Every test talks to a real uvicorn server and checks what was stored
through eventyard's canonical read API. Docstrings quote the line of
``shared/specs/cordial-contactactivities.txt`` (or of issue 5, where the
spec is silent) that forces the behaviour.
"""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventyard.core.model import NewAccount
from tests.support import admin, create_account_at, find_contact, running_server

POST = "/v2/contactactivities"
PAYLOADS = Path(__file__).resolve().parents[1] / "payloads" / "cordial"
RESERVED = [
    "message-sent",
    "open",
    "click",
    "optout",
    "bounce",
    "complaint",
    "pageview",
    "message-stopped",
]


def auth(account: NewAccount) -> tuple[str, str]:
    return (account.cordial_api_key, "")


def email() -> str:
    return f"c-{uuid.uuid4().hex[:10]}@example.com"


def post(http: httpx.Client, account: NewAccount, body: Any, **kwargs: Any) -> httpx.Response:
    return http.post(POST, json=body, auth=auth(account), **kwargs)


def timeline(http: httpx.Client, account: NewAccount, contact_id: str) -> list[dict[str, Any]]:
    r = http.get(
        f"/api/v1/contacts/{contact_id}/activities", params={"limit": 100}, headers=admin(account)
    )
    assert r.status_code == 200, r.text
    return list(r.json()["activities"])


def assert_error(r: httpx.Response, status: int, key: str, field: str | None = None) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] is True
    assert body["errorKey"] == key
    assert isinstance(body["message"], str)
    assert body["message"]
    if field is not None:
        assert field in body["message"], body
        assert body["errors"][0]["field"] == field


class TestSpecExample:
    def test_the_spec_browse_example_is_stored_as_sent(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "The following will create a new contact activity record for a
        user-defined "browse" event." (the spec's JSON, replayed verbatim)."""
        body = json.loads((PAYLOADS / "browse.json").read_text())
        r = post(http, account, body)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["success"] is True
        contact = find_contact(http, account, "email:msmith@example.com")
        assert contact is not None
        assert contact["id"] == answer["cID"]
        [activity] = timeline(http, account, contact["id"])
        assert activity["name"] == "browse"
        assert activity["dialect"] == "cordial"
        assert activity["occurred_at"] == "2025-01-09T17:47:43Z"
        assert activity["properties"] == body["properties"]
        assert activity["unsearchable"] == []

    def test_ats_defaults_to_now(self, http: httpx.Client, account: NewAccount) -> None:
        """ "ats ... If undefined, the current date and time will be used.\""""
        r = post(http, account, {"a": "browse", "email": email()})
        assert r.status_code == 200, r.text
        [activity] = timeline(http, account, r.json()["cID"])
        assert activity["occurred_at"][:4] >= "2026"
        # Received and occurred are the same instant when ats is absent.
        assert activity["occurred_at"] == activity["received_at"]

    @pytest.mark.parametrize(
        ("ats", "stored"),
        [
            ("2025-01-09 17:47:43", "2025-01-09T17:47:43Z"),
            ("2025-01-09T17:47:43Z", "2025-01-09T17:47:43Z"),
            ("2025-01-09T19:47:43+02:00", "2025-01-09T17:47:43Z"),
            ("2025-01-09T17:47:43.250Z", "2025-01-09T17:47:43.250000Z"),
            ("2025-01-09", "2025-01-09T00:00:00Z"),
        ],
    )
    def test_ats_accepts_iso_8601_forms(
        self, http: httpx.Client, account: NewAccount, ats: str, stored: str
    ) -> None:
        """ "Date format is ISO 8601 standard." Example: ``2025-01-09 17:47:43``
        (no offset: UTC)."""
        r = post(http, account, {"a": "browse", "email": email(), "ats": ats})
        assert r.status_code == 200, r.text
        [activity] = timeline(http, account, r.json()["cID"])
        assert activity["occurred_at"] == stored

    @pytest.mark.parametrize("ats", ["yesterday", "2025-13-01", "2025-01-09 25:00:00", 1736444863])
    def test_an_ats_that_is_not_a_date_is_a_validation_error(
        self, http: httpx.Client, account: NewAccount, ats: Any
    ) -> None:
        r = post(http, account, {"a": "browse", "email": email(), "ats": ats})
        assert_error(r, 422, "CONTACT_ACTIVITIES_VALIDATION_ERROR", "ats")


class TestAction:
    def test_a_is_required(self, http: httpx.Client, account: NewAccount) -> None:
        """ "* a string Defines a custom action" (required)."""
        r = post(http, account, {"email": email(), "properties": {"x": 1}})
        assert_error(r, 422, "CONTACT_ACTIVITIES_VALIDATION_ERROR", "a")

    def test_a_of_40_characters_is_accepted_and_41_refused(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "The maximum length of the parameter is 40 characters.\""""
        ok = post(http, account, {"a": "x" * 40, "email": email()})
        assert ok.status_code == 200, ok.text
        r = post(http, account, {"a": "x" * 41, "email": email()})
        assert_error(r, 422, "CONTACT_ACTIVITIES_VALIDATION_ERROR", "a")
        assert "41" in r.json()["message"]

    @pytest.mark.parametrize("action", [*RESERVED, "OPEN", "Click"])
    def test_reserved_actions_are_refused(
        self, http: httpx.Client, account: NewAccount, action: str
    ) -> None:
        """ "Note: Reserved actions cannot be added via the POST method."
        (message-sent, open, click, optout, bounce, complaint, pageview,
        message-stopped) -> CONTACT_ACTIVITIES_INCORRECT_ACTION_NAME."""
        address = email()
        r = post(http, account, {"a": action, "email": address})
        assert_error(r, 422, "CONTACT_ACTIVITIES_INCORRECT_ACTION_NAME", "a")
        assert find_contact(http, account, f"email:{address}") is None

    @pytest.mark.parametrize("action", ["", "   ", 42, ["browse"]])
    def test_a_must_be_a_non_empty_string(
        self, http: httpx.Client, account: NewAccount, action: Any
    ) -> None:
        r = post(http, account, {"a": action, "email": email()})
        assert_error(r, 422, "CONTACT_ACTIVITIES_VALIDATION_ERROR", "a")


class TestPayload:
    @pytest.mark.parametrize("body", [b"", b"   ", b"{not json", b"[]", b'"browse"', b"{}"])
    def test_an_empty_or_non_object_body_is_an_invalid_payload(
        self, http: httpx.Client, account: NewAccount, body: bytes
    ) -> None:
        """CONTACT_ACTIVITIES_INVALID_PAYLOAD "Invalid payload": "This can
        happen when the payload is empty.\""""
        r = http.post(
            POST, content=body, auth=auth(account), headers={"Content-Type": "application/json"}
        )
        assert_error(r, 400, "CONTACT_ACTIVITIES_INVALID_PAYLOAD")

    def test_six_parameters_are_accepted_and_seven_refused(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """CONTACT_ACTIVITIES_TOO_MANY_PARAMS: "Six is the maximum number of
        parameters allowed for the payload.\""""
        address = email()
        six = {
            "a": "order",
            "email": address,
            "custID": f"C-{uuid.uuid4().hex[:6]}",
            "cID": f"ext-{uuid.uuid4().hex[:6]}",
            "ats": "2026-11-01T00:00:00Z",
            "properties": {"total": 10},
        }
        assert post(http, account, six).status_code == 200
        r = post(http, account, {**six, "email": email(), "extra": "x"})
        assert_error(r, 400, "CONTACT_ACTIVITIES_TOO_MANY_PARAMS")
        assert "7" in r.json()["message"]

    def test_an_unknown_parameter_is_named(self, http: httpx.Client, account: NewAccount) -> None:
        r = post(http, account, {"a": "browse", "email": email(), "categry": "Shirts"})
        assert_error(r, 422, "CONTACT_ACTIVITIES_VALIDATION_ERROR", "categry")

    def test_gzip_bodies_are_accepted(self, http: httpx.Client, account: NewAccount) -> None:
        address = email()
        body = gzip.compress(json.dumps({"a": "browse", "email": address}).encode())
        r = http.post(
            POST,
            content=body,
            auth=auth(account),
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        assert r.status_code == 200, r.text
        assert find_contact(http, account, f"email:{address}") is not None

    def test_a_body_over_one_mebibyte_is_refused(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        body = {"a": "browse", "email": email(), "properties": {"blob": "x" * (1024 * 1024)}}
        r = post(http, account, body)
        assert_error(r, 413, "PAYLOAD_TOO_LARGE")

    def test_the_same_idempotency_key_stores_once(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        body = {"a": "browse", "email": email()}
        key = {"Idempotency-Key": uuid.uuid4().hex}
        first = post(http, account, body, headers=key)
        second = post(http, account, body, headers=key)
        assert first.status_code == second.status_code == 200
        assert second.headers.get("Idempotent-Replayed") == "true"
        assert second.json() == first.json()
        assert len(timeline(http, account, first.json()["cID"])) == 1


class TestContactIdentifier:
    def test_an_identifier_is_required(self, http: httpx.Client, account: NewAccount) -> None:
        """ "* contact identifier ... You must specify the identifier type in the
        key/value pair.\""""
        r = post(http, account, {"a": "browse", "properties": {"x": 1}})
        assert_error(r, 422, "CONTACT_ACTIVITIES_VALIDATION_ERROR")
        assert "identifier" in r.json()["message"]

    def test_a_malformed_email_is_named(self, http: httpx.Client, account: NewAccount) -> None:
        r = post(http, account, {"a": "browse", "email": "not-an-address"})
        assert_error(r, 422, "CONTACT_ACTIVITIES_VALIDATION_ERROR", "email")

    def test_cust_id_names_a_contact(self, http: httpx.Client, account: NewAccount) -> None:
        """``"custID": "ID1234"`` (the spec's example identifier)."""
        cust = f"ID{uuid.uuid4().hex[:6]}"
        first = post(http, account, {"a": "browse", "custID": cust})
        second = post(http, account, {"a": "cart", "custID": cust})
        assert first.json()["cID"] == second.json()["cID"]
        contact = find_contact(http, account, f"custID:{cust}")
        assert contact is not None
        assert contact["id"] == first.json()["cID"]
        names = {a["name"] for a in timeline(http, account, contact["id"])}
        assert names == {"browse", "cart"}

    def test_cid_names_the_contact_eventyard_returned(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """``"cID": "16198880000"``: the contact id; eventyard's own ids are the
        ``cID`` it returns."""
        first = post(http, account, {"a": "browse", "email": email()})
        contact_id = first.json()["cID"]
        second = post(http, account, {"a": "order", "cID": contact_id})
        assert second.status_code == 200, second.text
        assert second.json()["cID"] == contact_id
        assert {a["name"] for a in timeline(http, account, contact_id)} == {"browse", "order"}

    def test_a_foreign_cid_is_an_identifier_of_its_own(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """A numeric Cordial cID eventyard never issued keeps one contact per id."""
        foreign = str(16198880000 + uuid.uuid4().int % 10_000)
        first = post(http, account, {"a": "browse", "cID": foreign})
        second = post(http, account, {"a": "order", "cID": foreign})
        assert first.status_code == second.status_code == 200
        assert first.json()["cID"] == second.json()["cID"]
        assert find_contact(http, account, f"cID:{foreign}") is not None

    def test_the_accounts_primary_kinds_are_identifier_keys(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "Default primary and secondary contact identifier keys can be
        configured uniquely for each Cordial account.\""""
        body = {"a": "browse", "loyaltyID": f"L-{uuid.uuid4().hex[:8]}"}
        refused = post(http, account, body)
        assert_error(refused, 422, "CONTACT_ACTIVITIES_VALIDATION_ERROR", "loyaltyID")
        r = http.patch(
            "/api/v1/account/settings",
            json={"primary_kinds": ["loyaltyID", "email"]},
            headers=admin(account),
        )
        assert r.status_code == 200, r.text
        accepted = post(http, account, body)
        assert accepted.status_code == 200, accepted.text
        assert find_contact(http, account, f"loyaltyID:{body['loyaltyID']}") is not None

    def test_two_identifiers_resolve_to_one_contact(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        address, cust = email(), f"ID{uuid.uuid4().hex[:6]}"
        r = post(http, account, {"a": "browse", "email": address, "custID": cust})
        by_email = find_contact(http, account, f"email:{address}")
        by_cust = find_contact(http, account, f"custID:{cust}")
        assert by_email is not None
        assert by_cust is not None
        assert by_email["id"] == by_cust["id"] == r.json()["cID"]


class TestProperties:
    def test_numeric_and_dotted_keys_are_stripped_and_reported(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "Property keys consisting of numeric-only values (e.g. 57) or keys
        containing a period, like shoes.color, will be stripped.\""""
        props = {"57": 1, "shoes.color": "red", "size": 9, "a57": True, "nested": {"x.y": 1}}
        r = post(http, account, {"a": "browse", "email": email(), "properties": props})
        assert r.status_code == 200, r.text
        assert r.json()["strippedProperties"] == ["57", "shoes.color"]
        [activity] = timeline(http, account, r.json()["cID"])
        assert activity["properties"] == {"size": 9, "a57": True, "nested": {"x.y": 1}}

    def test_nothing_stripped_means_no_list(self, http: httpx.Client, account: NewAccount) -> None:
        r = post(http, account, {"a": "browse", "email": email(), "properties": {"size": 9}})
        assert "strippedProperties" not in r.json()

    def test_one_thousand_properties_are_accepted_and_more_refused(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "The default maximum number of properties an event can have is 1,000.\""""
        props = {f"p{i}": i for i in range(1000)}
        ok = post(http, account, {"a": "big", "email": email(), "properties": props})
        assert ok.status_code == 200, ok.text
        props["p1000"] = 1000
        r = post(http, account, {"a": "big", "email": email(), "properties": props})
        assert_error(r, 422, "CONTACT_ACTIVITIES_VALIDATION_ERROR", "properties")

    @pytest.mark.parametrize("props", [[1, 2], "size=9", 5])
    def test_properties_must_be_an_object(
        self, http: httpx.Client, account: NewAccount, props: Any
    ) -> None:
        r = post(http, account, {"a": "browse", "email": email(), "properties": props})
        assert_error(r, 422, "CONTACT_ACTIVITIES_VALIDATION_ERROR", "properties")

    def test_a_nul_character_is_refused_with_its_path(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        r = post(http, account, {"a": "browse", "email": email(), "properties": {"t": "a\x00b"}})
        assert_error(r, 422, "CONTACT_ACTIVITIES_VALIDATION_ERROR", "properties.t")


class TestTypeRecognition:
    def test_a_later_value_of_another_type_is_stored_but_not_searchable(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "When a property value is passed, its data type (string, integer,
        etc.) will be recognized and searchable ... If a different data type is
        passed to an already recognized property, that new data will not be
        searchable in the UI.\""""
        address = email()
        first = post(http, account, {"a": "order", "email": address, "properties": {"price": 9.99}})
        post(http, account, {"a": "order", "email": address, "properties": {"price": "cheap"}})
        post(http, account, {"a": "order", "email": address, "properties": {"price": 10}})
        by_value = {
            json.dumps(a["properties"]["price"]): a["unsearchable"]
            for a in timeline(http, account, first.json()["cID"])
        }
        assert by_value == {"9.99": [], '"cheap"': ["price"], "10": []}

    def test_types_are_recognised_per_action(self, http: httpx.Client, account: NewAccount) -> None:
        address = email()
        post(http, account, {"a": "order", "email": address, "properties": {"size": 9}})
        r = post(http, account, {"a": "browse", "email": address, "properties": {"size": "L"}})
        activities = timeline(http, account, r.json()["cID"])
        assert [a["unsearchable"] for a in activities] == [[], []]

    def test_types_are_recognised_per_account(
        self, http: httpx.Client, account: NewAccount, database_url: str
    ) -> None:
        other = create_account_at(database_url, f"other-{uuid.uuid4().hex[:6]}")
        post(http, other, {"a": "order", "email": email(), "properties": {"size": 9}})
        r = post(http, account, {"a": "order", "email": email(), "properties": {"size": "L"}})
        [activity] = timeline(http, account, r.json()["cID"])
        assert activity["unsearchable"] == []

    def test_null_fixes_no_type(self, http: httpx.Client, account: NewAccount) -> None:
        address = email()
        post(http, account, {"a": "order", "email": address, "properties": {"note": None}})
        r = post(http, account, {"a": "order", "email": address, "properties": {"note": "gift"}})
        post(http, account, {"a": "order", "email": address, "properties": {"note": 5}})
        flags = sorted(
            (json.dumps(a["properties"]["note"]), a["unsearchable"])
            for a in timeline(http, account, r.json()["cID"])
        )
        assert flags == [('"gift"', []), ("5", ["note"]), ("null", [])]


class TestAuth:
    def test_the_key_as_user_name_with_an_empty_password_works(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "Cordial's core APIs use https Basic Authentication (BA).\""""
        assert post(http, account, {"a": "browse", "email": email()}).status_code == 200

    def test_a_wrong_key_is_401_in_cordials_shape(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        address = email()
        r = http.post(POST, json={"a": "browse", "email": address}, auth=("nope", ""))
        assert_error(r, 401, "UNAUTHORIZED")
        assert r.headers["WWW-Authenticate"].startswith("Basic")
        assert find_contact(http, account, f"email:{address}") is None

    def test_another_dialects_key_is_refused(self, http: httpx.Client, account: NewAccount) -> None:
        r = http.post(
            POST, json={"a": "browse", "email": email()}, auth=(account.ortto_api_key, "")
        )
        assert_error(r, 401, "UNAUTHORIZED")


def test_over_the_keys_rate_is_429_with_retry_after(
    database_url: str, account: NewAccount, tmp_path: Path
) -> None:
    """The per-key request rate (``EVENTYARD_RATE_LIMIT_PER_SECOND``) applies to
    Cordial's API key too, answered in Cordial's error shape with Retry-After;
    another account's key is not held up."""
    env = {"EVENTYARD_RATE_LIMIT_PER_SECOND": "0.1", "EVENTYARD_RATE_LIMIT_BURST": "2"}
    with (
        running_server(database_url, tmp_path / "server.log", env) as srv,
        httpx.Client(base_url=srv.base_url, timeout=30) as client,
    ):
        answers = [post(client, account, {"a": "browse", "email": email()}) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert_error(answers[2], 429, "RATE_LIMITED")
        assert int(answers[2].headers["Retry-After"]) >= 1
        listing = client.get(POST, auth=auth(account))
        assert_error(listing, 429, "RATE_LIMITED")
        other = create_account_at(database_url, f"other-{uuid.uuid4().hex[:6]}")
        assert post(client, other, {"a": "browse", "email": email()}).status_code == 200
