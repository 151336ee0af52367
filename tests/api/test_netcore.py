"""Netcore Add Activity API (``POST /v1/activity/upload``) over real HTTP.

Every test talks to a real uvicorn server (SQLite and PostgreSQL) and checks
what was stored through eventyard's canonical read API. Docstrings quote the
line of ``shared/specs/netcore-activity-upload.txt`` that forces the behaviour.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from eventyard.core.model import NewAccount
from eventyard.dialects.registry import create_account
from eventyard.storage.database import Database
from eventyard.storage.tables import activities, contacts
from tests.support import (
    PAYLOADS,
    Server,
    activities_by_id,
    activities_of,
    admin,
    find_contact,
    identifier_pairs,
    netcore_event,
    running_server,
)

UPLOAD = "/v1/activity/upload"
SUCCESS = {"status": "success"}


# --- helpers -------------------------------------------------------------------------


def load_payload(name: str) -> Any:
    return json.loads((PAYLOADS / "netcore" / name).read_text())


def upload(
    http: httpx.Client,
    account: NewAccount,
    body: Any,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return http.post(
        UPLOAD, json=body, headers={"api-key": account.netcore_api_key, **(headers or {})}
    )


def get_contact(http: httpx.Client, account: NewAccount, identifier: str) -> dict[str, Any]:
    contact = find_contact(http, account, identifier)
    assert contact is not None, f"no contact for {identifier}"
    return contact


def assert_success(r: httpx.Response) -> None:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == SUCCESS


def assert_error(r: httpx.Response, status: int) -> dict[str, Any]:
    """The Netcore error body: ``{"status": "error", "code", "message", "errors"?}``."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body: dict[str, Any] = r.json()
    assert body["status"] == "error", body
    assert body["code"] == status, body
    assert isinstance(body["message"], str)
    assert body["message"]
    return body


def error_fields(body: dict[str, Any]) -> set[tuple[int | None, str]]:
    return {(e.get("index"), e["field"]) for e in body.get("errors", [])}


def read_http_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, lower-cased headers and body of one HTTP/1.1 response read from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a full response head: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the whole response body"
        body += chunk
    return int(status_line.split(" ")[1]), headers, body


