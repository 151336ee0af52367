"""Netcore bulk contact upload end to end: a real server, its worker, real peers on loopback.

Spec: ``shared/specs/netcore-bulk-contact-upload.txt``, quoted test by test;
the decisions it leaves open are in ``docs/dialects/netcore.md``. The server
runs on a database of its own (the suite's shared server runs a worker on
the shared database, which would take these jobs without the allow-list).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import orjson
import pytest
from sqlalchemy import select

from eventyard.core.identifiers import EMAIL, MOBILE, Identifier
from eventyard.core.model import NewAccount, ProfileUpdate
from eventyard.core.signatures import SIGNATURE_HEADER, signature_matches
from eventyard.dialects.registry import create_account
from eventyard.services.ingest import store_records
from eventyard.storage.database import Database
from eventyard.storage.tables import contact_identifiers, contacts, list_members
from tests.e2e.bulk_upload_support import (
    FileServer,
    SmtpServer,
    file_server,
    s3_server,
    smtp_server,
    wait_for,
)
from tests.support import (
    admin,
    create_account_at,
    find_contact,
    own_database,
    run_cli,
    running_server,
)

APIV2 = "/apiv2"
BULK = {"type": "contact", "activity": "bulkupload"}
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class Peers:
    files: FileServer
    smtp: SmtpServer
    s3_endpoint: str


@dataclass
class Hub:
    """The eventyard server of these tests and what it talks to."""

    database_url: str
    api: httpx.Client
    peers: Peers
    directory: Path


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    root = tmp_path_factory.mktemp("files")
    with file_server(root) as files, smtp_server() as smtp, s3_server() as s3:
        yield Peers(files, smtp, s3)


def hub_env(peers: Peers, **extra: str) -> dict[str, str]:
    return {
        # The test's peers are on loopback: the allow-list lets only 127.0.0.1 in.
        "EVENTYARD_URL_ALLOWLIST": "127.0.0.1/32",
        "EVENTYARD_SMTP_HOST": "127.0.0.1",
        "EVENTYARD_SMTP_PORT": str(peers.smtp.port),
        "EVENTYARD_SMTP_FROM": "hub@example.com",
        "EVENTYARD_S3_ENDPOINT_URL": peers.s3_endpoint,
        "EVENTYARD_JOB_RETRY_BASE_SECONDS": "0.1",
        "EVENTYARD_WORKER_POLL_SECONDS": "0.1",
        **AWS_ENV,
        **extra,
    }


@pytest.fixture(scope="module")
def hub(
    backend: str, peers: Peers, tmp_path_factory: pytest.TempPathFactory, request: Any
) -> Iterator[Hub]:
    if backend == "postgresql":
        request.getfixturevalue("postgres_url")  # PostgreSQL is there (CI fails otherwise)
    directory = tmp_path_factory.mktemp(f"hub-{backend}")
    with (
        own_database(backend, directory) as url,
        running_server(url, directory / "server.log", hub_env(peers)) as server,
        httpx.Client(base_url=server.base_url, timeout=60) as api,
    ):
        yield Hub(url, api, peers, directory)


@pytest.fixture
def account(hub: Hub) -> NewAccount:
    return create_account_at(hub.database_url, "bulk")


def write_csv(peers: Peers, name: str, text: str, *, encoding: str = "utf-8") -> str:
    (peers.files.root / name).write_bytes(text.encode(encoding))
    return peers.files.url(name)


def submit(hub: Hub, account: NewAccount, **params: Any) -> httpx.Response:
    query = {**BULK, "apikey": account.netcore_api_key, **params}
    return hub.api.post(APIV2, params={k: v for k, v in query.items() if v is not None})


def job(api: httpx.Client, account: NewAccount, job_id: str) -> dict[str, Any]:
    r = api.get(f"/api/v1/jobs/{job_id}", headers=admin(account))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def finished(api: httpx.Client, account: NewAccount, job_id: str) -> dict[str, Any]:
    return wait_for(
        lambda: (j := job(api, account, job_id))["status"] in ("completed", "failed") and j,
        what=f"job {job_id} to end",
    )


def create_list(api: httpx.Client, account: NewAccount, name: str) -> int:
    r = api.post("/api/v1/lists", json={"name": name}, headers=admin(account))
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def list_contacts(api: httpx.Client, account: NewAccount, list_id: int) -> list[dict[str, Any]]:
    r = api.get(f"/api/v1/lists/{list_id}/contacts", headers=admin(account))
    assert r.status_code == 200, r.text
    return list(r.json()["contacts"])


def signing_secret(api: httpx.Client, account: NewAccount) -> str:
    return str(api.get("/api/v1/account", headers=admin(account)).json()["signing_secret"])


#: A Netcore-style file: BOM, ``;`` delimiter, a quoted line break, bad rows and
#: one contact twice.
MESSY_CSV = (
    "EMAIL;MOBILE;FIRSTNAME;CITY\r\n"
    'ann@example.com;;Ann;"Pune\nEast"\r\n'
    "bob@example.com;+91 98450 12345;Bob;Goa\r\n"
    "ann@;;Broken;X\r\n"
    ";;Nobody;Y\r\n"
    "carl@example.com;Carl;Z\r\n"
    "Ann@Example.com;;Annie;\r\n"
)


class TestBulkUpload:
    def test_imports_the_file_into_the_list_then_calls_back_and_mails(
        self, hub: Hub, account: NewAccount
    ) -> None:
        """Spec: "This API allows the user to add contacts in bulk"; "Passing this ID is
        required to let the API know to which list the contact is to be added"; "You can
        track the final status of the upload through: The callback URL … The email
        address specified in the notifyemail parameter"."""
        list_id = create_list(hub.api, account, "Newsletter")
        path = write_csv(hub.peers, "messy.csv", "\ufeff" + MESSY_CSV)
        callback = hub.peers.files.url(f"callback/{account.account.id}")
        r = submit(
            hub,
            account,
            path=path,
            listid=list_id,
            notifyemail="Ops@Example.com",
            callback=callback,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"requestid", "result"}
        assert body["result"] == "Success"

        done = finished(hub.api, account, body["requestid"])
        assert done["status"] == "completed", done
        assert done["kind"] == "contacts.import"
        assert (done["total"], done["created"], done["updated"], done["failed"]) == (6, 2, 1, 3)
        assert done["errors"] == [
            # Rows as a spreadsheet numbers them: the header is 1, a quoted line
            # break does not start a row.
            {"row": 4, "reason": "email 'ann@' is not a valid e-mail address"},
            {"row": 5, "reason": "no identifier: email and mobile are empty"},
            {"row": 6, "reason": "has 3 fields where the header has 4"},
        ]
        # The last row for Ann wins; its empty CITY leaves the earlier value.
        ann = find_contact(hub.api, account, "email:ann@example.com")
        assert ann is not None
        assert ann["attributes"] == {"FIRSTNAME": "Annie", "CITY": "Pune\nEast"}
        bob = find_contact(hub.api, account, "mobile:+919845012345")
        assert bob is not None
        assert bob["attributes"] == {"FIRSTNAME": "Bob", "CITY": "Goa"}
        members = list_contacts(hub.api, account, list_id)
        assert sorted(m["id"] for m in members) == sorted([ann["id"], bob["id"]])

        (delivery,) = wait_for(lambda: hub.peers.files.posts_to(f"/callback/{account.account.id}"))
        assert delivery.headers["Content-Type"] == "application/json"
        secret = signing_secret(hub.api, account)
        assert signature_matches(secret, delivery.body, delivery.headers[SIGNATURE_HEADER])
        report = orjson.loads(delivery.body)
        assert report == {
            "requestid": body["requestid"],
            "status": "completed",
            "listid": list_id,
            "total": 6,
            "created": 2,
            "updated": 1,
            "failed": 3,
            "errors": done["errors"],
            "finished_at": report["finished_at"],
        }
        assert report["finished_at"].endswith("Z")

        (mail,) = wait_for(lambda: hub.peers.smtp.to("ops@example.com"), what="the e-mail")
        assert mail["From"] == "hub@example.com"
        assert mail["Subject"] == f"eventyard bulk upload {body['requestid']}: completed"
        text = mail.get_payload(decode=True).decode()
        assert "Created: 2" in text
        assert "Failed: 3" in text
        assert "row 4:" in text

    def test_parameters_in_a_form_body_and_a_contact_master_upload(
        self, hub: Hub, account: NewAccount
    ) -> None:
        """Spec: "Content-Type application/x-www-form-urlencoded", path and listid are
        "Body Parameter"s; "Callback notifications are also sent for Contact Master
        uploads where no listid is provided"."""
        path = write_csv(hub.peers, "tabs.csv", "email\tplan\ndee@example.com\tgold\n")
        callback = hub.peers.files.url(f"master/{account.account.id}")
        r = hub.api.post(
            APIV2,
            params={**BULK, "apikey": account.netcore_api_key},
            data={"path": path, "callback": callback},
        )
        assert r.status_code == 200, r.text
        done = finished(hub.api, account, r.json()["requestid"])
        assert (done["status"], done["total"], done["created"]) == ("completed", 1, 1)
        dee = find_contact(hub.api, account, "email:dee@example.com")
        assert dee is not None
        assert dee["attributes"] == {"plan": "gold"}
        (delivery,) = wait_for(lambda: hub.peers.files.posts_to(f"/master/{account.account.id}"))
        assert orjson.loads(delivery.body)["listid"] is None

    def test_a_failing_callback_is_retried_until_it_is_taken(
        self, hub: Hub, account: NewAccount
    ) -> None:
        """Issue 6: the callback is "retried with exponential backoff on failure"."""
        path = write_csv(hub.peers, "one.csv", "email\neve@example.com\n")
        callback = hub.peers.files.url(f"fail-first/{account.account.id}")
        r = submit(hub, account, path=path, callback=callback)
        requestid = r.json()["requestid"]
        finished(hub.api, account, requestid)
        deliveries = wait_for(
            lambda: (
                len(d := hub.peers.files.posts_to(f"/fail-first/{account.account.id}")) >= 2 and d
            ),
            what="the retried callback",
        )
        assert deliveries[0].body == deliveries[1].body
        r = hub.api.get(
            "/api/v1/jobs", params={"kind": "contacts.import.callback"}, headers=admin(account)
        )
        (callback_job,) = r.json()["jobs"]
        callback_job = wait_for(
            lambda: (j := job(hub.api, account, callback_job["id"]))["status"] == "completed" and j
        )
        assert callback_job["attempts"] == 2
        assert callback_job["result"] == {"status_code": 204, "attempts": 2}

    def test_an_s3_path_is_read_with_boto3(self, hub: Hub, account: NewAccount) -> None:
        """Spec: "File path to private S3 buckets will work"; moto's S3 server stands in
        for S3, as nothing real can run here."""
        s3 = boto3.client("s3", endpoint_url=hub.peers.s3_endpoint, **_aws())
        bucket = f"uploads-{account.account.id}"
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="in/contacts.csv", Body=b"email,tier\nfay@example.com,2\n")
        r = submit(hub, account, path=f"s3://{bucket}/in/contacts.csv")
        done = finished(hub.api, account, r.json()["requestid"])
        assert (done["status"], done["created"]) == ("completed", 1), done
        fay = find_contact(hub.api, account, "email:fay@example.com")
        assert fay is not None
        assert fay["attributes"] == {"tier": "2"}

        r = submit(hub, account, path=f"s3://{bucket}/missing.csv")
        done = finished(hub.api, account, r.json()["requestid"])
        assert done["status"] == "failed"
        assert "NoSuchKey" in done["error"]

    def test_a_50_mb_file(self, hub: Hub, account: NewAccount) -> None:
        """Issue 6: "a 50 MB file", streamed in bounded memory, every row stored."""
        rows = 25_000
        filler = "x" * 2000
        name = f"big-{account.account.id}.csv"
        with (hub.peers.files.root / name).open("w") as handle:
            handle.write("email,notes\n")
            for n in range(rows):
                handle.write(f"big{n}@example.com,{filler}\n")
        assert (hub.peers.files.root / name).stat().st_size > 50_000_000
        r = submit(hub, account, path=hub.peers.files.url(name))
        done = finished(hub.api, account, r.json()["requestid"])
        assert (done["status"], done["total"], done["created"]) == ("completed", rows, rows)
        last = find_contact(hub.api, account, f"email:big{rows - 1}@example.com")
        assert last is not None
        assert last["attributes"]["notes"] == filler


