"""An exhausted connection pool is a 503 with Retry-After, never a 500."""

from __future__ import annotations

import pytest

from eventyard.core.errors import StoreUnavailable
from eventyard.core.model import NewAccount
from eventyard.services.accounts import authenticate
from eventyard.storage.database import Database


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
