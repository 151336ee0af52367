"""Cordial ``GET /v2/contactactivities`` over real HTTP, on SQLite and PostgreSQL.

Docstrings quote ``shared/specs/cordial-contactactivities.txt`` (or
docs/dialects/cordial.md where the spec leaves the point open). Activities
come from POST where the rule is about what a client sent, and straight from
the storage layer (``tests/api/cordial_seed.py``) for reserved actions,
exact timestamps and volume.
"""

from __future__ import annotations

import base64
import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import pytest

from eventyard.core.model import NewAccount
from eventyard.dialects.registry import create_account
from eventyard.storage.database import Database
from tests.api.cordial_seed import (
    LIST,
    at,
    auth,
    listing,
    post_activity,
    records,
    seed,
)
from tests.integration import helpers
from tests.integration.helpers import contact_ids, ingest

MSMITH = "msmith@example.com"
#: The spec's POST example body.
SPEC_BODY: dict[str, Any] = {
    "a": "browse",
    "email": MSMITH,
    "ats": "2025-01-09 17:47:43",
    "properties": {
        "category": "Shirts",
        "url": "https://example.com/shirts",
        "description": "A really cool khaki shirt.",
        "price": 9.99,
        "title": "Khaki Shirt",
    },
}


def ats_of(body: list[dict[str, Any]]) -> list[str]:
    return [r["ats"] for r in records(body)]


def ids_of(body: list[dict[str, Any]]) -> list[str]:
    return [r["_id"] for r in records(body)]


def refusal(r: httpx.Response, field: str) -> None:
    """A 422 ``CONTACT_ACTIVITIES_VALIDATION_ERROR`` naming ``field``."""
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] is True
    assert body["errorKey"] == "CONTACT_ACTIVITIES_VALIDATION_ERROR"
    assert field in body["message"]
    assert body["errors"][0]["field"] == field


@pytest.fixture
def shop(http: httpx.Client, account: NewAccount) -> dict[str, str]:
    """Three activities of two contacts: msmith browses (Jan 9) and orders (Jan 10),
    jdoe browses (Jan 11). Returns the contact ids by name."""
    r = http.post(LIST, json=SPEC_BODY, auth=auth(account))
    assert r.status_code == 200, r.text
    msmith = r.json()["cID"]
    post_activity(http, account, "order", ats="2025-01-10T08:00:00Z", email=MSMITH)
    jdoe = post_activity(
        http, account, "browse", ats="2025-01-11T08:00:00Z", email="jdoe@example.com"
    )
    return {"msmith": msmith, "jdoe": jdoe}


