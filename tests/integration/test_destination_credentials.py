"""The credentials a destination kind takes: its required fields and its optional ones.

A Netcore event needs an ``asset_id`` ("Pass website_id or app_id for which
the activity is mapped"): a ``netcore`` destination may carry one beside its
``api_key`` (``DestinationFormat.optional_credential_fields``).
"""

from __future__ import annotations

import pytest

from eventyard.core.errors import EventyardError
from eventyard.core.model import NewAccount
from eventyard.dialects.registry import destination_formats
from eventyard.services.destinations import manage
from eventyard.services.destinations.sealing import CredentialSealer
from eventyard.settings import Settings
from eventyard.storage.database import Database
from tests.integration.helpers import NOW

SETTINGS = Settings(url_allowlist="127.0.0.1/32")


def create(store: Database, account: NewAccount, credentials: dict[str, str]) -> dict[str, str]:
    body = {
        "name": "nc",
        "kind": "netcore",
        "url": "http://127.0.0.1:9",
        "credentials": credentials,
    }
    sealer = CredentialSealer(store, SETTINGS)
    created, _ = manage.create_destination(
        store, sealer, destination_formats(), SETTINGS, account.account, body, NOW
    )
    return sealer.open(created.sealed_credentials)


def test_an_optional_credential_is_kept_when_given(store: Database, account: NewAccount) -> None:
    assert create(store, account, {"api_key": "k", "asset_id": "site-7"}) == {
        "api_key": "k",
        "asset_id": "site-7",
    }
    assert create(store, account, {"api_key": "k"}) == {"api_key": "k"}


@pytest.mark.parametrize(
    ("credentials", "field"),
    [
        ({"api_key": "k", "asset": "x"}, "credentials.asset"),
        ({"api_key": "k", "asset_id": ""}, "credentials.asset_id"),
        ({"asset_id": "site-7"}, "credentials.api_key"),
    ],
)
def test_unknown_empty_or_missing_credentials_are_refused_naming_the_field(
    store: Database, account: NewAccount, credentials: dict[str, str], field: str
) -> None:
    with pytest.raises(EventyardError) as refused:
        create(store, account, credentials)
    assert [error.field for error in refused.value.errors] == [field]