def _aws() -> dict[str, str]:
    return {
        "aws_access_key_id": AWS_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        "region_name": AWS_ENV["AWS_DEFAULT_REGION"],
    }


class TestRefusals:
    def assert_error(self, r: httpx.Response, status: int, message: str) -> None:
        assert r.status_code == status, r.text
        body = r.json()
        assert body["status"] == "error"
        assert body["code"] == status
        assert message in body["message"], body

    def test_a_wrong_apikey_is_401(self, hub: Hub, account: NewAccount) -> None:
        """Spec: "apikey … Required"; Netcore answers an invalid key with 401."""
        r = hub.api.post(APIV2, params={**BULK, "apikey": "nope", "path": "http://x/y.csv"})
        self.assert_error(r, 401, "Unauthorized | Invalid API Key")
        r = hub.api.post(APIV2, params={**BULK, "path": "http://x/y.csv"})
        self.assert_error(r, 401, "Invalid API Key")

    @pytest.mark.parametrize(
        ("params", "message"),
        [
            ({"type": "activity"}, "Unknown type 'activity'"),
            ({"activity": "delete"}, "Unknown activity 'delete'"),
            ({"type": None}, "Missing Parameter - type"),
            ({"path": None}, "Missing Parameter - path"),
            ({"path": ""}, "Missing Parameter - path"),
            ({"path": "ftp://files.example.com/a.csv"}, "path must be an http://"),
            ({"path": "contacts.csv"}, "path must be an http://"),
            ({"path": "http:///nohost.csv"}, "path must be an http:// or https:// URL"),
            ({"path": "/etc/passwd"}, "EVENTYARD_IMPORT_LOCAL_FILES"),
            ({"path": "s3://bucket-only"}, "needs a bucket and a key"),
            ({"notifyemail": "not-an-email"}, "notifyemail 'not-an-email' is not a valid"),
            ({"callback": "mailto:a@example.com"}, "callback must be an http://"),
            ({"listid": "abc"}, "listid must be a list's integer id"),
            ({"listid": "987654"}, "listid 987654 names no list of this account"),
        ],
    )
    def test_bad_parameters_are_400_and_enqueue_nothing(
        self, hub: Hub, account: NewAccount, params: dict[str, Any], message: str
    ) -> None:
        """Issue 6: "unknown type/activity, missing path, a malformed URL or e-mail -> 400
        with a clear message"; "an unknown listid is rejected at submit"."""
        query = {**BULK, "apikey": account.netcore_api_key, "path": "https://example.com/a.csv"}
        query.update(params)
        r = hub.api.post(APIV2, params={k: v for k, v in query.items() if v is not None})
        self.assert_error(r, 400, message)
        assert hub.api.get("/api/v1/jobs", headers=admin(account)).json()["jobs"] == []

    def test_another_accounts_list_is_unknown(self, hub: Hub, account: NewAccount) -> None:
        other = create_account_at(hub.database_url, "other")
        list_id = create_list(hub.api, other, "Theirs")
        r = submit(hub, account, path="https://example.com/a.csv", listid=list_id)
        self.assert_error(r, 400, f"listid {list_id} names no list of this account")

    @pytest.mark.parametrize(
        ("field", "url", "reason"),
        [
            ("path", "http://127.0.0.1:9/a.csv", "127.0.0.1 is a loopback address"),
            ("path", "http://localhost:9/a.csv", "is a loopback address"),
            ("path", "http://10.1.2.3/a.csv", "10.1.2.3 is a private address"),
            ("path", "http://169.254.169.254/latest/meta-data", "is a link-local address"),
            ("path", "http://[::1]:9/a.csv", "::1 is a loopback address"),
            ("path", "http://0.0.0.0:9/a.csv", "0.0.0.0 is an unspecified address"),
            ("callback", "http://192.168.1.5/hook", "192.168.1.5 is a private address"),
            # Issue 9: "decimal/octal IP spellings" and "mapped forms".
            ("path", "http://2130706433/a.csv", "127.0.0.1 is a loopback address"),
            ("path", "http://0177.0.0.1/a.csv", "127.0.0.1 is a loopback address"),
            ("path", "http://0x7f.0.0.1/a.csv", "127.0.0.1 is a loopback address"),
            ("path", "http://127.1/a.csv", "127.0.0.1 is a loopback address"),
            ("path", "http://0/a.csv", "0.0.0.0 is an unspecified address"),
            ("path", "http://[::ffff:127.0.0.1]/a.csv", "127.0.0.1 is a loopback address"),
            ("path", "http://[::ffff:a9fe:a9fe]/latest", "169.254.169.254 is a link-local"),
            ("path", "http://[2002:7f00:1::]/a.csv", "127.0.0.1 is a loopback address"),
            ("path", "http://[fd12::1]/a.csv", "fd12::1 is a private address"),
            ("callback", "http://0xa9fea9fe/hook", "169.254.169.254 is a link-local address"),
            ("callback", "http://[::1]:9/hook", "::1 is a loopback address"),
        ],
    )
    def test_ssrf_refused_without_an_allow_list(
        self, http: httpx.Client, store: Database, field: str, url: str, reason: str
    ) -> None:
        """DESIGN: "No user-supplied URL (CSV path, callback) may reach loopback, private
        or link-local addresses unless the operator allows it in settings". The suite's
        shared server has no EVENTYARD_URL_ALLOWLIST."""
        account = create_account(store, "ssrf")
        params = {**BULK, "apikey": account.netcore_api_key, "path": "https://example.com/a"}
        params[field] = url
        r = http.post(APIV2, params=params)
        self.assert_error(r, 400, reason)

    @pytest.mark.parametrize("host", ["127.0.0.2", "2130706434", "[::ffff:127.0.0.2]"])
    def test_a_redirect_to_loopback_fails_the_import(
        self, hub: Hub, account: NewAccount, host: str
    ) -> None:
        """Issue 6: "the resolved address of the URL and of every redirect" is checked.
        127.0.0.2 is loopback outside the allow-list 127.0.0.1/32; issue 9 adds its
        decimal and IPv4-mapped spellings ("redirects into them")."""
        port = hub.peers.files.base_url.rsplit(":", 1)[1]
        target = f"http://{host}:{port}/messy.csv"
        write_csv(hub.peers, "messy.csv", MESSY_CSV)
        callback = hub.peers.files.url(f"refused/{account.account.id}")
        r = submit(
            hub,
            account,
            path=hub.peers.files.url(f"redirect?to={target}"),
            callback=callback,
        )
        done = finished(hub.api, account, r.json()["requestid"])
        assert done["status"] == "failed"
        assert "127.0.0.2 is a loopback address" in done["error"]
        assert done["attempts"] == 1, "a refusal is not retried"
        assert find_contact(hub.api, account, "email:bob@example.com") is None
        (delivery,) = wait_for(lambda: hub.peers.files.posts_to(f"/refused/{account.account.id}"))
        report = orjson.loads(delivery.body)
        assert report["status"] == "failed"
        assert "loopback" in report["error"]

    def test_a_missing_file_fails_the_import_with_its_status(
        self, hub: Hub, account: NewAccount
    ) -> None:
        r = submit(hub, account, path=hub.peers.files.url("nowhere.csv"))
        done = finished(hub.api, account, r.json()["requestid"])
        assert done["status"] == "failed"
        assert "answered 404" in done["error"]


