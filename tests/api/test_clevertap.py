"""CleverTap Upload Events API (``POST /1/upload``) over real HTTP.

Every test talks to a real uvicorn server (SQLite and PostgreSQL) and checks
what was stored through eventyard's canonical read API. Docstrings quote the
line of ``shared/specs/clevertap-upload-events.txt`` (or of issue 3, where the
spec is silent) that forces the behaviour.
"""

from __future__ import annotations

import copy
import gzip
import json
import re
import socket
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from eventyard.core.model import NewAccount
from eventyard.dialects.registry import create_account
from eventyard.storage.database import Database
from eventyard.storage.tables import activities, contacts
from tests.support import (
    Server,
    activities_by_id,
    activities_of,
    admin,
    find_contact,
    identifier_pairs,
    read_contact,
    running_server,
)

UPLOAD = "/1/upload"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "dialects" / "clevertap.md"
#: "the maximum number of event types per account is 512"
MAX_EVENT_TYPES = 512
#: "For each event type, the maximum number of properties is 256."
MAX_PROPERTIES = 256
JSON_UTF8 = "application/json; charset=utf-8"

#: The spec's example payload, as printed (its ``// time when ...`` comment dropped,
#: since JSON has no comments; the identity is the spec's text verbatim).
SPEC_EXAMPLE: dict[str, Any] = {
    "d": [
        {
            "FBID": "34322423",
            "ts": 1468308340,
            "type": "event",
            "evtName": "Product viewed",
            "evtData": {
                "Product name": "Casio Chronograph Watch",
                "Category": "Mens Watch",
                "Price": 59.99,
                "Currency": "USD",
            },
        },
        {
            "identity": "[email protected]",
            "ts": 1468208340,
            "type": "event",
            "evtName": "Charged",
            "evtData": {
                "Amount": 300,
                "Currency": "USD",
                "Payment mode": "Credit Card",
                "Delivery By": "$D_1468322268",
                "Items": [
                    {"Category": "books", "Book name": "The millionaire next door", "Quantity": 1},
                    {"Category": "books", "Book name": "Achieving inner zen", "Quantity": 4},
                ],
            },
        },
    ]
}


# --- helpers -------------------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def auth(account: NewAccount) -> dict[str, str]:
    return {
        "X-CleverTap-Account-Id": account.clevertap_account_id,
        "X-CleverTap-Passcode": account.clevertap_passcode,
    }