class TestSpecExamples:
    def test_all_contact_activities(
        self, http: httpx.Client, account: NewAccount, shop: dict[str, str]
    ) -> None:
        """Spec: "The following URL will retrieve all contact activities.
        httpss://<path>/v2/contactactivities" (newest first: sort_dir default desc)."""
        body = listing(http, account)
        assert [(r["a"], r["ats"]) for r in body] == [
            ("browse", "2025-01-11T08:00:00Z"),
            ("order", "2025-01-10T08:00:00Z"),
            ("browse", "2025-01-09T17:47:43Z"),
        ]

    def test_the_records_carry_the_documented_fields(
        self, http: httpx.Client, account: NewAccount, shop: dict[str, str]
    ) -> None:
        """Spec POST example, listed back as the docs' record: ``_id``, ``cID``, the
        contact's identifiers, ``a``, ``ats`` and ``properties``."""
        oldest = listing(http, account)[-1]
        assert list(oldest) == ["_id", "cID", "email", "a", "ats", "properties"]
        assert len(oldest["_id"]) == 24
        assert oldest["cID"] == shop["msmith"]
        assert oldest["email"] == MSMITH
        assert oldest["properties"] == SPEC_BODY["properties"]

    def test_by_email(self, http: httpx.Client, account: NewAccount, shop: dict[str, str]) -> None:
        """Spec: "?email=msmith@example.com" retrieves "all contact activities where the email
        address msmith@example.com is the contact identifier"."""
        body = listing(http, account, {"email": MSMITH})
        assert [(r["a"], r["email"], r["cID"]) for r in body] == [
            ("order", MSMITH, shop["msmith"]),
            ("browse", MSMITH, shop["msmith"]),
        ]

    def test_by_action(self, http: httpx.Client, account: NewAccount, shop: dict[str, str]) -> None:
        """Spec: "?action=browse" retrieves "all contact activities where the action is
        browse"."""
        body = listing(http, account, {"action": "browse"})
        assert [(r["a"], r["email"]) for r in body] == [
            ("browse", "jdoe@example.com"),
            ("browse", MSMITH),
        ]

    def test_by_action_and_email(
        self, http: httpx.Client, account: NewAccount, shop: dict[str, str]
    ) -> None:
        """Spec: "?action=browse&email=msmith@example.com" retrieves the activities "where
        the action is browse and email address ... is the contact identifier"."""
        body = listing(http, account, {"action": "browse", "email": MSMITH})
        assert [(r["a"], r["email"], r["ats"]) for r in body] == [
            ("browse", MSMITH, "2025-01-09T17:47:43Z")
        ]

    def test_between_two_dates_includes_the_whole_end_day(
        self, http: httpx.Client, store: Database, account: NewAccount
    ) -> None:
        """Spec: "?time[between][start]=2025-01-01&time[between][end]=2025-01-03" includes
        "the contact activities that have occurred between the specified start date and end
        date"; docs: "is the three days"."""
        contact = post_activity(http, account, ats="2024-06-01")
        inside = ["2025-01-01T00:00:00", "2025-01-02T12:00:00", "2025-01-03T23:59:59.999999"]
        outside = ["2024-12-31T23:59:59.999999", "2025-01-04T00:00:00"]
        seed(store, account, contact, [("browse", at(t)) for t in inside + outside])
        body = listing(
            http,
            account,
            "time[between][start]=2025-01-01&time[between][end]=2025-01-03",
        )
        assert ats_of(body) == [
            "2025-01-03T23:59:59.999999Z",
            "2025-01-02T12:00:00Z",
            "2025-01-01T00:00:00Z",
        ]

    def test_open_activities_between_two_dates(
        self, http: httpx.Client, store: Database, account: NewAccount
    ) -> None:
        """Spec: "?time[between][start]=2025-01-01&time[between][end]=2025-01-03&action=open"
        retrieves "only ... the open contact activities that have occurred between the
        specified start date and end date". Opens are reserved ("Actions taken within a
        message (reserved actions) will automatically generate an activity record"), so
        they are stored directly."""
        contact = post_activity(http, account, ats="2025-01-02T10:00:00Z")  # a browse inside
        opens = seed(
            store,
            account,
            contact,
            [
                ("open", at("2025-01-01T00:00:00")),
                ("open", at("2025-01-03T18:30:00")),
                ("open", at("2025-01-04T00:00:00")),  # the day after
                ("click", at("2025-01-02T00:00:00")),
            ],
        )
        body = listing(
            http,
            account,
            "time[between][start]=2025-01-01&time[between][end]=2025-01-03&action=open",
        )
        assert ids_of(body) == [opens[1], opens[0]]
        assert {r["a"] for r in body} == {"open"}

    def test_page_three_of_ten(
        self, http: httpx.Client, store: Database, account: NewAccount
    ) -> None:
        """Spec: "?page=3&per_page=10 ... page 1 would have included the first 10, page 2 the
        second group of 10 and so on"."""
        contact = post_activity(http, account, ats="2020-01-01")
        start = at("2025-01-01T00:00:00")
        ids = seed(
            store, account, contact, [("browse", start + timedelta(hours=i)) for i in range(35)]
        )
        newest_first = [*ids[::-1], "(the POSTed one)"]
        body = listing(http, account, "page=3&per_page=10")
        assert ids_of(body) == newest_first[20:30]
        # More exist, so the paging object comes first; it continues after record 30.
        rest = listing(http, account, url=body[0]["paging"]["next"])
        assert ids_of(rest)[:5] == newest_first[30:35]

    def test_return_count(
        self, http: httpx.Client, account: NewAccount, shop: dict[str, str]
    ) -> None:
        """Spec: "?return_count=true" "will return a count of all contact activities in the
        request"; docs: ``{"count": N}`` and ``X-Total-Count``."""
        r = http.get(LIST, params={"return_count": "true"}, auth=auth(account))
        assert r.status_code == 200, r.text
        assert r.json() == {"count": 3}
        assert r.headers["X-Total-Count"] == "3"
        r = http.get(LIST, params={"return_count": "true", "action": "browse"}, auth=auth(account))
        assert r.json() == {"count": 2}

    def test_return_count_with_a_page_counts_every_match(
        self, http: httpx.Client, account: NewAccount, shop: dict[str, str]
    ) -> None:
        """Spec: return_count "The number of records returned"; with per_page the records
        come back and the total is the header."""
        r = http.get(LIST, params={"return_count": "true", "per_page": 1}, auth=auth(account))
        assert r.status_code == 200, r.text
        assert r.headers["X-Total-Count"] == "3"
        body = r.json()
        assert len(records(body)) == 1
        assert "return_count=true" in body[0]["paging"]["next"]
        follow = http.get(body[0]["paging"]["next"], auth=auth(account))
        assert follow.headers["X-Total-Count"] == "3"


