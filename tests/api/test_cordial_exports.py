"""Cordial ``POST /v2/contactactivityexport``, ``GET /v2/jobs/{id}`` and the download,
over real HTTP on SQLite and PostgreSQL; the server's in-process worker runs the job.

Spec: "We recommend using POST/v2/contactactivityexport for exporting larger
batches of contact activities." The spec says no more about exports; the
shape is docs/dialects/cordial.md's, quoted test by test.
"""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any

import httpx
import pytest

from eventyard.core.model import NewAccount
from eventyard.dialects.registry import create_account
from eventyard.storage.database import Database
from tests.api.cordial_seed import EXPORT, at, auth, listing, post_activity, records, seed
from tests.support import admin

#: Docs: "_id, cID, email, custID, <the account's primary kinds>, a, ats, properties";
#: a new account's primary kinds are identity, email and mobile (email comes once).
CSV_HEADER = ["_id", "cID", "email", "custID", "identity", "mobile", "a", "ats", "properties"]


def start_export(http: httpx.Client, account: NewAccount, body: dict[str, Any]) -> str:
    """POST the export; its job id (the answer must be 202 with a statusUrl)."""
    r = http.post(EXPORT, json=body, auth=auth(account))
    assert r.status_code == 202, r.text
    answer = r.json()
    assert answer["success"] is True
    assert answer["statusUrl"] == f"{str(http.base_url).rstrip('/')}/v2/jobs/{answer['jobID']}"
    job_id: str = answer["jobID"]
    return job_id


def finished_job(http: httpx.Client, account: NewAccount, job_id: str) -> dict[str, Any]:
    """``GET /v2/jobs/{id}`` until the job is ``complete`` or ``failed``."""
    deadline = time.monotonic() + 60
    while True:
        r = http.get(f"/v2/jobs/{job_id}", auth=auth(account))
        assert r.status_code == 200, r.text
        job: dict[str, Any] = r.json()
        assert job["status"] in ("pending", "processing", "complete", "failed"), job
        if job["status"] in ("complete", "failed"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def download(http: httpx.Client, account: NewAccount, job: dict[str, Any]) -> httpx.Response:
    [url] = job["downloadUrls"]
    r = http.get(url, auth=auth(account))
    assert r.status_code == 200, r.text
    return r


def export(
    http: httpx.Client, account: NewAccount, body: dict[str, Any]
) -> tuple[dict[str, Any], httpx.Response]:
    """Run an export to the end; the finished job and its download."""
    job = finished_job(http, account, start_export(http, account, body))
    assert job["status"] == "complete", job
    return job, download(http, account, job)


def ndjson(r: httpx.Response) -> list[dict[str, Any]]:
    assert r.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in r.text.splitlines()]


def csv_rows(r: httpx.Response) -> list[dict[str, str]]:
    assert r.headers["content-type"].startswith("text/csv")
    reader = csv.DictReader(io.StringIO(r.text, newline=""))
    assert reader.fieldnames == CSV_HEADER
    return list(reader)


@pytest.fixture
def shop(http: httpx.Client, store: Database, account: NewAccount) -> dict[str, str]:
    """msmith: browses Jan 1 and Jan 3, orders Jan 2, opens Jan 5 (reserved: stored
    directly); jdoe (custID C-7): browses Jan 2 with a changed property type."""
    msmith = post_activity(
        http, account, "browse", ats="2025-01-01T10:00:00Z", properties={"price": 9.99},
        email="msmith@example.com",
    )  # fmt: skip
    post_activity(http, account, "order", ats="2025-01-02T10:00:00Z", email="msmith@example.com")
    post_activity(http, account, "browse", ats="2025-01-03T23:30:00Z", email="msmith@example.com")
    seed(store, account, msmith, [("open", at("2025-01-05T00:00:00"))])
    jdoe = post_activity(
        http, account, "browse", ats="2025-01-02T12:00:00Z", properties={"price": "n/a"},
        email="jdoe@example.com", custID="C-7",
    )  # fmt: skip
    return {"msmith": msmith, "jdoe": jdoe}


