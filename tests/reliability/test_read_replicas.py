"""Read replicas (``EVENTYARD_READ_DATABASE_URL``) on a real PostgreSQL streaming replica.

A private primary cluster and a hot standby made from it with
``pg_basebackup`` (tests/streaming_replica.py), and a real server reading
from the standby. The lag-tolerant reads (the read API, the Cordial GET
listing, exports, the console) go to the replica while it is up and close
behind; with its replay paused (it lags) or stopped (it is down) they go to
the primary, /readyz says which, and nobody sees an error.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from eventyard.core.model import NewAccount
from eventyard.settings import Settings
from eventyard.storage.engine import normalize_database_url
from eventyard.storage.migrate import upgrade_database
from tests.api.cordial_seed import auth, listing, post_activity
from tests.api.test_cordial_exports import export, ndjson
from tests.e2e.console_support import sign_in_http
from tests.reliability.private_postgres import PrivateCluster, postgres_bin, private_postgres
from tests.streaming_replica import streaming_replica
from tests.support import admin, create_account_at, run_cli, running_server

MAX_LAG_SECONDS = 1.0
WAIT_SECONDS = 60

pytestmark = pytest.mark.skipif(postgres_bin() is None, reason="no PostgreSQL server binaries")


@dataclass
class Setup:
    primary: PrivateCluster
    replica: PrivateCluster
    http: httpx.Client
    account: NewAccount

    def on_replica(self, sql: str) -> Any:
        engine = create_engine(normalize_database_url(self.replica.url))
        try:
            with engine.connect() as conn:
                return conn.execute(text(sql)).scalar()
        finally:
            engine.dispose()

    def replica_state(self) -> dict[str, Any]:
        r = self.http.get("/readyz")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        assert body["database"] == "ok"
        (replica,) = body["replicas"]
        return dict(replica)

    def reads(self, target: str) -> float:
        """``eventyard_database_reads_total{target=...}`` as /metrics says now."""
        found = re.search(
            rf'^eventyard_database_reads_total{{target="{target}"}} (\S+)$',
            self.http.get("/metrics").text,
            re.M,
        )
        return 0.0 if found is None else float(found.group(1))


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"waited {WAIT_SECONDS} s for {what}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    with private_postgres() as primary:
        upgrade_database(primary.url)
        account = create_account_at(primary.url, f"replicas-{uuid.uuid4().hex[:6]}")
        with streaming_replica(primary) as replica:
            env = {
                "EVENTYARD_READ_DATABASE_URL": replica.url,
                "EVENTYARD_READ_MAX_LAG_SECONDS": str(MAX_LAG_SECONDS),
                "EVENTYARD_READ_CHECK_SECONDS": "0.2",
                "EVENTYARD_WORKER_POLL_SECONDS": "0.2",
                "EVENTYARD_DB_CONNECT_TIMEOUT_SECONDS": "2",
            }
            log = tmp_path_factory.mktemp("replicas") / "server.log"
            with (
                running_server(primary.url, log, env) as server,
                httpx.Client(base_url=server.base_url, timeout=30) as http,
            ):
                yield Setup(primary, replica, http, account)


def contact_of(setup: Setup, email: str) -> list[dict[str, Any]]:
    r = setup.http.get(
        "/api/v1/contacts", params={"identifier": f"email:{email}"}, headers=admin(setup.account)
    )
    assert r.status_code == 200, r.text
    return list(r.json()["contacts"])


def test_lag_tolerant_reads_go_to_a_replica_that_is_up(setup: Setup) -> None:
    """The read API, the Cordial listing, an export and the console read from the replica."""
    wait_for(lambda: setup.replica_state()["state"] == "ok", "the replica to be checked ok")
    post_activity(setup.http, setup.account, "browse", email="first@example.com")
    # The replica shows the write once it has replayed it.
    wait_for(lambda: contact_of(setup, "first@example.com") != [], "the replica to catch up")
    replica_before, primary_before = setup.reads("replica"), setup.reads("primary")

    assert len(contact_of(setup, "first@example.com")) == 1
    assert [x["a"] for x in listing(setup.http, setup.account)] == ["browse"]
    job, download = export(setup.http, setup.account, {"name": "from-the-replica"})
    assert [x["a"] for x in ndjson(download)] == ["browse"]
    assert job["totalRecords"] == 1
    assert sign_in_http(setup.http, setup.account.admin_token).status_code in (200, 303)
    assert "Overview" in setup.http.get("/console").text

    # contacts lookup, Cordial listing, export batches, console overview: all replica reads.
    assert setup.reads("replica") >= replica_before + 4
    assert setup.reads("primary") == primary_before
    assert setup.replica_state()["lag_seconds"] is not None
    metrics = setup.http.get("/metrics").text
    name = f"127.0.0.1:{setup.replica.port}/postgres"
    assert f'eventyard_read_replica_usable{{replica="{name}"}} 1.0' in metrics
    assert f'eventyard_read_replica_lag_seconds{{replica="{name}"}}' in metrics


def test_a_replica_lagging_beyond_the_limit_is_skipped_for_the_primary(setup: Setup) -> None:
    """With its replay paused the replica cannot know a new contact: reading it at once
    proves the read went to the primary."""
    wait_for(lambda: setup.replica_state()["state"] == "ok", "the replica to be ok")
    setup.on_replica("SELECT pg_wal_replay_pause()")
    try:
        post_activity(setup.http, setup.account, "browse", email="paused@example.com")
        wait_for(lambda: setup.replica_state()["state"] == "lagging", "the replica to lag")
        assert setup.replica_state()["lag_seconds"] > MAX_LAG_SECONDS
        primary_before = setup.reads("primary")
        assert len(contact_of(setup, "paused@example.com")) == 1
        assert setup.reads("primary") == primary_before + 1
        r = setup.http.get(
            "/v2/contactactivities",
            params={"email": "paused@example.com"},
            auth=auth(setup.account),
        )
        assert r.status_code == 200, r.text
        assert [x["a"] for x in r.json()] == ["browse"]
    finally:
        setup.on_replica("SELECT pg_wal_replay_resume()")
    wait_for(lambda: setup.replica_state()["state"] == "ok", "the replica to catch up")


def test_a_replica_that_is_down_is_skipped_and_reported(setup: Setup) -> None:
    """Stopped, the replica is `down` in /readyz (still 200) and reads go on from the
    primary; started again, it serves reads again."""
    setup.replica.stop_immediately()
    try:
        post_activity(setup.http, setup.account, "browse", email="down@example.com")
        # Whether the check or a request notices first, nobody sees an error.
        for _ in range(5):
            assert len(contact_of(setup, "down@example.com")) == 1
        wait_for(lambda: setup.replica_state()["state"] == "down", "/readyz to say down")
        assert setup.replica_state()["lag_seconds"] is None
        assert 'eventyard_read_replica_usable{replica="' in setup.http.get("/metrics").text
    finally:
        setup.replica.start()
    wait_for(lambda: setup.replica_state()["state"] == "ok", "the replica to be back")
    replica_before = setup.reads("replica")
    wait_for(lambda: contact_of(setup, "down@example.com") != [], "a read")
    assert setup.reads("replica") > replica_before


def test_read_replicas_are_refused_with_sqlite(tmp_path: Path) -> None:
    """SQLite has no replicas: the setting stops the server at start-up, saying why."""
    with pytest.raises(ValueError, match="SQLite has no read replicas"):
        Settings(
            database_url=f"sqlite:///{tmp_path / 'x.db'}",
            read_database_url="postgresql://postgres@127.0.0.1:5433/x",
        )
    done = run_cli(
        f"sqlite:///{tmp_path / 'x.db'}",
        "serve",
        EVENTYARD_READ_DATABASE_URL="postgresql://postgres@127.0.0.1:5433/x",
    )
    assert done.returncode == 2
    assert "EVENTYARD_READ_DATABASE_URL" in done.stderr
    assert "SQLite has no read replicas" in done.stderr
