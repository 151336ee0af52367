"""Customer.io's Track API (v1 and v2) over real HTTP, on SQLite and PostgreSQL.

Every test talks to a real uvicorn server and checks what was stored through
eventyard's read API. Docstrings quote ``shared/specs/customerio.md`` (the
digest of Customer.io's Track API reference) or issue 22 where it is silent.
"""

from __future__ import annotations

import gzip
import json
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from eventyard.core.model import NewAccount
from tests.support import (
    activities_by_id,
    admin,
    find_contact,
    read_contact,
    upload_netcore_event,
)

V1 = "/api/v1"
ENTITY = "/api/v2/entity"
BATCH = "/api/v2/batch"


def auth(account: NewAccount) -> tuple[str, str]:
    return (account.customerio_site_id, account.customerio_api_key)


def uid() -> str:
    return f"cio-{uuid.uuid4().hex[:10]}"


def customer(identifier: str, suffix: str = "") -> str:
    """The path the SDK builds: the identifier percent-encoded with no safe characters."""
    return f"{V1}/customers/{quote(identifier, safe='')}{suffix}"


def call(
    http: httpx.Client, account: NewAccount, method: str, path: str, body: Any = None, **kw: Any
) -> httpx.Response:
    return http.request(method, path, json=body, auth=auth(account), **kw)


def ok(response: httpx.Response, status: int = 200) -> None:
    assert response.status_code == status, response.text
    if status == 200:
        assert response.json() == {}


def identifiers_of(found: dict[str, Any]) -> set[str]:
    return {f"{i['kind']}:{i['value']}" for i in found["identifiers"]}


