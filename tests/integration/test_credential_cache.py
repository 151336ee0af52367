"""With the cache, a known credential costs no database round trip; a wrong one always does."""

from __future__ import annotations

import pytest

from eventyard.core.errors import Unauthorized
from eventyard.core.model import NewAccount
from eventyard.services.accounts import CredentialCache, authenticate
from eventyard.storage.database import Database
from tests.integration.helpers import counting_statements


def test_second_check_of_a_good_credential_skips_the_database(
    store: Database, account: NewAccount
) -> None:
    cache = CredentialCache(ttl_seconds=30)
    first = authenticate(store, "netcore", account.netcore_api_key, cache=cache)
    with counting_statements(store.engine) as statements:
        again = authenticate(store, "netcore", account.netcore_api_key, cache=cache)
    assert again == first
    assert statements == []


def test_wrong_credentials_are_never_remembered(store: Database, account: NewAccount) -> None:
    cache = CredentialCache(ttl_seconds=30)
    for _ in range(2):
        with counting_statements(store.engine) as statements, pytest.raises(Unauthorized):
            authenticate(store, "netcore", account.netcore_api_key + "x", cache=cache)
        assert any("credentials" in s for s in statements)
    # A right secret of another kind is not a hit either.
    authenticate(store, "admin", account.admin_token, cache=cache)
    with pytest.raises(Unauthorized):
        authenticate(store, "netcore", account.admin_token, cache=cache)