# --- a worker killed mid-import -------------------------------------------------

#: Short leases, so that a killed worker's job is taken over within seconds, and
#: small chunks, so that a 100k-row import commits many times and a kill lands
#: between commits.
WORKER_ENV = {
    "EVENTYARD_JOB_LEASE_SECONDS": "2",
    "EVENTYARD_WORKER_POLL_SECONDS": "0.1",
    "EVENTYARD_IMPORT_CHUNK_ROWS": "2000",
}


def start_worker(database_url: str, peers: Peers, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "EVENTYARD_DATABASE_URL": database_url, **hub_env(peers), **WORKER_ENV}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "eventyard", "worker"], env=env, stdout=out, stderr=out
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


#: The bad rows of the file below, by row number: what is written and why it fails.
#: One comes before the kill, the others after it.
BAD_ROWS = {
    3: ("c@,,x", "email 'c@' is not a valid e-mail address"),
    30_001: (",,x", "no identifier: email and mobile are empty"),
    55_555: (
        "x@example.com,12ab,x",
        "mobile '12ab' must contain only digits, with an optional leading '+'",
    ),
    80_000: ("y@example.com,x", "has 2 fields where the header has 3"),
    100_001: ("z@example.com,,x,x", "has 4 fields where the header has 3"),
}


@dataclass
class ContactFile:
    """What importing a contact file must leave behind."""

    #: Each contact's e-mail and mobile as stored; contact 0 exists before the import.
    contacts: list[tuple[str, str]]
    #: The number of each contact's last row: its ``row`` attribute after the import.
    last_row: list[int]


