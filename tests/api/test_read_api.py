"""The canonical read API (``/api/v1``) against a real server, on both databases.

Data goes in through Netcore's ``POST /v1/activity/upload`` (header ``api-key``)
and is read back with ``Authorization: Bearer <admin token>``.
"""

from __future__ import annotations

import base64
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from eventyard.core.model import NewAccount
from eventyard.dialects.registry import create_account
from eventyard.storage.database import Database
from tests.support import netcore_event

UPLOAD = "/v1/activity/upload"
BASE_TIME = datetime(2025, 9, 30, 8, 0, 0, tzinfo=UTC)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def zulu(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def upload(http: httpx.Client, account: NewAccount, events: list[dict[str, Any]]) -> None:
    r = http.post(UPLOAD, json=events, headers={"api-key": account.netcore_api_key})
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "success"}


def find(http: httpx.Client, token: str, identifier: str) -> list[dict[str, Any]]:
    r = http.get("/api/v1/contacts", params={"identifier": identifier}, headers=bearer(token))
    assert r.status_code == 200, r.text
    contacts: list[dict[str, Any]] = r.json()["contacts"]
    return contacts


def find_one(http: httpx.Client, token: str, identifier: str) -> dict[str, Any]:
    contacts = find(http, token, identifier)
    assert len(contacts) == 1, contacts
    return contacts[0]


