"""Retention as real processes: ``eventyard purge`` and the workers' scheduled purge.

docs/operations.md, "Retention". Cordial: "Contact activity data will be
stored for 18 months, after which it will be systematically purged." Each
test gets a database of its own (``empty_database``): a purge of every
account there touches no other test's activities.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from eventyard.core.model import Account
from eventyard.services.jobs import list_jobs
from eventyard.services.retention import PURGE_ACTIVITIES
from eventyard.storage.database import Database
from tests.e2e.test_cli import run
from tests.e2e.test_job_workers import database, own_store, wait_for, worker_process
from tests.integration.test_retention import DAY, ages_of, new_account, store_activities

__all__ = ["database", "own_store"]  # fixtures


def accounts_with_old_activities(store: Database) -> tuple[Account, Account]:
    """An account keeping 30 days and one keeping the default 548, each with
    activities 2, 45 and 600 days old."""
    short = new_account(store, {"retention_days": 30})
    default = new_account(store)
    for account in (short, default):
        store_activities(store, account, 2 * DAY, 45 * DAY, 600 * DAY)
    return short, default


class TestPurgeCommand:
    def test_dry_run_prints_what_would_go_and_changes_nothing(
        self, database: str, own_store: Database
    ) -> None:
        """operations.md: "`eventyard purge --dry-run` ... what a purge would remove now;
        changes nothing"."""
        short, default = accounts_with_old_activities(own_store)

        result = run(database, "purge", "--dry-run")

        rows = {line.split("\t")[0]: line.split("\t") for line in result.stdout.splitlines()}
        assert rows[short.id][1:3] == [short.name, "30"]
        # On PostgreSQL the 600-day-old ones sit in a month every account has let go.
        in_partitions = "0" if own_store.backend == "sqlite" else "1"
        assert rows[short.id][4:] == ["2", in_partitions]
        assert rows[default.id][2] == "548"
        assert rows[default.id][4:] == ["1", in_partitions]
        assert "Activities would purge: 3" in result.stdout
        assert "Partitions that would be dropped: " in result.stdout
        assert ages_of(own_store, short) == [2, 45, 600]
        assert ages_of(own_store, default) == [2, 45, 600]

    def test_purges_and_reports_as_json(self, database: str, own_store: Database) -> None:
        short, default = accounts_with_old_activities(own_store)
        dry = orjson.loads(run(database, "purge", "--dry-run", "--json").stdout)

        report = orjson.loads(run(database, "purge", "--json").stdout)

        assert ages_of(own_store, short) == [2]
        assert ages_of(own_store, default) == [2, 45]
        counts = {a["account_id"]: a["activities"] for a in report["accounts"]}
        assert counts == {short.id: 2, default.id: 1}
        assert {a["account_id"]: a["activities"] for a in dry["accounts"]} == counts
        assert (dry["dry_run"], report["dry_run"], report["activities"]) == (True, False, 3)

    def test_account_option_purges_that_account_only(
        self, database: str, own_store: Database
    ) -> None:
        short, default = accounts_with_old_activities(own_store)

        result = run(database, "purge", "--account", default.id)

        assert ages_of(own_store, default) == [2, 45]
        assert ages_of(own_store, short) == [2, 45, 600]
        assert "Activities purged: 1" in result.stdout
        assert "dropped: none" in result.stdout

    def test_an_unknown_account_ends_with_exit_code_1(self, database: str) -> None:
        result = run(database, "purge", "--account", "0" * 24, check=False)
        assert result.returncode == 1
        assert result.stderr.startswith("Error: No account")
        assert "Traceback" not in result.stderr


class TestScheduledPurge:
    def test_a_worker_purges_on_its_own_every_interval(
        self, database: str, own_store: Database, tmp_path: Path
    ) -> None:
        """operations.md: "The job workers enqueue the job `maintenance.purge_activities`
        every `EVENTYARD_RETENTION_INTERVAL_SECONDS`", with nobody enqueuing it."""
        short, default = accounts_with_old_activities(own_store)
        log_path = tmp_path / "worker.log"

        with worker_process(database, log_path, EVENTYARD_RETENTION_INTERVAL_SECONDS="0.5"):
            wait_for(
                lambda: any(
                    job.status == "completed"
                    for job in list_jobs(own_store, None, kind=PURGE_ACTIVITIES)
                ),
                "a completed scheduled purge",
                log_path,
            )

        assert ages_of(own_store, short) == [2]
        assert ages_of(own_store, default) == [2, 45]
        jobs = list_jobs(own_store, None, kind=PURGE_ACTIVITIES)
        completed = [job for job in jobs if job.status == "completed"]
        assert completed[-1].queue == PURGE_ACTIVITIES
        result = completed[-1].result or {}
        assert {a["account_id"]: a["activities"] for a in result["accounts"]} == {
            short.id: 2,
            default.id: 1,
        }
        assert all(job.status != "failed" for job in jobs)
