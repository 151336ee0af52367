"""Ortto custom activity events (``POST /v1/activities/create``) over real HTTP.

Every test talks to a real uvicorn server (SQLite and PostgreSQL) whose
in-process worker runs queued work, and checks what was stored through
eventyard's canonical read API. Docstrings quote the line of
``shared/specs/ortto-activities-create.txt`` (or of issue 4, where the spec
is silent) that forces the behaviour.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventyard.core.model import NewAccount
from tests.support import admin, create_account_at, find_contact, running_server

CREATE = "/v1/activities/create"
PAYLOADS = Path(__file__).resolve().parents[1] / "payloads" / "ortto"


def key(account: NewAccount) -> dict[str, str]:
    return {"X-Api-Key": account.ortto_api_key}


def define_fields(
    http: httpx.Client, account: NewAccount, activity_id: str, fields: dict[str, str]
) -> None:
    r = http.post(
        "/api/v1/activity-definitions",
        json={"activity_id": activity_id, "name": activity_id, "fields": fields},
        headers=admin(account),
    )
    assert r.status_code == 201, r.text


def set_settings(http: httpx.Client, account: NewAccount, **settings: Any) -> None:
    r = http.patch("/api/v1/account/settings", json=settings, headers=admin(account))
    assert r.status_code == 200, r.text


def activity(
    activity_id: str = "act:cm:purchase",
    email: str = "jane@example.com",
    attributes: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "activity_id": activity_id,
        "attributes": {"str:cm:product-name": "Widget"} if attributes is None else attributes,
        "fields": {"str::email": email},
        "merge_by": ["str::email"],
        **extra,
    }


def send(
    http: httpx.Client, account: NewAccount, *activities: dict[str, Any], **body: Any
) -> httpx.Response:
    return http.post(CREATE, json={"activities": list(activities), **body}, headers=key(account))


def timeline(http: httpx.Client, account: NewAccount, contact_id: str) -> list[dict[str, Any]]:
    r = http.get(
        f"/api/v1/contacts/{contact_id}/activities", params={"limit": 1000}, headers=admin(account)
    )
    assert r.status_code == 200, r.text
    return list(r.json()["activities"])


def wait_for_job(http: httpx.Client, account: NewAccount, job_id: str) -> dict[str, Any]:
    """The job once it has finished (the in-process worker runs it)."""
    deadline = time.monotonic() + 30
    while True:
        r = http.get(f"/api/v1/jobs/{job_id}", headers=admin(account))
        assert r.status_code == 200, r.text
        job = r.json()
        if job["status"] in ("completed", "failed"):
            return dict(job)
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def spec_example(name: str) -> dict[str, Any]:
    """One of the spec's example request bodies, as printed (tests/payloads/ortto)."""
    return dict(json.loads((PAYLOADS / f"{name}.json").read_text()))


def define_purchase(http: httpx.Client, account: NewAccount) -> None:
    define_fields(http, account, "act:cm:purchase", {"str:cm:product-name": "str"})


