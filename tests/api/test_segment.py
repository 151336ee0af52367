"""Segment's HTTP Tracking API over real HTTP, on SQLite and PostgreSQL.

Every test talks to a real uvicorn server and checks what was stored through
eventyard's canonical read API. Docstrings quote Segment's HTTP API page
(twilio.com/docs/segment/connections/sources/catalog/libraries/server/http-api)
or its Spec, or issue 10 where Segment is silent.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from eventyard.app import create_app
from eventyard.core.errors import StoreUnavailable
from eventyard.core.model import NewAccount
from eventyard.dialects.registry import create_account
from eventyard.services.ingest_stats import latest_rejections
from eventyard.settings import Settings
from eventyard.storage.database import Database
from tests.support import (
    activities_of,
    find_contact,
    identifier_pairs,
    identity_events,
    read_contact,
    upload_netcore_event,
)

BATCH = "/v1/batch"


def auth(account: NewAccount) -> tuple[str, str]:
    return (account.segment_write_key, "")


def uid() -> str:
    return f"user-{uuid.uuid4().hex[:10]}"


def send(
    http: httpx.Client, account: NewAccount, path: str, body: Any, **kwargs: Any
) -> httpx.Response:
    return http.post(path, json=body, auth=auth(account), **kwargs)


def send_batch(
    http: httpx.Client, account: NewAccount, *messages: dict[str, Any]
) -> httpx.Response:
    r = send(http, account, BATCH, {"batch": list(messages)})
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True}
    return r


@pytest.fixture
def other(store: Database) -> NewAccount:
    """A second account: tenants are isolated."""
    return create_account(store, f"other-{uuid.uuid4().hex[:8]}")


def assert_error(r: httpx.Response, status: int, code: str, field: str | None = None) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is False
    assert body["code"] == code
    assert body["message"]
    if field is not None:
        assert body["errors"][0]["field"] == field, body


class TestCallTypes:
    def test_track_is_an_activity_named_event_with_its_properties(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Issue 10: "`track` is an activity named `event` with `properties`"; Segment's
        example track call, sent to ``/v1/track``."""
        user = uid()
        body = {
            "userId": user,
            "event": "Item Purchased",
            "properties": {"name": "Leap to Conclusions Mat", "revenue": 14.99},
            "context": {"ip": "24.5.68.47"},
            "timestamp": "2012-12-02T00:30:12.984Z",
        }
        r = send(http, account, "/v1/track", body)
        assert r.status_code == 200, r.text
        assert r.json() == {"success": True}
        [activity] = activities_of(http, account, f"identity:{user}")
        assert activity["name"] == "Item Purchased"
        assert activity["dialect"] == "segment"
        assert activity["source"] == "api"
        assert activity["properties"] == body["properties"]
        assert activity["occurred_at"] == "2012-12-02T00:30:12.984000Z"
        assert activity["context"]["context"] == {"ip": "24.5.68.47"}
        assert activity["context"]["timestamp"] == body["timestamp"]

    def test_identify_sets_attributes_and_email_and_phone_identify(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Issue 10: "`identify` sets contact attributes from `traits` (`email`, `phone` also
        become identifiers)"."""
        user = uid()
        mail = f"{user}@Example.com"
        traits = {"email": mail, "phone": "+1 (555) 010-2030", "name": "Peter", "age": 26}
        r = send(http, account, "/v1/identify", {"userId": user, "traits": traits})
        assert r.status_code == 200, r.text
        found = read_contact(http, account, f"email:{mail.lower()}")
        assert found["attributes"] == traits
        assert identifier_pairs(found) == {
            ("identity", user),
            ("email", mail.lower()),
            ("mobile", "+15550102030"),
        }
        assert found["status"] == "known"

    def test_identify_traits_may_come_in_context_traits(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """RudderStack's SDK sends an identify's traits as ``context.traits`` only; the
        top-level ``traits`` win key by key."""
        user = uid()
        body = {
            "userId": user,
            "context": {"traits": {"plan": "free", "email": f"{user}@example.com"}},
            "traits": {"plan": "pro"},
        }
        assert send(http, account, "/v1/identify", body).status_code == 200
        found = read_contact(http, account, f"email:{user}@example.com")
        assert found["attributes"] == {"plan": "pro", "email": f"{user}@example.com"}

    def test_an_invalid_email_trait_stays_an_attribute(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Decision (docs/dialects/segment.md): a trait that is no valid e-mail address is
        kept as an attribute, names no contact, and the message is stored."""
        user = uid()
        r = send(http, account, "/v1/identify", {"userId": user, "traits": {"email": "nope"}})
        assert r.status_code == 200, r.text
        assert "X-Eventyard-Rejected-Messages" not in r.headers
        found = read_contact(http, account, f"identity:{user}")
        assert found["attributes"] == {"email": "nope"}
        assert identifier_pairs(found) == {("identity", user)}

    @pytest.mark.parametrize(
        ("call", "name"), [("page", "Page Viewed"), ("screen", "Screen Viewed")]
    )
    def test_page_and_screen_are_viewed_activities_keeping_name_and_category(
        self, http: httpx.Client, account: NewAccount, call: str, name: str
    ) -> None:
        """Issue 10: "`page`/`screen` are activities `Page Viewed`/`Screen Viewed` (name and
        category kept)"."""
        user = uid()
        body = {
            "userId": user,
            "name": "Tracking HTTP API",
            "category": "Docs",
            "properties": {"url": "https://example.com/docs"},
        }
        r = send(http, account, f"/v1/{call}", body)
        assert r.status_code == 200, r.text
        [activity] = activities_of(http, account, f"identity:{user}")
        assert activity["name"] == name
        assert activity["properties"] == {
            "url": "https://example.com/docs",
            "name": "Tracking HTTP API",
            "category": "Docs",
        }

    def test_group_records_membership_and_merges_traits(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Issue 10: "`group` records a group membership with traits"; a second call
        merges its traits into the membership's."""
        user = uid()
        first = {"userId": user, "groupId": "8e9df332ac", "traits": {"name": "Initech", "n": 1}}
        assert send(http, account, "/v1/group", first).status_code == 200
        again = {"userId": user, "groupId": "8e9df332ac", "traits": {"employees": 420, "n": 2}}
        assert send(http, account, "/v1/group", again).status_code == 200
        [group] = read_contact(http, account, f"identity:{user}")["groups"]
        assert group["group_id"] == "8e9df332ac"
        assert group["traits"] == {"name": "Initech", "employees": 420, "n": 2}

    def test_a_batch_carries_every_call_type(self, http: httpx.Client, account: NewAccount) -> None:
        """ "The batch method lets you send a series of Identify, Group, Track, Page and
        Screen requests in a single batch" (alias too)."""
        user, anon = uid(), uid()
        send_batch(
            http,
            account,
            {"type": "page", "anonymousId": anon, "name": "Home"},
            {"type": "identify", "userId": user, "traits": {"plan": "pro"}},
            {"type": "alias", "previousId": anon, "userId": user},
            {"type": "track", "userId": user, "event": "Song Played"},
            {"type": "screen", "userId": user, "name": "Player"},
            {"type": "group", "userId": user, "groupId": "g1"},
        )
        found = read_contact(http, account, f"identity:{user}")
        assert ("anonid", anon) in identifier_pairs(found)
        assert found["attributes"] == {"plan": "pro"}
        assert [g["group_id"] for g in found["groups"]] == ["g1"]
        names = sorted(a["name"] for a in activities_of(http, account, f"identity:{user}"))
        assert names == ["Page Viewed", "Screen Viewed", "Song Played"]


class TestIds:
    def test_null_ids_are_allowed_when_the_other_is_set(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Issue 10: "`anonymousId` and `userId` may be null"; "The HTTP API requires that
        each payload has a userId and/or anonymousId"."""
        anon, user = uid(), uid()
        send_batch(
            http,
            account,
            {"type": "track", "userId": None, "anonymousId": anon, "event": "A"},
            {"type": "track", "userId": user, "anonymousId": None, "event": "B"},
        )
        anonymous = read_contact(http, account, f"anonid:{anon}")
        assert anonymous["status"] == "anonymous"
        assert [a["name"] for a in activities_of(http, account, f"anonid:{anon}")] == ["A"]
        assert [a["name"] for a in activities_of(http, account, f"identity:{user}")] == ["B"]

    def test_anonymous_then_identified_meet_on_one_contact(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """``anonymousId`` is the ``anonid`` kind, ``userId`` the ``identity`` kind: a call
        with both converts the anonymous contact to known."""
        anon, user = uid(), uid()
        send_batch(http, account, {"type": "page", "anonymousId": anon})
        first = read_contact(http, account, f"anonid:{anon}")
        send_batch(
            http, account, {"type": "identify", "anonymousId": anon, "userId": user, "traits": {}}
        )
        after = read_contact(http, account, f"identity:{user}")
        assert after["id"] == first["id"]
        assert after["status"] == "known"


class TestNetcoreThenSegment:
    def test_a_contact_first_seen_through_netcore_receives_segment_events(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Issue 10: "a Netcore event and a Segment event for the same person meet on one
        contact"."""
        user = uid()
        upload_netcore_event(http, account, user)
        netcore_contact = read_contact(http, account, f"identity:{user}")
        send_batch(
            http,
            account,
            {"type": "track", "userId": user, "event": "Checkout"},
            {"type": "identify", "userId": user, "traits": {"tier": "gold"}},
        )
        after = read_contact(http, account, f"identity:{user}")
        assert after["id"] == netcore_contact["id"]
        assert after["attributes"]["tier"] == "gold"
        dialects = sorted(a["dialect"] for a in activities_of(http, account, f"identity:{user}"))
        assert dialects == ["netcore", "segment"]


class TestAlias:
    def test_alias_of_an_anonymous_id_merges_it_into_the_user_with_an_audit(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Issue 10: "`alias` links `previousId` to `userId` through the same
        identity-resolution and merge-audit path as the other dialects"."""
        anon, user = uid(), uid()
        send_batch(http, account, {"type": "track", "anonymousId": anon, "event": "Browse"})
        send_batch(http, account, {"type": "identify", "userId": user, "traits": {"a": 1}})
        anonymous_id = read_contact(http, account, f"anonid:{anon}")["id"]
        r = send(http, account, "/v1/alias", {"previousId": anon, "userId": user})
        assert r.status_code == 200, r.text
        merged = read_contact(http, account, f"identity:{user}")
        assert ("anonid", anon) in identifier_pairs(merged)
        assert [a["name"] for a in activities_of(http, account, f"identity:{user}")] == ["Browse"]
        events = identity_events(http, account, merged["id"])
        assert [(e["kind"], e["other_contact_ids"]) for e in events] == [("merged", [anonymous_id])]

    def test_alias_of_an_earlier_user_id_names_that_user(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Decision: ``previousId`` that some contact has as a user id is a user id
        (``identity``), not an anonymous id; the new userId joins that contact."""
        old, new = uid(), uid()
        send_batch(http, account, {"type": "identify", "userId": old, "traits": {"x": 1}})
        send_batch(http, account, {"type": "alias", "previousId": old, "userId": new})
        found = read_contact(http, account, f"identity:{new}")
        assert identifier_pairs(found) == {("identity", old), ("identity", new)}
        assert find_contact(http, account, f"anonid:{old}") is None

    def test_alias_of_two_known_users_is_recorded_as_a_conflict(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Two known contacts are never merged silently: the conflict is audited."""
        old, new = uid(), uid()
        send_batch(
            http,
            account,
            {"type": "identify", "userId": old},
            {"type": "identify", "userId": new},
        )
        send_batch(http, account, {"type": "alias", "previousId": old, "userId": new})
        found = read_contact(http, account, f"identity:{new}")
        kinds = [e["kind"] for e in identity_events(http, account, found["id"])]
        assert kinds == ["conflict"]


class TestTimestamps:
    def test_skew_is_corrected_with_sent_at(self, http: httpx.Client, account: NewAccount) -> None:
        """Spec: ``timestamp`` is "Calculated by Segment to correct client-device clock skew
        using the following formula: receivedAt - (sentAt - originalTimestamp)". A client
        clock ten years fast: the event is stored a minute before it was received."""
        user = uid()
        r = send(
            http,
            account,
            BATCH,
            {
                "batch": [
                    {
                        "type": "track",
                        "userId": user,
                        "event": "E",
                        "timestamp": "2035-01-01T00:00:00Z",
                    }
                ],
                "sentAt": "2035-01-01T00:01:00Z",
            },
        )
        assert r.status_code == 200, r.text
        [activity] = activities_of(http, account, f"identity:{user}")
        occurred = datetime.fromisoformat(activity["occurred_at"])
        received = datetime.fromisoformat(activity["received_at"])
        assert occurred == received - timedelta(minutes=1)
        kept = activity["context"]
        assert kept["timestamp"] == "2035-01-01T00:00:00Z"
        assert kept["sentAt"] == "2035-01-01T00:01:00Z"
        assert kept["receivedAt"] == activity["received_at"]

    def test_without_sent_at_the_timestamp_is_taken_as_sent(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "You can import historical data by adding the timestamp argument"; Segment's
        own batch example writes ``2015-2-02T00:30:08.276Z`` (one-digit month)."""
        user = uid()
        send_batch(
            http,
            account,
            {"type": "track", "userId": user, "event": "A", "timestamp": "2015-2-02T00:30:12.984Z"},
            {
                "type": "track",
                "userId": user,
                "event": "B",
                "originalTimestamp": "2016-01-01T10:00:00+02:00",
            },
        )
        stored = {
            a["name"]: a["occurred_at"] for a in activities_of(http, account, f"identity:{user}")
        }
        assert stored == {"A": "2015-02-02T00:30:12.984000Z", "B": "2016-01-01T08:00:00Z"}

    def test_without_timestamp_it_is_when_received(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "leave out the timestamp and Segment servers will timestamp the requests for you"."""
        user = uid()
        send_batch(http, account, {"type": "track", "userId": user, "event": "Now"})
        [activity] = activities_of(http, account, f"identity:{user}")
        assert activity["occurred_at"] == activity["received_at"]


class TestDedup:
    def test_the_same_message_id_twice_is_stored_once(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "Segment deduplicates events using the messageId field"; a retry of the same
        batch with another sentAt (the SDK resends it later) is still one event."""
        user, message_id = uid(), str(uuid.uuid4())
        message = {"type": "track", "userId": user, "event": "Paid", "messageId": message_id}
        for sent_at in ("2030-01-01T00:00:00Z", "2030-01-01T00:00:09Z"):
            r = send(http, account, BATCH, {"batch": [message], "sentAt": sent_at})
            assert r.status_code == 200, r.text
        r = send(http, account, "/v1/track", {**message, "timestamp": "2020-01-01T00:00:00Z"})
        assert r.status_code == 200, r.text
        assert [a["name"] for a in activities_of(http, account, f"identity:{user}")] == ["Paid"]

    def test_message_ids_are_per_account(
        self, http: httpx.Client, account: NewAccount, other: NewAccount
    ) -> None:
        """Tenants never see each other's data, message ids included."""
        message_id = str(uuid.uuid4())
        user = uid()
        for owner in (account, other):
            send_batch(
                http,
                owner,
                {"type": "track", "userId": user, "event": "E", "messageId": message_id},
            )
            assert len(activities_of(http, owner, f"identity:{user}")) == 1


class TestInvalidMessages:
    def test_an_invalid_message_is_dropped_and_the_good_ones_stored(
        self, http: httpx.Client, account: NewAccount, store: Database
    ) -> None:
        """ "Segment returns a 200 response for all API requests except errors caused by
        large payloads and JSON errors"; "Identifier is not present", "Track event is missing
        name" are reasons "events are not accepted"."""
        user = uid()
        r = send(
            http,
            account,
            BATCH,
            {
                "batch": [
                    {"type": "track", "userId": user, "event": "Good"},
                    {"type": "track", "event": "No ids"},
                    {"type": "track", "userId": user},
                    {"type": "track", "userId": user, "event": "Bad time", "timestamp": "soon"},
                    {"type": "launch", "userId": user},
                    "not an object",
                    {"type": "page", "userId": user, "name": "Fine"},
                ]
            },
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"success": True}
        assert r.headers["X-Eventyard-Rejected-Messages"] == "5"
        names = sorted(a["name"] for a in activities_of(http, account, f"identity:{user}"))
        assert names == ["Good", "Page Viewed"]
        # What the console shows in place of Segment's Debugger: index, field, reason.
        [rejection] = latest_rejections(store, account.account.id)
        assert (rejection.dialect, rejection.route, rejection.status_code) == (
            "segment",
            BATCH,
            200,
        )
        assert rejection.rejected_records == 5
        assert [(e.index, e.field) for e in rejection.errors] == [
            (1, "userId"),
            (2, "event"),
            (3, "timestamp"),
            (4, "type"),
            (5, "message"),
        ]

    def test_a_timestamp_utc_cannot_hold_drops_only_its_message(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """``0001-01-01T00:00:00+01:00`` is a valid ISO 8601 date-time that falls
        before year 1 in UTC: a problem of that message, not a server error."""
        user = uid()
        early = "0001-01-01T00:00:00+01:00"
        r = send(
            http,
            account,
            BATCH,
            {
                "batch": [
                    {"type": "track", "userId": user, "event": "Early", "timestamp": early},
                    {
                        "type": "track",
                        "userId": user,
                        "event": "Skewed",
                        "timestamp": "2020-01-01T00:00:00Z",
                        "sentAt": early,
                    },
                    {"type": "track", "userId": user, "event": "Good"},
                ]
            },
        )
        assert r.status_code == 200, r.text
        assert r.headers["X-Eventyard-Rejected-Messages"] == "2"
        assert [a["name"] for a in activities_of(http, account, f"identity:{user}")] == ["Good"]

    def test_a_single_call_without_ids_answers_200_and_stores_nothing(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        r = send(http, account, "/v1/track", {"event": "Orphan"})
        assert r.status_code == 200, r.text
        assert r.headers["X-Eventyard-Rejected-Messages"] == "1"


class TestLimits:
    def test_malformed_json_is_400(self, http: httpx.Client, account: NewAccount) -> None:
        """ "JSON errors (which return 400 responses.)"."""
        r = http.post(BATCH, content=b'{"batch": [', auth=auth(account))
        assert_error(r, 400, "invalid_json")

    def test_a_batch_without_a_batch_array_is_400(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        r = send(http, account, BATCH, {"batch": {"type": "track"}})
        assert_error(r, 400, "bad_request", "batch")

    def test_a_call_of_more_than_32_kb_is_400(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "There is a maximum of 32KB per normal API request"."""
        user = uid()
        small = {"userId": user, "event": "E", "properties": {"p": "x" * (31 * 1024)}}
        assert send(http, account, "/v1/track", small).status_code == 200
        big = {"userId": user, "event": "E", "properties": {"p": "x" * (32 * 1024)}}
        assert_error(send(http, account, "/v1/track", big), 400, "payload_too_large")

    def test_a_batch_message_of_more_than_32_kb_is_400_naming_it(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "with a limit of 32KB per event in the batch"."""
        user = uid()
        messages = [
            {"type": "track", "userId": user, "event": "Small"},
            {"type": "track", "userId": user, "event": "Big", "properties": {"p": "x" * 33000}},
        ]
        r = send(http, account, BATCH, {"batch": messages})
        assert_error(r, 400, "bad_request", "batch[1]")
        assert r.json()["errors"][0]["index"] == 1
        assert activities_of(http, account, f"identity:{user}") == []

    def test_a_batch_of_more_than_500_kb_is_400_even_gzipped(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "The batch API endpoint accepts a maximum of 500KB per request"; a gzip body is
        measured inflated (and inflating stops at the limit)."""
        user = uid()
        message = {"type": "track", "userId": user, "event": "E", "properties": {"p": "y" * 30000}}
        body = json.dumps({"batch": [message] * 18}).encode()
        assert len(body) > 500 * 1024
        r = http.post(
            BATCH,
            content=gzip.compress(body),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
            auth=auth(account),
        )
        assert_error(r, 400, "payload_too_large")
        fits = json.dumps({"batch": [message] * 16}).encode()
        assert len(fits) < 500 * 1024
        r = http.post(
            BATCH,
            content=gzip.compress(fits),
            headers={"Content-Encoding": "gzip"},
            auth=auth(account),
        )
        assert r.status_code == 200, r.text
        assert len(activities_of(http, account, f"identity:{user}")) == 16


class TestAuth:
    def test_basic_auth_with_the_write_key_as_user_name(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "taking a Segment source Write Key ... as the username, adding a colon, and then
        the password field is left empty"."""
        user = uid()
        send_batch(http, account, {"type": "track", "userId": user, "event": "E"})
        assert len(activities_of(http, account, f"identity:{user}")) == 1

    @pytest.mark.parametrize("where", ["batch", "message"])
    def test_write_key_in_the_body(
        self, http: httpx.Client, account: NewAccount, where: str
    ) -> None:
        """ "The authentication writeKey should be sent as part of the body of the request"."""
        user = uid()
        message: dict[str, Any] = {"type": "track", "userId": user, "event": "E"}
        body: dict[str, Any] = {"batch": [message]}
        (body if where == "batch" else message)["writeKey"] = account.segment_write_key
        assert http.post(BATCH, json=body).status_code == 200
        single = {"userId": user, "event": "F", "writeKey": account.segment_write_key}
        assert http.post("/v1/track", json=single).status_code == 200
        assert len(activities_of(http, account, f"identity:{user}")) == 2

    def test_bearer_write_key(self, http: httpx.Client, account: NewAccount) -> None:
        """Issue 10: "or `Authorization: Bearer <write key>`"."""
        user = uid()
        r = http.post(
            "/v1/track",
            json={"userId": user, "event": "E"},
            headers={"Authorization": f"Bearer {account.segment_write_key}"},
        )
        assert r.status_code == 200, r.text
        assert len(activities_of(http, account, f"identity:{user}")) == 1

    @pytest.mark.parametrize(
        "headers",
        [{}, {"Authorization": "Basic bm90LWEta2V5Og=="}, {"Authorization": "Digest x"}],
        ids=["missing", "wrong-key", "other-scheme"],
    )
    def test_without_a_valid_write_key_it_is_401(
        self, http: httpx.Client, headers: dict[str, str]
    ) -> None:
        """Segment does not document its answer; eventyard answers 401 in Segment's shape."""
        r = http.post(
            BATCH, json={"batch": [{"type": "track", "userId": "u", "event": "E"}]}, headers=headers
        )
        assert_error(r, 401, "unauthorized")

    def test_another_accounts_key_sees_nothing(
        self, http: httpx.Client, account: NewAccount, other: NewAccount
    ) -> None:
        """Tenants never see each other's data: one account's events are not in another's,
        and a message naming another source's writeKey is dropped."""
        user = uid()
        send_batch(http, account, {"type": "track", "userId": user, "event": "Mine"})
        assert find_contact(http, other, f"identity:{user}") is None
        r = send(
            http,
            other,
            BATCH,
            {
                "batch": [
                    {
                        "type": "track",
                        "userId": user,
                        "event": "Smuggled",
                        "writeKey": account.segment_write_key,
                    }
                ]
            },
        )
        assert r.status_code == 200
        assert r.headers["X-Eventyard-Rejected-Messages"] == "1"
        assert find_contact(http, other, f"identity:{user}") is None
        assert [a["name"] for a in activities_of(http, account, f"identity:{user}")] == ["Mine"]


class TestGzip:
    def test_gzip_bodies_are_read(self, http: httpx.Client, account: NewAccount) -> None:
        """Issue 10: "Bodies gzip-compressed or not" (the SDKs' ``gzip=True``)."""
        user = uid()
        body = json.dumps({"batch": [{"type": "track", "userId": user, "event": "Zipped"}]})
        r = http.post(
            BATCH,
            content=gzip.compress(body.encode()),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
            auth=auth(account),
        )
        assert r.status_code == 200, r.text
        assert [a["name"] for a in activities_of(http, account, f"identity:{user}")] == ["Zipped"]


class UnavailableStore:
    """A store whose database is away: every unit of work raises ``StoreUnavailable``.

    A stub, not the real database stopped: stopping a shared PostgreSQL (or
    locking the SQLite file) mid-suite would disturb every other test, and the
    route's only concern is how it answers what the store raises.
    """

    def unit_of_work(self, write: bool = True) -> Any:
        raise StoreUnavailable(retry_after_seconds=7)


def test_database_unavailable_is_503_with_retry_after() -> None:
    """Issue 10: "Retryable failures (database unavailable) -> 503 with `Retry-After`, which
    these SDKs honour" (analytics-python retries a 5xx and waits ``Retry-After``)."""
    app = create_app(Settings(run_worker=False), store=UnavailableStore())  # type: ignore[arg-type]

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://eventyard") as client:
            return await client.post(
                BATCH,
                json={"batch": [{"type": "track", "userId": "u", "event": "E"}]},
                auth=("eys_anything", ""),
            )

    # In a thread of its own: another test's browser may keep an event loop
    # running in this one (Playwright's sync API does).
    with ThreadPoolExecutor(max_workers=1) as pool:
        r = pool.submit(lambda: asyncio.run(post())).result()
    assert r.status_code == 503, r.text
    assert r.headers["Retry-After"] == "7"
    assert r.json()["success"] is False
    assert r.json()["code"] == "store_unavailable"


def test_openapi_describes_every_segment_endpoint(http: httpx.Client) -> None:
    """Every endpoint has its request schema: the batch's calls and each call's fields."""
    paths = http.get("/openapi.json").json()["paths"]
    batch = paths[BATCH]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert batch["required"] == ["batch"]
    for call, required in {
        "identify": set(),
        "track": {"event"},
        "page": set(),
        "screen": set(),
        "group": {"groupId"},
        "alias": {"previousId", "userId"},
    }.items():
        schema = paths[f"/v1/{call}"]["post"]["requestBody"]["content"]["application/json"][
            "schema"
        ]
        assert set(schema.get("required", [])) == required, call
        assert {"userId", "anonymousId", "messageId", "timestamp", "context"} <= set(
            schema["properties"]
        )
        assert "_metadata" in schema["properties"]
