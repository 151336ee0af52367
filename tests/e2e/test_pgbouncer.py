"""eventyard behind PgBouncer in transaction pooling mode (PostgreSQL only).

In transaction mode PgBouncer hands each transaction whichever server
connection is free: nothing a connection holds between transactions
(session advisory locks, ``SET``, ``LISTEN``, temporary tables that must
outlive a commit, prepared statements) survives. This module runs a real
server and the CLI through a real PgBouncer (tests/pgbouncer.py) with
``EVENTYARD_DATABASE_PREPARED_STATEMENTS=false`` and checks the work that
depends most on the database: ingest of every dialect, idempotency, contact
imports through staging tables, export jobs claimed with ``SKIP LOCKED``,
the console's sessions. ``EVENTYARD_TEST_PGBOUNCER=1 ./scripts/test -k
postgresql`` runs the whole PostgreSQL suite this way.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from eventyard.core.model import NewAccount
from eventyard.storage.database import Database
from tests.api.cordial_seed import listing, post_activity
from tests.api.test_cordial_exports import export, ndjson
from tests.e2e.console_support import sign_in_http
from tests.pgbouncer import PgBouncer, running_pgbouncer
from tests.reliability.dialects import DIALECTS, markers, stored_markers
from tests.support import Server, create_account_at, own_database, run_cli, running_server

NO_PREPARED = {"EVENTYARD_DATABASE_PREPARED_STATEMENTS": "false"}


@dataclass
class Pooled:
    """A migrated database, the PgBouncer in front of it and a server connected through it."""

    direct_url: str
    url: str
    bouncer: PgBouncer
    server: Server


@pytest.fixture(scope="module")
def pooled(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pooled]:
    directory = tmp_path_factory.mktemp("pgbouncer")
    with own_database("postgresql", directory) as direct, running_pgbouncer(direct) as bouncer:
        url = bouncer.url(direct)
        env = {**NO_PREPARED, "EVENTYARD_WORKER_POLL_SECONDS": "0.2"}
        with running_server(url, directory / "server.log", env) as server:
            yield Pooled(direct, url, bouncer, server)


@pytest.fixture
def http(pooled: Pooled) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=pooled.server.base_url, timeout=60) as client:
        yield client


@pytest.fixture
def account(pooled: Pooled) -> NewAccount:
    return create_account_at(pooled.direct_url, f"pooled-{uuid.uuid4().hex[:8]}")


def test_every_dialect_stores_each_event_once_through_the_pooler(
    pooled: Pooled, http: httpx.Client, account: NewAccount
) -> None:
    """Batches of every dialect, four at a time: more runs of each statement than
    psycopg's threshold for preparing it, over server connections PgBouncer mixes."""
    sent: dict[str, list[str]] = {}
    requests = []
    for dialect in DIALECTS:
        dialect.prepare(http, account)
        size = min(dialect.batch_size, 10)
        marks = markers(f"{dialect.name}-{uuid.uuid4().hex[:6]}", size * 8, 5)
        sent[dialect.name] = marks
        requests += [
            (dialect, dialect.batch(account, marks[i : i + size]))
            for i in range(0, len(marks), size)
        ]
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda dr: (dr[0], dr[1].send(http)), requests))
    for dialect, answer in answers:
        assert dialect.accepted(answer), (dialect.name, answer.status_code, answer.text)
    store = Database.from_url(pooled.url, pool_size=2, prepared_statements=False)
    try:
        for dialect in DIALECTS:
            prefix = sent[dialect.name][0].split("-")[:2]
            stored = [
                m
                for m in stored_markers(store, account.account.id, dialect)
                if m.split("-")[:2] == prefix
            ]
            assert sorted(stored) == sorted(sent[dialect.name]), dialect.name
    finally:
        store.dispose()