def write_contact_file(path: Path, rows: int) -> ContactFile:
    """``rows`` data rows: the first for a contact names its e-mail and mobile; one in
    five names an earlier contact again, by e-mail, mobile or both, spelt otherwise,
    often one of the last few hundred (the same chunk) and otherwise any."""
    rng = random.Random(19)
    file = ContactFile([], [])
    with path.open("w") as handle:
        handle.write("email,mobile,row\n")
        for number in range(2, rows + 2):
            if number in BAD_ROWS:
                handle.write(BAD_ROWS[number][0] + "\n")
                continue
            known = len(file.contacts)
            if known and rng.random() < 0.2:
                k = rng.randrange(max(0, known - 300) if rng.random() < 0.5 else 0, known)
                email, mobile = file.contacts[k]
                email = email.upper() if rng.random() < 0.5 else email
                mobile = f"{mobile[:3]} {mobile[3:8]}-{mobile[8:]}"
                email, mobile = rng.choice([(email, ""), ("", mobile), (email, mobile)])
            else:
                k = known
                email, mobile = f"c{k}@example.com", f"+91{9_000_000_000 + k}"
                file.contacts.append((email, mobile))
                file.last_row.append(number)
            file.last_row[k] = number
            handle.write(f"{email},{mobile},{number}\n")
    return file