def upload(
    http: httpx.Client,
    account: NewAccount,
    records: list[Any],
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    """POST ``{"d": records}`` as CleverTap's own examples do."""
    return http.post(
        UPLOAD,
        content=json.dumps({"d": records}).encode(),
        params=params,
        headers={**auth(account), "Content-Type": JSON_UTF8, **(headers or {})},
    )


def event(identity: str | None, name: str = "Product viewed", **fields: Any) -> dict[str, Any]:
    """An event record; ``identity=None`` leaves the identity out (pass FBID etc. instead)."""
    record: dict[str, Any] = {"type": "event", "evtName": name, "evtData": {"Price": 1}}
    if identity is not None:
        record["identity"] = identity
    record.update(fields)
    return record


def profile(identity: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": "profile", "identity": identity, "profileData": data}


def assert_success(r: httpx.Response, processed: int) -> None:
    """ "Example Response {"status": "success", "processed": 1, "unprocessed": []}"."""
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"status": "success", "processed": processed, "unprocessed": []}


def assert_fail(r: httpx.Response, status: int) -> dict[str, Any]:
    """A request-level error in CleverTap's shape: ``{"status": "fail", "error", "code"}``."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body: dict[str, Any] = r.json()
    assert body["status"] == "fail", body
    assert body["code"] == status, body
    assert isinstance(body["error"], str)
    assert body["error"]
    return body


def assert_partial(
    r: httpx.Response, processed: int, unprocessed: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """ "unprocessed": [{"status":"fail", "code":<error code>, "error":<error msg>,
    "record":<record>}]; returns the entries, checked to carry the original records."""
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "partial", body
    assert body["processed"] == processed, body
    entries: list[dict[str, Any]] = body["unprocessed"]
    assert [e["record"] for e in entries] == unprocessed, entries
    for entry in entries:
        assert set(entry) == {"status", "code", "error", "record"}, entry
        assert entry["status"] == "fail"
        assert entry["code"] in documented_codes(), entry
        assert isinstance(entry["error"], str), entry
        assert entry["error"], entry
    return entries


def reserved_event_names() -> list[str]:
    """The system event names docs/dialects/clevertap.md lists as reserved.

    The docs list them as a Markdown bullet list under a heading that mentions
    "reserved"; each name in back quotes.
    """
    text = DOCS.read_text()
    match = re.search(r"^#+ [^\n]*[Rr]eserved[^\n]*\n(.*?)(?=^#+ )", text, re.M | re.S)
    assert match, "docs/dialects/clevertap.md has no section on reserved event names"
    names = re.findall(r"^\s*[-*] `([^`]+)`", match.group(1), re.M)
    assert names, "no reserved names listed"
    return names


def documented_codes() -> dict[int, str]:
    """The ``unprocessed`` codes of docs/dialects/clevertap.md ("### Error codes" table)."""
    text = DOCS.read_text()
    section = text.split("### Error codes", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| (\d{4}) \| (.+) \|$", section, re.M)
    assert rows, "docs/dialects/clevertap.md documents no error codes"
    return {int(code): meaning for code, meaning in rows}


def code_for(meaning: str) -> int:
    """The documented code whose meaning contains ``meaning``."""
    [code] = [c for c, m in documented_codes().items() if meaning in m]
    return code


def stored_rows(store: Database) -> tuple[int, int]:
    """How many activities and contacts the whole database holds, every account included."""
    with store.engine.connect() as conn:
        n_activities = conn.execute(select(func.count()).select_from(activities)).scalar_one()
        n_contacts = conn.execute(select(func.count()).select_from(contacts)).scalar_one()
    return int(n_activities), int(n_contacts)


def events_total(http: httpx.Client) -> dict[str, float]:
    """``eventyard_events_total{dialect="clevertap"}`` of ``/metrics``, by outcome."""
    r = http.get("/metrics")
    assert r.status_code == 200, r.text
    totals: dict[str, float] = {"accepted": 0.0, "rejected": 0.0}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            if sample.name == "eventyard_events_total" and (
                sample.labels.get("dialect") == "clevertap"
            ):
                totals[sample.labels["outcome"]] = sample.value
    return totals


def raw_upload(server: Server, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    """POST ``body`` to /1/upload over a bare socket, headers written exactly as given
    (httpx refuses some values a client may still send, such as only blanks)."""
    url = urlsplit(server.base_url)
    assert url.hostname is not None
    assert url.port is not None
    lines = [f"POST {UPLOAD} HTTP/1.1", f"Host: {url.hostname}:{url.port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall("\r\n".join(lines).encode() + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), payload


@pytest.fixture
def other_account(store: Database) -> NewAccount:
    """A second tenant, for isolation tests."""
    return create_account(store, f"other-{uuid.uuid4().hex[:8]}")


# --- tests ---------------------------------------------------------------------------


class TestAuth:
    @pytest.mark.parametrize("missing", ["X-CleverTap-Account-Id", "X-CleverTap-Passcode", "both"])
    def test_missing_header_is_401(
        self, http: httpx.Client, account: NewAccount, store: Database, missing: str
    ) -> None:
        """Headers: "These headers are all required. The X-CleverTap-Account-Id and
        X-CleverTap-Passcode are used to authenticate the request"."""
        headers = {**auth(account), "Content-Type": JSON_UTF8}
        for name in ("X-CleverTap-Account-Id", "X-CleverTap-Passcode"):
            if missing in (name, "both"):
                del headers[name]
        before = stored_rows(store)
        r = http.post(
            UPLOAD, content=json.dumps({"d": [event("no-auth")]}).encode(), headers=headers
        )

        body = assert_fail(r, 401)
        assert body["error"] == "Missing X-CleverTap-Account-Id or X-CleverTap-Passcode header"
        assert stored_rows(store) == before

    @pytest.mark.parametrize("passcode", ["", "wrong-passcode", "eyt_0000000000000000000000"])
    def test_wrong_passcode_is_401(
        self, http: httpx.Client, account: NewAccount, store: Database, passcode: str
    ) -> None:
        """ "X-CleverTap-Passcode | Your CleverTap Account Passcode"."""
        before = stored_rows(store)
        r = upload(http, account, [event("wrong-pass")], headers={"X-CleverTap-Passcode": passcode})

        assert_fail(r, 401)
        assert stored_rows(store) == before

    def test_unknown_account_id_is_401(
        self, http: httpx.Client, account: NewAccount, store: Database
    ) -> None:
        """ "X-CleverTap-Account-Id | Your CleverTap Account ID"."""
        before = stored_rows(store)
        r = upload(
            http, account, [event("wrong-id")], headers={"X-CleverTap-Account-Id": "ZZZ-ZZZ-ZZZZ"}
        )

        body = assert_fail(r, 401)
        assert body["error"] == "Invalid Account Id or Passcode"
        assert stored_rows(store) == before

    def test_mismatched_pair_is_401(
        self, http: httpx.Client, account: NewAccount, other_account: NewAccount, store: Database
    ) -> None:
        """The id and the passcode authenticate together: another account's id with
        this account's passcode (and the reverse) is refused, and neither tenant
        gets the data."""
        before = stored_rows(store)
        for headers in (
            {"X-CleverTap-Account-Id": other_account.clevertap_account_id},
            {"X-CleverTap-Passcode": other_account.clevertap_passcode},
        ):
            r = upload(http, account, [event("mismatch")], headers=headers)
            assert_fail(r, 401)
        assert stored_rows(store) == before

    def test_admin_token_is_not_a_passcode(
        self, http: httpx.Client, account: NewAccount, store: Database
    ) -> None:
        """Only the account's CleverTap passcode authenticates this endpoint."""
        before = stored_rows(store)
        r = upload(
            http,
            account,
            [event("admin-pass")],
            headers={"X-CleverTap-Passcode": account.admin_token},
        )

        assert_fail(r, 401)
        assert stored_rows(store) == before

    def test_header_names_are_case_insensitive(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """The spec's Ruby example sends "X-Clevertap-Account-Id" and
        "X-Clevertap-Passcode" (lower-case t): HTTP header names are case-insensitive."""
        for n, (id_header, pass_header) in enumerate(
            [
                ("X-Clevertap-Account-Id", "X-Clevertap-Passcode"),
                ("x-clevertap-account-id", "X-CLEVERTAP-PASSCODE"),
            ]
        ):
            r = http.post(
                UPLOAD,
                content=json.dumps({"d": [event("any-case", f"Case {n}")]}).encode(),
                headers={
                    id_header: account.clevertap_account_id,
                    pass_header: account.clevertap_passcode,
                    "Content-Type": JSON_UTF8,
                },
            )
            assert_success(r, 1)
        names = {
            a["name"] for a in activities_of(http, account, "identity:any-case", one_page=True)
        }
        assert names == {"Case 0", "Case 1"}

    def test_data_goes_to_the_authenticated_account_only(
        self, http: httpx.Client, account: NewAccount, other_account: NewAccount
    ) -> None:
        """The account id names the tenant; the other tenant never sees the data."""
        assert_success(upload(http, other_account, [event("tenant-b")]), 1)

        theirs = read_contact(http, other_account, "identity:tenant-b")
        assert len(activities_by_id(http, other_account, theirs["id"], one_page=True)) == 1
        assert find_contact(http, account, "identity:tenant-b") is None
        r = http.get(f"/api/v1/contacts/{theirs['id']}", headers=admin(account))
        assert r.status_code == 404, r.text


class TestSpecExample:
    def test_example_payload_is_stored(self, http: httpx.Client, account: NewAccount) -> None:
        """ "Here is an example JSON payload." -> "Example Response {"status":
        "success", "processed": 1, "unprocessed": []}" (2 records: processed 2)."""
        r = upload(http, account, SPEC_EXAMPLE["d"])

        assert_success(r, 2)

        viewer = read_contact(http, account, "FBID:34322423")
        assert identifier_pairs(viewer) == {("FBID", "34322423")}
        [viewed] = activities_by_id(http, account, viewer["id"], one_page=True)
        assert viewed["name"] == "Product viewed"
        # "ts | ... Formatted as a UNIX epoch in seconds | 1468308340"
        assert viewed["occurred_at"] == "2016-07-12T07:25:40Z"
        assert viewed["dialect"] == "clevertap"
        assert viewed["properties"] == SPEC_EXAMPLE["d"][0]["evtData"]

        buyer = read_contact(http, account, "identity:[email protected]")
        assert buyer["id"] != viewer["id"]
        [charged] = activities_by_id(http, account, buyer["id"], one_page=True)
        assert charged["name"] == "Charged"
        assert charged["occurred_at"] == "2016-07-11T03:39:00Z"
        expected = copy.deepcopy(SPEC_EXAMPLE["d"][1]["evtData"])
        # "$D_<epoch seconds>" is a date (issue 3): read back as ISO 8601.
        expected["Delivery By"] = "2016-07-12T11:17:48Z"
        assert charged["properties"] == expected
        assert len(charged["properties"]["Items"]) == 2

    def test_spec_curl_example_single_record(self, http: httpx.Client, account: NewAccount) -> None:
        """Example Request (curl) sends the first record alone; the answer is the
        spec's own "Example Response" byte for byte in meaning."""
        r = upload(http, account, [SPEC_EXAMPLE["d"][0]])

        assert_success(r, 1)
        assert len(activities_of(http, account, "FBID:34322423", one_page=True)) == 1

    def test_missing_ts_means_now(self, http: httpx.Client, account: NewAccount) -> None:
        """ "ts | (Optional) Date and time when the event occured": without it, the
        time of receipt (issue 3: "default now")."""
        before = datetime.now(UTC).replace(microsecond=0)
        assert_success(upload(http, account, [event("no-ts")]), 1)
        after = datetime.now(UTC)

        [activity] = activities_of(http, account, "identity:no-ts", one_page=True)
        occurred = datetime.fromisoformat(activity["occurred_at"].replace("Z", "+00:00"))
        assert before <= occurred <= after, (before, activity["occurred_at"], after)


class TestContentTypeAndEncoding:
    @pytest.mark.parametrize(
        "content_type", ["application/json; charset=utf-8", "application/json"]
    )
    def test_content_type_with_or_without_charset(
        self, http: httpx.Client, account: NewAccount, content_type: str
    ) -> None:
        """ "Content-Type | Request content-type is always set to application/json;
        charset=utf-8"; the npm client sends plain "application/json"."""
        who = unique("ctype")
        r = upload(http, account, [event(who)], headers={"Content-Type": content_type})

        assert_success(r, 1)
        assert len(activities_of(http, account, f"identity:{who}", one_page=True)) == 1

    def test_gzip_body_is_accepted(self, http: httpx.Client, account: NewAccount) -> None:
        """Issue 3: "gzip request bodies (Content-Encoding: gzip) accepted"."""
        body = gzip.compress(json.dumps({"d": [event("gzipped", evtData={"é": "ü"})]}).encode())
        r = http.post(
            UPLOAD,
            content=body,
            headers={**auth(account), "Content-Type": JSON_UTF8, "Content-Encoding": "gzip"},
        )

        assert_success(r, 1)
        [activity] = activities_of(http, account, "identity:gzipped", one_page=True)
        assert activity["properties"] == {"é": "ü"}

    def test_corrupt_gzip_is_400(self, http: httpx.Client, account: NewAccount) -> None:
        """A body that says gzip but is not is a client error, not a 500."""
        good = gzip.compress(json.dumps({"d": [event("bad-gzip")]}).encode())
        for body in (b"not gzip at all", good[: len(good) // 2], good[:10] + b"\x00" + good[11:]):
            r = http.post(
                UPLOAD,
                content=body,
                headers={**auth(account), "Content-Type": JSON_UTF8, "Content-Encoding": "gzip"},
            )
            assert_fail(r, 400)
        assert find_contact(http, account, "identity:bad-gzip") is None

    def test_gzip_bomb_is_413(self, database_url: str, tmp_path: Path, account: NewAccount) -> None:
        """EVENTYARD_MAX_BODY_BYTES bounds the decompressed body, not only the bytes on
        the wire: a few hundred compressed bytes that inflate past the limit are 413."""
        with (
            running_server(
                database_url, tmp_path / "server.log", {"EVENTYARD_MAX_BODY_BYTES": "4096"}
            ) as small,
            httpx.Client(base_url=small.base_url, timeout=30) as client,
        ):
            headers = {**auth(account), "Content-Type": JSON_UTF8, "Content-Encoding": "gzip"}
            bomb_json = json.dumps(
                {"d": [event("bomb", evtData={"pad": "a" * 500})] * 200}
            ).encode()
            bomb = gzip.compress(bomb_json)
            assert len(bomb) < 4096 < len(bomb_json)

            assert_fail(client.post(UPLOAD, content=bomb, headers=headers), 413)

            fits = gzip.compress(json.dumps({"d": [event("small-gzip")]}).encode())
            assert_success(client.post(UPLOAD, content=fits, headers=headers), 1)

            assert find_contact(client, account, "identity:bomb") is None
            assert len(activities_of(client, account, "identity:small-gzip", one_page=True)) == 1

    def test_other_content_encoding_is_415(self, http: httpx.Client, account: NewAccount) -> None:
        """Only gzip (or no encoding) is understood; anything else is refused, not guessed."""
        body = json.dumps({"d": [event("deflated")]}).encode()
        r = http.post(
            UPLOAD,
            content=body,
            headers={**auth(account), "Content-Type": JSON_UTF8, "Content-Encoding": "br"},
        )

        assert_fail(r, 415)
        assert find_contact(http, account, "identity:deflated") is None

    @pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
    def test_other_methods_are_405(
        self, http: httpx.Client, account: NewAccount, method: str
    ) -> None:
        """ "HTTP Method POST": other methods get 405 in CleverTap's shape."""
        r = http.request(method, UPLOAD, headers=auth(account))

        assert_fail(r, 405)
        assert "POST" in r.headers["allow"]


class TestProfiles:
    def test_profile_sets_attributes_and_identifiers(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Issue 3: "profileData object: the attributes are merged into the contact;
        well-known keys Email, Phone, Identity also become identifiers; Name, Gender,
        DOB, MSG-*/MSG_* subscription flags kept as attributes"."""
        data = {
            "Name": "Jane Doe",
            "Email": "Jane@X.com",
            "Phone": "+14155551234",
            "Gender": "F",
            "DOB": "$D_631152000",
            "MSG-email": False,
            "MSG_sms": True,
            "custom": 1,
        }

        assert_success(upload(http, account, [profile("jane-1", data)]), 1)

        contact = read_contact(http, account, "email:jane@x.com")
        assert {("identity", "jane-1"), ("email", "jane@x.com"), ("mobile", "+14155551234")} <= (
            identifier_pairs(contact)
        )
        assert read_contact(http, account, "identity:jane-1")["id"] == contact["id"]
        assert read_contact(http, account, "mobile:+14155551234")["id"] == contact["id"]
        attributes = contact["attributes"]
        assert attributes["Name"] == "Jane Doe"
        assert attributes["Gender"] == "F"
        assert attributes["DOB"] == "1990-01-01T00:00:00Z"
        assert attributes["MSG-email"] is False
        assert attributes["MSG_sms"] is True
        assert attributes["custom"] == 1
        # A profile is no activity.
        assert activities_by_id(http, account, contact["id"], one_page=True) == []

    def test_second_profile_merges(self, http: httpx.Client, account: NewAccount) -> None:
        """Issue 3: "the attributes are merged into the contact": keys not sent again
        are kept, keys sent again are overwritten."""
        first = {"Name": "Jane", "Gender": "F", "custom": 1, "Plan": "free"}
        assert_success(upload(http, account, [profile("merge-1", first)]), 1)

        second = {"Name": "Jane Roe", "Plan": "gold", "Score": 7}
        assert_success(upload(http, account, [profile("merge-1", second)]), 1)

        attributes = read_contact(http, account, "identity:merge-1")["attributes"]
        assert {k: attributes.get(k) for k in ("Name", "Gender", "custom", "Plan", "Score")} == {
            "Name": "Jane Roe",
            "Gender": "F",
            "custom": 1,
            "Plan": "gold",
            "Score": 7,
        }

    def test_events_and_profile_of_one_user_share_a_contact(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "This is the key that CleverTap uses to find the user whose profile needs
        to be updated": an event and a profile with the same identity are one user."""
        records = [
            event("shared-user", "Viewed"),
            profile("shared-user", {"Name": "Sam"}),
            event("shared-user", "Bought"),
        ]

        assert_success(upload(http, account, records), 3)

        contact = read_contact(http, account, "identity:shared-user")
        assert contact["attributes"]["Name"] == "Sam"
        assert {
            a["name"] for a in activities_by_id(http, account, contact["id"], one_page=True)
        } == {
            "Viewed",
            "Bought",
        }


class TestIdentity:
    def test_record_without_identifier_is_unprocessed(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "You have to set a value for one of these parameters to identify the user:
        identity, FBID, GPID, or objectId." The others are stored."""
        anonymous = {"type": "event", "evtName": "Nobody", "evtData": {"a": 1}}
        records = [event("ident-good-1"), anonymous, event("ident-good-2")]

        [entry] = assert_partial(upload(http, account, records), 2, [anonymous])

        for name in ("identity", "FBID", "GPID", "objectId"):
            assert name in entry["error"], entry
        assert entry["code"] == code_for("none of `identity`"), entry
        assert len(activities_of(http, account, "identity:ident-good-1", one_page=True)) == 1
        assert len(activities_of(http, account, "identity:ident-good-2", one_page=True)) == 1

    @pytest.mark.parametrize("kind", ["FBID", "GPID"])
    def test_fbid_and_gpid_are_identifiers(
        self, http: httpx.Client, account: NewAccount, kind: str
    ) -> None:
        """ "FBID | Identify a unique user by Facebook ID", "GPID | ... Google Plus ID"."""
        value = unique(kind)
        assert_success(upload(http, account, [event(None, **{kind: value})]), 1)

        contact = read_contact(http, account, f"{kind}:{value}")
        assert identifier_pairs(contact) == {(kind, value)}
        assert len(activities_by_id(http, account, contact["id"], one_page=True)) == 1

    def test_object_id_of_an_existing_contact(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "objectId | Identify a unique user by CleverTap Global Object ID": eventyard's
        contact id plays that part (issue 3: "objectId maps to the eventyard contact
        id when it is one")."""
        assert_success(upload(http, account, [event("has-object-id", "First")]), 1)
        contact = read_contact(http, account, "identity:has-object-id")
        assert re.fullmatch(r"[0-9a-f]{24}", contact["id"]), contact["id"]

        records = [event(None, "By objectId", objectId=contact["id"])]
        assert_success(upload(http, account, records), 1)

        names = {a["name"] for a in activities_by_id(http, account, contact["id"], one_page=True)}
        assert names == {"First", "By objectId"}
        assert find_contact(http, account, f"objectId:{contact['id']}") is None

    def test_object_id_that_is_no_contact_is_its_own_identifier(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Issue 3: "otherwise it is an identifier of its own kind"; the spec's
        example objectId "34322425" is no eventyard contact id."""
        value = unique("34322425")
        assert_success(upload(http, account, [event(None, "Obj", objectId=value)]), 1)
        assert_success(upload(http, account, [event(None, "Obj again", objectId=value)]), 1)

        contact = read_contact(http, account, f"objectId:{value}")
        assert identifier_pairs(contact) == {("objectId", value)}
        names = {a["name"] for a in activities_by_id(http, account, contact["id"], one_page=True)}
        assert names == {"Obj", "Obj again"}

    def test_object_id_of_another_tenants_contact_is_not_theirs(
        self, http: httpx.Client, account: NewAccount, other_account: NewAccount
    ) -> None:
        """Tenants never see each other's data: another account's contact id sent as
        objectId is, in this account, just an identifier."""
        assert_success(upload(http, other_account, [event("foreign", "Theirs")]), 1)
        foreign = read_contact(http, other_account, "identity:foreign")

        assert_success(upload(http, account, [event(None, "Mine", objectId=foreign["id"])]), 1)

        assert [
            a["name"] for a in activities_by_id(http, other_account, foreign["id"], one_page=True)
        ] == ["Theirs"]
        mine = read_contact(http, account, f"objectId:{foreign['id']}")
        assert mine["id"] != foreign["id"]
        assert [a["name"] for a in activities_by_id(http, account, mine["id"], one_page=True)] == [
            "Mine"
        ]

    def test_unknown_identity_creates_a_user(self, http: httpx.Client, account: NewAccount) -> None:
        """ "If this identity is not found, a new user profile will be created.\""""
        who = unique("new-user")
        assert find_contact(http, account, f"identity:{who}") is None

        assert_success(upload(http, account, [event(who)]), 1)

        contact = read_contact(http, account, f"identity:{who}")
        assert identifier_pairs(contact) == {("identity", who)}
        assert len(activities_by_id(http, account, contact["id"], one_page=True)) == 1


class TestRecordLimits:
    def test_event_name_of_120_characters(self, http: httpx.Client, account: NewAccount) -> None:
        """ "Event keys are limited to 120 characters": 120 passes, 121 is refused."""
        ok = event("name-len", "N" * 120)
        too_long = event("name-len", "M" * 121)

        [entry] = assert_partial(upload(http, account, [ok, too_long]), 1, [too_long])

        assert "evtName" in entry["error"], entry
        assert "120" in entry["error"], entry
        assert entry["code"] == code_for("`evtName` longer than 120"), entry
        names = [
            a["name"] for a in activities_of(http, account, "identity:name-len", one_page=True)
        ]
        assert names == ["N" * 120]

    def test_property_key_of_120_characters(self, http: httpx.Client, account: NewAccount) -> None:
        """ "Event keys are limited to 120 characters": property keys too."""
        ok = event("key-len", "Key length", evtData={"k" * 120: 1})
        too_long = event("key-len", "Key length", evtData={"q" * 121: 2})

        [entry] = assert_partial(upload(http, account, [ok, too_long]), 1, [too_long])

        assert f"evtData.{'q' * 121}" in entry["error"], entry
        assert "120" in entry["error"], entry
        assert entry["code"] == code_for("property key longer than 120"), entry
        [activity] = activities_of(http, account, "identity:key-len", one_page=True)
        assert activity["properties"] == {"k" * 120: 1}

    @pytest.mark.parametrize(
        ("value", "fits"),
        [
            ("a" * 512, True),
            ("é" * 200, True),  # 400 bytes of UTF-8
            ("é" * 256, True),  # exactly 512 bytes
            ("a" * 513, False),
            ("é" * 257, False),  # 514 bytes, only 257 characters
            ("é" * 300, False),  # 600 bytes
        ],
        ids=[
            "512-ascii",
            "400-bytes-e-acute",
            "512-bytes-e-acute",
            "513-ascii",
            "514-bytes",
            "600",
        ],
    )
    def test_property_value_of_512_bytes(
        self, http: httpx.Client, account: NewAccount, value: str, fits: bool
    ) -> None:
        """ "property values are limited to 512 bytes": bytes of UTF-8, not characters."""
        who = unique("value-len")
        record = event(who, "Value length", evtData={"text": value})
        neighbour = event(who, "Neighbour")

        r = upload(http, account, [record, neighbour])

        stored = {
            a["name"]: a for a in activities_of(http, account, f"identity:{who}", one_page=True)
        }
        if fits:
            assert_success(r, 2)
            assert stored["Value length"]["properties"] == {"text": value}
        else:
            [entry] = assert_partial(r, 1, [record])
            assert "512" in entry["error"], entry
            assert "evtData.text" in entry["error"], entry
            assert entry["code"] == code_for("property value longer than 512"), entry
            assert set(stored) == {"Neighbour"}

    def test_1000_records_are_accepted(self, http: httpx.Client, account: NewAccount) -> None:
        """ "1000 event records can be sent per API call.\""""
        records = [event("bulk-1000", f"Bulk {i % 10}", evtData={"i": i}) for i in range(1000)]

        assert_success(upload(http, account, records), 1000)

        stored = activities_of(http, account, "identity:bulk-1000", one_page=True)
        assert sorted(a["properties"]["i"] for a in stored) == list(range(1000))

    def test_1001_records_are_400(self, http: httpx.Client, account: NewAccount) -> None:
        """ "1000 event records can be sent per API call": one more refuses the request."""
        records = [event("bulk-1001") for _ in range(1001)]

        body = assert_fail(upload(http, account, records), 400)

        assert "1000" in body["error"], body
        assert find_contact(http, account, "identity:bulk-1001") is None

    @pytest.mark.parametrize(
        "payload",
        [{"d": []}, {}, {"d": {}}, {"d": "x"}, [], None],
        ids=["empty", "no-d", "d-object", "d-string", "bare-array", "null"],
    )
    def test_no_records_is_400(self, http: httpx.Client, account: NewAccount, payload: Any) -> None:
        """ "The payload is an object keyed with 'd' whose value is an array"."""
        r = http.post(
            UPLOAD,
            content=json.dumps(payload).encode(),
            headers={**auth(account), "Content-Type": JSON_UTF8},
        )

        assert_fail(r, 400)

    @pytest.mark.parametrize("raw", [b'{"d": [', b"not json", b""])
    def test_malformed_json_is_400(
        self, http: httpx.Client, account: NewAccount, raw: bytes
    ) -> None:
        """ "Events are uploaded as a JSON payload"."""
        r = http.post(UPLOAD, content=raw, headers={**auth(account), "Content-Type": JSON_UTF8})

        assert_fail(r, 400)

    def test_reserved_system_event_is_refused(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "some events are reserved for system events": a client cannot send them
        (the list is in docs/dialects/clevertap.md)."""
        reserved = reserved_event_names()
        assert "App Launched" in reserved
        records = [event("sys-event", name) for name in reserved] + [event("sys-event", "Mine")]

        entries = assert_partial(upload(http, account, records), 1, records[:-1])

        for name, entry in zip(reserved, entries, strict=True):
            assert name in entry["error"], entry
            assert entry["code"] == code_for("reserved system event"), entry
        assert [
            a["name"] for a in activities_of(http, account, "identity:sys-event", one_page=True)
        ] == ["Mine"]

    @pytest.mark.parametrize("name", ["app launched", " App Launched ", "APP LAUNCHED"])
    def test_reserved_names_ignore_case_and_blanks(
        self, http: httpx.Client, account: NewAccount, name: str
    ) -> None:
        """docs/dialects/clevertap.md: reserved names are "compared without regard to
        case or surrounding blanks", so a spelling variant cannot sneak one in."""
        record = event("sys-variant", name)

        r = upload(http, account, [record, event("sys-variant", "Fine")])

        [entry] = assert_partial(r, 1, [record])
        assert entry["code"] == code_for("reserved system event"), entry
        names = [
            a["name"] for a in activities_of(http, account, "identity:sys-variant", one_page=True)
        ]
        assert names == ["Fine"]


class TestEventTypeRegistry:
    def test_512_event_types_per_account(self, http: httpx.Client, account: NewAccount) -> None:
        """ "While the maximum number of event types per account is 512, some events
        are reserved for system events, so you may not get to use all of them."
        With the reserved names counted, exactly 512 - len(reserved) user types fit;
        the rest are refused one by one, and types already registered keep working."""
        capacity = MAX_EVENT_TYPES - len(reserved_event_names())
        names = [f"Type {i:04d}" for i in range(capacity + 40)]
        records = [event("registry", name) for name in names]

        first = upload(http, account, records[:300])
        assert_success(first, 300)
        second = upload(http, account, records[300:])
        refused = records[capacity:]
        entries = assert_partial(second, capacity - 300, refused)

        codes = {entry["code"] for entry in entries}
        assert codes == {code_for("512 event types")}, codes
        for entry in entries:
            assert "512" in entry["error"], entry
        stored = {
            a["name"] for a in activities_of(http, account, "identity:registry", one_page=True)
        }
        assert stored == set(names[:capacity])

        # Known types still work once the account is full; a new one still does not.
        again = [event("registry-2", names[0]), event("registry-2", names[capacity - 1])]
        assert_success(upload(http, account, again), 2)
        new = event("registry-2", "One more type")
        [entry] = assert_partial(upload(http, account, [*again, new]), 2, [new])
        assert entry["code"] in codes
        # Profiles are not events: they do not count and still pass.
        assert_success(upload(http, account, [profile("registry-2", {"Plan": "full"})]), 1)
        assert read_contact(http, account, "identity:registry-2")["attributes"]["Plan"] == "full"

    def test_event_types_are_counted_per_account(
        self, http: httpx.Client, account: NewAccount, other_account: NewAccount
    ) -> None:
        """ "the maximum number of event types per account": another account's
        types leave this one's room untouched."""
        capacity = MAX_EVENT_TYPES - len(reserved_event_names())
        names = [f"Tenant type {i:04d}" for i in range(capacity)]
        assert_success(upload(http, other_account, [event("t", n) for n in names]), capacity)

        assert_success(upload(http, account, [event("t", n) for n in names]), capacity)

    def test_256_properties_per_event_type(self, http: httpx.Client, account: NewAccount) -> None:
        """ "For each event type, the maximum number of properties is 256": keys are
        counted across records of the type; a record with only known keys passes."""
        first = event("props", "Wide", evtData={f"p{i:03d}": i for i in range(200)})
        second = event("props", "Wide", evtData={f"p{i:03d}": i for i in range(150, 256)})
        assert_success(upload(http, account, [first, second]), 2)

        one_more = event("props", "Wide", evtData={"p000": 0, "p256": 256})
        known_only = event("props", "Wide", evtData={"p000": 1, "p255": 2})
        other_type = event("props", "Narrow", evtData={"p256": 1})
        r = upload(http, account, [one_more, known_only, other_type])

        [entry] = assert_partial(r, 2, [one_more])
        assert "256" in entry["error"], entry
        assert entry["code"] == code_for("256 property keys"), entry
        stored = activities_of(http, account, "identity:props", one_page=True)
        assert len([a for a in stored if a["name"] == "Wide"]) == 3
        assert len([a for a in stored if a["name"] == "Narrow"]) == 1

    def test_257_properties_in_one_record(self, http: httpx.Client, account: NewAccount) -> None:
        """ "the maximum number of properties is 256": a new type with 257 keys at once."""
        too_wide = event("props-257", "Too wide", evtData={f"k{i}": i for i in range(257)})
        fits = event("props-257", "Just wide", evtData={f"k{i}": i for i in range(256)})

        assert_partial(upload(http, account, [too_wide, fits]), 1, [too_wide])

        names = [
            a["name"] for a in activities_of(http, account, "identity:props-257", one_page=True)
        ]
        assert names == ["Just wide"]


class TestBatchResults:
    def test_mixed_batch_is_partial(self, http: httpx.Client, account: NewAccount) -> None:
        """ "Requests with processing errors will be returned in the API call response
        ... {"status":<success, partial, fail>, "processed":<count>, "unprocessed":
        [{"status":"fail", "code":<error code>, "error":<error msg>, "record":<record>}]}"."""
        good = [
            event("mixed-1", "Viewed", ts=1468308340, evtData={"Price": 59.99}),
            event(None, "Viewed", FBID="mixed-fb", evtData={"Currency": "USD"}),
        ]
        bad = event("mixed-bad", "Broken", evtData={"ok": 1, "x" * 130: "long key"})
        also_bad = {"type": "event", "identity": "mixed-bad-2", "evtName": "No data"}
        good_profile = profile("mixed-1", {"Name": "Mixed", "custom": 3})
        records = [*good, bad, also_bad, good_profile]
        sent = copy.deepcopy(records)

        r = upload(http, account, records)

        entries = assert_partial(r, 3, [sent[2], sent[3]])
        assert f"evtData.{'x' * 130}" in entries[0]["error"], entries[0]
        assert "120" in entries[0]["error"], entries[0]
        assert "evtData" in entries[1]["error"], entries[1]
        contact = read_contact(http, account, "identity:mixed-1")
        assert contact["attributes"]["Name"] == "Mixed"
        [viewed] = activities_by_id(http, account, contact["id"], one_page=True)
        assert viewed["occurred_at"] == "2016-07-12T07:25:40Z"
        assert len(activities_of(http, account, "FBID:mixed-fb", one_page=True)) == 1
        assert find_contact(http, account, "identity:mixed-bad") is None
        assert find_contact(http, account, "identity:mixed-bad-2") is None

    @pytest.mark.parametrize(
        "record",
        [
            {"identity": "shape", "type": "event", "evtName": "X", "evtData": []},
            {"identity": "shape", "type": "event", "evtData": {"a": 1}},
            {"identity": "shape", "type": "event", "evtName": 5, "evtData": {"a": 1}},
            {"identity": "shape", "type": "evnt", "evtName": "X", "evtData": {"a": 1}},
            {"identity": "shape", "evtName": "X", "evtData": {"a": 1}},
            {"identity": "shape", "type": "event", "evtName": "X", "evtData": {}, "ts": "soon"},
            {"identity": "shape", "type": "profile", "profileData": "Jane"},
            {"identity": "shape", "type": "profile"},
            "not a record",
        ],
        ids=[
            "evtData-array",
            "no-evtName",
            "evtName-number",
            "type-typo",
            "no-type",
            "ts-text",
            "profileData-string",
            "no-profileData",
            "string",
        ],
    )
    def test_malformed_record_is_unprocessed(
        self, http: httpx.Client, account: NewAccount, record: Any
    ) -> None:
        """Parameter table: "type | (Required) Set to event", "evtName | (Required)",
        "evtData | (Required) ... object", "ts | ... UNIX epoch in seconds"."""
        good = event("shape-neighbour")

        [entry] = assert_partial(upload(http, account, [record, good]), 1, [record])

        assert entry["error"]
        assert find_contact(http, account, "identity:shape") is None
        assert len(activities_of(http, account, "identity:shape-neighbour", one_page=True)) == 1

    def test_all_records_bad_is_fail(self, http: httpx.Client, account: NewAccount) -> None:
        """ "status":<success, partial, fail>: when no record is processed the status
        is "fail", every record listed. docs/dialects/clevertap.md: "200, for
        `success`, `partial` and `fail` alike" (the spec's Node example reads the
        body only when "response.statusCode == 200")."""
        records = [
            {"type": "event", "evtName": "Nobody", "evtData": {}},
            event("all-bad", "Z" * 121),
        ]

        r = upload(http, account, records)

        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "fail", body
        assert body["processed"] == 0
        assert [e["record"] for e in body["unprocessed"]] == records
        assert find_contact(http, account, "identity:all-bad") is None


class TestDryRun:
    def test_dry_run_answers_like_the_real_call_and_stores_nothing(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "To test if your data will be submitted without errors, you can add the
        parameter dryRun=1 to the URL. This will validate the input without
        submitting the data to CleverTap.\""""
        records = [
            event("dry-1", "Dry event"),
            {"type": "event", "evtName": "No user", "evtData": {}},
            profile("dry-2", {"Email": "dry@example.com", "Name": "Dry"}),
        ]

        dry = upload(http, account, records, params={"dryRun": "1"})

        entries = assert_partial(dry, 2, [records[1]])
        for identifier in ("identity:dry-1", "identity:dry-2", "email:dry@example.com"):
            assert find_contact(http, account, identifier) is None, identifier

        real = upload(http, account, records)
        assert real.status_code == dry.status_code
        assert real.json() == dry.json()
        assert entries == real.json()["unprocessed"]
        assert len(activities_of(http, account, "identity:dry-1", one_page=True)) == 1
        assert read_contact(http, account, "email:dry@example.com")["attributes"]["Name"] == "Dry"

    def test_dry_run_registers_no_event_type(self, http: httpx.Client, account: NewAccount) -> None:
        """ "without submitting the data": a dry run of every type the account has
        room for takes none of that room."""
        capacity = MAX_EVENT_TYPES - len(reserved_event_names())
        dry_names = [f"Dry type {i:04d}" for i in range(capacity)]
        real_names = [f"Real type {i:04d}" for i in range(capacity)]

        dry = upload(
            http, account, [event("dry-types", n) for n in dry_names], params={"dryRun": "1"}
        )
        assert_success(dry, capacity)
        real = upload(http, account, [event("dry-types", n) for n in real_names])
        assert_success(real, capacity)

        # The dry run's names are now beyond the limit: they never were registered.
        late = event("dry-types", dry_names[0])
        r = upload(http, account, [late])
        assert r.json()["status"] == "fail", r.text
        assert [e["record"] for e in r.json()["unprocessed"]] == [late]

    def test_dry_run_sees_the_limit_like_the_real_call(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "This will validate the input": limits included, so a dry run reports the
        record a real call would refuse."""
        capacity = MAX_EVENT_TYPES - len(reserved_event_names())
        records = [event("dry-limit", f"Limit type {i:04d}") for i in range(capacity + 1)]

        dry = upload(http, account, records, params={"dryRun": "1"})
        assert_partial(dry, capacity, [records[-1]])
        real = upload(http, account, records)

        assert real.json() == dry.json()

    def test_dry_run_does_not_use_up_an_idempotency_key(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """A dry run submits nothing, so its Idempotency-Key is not remembered: the
        real call with the same key and body is processed, not replayed."""
        headers = {"Idempotency-Key": unique("dry-key")}
        records = [event("dry-idem")]

        dry = upload(http, account, records, headers=headers, params={"dryRun": "1"})
        assert_success(dry, 1)
        real = upload(http, account, records, headers=headers)

        assert_success(real, 1)
        assert "Idempotent-Replayed" not in real.headers
        assert len(activities_of(http, account, "identity:dry-idem", one_page=True)) == 1

    @pytest.mark.parametrize("value", ["true", "TRUE"])
    def test_dry_run_true_is_a_dry_run(
        self, http: httpx.Client, account: NewAccount, store: Database, value: str
    ) -> None:
        """docs/dialects/clevertap.md: "With `?dryRun=1` (also `true`; ...)" ... "nothing
        is stored"; "The response carries the extra header `X-Eventyard-Dry-Run: true`"."""
        before = stored_rows(store)

        r = upload(http, account, [event("dry-true")], params={"dryRun": value})

        assert_success(r, 1)
        assert r.headers["X-Eventyard-Dry-Run"] == "true"
        assert stored_rows(store) == before
        assert find_contact(http, account, "identity:dry-true") is None

    @pytest.mark.parametrize("value", ["0", "false"])
    def test_dry_run_off_is_a_real_upload(
        self, http: httpx.Client, account: NewAccount, value: str
    ) -> None:
        """docs/dialects/clevertap.md: "`0`, `false` or absent mean a normal upload"."""
        identity = unique("dry-off")

        r = upload(http, account, [event(identity)], params={"dryRun": value})

        assert_success(r, 1)
        assert "X-Eventyard-Dry-Run" not in r.headers
        assert len(activities_of(http, account, f"identity:{identity}", one_page=True)) == 1

    @pytest.mark.parametrize("value", ["2", "yes", "dry", "10"])
    def test_other_dry_run_value_is_400(
        self, http: httpx.Client, account: NewAccount, store: Database, value: str
    ) -> None:
        """docs/dialects/clevertap.md: "400 | ... `dryRun` other than `1`/`true`/`0`/`false`";
        "Whatever the status, nothing was stored unless it is a 200"."""
        before = stored_rows(store)

        r = upload(http, account, [event("dry-bad")], params={"dryRun": value})

        body = assert_fail(r, 400)
        assert set(body) == {"status", "error", "code"}, body
        assert "dryRun" in body["error"], body
        assert "X-Eventyard-Dry-Run" not in r.headers
        assert stored_rows(store) == before


class TestMetrics:
    def test_partial_batch_counts_accepted_and_rejected(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """docs/dialects/clevertap.md: "`eventyard_events_total{dialect="clevertap",
        outcome=…}` counts `accepted` (records stored: events and profile updates) and
        `rejected` (records listed in `unprocessed`)"."""
        identity = unique("metrics")
        nobody = {"type": "event", "evtName": "Nobody", "evtData": {}}
        records = [
            event(identity, "M1"),
            nobody,
            event(identity, "M2"),
            profile(identity, {"Name": "M"}),
            event(identity, "App Launched"),
        ]
        before = events_total(http)

        r = upload(http, account, records)

        assert_partial(r, 3, [nobody, records[4]])
        after = events_total(http)
        assert after["accepted"] - before["accepted"] == 3
        assert after["rejected"] - before["rejected"] == 2

    def test_dry_run_is_not_counted(self, http: httpx.Client, account: NewAccount) -> None:
        """docs/dialects/clevertap.md: "Dry runs are not counted in the event metrics";
        "The response carries the extra header `X-Eventyard-Dry-Run: true`"."""
        nobody = {"type": "event", "evtName": "Nobody", "evtData": {}}
        records = [event(unique("metrics-dry"), "D1"), nobody]
        before = events_total(http)

        r = upload(http, account, records, params={"dryRun": "1"})

        assert_partial(r, 1, [nobody])
        assert r.headers["X-Eventyard-Dry-Run"] == "true"
        assert events_total(http) == before

    def test_replay_is_not_counted(self, http: httpx.Client, account: NewAccount) -> None:
        """docs/dialects/clevertap.md: "Replays and dry runs are not counted"."""
        headers = {"Idempotency-Key": unique("metrics-key")}
        nobody = {"type": "event", "evtName": "Nobody", "evtData": {}}
        records = [event(unique("metrics-replay")), nobody]
        before = events_total(http)

        first = upload(http, account, records, headers=headers)
        replay = upload(http, account, records, headers=headers)

        assert_partial(first, 1, [nobody])
        assert replay.headers["Idempotent-Replayed"] == "true"
        after = events_total(http)
        assert after["accepted"] - before["accepted"] == 1
        assert after["rejected"] - before["rejected"] == 1


class TestIdempotency:
    @pytest.mark.parametrize("key", ["", "   ", "k" * 256], ids=["empty", "blank", "256-chars"])
    def test_invalid_key_is_400_and_stores_nothing(
        self, server: Server, account: NewAccount, store: Database, key: str
    ) -> None:
        """docs/dialects/clevertap.md: "an optional `Idempotency-Key` header (1 to 255
        characters)"; "400 | ... an `Idempotency-Key` header that is blank or longer
        than 255 characters"."""
        before = stored_rows(store)

        status, payload = raw_upload(
            server,
            {**auth(account), "Content-Type": JSON_UTF8, "Idempotency-Key": key},
            json.dumps({"d": [event("idem-bad-key")]}).encode(),
        )

        assert status == 400, payload
        body = json.loads(payload)
        assert body["status"] == "fail", body
        assert body["code"] == 400, body
        assert "Idempotency-Key" in body["error"], body
        assert stored_rows(store) == before

    def test_key_of_255_characters_is_accepted(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """docs/dialects/clevertap.md: "an optional `Idempotency-Key` header (1 to 255
        characters)": the longest allowed key stores the records and replays them."""
        key = uuid.uuid4().hex + "k" * (255 - 32)
        assert len(key) == 255
        identity = unique("idem-255")

        first = upload(http, account, [event(identity)], headers={"Idempotency-Key": key})
        second = upload(http, account, [event(identity)], headers={"Idempotency-Key": key})

        assert_success(first, 1)
        assert_success(second, 1)
        assert second.headers["Idempotent-Replayed"] == "true"
        assert len(activities_of(http, account, f"identity:{identity}", one_page=True)) == 1

    def test_same_key_same_body_replays(self, http: httpx.Client, account: NewAccount) -> None:
        """Issue 3: "Idempotency-Key as in the foundation": the same key and body get
        the first answer again, marked ``Idempotent-Replayed: true``, storing nothing."""
        headers = {"Idempotency-Key": unique("k")}
        bad = {"type": "event", "evtName": "Nobody", "evtData": {}}
        records = [event("idem-same"), bad, profile("idem-same", {"n": 1})]

        first = upload(http, account, records, headers=headers)
        second = upload(http, account, records, headers=headers)

        assert_partial(first, 2, [bad])
        assert "Idempotent-Replayed" not in first.headers
        assert second.status_code == first.status_code
        assert second.content == first.content
        assert second.headers["Idempotent-Replayed"] == "true"
        assert len(activities_of(http, account, "identity:idem-same", one_page=True)) == 1

    def test_same_key_other_body_is_409(self, http: httpx.Client, account: NewAccount) -> None:
        """Reusing a key for a different body is a 409 in CleverTap's error shape."""
        headers = {"Idempotency-Key": unique("k")}
        assert_success(upload(http, account, [event("idem-a")], headers=headers), 1)

        r = upload(http, account, [event("idem-b")], headers=headers)

        assert_fail(r, 409)
        assert len(activities_of(http, account, "identity:idem-a", one_page=True)) == 1
        assert find_contact(http, account, "identity:idem-b") is None