#: Activities around January 3, 2025 at the edges of its day.
EDGES = [
    "2025-01-02T23:59:59.999999",
    "2025-01-03T00:00:00",
    "2025-01-03T12:00:00",
    "2025-01-03T23:59:59.999999",
    "2025-01-04T00:00:00",
]


class TestTimeFilters:
    @pytest.fixture
    def edges(self, http: httpx.Client, store: Database, account: NewAccount) -> None:
        contact = post_activity(http, account, ats="2024-01-01")
        seed(store, account, contact, [("browse", at(t)) for t in EDGES])

    def ats(self, http: httpx.Client, account: NewAccount, query: str) -> set[str]:
        found = {r["ats"].removesuffix("Z") for r in listing(http, account, query)}
        return found - {"2024-01-01T00:00:00"}

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("time[gte]=2025-01-03", EDGES[1:]),
            ("time[gt]=2025-01-03", EDGES[4:]),
            ("time[lte]=2025-01-03", EDGES[:4]),
            ("time[lt]=2025-01-03", EDGES[:1]),
            ("time=2025-01-03", EDGES[1:4]),
            ("time[gte]=2025-01-03T12:00:00Z", EDGES[2:]),
            ("time[gt]=2025-01-03T12:00:00Z", EDGES[3:]),
            ("time[lte]=2025-01-03T12:00:00Z", EDGES[:3]),
            ("time[lt]=2025-01-03T12:00:00Z", EDGES[:2]),
            ("time=2025-01-03 12:00:00", EDGES[2:3]),
            ("time=2025-01-03T14:00:00%2B02:00", EDGES[2:3]),
            ("time[gt]=2025-01-03T00:00:00Z&time[lt]=2025-01-04T00:00:00Z", EDGES[2:4]),
            ("time[gte]=2025-01-03&time[lte]=2025-01-03T12:00:00Z", EDGES[1:3]),
            ("time[gt]=2025-01-04&time[lt]=2025-01-02", []),
        ],
    )
    def test_bounds(
        self,
        http: httpx.Client,
        account: NewAccount,
        edges: None,
        query: str,
        expected: list[str],
    ) -> None:
        """Spec: time "can be searched with modifiers (lt,gt,lte,gte,between.start,
        between.end)"; docs: a date stands for its whole day (``lte`` includes all of it,
        ``gt`` starts the next day, ``lt`` ends before it), a date-time for one moment."""
        assert self.ats(http, account, query) == {t.removesuffix(".000000") for t in expected}

    @pytest.mark.parametrize(
        "query",
        ["time[gte]=yesterday", "time[lt]=2025-02-30", "time=2025-01-03T25:00", "time[gt]="],
    )
    def test_a_malformed_date_is_refused(
        self, http: httpx.Client, account: NewAccount, query: str
    ) -> None:
        """Docs: "malformed dates ... are CONTACT_ACTIVITIES_VALIDATION_ERROR naming the
        parameter"."""
        refusal(http.get(f"{LIST}?{query}", auth=auth(account)), query.partition("=")[0])