def raw_post(server: Server, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    """POST ``body`` to the upload path over a bare socket, headers written exactly as
    given (httpx refuses some values a client may still send, such as only blanks)."""
    url = urlsplit(server.base_url)
    assert url.hostname is not None
    assert url.port is not None
    lines = [f"POST {UPLOAD} HTTP/1.1", f"Host: {url.hostname}:{url.port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall("\r\n".join(lines).encode() + body)
        status, _, payload = read_http_response(sock)
    return status, payload


def iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def stored_rows(store: Database) -> tuple[int, int]:
    """How many activities and contacts the whole database holds, every account included."""
    with store.engine.connect() as conn:
        n_activities = conn.execute(select(func.count()).select_from(activities)).scalar_one()
        n_contacts = conn.execute(select(func.count()).select_from(contacts)).scalar_one()
    return int(n_activities), int(n_contacts)


@pytest.fixture
def other_account(store: Database) -> NewAccount:
    """A second tenant, for isolation tests."""
    return create_account(store, f"other-{uuid.uuid4().hex[:8]}")


# --- tests ---------------------------------------------------------------------------


class TestAuth:
    def test_missing_api_key_is_401(self, http: httpx.Client, store: Database) -> None:
        """Request Headers: "api-key | String | API key for authentication | ... | Yes";
        "401 | Unauthorized | Invalid API Key"."""
        before = stored_rows(store)
        r = http.post(UPLOAD, json=[netcore_event(identity="no-key")])
        body = assert_error(r, 401)
        assert body["message"] == "Unauthorized | Invalid API Key"
        assert stored_rows(store) == before

    @pytest.mark.parametrize("key", ["eyn_not-a-real-key", "", "0000eee0e00e0e00e0e0e"])
    def test_wrong_api_key_is_401(self, http: httpx.Client, store: Database, key: str) -> None:
        """ "401 | Unauthorized | Invalid API Key" (the last key is the spec's own example)."""
        before = stored_rows(store)
        r = http.post(UPLOAD, json=[netcore_event(identity="bad-key")], headers={"api-key": key})
        body = assert_error(r, 401)
        assert body["message"] == "Unauthorized | Invalid API Key"
        assert stored_rows(store) == before

    def test_admin_token_is_not_an_api_key(
        self, http: httpx.Client, account: NewAccount, store: Database
    ) -> None:
        """ "api-key | API key for authentication": only the account's Netcore key counts."""
        before = stored_rows(store)
        r = http.post(
            UPLOAD,
            json=[netcore_event(identity="admin-as-key")],
            headers={"api-key": account.admin_token},
        )
        assert_error(r, 401)
        assert stored_rows(store) == before

    @pytest.mark.parametrize("name", ["api-key", "api_key", "apikey"])
    def test_key_in_the_query_string_is_401(
        self, http: httpx.Client, account: NewAccount, store: Database, name: str
    ) -> None:
        """docs/dialects/netcore.md: "The key is only accepted in the header (not in the
        query string)"; "A missing or wrong key gets ... 401 ... Invalid API Key"."""
        before = stored_rows(store)
        r = http.post(
            UPLOAD,
            params={name: account.netcore_api_key},
            json=[netcore_event(identity="query-key")],
        )
        body = assert_error(r, 401)
        assert body["message"] == "Unauthorized | Invalid API Key"
        assert stored_rows(store) == before
        assert find_contact(http, account, "identity:query-key") is None

    def test_header_name_is_case_insensitive(self, http: httpx.Client, account: NewAccount) -> None:
        """Request Headers: "api-key"; HTTP header names are case-insensitive, so a
        client sending "API-KEY" must be accepted."""
        r = http.post(
            UPLOAD,
            json=[netcore_event(identity="upper-header")],
            headers={"API-KEY": account.netcore_api_key},
        )
        assert_success(r)
        assert len(activities_of(http, account, "identity:upper-header", one_page=True)) == 1

    def test_content_type_is_optional(self, http: httpx.Client, account: NewAccount) -> None:
        """Request Headers: "Content-Type | ... | application/json | No"."""
        r = http.post(
            UPLOAD,
            content=json.dumps([netcore_event(identity="no-content-type")]).encode(),
            headers={"api-key": account.netcore_api_key},
        )
        assert "content-type" not in r.request.headers
        assert_success(r)
        assert len(activities_of(http, account, "identity:no-content-type", one_page=True)) == 1

    def test_key_stores_into_its_own_account_only(
        self, http: httpx.Client, account: NewAccount, other_account: NewAccount
    ) -> None:
        """ "You can refer to the API key guide to retrieve your authentication token":
        the key names the account; another tenant never sees the data."""
        assert_success(upload(http, other_account, [netcore_event(identity="tenant-b")]))

        theirs = get_contact(http, other_account, "identity:tenant-b")
        assert len(activities_by_id(http, other_account, theirs["id"], one_page=True)) == 1
        assert find_contact(http, account, "identity:tenant-b") is None
        r = http.get(f"/api/v1/contacts/{theirs['id']}", headers=admin(account))
        assert r.status_code == 404, r.text
        r = http.get(f"/api/v1/contacts/{theirs['id']}/activities", headers=admin(account))
        assert r.status_code == 404, r.text


class TestUpload:
    def test_accepts_first_sample_request(self, http: httpx.Client, account: NewAccount) -> None:
        """Sample Request (Add To Cart) -> Response: ``{"status": "success"}``."""
        sample = load_payload("sample_request.json")
        event = sample[0]

        assert_success(upload(http, account, sample))

        contact = get_contact(http, account, "email:jane.doe@example.com")
        assert contact["status"] == "known"
        # "anonid": "" is no identifier at all.
        assert identifier_pairs(contact) == {
            ("identity", "jane.doe@example.com"),
            ("email", "jane.doe@example.com"),
            ("mobile", "3525252568"),
        }
        for identifier in ("identity:jane.doe@example.com", "mobile:3525252568"):
            assert get_contact(http, account, identifier)["id"] == contact["id"]
        r = http.get(f"/api/v1/contacts/{contact['id']}", headers=admin(account))
        assert r.status_code == 200, r.text
        assert r.json()["id"] == contact["id"]

        [activity] = activities_by_id(http, account, contact["id"], one_page=True)
        assert activity["name"] == "Add To Cart"
        # "2025-09-30T08:40:46" has no zone: read as UTC.
        assert activity["occurred_at"] == "2025-09-30T08:40:46Z"
        assert activity["received_at"].endswith("Z")
        assert activity["source"] == "web"
        assert activity["dialect"] == "netcore"
        assert activity["asset_id"] == "55a6d1d3ac4d5253ca4afd9636442434"
        assert activity["properties"] == event["activity_params"]
        assert activity["properties"]["product"][0]["product_name"] == "Simple Moisturizer"
        assert activity["properties"]["product"][0]["mrp"] == 250.1
        # "more than 24hrs old, it wont trigger a journey. It will be stored"
        assert activity["journey_eligible"] is False

    def test_accepts_second_sample_request_with_double_brackets(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """The spec's second sample is ``[[{...}]]``; a client copying it must work:
        the batch is flattened one level and its one event stored."""
        sample = load_payload("sample_request_2.json")
        event = sample[0][0]

        assert_success(upload(http, account, sample))

        contact = get_contact(http, account, "identity:CUSTOMER_ID")
        assert contact["status"] == "known"
        assert identifier_pairs(contact) == {("identity", "CUSTOMER_ID")}
        [activity] = activities_by_id(http, account, contact["id"], one_page=True)
        assert activity["name"] == "Purchase"
        assert activity["occurred_at"] == "2020-04-28T16:47:37Z"
        assert activity["source"] == "web"
        assert activity["dialect"] == "netcore"
        assert activity["asset_id"] == "sdbsjdh623jhmsndbkfs"
        assert activity["properties"] == event["activity_params"]
        assert len(activity["properties"]["items"]) == 2
        assert activity["journey_eligible"] is False

    def test_rejects_bulk_sample_without_asset_ids(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "asset_id | Pass website_id or app_id ... | String | Yes": the bulk sample's
        events 2 and 3 have none, so the request is refused and nothing is stored."""
        r = upload(http, account, load_payload("bulk_sample.json"))

        body = assert_error(r, 400)
        assert error_fields(body) == {(1, "asset_id"), (2, "asset_id")}
        assert find_contact(http, account, "identity:CUSTOMER_ID") is None

    def test_bulk_sample_with_asset_ids_is_stored_whole(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "The Same API described above can be used to upload activities in
        bulk(Max:1000) at a time": once every event has its asset_id, all are stored."""
        events = load_payload("bulk_sample.json")
        for event in events:
            event.setdefault("asset_id", "sdbsjdh623jhmsndbkfs")

        assert_success(upload(http, account, events))

        stored = activities_of(http, account, "identity:CUSTOMER_ID", one_page=True)
        # Newest first.
        assert [a["name"] for a in stored] == ["Purchase", "Checkout", "Add To Cart"]
        assert [a["occurred_at"] for a in stored] == [
            "2020-04-28T16:47:37Z",
            "2020-04-28T16:40:37Z",
            "2020-04-25T10:20:37Z",
        ]
        by_name = {a["name"]: a for a in stored}
        for event in events:
            assert by_name[event["activity_name"]]["properties"] == event["activity_params"]

    def test_bare_object_is_one_event(self, http: httpx.Client, account: NewAccount) -> None:
        """ "You can send single or bulk events": a single event may come as one object."""
        assert_success(upload(http, account, netcore_event(identity="bare-object")))

        [activity] = activities_of(http, account, "identity:bare-object", one_page=True)
        assert activity["name"] == "Add To Cart"

    def test_accepts_app_source(self, http: httpx.Client, account: NewAccount) -> None:
        """ "activity_source ... Valid values: web, app" ... "For App - use "app"."""
        assert_success(
            upload(http, account, [netcore_event(identity="app-user", activity_source="app")])
        )

        [activity] = activities_of(http, account, "identity:app-user", one_page=True)
        assert activity["source"] == "app"

    def test_numbers_sent_as_strings_are_kept_as_sent(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """The bulk sample sends ``"total_item_qty": 2`` in one event and
        ``"total_item_qty": "2"`` in the next: activity_params are stored as sent."""
        events = [
            netcore_event(
                identity="typed-params",
                activity_name="As number",
                activity_params={"total_item_qty": 2, "price": 496.1, "items": [{"mrp": 250.0}]},
            ),
            netcore_event(
                identity="typed-params",
                activity_name="As string",
                activity_params={
                    "total_item_qty": "2",
                    "price": "496.0",
                    "items": [{"mrp": "250.0"}],
                },
            ),
        ]

        assert_success(upload(http, account, events))

        by_name = {
            a["name"]: a["properties"]
            for a in activities_of(http, account, "identity:typed-params", one_page=True)
        }
        assert by_name["As number"]["total_item_qty"] == 2
        assert isinstance(by_name["As number"]["total_item_qty"], int)
        assert by_name["As number"]["price"] == 496.1
        assert by_name["As number"]["items"] == [{"mrp": 250.0}]
        assert by_name["As string"]["total_item_qty"] == "2"
        assert by_name["As string"]["price"] == "496.0"
        assert by_name["As string"]["items"] == [{"mrp": "250.0"}]

    def test_text_is_stored_exactly_as_sent(self, http: httpx.Client, account: NewAccount) -> None:
        """ "The activity_params object holds event-specific metadata": product names
        such as the sample's "L'Oreal Paris ..." come back byte for byte, including
        quotes, backslashes, tabs, newlines and non-ASCII text."""
        awkward = 'L\'Oreal "Paris" C:\\path\\N\ttab\nline\r\n€ ü 😀 \\N'
        params = {
            "product_name": awkward,
            "nested": {"list": [awkward, {"k\\ey\t": awkward}]},
            "empty_string": "",
            "null": None,
            "flag": False,
        }
        event = netcore_event(
            identity="Jöhn Dœ 😀",
            activity_name='Café ☕ "quoted" \\',
            asset_id="asset\\1",
            activity_params=params,
        )

        assert_success(upload(http, account, [event]))

        contact = get_contact(http, account, "identity:Jöhn Dœ 😀")
        [activity] = activities_by_id(http, account, contact["id"], one_page=True)
        assert activity["name"] == 'Café ☕ "quoted" \\'
        assert activity["asset_id"] == "asset\\1"
        assert activity["properties"] == params

    def test_event_with_empty_array_is_not_stored(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "if you are passing the data in the format of an array and if it is blank,
        the system will not insert such events in the Netcore CE. Do not Pass an
        Empty Array." The other events are stored; the response stays success.
        docs/dialects/netcore.md: skipped events "are reported in a header instead, as
        0-based indexes into the (flattened) batch"."""
        events = [
            netcore_event(
                identity="empty-array",
                activity_name="Blank products",
                activity_params={"currency": "INR", "product": []},
            ),
            netcore_event(identity="empty-array", activity_name="Kept"),
            netcore_event(
                identity="empty-array", activity_name="Blank tags", activity_params={"tags": []}
            ),
        ]

        r = upload(http, account, events)

        assert_success(r)
        assert r.headers["X-Eventyard-Skipped-Events"] == "0,2"
        names = [
            a["name"] for a in activities_of(http, account, "identity:empty-array", one_page=True)
        ]
        assert names == ["Kept"]

    def test_no_skipped_header_when_nothing_is_skipped(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "Product Array: Multiple products can be passed in API call in array format":
        a non-empty array is kept and no event is reported as skipped."""
        r = upload(
            http,
            account,
            [netcore_event(identity="full-array", activity_params={"product": [{"sku": "A1"}]})],
        )

        assert_success(r)
        assert "X-Eventyard-Skipped-Events" not in r.headers
        [activity] = activities_of(http, account, "identity:full-array", one_page=True)
        assert activity["properties"] == {"product": [{"sku": "A1"}]}


class TestValidation:
    @pytest.mark.parametrize(
        "field", ["asset_id", "activity_name", "timestamp", "activity_source", "activity_params"]
    )
    def test_missing_required_field_is_400(
        self, http: httpx.Client, account: NewAccount, field: str
    ) -> None:
        """Request Body table: asset_id, activity_name, timestamp, activity_source and
        activity_params are "Required: Yes"; "400 | Bad Request | Missing Parameter"."""
        events = [
            netcore_event(identity="good-neighbour"),
            netcore_event(identity="missing-field", **{field: None}),
        ]

        body = assert_error(upload(http, account, events), 400)

        assert error_fields(body) == {(1, field)}
        [error] = body["errors"]
        assert error["reason"].startswith("Missing Parameter"), error
        # The whole request is refused: its good event is not stored either.
        assert find_contact(http, account, "identity:good-neighbour") is None
        assert find_contact(http, account, "identity:missing-field") is None

    @pytest.mark.parametrize("name", [None, "", "   "])
    def test_missing_activity_name_message(
        self, http: httpx.Client, account: NewAccount, name: str | None
    ) -> None:
        """ "400 | Bad Request | Missing Parameter - Activity Name"."""
        event = netcore_event(identity="no-name")
        if name is None:
            del event["activity_name"]
        else:
            event["activity_name"] = name

        body = assert_error(upload(http, account, [event]), 400)

        assert body["errors"] == [
            {"index": 0, "field": "activity_name", "reason": "Missing Parameter - Activity Name"}
        ]
        assert "Missing Parameter - Activity Name" in body["message"]
        assert find_contact(http, account, "identity:no-name") is None

    def test_every_bad_event_is_listed_and_nothing_stored(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "400 | Bad Request": a batch with several bad events names each one by
        index and field, and none of the batch (good events included) is stored."""
        events = [
            netcore_event(identity="batch-bad-0", asset_id=None),
            netcore_event(identity="batch-good-1"),
            netcore_event(identity="batch-bad-2", activity_name=None, timestamp=None),
            netcore_event(identity="batch-good-3", email="batch-good-3@example.com"),
            netcore_event(identity=None, activity_source="pos"),
        ]

        body = assert_error(upload(http, account, events), 400)

        assert error_fields(body) == {
            (0, "asset_id"),
            (2, "activity_name"),
            (2, "timestamp"),
            (4, "activity_source"),
            (4, "identity"),
        }
        for error in body["errors"]:
            assert error["reason"], error
        for identifier in (
            "identity:batch-bad-0",
            "identity:batch-good-1",
            "identity:batch-bad-2",
            "identity:batch-good-3",
            "email:batch-good-3@example.com",
        ):
            assert find_contact(http, account, identifier) is None, identifier

    @pytest.mark.parametrize("source", ["pos", "WEB-SITE", 1])
    def test_unknown_activity_source_is_400(
        self, http: httpx.Client, account: NewAccount, source: Any
    ) -> None:
        """ "activity_source ... Valid values: web, app"."""
        event = netcore_event(identity="bad-source", activity_source=source)

        body = assert_error(upload(http, account, [event]), 400)

        assert error_fields(body) == {(0, "activity_source")}
        assert find_contact(http, account, "identity:bad-source") is None

    @pytest.mark.parametrize("params", [["a"], "x", 5])
    def test_activity_params_must_be_an_object(
        self, http: httpx.Client, account: NewAccount, params: Any
    ) -> None:
        """ "activity_params | The activity_params object holds event-specific
        metadata. | Object | Yes"."""
        event = netcore_event(identity="bad-params", activity_params=params)

        body = assert_error(upload(http, account, [event]), 400)

        assert error_fields(body) == {(0, "activity_params")}
        assert find_contact(http, account, "identity:bad-params") is None

    @pytest.mark.parametrize("field", ["asset_id", "activity_name"])
    def test_string_fields_must_be_strings(
        self, http: httpx.Client, account: NewAccount, field: str
    ) -> None:
        """Request Body table: asset_id and activity_name are "String"."""
        event = netcore_event(identity="non-string", **{field: 42})

        body = assert_error(upload(http, account, [event]), 400)

        assert error_fields(body) == {(0, field)}

    def test_event_that_is_not_an_object_is_400(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Sample Request: a JSON array of event objects."""
        events = [netcore_event(identity="not-object-neighbour"), "Add To Cart"]

        body = assert_error(upload(http, account, events), 400)

        assert {e.get("index") for e in body["errors"]} == {1}
        assert find_contact(http, account, "identity:not-object-neighbour") is None

    @pytest.mark.parametrize("raw", [b'[{"asset_id": "x",', b"not json", b"", b"[1,]"])
    def test_malformed_json_is_400_with_json_body(
        self, http: httpx.Client, account: NewAccount, raw: bytes
    ) -> None:
        """Content-Type "JSON format for the request payload"; "400 | Bad Request"."""
        r = http.post(
            UPLOAD,
            content=raw,
            headers={"api-key": account.netcore_api_key, "Content-Type": "application/json"},
        )

        body = assert_error(r, 400)
        assert error_fields(body) == {(None, "body")}

    @pytest.mark.parametrize("payload", [42, "event", None, True])
    def test_body_that_is_neither_array_nor_object_is_400(
        self, http: httpx.Client, account: NewAccount, payload: Any
    ) -> None:
        """Sample Request: the body is an array of events (or one event)."""
        body = assert_error(upload(http, account, payload), 400)
        assert error_fields(body) == {(None, "body")}


class TestIdentifiers:
    def test_no_identifier_is_400(self, http: httpx.Client, account: NewAccount) -> None:
        """ "At least one of the identifiers is required: identity, email, mobile, or anonid"."""
        event = netcore_event(identity=None)

        body = assert_error(upload(http, account, [event]), 400)

        [error] = body["errors"]
        assert error["index"] == 0
        assert "At least one of the identifiers is required" in error["reason"]

    def test_only_empty_identifiers_is_400(self, http: httpx.Client, account: NewAccount) -> None:
        """ "At least one of the identifiers is required": empty strings do not count."""
        event = netcore_event(identity="", email="", mobile="", anonid="  ")

        body = assert_error(upload(http, account, [event]), 400)

        [error] = body["errors"]
        assert error["index"] == 0
        assert "At least one of the identifiers is required" in error["reason"]

    def test_empty_identifiers_are_ignored(self, http: httpx.Client, account: NewAccount) -> None:
        """The sample sends ``"anonid": ""``: an empty identifier is no identifier."""
        event = netcore_event(identity="", email="", mobile="", anonid="cookie-empty-others")

        assert_success(upload(http, account, [event]))

        contact = get_contact(http, account, "anonid:cookie-empty-others")
        assert identifier_pairs(contact) == {("anonid", "cookie-empty-others")}
        assert contact["status"] == "anonymous"
        assert len(activities_by_id(http, account, contact["id"], one_page=True)) == 1

    def test_email_is_normalised(self, http: httpx.Client, account: NewAccount) -> None:
        """ "email | Email Address of the user": addresses compare case-insensitively,
        so upper-case input is stored lower-case and found by a lower-case lookup."""
        event = netcore_event(identity=None, email="  Jane.UPPER@Example.COM ")

        assert_success(upload(http, account, [event]))

        contact = get_contact(http, account, "email:jane.upper@example.com")
        assert identifier_pairs(contact) == {("email", "jane.upper@example.com")}
        assert len(activities_by_id(http, account, contact["id"], one_page=True)) == 1

    def test_mobile_is_normalised(self, http: httpx.Client, account: NewAccount) -> None:
        """ "mobile | Mobile number of the user": separators are not part of the number."""
        event = netcore_event(identity=None, mobile="+91 98765-43210")

        assert_success(upload(http, account, [event]))

        contact = get_contact(http, account, "mobile:+919876543210")
        assert identifier_pairs(contact) == {("mobile", "+919876543210")}
        # The same number sent differently lands on the same contact.
        again = netcore_event(identity=None, mobile="+91 (98765) 43210")
        assert_success(upload(http, account, [again]))
        assert len(activities_by_id(http, account, contact["id"], one_page=True)) == 2

    def test_integer_identity_is_accepted(self, http: httpx.Client, account: NewAccount) -> None:
        """ "identity | ... | String/Integer | No"."""
        assert_success(upload(http, account, [netcore_event(identity=9876543)]))

        contact = get_contact(http, account, "identity:9876543")
        assert identifier_pairs(contact) == {("identity", "9876543")}

    @pytest.mark.parametrize(
        ("field", "value"), [("email", "not-an-email"), ("mobile", "call me maybe")]
    )
    def test_malformed_identifier_is_400(
        self, http: httpx.Client, account: NewAccount, field: str, value: str
    ) -> None:
        """ "email | Email Address of the user", "mobile | Mobile number of the user"."""
        event = netcore_event(identity="has-bad-identifier", **{field: value})

        body = assert_error(upload(http, account, [event]), 400)

        assert error_fields(body) == {(0, field)}
        assert find_contact(http, account, "identity:has-bad-identifier") is None


class TestTimestamps:
    @pytest.mark.parametrize(
        ("sent", "stored"),
        [
            ("2021-12-29T12:06:28Z", "2021-12-29T12:06:28Z"),
            ("2021-12-29T06:12:28+05:30", "2021-12-29T00:42:28Z"),
            ("2021-12-29T12:06:28", "2021-12-29T12:06:28Z"),
        ],
        ids=["utc-z", "ist-offset", "no-zone"],
    )
    def test_timestamp_is_stored_in_utc(
        self, http: httpx.Client, account: NewAccount, sent: str, stored: str
    ) -> None:
        """ "We currently support the UTC and ISO-8601 time zones. UTC Example ...
        2021-12-29T12:06:28Z ... ISO-8601 Example ... 2021-12-29T06:12:28+05:30"."""
        assert_success(upload(http, account, [netcore_event(identity="ts", timestamp=sent)]))

        [activity] = activities_of(http, account, "identity:ts", one_page=True)
        assert activity["occurred_at"] == stored

    def test_journey_eligibility_follows_the_24_hour_rule(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "If timestamp passed for event passed by the activity API is more than 24hrs
        old, it wont trigger a journey. It will be stored in the event data.\""""
        now = datetime.now(UTC).replace(microsecond=0)
        fresh = now - timedelta(minutes=1)
        stale = now - timedelta(hours=25)
        events = [
            netcore_event(identity="journey", activity_name="Fresh", timestamp=iso_z(fresh)),
            netcore_event(identity="journey", activity_name="Stale", timestamp=iso_z(stale)),
        ]

        assert_success(upload(http, account, events))

        by_name = {
            a["name"]: a for a in activities_of(http, account, "identity:journey", one_page=True)
        }
        assert by_name["Fresh"]["occurred_at"] == iso_z(fresh)
        assert by_name["Fresh"]["journey_eligible"] is True
        assert by_name["Stale"]["occurred_at"] == iso_z(stale)
        assert by_name["Stale"]["journey_eligible"] is False

    @pytest.mark.parametrize(
        "value", ["29/12/2021 12:06", "yesterday", "2021-02-30T10:00:00Z", 1640779588]
    )
    def test_malformed_timestamp_is_400(
        self, http: httpx.Client, account: NewAccount, value: Any
    ) -> None:
        """ "timestamp | ... Expected Value format: 2021-12-29T12:06:28Z | Date-Time"."""
        event = netcore_event(identity="bad-ts", timestamp=value)

        body = assert_error(upload(http, account, [event]), 400)

        assert error_fields(body) == {(0, "timestamp")}
        assert find_contact(http, account, "identity:bad-ts") is None


class TestIdentityResolution:
    def test_identifiers_spread_across_events_end_on_one_contact(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "The API accepts multiple identifiers (identity, email, mobile, and anonid)
        so you can associate events with the right user, even when not all
        identifiers are available"."""
        events = [
            netcore_event(activity_name="E0", identity="spread-1", email="spread@example.com"),
            netcore_event(
                activity_name="E1", identity=None, email="spread@example.com", mobile="5550101"
            ),
            netcore_event(activity_name="E2", identity=None, mobile="5550101", anonid="spr-anon"),
            netcore_event(activity_name="E3", identity=None, anonid="spr-anon"),
        ]

        assert_success(upload(http, account, events))

        contact = get_contact(http, account, "identity:spread-1")
        assert contact["status"] == "known"
        assert identifier_pairs(contact) == {
            ("identity", "spread-1"),
            ("email", "spread@example.com"),
            ("mobile", "5550101"),
            ("anonid", "spr-anon"),
        }
        for identifier in ("email:spread@example.com", "mobile:5550101", "anonid:spr-anon"):
            assert get_contact(http, account, identifier)["id"] == contact["id"]
        names = sorted(
            a["name"] for a in activities_by_id(http, account, contact["id"], one_page=True)
        )
        assert names == ["E0", "E1", "E2", "E3"]

    def test_identifiers_spread_across_requests_end_on_one_contact(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "associate events with the right user, even when not all identifiers are
        available": the same events, sent one per request, resolve the same way."""
        for event in [
            netcore_event(activity_name="R0", identity="spread-2", email="spread2@example.com"),
            netcore_event(activity_name="R1", identity=None, email="spread2@example.com"),
            netcore_event(
                activity_name="R2", identity=None, email="spread2@example.com", mobile="5550202"
            ),
            netcore_event(activity_name="R3", identity=None, mobile="5550202"),
        ]:
            assert_success(upload(http, account, [event]))

        contact = get_contact(http, account, "mobile:5550202")
        assert contact["id"] == get_contact(http, account, "identity:spread-2")["id"]
        assert identifier_pairs(contact) == {
            ("identity", "spread-2"),
            ("email", "spread2@example.com"),
            ("mobile", "5550202"),
        }
        names = sorted(
            a["name"] for a in activities_by_id(http, account, contact["id"], one_page=True)
        )
        assert names == ["R0", "R1", "R2", "R3"]

    def test_anonymous_contact_becomes_known(self, http: httpx.Client, account: NewAccount) -> None:
        """ "the system checks for a matching anonymous profile. If an anonymous profile
        is found, it is converted into a known user"."""
        assert_success(
            upload(
                http, account, [netcore_event(identity=None, anonid="cookie-42", activity_name="A")]
            )
        )
        before = get_contact(http, account, "anonid:cookie-42")
        assert before["status"] == "anonymous"
        assert identifier_pairs(before) == {("anonid", "cookie-42")}

        assert_success(
            upload(
                http,
                account,
                [netcore_event(identity="user-42", anonid="cookie-42", activity_name="B")],
            )
        )

        after = get_contact(http, account, "identity:user-42")
        assert after["id"] == before["id"]
        assert after["status"] == "known"
        assert identifier_pairs(after) == {("anonid", "cookie-42"), ("identity", "user-42")}
        assert get_contact(http, account, "anonid:cookie-42")["id"] == before["id"]
        names = sorted(
            a["name"] for a in activities_by_id(http, account, after["id"], one_page=True)
        )
        assert names == ["A", "B"]

    def test_new_user_is_created(self, http: httpx.Client, account: NewAccount) -> None:
        """ "If no profile exists, a new user profile is created automatically before
        the activity is recorded"."""
        assert find_contact(http, account, "identity:brand-new") is None

        assert_success(upload(http, account, [netcore_event(identity="brand-new")]))

        contact = get_contact(http, account, "identity:brand-new")
        assert contact["status"] == "known"
        assert len(activities_by_id(http, account, contact["id"], one_page=True)) == 1


class TestIdempotency:
    def test_same_key_same_body_replays(self, http: httpx.Client, account: NewAccount) -> None:
        """Not in the vendor spec; eventyard's own promise (DESIGN.md: "Acknowledged
        means durable"), so that back ends ("Any custom event from your backend
        systems") can retry safely: the same key and body replay the first response."""
        body = json.dumps([netcore_event(identity="idem-same")]).encode()
        headers = {"api-key": account.netcore_api_key, "Idempotency-Key": unique("k")}

        first = http.post(UPLOAD, content=body, headers=headers)
        second = http.post(UPLOAD, content=body, headers=headers)

        assert_success(first)
        assert "Idempotent-Replayed" not in first.headers
        assert second.status_code == first.status_code
        assert second.content == first.content
        assert second.headers["Idempotent-Replayed"] == "true"
        assert len(activities_of(http, account, "identity:idem-same", one_page=True)) == 1

    def test_same_key_other_body_is_409(self, http: httpx.Client, account: NewAccount) -> None:
        """Not in the vendor spec (eventyard's Idempotency-Key): reusing a key for a
        different body is a 409 client error, never a silent replay."""
        key = unique("k")
        headers = {"Idempotency-Key": key}
        assert_success(upload(http, account, [netcore_event(identity="idem-a")], headers))

        r = upload(http, account, [netcore_event(identity="idem-b")], headers)

        assert_error(r, 409)
        assert len(activities_of(http, account, "identity:idem-a", one_page=True)) == 1
        assert find_contact(http, account, "identity:idem-b") is None

    def test_keys_are_per_account(
        self, http: httpx.Client, account: NewAccount, other_account: NewAccount
    ) -> None:
        """DESIGN.md: "Tenants never see each other's data" -- idempotency keys
        included, so two accounts may use the same key."""
        key = unique("shared")
        assert_success(
            upload(http, account, [netcore_event(identity="idem-t1")], {"Idempotency-Key": key})
        )

        r = upload(
            http, other_account, [netcore_event(identity="idem-t2")], {"Idempotency-Key": key}
        )

        assert_success(r)
        assert "Idempotent-Replayed" not in r.headers
        assert len(activities_of(http, other_account, "identity:idem-t2", one_page=True)) == 1
        assert find_contact(http, other_account, "identity:idem-t1") is None
        assert find_contact(http, account, "identity:idem-t2") is None

    def test_rejected_request_does_not_use_up_the_key(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "400 | Bad Request": a refused request stored nothing, so its key is free
        for the corrected retry."""
        headers = {"Idempotency-Key": unique("k")}
        bad = upload(http, account, [netcore_event(identity="idem-fix", asset_id=None)], headers)
        assert_error(bad, 400)

        good = upload(http, account, [netcore_event(identity="idem-fix")], headers)

        assert_success(good)
        assert "Idempotent-Replayed" not in good.headers
        assert len(activities_of(http, account, "identity:idem-fix", one_page=True)) == 1

    @pytest.mark.parametrize("key", ["", "   ", "k" * 256], ids=["empty", "blank", "256-chars"])
    def test_invalid_key_is_400_and_stores_nothing(
        self, http: httpx.Client, server: Server, account: NewAccount, store: Database, key: str
    ) -> None:
        """docs/dialects/netcore.md: "an optional `Idempotency-Key` header (1 to 255
        characters)"; "400 | ... an `Idempotency-Key` header that is blank or longer
        than 255 characters"."""
        before = stored_rows(store)

        status, payload = raw_post(
            server,
            {"api-key": account.netcore_api_key, "Idempotency-Key": key},
            json.dumps([netcore_event(identity="idem-bad-key")]).encode(),
        )

        assert status == 400, payload
        body = json.loads(payload)
        assert body["status"] == "error"
        assert body["code"] == 400
        assert body["message"].startswith("Bad Request | "), body
        assert "Idempotency-Key" in body["message"], body
        assert stored_rows(store) == before
        assert find_contact(http, account, "identity:idem-bad-key") is None

    def test_key_of_255_characters_is_accepted(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """docs/dialects/netcore.md: "an optional `Idempotency-Key` header (1 to 255
        characters)": the longest allowed key stores the batch and replays it."""
        key = uuid.uuid4().hex + "k" * (255 - 32)
        assert len(key) == 255
        body = json.dumps([netcore_event(identity="idem-255")]).encode()
        headers = {"api-key": account.netcore_api_key, "Idempotency-Key": key}

        first = http.post(UPLOAD, content=body, headers=headers)
        second = http.post(UPLOAD, content=body, headers=headers)

        assert_success(first)
        assert_success(second)
        assert second.headers["Idempotent-Replayed"] == "true"
        assert len(activities_of(http, account, "identity:idem-255", one_page=True)) == 1


class TestLimits:
    def test_1000_events_are_accepted(self, http: httpx.Client, account: NewAccount) -> None:
        """ "You can send single or bulk events (up to 1000 in one request)"."""
        events = [
            netcore_event(identity="bulk-1000", activity_name=f"Event {i}") for i in range(1000)
        ]

        assert_success(upload(http, account, events))

        stored = activities_of(http, account, "identity:bulk-1000", one_page=True)
        assert len(stored) == 1000
        assert {a["name"] for a in stored} == {f"Event {i}" for i in range(1000)}

    def test_1001_events_are_400(self, http: httpx.Client, account: NewAccount) -> None:
        """ "upload activities in bulk(Max:1000) at a time"."""
        events = [netcore_event(identity="bulk-1001") for _ in range(1001)]

        body = assert_error(upload(http, account, events), 400)

        assert error_fields(body) == {(None, "body")}
        assert "1000" in body["errors"][0]["reason"]
        assert find_contact(http, account, "identity:bulk-1001") is None

    @pytest.mark.parametrize("payload", [[], [[]]], ids=["empty", "empty-nested"])
    def test_empty_batch_is_400(
        self, http: httpx.Client, account: NewAccount, payload: list[Any]
    ) -> None:
        """ "You can send single or bulk events": a request holds at least one."""
        body = assert_error(upload(http, account, payload), 400)
        assert error_fields(body) == {(None, "body")}

    def test_body_over_max_bytes_is_413(
        self, database_url: str, tmp_path: Path, account: NewAccount
    ) -> None:
        """The spec sets no byte limit; DESIGN.md: "Limits from the specs are
        enforced (batch sizes, payload bytes ...)". A body larger than
        EVENTYARD_MAX_BODY_BYTES is refused (declared or streamed) and nothing stored."""
        with (
            running_server(
                database_url, tmp_path / "server.log", {"EVENTYARD_MAX_BODY_BYTES": "2048"}
            ) as small,
            httpx.Client(base_url=small.base_url, timeout=30) as client,
        ):
            headers = {"api-key": account.netcore_api_key, "Content-Type": "application/json"}
            padding = "x" * 3000
            big = json.dumps(
                [netcore_event(identity="too-big", activity_params={"pad": padding})]
            ).encode()
            assert len(big) > 2048

            declared = client.post(UPLOAD, content=big, headers=headers)
            assert_error(declared, 413)

            def chunks() -> Iterator[bytes]:
                yield big[:1500]
                yield big[1500:]

            streamed = client.post(UPLOAD, content=chunks(), headers=headers)
            assert "content-length" not in streamed.request.headers
            assert_error(streamed, 413)

            # Under the limit the same server accepts the upload.
            small_body = json.dumps([netcore_event(identity="fits")]).encode()
            assert len(small_body) < 2048
            assert_success(client.post(UPLOAD, content=small_body, headers=headers))

            assert find_contact(client, account, "identity:too-big") is None
            assert len(activities_of(client, account, "identity:fits", one_page=True)) == 1


class TestHttp:
    @pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
    def test_other_methods_are_405(
        self, http: httpx.Client, account: NewAccount, method: str
    ) -> None:
        """ "This API uses the POST method"; "405 | Method Not Allowed"."""
        r = http.request(
            method,
            UPLOAD,
            json=[netcore_event(identity="wrong-method")],
            headers={"api-key": account.netcore_api_key},
        )

        body = assert_error(r, 405)
        assert "Method Not Allowed" in body["message"]
        assert "POST" in r.headers["allow"]
        assert find_contact(http, account, "identity:wrong-method") is None

    def test_slow_body_is_408(
        self, server: Server, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "408 | Request Time Out": a body that does not arrive within
        EVENTYARD_BODY_TIMEOUT_SECONDS (2 s for the test server) is refused;
        docs/dialects/netcore.md: "the connection is closed"."""
        body = json.dumps([netcore_event(identity="slow-body")]).encode()
        url = urlsplit(server.base_url)
        assert url.hostname is not None
        assert url.port is not None
        head = (
            f"POST {UPLOAD} HTTP/1.1\r\n"
            f"Host: {url.hostname}:{url.port}\r\n"
            f"api-key: {account.netcore_api_key}\r\n"
            "Content-Type: application/json\r\n"
            "Content-Length: 1000\r\n"
            "\r\n"
        ).encode()
        assert len(body) < 1000

        with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
            # The rest never comes: the read blocks until the server gives up on it.
            sock.sendall(head + body[:50])
            status, headers, payload = read_http_response(sock)
            assert status == 408, payload
            assert headers.get("connection") == "close", headers
            assert sock.recv(1) == b"", "the server kept the connection open"

        assert headers["content-type"].startswith("application/json")
        error = json.loads(payload)
        assert error["status"] == "error"
        assert error["code"] == 408
        assert find_contact(http, account, "identity:slow-body") is None


class TestPathVariants:
    def test_trailing_slash_is_the_same_endpoint_to_its_errors(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """No redirect a client might not follow with its body: a Netcore-shaped answer."""
        r = http.post("/v1/activity/upload/", json=[netcore_event()])
        assert r.status_code == 404
        assert r.json()["status"] == "error"
        assert r.json()["code"] == 404
