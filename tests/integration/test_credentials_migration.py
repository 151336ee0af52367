"""Upgrading a deployment whose accounts hold the credentials of before issue 20.

"Existing accounts' credentials are migrated into it": every secret printed
by ``accounts create`` before the upgrade keeps working after it, and each
becomes a credential with an id that can be listed and revoked.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from eventyard.core.credentials import hash_secret
from eventyard.core.errors import Unauthorized
from eventyard.services.credentials import authenticate, list_credentials, revoke_credential
from eventyard.storage.database import Database
from eventyard.storage.engine import normalize_database_url
from eventyard.storage.migrate import upgrade_database
from tests.support import filled_database

ACCOUNT = "0" * 23 + "1"
CREATED = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
#: (kind, public id, secret) as the old ``accounts create`` stored them.
OLD = [
    ("admin", None, "eya_old-admin-token"),
    ("netcore", None, "eyn_old-netcore-key"),
    ("clevertap", "ABC-DEF-GHIJ", "eyt_old-passcode"),
]


@pytest.fixture(params=["sqlite", "postgresql"])
def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database at revision 0007 with one account, its credentials and a console session."""
    with filled_database(request, tmp_path, _fill) as url:
        yield url


def _fill(url: str) -> None:
    upgrade_database(url, "0007")
    engine = create_engine(normalize_database_url(url))
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO accounts (id, name, settings, created_at)"
                " VALUES (:id, 'Old', '{}', :at)"
            ),
            {"id": ACCOUNT, "at": CREATED},
        )
        for kind, public_id, secret in OLD:
            conn.execute(
                text(
                    "INSERT INTO credentials (account_id, kind, public_id, secret_hash, created_at)"
                    " VALUES (:account, :kind, :public_id, :digest, :at)"
                ),
                {
                    "account": ACCOUNT,
                    "kind": kind,
                    "public_id": public_id,
                    "digest": hash_secret(secret),
                    "at": CREATED,
                },
            )
        conn.execute(
            text(
                "INSERT INTO console_sessions (id, account_id, csrf_token, created_at, expires_at)"
                " VALUES ('s', :account, 'c', :at, :later)"
            ),
            {"account": ACCOUNT, "at": CREATED, "later": datetime(2099, 1, 1, tzinfo=UTC)},
        )
    engine.dispose()


def test_old_secrets_keep_working_and_become_listed_revocable_credentials(
    old_database: str,
) -> None:
    upgrade_database(old_database)
    store = Database.from_url(old_database)
    try:
        for kind, public_id, secret in OLD:
            assert authenticate(store, kind, secret, public_id).id == ACCOUNT
        listed = list_credentials(store, ACCOUNT)
        assert sorted((c.kind, c.public_id) for c in listed) == sorted(
            (kind, public_id) for kind, public_id, _ in OLD
        )
        assert all(c.prefix is None and c.name is None for c in listed)
        assert all(c.created_at == CREATED and c.revoked_at is None for c in listed)
        assert len({c.id for c in listed}) == len(OLD)

        netcore = next(c for c in listed if c.kind == "netcore")
        revoke_credential(store, ACCOUNT, netcore.id)
        with pytest.raises(Unauthorized):
            authenticate(store, "netcore", "eyn_old-netcore-key")

        # A console session of before recorded no credential: it is ended.
        with store.engine.connect() as conn:
            sessions = conn.execute(text("SELECT count(*) FROM console_sessions")).scalar_one()
        assert sessions == 0
    finally:
        store.dispose()
