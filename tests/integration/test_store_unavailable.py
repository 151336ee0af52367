"""An exhausted connection pool is a 503 with Retry-After, never a 500."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from eventyard.core.errors import StoreUnavailable
from eventyard.core.model import NewAccount
from eventyard.services.credentials import authenticate
from eventyard.storage.database import Database
from eventyard.storage.migrate import upgrade_database


def test_waiting_too_long_for_a_pooled_connection_is_store_unavailable(
    database_url: str, account: NewAccount
) -> None:
    store = Database.from_url(database_url, pool_size=1, pool_timeout_seconds=0.2)
    try:
        # pool_size=1 allows one more connection in overflow: hold both.
        with (
            store.engine.connect(),
            store.engine.connect(),
            pytest.raises(StoreUnavailable) as caught,
        ):
            authenticate(store, "admin", account.admin_token)
        assert caught.value.status == 503
        assert caught.value.headers["Retry-After"].isdigit()
        # Once connections are free again the same store works.
        assert authenticate(store, "admin", account.admin_token).id == account.account.id
    finally:
        store.dispose()


def test_sqlite_sql_errors_are_bugs_not_outages(tmp_path: Path) -> None:
    """Only what a retry can cure is a 503; a missing table on SQLite is a 500 to investigate."""
    store = Database.from_url(f"sqlite:///{tmp_path / 'unmigrated.db'}")
    try:
        with pytest.raises(OperationalError, match="no such table"):
            authenticate(store, "admin", "any-token")
    finally:
        store.dispose()


def test_sqlite_writers_of_one_process_wait_at_most_the_busy_timeout(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    upgrade_database(url)
    store = Database.from_url(url, sqlite_busy_timeout_ms=200)
    try:
        with store.unit_of_work():  # holds the process's writer turn
            waiting = threading.Thread(target=lambda: outcome.append(try_write(store)))
            outcome: list[str] = []
            waiting.start()
            waiting.join(30)
        assert outcome == ["StoreUnavailable 503"]
    finally:
        store.dispose()


def try_write(store: Database) -> str:
    try:
        with store.unit_of_work():
            return "wrote"
    except StoreUnavailable as exc:
        return f"StoreUnavailable {exc.status}"