class TestAuth:
    def test_basic_auth_with_site_id_and_api_key(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Spec: "HTTP Basic: username = Site ID, password = Track API key"."""
        user = uid()
        ok(call(http, account, "PUT", customer(user), {"plan": "basic"}))
        assert read_contact(http, account, f"identity:{user}")["attributes"]["plan"] == "basic"

    @pytest.mark.parametrize("path", [customer("x"), ENTITY])
    def test_bad_credentials_are_401_in_the_versions_shape(
        self, http: httpx.Client, account: NewAccount, path: str
    ) -> None:
        """Spec: "Bad credentials -> 401." v1 answers ``meta.errors``, v2 ``errors[]``."""
        wrong = (account.customerio_site_id, "nope")
        body = {"type": "person", "identifiers": {"id": "1"}, "action": "identify"}
        r = (
            http.put(path, json=body, auth=wrong)
            if path != ENTITY
            else http.post(path, json=body, auth=wrong)
        )
        assert r.status_code == 401
        if path == ENTITY:
            assert r.json()["errors"][0]["reason"] == "unauthorized"
        else:
            assert r.json()["meta"]["errors"][0].startswith("Unauthorized request")
        r = http.put(customer("x"), json={})
        assert r.status_code == 401
        assert "meta" in r.json()

    def test_another_accounts_site_id_with_this_key_is_refused(
        self, http: httpx.Client, account: NewAccount, store: Any
    ) -> None:
        """The site id and the key belong together (a pair, like CleverTap's)."""
        from eventyard.dialects.registry import create_account

        other = create_account(store, "other")
        r = http.put(
            customer("x"), json={}, auth=(other.customerio_site_id, account.customerio_api_key)
        )
        assert r.status_code == 401

    def test_the_credentials_api_issues_a_key_for_the_same_site_id(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Issue 22: the credentials API issues the pair as ``site_id`` and ``api_key``;
        a new key pairs with the account's site id, and a revoked one opens nothing."""
        r = http.post("/api/v1/credentials", json={"kind": "customerio"}, headers=admin(account))
        assert r.status_code == 201, r.text
        created = r.json()
        assert created["site_id"] == account.customerio_site_id
        assert created["api_key"] == created["secret"]
        pair = (created["site_id"], created["api_key"])
        ok(http.put(customer(uid()), json={}, auth=pair))
        r = http.delete(f"/api/v1/credentials/{created['id']}", headers=admin(account))
        assert r.status_code in (200, 204), r.text
        assert http.put(customer(uid()), json={}, auth=pair).status_code == 401


class TestIdentify:
    def test_attributes_are_top_level_keys(self, http: httpx.Client, account: NewAccount) -> None:
        """Spec: "Body = the person's attributes as top-level keys (no wrapper)"; its example."""
        user = uid()
        body = {
            "email": f"{user}@Example.com",
            "created_at": 1361205308,
            "first_name": "Bob",
            "plan": "basic",
        }
        ok(call(http, account, "PUT", customer(user), body))
        found = read_contact(http, account, f"identity:{user}")
        assert found["attributes"] == body
        assert identifiers_of(found) == {f"identity:{user}", f"email:{user}@example.com"}

    def test_an_email_in_the_path_names_the_email(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Spec: "Identifier in paths: an id, an email, or cio_<cio_id> … email-looking -> email";
        the SDK sends ``a%40b.com``."""
        email = f"{uid()}@example.com"
        ok(call(http, account, "PUT", customer(email), {"plan": "pro"}))
        found = read_contact(http, account, f"email:{email}")
        assert identifiers_of(found) == {f"email:{email}"}

    def test_a_slash_in_an_id_is_one_segment(self, http: httpx.Client, account: NewAccount) -> None:
        """Spec: "A `/` inside an id -> %2F. A server must match routes on the raw path"."""
        user = f"{uid()}/events"
        ok(call(http, account, "PUT", customer(user), {"plan": "x"}))
        ok(call(http, account, "POST", customer(user, "/events"), {"name": "opened"}))
        found = read_contact(http, account, f"identity:{user}")
        assert [a["name"] for a in activities_by_id(http, account, found["id"])] == ["opened"]

    def test_cio_id_names_the_contact(self, http: httpx.Client, account: NewAccount) -> None:
        """Spec: "cio_ prefix -> cio_id": eventyard's contact id; "Changing an existing id/email
        requires addressing the person as cio_<id>"."""
        user = uid()
        ok(call(http, account, "PUT", customer(user), {}))
        found = read_contact(http, account, f"identity:{user}")
        ok(call(http, account, "PUT", customer(f"cio_{found['id']}"), {"email": f"{user}@x.io"}))
        again = read_contact(http, account, f"email:{user}@x.io")
        assert again["id"] == found["id"]

    def test_an_unknown_cio_id_is_dropped_with_200(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Spec: "A cio_id that does not exist or was deleted -> request dropped (still 200)"."""
        email = f"{uid()}@example.com"
        ok(call(http, account, "PUT", customer("cio_nobody"), {"email": email}))
        assert find_contact(http, account, f"email:{email}") is None

    def test_anonymous_id_links_earlier_anonymous_events(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Spec: "anonymous_id (links earlier anonymous events, §4)"."""
        user, anon = uid(), uid()
        ok(call(http, account, "POST", f"{V1}/events", {"name": "viewed", "anonymous_id": anon}))
        ok(call(http, account, "PUT", customer(user), {"anonymous_id": anon}))
        found = read_contact(http, account, f"identity:{user}")
        assert f"anonid:{anon}" in identifiers_of(found)
        assert [a["name"] for a in activities_by_id(http, account, found["id"])] == ["viewed"]
        assert "anonymous_id" not in found["attributes"]

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({f"a{i}": i for i in range(301)}, "cannot identify more than 300 attributes"),
            ({"n" * 151: 1}, "attribute name cannot be longer than 150 bytes"),
            ({"bio": "x" * 1001}, "value for attribute 'bio' cannot be longer than 1000 bytes"),
            ({"id": ""}, "id attribute cannot be an empty string"),
            ({"id": ["a"]}, "id attribute must be a string value"),
            ([1, 2], "the body must be a hash"),
        ],
    )
    def test_limits_answer_400_with_meta_errors(
        self, http: httpx.Client, account: NewAccount, body: Any, message: str
    ) -> None:
        """Spec: "Limit breaches on v1 answer 400 with a message such as …"; the body is
        ``{"meta": {"errors": ["<message>"]}}`` (the OpenAPI schema)."""
        r = call(http, account, "PUT", customer(uid()), body)
        assert r.status_code == 400, r.text
        assert any(message in m for m in r.json()["meta"]["errors"]), r.text

    def test_an_id_longer_than_150_bytes_is_refused(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Spec: "person id: 150 bytes"."""
        r = call(http, account, "PUT", customer("é" * 76), {})
        assert r.status_code == 400
        assert r.json() == {"meta": {"errors": ["identifier cannot be longer than 150 bytes"]}}

    def test_relationships_become_group_memberships(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """``cio_relationships`` ``add_relationships``: the person joins the object (a group)."""
        user = uid()
        body = {
            "cio_relationships": {
                "action": "add_relationships",
                "relationships": [
                    {
                        "identifiers": {"object_type_id": "1", "object_id": "acme"},
                        "relationship_attributes": {"role": "admin"},
                    }
                ],
            }
        }
        ok(call(http, account, "PUT", customer(user), body))
        found = read_contact(http, account, f"identity:{user}")
        groups = found["groups"]
        assert [(g["group_id"], g["traits"]) for g in groups] == [("1:acme", {"role": "admin"})]
        body["cio_relationships"]["action"] = "delete_relationships"
        r = call(http, account, "PUT", customer(user), body)
        assert r.status_code == 400
        assert "not supported" in r.json()["meta"]["errors"][0]


class TestEvents:
    def test_the_spec_event_is_stored(self, http: httpx.Client, account: NewAccount) -> None:
        """§3.3's example: name, type, id, timestamp, data."""
        user = uid()
        body = {
            "name": "purchase",
            "type": "event",
            "id": f"01BX5ZZKBKACTAV9WEVGEMMVRY{uid()}",
            "timestamp": 1700000000,
            "data": {"price": 23.45, "product": "socks"},
        }
        ok(call(http, account, "POST", customer(user, "/events"), body))
        found = read_contact(http, account, f"identity:{user}")
        [stored] = activities_by_id(http, account, found["id"])
        assert stored["name"] == "purchase"
        assert stored["occurred_at"] == "2023-11-14T22:13:20Z"
        assert stored["properties"] == {"price": 23.45, "product": "socks"}
        assert stored["dialect"] == "customerio"
        assert stored["context"]["id"] == body["id"]

    def test_a_repeated_event_id_is_ignored(self, http: httpx.Client, account: NewAccount) -> None:
        """Spec: "id: ULID used for dedup — a repeated value is ignored"."""
        user, event_id = uid(), uid()
        for _ in range(3):
            body = {"name": "purchase", "id": event_id}
            ok(call(http, account, "POST", customer(user, "/events"), body))
        found = read_contact(http, account, f"identity:{user}")
        assert len(activities_by_id(http, account, found["id"])) == 1

    def test_idempotency_key_replays_the_answer(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Issue 22: "idempotent retries by the vendor's own key and by Idempotency-Key"."""
        user, key = uid(), uid()
        for _ in range(2):
            r = call(
                http,
                account,
                "POST",
                customer(user, "/events"),
                {"name": "paid"},
                headers={"Idempotency-Key": key},
            )
            ok(r)
        assert r.headers.get("Idempotent-Replayed") == "true"
        found = read_contact(http, account, f"identity:{user}")
        assert len(activities_by_id(http, account, found["id"])) == 1

    def test_page_and_screen_views(self, http: httpx.Client, account: NewAccount) -> None:
        """Spec: "type: event (default), page (name = URL), screen"."""
        user = uid()
        for body in (
            {"type": "page", "name": "https://example.com/a", "data": {"ref": "x"}},
            {"type": "screen", "name": "Cart"},
        ):
            ok(call(http, account, "POST", customer(user, "/events"), body))
        found = read_contact(http, account, f"identity:{user}")
        stored = {a["name"]: a["properties"] for a in activities_by_id(http, account, found["id"])}
        assert stored == {
            "Page Viewed": {"url": "https://example.com/a", "ref": "x"},
            "Screen Viewed": {"screen": "Cart"},
        }

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"name": " "}, "event name must not be blank"),
            ({"name": "n" * 101}, "event name cannot be longer than 100 bytes"),
            ({"name": "a", "data": [1]}, "event data must be a hash"),
            (
                {"name": "a", "data": {"x": "y" * 100_000}},
                "event data cannot be longer than 100000 bytes",
            ),
            ({"name": "a", "timestamp": "yesterday"}, "timestamp must be a unix timestamp"),
            ({"name": "a", "type": "click"}, "type must be one of event, page, screen"),
        ],
    )
    def test_bad_events_answer_400(
        self, http: httpx.Client, account: NewAccount, body: Any, message: str
    ) -> None:
        """§2's messages (``event name must not be blank`` …) in v1's shape."""
        r = call(http, account, "POST", customer(uid(), "/events"), body)
        assert r.status_code == 400, r.text
        assert any(message in m for m in r.json()["meta"]["errors"]), r.text

    def test_gzip_bodies_are_inflated(self, http: httpx.Client, account: NewAccount) -> None:
        """Issue 22: "gzip where the vendor accepts it"."""
        user = uid()
        content = gzip.compress(json.dumps({"name": "zipped"}).encode())
        r = http.post(
            customer(user, "/events"),
            content=content,
            auth=auth(account),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        ok(r)
        found = read_contact(http, account, f"identity:{user}")
        assert [a["name"] for a in activities_by_id(http, account, found["id"])] == ["zipped"]

    def test_values_no_store_can_keep_are_refused(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """A NUL character or nesting beyond 254 levels: 400 naming the path, nothing half
        stored (DESIGN.md: "expected failures are 4xx, never 500")."""
        deep: Any = "x"
        for _ in range(300):
            deep = {"d": deep}
        user = uid()
        for data in ({"note": "a\u0000b"}, deep):
            r = call(http, account, "POST", customer(user, "/events"), {"name": "n", "data": data})
            assert r.status_code == 400, r.text
            assert "meta" in r.json()
        assert find_contact(http, account, f"identity:{user}") is None

    def test_bad_json_is_400(self, http: httpx.Client, account: NewAccount) -> None:
        r = http.post(customer(uid(), "/events"), content=b"{", auth=auth(account))
        assert r.status_code == 400
        assert r.json()["meta"]["errors"][0].startswith("the body is not valid JSON")

    def test_an_anonymous_event_without_anonymous_id_stores_nothing(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Spec: "anonymous_id (optional in the schema; without it the event can never
        be attributed)"."""
        ok(call(http, account, "POST", f"{V1}/events", {"name": "lost"}))


class TestDevicesSuppressionMerge:
    def test_devices_are_kept_as_activities(self, http: httpx.Client, account: NewAccount) -> None:
        """§3.5: ``PUT …/devices`` with ``{"device": {"id", "platform", "last_used", …}}``;
        ``DELETE …/devices/{device_id}``."""
        user = uid()
        device = {"id": "tok/1", "platform": "ios", "last_used": 1700000000}
        ok(call(http, account, "PUT", customer(user, "/devices"), {"device": device}))
        ok(call(http, account, "DELETE", customer(user, "/devices/" + quote("tok/1", safe=""))))
        found = read_contact(http, account, f"identity:{user}")
        stored = sorted(
            (a["name"], a["properties"]["device"]["id"])
            for a in activities_by_id(http, account, found["id"])
        )
        assert stored == [("add_device", "tok/1"), ("delete_device", "tok/1")]
        r = call(http, account, "PUT", customer(user, "/devices"), {"device": {"id": "t"}})
        assert r.status_code == 400
        assert r.json() == {"meta": {"errors": ["device.platform must be ios or android"]}}

    def test_suppress_and_unsuppress(self, http: httpx.Client, account: NewAccount) -> None:
        """§3.7: ``POST …/suppress|unsuppress``, empty JSON body."""
        user = uid()
        ok(call(http, account, "POST", customer(user, "/suppress"), {}))
        assert (
            read_contact(http, account, f"identity:{user}")["attributes"]["cio_suppressed"] is True
        )
        ok(http.post(customer(user, "/unsuppress"), auth=auth(account)))
        assert (
            read_contact(http, account, f"identity:{user}")["attributes"]["cio_suppressed"] is False
        )

    def test_merge_gives_the_primary_an_unowned_secondary(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """§3.6 ``{"primary": {"id": "42"}, "secondary": {"email": …}}``."""
        user = uid()
        ok(call(http, account, "PUT", customer(user), {"plan": "x"}))
        body = {"primary": {"id": user}, "secondary": {"email": f"{user}@dup.io"}}
        ok(call(http, account, "POST", f"{V1}/merge_customers", body))
        found = read_contact(http, account, f"email:{user}@dup.io")
        assert f"identity:{user}" in identifiers_of(found)

    def test_merge_of_two_known_people_merges_the_secondary_revertibly(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """§3.6: "``secondary`` is deleted" into the primary; "copied into primary:
        attributes empty/unset on primary". eventyard merges it as a merge by hand
        (audited, ``actor.via`` customerio) that ``POST /api/v1/identity-events/{id}/revert``
        undoes, which Customer.io cannot ("irreversible")."""
        a, b = uid(), uid()
        ok(call(http, account, "PUT", customer(a), {"plan": "pro"}))
        ok(call(http, account, "PUT", customer(b), {"plan": "free", "city": "Oslo"}))
        ok(call(http, account, "POST", customer(b, "/events"), {"name": "e"}))
        secondary = read_contact(http, account, f"identity:{b}")
        body = {"primary": {"id": a}, "secondary": {"id": b}}
        ok(call(http, account, "POST", f"{V1}/merge_customers", body))
        primary = read_contact(http, account, f"identity:{b}")
        assert f"identity:{a}" in identifiers_of(primary)
        assert primary["attributes"] == {"plan": "pro", "city": "Oslo"}
        r = http.get(f"/api/v1/contacts/{primary['id']}/identity-events", headers=admin(account))
        [merge] = [e for e in r.json()["identity_events"] if e["kind"] == "merged"]
        assert merge["other_contact_ids"] == [secondary["id"]]
        assert merge["details"]["actor"] == {"via": "customerio"}
        assert merge["revertible"] is True
        r = http.post(f"/api/v1/identity-events/{merge['id']}/revert", headers=admin(account))
        assert r.status_code == 200, r.text
        assert read_contact(http, account, f"identity:{b}")["id"] == secondary["id"]
        assert read_contact(http, account, f"identity:{a}")["attributes"] == {"plan": "pro"}

    def test_merge_needs_exactly_one_identifier_a_side(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Spec: "Each side holds exactly one of id, email, cio_id (more -> 400)"."""
        body = {"primary": {"id": "1", "email": "a@b.io"}, "secondary": {"id": "2"}}
        r = call(http, account, "POST", f"{V1}/merge_customers", body)
        assert r.status_code == 400
        assert r.json()["meta"]["errors"][0].startswith("primary must hold exactly one of")


class TestDelete:
    def test_delete_erases_the_person(self, http: httpx.Client, account: NewAccount) -> None:
        """Spec: "Removes the person and all data. Later identify/track calls can recreate them";
        eventyard's erasure service does it (an audit record remains)."""
        user = uid()
        ok(call(http, account, "PUT", customer(user), {"plan": "x"}))
        ok(call(http, account, "POST", customer(user, "/events"), {"name": "e"}))
        ok(call(http, account, "DELETE", customer(user), {}))
        assert find_contact(http, account, f"identity:{user}") is None
        r = http.get("/api/v1/erasures", headers=admin(account))
        assert [e["requested_via"] for e in r.json()["erasures"]] == ["customerio"]
        ok(call(http, account, "DELETE", customer(user), {}))  # already gone: 200
        ok(call(http, account, "PUT", customer(user), {"plan": "y"}))
        assert read_contact(http, account, f"identity:{user}")["attributes"] == {"plan": "y"}

    def test_a_person_named_in_another_contacts_identity_audit_is_erased(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """A merge of two known people, reverted, leaves the merge (with what it moved)
        and its revert in the primary's identity history naming the secondary's
        identifiers; deleting the secondary erases it and takes its identifiers out of
        that history (a 500 before)."""
        a, b = uid(), uid()
        ok(call(http, account, "PUT", customer(a), {}))
        ok(call(http, account, "PUT", customer(b), {}))
        body = {"primary": {"id": a}, "secondary": {"id": b}}
        ok(call(http, account, "POST", f"{V1}/merge_customers", body))
        primary = read_contact(http, account, f"identity:{a}")
        r = http.get(f"/api/v1/contacts/{primary['id']}/identity-events", headers=admin(account))
        [merge] = [e for e in r.json()["identity_events"] if e["kind"] == "merged"]
        r = http.post(f"/api/v1/identity-events/{merge['id']}/revert", headers=admin(account))
        assert r.status_code == 200, r.text
        ok(call(http, account, "DELETE", customer(b), {}))
        assert find_contact(http, account, f"identity:{b}") is None
        r = http.get(f"/api/v1/contacts/{primary['id']}/identity-events", headers=admin(account))
        assert b not in r.text

    def test_unknown_paths_answer_404_in_v1_shape(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        r = call(http, account, "POST", customer("x", "/nothing"), {})
        assert r.status_code in (404, 405)
        assert "meta" in r.json()
        r = call(http, account, "GET", customer("x"))
        assert r.status_code == 405
        assert "meta" in r.json()


class TestV2:
    def test_unknown_methods_answer_in_v2_shape(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        r = http.get(BATCH, auth=auth(account))
        assert r.status_code == 405
        assert r.json()["errors"][0]["reason"] == "method_not_allowed"

    def test_entity_identify_and_event(self, http: httpx.Client, account: NewAccount) -> None:
        """§5.1's example, then an event with ``attributes`` as v1's ``data``."""
        user = uid()
        identify = {
            "type": "person",
            "identifiers": {"id": user},
            "action": "identify",
            "timestamp": 1700000000,
            "attributes": {"first_name": "Jane"},
        }
        ok(call(http, account, "POST", ENTITY, identify))
        event = {
            "type": "person",
            "identifiers": {"id": user},
            "action": "event",
            "name": "signed_up",
            "id": uid(),
            "attributes": {"plan": "pro"},
        }
        ok(call(http, account, "POST", ENTITY, event))
        found = read_contact(http, account, f"identity:{user}")
        assert found["attributes"] == {"first_name": "Jane"}
        [stored] = activities_by_id(http, account, found["id"])
        assert (stored["name"], stored["properties"]) == ("signed_up", {"plan": "pro"})

    def test_phone_identifier(self, http: httpx.Client, account: NewAccount) -> None:
        """Spec: "Person identifiers: exactly one of id, email, phone (E.164), cio_id"."""
        op = {"type": "person", "identifiers": {"phone": "+15555550100"}, "action": "identify"}
        ok(call(http, account, "POST", ENTITY, op))
        assert read_contact(http, account, "mobile:+15555550100")

    @pytest.mark.parametrize(
        ("operation", "field"),
        [
            ({"type": "person", "identifiers": {"id": "1", "email": "a@b.io"}}, "identifiers"),
            ({"type": "object", "action": "identify"}, "type"),
            ({"type": "delivery", "action": "event"}, "type"),
            ({"type": "person", "identifiers": {"id": "1"}, "action": "fly"}, "action"),
            (
                {"type": "person", "identifiers": {"id": "1"}, "action": "delete_relationships"},
                "action",
            ),
        ],
    )
    def test_entity_refusals_name_the_field(
        self, http: httpx.Client, account: NewAccount, operation: dict[str, Any], field: str
    ) -> None:
        """Spec: "400 {"errors": [{"reason", "field", "message"}]}"."""
        operation.setdefault("action", "identify")
        r = call(http, account, "POST", ENTITY, operation)
        assert r.status_code == 400, r.text
        [error] = r.json()["errors"]
        assert error["field"] == field
        assert error["reason"] == "invalid"

    def test_entity_is_at_most_32_kb(self, http: httpx.Client, account: NewAccount) -> None:
        """Spec: "v2 /entity request ≤ 32 KB"."""
        op = {
            "type": "person",
            "identifiers": {"id": "1"},
            "action": "identify",
            "attributes": {"x": "y" * 33_000},
        }
        r = call(http, account, "POST", ENTITY, op)
        assert r.status_code == 413
        assert r.json()["errors"][0]["field"] == "body"

    def test_batch_207_names_each_bad_operation(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Spec: "207 when some items are invalid (the rest are accepted)" with ``batch_index``."""
        user = uid()
        batch = [
            {"type": "person", "identifiers": {"id": user}, "action": "identify",
             "attributes": {"plan": "pro"}},
            {"type": "object", "identifiers": {"object_type_id": "1", "object_id": "a"},
             "action": "identify"},
            {"type": "person", "identifiers": {"id": user}, "action": "event", "name": "paid"},
            {"type": "person", "identifiers": {"id": user}, "action": "event"},
            {"type": "person", "identifiers": {"cio_id": "nobody"}, "action": "identify"},
        ]  # fmt: skip
        r = call(http, account, "POST", BATCH, {"batch": batch})
        assert r.status_code == 207, r.text
        errors = r.json()["errors"]
        assert [(e["batch_index"], e["field"]) for e in errors] == [
            (1, "type"),
            (3, "name"),
            (4, "identifiers"),
        ]
        found = read_contact(http, account, f"identity:{user}")
        assert found["attributes"] == {"plan": "pro"}
        assert [a["name"] for a in activities_by_id(http, account, found["id"])] == ["paid"]

    def test_batch_of_every_person_action(self, http: httpx.Client, account: NewAccount) -> None:
        """The person actions the canonical model holds, mixed in one batch."""
        user, other, anon = uid(), uid(), uid()
        person = {"type": "person", "identifiers": {"id": user}}
        batch = [
            {"type": "person", "action": "event", "name": "anon", "anonymous_id": anon},
            {**person, "action": "identify", "attributes": {"anonymous_id": anon, "a": 1}},
            {**person, "action": "page", "name": "https://x.io/"},
            {**person, "action": "screen", "name": "Home"},
            {**person, "action": "add_device", "device": {"id": "d1", "platform": "android"}},
            {**person, "action": "delete_device", "device": {"id": "d1"}},
            {**person, "action": "suppress"},
            {
                **person,
                "action": "add_relationships",
                "cio_relationships": [{"identifiers": {"object_type_id": "2", "object_id": "o"}}],
            },
            {"type": "person", "identifiers": {"id": other}, "action": "identify"},
            {"type": "person", "identifiers": {"id": other}, "action": "delete"},
        ]
        ok(call(http, account, "POST", BATCH, {"batch": batch}))
        found = read_contact(http, account, f"identity:{user}")
        assert found["attributes"] == {"a": 1, "cio_suppressed": True}
        names = sorted(a["name"] for a in activities_by_id(http, account, found["id"]))
        assert names == ["Page Viewed", "Screen Viewed", "add_device", "anon", "delete_device"]
        assert find_contact(http, account, f"identity:{other}") is None

    def test_batch_limit_500_kb(self, http: httpx.Client, account: NewAccount) -> None:
        """Spec: "v2 /batch request ≤ 500 KB"."""
        op = {"type": "person", "identifiers": {"id": "1"}, "action": "identify",
              "attributes": {"x": "y" * 900}}  # fmt: skip
        r = call(http, account, "POST", BATCH, {"batch": [op] * 600})
        assert r.status_code == 413
        assert "errors" in r.json()


class TestCrossDialect:
    def test_a_netcore_contact_receives_customerio_events(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Issue 22: "a contact first seen through Netcore receiving the events of the same
        person": Customer.io's ``id`` is the ``identity`` kind."""
        user = uid()
        upload_netcore_event(http, account, user)
        first = read_contact(http, account, f"identity:{user}")
        ok(call(http, account, "POST", customer(user, "/events"), {"name": "from_cio"}))
        names = {a["name"] for a in activities_by_id(http, account, first["id"])}
        assert "from_cio" in names
