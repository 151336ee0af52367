"""Right to erasure: ``DELETE /api/v1/contacts/{id}`` and ``eventyard contacts erase``.

Issue 9: they "remove the contact, its identifiers and all its activities
(and its rows in exports not yet downloaded), leaving an audit record without
PII; a test proves nothing of it remains in any table". The proof here reads
every row of every table of the database after the erasure and looks for
each value the person was ever known by.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import create_engine, inspect, text

from eventyard.core.model import NewAccount
from eventyard.dialects.registry import create_account
from eventyard.storage.database import Database
from eventyard.storage.engine import normalize_database_url
from eventyard.storage.migrate import upgrade_database
from tests.support import Server, admin, create_account_at, find_contact, running_server

NETCORE = "/v1/activity/upload"


def rows_mentioning(database_url: str, needles: list[str]) -> dict[str, list[str]]:
    """Every needle found in any row of any table, by table (partitions included)."""
    engine = create_engine(normalize_database_url(database_url))
    found: dict[str, list[str]] = {}
    try:
        with engine.connect() as conn:
            for table in inspect(conn).get_table_names():
                quoted = conn.dialect.identifier_preparer.quote(table)
                for row in conn.execute(text(f"SELECT * FROM {quoted}")):  # noqa: S608
                    flat = " ".join(
                        bytes(v).decode("utf-8", "replace")
                        if isinstance(v, bytes | memoryview)
                        else str(v)
                        for v in row
                    )
                    for needle in needles:
                        if needle in flat:
                            found.setdefault(table, []).append(needle)
    finally:
        engine.dispose()
    return found


def cli(database_url: str, export_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "EVENTYARD_DATABASE_URL": database_url,
        "EVENTYARD_EXPORT_DIR": str(export_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "eventyard", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


class Person:
    """Everything one contact is known by, each value unique to this test."""

    def __init__(self, tag: str) -> None:
        token = uuid.uuid4().hex[:10]
        self.identity = f"{tag}-{token}"
        self.email = f"{tag}.{token}@erasure.example.com"
        self.mobile = f"91{int(token, 16) % 10**10:010d}"
        self.anon = f"anon-{tag}-{token}"
        self.secret = f"favourite-colour-{token}"

    def values(self) -> list[str]:
        return [self.identity, self.email, self.mobile, self.anon, self.secret]


def netcore(http: httpx.Client, account: NewAccount, person: Person, n: int) -> None:
    body = [
        {
            "asset_id": "erasure",
            "activity_name": "Viewed",
            "timestamp": "2026-01-01T00:00:00Z",
            "identity": person.identity,
            "activity_source": "web",
            "activity_params": {"email": person.email, "mobile": person.mobile, "i": i},
        }
        for i in range(n)
    ]
    r = http.post(
        NETCORE,
        json=body,
        headers={"api-key": account.netcore_api_key, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status_code == 200, r.text


def segment(http: httpx.Client, account: NewAccount, *calls: dict[str, Any]) -> None:
    r = http.post("/v1/batch", json={"batch": list(calls)}, auth=(account.segment_write_key, ""))
    assert r.status_code == 200, r.text


@pytest.fixture
def own_database(empty_database: str) -> str:
    """A database of the test's own: the session's shared server runs a worker
    that would take the export jobs and write their files where it keeps its own."""
    upgrade_database(empty_database)
    return empty_database


@pytest.fixture
def own_store(own_database: str) -> Iterator[Database]:
    database = Database.from_url(own_database, pool_size=2)
    yield database
    database.dispose()


@pytest.fixture
def no_worker_server(own_database: str, tmp_path: Path) -> Iterator[Server]:
    """A server that queues jobs without running them: the test runs the worker itself."""
    with running_server(
        own_database, tmp_path / "server.log", {"EVENTYARD_RUN_WORKER": "false"}
    ) as srv:
        yield srv


def run_jobs_until_done(
    database_url: str, export_dir: Path, http: httpx.Client, account: NewAccount, job_id: str
) -> dict[str, Any]:
    """Run ``eventyard worker --once`` until the job has finished; the job as the API shows it."""
    for _ in range(10):
        done = cli(database_url, export_dir, "worker", "--once")
        assert done.returncode == 0, done.stderr
        job: dict[str, Any] = http.get(f"/api/v1/jobs/{job_id}", headers=admin(account)).json()
        if job["status"] in ("completed", "failed"):
            return job
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_erasing_over_the_api_leaves_nothing_of_the_person_in_any_table(
    no_worker_server: Server, own_database: str, own_store: Database
) -> None:
    database_url, store = own_database, own_store
    account = create_account(store, "Erasure over the API")
    export_dir = no_worker_server.log_path.parent / "exports"
    person, other = Person("erase"), Person("keep")
    with httpx.Client(base_url=no_worker_server.base_url, timeout=30) as http:
        # Known through several dialects, with an anonymous contact merged in.
        netcore(http, account, person, 3)
        netcore(http, account, other, 2)
        segment(http, account, {"type": "track", "anonymousId": person.anon, "event": "Browse"})
        segment(
            http,
            account,
            {
                "type": "identify",
                "userId": person.identity,
                "traits": {"email": person.email, "colour": person.secret},
            },
            {"type": "group", "userId": person.identity, "groupId": f"g-{person.secret}"},
            # Refused (no event name) and recorded as a rejection of this batch.
            {"type": "track", "userId": person.identity, "properties": {"c": person.secret}},
        )
        segment(
            http, account, {"type": "alias", "previousId": person.anon, "userId": person.identity}
        )
        found = find_contact(http, account, f"identity:{person.identity}")
        kept = find_contact(http, account, f"identity:{other.identity}")
        assert found is not None
        assert kept is not None
        anon_contact = [
            e["other_contact_ids"][0]
            for e in http.get(
                f"/api/v1/contacts/{found['id']}/identity-events", headers=admin(account)
            ).json()["identity_events"]
            if e["kind"] == "merged"
        ]
        assert len(anon_contact) == 1
        with store.unit_of_work() as uow:
            members = uow.lists.create(account.account.id, "newsletter", datetime.now(UTC))
            assert members is not None
            uow.lists.add_members(
                account.account.id, members.id, [found["id"], kept["id"]], datetime.now(UTC)
            )
            uow.commit()
        # Cordial exports of everything, as JSON and CSV, finished and not downloaded yet.
        export_jobs = {}
        for fmt in ("json", "csv"):
            r = http.post(
                "/v2/contactactivityexport",
                json={"format": fmt},
                auth=(account.cordial_api_key, ""),
            )
            assert r.status_code == 202, r.text
            export_jobs[fmt] = r.json()["jobID"]
            job = run_jobs_until_done(database_url, export_dir, http, account, export_jobs[fmt])
            assert job["status"] == "completed", job
        # An Ortto activity backdated beyond 90 days is queued; no worker runs it yet.
        r = http.patch(
            "/api/v1/account/settings",
            json={"auto_create_definitions": True},
            headers=admin(account),
        )
        assert r.status_code == 200, r.text
        old = (datetime.now(UTC) - timedelta(days=120)).strftime("%Y-%m-%dT%H:%M:%SZ")
        r = http.post(
            "/v1/activities/create",
            json={
                "activities": [
                    {
                        "activity_id": "act:cm:late",
                        "attributes": {"str:cm:note": person.secret},
                        "fields": {"str::email": person.email},
                        "merge_by": ["str::email"],
                        "created": old,
                    }
                ]
            },
            headers={"X-Api-Key": account.ortto_api_key},
        )
        assert r.status_code == 200, r.text
        queued_job = r.headers["X-Eventyard-Job-Id"]

        # Erase through the merged-away anonymous contact's id: the whole person goes.
        r = http.delete(f"/api/v1/contacts/{anon_contact[0]}", headers=admin(account))
        assert r.status_code == 200, r.text
        audit = r.json()
        assert sorted(audit["contact_ids"]) == sorted([found["id"], anon_contact[0]])
        assert audit["requested_via"] == "api"
        removed = audit["removed"]
        assert removed["contacts"] == 2
        assert removed["activities"] == 4  # three from Netcore, "Browse" from Segment
        assert removed["list_memberships"] == 1
        assert removed["groups"] == 1
        assert removed["queued_records"] == 1
        assert removed["export_rows"] == 8  # four in each file

        # The queued Ortto record is gone with the person: the worker stores nothing of them.
        job = run_jobs_until_done(database_url, export_dir, http, account, queued_job)
        assert job["status"] == "completed", job
        assert find_contact(http, account, f"email:{person.email}") is None
        assert find_contact(http, account, f"identity:{person.identity}") is None
        assert find_contact(http, account, f"anonid:{person.anon}") is None
        for contact_id in audit["contact_ids"]:
            for path in ("", "/activities", "/identity-events"):
                r = http.get(f"/api/v1/contacts/{contact_id}{path}", headers=admin(account))
                assert r.status_code == 404, r.text
        r = http.delete(f"/api/v1/contacts/{found['id']}", headers=admin(account))
        assert r.status_code == 404, r.text

        # The other contact keeps everything: activities, list membership, export rows.
        r = http.get(f"/api/v1/contacts/{kept['id']}/activities", headers=admin(account))
        assert len(r.json()["activities"]) == 2
        r = http.get(f"/api/v1/lists/{members.id}/contacts", headers=admin(account))
        assert [c["id"] for c in r.json()["contacts"]] == [kept["id"]]
        downloads = {
            fmt: http.get(
                f"/v2/contactactivityexport/{job_id}/download",
                auth=(account.cordial_api_key, ""),
            )
            for fmt, job_id in export_jobs.items()
        }
        exported = [orjson.loads(line) for line in downloads["json"].text.splitlines()]
        assert [row["cID"] for row in exported] == [kept["id"], kept["id"]]
        table = list(csv.DictReader(io.StringIO(downloads["csv"].text)))
        assert [row["cID"] for row in table] == [kept["id"], kept["id"]]
        for download in downloads.values():
            assert not any(value in download.text for value in person.values())

        # The audit record lists the erasure and holds nothing personal.
        r = http.get("/api/v1/erasures", headers=admin(account))
        assert r.status_code == 200, r.text
        assert [e["id"] for e in r.json()["erasures"]] == [audit["id"]]
        assert not any(value in r.text for value in person.values())

    leftovers = rows_mentioning(database_url, person.values())
    assert leftovers == {}, leftovers
    ids_left = rows_mentioning(database_url, audit["contact_ids"])
    assert set(ids_left) == {"erasures"}, ids_left
    assert rows_mentioning(database_url, [other.email, other.identity]) != {}


def test_another_account_cannot_erase_a_contact(
    http: httpx.Client, account: NewAccount, store: Database
) -> None:
    intruder = create_account(store, f"intruder-{uuid.uuid4().hex[:6]}")
    person = Person("tenant")
    netcore(http, account, person, 1)
    found = find_contact(http, account, f"identity:{person.identity}")
    assert found is not None
    r = http.delete(f"/api/v1/contacts/{found['id']}", headers=admin(intruder))
    assert r.status_code == 404, r.text
    assert find_contact(http, account, f"identity:{person.identity}") == found
    r = http.delete(f"/api/v1/contacts/{found['id']}")
    assert r.status_code == 401, r.text


def test_the_cli_erases_by_identifier_after_asking(empty_database: str, tmp_path: Path) -> None:
    """``eventyard contacts erase KIND:VALUE --account ID``: without ``--yes`` and
    nobody to answer, nothing is erased; with it, the person is gone. On SQLite
    not even the database file's bytes hold their e-mail any more (deleted
    rows are overwritten, the write-ahead log emptied)."""
    upgrade_database(empty_database)
    account = create_account_at(empty_database, "Erasure by CLI")
    person, other = Person("cli"), Person("stay")
    with (
        running_server(empty_database, tmp_path / "server.log") as srv,
        httpx.Client(base_url=srv.base_url, timeout=30) as http,
    ):
        netcore(http, account, person, 5)
        netcore(http, account, other, 1)
    export_dir = tmp_path / "exports"
    target = f"identity:{person.identity}"

    refused = cli(
        empty_database, export_dir, "contacts", "erase", target, "--account", account.account.id
    )
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert rows_mentioning(empty_database, [person.email]) != {}

    done = cli(
        empty_database,
        export_dir,
        "contacts",
        "erase",
        target,
        "--account",
        account.account.id,
        "--yes",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    audit = orjson.loads(done.stdout)
    assert audit["requested_via"] == "cli"
    assert audit["removed"]["activities"] == 5
    assert audit["removed"]["identifiers"] == 1
    assert person.email not in done.stdout
    assert rows_mentioning(empty_database, person.values()) == {}
    assert rows_mentioning(empty_database, [other.email]) != {}

    again = cli(
        empty_database,
        export_dir,
        "contacts",
        "erase",
        target,
        "--account",
        account.account.id,
        "--yes",
    )
    assert again.returncode == 1
    assert "No contact has the identifier" in again.stderr

    if empty_database.startswith("sqlite"):
        path = Path(empty_database.removeprefix("sqlite:///"))
        files = [path, path.with_name(path.name + "-wal")]
        raw = b"".join(f.read_bytes() for f in files if f.exists())
        assert person.email.encode() not in raw
        assert other.email.encode() in raw
