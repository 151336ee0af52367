"""Amplitude's HTTP V2, Batch Event Upload and Identify APIs over real HTTP, on both databases.

Every test talks to a real uvicorn server and reads what was stored through
eventyard's own API. Docstrings quote Amplitude's pages (digested in
shared/specs/amplitude.md) or docs/dialects/amplitude.md where eventyard
decides.
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
from tests.support import (
    activities_of,
    find_contact,
    identifier_pairs,
    read_contact,
    upload_netcore_event,
)

HTTPAPI = "/2/httpapi"
BATCH = "/batch"
IDENTIFY = "/identify"
PAYLOADS = Path(__file__).parent.parent / "payloads" / "amplitude"


def uid(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def upload(
    http: httpx.Client, account: NewAccount, *events: dict[str, Any], path: str = HTTPAPI
) -> httpx.Response:
    return http.post(path, json={"api_key": account.amplitude_api_key, "events": list(events)})


def ok(r: httpx.Response, events: int) -> None:
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["code"] == 200
    assert body["events_ingested"] == events
    assert body["payload_size_bytes"] == len(r.request.content)
    assert isinstance(body["server_upload_time"], int)


def refused(r: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["code"] == status
    assert body["error"].startswith(error), body
    return body


def identify_form(
    http: httpx.Client, account: NewAccount, identification: Any, **extra: str
) -> httpx.Response:
    data = {"api_key": account.amplitude_api_key, "identification": json.dumps(identification)}
    return http.post(IDENTIFY, data={**data, **extra})


class TestEvents:
    def test_an_event_is_an_activity_of_its_user_and_device(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """``user_id`` is the identifier ``identity``, ``device_id`` ``anonid``; ``event_type``
        names the activity; "time: The timestamp of the event in milliseconds since epoch"."""
        user, device = uid(), uid("device")
        event = {
            "user_id": user,
            "device_id": device,
            "event_type": "watch_tutorial",
            "time": 1396381378123,
            "event_properties": {"source": "notification", "nested": {"a": [1, 2]}},
            "platform": "iOS",
            "library": "amplitude-python/1.3.0",
            "session_id": 1396381378000,
        }
        ok(upload(http, account, event), 1)
        found = read_contact(http, account, f"identity:{user}")
        assert identifier_pairs(found) == {("identity", user), ("anonid", device)}
        [activity] = activities_of(http, account, f"identity:{user}")
        assert activity["name"] == "watch_tutorial"
        assert activity["dialect"] == "amplitude"
        assert activity["source"] == "amplitude-python"
        assert activity["properties"] == event["event_properties"]
        assert activity["occurred_at"] == "2014-04-01T19:42:58.123000Z"
        assert activity["context"]["platform"] == "iOS"
        assert activity["context"]["session_id"] == 1396381378000

    def test_batch_path_takes_the_same_body(self, http: httpx.Client, account: NewAccount) -> None:
        """Batch: "The event JSON format follows the HTTP API format, and has all the same
        requirements"; ``/batch`` is shared with PostHog and dispatched on the body."""
        device = uid("device")
        ok(upload(http, account, {"device_id": device, "event_type": "a"}, path=BATCH), 1)
        [activity] = activities_of(http, account, f"anonid:{device}")
        assert activity["name"] == "a"

    def test_plain_user_properties_of_an_event_are_set(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Plain ``user_properties`` on an event are user properties to set; operations are
        honoured on ``$identify`` only (kept in the activity's context)."""
        user = uid()
        event = {
            "user_id": user,
            "event_type": "e",
            "user_properties": {"plan": "pro", "$add": {"n": 1}},
        }
        ok(upload(http, account, event), 1)
        assert read_contact(http, account, f"identity:{user}")["attributes"] == {"plan": "pro"}
        [activity] = activities_of(http, account, f"identity:{user}")
        assert activity["context"]["user_properties"] == event["user_properties"]

    def test_revenue_is_the_activity_value(self, http: httpx.Client, account: NewAccount) -> None:
        """ "revenue = price x quantity when all three sent"; the Python SDK's ``revenue()``
        sends ``$price``/``$quantity`` in ``event_properties``."""
        user = uid()
        ok(
            upload(
                http,
                account,
                {"user_id": user, "event_type": "buy", "price": 4.99, "quantity": 3},
                {"user_id": user, "event_type": "refund", "revenue": -1.5},
                {
                    "user_id": user,
                    "event_type": "revenue_amount",
                    "event_properties": {"$price": 2.5, "$quantity": 2, "$revenue": 5.0},
                },
            ),
            3,
        )
        values = {
            a["name"]: a["conversion_value"]["decimal"]
            for a in activities_of(http, account, f"identity:{user}")
        }
        assert values == {"buy": "14.97", "refund": "-1.50", "revenue_amount": "5.00"}

    def test_gzip_body(self, http: httpx.Client, account: NewAccount) -> None:
        """Gzip bodies: not documented by Amplitude; eventyard inflates them for every dialect."""
        user = uid()
        body = json.dumps(
            {"api_key": account.amplitude_api_key, "events": [{"user_id": user, "event_type": "z"}]}
        ).encode()
        r = http.post(
            HTTPAPI,
            content=gzip.compress(body),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["events_ingested"] == 1
        assert [a["name"] for a in activities_of(http, account, f"identity:{user}")] == ["z"]

    def test_short_ids_are_dropped_from_the_event(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "If an event has an ID that's too short, the ID value is dropped from the event";
        ``options.min_id_length`` "overrides default 5"."""
        device = uid("device")
        ok(upload(http, account, {"user_id": "abc", "device_id": device, "event_type": "e"}), 1)
        assert identifier_pairs(read_contact(http, account, f"anonid:{device}")) == {
            ("anonid", device)
        }
        r = http.post(
            HTTPAPI,
            json={
                "api_key": account.amplitude_api_key,
                "events": [{"user_id": "abc", "event_type": "e"}],
                "options": {"min_id_length": 3},
            },
        )
        ok(r, 1)
        assert read_contact(http, account, "identity:abc")


class TestDedup:
    def test_insert_id_repeated_on_the_same_device_is_ignored(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "Amplitude ignores subsequent events sent with the same insert_id on the same
        device_id (if the event has a device_id value) in each app within the past 7 days.\""""
        device, other = uid("device"), uid("device")
        event = {"device_id": device, "event_type": "e", "insert_id": "same-insert-id"}
        ok(upload(http, account, event), 1)
        ok(upload(http, account, event), 1)
        ok(upload(http, account, {**event, "device_id": other}), 1)
        assert len(activities_of(http, account, f"anonid:{device}")) == 1
        assert len(activities_of(http, account, f"anonid:{other}")) == 1

    def test_a_repeated_identify_adds_once(self, http: httpx.Client, account: NewAccount) -> None:
        """An ``$identify`` retried with its ``insert_id`` applies its operations once."""
        user = uid()
        event = {
            "user_id": user,
            "event_type": "$identify",
            "insert_id": uid("insert"),
            "user_properties": {"$add": {"n": 2}, "$append": {"tags": "x"}},
        }
        ok(upload(http, account, event), 1)
        ok(upload(http, account, event), 1)
        assert read_contact(http, account, f"identity:{user}")["attributes"] == {
            "n": 2,
            "tags": ["x"],
        }

    def test_idempotency_key_replays_the_answer(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """eventyard: a retry with the same ``Idempotency-Key`` is answered as the first time."""
        user = uid()
        body = {
            "api_key": account.amplitude_api_key,
            "events": [{"user_id": user, "event_type": "e"}],
        }
        key = {"Idempotency-Key": uid("key")}
        first = http.post(HTTPAPI, json=body, headers=key)
        second = http.post(HTTPAPI, json=body, headers=key)
        assert first.status_code == second.status_code == 200
        assert second.content == first.content
        assert second.headers["Idempotent-Replayed"] == "true"
        assert len(activities_of(http, account, f"identity:{user}")) == 1


class TestUserProperties:
    def test_identify_operations_change_the_attributes(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """identify.md's operations: $set, $setOnce, $add, $append, $prepend, $preInsert,
        $postInsert, $remove and $unset, each one merge strategy of the contact's attributes."""
        user = uid()
        first = {
            "$set": {"plan": "free", "gone": 1},
            "$setOnce": {"first": "a"},
            "$add": {"n": 1},
            "$append": {"tags": ["a", "b"]},
        }
        second = {
            "$set": {"plan": "pro"},
            "$setOnce": {"first": "b"},
            "$add": {"n": 2.5},
            "$append": {"tags": "c"},
            "$prepend": {"list": "p"},
            "$preInsert": {"uniq": "a"},
            "$postInsert": {"later": ["z", "z"]},
            "$unset": {"gone": "-"},
        }
        third = {"$remove": {"tags": "b"}, "$preInsert": {"uniq": "a"}}
        events = [
            {"user_id": user, "event_type": "$identify", "user_properties": ops}
            for ops in (first, second, third)
        ]
        ok(upload(http, account, *events), 3)
        assert read_contact(http, account, f"identity:{user}")["attributes"] == {
            "plan": "pro",
            "first": "a",
            "n": 3.5,
            "tags": ["a", "c"],
            "list": ["p"],
            "uniq": ["a"],
            "later": ["z"],
        }
        assert activities_of(http, account, f"identity:{user}") == []

    def test_identify_links_user_and_device(self, http: httpx.Client, account: NewAccount) -> None:
        """Sending both ids on one event links them: the device's contact becomes the user's."""
        user, device = uid(), uid("device")
        ok(upload(http, account, {"device_id": device, "event_type": "anon"}), 1)
        ok(
            upload(
                http,
                account,
                {
                    "user_id": user,
                    "device_id": device,
                    "event_type": "$identify",
                    "user_properties": {"$set": {"a": 1}},
                },
            ),
            1,
        )
        found = read_contact(http, account, f"identity:{user}")
        assert identifier_pairs(found) == {("identity", user), ("anonid", device)}
        assert [a["name"] for a in activities_of(http, account, f"identity:{user}")] == ["anon"]

    def test_operations_mixed_with_plain_properties_are_invalid(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """identify.md: ``{"$append": {...}, "plan": "x"}`` is invalid; "put plain keys under
        $set". ``$clearAll`` is refused (attributes are shared with the other dialects)."""
        user = uid()
        r = upload(
            http,
            account,
            {"user_id": user, "event_type": "ok"},
            {
                "user_id": user,
                "event_type": "$identify",
                "user_properties": {"$append": {"a": 1}, "plan": "x"},
            },
            {"user_id": user, "event_type": "$identify", "user_properties": {"$clearAll": "-"}},
        )
        body = refused(r, 400, "Invalid field values on some events")
        assert body["events_with_invalid_fields"] == {"user_properties": [1, 2]}
        assert find_contact(http, account, f"identity:{user}") is None


class TestGroups:
    def test_set_group_is_a_membership(self, http: httpx.Client, account: NewAccount) -> None:
        """The SDK's ``set_group``: an ``$identify`` with ``groups`` and ``$set`` of the group
        type: the user property is set and the contact joins ``type:name``."""
        user = uid()
        event = {
            "user_id": user,
            "event_type": "$identify",
            "groups": {"org": ["acme", "umbrella"]},
            "user_properties": {"$set": {"org": ["acme", "umbrella"]}},
        }
        ok(upload(http, account, event), 1)
        found = read_contact(http, account, f"identity:{user}")
        assert found["attributes"] == {"org": ["acme", "umbrella"]}
        assert sorted(g["group_id"] for g in found["groups"]) == ["org:acme", "org:umbrella"]

    def test_group_identify_sets_the_membership_traits(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """``$groupidentify`` with a member: its ``group_properties`` ($set, $setOnce,
        $unset) become the membership's traits."""
        user = uid()
        event = {
            "user_id": user,
            "event_type": "$groupidentify",
            "groups": {"org": "acme"},
            "group_properties": {"$set": {"tier": "gold"}, "$unset": {"old": "-"}},
        }
        ok(upload(http, account, event), 1)
        [group] = read_contact(http, account, f"identity:{user}")["groups"]
        assert group["group_id"] == "org:acme"
        assert group["traits"] == {
            "group_type": "org",
            "group_name": "acme",
            "tier": "gold",
            "old": None,
        }

    def test_group_identify_without_a_member_is_refused(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """eventyard keeps groups as memberships of contacts: a ``$groupidentify`` naming no
        user or device cannot be stored and is refused by index."""
        r = upload(
            http,
            account,
            {
                "event_type": "$groupidentify",
                "groups": {"org": "acme"},
                "group_properties": {"$set": {"tier": "gold"}},
            },
        )
        body = refused(r, 400, "Invalid field values on some events")
        assert body["events_with_missing_fields"] == {"user_id": [0], "device_id": [0]}


class TestErrors:
    def test_event_errors_name_field_and_index_and_store_nothing(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """400 ``events_with_invalid_fields`` / ``events_with_missing_fields``: "field -> list
        of event indexes"; the SDK retries every event not listed, so nothing is stored."""
        user = uid()
        r = upload(
            http,
            account,
            {"user_id": user, "event_type": "good"},
            {"user_id": user},
            {"event_type": "no ids"},
            {"user_id": user, "event_type": "iso", "time": "2024-01-01T00:00:00Z"},
            {"user_id": "null", "event_type": "blocked"},
            {"user_id": user, "event_type": "bad props", "event_properties": [1]},
            "not an object",
            {"user_id": "abc", "event_type": "short"},
        )
        body = refused(r, 400, "Invalid field values on some events")
        assert body["events_with_missing_fields"] == {
            "event_type": [1],
            "user_id": [2],
            "device_id": [2],
        }
        assert body["events_with_invalid_fields"] == {
            "time": [3],
            "user_id": [4],
            "event_properties": [5],
            "event": [6],
        }
        assert body["events_with_invalid_id_lengths"] == {"user_id": [7]}
        assert {e["index"] for e in body["errors"]} == {1, 2, 3, 4, 5, 6, 7}
        assert find_contact(http, account, f"identity:{user}") is None

    @pytest.mark.parametrize(
        ("body", "error", "missing"),
        [
            (b"", "Missing request body", None),
            (b"{nope", "Invalid JSON request body", None),
            (b"[]", "Invalid JSON request body", None),
            (
                b'{"events": [{"event_type": "e", "user_id": "user-1"}]}',
                "Request missing",
                "api_key",
            ),
            (b'{"api_key": "k"}', "Request missing required field", "events"),
            (b'{"api_key": "k", "events": []}', "Request missing required field", "events"),
        ],
    )
    def test_request_errors(
        self, http: httpx.Client, body: bytes, error: str, missing: str | None
    ) -> None:
        """The documented 400 ``error`` values: "Missing request body", "Invalid JSON request
        body", "Request missing required field" with ``missing_field``. On the shared
        ``/batch`` a body without ``events`` is not Amplitude's: PostHog answers it
        (tests/api/test_shared_batch.py)."""
        for path in (HTTPAPI, BATCH) if b'"events"' in body else (HTTPAPI,):
            r = http.post(path, content=body, headers={"Content-Type": "application/json"})
            answer = refused(r, 400, error)
            assert answer.get("missing_field") == missing

    def test_invalid_api_key(self, http: httpx.Client) -> None:
        """The SDK: an ``error`` starting "Invalid API key:" drops the batch; the key is
        not echoed back."""
        for path in (HTTPAPI, BATCH):
            r = http.post(
                path,
                json={
                    "api_key": "eyamp_wrong",
                    "events": [{"user_id": "user-1", "event_type": "e"}],
                },
            )
            body = refused(r, 400, "Invalid API key:")
            assert "eyamp_wrong" not in r.text
            assert body["code"] == 400

    def test_more_than_2000_events_is_413(self, http: httpx.Client, account: NewAccount) -> None:
        """413 row: "The limit per batch is 2000 events" (``{"code": 413, "error": "Payload
        too large"}``); the SDK then halves its batches."""
        events = [{"device_id": "device-1", "event_type": "e"}] * 2001
        refused(upload(http, account, *events), 413, "Payload too large")

    def test_more_than_a_megabyte_on_httpapi_is_413(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """HTTP V2: "Keep request size under 1MB"; Batch: "must not exceed 20MB"."""
        event = {
            "device_id": uid("device"),
            "event_type": "e",
            "event_properties": {"x": "y" * 600},
        }
        events = [{**event, "insert_id": str(i)} for i in range(1900)]
        refused(upload(http, account, *events), 413, "Payload too large")
        ok(upload(http, account, *events, path=BATCH), 1900)

    def test_unknown_method_answers_in_amplitude_shape(self, http: httpx.Client) -> None:
        r = http.get(HTTPAPI)
        assert r.status_code == 405
        assert r.json()["code"] == 405


class TestThrottle:
    def test_a_device_beyond_its_event_rate_is_429(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """HTTP V2: "Amplitude throttles requests for users and devices that exceed 30 events
        per second"; the 429 body names ``eps_threshold``, ``throttled_devices``,
        ``throttled_users`` and ``throttled_events``. eventyard allows 30 s worth at once."""
        device, calm = uid("device"), uid("device")
        flood = [{"device_id": device, "event_type": "e"}] * 900
        ok(upload(http, account, *flood), 900)
        # 100 more at once: far beyond what 30 per second refill meanwhile.
        more = [{"device_id": device, "user_id": "someone", "event_type": "e"}] * 100
        r = upload(http, account, {"device_id": calm, "event_type": "e"}, *more)
        body = refused(r, 429, "Too many requests for some devices and users")
        assert body["eps_threshold"] == 30
        assert body["throttled_devices"] == {device: 100}
        assert body["throttled_users"] == {}
        assert body["throttled_events"] == list(range(1, 101))
        assert int(r.headers["Retry-After"]) >= 1
        assert activities_of(http, account, f"anonid:{calm}") == []
        # Batch: 1000 events per second per device: the same device goes on there.
        ok(upload(http, account, *flood, path=BATCH), 900)


class TestIdentifyApi:
    def test_identification_sets_user_properties(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Identify API: form ``api_key`` and ``identification`` ("one JSON object or a JSON
        array"); answers ``success``."""
        user, device = uid(), uid("device")
        identification = {
            "user_id": user,
            "device_id": device,
            "user_properties": {"$set": {"Cohort": "Test A"}, "$add": {"friendCount": 3}},
            "country": "United States",
            "groups": {"org": "acme"},
        }
        r = identify_form(http, account, identification)
        assert r.status_code == 200, r.text
        assert r.text == "success"
        found = read_contact(http, account, f"identity:{user}")
        assert identifier_pairs(found) == {("identity", user), ("anonid", device)}
        assert found["attributes"] == {
            "Cohort": "Test A",
            "friendCount": 3,
            "country": "United States",
        }
        assert [g["group_id"] for g in found["groups"]] == ["org:acme"]
        r = identify_form(http, account, [{"user_id": user, "user_properties": {"k": "v"}}])
        assert r.text == "success"
        assert read_contact(http, account, f"identity:{user}")["attributes"]["k"] == "v"

    def test_identify_errors(self, http: httpx.Client, account: NewAccount) -> None:
        """ "400 (a `missing_event` message when `identification` is missing or malformed)";
        an unknown key is ``invalid_api_key``."""
        r = http.post(IDENTIFY, data={"api_key": account.amplitude_api_key})
        assert (r.status_code, r.text) == (400, "missing_event")
        r = http.post(
            IDENTIFY, data={"api_key": account.amplitude_api_key, "identification": "{nope"}
        )
        assert (r.status_code, r.text) == (400, "missing_event")
        r = http.post(IDENTIFY, data={"api_key": "eyamp_x", "identification": "{}"})
        assert (r.status_code, r.text) == (400, "invalid_api_key")
        r = identify_form(http, account, {"user_properties": {"$set": {"a": 1}}})
        assert r.status_code == 400
        assert r.text.startswith("invalid_event: identification[0].user_id")


class TestCrossDialect:
    def test_a_netcore_contact_receives_amplitude_events(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """A contact first seen through Netcore (``identity``) gets the events of the same
        person's ``user_id``."""
        user = uid()
        upload_netcore_event(http, account, user)
        ok(upload(http, account, {"user_id": user, "event_type": "amp"}), 1)
        names = sorted(a["name"] for a in activities_of(http, account, f"identity:{user}"))
        assert names == ["Add To Cart", "amp"]


class TestPayloads:
    def _body(self, name: str, account: NewAccount) -> dict[str, Any]:
        body: dict[str, Any] = json.loads((PAYLOADS / name).read_text())
        body["api_key"] = account.amplitude_api_key
        return body

    def test_http_v2_sample(self, http: httpx.Client, account: NewAccount) -> None:
        body = self._body("http_v2_upload.json", account)
        ok(http.post(HTTPAPI, json=body), 1)
        found = read_contact(http, account, "identity:user-00001")
        assert found["attributes"] == {"age": 25}
        [activity] = activities_of(http, account, "identity:user-00001")
        assert activity["name"] == "watch_tutorial"
        assert activity["properties"] == {"source": "notification"}
        assert activity["occurred_at"] == "2014-04-01T19:42:58.123000Z"

    def test_batch_sample(self, http: httpx.Client, account: NewAccount) -> None:
        body = self._body("batch_upload.json", account)
        ok(http.post(BATCH, json=body), 1)
        event = body["events"][0]
        found = read_contact(http, account, "identity:203201202")
        assert identifier_pairs(found) == {
            ("identity", "203201202"),
            ("anonid", event["device_id"]),
        }
        assert found["attributes"] == event["user_properties"]
        [activity] = activities_of(http, account, "identity:203201202")
        assert activity["properties"] == event["event_properties"]
        assert activity["conversion_value"]["decimal"] == "14.97"
        assert activity["location"]["city"] == "San Francisco"
        assert activity["context"]["groups"] == event["groups"]
        assert activity["context"]["insert_id"] == event["insert_id"]

    def test_identify_sample(self, http: httpx.Client, account: NewAccount) -> None:
        identification = json.loads((PAYLOADS / "identify_identification.json").read_text())
        r = identify_form(http, account, identification)
        assert (r.status_code, r.text) == (200, "success")
        found = read_contact(http, account, "identity:datamonster@gmail.com")
        assert found["attributes"] == {
            "Cohort": "Test A",
            "first_seen": "2015-01-01",
            "friendCount": 3,
            "interests": ["Music"],
            "country": "United States",
            "city": "San Francisco",
            "paying": "true",
        }
