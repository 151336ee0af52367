"""Database outage under load: 503 with Retry-After while PostgreSQL is gone, recovery by itself.

Issue 9: "stop PostgreSQL with ``pg_ctlcluster … stop -m immediate`` under
load (or kill the backend serving eventyard's connections): eventyard
answers 503 with ``Retry-After`` while the database is gone, never a 2xx it
cannot keep, and recovers by itself when it returns."

The database is a PostgreSQL cluster of the test's own
(``tests/reliability/private_postgres.py``), so that stopping it disturbs
no other test. One server process serves the whole test: it is never
restarted. Clients of every dialect in ``DIALECTS`` retry each
unacknowledged batch with its ``Idempotency-Key`` (after 0.1 s, sooner than
the ``Retry-After`` asks, to see many answers during the outage).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from eventyard.storage.database import Database
from eventyard.storage.engine import normalize_database_url
from eventyard.storage.migrate import upgrade_database
from tests.reliability.private_postgres import PrivateCluster, private_postgres
from tests.reliability.retrying_clients import Answer, DialectLoad, Progress, check_stored_once
from tests.support import running_server

CLIENTS_PER_DIALECT = 2
#: Acknowledged batches between the phases of the test.
LOAD_BETWEEN_PHASES = 20
#: The database stays down at least this long, and until the clients got this
#: many answers meanwhile.
OUTAGE_SECONDS = 3
ANSWERS_DURING_OUTAGE = 40
SERVER_ENV = {
    "EVENTYARD_RATE_LIMIT_PER_SECOND": "0",
    # A refused connection fails at once; these bound a hung one.
    "EVENTYARD_DB_CONNECT_TIMEOUT_SECONDS": "2",
    "EVENTYARD_DB_POOL_TIMEOUT_SECONDS": "5",
}


def terminate_backends(cluster: PrivateCluster) -> int:
    """``pg_terminate_backend`` on every client connection but this one; how many ended."""
    admin = create_engine(normalize_database_url(cluster.url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return len(
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
                    )
                ).all()
            )
    finally:
        admin.dispose()


def answers_between(answers: list[Answer], start: float, end: float) -> list[Answer]:
    """The answers to requests sent after ``start`` and answered before ``end``."""
    return [a for a in answers if a.asked >= start and a.answered <= end]


def test_postgres_stopped_under_load_is_503_with_retry_after_and_recovers_without_restart(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    with private_postgres() as cluster:
        upgrade_database(cluster.url)
        store = Database.from_url(cluster.url, pool_size=1)
        stop = threading.Event()
        progress = Progress()
        with running_server(cluster.url, tmp_path / "server.log", SERVER_ENV) as server:
            load = DialectLoad.prepare(
                cluster.url,
                server.base_url,
                stop,
                per_dialect=CLIENTS_PER_DIALECT,
                on_acknowledged=progress.note,
            )
            load.start()
            try:
                progress.wait_for_more(LOAD_BETWEEN_PHASES)

                # The outage: every backend ends at once, the database is gone.
                cluster.stop_immediately()
                down = time.monotonic()
                deadline = down + 60
                time.sleep(OUTAGE_SECONDS)
                while len(answers_between(load.answers, down, time.monotonic())) < (
                    ANSWERS_DURING_OUTAGE
                ):
                    assert time.monotonic() < deadline, "too few answers during the outage"
                    time.sleep(0.1)
                restarting = time.monotonic()
                cluster.start()
                up = time.monotonic()
                progress.wait_for_more(LOAD_BETWEEN_PHASES)
                recovered = next(m for m in progress.moments if m > up)

                # Connections killed under the server's feet, the database staying up.
                terminated = terminate_backends(cluster)
                progress.wait_for_more(LOAD_BETWEEN_PHASES)
            finally:
                stop.set()
                load.join()
            assert server.process.poll() is None, "the server died"
        try:
            unexpected = load.unexpected()
            assert not unexpected, unexpected[:5]
            answers = load.answers
            during = answers_between(answers, down, restarting)
            assert len(during) >= ANSWERS_DURING_OUTAGE
            # Not a 2xx it cannot keep, nor a 500, nor a dropped connection: a 503
            # with Retry-After, which every dialect's clients know to retry.
            wrong = [a for a in during if a.status != 503 or not (a.retry_after or "").isdigit()]
            assert not wrong, wrong[:5]
            # Every batch acknowledged before, during the edges, after: stored once.
            requests, markers = check_stored_once(store, load.clients)
        finally:
            store.dispose()
        assert terminated > 0
    print(
        f"\noutage test: {requests} acknowledged requests, {markers} markers stored once each, "
        f"{sum(c.retries for c in load.clients)} retries, "
        f"{sum(a.status == 503 for a in answers)} 503s ({len(during)} answers while the database "
        f"was down {restarting - down:.1f} s, all 503 with Retry-After), "
        f"{sum(a.status is None for a in answers)} connection failures, "
        f"first acknowledgement {recovered - up:.2f} s after PostgreSQL was back, "
        f"{terminated} backends terminated, {time.monotonic() - started:.1f} s"
    )