def store_contacts(database_url: str, account: NewAccount, contacts: list[ProfileUpdate]) -> None:
    store = Database.from_url(database_url, pool_size=1)
    try:
        with store.unit_of_work() as uow:
            store_records(uow, account.account, contacts, now=datetime.now(UTC))
            uow.commit()
    finally:
        store.dispose()


@dataclass
class StoredContacts:
    """An account's contacts as its tables hold them."""

    owners: dict[tuple[str, str], str]
    attributes: dict[str, dict[str, Any]]
    members: set[str]


def read_contacts(database_url: str, account: NewAccount, list_id: int) -> StoredContacts:
    """The account's identifiers and their owners, contacts' attributes, the list's members."""
    store = Database.from_url(database_url, pool_size=1)
    mine = account.account.id
    try:
        with store.engine.connect() as conn:
            owners = conn.execute(
                select(
                    contact_identifiers.c.kind,
                    contact_identifiers.c.value,
                    contact_identifiers.c.contact_id,
                ).where(contact_identifiers.c.account_id == mine)
            )
            attributes = conn.execute(
                select(contacts.c.id, contacts.c.attributes).where(contacts.c.account_id == mine)
            )
            members = conn.execute(
                select(list_members.c.contact_id).where(list_members.c.list_id == list_id)
            )
            return StoredContacts(
                {(kind, value): owner for kind, value, owner in owners},
                dict(attributes.all()),
                set(members.scalars()),
            )
    finally:
        store.dispose()


