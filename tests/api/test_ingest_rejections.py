"""Refused ingest requests and records are kept per account, for the console's overview.

Issue 7: the overview shows "counts of … rejected records; the latest ingest
errors with the record index and reason, so a broken integration is visible
at a glance". Every dialect feeds the same record: whole requests refused
as bad input (400/413/422) and the refused records of partly accepted
batches (CleverTap ``unprocessed``, Ortto per-activity errors). Requests
that fail authentication belong to no account and are not kept; overload
(429) and outages (503) say nothing about the records.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from eventyard.core.model import NewAccount
from eventyard.services.ingest_stats import Rejection, latest_rejections, rejected_records_since
from eventyard.storage.database import Database

SINCE = datetime.now(UTC) - timedelta(minutes=5)


def netcore_event(timestamp: str = "2026-01-02T10:00:00+05:30") -> dict[str, Any]:
    return {
        "asset_id": "a1",
        "activity_name": "Add To Cart",
        "timestamp": timestamp,
        "identity": "jane@example.com",
        "activity_source": "web",
        "activity_params": {},
    }


def rejections(store: Database, account: NewAccount) -> list[Rejection]:
    return latest_rejections(store, account.account.id)


class TestWholeRequests:
    def test_a_netcore_batch_refused_for_one_bad_event_counts_every_event(
        self, http: httpx.Client, store: Database, account: NewAccount
    ) -> None:
        """Netcore refuses the whole batch, so all three events were not stored."""
        body = [netcore_event(), netcore_event("yesterday"), netcore_event()]
        r = http.post(
            "/v1/activity/upload", json=body, headers={"api-key": account.netcore_api_key}
        )
        assert r.status_code == 400
        (rejection,) = rejections(store, account)
        assert (rejection.dialect, rejection.route, rejection.status_code) == (
            "netcore",
            "/v1/activity/upload",
            400,
        )
        assert rejection.rejected_records == 3
        assert [(e.index, e.field) for e in rejection.errors] == [(1, "timestamp")]
        assert "timestamp" in rejection.errors[0].message
        assert rejected_records_since(store, account.account.id, SINCE) == 3

    def test_a_cordial_activity_refused_with_422_is_kept(
        self, http: httpx.Client, store: Database, account: NewAccount
    ) -> None:
        auth = base64.b64encode(f"{account.cordial_api_key}:".encode()).decode()
        r = http.post(
            "/v2/contactactivities",
            json={"email": "jane@example.com", "a": "open"},
            headers={"Authorization": f"Basic {auth}"},
        )
        assert r.status_code == 422
        (rejection,) = rejections(store, account)
        assert (rejection.dialect, rejection.status_code, rejection.rejected_records) == (
            "cordial",
            422,
            1,
        )

    def test_a_body_that_is_not_json_is_kept_as_one_refused_request(
        self, http: httpx.Client, store: Database, account: NewAccount
    ) -> None:
        r = http.post(
            "/v1/activity/upload",
            content=b"[{not json",
            headers={"api-key": account.netcore_api_key, "Content-Type": "application/json"},
        )
        assert r.status_code == 400
        (rejection,) = rejections(store, account)
        assert rejection.rejected_records == 1
        assert rejection.errors[0].message

    def test_a_wrong_key_is_not_kept_for_anyone(
        self, http: httpx.Client, store: Database, account: NewAccount
    ) -> None:
        r = http.post(
            "/v1/activity/upload",
            json=[netcore_event("yesterday")],
            headers={"api-key": account.netcore_api_key + "x"},
        )
        assert r.status_code == 401
        assert rejections(store, account) == []


class TestPartlyAcceptedBatches:
    def test_clevertap_unprocessed_records_are_kept_with_their_index(
        self, http: httpx.Client, store: Database, account: NewAccount
    ) -> None:
        body = {
            "d": [
                {"type": "event", "identity": "u1", "evtName": "Viewed", "evtData": {}},
                {"type": "event", "evtName": "Viewed", "evtData": {}},
            ]
        }
        r = http.post(
            "/1/upload",
            json=body,
            headers={
                "X-CleverTap-Account-Id": account.clevertap_account_id,
                "X-CleverTap-Passcode": account.clevertap_passcode,
            },
        )
        assert r.status_code == 200
        assert r.json()["status"] == "partial"
        (rejection,) = rejections(store, account)
        assert (rejection.dialect, rejection.status_code, rejection.rejected_records) == (
            "clevertap",
            200,
            1,
        )
        assert {e.index for e in rejection.errors} == {1}

    def test_ortto_refused_activities_are_kept_and_stored_ones_are_not(
        self, http: httpx.Client, store: Database, account: NewAccount
    ) -> None:
        good = {
            "activity_id": "act:cm:purchase",
            "attributes": {},
            "fields": {"str::email": "jane@example.com"},
            "merge_by": ["str::email"],
        }
        bad = {**good, "fields": {"str::email": "not an e-mail"}}
        r = http.patch(
            "/api/v1/account/settings",
            json={"auto_create_definitions": True},
            headers={"Authorization": f"Bearer {account.admin_token}"},
        )
        assert r.status_code == 200, r.text
        r = http.post(
            "/v1/activities/create",
            json={"activities": [good, bad, good]},
            headers={"X-Api-Key": account.ortto_api_key},
        )
        assert r.status_code == 200, r.text
        (rejection,) = rejections(store, account)
        assert rejection.rejected_records == 1
        assert [e.index for e in rejection.errors] == [1]
        assert "str::email" in rejection.errors[0].message

    def test_a_fully_accepted_batch_leaves_nothing(
        self, http: httpx.Client, store: Database, account: NewAccount
    ) -> None:
        r = http.post(
            "/v1/activity/upload",
            json=[netcore_event()],
            headers={"api-key": account.netcore_api_key},
        )
        assert r.status_code == 200
        assert rejections(store, account) == []
