"""Job workers as real processes: ``eventyard worker``, a server's own worker, the jobs API.

docs/operations.md, "Background jobs and workers", quoted test by test. The
worker tests get an empty database each (``empty_database``): no server's
worker there can take their jobs. Slow jobs are of the test-only kind of
``tests/e2e/job_worker.py``, run by the real command.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from eventyard.core.model import Job, NewAccount
from eventyard.dialects.registry import create_account
from eventyard.jobs.maintenance import PURGE_IDEMPOTENCY_KEYS
from eventyard.services.jobs import enqueue_job, get_job
from eventyard.storage.database import Database
from eventyard.storage.migrate import upgrade_database
from tests.e2e.job_worker import WAIT_FOR_FILE
from tests.e2e.test_cli import cli_env, create_account_json, run, serve
from tests.support import Server, admin

ROOT = Path(__file__).resolve().parents[2]
#: Generous bounds on waiting for a worker; a healthy run takes a fraction of them.
DEADLINE_SECONDS = 60
JOB_FIELDS = {
    "id",
    "kind",
    "status",
    "queue",
    "attempts",
    "max_attempts",
    "created_at",
    "started_at",
    "finished_at",
    "progress",
    "result",
    "error",
}


@pytest.fixture
def database(empty_database: str) -> str:
    """An empty database of its own, migrated."""
    upgrade_database(empty_database)
    return empty_database


@pytest.fixture
def own_store(database: str) -> Iterator[Database]:
    """The store of ``database``."""
    db = Database.from_url(database, pool_size=1)
    yield db
    db.dispose()


@contextmanager
def worker_process(
    database_url: str, log_path: Path, *, test_kinds: bool = False, **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``eventyard worker --poll 0.1``, with the test-only kind if ``test_kinds``; killed after."""
    module = "tests.e2e.job_worker" if test_kinds else "eventyard"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", module, "worker", "--poll", "0.1"],
            env=cli_env(database_url, **env),
            cwd=ROOT,
            stdout=log,
            stderr=log,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def wait_for(condition: Callable[[], bool], what: str, log_path: Path | None = None) -> None:
    """Return once ``condition()`` holds; fail after ``DEADLINE_SECONDS`` (not a timing test)."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            logs = log_path.read_text(errors="replace") if log_path else ""
            pytest.fail(f"still waiting for {what}\n{logs}")
        time.sleep(0.05)


def job_of(store: Database, job_id: str) -> Job:
    return get_job(store, None, job_id)


def enqueue_waiting_job(store: Database, release: Path) -> str:
    return enqueue_job(
        store,
        account=None,
        kind=WAIT_FOR_FILE,
        payload={"path": str(release)},
        now=datetime.now(UTC),
    )


def log_lines(log_path: Path, msg: str) -> list[dict[str, Any]]:
    """The JSON log lines whose ``msg`` is ``msg``."""
    lines = [line for line in log_path.read_text(errors="replace").splitlines() if line]
    entries = [orjson.loads(line) for line in lines if line.startswith("{")]
    return [e for e in entries if e.get("msg") == msg]


class TestWorkerProcess:
    def test_runs_a_job_enqueued_from_the_cli_then_stops_on_sigterm(
        self, database: str, own_store: Database, tmp_path: Path
    ) -> None:
        """operations.md: "`eventyard worker` ... runs jobs one at a time until SIGTERM
        or SIGINT ... then exits with status 0"; `maintenance.purge_idempotency_keys`
        "deletes expired `Idempotency-Key` records now"."""
        with own_store.unit_of_work() as uow:
            two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
            uow.idempotency.claim("0" * 24, "old-key", "f", two_hours_ago, 3600)
            uow.commit()
        enqueued = run(
            database,
            "jobs",
            "enqueue",
            PURGE_IDEMPOTENCY_KEYS,
            "--payload",
            '{"ttl_seconds": 3600}',
        )
        job_id = enqueued.stdout.strip()
        shown = orjson.loads(run(database, "jobs", "show", job_id, "--json").stdout)
        assert (shown["status"], shown["attempts"]) == ("queued", 0)
        log_path = tmp_path / "worker.log"

        with worker_process(database, log_path) as worker:
            wait_for(lambda: job_of(own_store, job_id).status == "completed", "the job", log_path)
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(DEADLINE_SECONDS) == 0

        shown = orjson.loads(run(database, "jobs", "show", job_id, "--json").stdout)
        assert shown["result"] == {"purged": 1}
        assert (shown["attempts"], shown["error"], shown["lease_owner"]) == (1, None, None)
        [listed] = [
            orjson.loads(line)
            for line in run(database, "jobs", "list", "--json").stdout.splitlines()
        ]
        assert (listed["id"], listed["status"]) == (job_id, "completed")
        [finished] = log_lines(log_path, "job finished")
        assert (finished["job_id"], finished["kind"], finished["status"]) == (
            job_id,
            PURGE_IDEMPOTENCY_KEYS,
            "completed",
        )
        assert log_lines(log_path, "job worker stopped")

    def test_sigterm_lets_the_job_in_hand_finish_before_exiting(
        self, database: str, own_store: Database, tmp_path: Path
    ) -> None:
        """Issue: "graceful stop (finish the current job, then exit)". The job can only
        end after the signal: its release file is made after it."""
        release = tmp_path / "release"
        job_id = enqueue_waiting_job(own_store, release)
        log_path = tmp_path / "worker.log"

        with worker_process(database, log_path, test_kinds=True) as worker:
            wait_for(lambda: bool(job_of(own_store, job_id).progress), "the job to start", log_path)
            worker.send_signal(signal.SIGTERM)
            release.touch()
            assert worker.wait(DEADLINE_SECONDS) == 0

        done = job_of(own_store, job_id)
        assert (done.status, done.attempts) == ("completed", 1)
        assert done.result == {"pid": worker.pid}

    def test_a_killed_workers_job_is_taken_over_after_its_lease(
        self, database: str, own_store: Database, tmp_path: Path
    ) -> None:
        """operations.md: "A worker that dies mid-job (crash, `SIGKILL`, lost host) stops
        extending it; once it has expired another worker takes the job over and runs it
        again (`attempts` counts every claim)"."""
        release = tmp_path / "release"
        job_id = enqueue_waiting_job(own_store, release)
        short_lease = {"EVENTYARD_JOB_LEASE_SECONDS": "2"}
        first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"

        with worker_process(database, first_log, test_kinds=True, **short_lease) as first:
            wait_for(
                lambda: bool(job_of(own_store, job_id).progress), "the job to start", first_log
            )
            first.kill()
            first.wait()
        orphaned = job_of(own_store, job_id)
        assert (orphaned.status, orphaned.progress["pid"]) == ("running", first.pid)
        release.touch()

        with worker_process(database, second_log, test_kinds=True, **short_lease) as second:
            wait_for(
                lambda: job_of(own_store, job_id).status == "completed", "takeover", second_log
            )

        done = job_of(own_store, job_id)
        assert done.result == {"pid": second.pid}
        assert done.attempts == 2
        assert done.started_at == orphaned.started_at

    def test_enqueue_and_show_refuse_what_they_do_not_know(self, database: str) -> None:
        unknown_kind = run(database, "jobs", "enqueue", "no.such.kind", check=False)
        assert unknown_kind.returncode != 0
        assert PURGE_IDEMPOTENCY_KEYS in unknown_kind.stderr
        bad_payload = run(
            database, "jobs", "enqueue", PURGE_IDEMPOTENCY_KEYS, "--payload", "[1]", check=False
        )
        assert bad_payload.returncode != 0
        assert "JSON object" in bad_payload.stderr
        missing = run(database, "jobs", "show", "0" * 24, check=False)
        assert missing.returncode == 1
        assert "No such job" in missing.stderr
        no_account = run(database, "jobs", "list", "--account", "0" * 24, check=False)
        assert no_account.returncode == 1
        assert "No account" in no_account.stderr
        for result in (unknown_kind, bad_payload, missing, no_account):
            assert "Traceback" not in result.stdout + result.stderr
        assert run(database, "jobs", "list", "--json").stdout == ""