def test_a_worker_killed_mid_import_is_taken_over_and_imports_every_row_once(
    backend: str, peers: Peers, tmp_path: Path, request: Any
) -> None:
    """Issue 19: "A test kills the worker in the middle of a 100k-row import and checks
    that the restarted job finishes with every row imported exactly once." The server
    runs no worker; a worker process is SIGKILLed once half the file is committed; a
    fresh one takes the job over after its lease and goes on after the last committed
    row. A row applied twice would count twice; a row skipped would leave its
    contact's ``row`` attribute at an earlier row."""
    if backend == "postgresql":
        request.getfixturevalue("postgres_url")
    rows = 100_000
    chunk = int(WORKER_ENV["EVENTYARD_IMPORT_CHUNK_ROWS"])
    name = f"resume-{backend}-{tmp_path.name}.csv"
    file = write_contact_file(peers.files.root / name, rows)
    with (
        own_database(backend, tmp_path) as url,
        running_server(
            url, tmp_path / "server.log", hub_env(peers, EVENTYARD_RUN_WORKER="false")
        ) as server,
        httpx.Client(base_url=server.base_url, timeout=60) as api,
    ):
        account = create_account_at(url, "resume")
        list_id = create_list(api, account, "Imported")
        # Contact 0 of the file is there already (the file updates it); the outsider
        # is not in the file and does not join the list.
        email, mobile = file.contacts[0]
        store_contacts(
            url,
            account,
            [
                ProfileUpdate(
                    (Identifier(EMAIL, email), Identifier(MOBILE, mobile)),
                    {"row": "0", "origin": "api"},
                    dialect="test",
                ),
                ProfileUpdate(
                    (Identifier(EMAIL, "outsider@example.com"),), {"row": "0"}, dialect="test"
                ),
            ],
        )
        r = api.post(
            APIV2,
            params={
                **BULK,
                "apikey": account.netcore_api_key,
                "path": peers.files.url(name),
                "listid": list_id,
            },
        )
        requestid = r.json()["requestid"]
        assert job(api, account, requestid)["status"] == "queued", "no worker runs yet"

        first = start_worker(url, peers, tmp_path / "worker.log")
        try:
            wait_for(
                lambda: job(api, account, requestid)["total"] >= rows // 2,
                what="half the file committed",
            )
            first.send_signal(signal.SIGKILL)
            first.wait()
        finally:
            stop(first)
        partial = job(api, account, requestid)
        assert partial["status"] == "running"
        assert rows // 2 <= partial["total"] < rows, "the worker finished before it was killed"
        assert partial["total"] % chunk == 0, "the progress is that of whole chunks"

        second = start_worker(url, peers, tmp_path / "worker.log")
        try:
            done = finished(api, account, requestid)
        finally:
            stop(second)
        assert done["status"] == "completed", done
        assert done["attempts"] == 2
        created = len(file.contacts) - 1
        assert (done["total"], done["created"], done["updated"], done["failed"]) == (
            rows,
            created,
            rows - len(BAD_ROWS) - created,
            len(BAD_ROWS),
        )
        assert done["errors"] == [
            {"row": number, "reason": reason} for number, (_, reason) in BAD_ROWS.items()
        ]

        stored = read_contacts(url, account, list_id)
        outsider = stored.owners[(EMAIL, "outsider@example.com")]
        assert len(stored.attributes) == len(file.contacts) + 1, "contacts"
        assert len(stored.owners) == 2 * len(file.contacts) + 1, "identifiers"
        owner_of = [stored.owners.get((EMAIL, email), "") for email, _ in file.contacts]
        assert [stored.owners.get((MOBILE, mobile), "") for _, mobile in file.contacts] == owner_of
        assert len(set(owner_of) - {"", outsider}) == len(file.contacts), "one owner each"
        expected = [{"row": str(last)} for last in file.last_row]
        expected[0]["origin"] = "api"  # kept: the file has no such column
        wrong = [
            (email, stored.attributes.get(owner), want)
            for (email, _), owner, want in zip(file.contacts, owner_of, expected, strict=True)
            if stored.attributes.get(owner) != want
        ]
        assert wrong == [], "attributes other than the last row's"
        assert stored.attributes[outsider] == {"row": "0"}
        assert stored.members == set(owner_of)