class TestSpecExamples:
    def test_basic_activity_creates_the_person_and_stores_the_activity(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Spec: "Example request body - Basic activity creation" answered as in
        "Example response - Synchronous processing": person_id, "ingested",
        "created", activity_id."""
        define_fields(
            http,
            account,
            "act:cm:product-purchase",
            {"str:cm:product-name": "str", "int::v": "int"},
        )
        body = spec_example("basic_activity_creation")
        r = http.post(CREATE, json=body, headers=key(account))
        assert r.status_code == 200, r.text
        [entry] = r.json()["activities"]
        assert entry["status"] == "ingested"
        assert entry["person_status"] == "created"
        assert entry["activity_id"] == "act:cm:product-purchase"

        contact = find_contact(http, account, "email:customer@example.com")
        assert contact is not None
        assert contact["id"] == entry["person_id"]
        assert contact["attributes"] == {"str::first": "John"}
        [stored] = timeline(http, account, contact["id"])
        assert stored["name"] == "act:cm:product-purchase"
        assert stored["dialect"] == "ortto"
        assert stored["properties"] == {"str:cm:product-name": "Premium Plan", "int::v": 5000}
        # "int::v | Conversion value (currency x 1000) | int::v: 5000 (represents $5.00)"
        assert stored["conversion_value"] == {"raw": 5000, "decimal": "5.00"}

    def test_the_same_person_again_is_updated_not_created(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Spec: person_status "updated" (existing); merge_by: "If found, updates contact"."""
        define_purchase(http, account)
        first = send(http, account, activity()).json()["activities"][0]
        second = send(http, account, activity()).json()["activities"][0]
        assert first["person_status"] == "created"
        assert second["person_status"] == "updated"
        assert second["person_id"] == first["person_id"]

    def test_backdated_example_older_than_90_days_is_queued_then_stored(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Spec: "Activities older than 90 days are queued"; "Example request body -
        With backdating" (created 2025-10-15, over 90 days before today)."""
        body = spec_example("with_backdating")
        define_fields(
            http, account, "act:cm:order-completed", {"str:cm:order-id": "str", "int::v": "int"}
        )
        r = http.post(CREATE, json=body, headers=key(account))
        assert r.status_code == 200, r.text
        [entry] = r.json()["activities"]
        assert entry == {
            "status": "queued",
            "person_status": "queued",
            "activity_id": "act:cm:order-completed",
        }
        job = wait_for_job(http, account, r.headers["X-Eventyard-Job-Id"])
        assert job["status"] == "completed", job
        assert job["result"]["rejected"] == []

        contact = find_contact(http, account, "email:customer@example.com")
        assert contact is not None
        [stored] = timeline(http, account, contact["id"])
        assert stored["occurred_at"] == "2025-10-15T14:30:00Z"
        assert stored["properties"]["str:cm:order-id"] == "ORD-12345"
        assert stored["conversion_value"] == {"raw": 29900, "decimal": "29.90"}
        assert stored["journey_eligible"] is False

    def test_person_id_attaches_to_that_contact_and_ignores_fields(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Spec: "When using person_id: Skips merge lookup ... Directly attaches
        activity to the specified contact ... Ignores fields object entirely"."""
        define_purchase(http, account)
        define_fields(
            http,
            account,
            "act:cm:page-view",
            {"str:cm:page-url": "str", "str:cm:referrer": "str"},
        )
        person = send(http, account, activity()).json()["activities"][0]["person_id"]
        body = spec_example("using_person_id")
        body["activities"][0]["person_id"] = person
        body["activities"][0]["fields"] = {"str::email": "someone-else@example.com"}
        r = http.post(CREATE, json=body, headers=key(account))
        assert r.status_code == 200, r.text
        [entry] = r.json()["activities"]
        assert entry["person_id"] == person
        assert entry["person_status"] == "updated"
        assert find_contact(http, account, "email:someone-else@example.com") is None
        names = sorted(a["name"] for a in timeline(http, account, person))
        assert names == ["act:cm:page-view", "act:cm:purchase"]

    def test_an_unknown_person_id_is_an_error_naming_it(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Issue 4: "unknown person_id -> error". The spec's own sample id names no
        contact of a fresh account."""
        define_fields(
            http,
            account,
            "act:cm:page-view",
            {"str:cm:page-url": "str", "str:cm:referrer": "str"},
        )
        body = spec_example("using_person_id")
        r = http.post(CREATE, json=body, headers=key(account))
        assert r.status_code == 400, r.text
        [entry] = r.json()["activities"]
        assert entry["activity_id"] == "act:cm:page-view"
        assert "00647687d2e43b25a0261f00" in entry["error"]
        assert entry["error"].startswith("activities[0]")

    def test_location_is_stored_and_readable(self, http: httpx.Client, account: NewAccount) -> None:
        """Spec: "Example request body - With location data"; issue 4: "source_ip,
        custom, address stored with the activity and visible through the read API"."""
        define_fields(http, account, "act:cm:store-visit", {"str:cm:store-name": "str"})
        body = spec_example("with_location_data")
        r = http.post(CREATE, json=body, headers=key(account))
        assert r.status_code == 200, r.text
        contact = find_contact(http, account, "email:visitor@example.com")
        assert contact is not None
        [stored] = timeline(http, account, contact["id"])
        assert stored["location"] == body["activities"][0]["location"]

        ip_and_address = activity(
            "act:cm:store-visit",
            email="visitor@example.com",
            attributes={"str:cm:store-name": "Sydney"},
            location={
                "source_ip": "119.18.0.218",
                "address": {"address1": "123 Main St", "city": "Melbourne", "postal_code": "3000"},
            },
        )
        assert send(http, account, ip_and_address).status_code == 200
        latest = timeline(http, account, contact["id"])[0]
        assert latest["location"]["source_ip"] == "119.18.0.218"
        assert latest["location"]["address"]["city"] == "Melbourne"


class TestDefinitions:
    def test_an_undefined_activity_is_refused_by_name(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Spec: "Before creating activities, ensure the activity definition exists";
        issue 4: "An undefined activity -> a per-activity error naming it"."""
        r = send(http, account, activity("act:cm:never-declared"))
        assert r.status_code == 400
        [entry] = r.json()["activities"]
        assert "act:cm:never-declared" in entry["error"]
        assert find_contact(http, account, "email:jane@example.com") is None

    def test_the_account_setting_creates_definitions_on_first_use(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Issue 4: "an account setting lets unknown activity ids create a definition
        on first use (off by default)"."""
        set_settings(http, account, auto_create_definitions=True)
        first = activity("act:cm:signup", attributes={"str:cm:plan": "pro", "int:cm:seats": 3})
        assert send(http, account, first).status_code == 200
        r = http.get("/api/v1/activity-definitions/act:cm:signup", headers=admin(account))
        assert r.status_code == 200, r.text
        assert r.json()["fields"] == {"str:cm:plan": "str", "int:cm:seats": "int"}
        assert r.json()["auto_created"] is True
        # Once defined, the definition holds: a new field is refused.
        later = activity("act:cm:signup", attributes={"str:cm:coupon": "X"})
        entry = send(http, account, later).json()["activities"][0]
        assert "str:cm:coupon" in entry["error"]

    def test_a_first_use_too_big_for_a_definition_is_refused_alone(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """A definition holds at most 100 fields: a first activity with 101
        attributes cannot create one, and only that activity is refused."""
        set_settings(http, account, auto_create_definitions=True)
        too_many = activity("act:cm:huge", attributes={f"int:cm:f{i}": i for i in range(101)})
        fine = activity("act:cm:small", email="fine@example.com", attributes={"str:cm:a": "b"})
        r = send(http, account, too_many, fine)
        assert r.status_code == 200, r.text
        entries = r.json()["activities"]
        assert "act:cm:huge" in entries[0]["error"]
        assert "100" in entries[0]["error"]
        assert entries[1]["status"] == "ingested"
        missing = http.get("/api/v1/activity-definitions/act:cm:huge", headers=admin(account))
        assert missing.status_code == 404

    def test_a_field_not_in_the_definition_or_of_another_type_is_refused(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Issue 4: "a field not in the definition -> error naming the field"."""
        define_purchase(http, account)
        undeclared = activity(attributes={"str:cm:colour": "red"})
        other_type = activity(attributes={"int:cm:product-name": 3})
        good = activity(email="good@example.com")
        r = send(http, account, undeclared, other_type, good)
        assert r.status_code == 200, r.text
        entries = r.json()["activities"]
        assert "str:cm:colour" in entries[0]["error"]
        assert "int:cm:product-name" in entries[1]["error"]
        assert entries[2]["status"] == "ingested"
        # The refused activities created no person.
        assert find_contact(http, account, "email:jane@example.com") is None


class TestTypedAttributes:
    @pytest.mark.parametrize(
        ("field_id", "value", "reason"),
        [
            ("str:cm:product-name", 5, "must be a string"),
            ("int:cm:quantity", "3", "must be an integer"),
            ("int:cm:quantity", True, "must be an integer"),
            ("int:cm:quantity", 2.5, "must be an integer"),
            ("bol:cm:is-member", "yes", "must be true or false"),
            ("dtz:cm:event-date", "next tuesday", "ISO 8601"),
            ("obj:cm:cart", [1, 2], "must be a JSON object"),
            ("num:cm:price", 1, "not a valid field id"),
            ("str:product", "x", "not a valid field id"),
        ],
    )
    def test_a_value_of_the_wrong_type_is_refused_naming_the_field(
        self, http: httpx.Client, account: NewAccount, field_id: str, value: Any, reason: str
    ) -> None:
        """Spec: "Activity attributes use the format type:namespace:field" with the
        types str, int, bol, dtz, obj; issue 4: "A value of the wrong type, a
        malformed field id ... -> error naming the field"."""
        r = send(http, account, activity(attributes={field_id: value}))
        assert r.status_code == 400
        [entry] = r.json()["activities"]
        assert f"activities[0].attributes.{field_id}" in entry["error"]
        assert reason in entry["error"]

    def test_every_type_is_stored_as_sent(self, http: httpx.Client, account: NewAccount) -> None:
        """Spec's attribute types table: str, int, bol, dtz (ISO 8601), obj."""
        fields = {
            "str:cm:name": "str",
            "int:cm:quantity": "int",
            "bol:cm:is-member": "bol",
            "dtz:cm:event-date": "dtz",
            "obj:cm:cart": "obj",
        }
        define_fields(http, account, "act:cm:typed", fields)
        values = {
            "str:cm:name": "Widget Pro",
            "int:cm:quantity": 2,
            "bol:cm:is-member": True,
            "dtz:cm:event-date": "2025-11-15T18:00:00Z",
            "obj:cm:cart": {"items": [{"sku": "A", "qty": 2}]},
        }
        r = send(http, account, activity("act:cm:typed", attributes=values))
        assert r.status_code == 200, r.text
        person = r.json()["activities"][0]["person_id"]
        assert timeline(http, account, person)[0]["properties"] == values

    def test_null_empty_string_and_zero_stay_distinct(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Spec: "Set to 0 or "" (empty string) - Allows field to be found in
        searches. Set to null - Excludes field from searches"."""
        define_fields(
            http, account, "act:cm:survey", {"str:cm:comment": "str", "int:cm:score": "int"}
        )
        as_null = activity(
            "act:cm:survey",
            email="a@example.com",
            attributes={"str:cm:comment": None, "int:cm:score": None},
        )
        as_empty = activity(
            "act:cm:survey",
            email="b@example.com",
            attributes={"str:cm:comment": "", "int:cm:score": 0},
        )
        as_null["fields"]["str:cm:nickname"] = None
        as_empty["fields"]["str:cm:nickname"] = ""
        entries = send(http, account, as_null, as_empty).json()["activities"]
        null_props = timeline(http, account, entries[0]["person_id"])[0]["properties"]
        empty_props = timeline(http, account, entries[1]["person_id"])[0]["properties"]
        assert null_props == {"str:cm:comment": None, "int:cm:score": None}
        assert empty_props == {"str:cm:comment": "", "int:cm:score": 0}
        a = find_contact(http, account, "email:a@example.com")
        b = find_contact(http, account, "email:b@example.com")
        assert a is not None
        assert b is not None
        assert a["attributes"] == {"str:cm:nickname": None}
        assert b["attributes"] == {"str:cm:nickname": ""}


class TestMergeRules:
    def _profile(self, http: httpx.Client, account: NewAccount) -> dict[str, Any]:
        contact = find_contact(http, account, "email:m@example.com")
        assert contact is not None
        return dict(contact["attributes"])

    def _send(
        self, http: httpx.Client, account: NewAccount, fields: dict[str, Any], strategy: int | None
    ) -> dict[str, Any]:
        a = activity(email="m@example.com")
        a["fields"].update(fields)
        if strategy is not None:
            a["merge_strategy"] = strategy
        r = send(http, account, a)
        assert r.status_code == 200, r.text
        return dict(r.json()["activities"][0])

    @pytest.mark.parametrize(
        ("strategy", "expected"),
        [
            # "1 (append only)": only empty fields are filled.
            (1, {"str::first": "Jane", "str::last": "Doe", "str:cm:tier": "gold"}),
            # "2 (overwrite)"
            (2, {"str::first": "Janet", "str::last": "Doe", "str:cm:tier": "gold"}),
            # "3 (ignore existing)": an existing contact's fields stay as they were.
            (3, {"str::first": "Jane", "str::last": None}),
        ],
    )
    def test_merge_strategy_decides_what_an_existing_contact_keeps(
        self,
        http: httpx.Client,
        account: NewAccount,
        strategy: int,
        expected: dict[str, Any],
    ) -> None:
        """Spec: "merge_strategy | integer | Override API key merge setting: 1 (append
        only), 2 (overwrite), 3 (ignore existing)"."""
        define_purchase(http, account)
        self._send(http, account, {"str::first": "Jane", "str::last": None}, 2)
        entry = self._send(
            http,
            account,
            {"str::first": "Janet", "str::last": "Doe", "str:cm:tier": "gold"},
            strategy,
        )
        assert entry["person_status"] == "updated"
        assert self._profile(http, account) == expected

    def test_a_new_contact_gets_its_fields_whatever_the_strategy(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Spec: "If not found, creates new contact" (with its fields), also under 3."""
        define_purchase(http, account)
        entry = self._send(http, account, {"str::first": "Jane"}, 3)
        assert entry["person_status"] == "created"
        assert self._profile(http, account) == {"str::first": "Jane"}

    def test_the_account_default_strategy_applies_without_merge_strategy(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Spec: merge_strategy "Override[s] API key merge setting"; issue 4: "default
        from an account setting"."""
        define_purchase(http, account)
        set_settings(http, account, ortto_merge_strategy=1)
        self._send(http, account, {"str::first": "Jane"}, None)
        self._send(http, account, {"str::first": "Janet", "str::last": "Doe"}, None)
        assert self._profile(http, account) == {"str::first": "Jane", "str::last": "Doe"}

    def test_merge_by_two_fields_finds_the_contact_by_phone(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Spec: merge_by "(max 2) ... ["str::email", "str::phone"]"."""
        define_purchase(http, account)
        first = activity(email="p@example.com")
        first["fields"]["str::phone"] = "+61 400 000 001"
        person = send(http, account, first).json()["activities"][0]["person_id"]
        by_phone = {
            "activity_id": "act:cm:purchase",
            "attributes": {"str:cm:product-name": "Refill"},
            "fields": {"str::phone": "+61400000001", "str::first": "Pat"},
            "merge_by": ["str::phone"],
        }
        entry = send(http, account, by_phone).json()["activities"][0]
        assert entry["person_id"] == person
        assert entry["person_status"] == "updated"

    def test_merge_by_must_name_fields_that_are_present(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Spec: merge_by "Required if person_id not provided"; issue 4: "merge_by of
        1 or 2 field ids present in fields"."""
        define_purchase(http, account)
        cases = [
            activity(merge_by=["str::phone"]),
            activity(merge_by=["str::email", "str::phone", "str::first"]),
            activity(merge_by=[]),
            {k: v for k, v in activity().items() if k != "merge_by"},
            {k: v for k, v in activity().items() if k != "fields"},
        ]
        entries = send(http, account, *cases).json()["activities"]
        assert [("merge_by" in e["error"] or "fields" in e["error"]) for e in entries] == [True] * 5


class TestBackdatingAndDedup:
    def test_recent_backdated_activity_is_ingested_at_once_with_its_time(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Spec: "Activities up to 90 days old ... process immediately"."""
        define_purchase(http, account)
        created = "2026-10-01T09:00:00+02:00"
        r = send(http, account, activity(created=created))
        if r.json()["activities"][0].get("status") == "queued":
            pytest.fail("an activity less than 90 days old must not be queued")
        person = r.json()["activities"][0]["person_id"]
        assert timeline(http, account, person)[0]["occurred_at"] == "2026-10-01T07:00:00Z"

    def test_far_future_created_is_refused(self, http: httpx.Client, account: NewAccount) -> None:
        """Issue 4: "far-future timestamps are rejected"."""
        define_purchase(http, account)
        r = send(http, account, activity(created="2099-01-01T00:00:00Z"))
        assert r.status_code == 400
        assert "activities[0].created" in r.json()["activities"][0]["error"]

    def test_created_that_utc_cannot_hold_is_refused(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """A valid ISO 8601 date-time before year 1 in UTC is the activity's error, not a 500."""
        define_purchase(http, account)
        r = send(http, account, activity(created="0001-01-01T00:00:00+01:00"))
        assert r.status_code == 400, r.text
        assert r.json()["activities"][0]["error"] == (
            "activities[0].created: '0001-01-01T00:00:00+01:00' is out of range"
        )

    def test_same_key_and_created_is_stored_once(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Spec: "If same key + created pair sent multiple times, Ortto merges
        requests - Prevents duplicate activity ingestion"."""
        define_purchase(http, account)
        twin = activity(key="order-12345", created="2026-11-01T10:00:00Z")
        first = send(http, account, twin).json()["activities"][0]
        again = send(http, account, twin, copy.deepcopy(twin)).json()["activities"]
        assert [e["status"] for e in again] == ["ingested", "ingested"]
        other_time = activity(key="order-12345", created="2026-11-02T10:00:00Z")
        assert send(http, account, other_time).status_code == 200
        stored = timeline(http, account, first["person_id"])
        assert [a["occurred_at"] for a in stored] == [
            "2026-11-02T10:00:00Z",
            "2026-11-01T10:00:00Z",
        ]


class TestLimitsAndErrors:
    def test_wrong_or_missing_api_key_is_401(self, http: httpx.Client, account: NewAccount) -> None:
        """Spec: "401 Unauthorized - Invalid or missing API key"."""
        basic = spec_example("basic_activity_creation")
        missing = http.post(CREATE, json=basic)
        wrong = http.post(CREATE, json=basic, headers={"X-Api-Key": "nope"})
        other_dialect = http.post(
            CREATE, json=basic, headers={"X-Api-Key": account.netcore_api_key}
        )
        for r in (missing, wrong, other_dialect):
            assert r.status_code == 401
            assert r.json()["code"] == 401
            assert r.json()["error"]

    def test_more_than_100_activities_is_400(self, http: httpx.Client, account: NewAccount) -> None:
        """Spec: "Max activities per request | 100"."""
        r = send(http, account, *[activity()] * 101)
        assert r.status_code == 400
        assert "100" in r.json()["error"]

    def test_a_body_over_2_mb_is_413(self, http: httpx.Client, account: NewAccount) -> None:
        """Spec: "413 Payload Too Large - Request exceeds 2 MB limit"."""
        big = activity(attributes={"str:cm:product-name": "x" * (2 * 1024 * 1024)})
        r = send(http, account, big)
        assert r.status_code == 413
        assert r.json()["code"] == 413

    @pytest.mark.parametrize(
        "body",
        [
            b"{not json",
            b"[]",
            b'{"activities": "x"}',
            b'{"activities": []}',
            b'{"activities": [{}], "async": "yes"}',
        ],
    )
    def test_malformed_bodies_are_400(
        self, http: httpx.Client, account: NewAccount, body: bytes
    ) -> None:
        """Spec: "400 Bad Request - Invalid parameters or malformed JSON"."""
        r = http.post(
            CREATE, content=body, headers={**key(account), "Content-Type": "application/json"}
        )
        assert r.status_code == 400, r.text
        assert r.json()["code"] == 400

    def test_one_bad_activity_does_not_lose_the_good_ones(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Issue 4: "the HTTP status stays 200 when at least one activity was accepted"."""
        define_purchase(http, account)
        r = send(
            http,
            account,
            activity(email="one@example.com"),
            activity(email="not-an-email"),
            activity(email="two@example.com"),
        )
        assert r.status_code == 200
        entries = r.json()["activities"]
        assert entries[1]["error"].startswith("activities[1].fields.str::email")
        assert [e.get("status") for e in entries] == ["ingested", None, "ingested"]
        assert find_contact(http, account, "email:two@example.com") is not None

    def test_51st_activity_per_contact_per_day_is_refused(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Spec: "Max activity events per activity per contact per 24 hours | 50"."""
        define_purchase(http, account)
        define_fields(http, account, "act:cm:refund", {"str:cm:product-name": "str"})
        r = send(http, account, *[activity()] * 30)
        assert r.status_code == 200
        r = send(http, account, *[activity()] * 21, activity("act:cm:refund"))
        entries = r.json()["activities"]
        assert [e.get("status") for e in entries[:20]] == ["ingested"] * 20
        assert "50" in entries[20]["error"]
        assert entries[21]["status"] == "ingested"  # another activity of the same person
        person = entries[0]["person_id"]
        names = [a["name"] for a in timeline(http, account, person)]
        assert names.count("act:cm:purchase") == 50

    def test_idempotency_key_replays_the_first_answer(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """A retried request with the same Idempotency-Key stores nothing twice."""
        define_purchase(http, account)
        headers = {**key(account), "Idempotency-Key": uuid.uuid4().hex}
        body = {"activities": [activity()]}
        first = http.post(CREATE, json=body, headers=headers)
        second = http.post(CREATE, json=body, headers=headers)
        assert first.status_code == second.status_code == 200
        assert first.json() == second.json()
        assert len(timeline(http, account, first.json()["activities"][0]["person_id"])) == 1

    def test_a_person_of_another_account_is_unknown(
        self, http: httpx.Client, account: NewAccount, database_url: str
    ) -> None:
        """DESIGN: "Tenants never see each other's data"."""
        define_purchase(http, account)
        person = send(http, account, activity()).json()["activities"][0]["person_id"]
        other = create_account_at(database_url, f"other-{uuid.uuid4().hex[:6]}")
        define_purchase(http, other)
        r = send(
            http,
            other,
            {"activity_id": "act:cm:purchase", "attributes": {}, "person_id": person},
        )
        assert r.status_code == 400
        assert person in r.json()["activities"][0]["error"]


class TestAsync:
    def test_async_batch_answers_queued_and_is_stored_in_order(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Spec: "Example response - Asynchronous processing": status and
        person_status "queued"; "Activities are queued and processed in order"."""
        define_purchase(http, account)
        batches = []
        for first_name in ("Ann", "Bea", "Cat"):
            a = activity(email="async@example.com")
            a["fields"]["str::first"] = first_name
            r = send(http, account, a, activity(email="other@example.com"), **{"async": True})
            assert r.status_code == 200, r.text
            assert [e["status"] for e in r.json()["activities"]] == ["queued", "queued"]
            assert [e["person_status"] for e in r.json()["activities"]] == ["queued", "queued"]
            assert "person_id" not in r.json()["activities"][0]
            batches.append(r.headers["X-Eventyard-Job-Id"])
        jobs = [wait_for_job(http, account, job_id) for job_id in batches]
        assert [j["status"] for j in jobs] == ["completed"] * 3
        finished = [j["finished_at"] for j in jobs]
        assert finished == sorted(finished)
        contact = find_contact(http, account, "email:async@example.com")
        assert contact is not None
        # Processed in order: the last batch's overwrite wins.
        assert contact["attributes"]["str::first"] == "Cat"
        assert len(timeline(http, account, contact["id"])) == 3

    def test_async_errors_found_by_the_worker_are_in_the_job_result(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Issue 4: the batch "is stored durably before the response and processed
        ... by a worker"; what the worker refuses is reported on the job."""
        define_purchase(http, account)
        undefined = activity("act:cm:not-defined")
        r = send(http, account, activity(), undefined, **{"async": True})
        assert r.status_code == 200
        job = wait_for_job(http, account, r.headers["X-Eventyard-Job-Id"])
        assert job["status"] == "completed"
        [refused] = job["result"]["rejected"]
        assert refused["record"] == "activities[1]"
        assert "act:cm:not-defined" in refused["error"]

    def test_syntax_errors_are_answered_at_once_even_when_async(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """An activity that can never be stored is refused in the answer, not queued."""
        r = send(http, account, activity(attributes={"int:cm:q": "3"}), **{"async": True})
        assert r.status_code == 400
        assert "int:cm:q" in r.json()["activities"][0]["error"]


def test_rate_limit_answers_429_with_retry_after(
    database_url: str, account: NewAccount, tmp_path: Path
) -> None:
    """Spec: "429 Too Many Requests - Rate limit exceeded"; issue 4: "per-key
    request rate limit (configurable, default generous) answering 429 with
    Retry-After"."""
    env = {"EVENTYARD_RATE_LIMIT_PER_SECOND": "0.1", "EVENTYARD_RATE_LIMIT_BURST": "2"}
    with (
        running_server(database_url, tmp_path / "server.log", env) as srv,
        httpx.Client(base_url=srv.base_url, timeout=30) as client,
    ):
        define_purchase(client, account)
        answers = [send(client, account, activity()) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert answers[2].json()["code"] == 429
        assert int(answers[2].headers["Retry-After"]) >= 1
        # Another key is not held up by this one's requests.
        assert http_status_for_other_account(client, database_url) == 400


def http_status_for_other_account(client: httpx.Client, database_url: str) -> int:
    other = create_account_at(database_url, f"other-{uuid.uuid4().hex[:6]}")
    return send(client, other, activity("act:cm:undefined")).status_code