def jobs_total(base_url: str, kind: str, status: str) -> float:
    r = httpx.get(f"{base_url}/metrics", timeout=30)
    assert r.status_code == 200, r.text
    return sum(
        sample.value
        for family in text_string_to_metric_families(r.text)
        for sample in family.samples
        if sample.name == "eventyard_jobs_total"
        and sample.labels == {"kind": kind, "status": status}
    )


def api_job(http: httpx.Client, account: NewAccount | dict[str, Any], job_id: str) -> Any:
    token = account["admin_token"] if isinstance(account, dict) else account.admin_token
    r = http.get(f"/api/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return r.json()


class TestServerWorker:
    def test_the_servers_own_worker_runs_a_job_the_api_shows(
        self, server: Server, http: httpx.Client, store: Database, account: NewAccount
    ) -> None:
        """operations.md: "By default every server process runs one worker thread";
        "`GET /api/v1/jobs/{id}` and `GET /api/v1/jobs?kind=&limit=` (admin token) show an
        account's jobs; another account's job is a 404"."""
        before = jobs_total(server.base_url, PURGE_IDEMPOTENCY_KEYS, "completed")
        job_id = enqueue_job(
            store,
            account=account.account,
            kind=PURGE_IDEMPOTENCY_KEYS,
            payload={},
            now=datetime.now(UTC),
        )

        wait_for(lambda: api_job(http, account, job_id)["status"] == "completed", "the server")

        shown = api_job(http, account, job_id)
        assert set(shown) == JOB_FIELDS
        assert (shown["id"], shown["kind"], shown["queue"]) == (
            job_id,
            PURGE_IDEMPOTENCY_KEYS,
            None,
        )
        assert (shown["attempts"], shown["max_attempts"], shown["error"]) == (1, 5, None)
        assert set(shown["result"]) == {"purged"}
        for moment in ("created_at", "started_at", "finished_at"):
            assert shown[moment].endswith("Z"), shown
        r = http.get(
            "/api/v1/jobs", params={"kind": PURGE_IDEMPOTENCY_KEYS}, headers=admin(account)
        )
        assert r.status_code == 200, r.text
        assert [j["id"] for j in r.json()["jobs"]] == [job_id]
        # Counted just after the job is settled, so maybe a moment after the API shows it.
        wait_for(
            lambda: jobs_total(server.base_url, PURGE_IDEMPOTENCY_KEYS, "completed") == before + 1,
            "the metric",
        )
        assert "job worker started" in server.logs()

    def test_another_account_gets_404_and_no_token_401(
        self, http: httpx.Client, store: Database, account: NewAccount
    ) -> None:
        """DESIGN.md: "Tenants never see each other's data"."""
        job_id = enqueue_job(
            store,
            account=account.account,
            kind=f"test.{account.account.id}",  # no worker claims it: it stays queued
            payload={},
            now=datetime.now(UTC),
        )
        other = create_account(store, "other tenant")

        r = http.get(f"/api/v1/jobs/{job_id}", headers=admin(other))
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "not_found"
        assert http.get("/api/v1/jobs", headers=admin(other)).json() == {"jobs": []}
        assert http.get(f"/api/v1/jobs/{job_id}").status_code == 401
        assert api_job(http, account, job_id)["status"] == "queued"
        r = http.get("/api/v1/jobs", params={"limit": 0}, headers=admin(account))
        assert r.status_code == 400, r.text

    def test_serve_no_worker_leaves_jobs_to_eventyard_worker(
        self, database: str, tmp_path: Path
    ) -> None:
        """operations.md: "`eventyard serve --no-worker --workers 4   # API only`";
        "`eventyard worker --once   # run at most one due job, then exit`"."""
        created = create_account_json(database, "No worker here")
        with (
            serve(database, tmp_path, "module", "--no-worker") as server,
            httpx.Client(base_url=server.base_url, timeout=30) as http,
        ):
            enqueued = run(
                database,
                "jobs",
                "enqueue",
                PURGE_IDEMPOTENCY_KEYS,
                "--account",
                created["account_id"],
            )
            job_id = enqueued.stdout.strip()
            assert api_job(http, created, job_id)["status"] == "queued"
            assert "job worker started" not in server.logs()

            run(database, "worker", "--once")

            done = api_job(http, created, job_id)
            assert (done["status"], done["result"]) == ("completed", {"purged": 0})
