"""Mixpanel's ingestion API over real HTTP, on SQLite and PostgreSQL.

Every test talks to a real uvicorn server and checks what was stored through
eventyard's canonical read API. Docstrings quote the digest of Mixpanel's
ingestion API (shared/specs/mixpanel.md, from Mixpanel's ingestion OpenAPI
and reference pages) or docs/dialects/mixpanel.md where Mixpanel is silent.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventyard.core.model import NewAccount
from eventyard.dialects.registry import create_account
from eventyard.storage.database import Database
from tests.support import (
    activities_of,
    find_contact,
    identifier_pairs,
    identity_events,
    read_contact,
    upload_netcore_event,
)


def uid(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def insert_id() -> str:
    return uuid.uuid4().hex


def event(account: NewAccount, name: str, distinct_id: str | None, **props: Any) -> dict[str, Any]:
    properties: dict[str, Any] = {"token": account.mixpanel_project_token}
    if distinct_id is not None:
        properties["distinct_id"] = distinct_id
    properties.update(props)
    return {"event": name, "properties": properties}


def form(data: Any, *, encode: bool = False, **flags: Any) -> dict[str, Any]:
    """A form body as the SDKs send it: ``data`` as JSON text (Python) or base64 (Node)."""
    text = json.dumps(data, separators=(",", ":"))
    if encode:
        text = base64.b64encode(text.encode()).decode()
    return {"data": text, **{k: str(v) for k, v in flags.items()}}


def track(http: httpx.Client, *events: dict[str, Any], verbose: bool = True) -> httpx.Response:
    data = events[0] if len(events) == 1 else list(events)
    return http.post("/track", data=form(data, verbose=1 if verbose else 0, ip=0))


def engage(http: httpx.Client, *updates: dict[str, Any]) -> httpx.Response:
    data = updates[0] if len(updates) == 1 else list(updates)
    return http.post("/engage", data=form(data, verbose=1, ip=0))


def update(account: NewAccount, distinct_id: str, **ops: Any) -> dict[str, Any]:
    return {"$token": account.mixpanel_project_token, "$distinct_id": distinct_id, **ops}


def secret_auth(account: NewAccount) -> tuple[str, str]:
    return (account.mixpanel_api_secret, "")


def import_event(account: NewAccount, name: str, distinct_id: str, **props: Any) -> dict[str, Any]:
    """An event as /import wants it: ``time``, ``distinct_id`` and ``$insert_id`` (30 days old)."""
    defaults: dict[str, Any] = {"time": int(time.time()) - 30 * 86400, "$insert_id": insert_id()}
    return event(account, name, distinct_id, **(defaults | props))


def post_import(
    http: httpx.Client, account: NewAccount, events: list[dict[str, Any]], **kwargs: Any
) -> httpx.Response:
    return http.post("/import", json=events, auth=secret_auth(account), **kwargs)


OK = {"status": 1, "error": None}


@pytest.fixture
def other(store: Database) -> NewAccount:
    """A second account: tenants are isolated."""
    return create_account(store, f"other-{uuid.uuid4().hex[:8]}")


class TestTrack:
    def test_a_python_sdk_form_is_stored_as_an_activity(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "Form fields: ``data=<compact JSON text, NOT base64>``, ``verbose=1``, ``ip=0``"
        and "accepted, ``verbose=1`` -> 200 ``{"status": 1, "error": null}``"."""
        user, hour_ago = uid(), int(time.time()) - 3600
        sent = event(
            account,
            "Signed Up",
            user,
            time=hour_ago + 0.25,
            plan="pro",
            nested={"a": [1, 2]},
            mp_lib="python",
            **{"$insert_id": insert_id()},
        )
        r = track(http, sent)
        assert r.status_code == 200, r.text
        assert r.json() == OK
        [activity] = activities_of(http, account, f"identity:{user}")
        assert activity["name"] == "Signed Up"
        assert activity["dialect"] == "mixpanel"
        assert activity["source"] == "python"
        moment = datetime.fromtimestamp(hour_ago, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        assert activity["occurred_at"] == f"{moment}.250000Z"
        assert "token" not in activity["properties"]
        assert "time" not in activity["properties"]
        assert activity["properties"]["plan"] == "pro"
        assert activity["properties"]["nested"] == {"a": [1, 2]}
        assert activity["properties"]["distinct_id"] == user

    def test_base64_data_json_bodies_and_get_are_read(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "The value is a JSON object or JSON array, either base64-encoded … or plain JSON
        text"; "``Content-Type: application/json`` with a JSON array body"; "Legacy GET
        ``/track?data=<base64>``" (the Node SDK's single calls)."""
        user = uid()
        r = http.post("/track", data=form(event(account, "A", user), encode=True))
        assert (r.status_code, r.text) == (200, "1")
        r = http.post("/track", json=[event(account, "B", user), event(account, "C", user)])
        assert (r.status_code, r.text) == (200, "1")
        r = http.get("/track", params=form(event(account, "D", user), encode=True, verbose=1))
        assert r.json() == OK
        names = sorted(a["name"] for a in activities_of(http, account, f"identity:{user}"))
        assert names == ["A", "B", "C", "D"]

    def test_paths_with_a_trailing_slash_as_mixpanel_browser_sends_them(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """mixpanel-browser posts to ``/track/?ip=1&_=<ms>``; "Route ``/track``, ``/engage``,
        ``/groups``, ``/import`` with and without trailing slash"."""
        user = uid()
        r = http.post("/track/?ip=1&_=1700000000000", data=form(event(account, "Slash", user)))
        assert (r.status_code, r.text) == (200, "1")
        r = http.post("/engage/", data=form(update(account, user, **{"$set": {"a": 1}})))
        assert (r.status_code, r.text) == (200, "1")
        r = http.post("/import/", json=[import_event(account, "Slashed", user)], auth=("x", ""))
        assert r.status_code == 401
        assert r.json()["status"] == "Unauthorized"
        assert len(activities_of(http, account, f"identity:{user}")) == 1

    def test_without_verbose_the_answer_is_a_bare_1_or_0(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "accepted, no ``verbose`` -> 200 text ``1``; invalid payload -> 200 text ``0``"."""
        r = track(http, event(account, "Ok", uid()), verbose=False)
        assert (r.status_code, r.text) == (200, "1")
        r = track(http, event(account, "", uid()), verbose=False)
        assert (r.status_code, r.text) == (200, "0")

    def test_invalid_records_are_named_and_the_valid_ones_stored(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Decision: "1 means at least one object valid" (ingestion OpenAPI); a request
        whose every record is refused answers 0 naming each by index and field."""
        user = uid()
        r = track(http, event(account, "Good", user), event(account, "Bad", "undefined"))
        assert r.json() == OK
        assert r.headers["X-Eventyard-Rejected-Records"] == "1"
        assert [a["name"] for a in activities_of(http, account, f"identity:{user}")] == ["Good"]
        r = track(http, {"properties": {"token": account.mixpanel_project_token}}, [1])
        body = r.json()
        assert body["status"] == 0
        assert "record 0 event" in body["error"]
        assert "record 1" in body["error"]

    def test_identifiers(self, http: httpx.Client, account: NewAccount) -> None:
        """ "Event has ``$user_id`` -> distinct_id = ``$user_id``. Event has only
        ``$device_id`` -> distinct_id = ``$device:<device_id>``"; decision: a distinct id
        is a user id (``identity``) unless it is ``$device:…`` or the event's $device_id."""
        device, user = uid("dev"), uid()
        track(http, event(account, "Anon", f"$device:{device}", **{"$device_id": device}))
        anonymous = read_contact(http, account, f"anonid:{device}")
        assert anonymous["status"] == "anonymous"
        r = track(http, event(account, "Login", user, **{"$device_id": device, "$user_id": user}))
        assert r.json() == OK
        known = read_contact(http, account, f"identity:{user}")
        assert identifier_pairs(known) == {("identity", user), ("anonid", device)}
        assert sorted(a["name"] for a in activities_of(http, account, f"identity:{user}")) == [
            "Anon",
            "Login",
        ]

    def test_the_token_travels_in_every_event(
        self, http: httpx.Client, account: NewAccount, other: NewAccount
    ) -> None:
        """ "Token is per object (``properties.token``)": the first record's token opens the
        project; one naming another token, or none, is refused alone."""
        user = uid()
        foreign = event(other, "Foreign", user)
        bare = {"event": "Bare", "properties": {"distinct_id": user}}
        r = track(http, event(account, "Mine", user), foreign, bare)
        assert r.json() == OK
        assert r.headers["X-Eventyard-Rejected-Records"] == "2"
        assert [a["name"] for a in activities_of(http, account, f"identity:{user}")] == ["Mine"]
        assert find_contact(http, other, f"identity:{user}") is None

    def test_a_missing_or_unknown_token_is_401(self, http: httpx.Client) -> None:
        r = http.post("/track", data=form({"event": "x", "properties": {"distinct_id": "u"}}))
        assert r.status_code == 401
        assert r.json() == {
            "code": 401,
            "error": "token, missing or empty",
            "status": "Unauthorized",
        }
        bad = {"event": "x", "properties": {"distinct_id": "u", "token": "nope"}}
        r = http.post("/track", data=form(bad, verbose=1))
        assert r.status_code == 401
        assert r.json()["error"] == "Invalid credentials"

    def test_events_older_than_five_days_are_skipped_answering_1(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "/track ingests only events from the last 5 days; older ones are dropped while
        the call still reports success"; time "seconds or milliseconds"."""
        user = uid()
        old = event(account, "Old", user, time=int(time.time()) - 6 * 86400)
        recent_ms = event(account, "Recent", user, time=int(time.time() * 1000) - 60_000)
        r = track(http, old, recent_ms)
        assert r.json() == OK
        assert "X-Eventyard-Rejected-Records" not in r.headers
        assert [a["name"] for a in activities_of(http, account, f"identity:{user}")] == ["Recent"]

    def test_the_same_insert_id_is_stored_once(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "Dedup key: (``event``, ``distinct_id``, ``time``, ``$insert_id``) — all four
        equal = duplicate"; a different time is another event."""
        user, key, now = uid(), insert_id(), int(time.time())
        first = event(account, "Paid", user, time=now, **{"$insert_id": key})
        later = event(account, "Paid", user, time=now - 10, **{"$insert_id": key})
        assert track(http, first).json() == OK
        assert track(http, first, first).json() == OK
        assert track(http, later).json() == OK
        assert len(activities_of(http, account, f"identity:{user}")) == 2

    def test_limits(self, http: httpx.Client, account: NewAccount) -> None:
        """ "up to 2000 events"; "< 255 properties"; "Strings are truncated to 255
        characters"; placeholder distinct ids and $insert_ids are refused."""
        user = uid()
        r = http.post("/track", json=[event(account, "e", user)] * 2001)
        assert r.status_code == 400
        assert "2001" in r.json()["error"]
        many = event(account, "Many", user, **{f"p{i}": i for i in range(260)})
        long = event(account, "Long", user, text="x" * 300, deep={"t": "y" * 300})
        bad_id = event(account, "BadId", user, **{"$insert_id": 12345})
        r = track(http, many, long, bad_id)
        assert r.headers["X-Eventyard-Rejected-Records"] == "2"
        [stored] = activities_of(http, account, f"identity:{user}")
        assert stored["properties"]["text"] == "x" * 255
        assert stored["properties"]["deep"] == {"t": "y" * 255}
        r = track(http, event(account, "Null", "null"))
        assert r.json()["status"] == 0
        assert "placeholder" in r.json()["error"]

    def test_gzip_bodies_are_read(self, http: httpx.Client, account: NewAccount) -> None:
        """ "Gzip allowed" (track docs)."""
        user = uid()
        body = gzip.compress(json.dumps([event(account, "Zipped", user)]).encode())
        r = http.post(
            "/track?verbose=1",
            content=body,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        assert r.json() == OK
        assert [a["name"] for a in activities_of(http, account, f"identity:{user}")] == ["Zipped"]

    def test_malformed_bodies_are_400_and_empty_ones_401(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """An unreadable body is a 400; an empty one names no token: 401 on /track, and
        "data, missing or empty" on /import."""
        for content in (b"data=%7Bnot-json", b"[1,", b"data=bm90IGpzb24="):
            r = http.post("/track", content=content)
            assert r.status_code == 400, content
            assert r.json()["status"] == "Bad Request"
        for content in (b"", b"data=", b"verbose=1"):
            r = http.post("/track", content=content)
            assert r.status_code == 401, content
        r = http.post("/import", content=b"[]", auth=secret_auth(account))
        assert r.status_code == 400
        assert r.json()["error"] == "data, missing or empty"

    def test_an_empty_post_may_carry_data_in_its_query(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        user = uid()
        r = http.post("/track", params=form(event(account, "Queried", user), verbose=1))
        assert r.json() == OK
        assert [a["name"] for a in activities_of(http, account, f"identity:{user}")] == ["Queried"]


class TestIdentity:
    def test_identify_merges_the_anonymous_contact_with_an_audit(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "``$identify``: ``$identified_id``, ``$anon_id``" go through identity
        resolution: the anonymous contact is merged into the user, audited."""
        anon, user = uid("anon"), uid()
        track(http, event(account, "Browse", anon, **{"$device_id": anon}))
        track(http, event(account, "Signed In", user))
        anonymous_id = read_contact(http, account, f"anonid:{anon}")["id"]
        identify = event(account, "$identify", user, **{"$identified_id": user, "$anon_id": anon})
        assert track(http, identify).json() == OK
        merged = read_contact(http, account, f"identity:{user}")
        assert ("anonid", anon) in identifier_pairs(merged)
        names = sorted(a["name"] for a in activities_of(http, account, f"identity:{user}"))
        assert names == ["Browse", "Signed In"]
        events = identity_events(http, account, merged["id"])
        assert [(e["kind"], e["other_contact_ids"]) for e in events] == [("merged", [anonymous_id])]

    def test_create_alias_adds_the_alias_to_the_user(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "``$create_alias``: ``distinct_id``, ``alias``": later events of the alias
        reach the same contact."""
        user, alias = uid(), uid("alias")
        track(http, event(account, "First", user))
        r = track(http, event(account, "$create_alias", user, alias=alias))
        assert r.json() == OK
        track(http, event(account, "Second", alias))
        found = read_contact(http, account, f"identity:{alias}")
        assert identifier_pairs(found) == {("identity", user), ("identity", alias)}
        assert len(activities_of(http, account, f"identity:{user}")) == 2

    def test_merge_is_import_only_and_merges_two_known_users_revertibly(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "``$merge`` … only accepted via ``/import`` …; irreversible": the second id's
        contact is merged into the first's even when both are known, audited as a merge
        that ``POST /api/v1/identity-events/{id}/revert`` undoes."""
        a, b, device = uid(), uid(), uid("dev")
        track(http, event(account, "A", a), event(account, "B", b))
        track(http, event(account, "D", f"$device:{device}"))
        merge = {
            "event": "$merge",
            "properties": {"$distinct_ids": [a, b], "token": account.mixpanel_project_token},
        }
        r = track(http, merge)
        assert r.json()["status"] == 0
        assert "only accepted by /import" in r.json()["error"]
        r = http.post("/import", data=form(merge, verbose=1), auth=secret_auth(account))
        assert r.json() == OK
        found = read_contact(http, account, f"identity:{a}")
        assert read_contact(http, account, f"identity:{b}")["id"] == found["id"]
        [merged] = identity_events(http, account, found["id"])
        assert merged["kind"] == "merged"
        assert merged["details"]["actor"] == {"via": "mixpanel"}
        assert merged["revertible"] is True
        anon_merge = merge | {
            "properties": merge["properties"] | {"$distinct_ids": [a, f"$device:{device}"]}
        }
        r = http.post("/import", data=form(anon_merge, verbose=1), auth=secret_auth(account))
        assert r.json() == OK
        assert ("anonid", device) in identifier_pairs(read_contact(http, account, f"identity:{a}"))

    def test_a_contact_first_seen_through_netcore_receives_mixpanel_events(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Issue 22: "a contact first seen through Netcore receiving the events of the same
        person"."""
        user = uid()
        upload_netcore_event(http, account, user)
        netcore_contact = read_contact(http, account, f"identity:{user}")
        track(http, event(account, "Checkout", user))
        engage(http, update(account, user, **{"$set": {"tier": "gold"}}))
        after = read_contact(http, account, f"identity:{user}")
        assert after["id"] == netcore_contact["id"]
        assert after["attributes"]["tier"] == "gold"
        dialects = sorted(a["dialect"] for a in activities_of(http, account, f"identity:{user}"))
        assert dialects == ["mixpanel", "netcore"]


class TestEngage:
    def test_every_people_operation(self, http: httpx.Client, account: NewAccount) -> None:
        """ "$set overwrite; $set_once set only if absent; $add increment (missing = 0);
        $append one value to a list; $union without duplicates; $remove value from list;
        $unset delete properties"; decision: ``$delete`` clears the attributes."""
        user = uid()
        steps = [
            {"$set": {"plan": "pro", "n": 1, "tags": ["a"], "gone": True, "$email": "A@x.io"}},
            {"$set_once": {"plan": "free", "first": "yes"}},
            {"$add": {"n": 2, "visits": 1.5}},
            {"$append": {"tags": "b"}},
            {"$union": {"tags": ["a", "c"]}},
            {"$remove": {"tags": "a"}},
            {"$unset": ["gone"]},
        ]
        for step in steps:
            r = engage(http, update(account, user, **step))
            assert r.json() == OK, (step, r.text)
        found = read_contact(http, account, f"identity:{user}")
        assert found["attributes"] == {
            "plan": "pro",
            "n": 3,
            "visits": 1.5,
            "tags": ["b", "c"],
            "first": "yes",
            "$email": "A@x.io",
        }
        assert ("email", "a@x.io") in identifier_pairs(found)
        assert engage(http, update(account, user, **{"$delete": ""})).json() == OK
        cleared = read_contact(http, account, f"identity:{user}")
        assert cleared["attributes"] == {}
        assert cleared["id"] == found["id"]

    def test_one_update_may_hold_several_operations_applied_in_order(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        user = uid()
        r = engage(http, update(account, user, **{"$set": {"n": 1}, "$add": {"n": 4}}))
        assert r.json() == OK
        assert read_contact(http, account, f"identity:{user}")["attributes"] == {"n": 5}

    def test_invalid_updates_are_named(self, http: httpx.Client, account: NewAccount) -> None:
        user = uid()
        r = engage(
            http,
            update(account, user, **{"$add": {"n": "one"}}),
            update(account, user),
            {"$token": account.mixpanel_project_token, "$set": {"a": 1}},
            update(account, user, **{"$union": {"t": "x"}}),
        )
        body = r.json()
        assert body["status"] == 0
        for text in ("record 0 $add.n", "record 1 $set", "record 2 $distinct_id", "$union.t"):
            assert text in body["error"], body


class TestGroups:
    def test_group_updates_are_refused_one_by_one(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Decision (docs/dialects/mixpanel.md): a group profile is not a contact; each
        update is refused in Mixpanel's shape, naming the group."""
        update_ = {
            "$token": account.mixpanel_project_token,
            "$group_key": "company",
            "$group_id": "acme",
            "$set": {"size": 10},
        }
        r = http.post("/groups", data=form(update_, verbose=1))
        assert r.status_code == 200
        body = r.json()
        assert body["status"] == 0
        assert "record 0 $group_key: group company=acme" in body["error"]


class TestImport:
    def test_strict_answer_counts_the_imported_events(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "200: ``{"code": 200, "num_records_imported": 2000, "status": "OK"}``";
        "Project secret (legacy): ``Authorization: Basic base64(<api_secret>:)``"."""
        user = uid()
        events = [import_event(account, f"E{i}", user) for i in range(3)]
        r = post_import(http, account, events, params={"strict": "1"})
        assert r.status_code == 200, r.text
        assert r.json() == {"code": 200, "num_records_imported": 3, "status": "OK"}
        stored = activities_of(http, account, f"identity:{user}")
        assert sorted(a["name"] for a in stored) == ["E0", "E1", "E2"]
        assert not stored[0]["journey_eligible"]

    def test_failed_records_by_index_and_the_valid_ones_stored(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "400 (partial success — valid events are still ingested)" with ``failed_records``
        naming ``index``, ``insert_id``, ``field`` and ``message``."""
        user = uid()
        good = import_event(account, "Good", user)
        no_time = import_event(account, "NoTime", user)
        del no_time["properties"]["time"]
        future = import_event(account, "Future", user, time=int(time.time()) + 7200)
        no_insert = import_event(account, "NoInsert", user)
        del no_insert["properties"]["$insert_id"]
        no_distinct = import_event(account, "NoDistinct", user)
        del no_distinct["properties"]["distinct_id"]
        early = import_event(account, "Early", user, time=100)
        nameless = import_event(account, "", user)
        r = post_import(
            http, account, [good, no_time, future, no_insert, no_distinct, early, nameless]
        )
        assert r.status_code == 400, r.text
        body = r.json()
        assert body["code"] == 400
        assert body["status"] == "Bad Request"
        assert body["error"] == "some data points in the request failed validation"
        assert body["num_records_imported"] == 1
        failed = {(f["index"], f["field"]) for f in body["failed_records"]}
        assert failed == {
            (1, "properties.time"),
            (2, "properties.time"),
            (3, "properties.$insert_id"),
            (4, "properties.distinct_id"),
            (5, "properties.time"),
            (6, "event"),
        }
        first = body["failed_records"][0]
        assert first["insert_id"] == no_time["properties"]["$insert_id"]
        assert "seconds since epoch" in first["message"]
        assert body["failed_records"][-1]["insert_id"] == nameless["properties"]["$insert_id"]
        assert [a["name"] for a in activities_of(http, account, f"identity:{user}")] == ["Good"]

    def test_strict_0_answers_200_with_what_was_imported(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        user = uid()
        bad = import_event(account, "Bad", user, time="soon")
        r = post_import(
            http, account, [import_event(account, "Ok", user), bad], params={"strict": "0"}
        )
        assert r.status_code == 200
        assert r.json() == {"code": 200, "num_records_imported": 1, "status": "OK"}

    def test_insert_id_dedup_counts_the_retry_as_imported(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        user = uid()
        events = [import_event(account, "Once", user)]
        assert post_import(http, account, events).json()["num_records_imported"] == 1
        assert post_import(http, account, events).json()["num_records_imported"] == 1
        assert len(activities_of(http, account, f"identity:{user}")) == 1

    def test_idempotency_key_replays_the_answer(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        user = uid()
        headers = {"Idempotency-Key": uid("key")}
        events = [import_event(account, "Keyed", user)]
        first = post_import(http, account, events, headers=headers)
        again = post_import(http, account, events, headers=headers)
        assert first.json() == again.json()
        assert len(activities_of(http, account, f"identity:{user}")) == 1

    def test_ndjson_and_gzip(self, http: httpx.Client, account: NewAccount) -> None:
        """ "``application/x-ndjson`` (one event per line); ``Content-Encoding: gzip``"."""
        user = uid()
        lines = "\n".join(json.dumps(import_event(account, f"L{i}", user)) for i in range(2))
        r = http.post(
            "/import",
            content=gzip.compress(lines.encode()),
            headers={"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"},
            auth=secret_auth(account),
        )
        assert r.json() == {"code": 200, "num_records_imported": 2, "status": "OK"}

    def test_the_form_encoded_import_is_answered_like_track(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "Legacy form-encoded ``/import`` (``data=`` + ``verbose=1``) answers in the
        track-style verbose shape ``{"error": null, "status": 1}``" (mixpanel-python#88)."""
        user = uid()
        r = http.post(
            "/import",
            data=form(import_event(account, "Form", user), verbose=1, api_key="ignored"),
            auth=secret_auth(account),
        )
        assert r.json() == OK
        assert len(activities_of(http, account, f"identity:{user}")) == 1

    def test_credentials(self, http: httpx.Client, account: NewAccount) -> None:
        """ "Service account: Basic ``username:secret`` + query ``project_id``"; "Project
        token: token as Basic username, empty password"; a wrong one is "401: ``{"code":
        401, "error": "Invalid credentials", "status": "Unauthorized"}``"."""
        user = uid()
        for auth, params in (
            (("service-account", account.mixpanel_api_secret), {"project_id": "12345"}),
            ((account.mixpanel_project_token, ""), {}),
        ):
            r = http.post(
                "/import", json=[import_event(account, "A", user)], auth=auth, params=params
            )
            assert r.status_code == 200, r.text
        assert len(activities_of(http, account, f"identity:{user}")) == 2
        r = http.post("/import", json=[import_event(account, "A", user)], auth=("wrong", ""))
        assert r.status_code == 401
        assert r.json() == {"code": 401, "error": "Invalid credentials", "status": "Unauthorized"}
        r = http.post("/import", json=[import_event(account, "A", user)])
        assert r.status_code == 401
        assert r.json()["status"] == "Unauthorized"

    def test_limits(self, http: httpx.Client, account: NewAccount) -> None:
        """ "≤ 2000 events; 10 MB uncompressed"; "413: ``{"code": 413, "error": "request
        exceeds max limit of … bytes", "status": "Request Entity Too Large"}``"."""
        r = post_import(http, account, [import_event(account, "e", "u")] * 2001)
        assert r.status_code == 400
        assert r.json()["code"] == 400
        huge = b"[" + b" " * (10 * 1024 * 1024) + b"]"
        r = http.post(
            "/import",
            content=huge,
            headers={"Content-Type": "application/json"},
            auth=secret_auth(account),
        )
        assert r.status_code == 413
        assert r.json() == {
            "code": 413,
            "error": "request exceeds max limit of 10485760 bytes",
            "status": "Request Entity Too Large",
        }

    def test_another_accounts_secret_sees_nothing(
        self, http: httpx.Client, account: NewAccount, other: NewAccount
    ) -> None:
        user = uid()
        post_import(http, other, [import_event(other, "Theirs", user)])
        assert find_contact(http, account, f"identity:{user}") is None
        assert len(activities_of(http, other, f"identity:{user}")) == 1


def test_openapi_describes_every_mixpanel_endpoint(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    for path in ("/track", "/engage", "/groups", "/import"):
        assert {"get", "post"} <= set(paths[path]), path
        assert "Mixpanel" in paths[path]["post"]["summary"]


PAYLOADS = Path(__file__).resolve().parents[1] / "payloads" / "mixpanel"
TOKEN_PLACEHOLDERS = ("YOUR_PROJECT_TOKEN", "<project token>", "<token>")


def sample(name: str, account: NewAccount) -> str:
    """A sample body of tests/payloads/mixpanel, its project token the account's."""
    text = (PAYLOADS / name).read_text()
    for placeholder in TOKEN_PLACEHOLDERS:
        text = text.replace(placeholder, account.mixpanel_project_token)
    return text.replace('"token": "t"', f'"token": "{account.mixpanel_project_token}"')


class TestSamplePayloads:
    def test_the_import_events_samples_as_json_and_ndjson(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """The import-events page's Signup and Purchase, "``application/json`` or
        ``application/x-ndjson``": stored once although sent in both forms."""
        for name, content_type in (
            ("import_events.json", "application/json"),
            ("import_events.ndjson", "application/x-ndjson"),
        ):
            r = http.post(
                "/import",
                content=sample(name, account),
                headers={"Content-Type": content_type},
                auth=secret_auth(account),
            )
            assert r.json() == {"code": 200, "num_records_imported": 2, "status": "OK"}, name
        stored = {
            a["name"]: a
            for a in activities_of(http, account, "identity:91304156-cafc-4673-a237-623d1129c801")
        }
        assert set(stored) == {"Signup", "Purchase"}
        assert stored["Signup"]["occurred_at"] == "2021-04-18T03:27:57Z"
        assert stored["Signup"]["properties"]["Referred by"] == "Friend"
        assert stored["Purchase"]["properties"]["Amount"] == 5.0
        assert (
            len(activities_of(http, account, "identity:91304156-cafc-4673-a237-623d1129c801")) == 2
        )

    def test_the_track_samples_are_skipped_as_too_old_then_stored_when_recent(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Both track samples are from 2021: "older ones are dropped while the call still
        reports success". The digest's event object, sent an hour old, is stored."""
        r = http.post("/track", content=sample("track_events.json", account))
        assert (r.status_code, r.text) == (200, "1")
        r = http.post("/track?verbose=1", data={"data": sample("track_event_object.json", account)})
        assert r.json() == OK
        assert find_contact(http, account, "identity:user_123") is None
        assert find_contact(http, account, "identity:u-1") is None
        recent = json.loads(sample("track_event_object.json", account))
        recent["properties"]["time"] = int(time.time()) - 3600
        assert track(http, recent).json() == OK
        [stored] = activities_of(http, account, "identity:u-1")
        assert stored["name"] == "Signed Up"
        assert stored["properties"]["ip"] == "136.24.0.114"
        assert stored["properties"]["plan"] == "pro"

    def test_the_profile_samples(self, http: httpx.Client, account: NewAccount) -> None:
        """ "Set Property" and the digest's profile update object: ``$set`` attributes,
        ``$email`` also an identifier; ``$time``, ``$ip`` and ``$ignore_time`` ignored."""
        r = http.post("/engage", content=sample("engage_set.json", account))
        assert (r.status_code, r.text) == (200, "1")
        found = read_contact(http, account, "identity:user123")
        assert found["attributes"] == {
            "$email": "john.doe@example.com",
            "$name": "John Doe",
            "plan": "premium",
            "credits": 100,
        }
        assert ("email", "john.doe@example.com") in identifier_pairs(found)
        r = http.post(
            "/engage", data={"data": sample("engage_update_object.json", account), "verbose": "1"}
        )
        assert r.json() == OK
        assert read_contact(http, account, "identity:u-1")["attributes"] == {"$email": "a@b.com"}

    def test_the_group_sample_is_refused(self, http: httpx.Client, account: NewAccount) -> None:
        r = http.post(
            "/groups", data={"data": sample("groups_update_object.json", account), "verbose": "1"}
        )
        assert r.json()["status"] == 0
        assert "group company=acme" in r.json()["error"]

    def test_the_merge_and_alias_samples(self, http: httpx.Client, account: NewAccount) -> None:
        """The Python SDK's ``merge`` (to /import) and ``alias`` (to /track) bodies."""
        r = http.post(
            "/import",
            data={"data": sample("merge.json", account), "verbose": "1"},
            auth=secret_auth(account),
        )
        assert r.json() == OK
        assert identifier_pairs(read_contact(http, account, "identity:a")) == {
            ("identity", "a"),
            ("identity", "b"),
        }
        r = http.post("/track", data={"data": sample("create_alias.json", account), "verbose": "1"})
        assert r.json() == OK
        assert identifier_pairs(read_contact(http, account, "identity:alias_id")) == {
            ("identity", "original"),
            ("identity", "alias_id"),
        }
