"""PostHog's capture API over real HTTP, on SQLite and PostgreSQL.

Every test talks to a real uvicorn server and checks what was stored through
eventyard's canonical read API. Docstrings quote the spec digest
(``shared/specs/posthog.md``: PostHog's capture, timestamps, ingestion
warnings and identify pages, and the capture service's source).
"""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from eventyard.core.model import NewAccount
from eventyard.dialects.registry import create_account
from eventyard.services.ingest_stats import latest_rejections
from eventyard.storage.database import Database
from tests.lz64 import compress_to_base64
from tests.support import (
    activities_of,
    admin,
    find_contact,
    identifier_pairs,
    identity_events,
    read_contact,
    upload_netcore_event,
)

BATCH = "/batch/"
EVENT_PATHS = ["/capture", "/capture/", "/e", "/e/", "/i/v0/e", "/i/v0/e/"]


def uid() -> str:
    return f"ph-{uuid.uuid4().hex[:10]}"


def event(distinct_id: str, name: str = "signed_up", **fields: Any) -> dict[str, Any]:
    return {"event": name, "distinct_id": distinct_id, "uuid": str(uuid.uuid4()), **fields}


def send_batch(
    http: httpx.Client, account: NewAccount, *events: dict[str, Any], path: str = BATCH
) -> httpx.Response:
    body = {"api_key": account.posthog_api_key, "batch": list(events)}
    r = http.post(path, json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"status": 1}
    return r


def assert_error(r: httpx.Response, status: int, code: str, attr: str | None = None) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"type", "code", "detail", "attr"}, body
    assert body["code"] == code, body
    assert body["detail"]
    assert body["attr"] == attr, body


@pytest.fixture
def other(store: Database) -> NewAccount:
    """A second account: tenants are isolated."""
    return create_account(store, f"other-{uuid.uuid4().hex[:8]}")