class TestJsonExport:
    def test_every_record_once_in_the_get_shape(
        self, http: httpx.Client, account: NewAccount, shop: dict[str, str]
    ) -> None:
        """Docs: "json (default; newline-delimited JSON, one record per line, the GET's
        record shape)"; the job shows complete with totalRecords and downloadUrls."""
        job, r = export(http, account, {"name": "everything"})
        assert job["name"] == "everything"
        assert job["type"] == "export"
        assert job["format"] == "json"
        assert job["totalRecords"] == 5
        assert job["bytes"] == len(r.content)
        assert job["attempts"] == 1
        assert job["startedAt"] is not None
        assert job["finishedAt"] is not None
        assert "contactactivities-" in r.headers["content-disposition"]
        assert ndjson(r) == listing(http, account)

    def test_filters_apply(
        self, http: httpx.Client, account: NewAccount, shop: dict[str, str]
    ) -> None:
        """Docs: "The body takes the GET's filters as a JSON object: action (a string or a
        list), email/custID/cID ..., time as {"gt"|"gte"|"lt"|"lte": ..., "between":
        {"start", "end"}}, sort_dir"."""
        _, r = export(
            http,
            account,
            {
                "action": "browse",
                "email": "msmith@example.com",
                "time": {"between": {"start": "2025-01-01", "end": "2025-01-03"}},
                "sort_dir": "asc",
            },
        )
        got = ndjson(r)
        assert [(x["a"], x["ats"]) for x in got] == [
            ("browse", "2025-01-01T10:00:00Z"),
            ("browse", "2025-01-03T23:30:00Z"),
        ]
        _, r = export(http, account, {"action": ["open", "order"]})
        assert [x["a"] for x in ndjson(r)] == ["open", "order"]
        _, r = export(http, account, {"custID": "C-7"})
        [jdoe] = ndjson(r)
        assert (jdoe["cID"], jdoe["custID"], jdoe["unsearchable"]) == (
            shop["jdoe"],
            "C-7",
            ["price"],
        )
        _, r = export(http, account, {"time": {"gt": "2025-01-03"}})
        assert [x["a"] for x in ndjson(r)] == ["open"]

    def test_the_canonical_job(
        self, http: httpx.Client, account: NewAccount, shop: dict[str, str]
    ) -> None:
        """Docs: "the same job is GET /api/v1/jobs/{id} in eventyard's own API (kind
        exports.activities, result: {"rows", "format", "bytes", "name"})"."""
        job, r = export(http, account, {"name": "canon", "format": "csv"})
        canonical = http.get(f"/api/v1/jobs/{job['_id']}", headers=admin(account))
        assert canonical.status_code == 200, canonical.text
        body = canonical.json()
        assert body["kind"] == "exports.activities"
        assert body["status"] == "completed"
        assert body["result"] == {
            "rows": 5,
            "format": "csv",
            "bytes": len(r.content),
            "name": "canon",
        }

    def test_an_export_of_nothing_is_an_empty_file(
        self, http: httpx.Client, account: NewAccount, shop: dict[str, str]
    ) -> None:
        job, r = export(http, account, {"action": "never"})
        assert job["totalRecords"] == 0
        assert r.content == b""
        job, r = export(http, account, {"format": "csv", "email": "nobody@example.com"})
        assert job["totalRecords"] == 0
        assert r.text.splitlines() == [",".join(CSV_HEADER)]


class TestCsvExport:
    def test_header_and_every_record(
        self, http: httpx.Client, account: NewAccount, shop: dict[str, str]
    ) -> None:
        """Docs: "CSV columns: _id, cID, email, custID, <the account's primary kinds>, a,
        ats, properties; properties is the JSON text of the object"."""
        job, r = export(http, account, {"format": "csv"})
        assert job["format"] == "csv"
        assert r.headers["content-disposition"].endswith('.csv"')
        rows = csv_rows(r)
        listed = listing(http, account)
        assert [row["_id"] for row in rows] == [x["_id"] for x in listed]
        for row, record in zip(rows, listed, strict=True):
            assert row["cID"] == record["cID"]
            assert row["email"] == record["email"]
            assert row["custID"] == record.get("custID", "")
            assert row["a"] == record["a"]
            assert row["ats"] == record["ats"]
            assert json.loads(row["properties"]) == record["properties"]

    def test_export_type_is_accepted_for_format(
        self, http: httpx.Client, account: NewAccount, shop: dict[str, str]
    ) -> None:
        """Docs: "exportType is accepted for format"."""
        job, r = export(http, account, {"exportType": "csv", "action": "order"})
        assert job["format"] == "csv"
        assert [row["a"] for row in csv_rows(r)] == ["order"]

    def test_formula_starts_are_escaped(
        self, http: httpx.Client, store: Database, account: NewAccount
    ) -> None:
        """Issue 5: "Exported CSV cells that start with =, +, -, @ are escaped against formula
        injection"; docs: "prefixed with ' so that a spreadsheet shows it as text"."""
        contact = post_activity(
            http, account, "=cmd", ats="2025-01-01", custID="@SUM(A1)",
            email="x@example.com", properties={"note": "=HYPERLINK(1)"},
        )  # fmt: skip
        seed(
            store,
            account,
            contact,
            [
                ("+1+1", at("2025-01-02T00:00:00")),
                ("-2", at("2025-01-03T00:00:00")),
                ("@x", at("2025-01-04T00:00:00")),
                ("\tx", at("2025-01-05T00:00:00")),
            ],
        )
        _, r = export(http, account, {"format": "csv", "sort_dir": "asc"})
        rows = csv_rows(r)
        assert [row["a"] for row in rows] == ["'=cmd", "'+1+1", "'-2", "'@x", "'\tx"]
        assert {row["custID"] for row in rows} == {"'@SUM(A1)"}
        # The properties cell starts with "{": not a formula, and its JSON parses back.
        assert json.loads(rows[0]["properties"]) == {"note": "=HYPERLINK(1)"}