# --- the command line -------------------------------------------------------------


def test_cli_imports_a_file_into_a_list(backend: str, tmp_path: Path, request: Any) -> None:
    """Issue 6: "eventyard contacts import FILE_OR_URL --account … [--list …] runs the
    same import with a Rich progress bar (rows/s, ETA) and a summary table"."""
    if backend == "postgresql":
        request.getfixturevalue("postgres_url")
    with own_database(backend, tmp_path) as url:
        account = create_account_at(url, "cli")
        made = run_cli(url, "lists", "create", "--account", account.account.id, "VIP", "--json")
        assert made.returncode == 0, made.stderr
        list_id = orjson.loads(made.stdout)["id"]
        csv_path = tmp_path / "people.csv"
        csv_path.write_text("Email,Mobile,Name\ngil@example.com,,Gil\nnope,,X\n")

        table = run_cli(
            url,
            "contacts",
            "import",
            str(csv_path),
            "--account",
            account.account.id,
            "--list",
            str(list_id),
        )
        assert table.returncode == 0, table.stderr
        for text in ("total", "created", "rows/s", "First 1 rows skipped", "not a valid e-mail"):
            assert text in table.stdout, table.stdout
        assert "rows/s" in table.stderr, "the progress bar"

        again = run_cli(
            url, "contacts", "import", str(csv_path), "--account", account.account.id, "--json"
        )
        summary = orjson.loads(again.stdout)
        assert (summary["total"], summary["created"], summary["updated"]) == (2, 0, 1)

        listed = run_cli(
            url, "lists", "contacts", "--account", account.account.id, str(list_id), "--json"
        )
        (member,) = [orjson.loads(line) for line in listed.stdout.splitlines()]
        assert member["attributes"] == {"Name": "Gil"}

        capped = run_cli(
            url,
            "contacts",
            "import",
            str(csv_path),
            "--account",
            account.account.id,
            EVENTYARD_IMPORT_MAX_BYTES="10",
        )
        assert capped.returncode == 1
        assert "more than EVENTYARD_IMPORT_MAX_BYTES" in capped.stderr