class TestPaths:
    @pytest.mark.parametrize("path", ["/batch", "/batch/", *EVENT_PATHS])
    def test_every_path_with_and_without_its_slash_stores_an_event(
        self, http: httpx.Client, account: NewAccount, path: str
    ) -> None:
        """ "Serve every path with and without trailing slash directly (a redirect on POST
        is fragile)"; "All paths accept every body shape"; docs: "200 {"status": 1}"."""
        user = uid()
        single = {"api_key": account.posthog_api_key, **event(user, properties={"plan": "pro"})}
        r = http.post(path, json=single)
        assert r.status_code == 200, r.text
        assert r.json() == {"status": 1}
        [stored] = activities_of(http, account, f"identity:{user}")
        assert (stored["name"], stored["dialect"], stored["properties"]) == (
            "signed_up",
            "posthog",
            {"plan": "pro"},
        )

    def test_the_docs_single_event_sample_is_stored(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """The capture page's single event: ``api_key``, ``event``, ``distinct_id``,
        ``properties``, ``timestamp``."""
        user = uid()
        body = {
            "api_key": account.posthog_api_key,
            "event": "[event name]",
            "distinct_id": user,
            "properties": {"account_type": "pro"},
            "timestamp": "2020-08-16T09:03:11.913767Z",
        }
        assert http.post("/i/v0/e/", json=body).json() == {"status": 1}
        [stored] = activities_of(http, account, f"identity:{user}")
        assert stored["name"] == "[event name]"
        assert stored["occurred_at"] == "2020-08-16T09:03:11.913767Z"
        assert stored["source"] == "api"
        assert stored["context"]["timestamp"] == body["timestamp"]

    def test_an_array_of_events_with_token_in_properties_is_stored(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "Array (posthog-js) ``[ {event...}, {event...} ]``"; the token "else
        ``properties.token``". The token is never stored with the event."""
        user = uid()
        events = [
            event(user, "$pageview", properties={"token": account.posthog_api_key, "n": i})
            for i in range(3)
        ]
        r = http.post("/e/", json=events)
        assert r.status_code == 200, r.text
        stored = activities_of(http, account, f"identity:{user}")
        assert sorted(a["properties"]["n"] for a in stored) == [0, 1, 2]
        assert all("token" not in a["properties"] for a in stored)

    def test_beacon_answers_204_without_a_body(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "query ``beacon=1``: answer 204 No Content"."""
        user = uid()
        body = {"api_key": account.posthog_api_key, "batch": [event(user)]}
        r = http.post("/e/", params={"beacon": "1"}, json=body)
        assert (r.status_code, r.content) == (204, b"")
        assert len(activities_of(http, account, f"identity:{user}")) == 1

    def test_get_is_a_405_in_posthogs_shape(self, http: httpx.Client) -> None:
        r = http.get("/capture/")
        assert r.status_code == 405
        assert set(r.json()) == {"type", "code", "detail", "attr"}


class TestAuth:
    def test_no_api_key_is_a_401(self, http: httpx.Client) -> None:
        """ "event submitted without an api_key" (401)."""
        r = http.post(BATCH, json={"batch": [event(uid())]})
        assert_error(r, 401, "missing_api_key")
        assert r.json()["type"] == "authentication_error"
        assert r.json()["detail"] == "event submitted without an api_key"

    def test_an_unknown_key_is_the_docs_401(self, http: httpx.Client) -> None:
        """Docs: ``401 {"type": "authentication_error", "code": "invalid_api_key",
        "detail": "Project API key invalid. ..."}``."""
        r = http.post(BATCH, json={"api_key": "phc_nope", "batch": [event(uid())]})
        assert_error(r, 401, "invalid_api_key")
        assert r.json()["detail"].startswith("Project API key invalid.")

    def test_two_keys_in_one_batch_are_a_401(
        self, http: httpx.Client, account: NewAccount, other: NewAccount
    ) -> None:
        """ "different tokens in one batch → error" ("batch submitted with inconsistent
        api_key values")."""
        events = [
            {**event(uid()), "api_key": account.posthog_api_key},
            {**event(uid()), "token": other.posthog_api_key},
        ]
        r = http.post(BATCH, json=events)
        assert_error(r, 401, "inconsistent_api_key")

    def test_token_is_another_spelling_of_api_key(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "``api_key`` may also be spelled ``token``"."""
        user = uid()
        r = http.post(BATCH, json={"token": account.posthog_api_key, "batch": [event(user)]})
        assert r.status_code == 200, r.text
        assert len(activities_of(http, account, f"identity:{user}")) == 1

    def test_an_account_sees_none_of_anothers_events(
        self, http: httpx.Client, account: NewAccount, other: NewAccount
    ) -> None:
        user = uid()
        send_batch(http, account, event(user))
        assert find_contact(http, other, f"identity:{user}") is None


class TestEncodings:
    def body(self, account: NewAccount, user: str) -> str:
        return json.dumps({"api_key": account.posthog_api_key, "batch": [event(user)]})

    def test_content_encoding_gzip(self, http: httpx.Client, account: NewAccount) -> None:
        """posthog-python with ``gzip=True`` and posthog-node: ``Content-Encoding: gzip``."""
        user = uid()
        r = http.post(
            BATCH,
            content=gzip.compress(self.body(account, user).encode()),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        assert r.status_code == 200, r.text
        assert len(activities_of(http, account, f"identity:{user}")) == 1

    @pytest.mark.parametrize("path", ["/batch", "/e/"])
    def test_gzip_js_is_recognised_by_its_magic_bytes(
        self, http: httpx.Client, account: NewAccount, path: str
    ) -> None:
        """ "query ``compression=gzip`` or ``gzip-js``: body is gzip"; "body starts with
        bytes ``1f 8b 08``: gzip, regardless of hints"."""
        user = uid()
        r = http.post(
            path,
            params={"compression": "gzip-js", "ver": "1.200.0"},
            content=gzip.compress(self.body(account, user).encode()),
            headers={"Content-Type": "text/plain"},
        )
        assert r.status_code == 200, r.text
        assert len(activities_of(http, account, f"identity:{user}")) == 1

    @pytest.mark.parametrize("path", ["/batch/", "/e/"])
    def test_lz64_form_as_posthog_js_lite_sends_it(
        self, http: httpx.Client, account: NewAccount, path: str
    ) -> None:
        """ "form body ``data=...&compression=...``: posthog-js-lite style"; "query
        ``compression=lz64``: body is lz-string ``compressToBase64`` output"."""
        user = uid()
        form = f"data={quote(compress_to_base64(self.body(account, user)))}&compression=lz64"
        r = http.post(
            path,
            params={"compression": "lz64"},
            content=form,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 200, r.text
        assert len(activities_of(http, account, f"identity:{user}")) == 1

    def test_lz64_raw_body(self, http: httpx.Client, account: NewAccount) -> None:
        user = uid()
        r = http.post(
            "/i/v0/e/",
            params={"compression": "lz64"},
            content=compress_to_base64(self.body(account, user)),
        )
        assert r.status_code == 200, r.text
        assert len(activities_of(http, account, f"identity:{user}")) == 1

    def test_base64_form_and_body(self, http: httpx.Client, account: NewAccount) -> None:
        """ "query ``compression=base64``: base64"; a form's ``data`` in base64."""
        first, second = uid(), uid()
        encoded = base64.b64encode(self.body(account, first).encode()).decode()
        r = http.post("/capture/", content=f"data={quote(encoded)}")
        assert r.status_code == 200, r.text
        encoded = base64.b64encode(self.body(account, second).encode()).decode()
        r = http.post("/capture/", params={"compression": "base64"}, content=encoded)
        assert r.status_code == 200, r.text
        assert len(activities_of(http, account, f"identity:{first}")) == 1
        assert len(activities_of(http, account, f"identity:{second}")) == 1

    def test_an_undecodable_body_is_a_400(self, http: httpx.Client) -> None:
        """ "``failed to decode request: ...``" (400)."""
        r = http.post("/e/", params={"compression": "lz64"}, content="data=%21%21%21")
        assert_error(r, 400, "invalid_payload", "body")
        assert r.json()["detail"].startswith("failed to decode request: ")
        assert r.json()["type"] == "validation_error"

    def test_json_that_is_not_an_event_is_a_400(self, http: httpx.Client) -> None:
        """ "``failed to parse request: ...``" (400)."""
        assert_error(http.post(BATCH, content=b"{nope"), 400, "invalid_payload", "body")
        assert_error(http.post(BATCH, json={"hello": 1}), 400, "invalid_payload", "body")
        assert_error(http.post(BATCH, json={"batch": {}}), 400, "invalid_payload", "batch")

    def test_an_empty_batch_is_a_400(self, http: httpx.Client, account: NewAccount) -> None:
        """ "``request holds no event``" (400)."""
        r = http.post(BATCH, json={"api_key": account.posthog_api_key, "batch": []})
        assert_error(r, 400, "invalid_payload", "batch")
        assert r.json()["detail"] == "request holds no event"


class TestLimits:
    def test_a_body_over_2_mb_on_capture_is_a_413(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Routes: ``/i/v0/e``, ``/e``, ``/capture`` take 2 MB; the capture service refuses
        "too big"."""
        big = "x" * (2 * 1024 * 1024)
        body = {"api_key": account.posthog_api_key, **event(uid(), properties={"big": big})}
        r = http.post("/capture/", json=body)
        assert_error(r, 413, "payload_too_large")

    def test_a_gzip_body_inflating_past_the_limit_is_a_413(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "Decompressed size is capped by the route limit (gzip/lz bombs → "too big")"."""
        big = "x" * (3 * 1024 * 1024)
        body = json.dumps({"api_key": account.posthog_api_key, **event(uid(), extra=big)})
        r = http.post(
            "/e/", params={"compression": "gzip-js"}, content=gzip.compress(body.encode())
        )
        assert r.status_code == 413, r.text

    def test_an_event_over_1_mb_is_dropped_the_others_stored(
        self, http: httpx.Client, account: NewAccount, store: Database
    ) -> None:
        """ "single events over 1 MB are discarded with an ingestion warning"."""
        user = uid()
        big = event(user, "huge", properties={"blob": "x" * (1024 * 1024)})
        r = send_batch(http, account, big, event(user, "small"))
        assert r.headers["X-Eventyard-Rejected-Events"] == "1"
        assert [a["name"] for a in activities_of(http, account, f"identity:{user}")] == ["small"]
        [rejection] = latest_rejections(store, account.account.id)
        assert [(e.index, e.field) for e in rejection.errors] == [(0, "event")]


class TestDroppedEvents:
    def test_events_without_name_or_distinct_id_are_dropped_with_200(
        self, http: httpx.Client, account: NewAccount, store: Database
    ) -> None:
        """Docs: events "with no name, no ``distinct_id``, or an empty ``distinct_id`` are
        dropped but still get 200"; "an invalid UUID makes ingestion drop the event"."""
        user = uid()
        r = send_batch(
            http,
            account,
            event(user, "kept"),
            {"distinct_id": user, "uuid": str(uuid.uuid4())},
            event(user, ""),
            {"event": "no id"},
            event("  ", "blank id"),
            event(user, "bad uuid", uuid="not-a-uuid"),
            event(user, "bad props", properties=[1]),
            event(user, "bad set", **{"$set": "x"}),
            "not an object",
        )
        assert r.headers["X-Eventyard-Rejected-Events"] == "8"
        assert [a["name"] for a in activities_of(http, account, f"identity:{user}")] == ["kept"]
        [rejection] = latest_rejections(store, account.account.id)
        assert (rejection.dialect, rejection.status_code, rejection.rejected_records) == (
            "posthog",
            200,
            8,
        )
        assert [(e.index, e.field) for e in rejection.errors] == [
            (1, "event"),
            (2, "event"),
            (3, "distinct_id"),
            (4, "distinct_id"),
            (5, "uuid"),
            (6, "properties"),
            (7, "$set"),
            (8, "event"),
        ]

    def test_a_numeric_distinct_id_is_its_text(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """``distinct_id``: "any JSON value (stringified ...)"."""
        number = uuid.uuid4().int % 10**12
        send_batch(http, account, event(number))  # type: ignore[arg-type]
        assert len(activities_of(http, account, f"identity:{number}")) == 1

    def test_a_nul_or_a_huge_integer_drops_only_its_event(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        user = uid()
        raw = json.dumps(
            {
                "api_key": account.posthog_api_key,
                "batch": [
                    event(user, "nul", properties={"x": "a\u0000b"}),
                    event(user, "ok"),
                ],
            }
        )
        raw = raw.replace('"ok"', '"ok", "n": 123456789012345678901234567890')
        r = http.post(BATCH, content=raw)
        assert r.status_code == 200, r.text
        assert r.headers["X-Eventyard-Rejected-Events"] == "2"
        assert activities_of(http, account, f"identity:{user}") == []


class TestPersons:
    def test_set_set_once_and_unset(self, http: httpx.Client, account: NewAccount) -> None:
        """ "``$set``, ``$set_once``, ``$unset`` (list) in properties or top level: person
        property updates"; ``$set_once`` writes only what the person lacks."""
        user = uid()
        send_batch(
            http,
            account,
            event(user, "$set", **{"$set": {"name": "Pat", "plan": "free", "tmp": 1}}),
            event(user, "$set_once", **{"$set_once": {"plan": "pro", "first": "a"}}),
            event(user, "Upgraded", properties={"$set": {"plan": "pro"}, "$unset": ["tmp"]}),
        )
        found = read_contact(http, account, f"identity:{user}")
        assert found["attributes"] == {"name": "Pat", "plan": "pro", "first": "a", "tmp": None}
        assert [a["name"] for a in activities_of(http, account, f"identity:{user}")] == ["Upgraded"]

    def test_identify_merges_the_anonymous_person(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "``$identify``: ``distinct_id`` = known ID, ``properties.$anon_distinct_id`` =
        previous anonymous ID ...: merge anon person into identified person"."""
        user, anon = uid(), str(uuid.uuid4())
        send_batch(
            http,
            account,
            event(anon, "$pageview", properties={"$is_identified": False}),
            event(anon, "clicked", properties={"$process_person_profile": False}),
        )
        assert read_contact(http, account, f"anonid:{anon}")["status"] == "anonymous"
        send_batch(
            http,
            account,
            event(
                user,
                "$identify",
                properties={"$anon_distinct_id": anon, "$set": {"email": "pat@x.test"}},
                **{"$set_once": {"first_seen": "2026-01-01"}},
            ),
        )
        found = read_contact(http, account, f"identity:{user}")
        assert identifier_pairs(found) == {("identity", user), ("anonid", anon)}
        assert found["status"] == "known"
        assert found["attributes"] == {"email": "pat@x.test", "first_seen": "2026-01-01"}
        names = sorted(a["name"] for a in activities_of(http, account, f"identity:{user}"))
        assert names == ["$pageview", "clicked"]
        r = http.get(f"/api/v1/contacts/{found['id']}/identity-events", headers=admin(account))
        assert [e["kind"] for e in r.json()["identity_events"]] == ["converted"]

    def test_identify_merges_an_anonymous_contact_into_a_known_one_with_its_audit(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "both exist → merge properties (target wins on conflicts), move distinct_ids,
        delete source": the anonymous contact is merged into the known one."""
        user, anon = uid(), str(uuid.uuid4())
        send_batch(http, account, event(user, "Signed Up"))
        send_batch(
            http,
            account,
            event(anon, "$pageview", properties={"$process_person_profile": False}),
        )
        anonymous = read_contact(http, account, f"anonid:{anon}")
        send_batch(http, account, event(user, "$identify", properties={"$anon_distinct_id": anon}))
        found = read_contact(http, account, f"anonid:{anon}")
        assert found["id"] != anonymous["id"]
        assert identifier_pairs(found) == {("identity", user), ("anonid", anon)}
        names = sorted(a["name"] for a in activities_of(http, account, f"identity:{user}"))
        assert names == ["$pageview", "Signed Up"]
        r = http.get(f"/api/v1/contacts/{found['id']}/identity-events", headers=admin(account))
        [merge] = r.json()["identity_events"]
        assert merge["kind"] == "merged"

    def test_identify_with_an_illegal_anonymous_id_merges_nothing(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "Illegal distinct IDs (e.g. ``null``, ``guest``) are refused for merges"."""
        user = uid()
        send_batch(
            http, account, event(user, "$identify", properties={"$anon_distinct_id": "null"})
        )
        assert identifier_pairs(read_contact(http, account, f"identity:{user}")) == {
            ("identity", user)
        }

    def test_create_alias_joins_the_alias_to_the_person(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "``$create_alias``: ``distinct_id`` + ``properties.alias``: merge ``alias``
        person into ``distinct_id`` person"; later events with the alias find it."""
        user, alias = uid(), uid()
        send_batch(http, account, event(user, "first"))
        send_batch(
            http,
            account,
            event(user, "$create_alias", properties={"distinct_id": user, "alias": alias}),
            event(alias, "second"),
        )
        found = read_contact(http, account, f"identity:{alias}")
        assert identifier_pairs(found) == {("identity", user), ("identity", alias)}
        assert sorted(a["name"] for a in activities_of(http, account, f"identity:{user}")) == [
            "first",
            "second",
        ]

    def test_alias_of_two_known_people_keeps_them_apart_and_audits_it(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """eventyard never merges two known contacts ("never merge a source person that is
        already identified"): the conflict is in the identity audit."""
        first, second = uid(), uid()
        send_batch(http, account, event(first), event(second))
        send_batch(http, account, event(first, "$create_alias", properties={"alias": second}))
        one, two = (
            read_contact(http, account, f"identity:{first}"),
            read_contact(http, account, f"identity:{second}"),
        )
        assert one["id"] != two["id"]
        r = http.get(f"/api/v1/contacts/{one['id']}/identity-events", headers=admin(account))
        assert [e["kind"] for e in r.json()["identity_events"]] == ["conflict"]

    def test_merge_dangerously_merges_two_identified_people_revertibly(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "``$merge_dangerously``: merge with no restriction"; "both exist → merge
        properties (target wins on conflicts), move distinct_ids, delete source". eventyard
        merges the alias's contact into the distinct_id's, audited and revertible."""
        first, second = uid(), uid()
        send_batch(
            http,
            account,
            event(first, "$set", properties={"$set": {"plan": "pro"}}),
            event(second, "$set", properties={"$set": {"plan": "free", "city": "Oslo"}}),
            event(second, "viewed"),
        )
        source = read_contact(http, account, f"identity:{second}")
        send_batch(http, account, event(first, "$merge_dangerously", properties={"alias": second}))
        target = read_contact(http, account, f"identity:{second}")
        assert ("identity", first) in identifier_pairs(target)
        assert target["attributes"] == {"plan": "pro", "city": "Oslo"}
        [merged] = [
            e for e in identity_events(http, account, target["id"]) if e["kind"] == "merged"
        ]
        assert merged["other_contact_ids"] == [source["id"]]
        assert merged["details"]["actor"] == {"via": "posthog"}
        r = http.post(f"/api/v1/identity-events/{merged['id']}/revert", headers=admin(account))
        assert r.status_code == 200, r.text
        assert read_contact(http, account, f"identity:{second}")["id"] == source["id"]
        assert [a["name"] for a in activities_of(http, account, f"identity:{second}")] == ["viewed"]

    def test_personless_person_events_are_dropped(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "``$identify``, ``$create_alias``, ``$merge_dangerously``, ``$groupidentify``
        sent personless are dropped"; a personless event changes no person."""
        user = uid()
        personless = {"$process_person_profile": False}
        r = send_batch(
            http,
            account,
            event(user, "$identify", properties={**personless, "$anon_distinct_id": uid()}),
            event(user, "viewed", properties={**personless, "$set": {"x": 1}}),
        )
        assert r.headers["X-Eventyard-Rejected-Events"] == "1"
        assert find_contact(http, account, f"identity:{user}") is None
        found = read_contact(http, account, f"anonid:{user}")
        assert found["attributes"] == {}
        assert [a["name"] for a in activities_of(http, account, f"anonid:{user}")] == ["viewed"]

    def test_a_contact_first_seen_through_netcore_receives_the_events(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Issue 22: "a contact first seen through Netcore receiving the events of the same
        person"."""
        user = uid()
        upload_netcore_event(http, account, user)
        send_batch(http, account, event(user, "Order Completed"))
        assert {a["dialect"] for a in activities_of(http, account, f"identity:{user}")} == {
            "netcore",
            "posthog",
        }


class TestGroups:
    def test_groupidentify_and_groups(self, http: httpx.Client, account: NewAccount) -> None:
        """ "``$groupidentify``: ``properties.$group_type``, ``$group_key``, ``$group_set``:
        create/update group"; "``properties.$groups = {type: key}``: attach event to
        groups"."""
        user, stand_in = uid(), f"$company_{uid()}"
        send_batch(
            http,
            account,
            event(
                stand_in,
                "$groupidentify",
                properties={
                    "$group_type": "company",
                    "$group_key": "acme",
                    "$group_set": {"name": "Acme"},
                },
            ),
            event(user, "Invited", properties={"$groups": {"company": "acme", "team": 7}}),
            event(stand_in, "$groupidentify", properties={"$group_type": "company"}),
        )
        holder = read_contact(http, account, f"anonid:{stand_in}")
        assert [(g["group_id"], g["traits"]) for g in holder["groups"]] == [
            ("company:acme", {"name": "Acme"})
        ]
        member = read_contact(http, account, f"identity:{user}")
        assert sorted(g["group_id"] for g in member["groups"]) == ["company:acme", "team:7"]


class TestDedup:
    def test_a_repeated_uuid_is_stored_once(self, http: httpx.Client, account: NewAccount) -> None:
        """ "``uuid`` is the event identity ... Retried SDK sends keep the same uuid"."""
        user = uid()
        sent = event(user, "Paid", properties={"$set": {"plan": "pro"}, "$groups": {"org": 1}})
        send_batch(http, account, sent)
        send_batch(http, account, sent, sent)
        assert len(activities_of(http, account, f"identity:{user}")) == 1

    def test_empty_uuid_is_absent(self, http: httpx.Client, account: NewAccount) -> None:
        """ "empty string = absent": not deduplicated."""
        user = uid()
        send_batch(http, account, event(user, uuid=""), event(user, uuid=""))
        assert len(activities_of(http, account, f"identity:{user}")) == 2

    def test_idempotency_key_replays_the_answer(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        user = uid()
        body = {"api_key": account.posthog_api_key, "batch": [{**event(user), "uuid": ""}]}
        headers = {"Idempotency-Key": uid()}
        first = http.post(BATCH, json=body, headers=headers)
        again = http.post(BATCH, json=body, headers=headers)
        assert first.status_code == again.status_code == 200
        assert again.headers["Idempotent-Replayed"] == "true"
        assert len(activities_of(http, account, f"identity:{user}")) == 1


class TestTimestamps:
    def test_sent_at_corrects_the_clock_skew(self, http: httpx.Client, account: NewAccount) -> None:
        """ "``timestamp`` and ``sent_at`` both present → stored = ``timestamp`` + (server
        receive time - ``sent_at``)"."""
        user = uid()
        now = datetime.now(UTC)
        skewed = now + timedelta(hours=2)  # the client's clock runs two hours ahead
        body = {
            "api_key": account.posthog_api_key,
            "sent_at": skewed.isoformat(),
            "batch": [
                event(user, "skewed", timestamp=(skewed - timedelta(minutes=5)).isoformat()),
                event(
                    user,
                    "import",
                    timestamp="2020-01-01T00:00:00Z",
                    properties={"$ignore_sent_at": True},
                ),
            ],
        }
        assert http.post(BATCH, json=body).status_code == 200
        stored = {a["name"]: a for a in activities_of(http, account, f"identity:{user}")}
        occurred = datetime.fromisoformat(stored["skewed"]["occurred_at"])
        assert abs(occurred - (now - timedelta(minutes=5))) < timedelta(seconds=30)
        assert stored["import"]["occurred_at"] == "2020-01-01T00:00:00Z"

    def test_offset_and_unparseable_timestamps(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "``offset`` only (ms) → receive time - offset"; "Unparseable timestamps are
        ignored (event kept, time computed as if absent)"."""
        user = uid()
        now = datetime.now(UTC)
        send_batch(
            http,
            account,
            event(user, "offset", offset=3_600_000),
            event(user, "garbage", timestamp="yesterday"),
            event(user, "epoch", timestamp=1_600_000_000),
        )
        stored = {a["name"]: a for a in activities_of(http, account, f"identity:{user}")}
        offset = datetime.fromisoformat(stored["offset"]["occurred_at"])
        assert abs(offset - (now - timedelta(hours=1))) < timedelta(seconds=30)
        for name in ("garbage", "epoch"):
            moment = datetime.fromisoformat(stored[name]["occurred_at"])
            assert abs(moment - now) < timedelta(seconds=30)


PAYLOADS = Path(__file__).resolve().parents[1] / "payloads" / "posthog"
PERSON = "user distinct id"


def docs_sample(name: str, account: NewAccount) -> dict[str, Any]:
    """One of the capture page's bodies (tests/payloads/posthog), with the account's key."""
    text = (PAYLOADS / f"{name}.json").read_text()
    return dict(json.loads(text.replace("<ph_project_api_key>", account.posthog_api_key)))


class TestDocsSamples:
    def test_the_capture_pages_examples_are_stored_as_documented(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Every example of the capture page, replayed into one account: events become
        activities of the person, ``$identify`` sets person properties, ``$groups`` and
        ``$groupidentify`` make groups, a personless event changes no person, and the
        alias puts ``123`` and ``456`` on one contact."""
        paths = {"batch_events": "/batch/"}
        for name in (
            "single_event",
            "batch_events",
            "identify",
            "groups",
            "group_identify",
            "pageview",
            "screen",
            "survey",
            "personless",
            "alias",
        ):
            r = http.post(paths.get(name, "/capture/"), json=docs_sample(name, account))
            assert r.status_code == 200, (name, r.text)
            assert r.json() == {"status": 1}
            assert "X-Eventyard-Rejected-Events" not in r.headers, name

        person = read_contact(http, account, f"identity:{PERSON}")
        assert person["attributes"] == {"is_cool": "true"}
        assert [g["group_id"] for g in person["groups"]] == ["company:<company_name>"]
        stored = activities_of(http, account, f"identity:{PERSON}")
        assert sorted(a["name"] for a in stored) == [
            "$pageview",
            "$screen",
            "batched_event_name_1",
            "batched_event_name_2",
            "event name",
            "event name",
            "survey sent",
        ]
        by_name = {a["name"]: a for a in stored}
        assert by_name["batched_event_name_1"]["properties"] == {
            "distinct_id": PERSON,
            "account_type": "pro",
        }
        assert by_name["$screen"]["properties"] == {"$screen_name": "TheScreen"}
        assert by_name["survey sent"]["properties"]["$survey_response"] == "Awesome!"

        personless = read_contact(http, account, f"anonid:{PERSON}")
        assert (personless["status"], personless["attributes"]) == ("anonymous", {})
        [event_without_person] = activities_of(http, account, f"anonid:{PERSON}")
        assert event_without_person["occurred_at"] == "2020-08-16T09:03:11.913767Z"

        setup = read_contact(http, account, "anonid:groups_setup_id")
        [group] = setup["groups"]
        assert group["group_id"] == "<group_type>:<company_name>"
        assert group["traits"]["subscription"] == "premium"

        aliased = read_contact(http, account, "identity:123")
        assert identifier_pairs(aliased) == {("identity", "123"), ("identity", "456")}