def test_a_retried_request_is_answered_from_its_idempotency_key(
    pooled: Pooled, http: httpx.Client, account: NewAccount
) -> None:
    """The second request with the same key gets the first answer and stores nothing."""
    netcore = next(d for d in DIALECTS if d.name == "netcore")
    batch = netcore.batch(account, markers(f"idem-{uuid.uuid4().hex[:6]}", 3, 1))
    key = uuid.uuid4().hex
    first = batch.send(http, **{"Idempotency-Key": key})
    again = [batch.send(http, **{"Idempotency-Key": key}) for _ in range(6)]
    assert netcore.accepted(first), first.text
    assert {(r.status_code, r.content) for r in again} == {(first.status_code, first.content)}
    store = Database.from_url(pooled.url, pool_size=1, prepared_statements=False)
    try:
        assert len(stored_markers(store, account.account.id, netcore)) == 3
    finally:
        store.dispose()


def test_a_contact_import_through_staging_tables(
    pooled: Pooled, account: NewAccount, tmp_path: Path
) -> None:
    """Chunks of 40 rows, each a transaction of its own that stages its rows in
    temporary tables: whichever server connection it gets, the import is whole."""
    csv_path = tmp_path / "people.csv"
    rows = [f"p{i}@example.com,+9198{i:08d},Person {i}" for i in range(300)]
    csv_path.write_text("Email,Mobile,Name\n" + "\n".join(rows) + "\n")
    env = {**NO_PREPARED, "EVENTYARD_IMPORT_CHUNK_ROWS": "40"}
    args = ("contacts", "import", str(csv_path), "--account", account.account.id, "--json")
    first = run_cli(pooled.url, *args, **env)
    assert first.returncode == 0, first.stderr
    summary = orjson.loads(first.stdout)
    assert (summary["total"], summary["created"], summary["failed"]) == (300, 300, 0)
    again = run_cli(pooled.url, *args, **env)
    assert again.returncode == 0, again.stderr
    summary = orjson.loads(again.stdout)
    assert (summary["created"], summary["updated"]) == (0, 300)


def test_export_jobs_are_claimed_once_and_read_every_record(
    http: httpx.Client, account: NewAccount
) -> None:
    """Five exports at once: the server's worker claims each job once (``FOR UPDATE
    SKIP LOCKED``) and each file holds the listing's records."""
    for i in range(12):
        post_activity(http, account, "browse", properties={"n": i})
    expected = listing(http, account)
    assert len(expected) == 12
    with ThreadPoolExecutor(5) as pool:
        done = list(pool.map(lambda i: export(http, account, {"name": f"e{i}"}), range(5)))
    for job, download in done:
        assert job["attempts"] == 1
        assert ndjson(download) == expected


def test_a_console_session_lasts_across_requests(
    pooled: Pooled, http: httpx.Client, account: NewAccount
) -> None:
    """Signed in once, every later page (each a transaction on any server connection)
    knows the session."""
    signed = sign_in_http(http, account.admin_token)
    assert signed.status_code in (200, 303), signed.text
    for _ in range(8):
        page = http.get("/console")
        assert page.status_code == 200
        assert "Overview" in page.text


def test_prepared_statements_must_be_off_behind_a_transaction_pooler(pooled: Pooled) -> None:
    """Why the setting exists: two connections taking turns through PgBouncer 1.18
    run on the same server connection, where psycopg's prepared statements of
    one meet those of the other; without them both go on."""

    def take_turns(prepared: bool) -> None:
        store = Database.from_url(pooled.url, pool_size=2, prepared_statements=prepared)
        try:
            with store.engine.connect() as one, store.engine.connect() as two:
                for i in range(8):
                    for conn in (one, two):
                        assert conn.execute(text("SELECT :i"), {"i": i}).scalar() == i
                        conn.commit()
        finally:
            store.dispose()

    take_turns(prepared=False)
    with pytest.raises(DBAPIError, match="prepared statement"):
        take_turns(prepared=True)