class TestOrderAndPages:
    @pytest.fixture
    def thirty(self, http: httpx.Client, store: Database, account: NewAccount) -> list[str]:
        """Thirty activities an hour apart (ids oldest first), plus nothing else."""
        contact = post_activity(http, account, ats="2020-01-01")
        return seed(
            store,
            account,
            contact,
            [("browse", at("2025-03-01T00:00:00") + timedelta(hours=i)) for i in range(30)],
        )

    def test_sort_dir(self, http: httpx.Client, account: NewAccount, thirty: list[str]) -> None:
        """Spec: sort_by "Column to sort by. ats"; sort_dir "Possible values: asc, desc",
        default desc."""
        desc = listing(http, account, {"sort_by": "ats", "per_page": 31})
        asc = listing(http, account, {"sort_by": "ats", "sort_dir": "asc", "per_page": 31})
        assert ids_of(desc)[:30] == thirty[::-1]
        assert ids_of(asc)[1:] == thirty
        assert ats_of(asc) == sorted(ats_of(asc))

    def test_per_page_default_is_25(
        self, http: httpx.Client, account: NewAccount, thirty: list[str]
    ) -> None:
        """Spec: per_page "Number of results per page. The default is 25." """
        body = listing(http, account)
        assert "paging" in body[0]
        assert ids_of(body) == thirty[::-1][:25]

    def test_per_page_10000_is_the_maximum(
        self, http: httpx.Client, account: NewAccount, thirty: list[str]
    ) -> None:
        """Spec: "The GET /contactactivities endpoint can retrieve up to 10,000 records at a
        time"."""
        assert len(listing(http, account, {"per_page": 10_000})) == 31
        refusal(http.get(LIST, params={"per_page": 10_001}, auth=auth(account)), "per_page")
        refusal(http.get(LIST, params={"per_page": 0}, auth=auth(account)), "per_page")

    def test_paging_object_comes_first_and_next_works_as_given(
        self, http: httpx.Client, account: NewAccount, thirty: list[str]
    ) -> None:
        """Spec: "The paging URL will appear as the first JSON object in your results when
        there are more records to show." ``"paging": {"token": ..., "next":
        "https://<path>/v2/contactactivities?per_page=10000&return_count=false&
        __paging_token=..."}``."""
        body = listing(http, account, {"per_page": 12, "sort_dir": "asc"})
        paging = body[0]["paging"]
        assert set(paging) == {"token", "next"}
        base = str(http.base_url).rstrip("/")
        assert paging["next"].startswith(f"{base}{LIST}?per_page=12&return_count=false&")
        assert paging["next"].endswith(f"__paging_token={paging['token']}")
        seen = ids_of(body)
        while "paging" in body[0]:
            body = listing(http, account, url=body[0]["paging"]["next"])
            seen += ids_of(body)
        # The last page has no paging object.
        assert len(records(body)) == len(body) == 7
        assert seen[1:] == thirty

    def test_no_paging_object_when_exactly_one_page(
        self, http: httpx.Client, account: NewAccount, thirty: list[str]
    ) -> None:
        body = listing(http, account, {"per_page": 31})
        assert all("paging" not in item for item in body)

    def test_the_token_keeps_the_filters(
        self, http: httpx.Client, store: Database, account: NewAccount, thirty: list[str]
    ) -> None:
        """Docs: "The token carries the filters and the position"; filters sent with a token
        are ignored."""
        contact = post_activity(
            http, account, "order", ats="2025-03-01T05:30:00Z", email="x@example.com"
        )
        seed(store, account, contact, [("order", at("2025-03-01T03:30:00"))])
        body = listing(
            http,
            account,
            {"per_page": 2, "time[between][start]": "2025-03-01T02:00:00Z",
             "time[between][end]": "2025-03-01T06:00:00Z", "action": "browse"},
        )  # fmt: skip
        token = body[0]["paging"]["token"]
        rest = listing(http, account, {"__paging_token": token, "per_page": 10, "action": "order"})
        assert {r["a"] for r in records(body) + rest} == {"browse"}
        assert ids_of(body) + ids_of(rest) == thirty[6:1:-1]

    def test_unknown_parameter_is_named(self, http: httpx.Client, account: NewAccount) -> None:
        """Docs: "Unknown parameters ... are CONTACT_ACTIVITIES_VALIDATION_ERROR naming the
        parameter, rather than silently ignored filters"."""
        refusal(http.get(LIST, params={"colour": "red"}, auth=auth(account)), "colour")
        refusal(http.get(LIST, params={"sort_by": "a"}, auth=auth(account)), "sort_by")
        refusal(http.get(LIST, params={"__paging_token": "xyz"}, auth=auth(account)),
                "__paging_token")  # fmt: skip


