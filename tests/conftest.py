"""Fixtures: every storage test runs on SQLite and on PostgreSQL.

PostgreSQL comes from ``EVENTYARD_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``); each run creates a fresh
database beside it and drops it at the end. Locally a missing PostgreSQL
skips those tests loudly; with ``CI=true`` it fails them.

``EVENTYARD_TEST_PGBOUNCER=1`` runs the PostgreSQL tests through a PgBouncer
in transaction pooling mode that the run starts (tests/pgbouncer.py): the
``postgresql`` backend's URL, the servers and the CLI go through it, with
prepared statements off (``EVENTYARD_DATABASE_PREPARED_STATEMENTS=false``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from eventyard.core.model import NewAccount
from eventyard.dialects.registry import create_account
from eventyard.storage.database import Database
from eventyard.storage.engine import build_engine, normalize_database_url
from eventyard.storage.migrate import upgrade_database
from tests.pgbouncer import running_pgbouncer
from tests.support import (
    DEFAULT_POSTGRES_URL,
    Server,
    running_server,
    scratch_postgres_database,
)

BACKENDS = ("sqlite", "postgresql")
_POSTGRES_SKIPPED: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say loudly, at the end where nobody misses it, that half the suite did not run."""
    if _POSTGRES_SKIPPED:
        terminalreporter.section("POSTGRESQL TESTS WERE SKIPPED", sep="!", red=True, bold=True)
        terminalreporter.write_line(_POSTGRES_SKIPPED[0], red=True, bold=True)
        terminalreporter.write_line(
            "Start PostgreSQL or set EVENTYARD_TEST_POSTGRES_URL; with CI=true this fails.",
            red=True,
        )


def _postgres_admin_url() -> str:
    return os.environ.get("EVENTYARD_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test run."""
    try:
        probe = create_engine(normalize_database_url(_postgres_admin_url()))
        with probe.connect() as conn:
            conn.execute(text("SELECT 1"))
        probe.dispose()
    except Exception as exc:
        message = f"PostgreSQL is not reachable at {_postgres_admin_url()}: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: PostgreSQL is required)")
        _POSTGRES_SKIPPED.append(message)
        pytest.skip(f"SKIPPING POSTGRESQL TESTS: {message}")
    with scratch_postgres_database(_postgres_admin_url()) as url:
        if not _through_pgbouncer():
            yield url
            return
        with running_pgbouncer(url) as bouncer, _without_prepared_statements():
            yield bouncer.url(url)


def _through_pgbouncer() -> bool:
    return os.environ.get("EVENTYARD_TEST_PGBOUNCER", "") not in ("", "0", "false")


@contextmanager
def _without_prepared_statements() -> Iterator[None]:
    """Every engine of this process, and every server and CLI it starts, without them."""
    defaults = build_engine.__kwdefaults__
    assert defaults is not None
    before_env = os.environ.get("EVENTYARD_DATABASE_PREPARED_STATEMENTS")
    before = defaults["prepared_statements"]
    defaults["prepared_statements"] = False
    os.environ["EVENTYARD_DATABASE_PREPARED_STATEMENTS"] = "false"
    try:
        yield
    finally:
        defaults["prepared_statements"] = before
        if before_env is None:
            os.environ.pop("EVENTYARD_DATABASE_PREPARED_STATEMENTS", None)
        else:
            os.environ["EVENTYARD_DATABASE_PREPARED_STATEMENTS"] = before_env


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def database_url(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> str:
    """A migrated database of the current backend, shared by the session."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'eventyard.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    upgrade_database(url)
    return url


@pytest.fixture(scope="session")
def store(database_url: str) -> Iterator[Database]:
    database = Database.from_url(database_url, pool_size=4)
    yield database
    database.dispose()


@pytest.fixture
def account(store: Database) -> NewAccount:
    """A new account per test: tenants are isolated, so tests are too."""
    return create_account(store, f"test-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="session")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real uvicorn server on the current backend."""
    log_path: Path = tmp_path_factory.mktemp("server") / "server.log"
    with running_server(database_url, log_path) as srv:
        yield srv


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield client
