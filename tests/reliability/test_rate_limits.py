"""Per-key rate limits on every dialect: 429 with ``Retry-After``, nothing of it stored.

Issue 9 asks for "per-key rate limits"; Ortto's spec names the answer
("429 Too Many Requests - Rate limit exceeded"). Every dialect's key gets
``EVENTYARD_RATE_LIMIT_PER_SECOND`` requests per second with a burst of
``EVENTYARD_RATE_LIMIT_BURST``; the refused request stores nothing, and a
key of another account (or of another dialect) is not held up.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from eventyard.storage.database import Database
from eventyard.storage.migrate import upgrade_database
from tests.reliability.dialects import DIALECTS, Dialect, markers, stored_markers
from tests.support import create_account_at, running_server

ENV = {"EVENTYARD_RATE_LIMIT_PER_SECOND": "0.1", "EVENTYARD_RATE_LIMIT_BURST": "2"}


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_a_key_over_its_rate_gets_429_with_retry_after_and_nothing_is_stored(
    empty_database: str, tmp_path: Path, dialect: Dialect
) -> None:
    upgrade_database(empty_database)
    account = create_account_at(empty_database, "limited")
    other = create_account_at(empty_database, "not held up")
    sent = markers(f"rate-{uuid.uuid4().hex[:6]}", 3, contacts=3)
    with (
        running_server(empty_database, tmp_path / "server.log", ENV) as srv,
        httpx.Client(base_url=srv.base_url, timeout=30) as http,
    ):
        dialect.prepare(http, account)
        dialect.prepare(http, other)
        answers = [dialect.batch(account, [m]).send(http) for m in sent]
        assert [dialect.accepted(a) for a in answers] == [True, True, False]
        refused = answers[2]
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["Retry-After"]) >= 1
        assert "too many requests" in refused.text.lower(), refused.text
        assert dialect.accepted(dialect.batch(other, ["other-account"]).send(http))
    store = Database.from_url(empty_database, pool_size=1)
    try:
        assert sorted(stored_markers(store, account.account.id, dialect)) == sorted(sent[:2])
    finally:
        store.dispose()