class TestContacts:
    def test_by_contact_id(
        self, http: httpx.Client, account: NewAccount, shop: dict[str, str]
    ) -> None:
        """Spec: contact identifier "Possible values: email, customer ID, contact ID"; docs:
        ``cID`` is eventyard's contact id."""
        body = listing(http, account, {"cID": shop["jdoe"]})
        assert [(r["cID"], r["email"]) for r in body] == [(shop["jdoe"], "jdoe@example.com")]
        assert listing(http, account, {"cID": "0" * 24}) == []

    def test_a_contact_id_from_another_system(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Spec: "cID:" "16198880000"; docs: "A cID that is not one of the account's contact
        ids is an identifier of kind cID (a contact id from another system)"; the record's
        ``cID`` is still eventyard's contact id."""
        contact = post_activity(http, account, cID="16198880000")
        [record] = listing(http, account, {"cID": "16198880000"})
        assert record["cID"] == contact != "16198880000"
        assert listing(http, account, {"cID": contact}) == [record]

    def test_by_customer_id_with_every_identifier_in_the_record(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Spec: "custID": "ID1234"; docs: each record has the contact's identifier kinds."""
        contact = post_activity(http, account, email="c@example.com", custID="ID1234")
        [record] = listing(http, account, {"custID": "ID1234"})
        assert (record["cID"], record["email"], record["custID"]) == (
            contact,
            "c@example.com",
            "ID1234",
        )

    def test_a_merged_contacts_activities_are_the_survivors(
        self, http: httpx.Client, store: Database, account: NewAccount
    ) -> None:
        """Docs: identifiers select "the activities of the contact they name (and of
        contacts merged into it)"; "cID is the contact the activity belongs to now (after a
        merge, the surviving contact)". An anonymous contact is merged into a known one,
        and one activity still names the merged contact, as when a concurrent writer
        attached it during the merge."""
        acct = account.account
        [anonymous] = contact_ids(
            ingest(store, acct, [helpers.activity("Page View", anonid="a-9")])
        )
        [known] = contact_ids(ingest(store, acct, [helpers.activity("Signup", email="k@x.com")]))
        ingest(store, acct, [helpers.activity("Purchase", anonid="a-9", email="k@x.com")])
        [late] = seed(store, account, anonymous, [("browse", at("2026-03-02T11:00:00"))])
        for params in ({"email": "k@x.com"}, {"cID": known}, {"cID": anonymous}):
            body = listing(http, account, params)
            assert {r["cID"] for r in body} == {known}, params
            assert late in ids_of(body)
            assert len(body) == 4
        r = http.get(LIST, params={"cID": known, "return_count": "true"}, auth=auth(account))
        assert r.json() == {"count": 4}

    def test_identifiers_naming_different_contacts_match_nothing(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Docs: "identifiers naming different contacts match nothing"."""
        first = post_activity(http, account, email="one@example.com")
        post_activity(http, account, custID="C-2")
        assert listing(http, account, {"email": "one@example.com", "custID": "C-2"}) == []
        assert listing(http, account, {"cID": first, "custID": "C-2"}) == []
        assert listing(http, account, {"email": "nobody@example.com"}) == []
        r = http.get(
            LIST,
            params={"email": "one@example.com", "custID": "C-2", "return_count": "true"},
            auth=auth(account),
        )
        assert r.json() == {"count": 0}

    def test_a_changed_property_type_is_listed_as_unsearchable(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Spec: "If a different data type is passed to an already recognized property, that
        new data will not be searchable"; docs: the record lists it under ``unsearchable``."""
        post_activity(http, account, ats="2025-01-01", properties={"price": 9.99})
        post_activity(http, account, ats="2025-01-02", properties={"price": "cheap"})
        newer, older = listing(http, account)
        assert newer["properties"] == {"price": "cheap"}
        assert newer["unsearchable"] == ["price"]
        assert "unsearchable" not in older


class TestAccounts:
    def test_another_accounts_activities_never_appear(
        self,
        http: httpx.Client,
        store: Database,
        account: NewAccount,
        shop: dict[str, str],
    ) -> None:
        """Docs: "Results come only from the caller's account: every query is bounded by
        the account, and a token is only a position within the caller's own listing"."""
        other = create_account(store, "cordial-other")
        mine = post_activity(http, other, "order", ats="2025-01-10T09:00:00Z", email=MSMITH)
        assert [r["cID"] for r in listing(http, other)] == [mine]
        assert [r["cID"] for r in listing(http, other, {"email": MSMITH})] == [mine]
        assert listing(http, other, {"cID": shop["msmith"]}) == []
        assert listing(http, other, {"action": "browse"}) == []
        r = http.get(LIST, params={"return_count": "true"}, auth=auth(other))
        assert r.json() == {"count": 1}

        # A token from the first account, used by the other, lists only the other's.
        first = listing(http, account, {"per_page": 1, "cID": shop["msmith"], "sort_dir": "asc"})
        token = first[0]["paging"]["token"]
        assert listing(http, other, {"__paging_token": token}) == []
        unfiltered = listing(http, account, {"per_page": 1, "sort_dir": "asc"})
        token = unfiltered[0]["paging"]["token"]
        assert [r["cID"] for r in listing(http, other, {"__paging_token": token})] == [mine]


def basic(raw: bytes) -> bytes:
    return b"Basic " + base64.b64encode(raw)


class TestAuthentication:
    @pytest.mark.parametrize(
        "header",
        [
            None,
            b"Bearer abc",
            b"Basic not*base64!",
            basic(b"\xff\xfe\xfd:"),
            b"Basic \xff\xfe",
            basic(b"KEY:password"),
            basic(b"unknown-key:"),
            basic(b":"),
        ],
        ids=[
            "missing",
            "scheme",
            "base64",
            "utf8",
            "raw-bytes",
            "password",
            "unknown",
            "empty",
        ],
    )
    def test_refused(self, http: httpx.Client, account: NewAccount, header: bytes | None) -> None:
        """Spec: "Cordial's core APIs use https Basic Authentication (BA)"; docs: anything
        else "is 401 with WWW-Authenticate: Basic realm="eventyard"" and Cordial's body."""
        headers: dict[bytes, bytes] = {}
        if header is not None:
            headers[b"Authorization"] = header.replace(b"KEY", account.cordial_api_key.encode())
        r = http.get(LIST, headers=headers)
        assert r.status_code == 401, r.text
        body = r.json()
        assert body["error"] is True
        assert body["errorKey"] == "UNAUTHORIZED"
        assert body["message"]
        assert r.headers["WWW-Authenticate"] == 'Basic realm="eventyard"'

    def test_the_key_as_user_name(self, http: httpx.Client, account: NewAccount) -> None:
        """Docs: ``base64("<key>:")``, what ``curl -u "$KEY:"`` sends."""
        r = http.get(LIST, auth=(account.cordial_api_key, ""))
        assert r.status_code == 200, r.text
        assert r.json() == []

    def test_the_encoded_key_alone(self, http: httpx.Client, account: NewAccount) -> None:
        """Spec: "you can generate an encoded API key for your account and use it for
        authorization": ``base64("<key>")`` without a colon works."""
        header = basic(account.cordial_api_key.encode())
        r = http.get(LIST, headers={b"Authorization": header})
        assert r.status_code == 200, r.text


#: The ``ats`` of activities POSTed while the 30,000 are paged through.
ARRIVING = ("2026-01-01T00:00:00Z", "2025-03-01T01:00:00Z", "2025-02-01T00:00:00Z")


class TestPagingWhileActivitiesArrive:
    def test_30000_activities_each_seen_exactly_once(
        self, http: httpx.Client, store: Database, account: NewAccount, server: Any
    ) -> None:
        """Issue 5: "A test pages through 30,000 activities with per_page=10000 while new ones
        are being inserted and sees each old one exactly once." Spec: "You can request all
        10,000 records on a single page and use the provided URL with the paging token to
        query the next batch." New activities, older and newer than the stored ones, are
        POSTed between every two pages."""
        contacts = [
            post_activity(http, account, ats="2019-06-01", email=f"c{i}@example.com")
            for i in range(3)
        ]
        start = at("2025-03-01T00:00:00")
        old: list[str] = []
        for index, contact in enumerate(contacts):
            old += seed(
                store,
                account,
                contact,
                # Several activities share each second, so the keyset's id tie-break matters.
                [
                    ("browse", start + timedelta(seconds=(i * 3 + index) // 4))
                    for i in range(10_000)
                ],
            )
        posted = Counter[str]()
        arrived = threading.Condition()
        stop = threading.Event()

        def keep_posting() -> None:
            with httpx.Client(base_url=http.base_url, timeout=30) as client:
                n = 0
                while not stop.is_set():
                    n += 1
                    # Newer than every stored one, among them, and older than all.
                    ats = ARRIVING[n % len(ARRIVING)]
                    r = client.post(
                        LIST,
                        json={"a": "browse", "email": f"c{n % 3}@example.com", "ats": ats},
                        auth=auth(account),
                    )
                    if r.status_code == 429:
                        stop.wait(float(r.headers.get("Retry-After", "1")))
                        continue
                    assert r.status_code == 200, r.text
                    with arrived:
                        posted["ok"] += 1
                        arrived.notify_all()

        def wait_for_more(than: int) -> None:
            with arrived:
                assert arrived.wait_for(lambda: posted["ok"] > than or not thread.is_alive(), 60)
            assert thread.is_alive(), "the posting thread stopped"

        thread = threading.Thread(target=keep_posting, daemon=True)
        thread.start()
        seen = Counter[str]()
        pages = 0
        try:
            wait_for_more(0)
            body = listing(http, account, {"per_page": 10_000})
            while True:
                pages += 1
                seen.update(ids_of(body))
                if "paging" not in body[0]:
                    break
                wait_for_more(posted["ok"] + 3)  # new ones arrive between every two pages
                body = listing(http, account, url=body[0]["paging"]["next"])
        finally:
            stop.set()
            thread.join(60)
        assert pages >= 4
        assert posted["ok"] >= 3 * (pages - 1)
        assert [i for i, n in seen.items() if n > 1] == []
        assert [i for i in old if seen[i] != 1] == []