class TestAccounts:
    def test_another_account_cannot_see_the_job_nor_the_file(
        self,
        http: httpx.Client,
        store: Database,
        account: NewAccount,
        shop: dict[str, str],
    ) -> None:
        """Docs: "another account's export is 404" (NOT_FOUND: "an unknown job or export, or
        one of another account")."""
        job, _ = export(http, account, {})
        other = create_account(store, "cordial-export-other")
        r = http.get(f"/v2/jobs/{job['_id']}", auth=auth(other))
        assert r.status_code == 404, r.text
        assert r.json()["errorKey"] == "NOT_FOUND"
        r = http.get(job["downloadUrls"][0], auth=auth(other))
        assert r.status_code == 404, r.text
        r = http.get(f"/api/v1/jobs/{job['_id']}", headers=admin(other))
        assert r.status_code == 404, r.text
        # The other account's own export holds none of the first account's activities.
        own, r = export(http, other, {})
        assert own["totalRecords"] == 0
        assert r.content == b""

    def test_the_download_needs_credentials(
        self, http: httpx.Client, account: NewAccount, shop: dict[str, str]
    ) -> None:
        """Docs: "The download needs the same Basic credentials"."""
        job, _ = export(http, account, {})
        r = http.get(job["downloadUrls"][0])
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"] == 'Basic realm="eventyard"'
        r = http.get(f"/v2/contactactivityexport/{'0' * 24}/download", auth=auth(account))
        assert r.status_code == 404
        r = http.get(f"/v2/jobs/{'0' * 24}", auth=auth(account))
        assert r.status_code == 404


class TestInvalidBodies:
    def test_a_body_that_is_not_json(self, http: httpx.Client, account: NewAccount) -> None:
        """Spec: CONTACT_ACTIVITIES_INVALID_PAYLOAD "Invalid payload"; docs: 400 for "body
        that is not JSON, or JSON that is not an object"."""
        for content in (b"{not json", b"[1, 2]"):
            r = http.post(
                EXPORT,
                content=content,
                headers={"Content-Type": "application/json"},
                auth=auth(account),
            )
            assert r.status_code == 400, r.text
            assert r.json()["errorKey"] == "CONTACT_ACTIVITIES_INVALID_PAYLOAD"

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"format": "xml"}, "format"),
            ({"per_page": 100}, "per_page"),
            ({"return_count": True}, "return_count"),
            ({"time": {"gte": "soon"}}, "time[gte]"),
            ({"colour": "red"}, "colour"),
        ],
    )
    def test_invalid_values(
        self, http: httpx.Client, account: NewAccount, body: dict[str, Any], field: str
    ) -> None:
        """Docs: "per_page, page and return_count do not apply"; format is json or csv."""
        r = http.post(EXPORT, json=body, auth=auth(account))
        assert r.status_code == 422, r.text
        answer = r.json()
        assert answer["errorKey"] == "CONTACT_ACTIVITIES_VALIDATION_ERROR"
        assert answer["errors"][0]["field"] == field

    def test_an_empty_body_exports_everything(
        self, http: httpx.Client, account: NewAccount, shop: dict[str, str]
    ) -> None:
        """Docs: "every key is optional"."""
        r = http.post(EXPORT, auth=auth(account))
        assert r.status_code == 202, r.text
        job = finished_job(http, account, r.json()["jobID"])
        assert job["totalRecords"] == len(records(listing(http, account)))