def all_activities(
    http: httpx.Client, token: str, contact_id: str, limit: int = 1000
) -> list[dict[str, Any]]:
    """Every activity of the contact, walking the cursor to the end."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        r = http.get(
            f"/api/v1/contacts/{contact_id}/activities", params=params, headers=bearer(token)
        )
        assert r.status_code == 200, r.text
        body = r.json()
        items.extend(body["activities"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items


def parse_zulu(text: str) -> datetime:
    assert text.endswith("Z"), text
    moment = datetime.fromisoformat(text[:-1] + "+00:00")
    assert moment.utcoffset() == timedelta(0)
    return moment


def assert_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    error: dict[str, Any] = r.json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    return error


class TestFindContacts:
    def test_finds_a_contact_by_each_of_its_identifiers(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        identity = unique("cust")
        email = f"{unique('jane')}@example.com"
        upload(
            http,
            account,
            [netcore_event(identity=identity, email=email, mobile="+91 98765-43210")],
        )

        by_identity = find_one(http, account.admin_token, f"identity:{identity}")
        by_email = find_one(http, account.admin_token, f"email:{email}")
        assert by_identity == by_email
        assert set(by_identity) == {
            "id",
            "status",
            "identifiers",
            "attributes",
            "created_at",
            "updated_at",
        }
        assert by_identity["status"] == "known"
        assert sorted((i["kind"], i["value"]) for i in by_identity["identifiers"]) == sorted(
            [("identity", identity), ("email", email), ("mobile", "+919876543210")]
        )
        assert isinstance(by_identity["attributes"], dict)
        created = parse_zulu(by_identity["created_at"])
        assert parse_zulu(by_identity["updated_at"]) >= created

    def test_email_lookup_is_case_insensitive(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Emails are stored lower-cased; a lookup normalises the value the same way."""
        local = unique("Upper")
        upload(http, account, [netcore_event(identity=None, email=f"{local}@X.com")])

        stored = find_one(http, account.admin_token, f"email:{local.lower()}@x.com")
        assert stored["identifiers"] == [{"kind": "email", "value": f"{local.lower()}@x.com"}]
        assert find_one(http, account.admin_token, f"email:{local}@X.com") == stored
        assert find_one(http, account.admin_token, f"email:  {local.upper()}@X.COM ") == stored

    def test_identifier_kind_is_case_insensitive_for_email(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """``EMAIL:Upper@X.com`` finds the contact stored as ``upper@x.com``."""
        local = unique("Upper")
        upload(http, account, [netcore_event(identity=None, email=f"{local.lower()}@x.com")])

        stored = find_one(http, account.admin_token, f"email:{local.lower()}@x.com")
        assert find_one(http, account.admin_token, f"EMAIL:{local}@X.com") == stored

    def test_mobile_lookup_is_normalised(self, http: httpx.Client, account: NewAccount) -> None:
        digits = f"{random.randrange(10**9, 10**10)}"
        upload(http, account, [netcore_event(identity=None, mobile=f"+44 {digits}")])

        stored = find_one(http, account.admin_token, f"mobile:+44{digits}")
        formatted = f"+44 ({digits[:3]}) {digits[3:6]}-{digits[6:]}"
        assert find_one(http, account.admin_token, f"mobile:{formatted}") == stored

    def test_unknown_identifier_is_an_empty_list(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        assert find(http, account.admin_token, f"identity:{unique('nobody')}") == []
        assert find(http, account.admin_token, f"email:{unique('nobody')}@example.com") == []

    @pytest.mark.parametrize(
        "identifier",
        [
            "no-separator",
            "email:not-an-email",
            "email:",
            "identity:   ",
            ":value-without-kind",
            "bad kind!:x",
            "mobile:call-me",
            "mobile:12",
            f"identity:{'x' * 513}",
        ],
    )
    def test_malformed_identifier_is_400(
        self, http: httpx.Client, account: NewAccount, identifier: str
    ) -> None:
        r = http.get(
            "/api/v1/contacts",
            params={"identifier": identifier},
            headers=bearer(account.admin_token),
        )
        error = assert_error(r, 400, "invalid_identifier")
        assert error["errors"][0]["field"] == "identifier"

    def test_missing_identifier_is_400(self, http: httpx.Client, account: NewAccount) -> None:
        r = http.get("/api/v1/contacts", headers=bearer(account.admin_token))
        assert r.status_code == 400, r.text
        assert r.json()["error"]["errors"][0]["field"] == "identifier"


class TestGetContact:
    def test_returns_the_contact_by_id(self, http: httpx.Client, account: NewAccount) -> None:
        identity = unique("cust")
        upload(http, account, [netcore_event(identity=identity)])
        found = find_one(http, account.admin_token, f"identity:{identity}")

        r = http.get(f"/api/v1/contacts/{found['id']}", headers=bearer(account.admin_token))
        assert r.status_code == 200, r.text
        # The contact as found, plus its groups (Segment group calls; none here).
        assert r.json() == {**found, "groups": []}

    @pytest.mark.parametrize("contact_id", ["0" * 24, "ffffffffffffffffffffffff", "nope"])
    def test_unknown_id_is_404(
        self, http: httpx.Client, account: NewAccount, contact_id: str
    ) -> None:
        token = account.admin_token
        assert_error(
            http.get(f"/api/v1/contacts/{contact_id}", headers=bearer(token)), 404, "not_found"
        )
        assert_error(
            http.get(f"/api/v1/contacts/{contact_id}/activities", headers=bearer(token)),
            404,
            "not_found",
        )
        assert_error(
            http.get(f"/api/v1/contacts/{contact_id}/identity-events", headers=bearer(token)),
            404,
            "not_found",
        )


class TestActivities:
    def test_activity_fields_and_utc_timestamps(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        identity = unique("cust")
        upload(
            http,
            account,
            [
                netcore_event(
                    identity=identity,
                    activity_name="Product Viewed",
                    timestamp="2025-09-30T14:10:46+05:30",
                    activity_source="app",
                    activity_params={"sku": "A-1", "price": 12.5},
                )
            ],
        )
        contact = find_one(http, account.admin_token, f"identity:{identity}")

        r = http.get(
            f"/api/v1/contacts/{contact['id']}/activities", headers=bearer(account.admin_token)
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["next_cursor"] is None
        [activity] = body["activities"]
        assert activity["name"] == "Product Viewed"
        assert activity["occurred_at"] == "2025-09-30T08:40:46Z"
        parse_zulu(activity["received_at"])
        assert activity["source"] == "app"
        assert activity["dialect"] == "netcore"
        assert activity["asset_id"] == "55a6d1d3ac4d5253ca4afd9636442434"
        assert activity["properties"] == {"sku": "A-1", "price": 12.5}
        assert activity["journey_eligible"] is False  # older than 24 h when received

    def test_newest_first(self, http: httpx.Client, account: NewAccount) -> None:
        identity = unique("cust")
        times = [BASE_TIME + timedelta(hours=h) for h in (5, 1, 9, 3, 7)]
        upload(
            http,
            account,
            [
                netcore_event(identity=identity, timestamp=zulu(t), activity_params={"h": i})
                for i, t in enumerate(times)
            ],
        )
        contact = find_one(http, account.admin_token, f"identity:{identity}")

        activities = all_activities(http, account.admin_token, contact["id"])
        assert [a["occurred_at"] for a in activities] == [
            zulu(t) for t in sorted(times, reverse=True)
        ]

    def test_paging_walks_every_activity_once_in_order_with_ties(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """25 activities, limit 10: pages of 10, 10 and 5, then no cursor.

        Activities share ``occurred_at`` in fours, ties straddle both page
        boundaries, and they arrive in two requests in shuffled order.
        """
        identity = unique("cust")
        events = [
            netcore_event(
                identity=identity,
                timestamp=zulu(BASE_TIME + timedelta(minutes=n // 4)),
                activity_params={"n": n},
            )
            for n in range(25)
        ]
        random.Random(7).shuffle(events)
        upload(http, account, events[:12])
        upload(http, account, events[12:])
        contact = find_one(http, account.admin_token, f"identity:{identity}")
        url = f"/api/v1/contacts/{contact['id']}/activities"

        everything = http.get(url, params={"limit": 1000}, headers=bearer(account.admin_token))
        assert everything.status_code == 200, everything.text
        reference = everything.json()["activities"]
        assert everything.json()["next_cursor"] is None
        assert len(reference) == 25

        pages: list[list[dict[str, Any]]] = []
        cursor: str | None = None
        for _ in range(10):
            params: dict[str, Any] = {"limit": 10}
            if cursor is not None:
                params["cursor"] = cursor
            r = http.get(url, params=params, headers=bearer(account.admin_token))
            assert r.status_code == 200, r.text
            pages.append(r.json()["activities"])
            cursor = r.json()["next_cursor"]
            if cursor is None:
                break
        assert [len(p) for p in pages] == [10, 10, 5]

        walked = [a for page in pages for a in page]
        assert walked == reference
        assert len({a["id"] for a in walked}) == 25
        assert sorted(a["properties"]["n"] for a in walked) == list(range(25))
        moments = [parse_zulu(a["occurred_at"]) for a in walked]
        assert moments == sorted(moments, reverse=True)
        # A tie straddles each page boundary, so the cursor had to break it.
        assert moments[9] == moments[10]
        assert moments[19] == moments[20]

    def test_paging_when_every_activity_has_the_same_time(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        identity = unique("cust")
        same = zulu(BASE_TIME)
        upload(
            http,
            account,
            [
                netcore_event(identity=identity, timestamp=same, activity_params={"n": n})
                for n in range(13)
            ],
        )
        upload(
            http,
            account,
            [
                netcore_event(identity=identity, timestamp=same, activity_params={"n": n})
                for n in range(13, 25)
            ],
        )
        contact = find_one(http, account.admin_token, f"identity:{identity}")

        walked = all_activities(http, account.admin_token, contact["id"], limit=10)
        assert sorted(a["properties"]["n"] for a in walked) == list(range(25))
        assert len({a["id"] for a in walked}) == 25
        assert {a["occurred_at"] for a in walked} == {same}

    def test_paging_across_offsets_and_fractions_of_a_second(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Instants written with different offsets and precisions order as instants."""
        identity = unique("cust")
        stamps = [
            ("2025-09-30T08:40:46.500Z", "2025-09-30T08:40:46.500000Z"),
            ("2025-09-30T14:10:46.250+05:30", "2025-09-30T08:40:46.250000Z"),
            ("2025-09-30T08:40:46Z", "2025-09-30T08:40:46Z"),
            ("2025-09-30T03:40:46.750-05:00", "2025-09-30T08:40:46.750000Z"),
            ("2025-09-30T10:40:46.000001+02:00", "2025-09-30T08:40:46.000001Z"),
            ("2025-09-30 08:40:45", "2025-09-30T08:40:45Z"),
            ("2025-09-30T23:59:59.999+00:00", "2025-09-30T23:59:59.999000Z"),
            ("2025-10-01T00:00:00.001+00:30", "2025-09-30T23:30:00.001000Z"),
        ]
        upload(
            http,
            account,
            [
                netcore_event(identity=identity, timestamp=sent, activity_params={"sent": sent})
                for sent, _ in stamps
            ],
        )
        contact = find_one(http, account.admin_token, f"identity:{identity}")

        for limit in (1, 3, 1000):
            walked = all_activities(http, account.admin_token, contact["id"], limit=limit)
            expected = sorted(stamps, key=lambda s: parse_zulu(s[1]), reverse=True)
            assert [(a["properties"]["sent"], a["occurred_at"]) for a in walked] == expected

    def test_last_full_page_has_no_cursor(self, http: httpx.Client, account: NewAccount) -> None:
        identity = unique("cust")
        upload(
            http,
            account,
            [
                netcore_event(identity=identity, timestamp=zulu(BASE_TIME + timedelta(seconds=n)))
                for n in range(10)
            ],
        )
        contact = find_one(http, account.admin_token, f"identity:{identity}")
        url = f"/api/v1/contacts/{contact['id']}/activities"

        first = http.get(url, params={"limit": 5}, headers=bearer(account.admin_token)).json()
        assert len(first["activities"]) == 5
        assert first["next_cursor"]
        second = http.get(
            url,
            params={"limit": 5, "cursor": first["next_cursor"]},
            headers=bearer(account.admin_token),
        ).json()
        assert len(second["activities"]) == 5
        assert second["next_cursor"] is None
        ids = [a["id"] for a in first["activities"] + second["activities"]]
        assert len(set(ids)) == 10

    @pytest.mark.parametrize("limit", ["0", "-1", "1001", "5000", "ten"])
    def test_limit_out_of_range_is_400(
        self, http: httpx.Client, account: NewAccount, limit: str
    ) -> None:
        identity = unique("cust")
        upload(http, account, [netcore_event(identity=identity)])
        contact = find_one(http, account.admin_token, f"identity:{identity}")

        r = http.get(
            f"/api/v1/contacts/{contact['id']}/activities",
            params={"limit": limit},
            headers=bearer(account.admin_token),
        )
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] in ("invalid_limit", "invalid_request")

    @pytest.mark.parametrize("limit", [1, 1000])
    def test_limit_bounds_are_accepted(
        self, http: httpx.Client, account: NewAccount, limit: int
    ) -> None:
        identity = unique("cust")
        upload(http, account, [netcore_event(identity=identity)] * 2)
        contact = find_one(http, account.admin_token, f"identity:{identity}")

        r = http.get(
            f"/api/v1/contacts/{contact['id']}/activities",
            params={"limit": limit},
            headers=bearer(account.admin_token),
        )
        assert r.status_code == 200, r.text
        assert len(r.json()["activities"]) == min(limit, 2)

    @pytest.mark.parametrize(
        "cursor",
        [
            "garbage",
            "!!!",
            base64.urlsafe_b64encode(b'{"not": "a list"}').decode(),
            base64.urlsafe_b64encode(orjson.dumps(["2025-09-30T08:00:00", "x"])).decode(),
            base64.urlsafe_b64encode(orjson.dumps(["yesterday", "x"])).decode(),
            base64.urlsafe_b64encode(orjson.dumps(["2025-09-30T08:00:00+00:00", 5])).decode(),
        ],
    )
    def test_bad_cursor_is_400(self, http: httpx.Client, account: NewAccount, cursor: str) -> None:
        identity = unique("cust")
        upload(http, account, [netcore_event(identity=identity)])
        contact = find_one(http, account.admin_token, f"identity:{identity}")

        r = http.get(
            f"/api/v1/contacts/{contact['id']}/activities",
            params={"cursor": cursor},
            headers=bearer(account.admin_token),
        )
        assert_error(r, 400, "invalid_cursor")


class TestIdentityEvents:
    def test_anonymous_contact_converted_by_an_email(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        anonid = unique("anon")
        email = f"{unique('convert')}@example.com"
        upload(http, account, [netcore_event(identity=None, anonid=anonid)])
        anonymous = find_one(http, account.admin_token, f"anonid:{anonid}")
        assert anonymous["status"] == "anonymous"
        url = f"/api/v1/contacts/{anonymous['id']}/identity-events"
        before = http.get(url, headers=bearer(account.admin_token))
        assert before.status_code == 200, before.text
        assert before.json() == {"identity_events": []}

        upload(
            http,
            account,
            [netcore_event(identity=None, anonid=anonid, email=email, activity_name="Sign Up")],
        )

        known = find_one(http, account.admin_token, f"email:{email}")
        assert known["id"] == anonymous["id"]
        assert known["status"] == "known"
        assert find_one(http, account.admin_token, f"anonid:{anonid}") == known
        events = http.get(url, headers=bearer(account.admin_token)).json()["identity_events"]
        assert [e["kind"] for e in events] == ["converted"]
        [converted] = events
        assert converted["contact_id"] == anonymous["id"]
        assert {"kind": "email", "value": email} in converted["identifiers"]
        parse_zulu(converted["created_at"])
        names = [a["name"] for a in all_activities(http, account.admin_token, known["id"])]
        assert sorted(names) == ["Add To Cart", "Sign Up"]

    def test_anonymous_contact_merged_into_a_known_one(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        anonid = unique("anon")
        identity = unique("cust")
        upload(http, account, [netcore_event(identity=identity, activity_name="Known")])
        upload(http, account, [netcore_event(identity=None, anonid=anonid, activity_name="Anon")])
        known = find_one(http, account.admin_token, f"identity:{identity}")
        anonymous = find_one(http, account.admin_token, f"anonid:{anonid}")
        assert known["id"] != anonymous["id"]

        upload(
            http,
            account,
            [netcore_event(identity=identity, anonid=anonid, activity_name="Both")],
        )

        assert find_one(http, account.admin_token, f"anonid:{anonid}")["id"] == known["id"]
        # The absorbed id still answers, with the surviving contact.
        r = http.get(f"/api/v1/contacts/{anonymous['id']}", headers=bearer(account.admin_token))
        assert r.status_code == 200, r.text
        assert r.json()["id"] == known["id"]
        names = [a["name"] for a in all_activities(http, account.admin_token, known["id"])]
        assert sorted(names) == ["Anon", "Both", "Known"]
        events = http.get(
            f"/api/v1/contacts/{known['id']}/identity-events",
            headers=bearer(account.admin_token),
        ).json()["identity_events"]
        merges = [e for e in events if e["kind"] == "merged"]
        assert len(merges) == 1, events
        assert merges[0]["other_contact_ids"] == [anonymous["id"]]


class TestTenantIsolation:
    @pytest.fixture
    def other(self, store: Database) -> NewAccount:
        return create_account(store, unique("other"))

    @pytest.fixture
    def contact_of_a(self, http: httpx.Client, account: NewAccount) -> dict[str, Any]:
        """A converted contact of account A, so that it has activities and identity events."""
        anonid = unique("anon")
        email = f"{unique('tenant')}@example.com"
        upload(http, account, [netcore_event(identity=None, anonid=anonid)])
        upload(http, account, [netcore_event(identity=None, anonid=anonid, email=email)])
        contact = find_one(http, account.admin_token, f"email:{email}")
        r = http.get(
            f"/api/v1/contacts/{contact['id']}/identity-events",
            headers=bearer(account.admin_token),
        )
        assert len(r.json()["identity_events"]) == 1
        assert len(all_activities(http, account.admin_token, contact["id"])) == 2
        return contact

    def test_other_account_gets_404_for_the_contact(
        self, http: httpx.Client, other: NewAccount, contact_of_a: dict[str, Any]
    ) -> None:
        """404 rather than 403: B must not learn that the id exists at all."""
        base = f"/api/v1/contacts/{contact_of_a['id']}"
        for path in (base, f"{base}/activities", f"{base}/identity-events"):
            r = http.get(path, headers=bearer(other.admin_token))
            assert_error(r, 404, "not_found")

    def test_other_account_cannot_page_with_a_cursor(
        self, http: httpx.Client, account: NewAccount, other: NewAccount
    ) -> None:
        identity = unique("cust")
        upload(
            http,
            account,
            [
                netcore_event(identity=identity, timestamp=zulu(BASE_TIME + timedelta(seconds=n)))
                for n in range(3)
            ],
        )
        contact = find_one(http, account.admin_token, f"identity:{identity}")
        url = f"/api/v1/contacts/{contact['id']}/activities"
        page = http.get(url, params={"limit": 1}, headers=bearer(account.admin_token)).json()

        r = http.get(
            url,
            params={"limit": 1, "cursor": page["next_cursor"]},
            headers=bearer(other.admin_token),
        )
        assert_error(r, 404, "not_found")

    def test_other_account_finds_nothing_by_identifier(
        self, http: httpx.Client, other: NewAccount, contact_of_a: dict[str, Any]
    ) -> None:
        for ident in contact_of_a["identifiers"]:
            assert find(http, other.admin_token, f"{ident['kind']}:{ident['value']}") == []

    def test_same_identifier_in_two_accounts_is_two_contacts(
        self, http: httpx.Client, account: NewAccount, other: NewAccount
    ) -> None:
        identity = unique("shared")
        upload(http, account, [netcore_event(identity=identity, activity_name="In A")])
        upload(http, other, [netcore_event(identity=identity, activity_name="In B")])

        in_a = find_one(http, account.admin_token, f"identity:{identity}")
        in_b = find_one(http, other.admin_token, f"identity:{identity}")
        assert in_a["id"] != in_b["id"]
        assert [a["name"] for a in all_activities(http, account.admin_token, in_a["id"])] == [
            "In A"
        ]
        assert [a["name"] for a in all_activities(http, other.admin_token, in_b["id"])] == ["In B"]


class TestAuthentication:
    @pytest.fixture
    def paths(self, http: httpx.Client, account: NewAccount) -> list[str]:
        identity = unique("cust")
        upload(http, account, [netcore_event(identity=identity)])
        contact = find_one(http, account.admin_token, f"identity:{identity}")
        base = f"/api/v1/contacts/{contact['id']}"
        return [
            f"/api/v1/contacts?identifier=identity:{identity}",
            base,
            f"{base}/activities",
            f"{base}/identity-events",
        ]

    @pytest.mark.parametrize(
        "authorization",
        [
            None,
            "",
            "Bearer",
            "Bearer wrong-token",
            "Bearer {netcore}",
            "Basic {admin}",
            "{admin}",
            "Bearer {admin}x",
        ],
    )
    def test_missing_or_wrong_credentials_are_401(
        self,
        http: httpx.Client,
        account: NewAccount,
        paths: list[str],
        authorization: str | None,
    ) -> None:
        headers = {}
        if authorization is not None:
            headers["Authorization"] = authorization.format(
                admin=account.admin_token, netcore=account.netcore_api_key
            )
        for path in paths:
            r = http.get(path, headers=headers)
            assert_error(r, 401, "unauthorized")
            assert r.headers["WWW-Authenticate"] == "Bearer"

    def test_admin_token_works_on_every_path(
        self, http: httpx.Client, account: NewAccount, paths: list[str]
    ) -> None:
        for path in paths:
            r = http.get(path, headers=bearer(account.admin_token))
            assert r.status_code == 200, (path, r.text)
        # The scheme is case-insensitive (RFC 7235).
        r = http.get(paths[1], headers={"Authorization": f"bearer {account.admin_token}"})
        assert r.status_code == 200, r.text

    def test_admin_token_is_not_a_netcore_api_key(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        r = http.post(UPLOAD, json=[netcore_event()], headers={"api-key": account.admin_token})
        assert r.status_code == 401, r.text
