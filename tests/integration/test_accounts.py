"""Accounts and their dialect credentials, as stored.

DESIGN.md: an account "Holds dialect credentials (Netcore api-key, Cordial
basic-auth key, Ortto X-Api-Key, CleverTap account id + passcode) ... Secrets
stored hashed; compared in constant time."
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest
from sqlalchemy import LargeBinary, select

from eventyard.core.errors import Unauthorized
from eventyard.core.model import NewAccount
from eventyard.dialects.registry import CREDENTIAL_KINDS as KINDS
from eventyard.dialects.registry import create_account
from eventyard.services.accounts import list_accounts
from eventyard.services.credentials import authenticate
from eventyard.storage.database import Database
from eventyard.storage.tables import credentials, metadata

#: Every credential kind an account holds: admin and each dialect's.
CREDENTIAL_KINDS = tuple(kind.kind for kind in KINDS)


def secrets_of(created: NewAccount) -> dict[str, str]:
    """The clear-text secret of each credential kind, as shown once at creation."""
    return {
        "admin": created.admin_token,
        "netcore": created.netcore_api_key,
        "cordial": created.cordial_api_key,
        "ortto": created.ortto_api_key,
        "clevertap": created.clevertap_passcode,
        "segment": created.segment_write_key,
        "mixpanel": created.mixpanel_project_token,
        "mixpanel_import": created.mixpanel_api_secret,
        "customerio": created.customerio_api_key,
        "amplitude": created.amplitude_api_key,
        "posthog": created.posthog_api_key,
    }


def public_id_for(kind: str, created: NewAccount) -> str | None:
    public_ids = {
        "clevertap": created.clevertap_account_id,
        "customerio": created.customerio_site_id,
    }
    return public_ids.get(kind)


def forms_of(secret: str) -> list[str]:
    """Ways a secret could sit in a column without being hashed."""
    _prefix, _, random_part = secret.partition("_")
    return [
        secret,
        random_part,
        secret.encode().hex(),
        base64.b64encode(secret.encode()).decode(),
        secret[::-1],
    ]


def every_stored_text(store: Database) -> list[tuple[str, str, str]]:
    """(table, column, value) for every non-null value of every table, as text."""
    found: list[tuple[str, str, str]] = []
    with store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)).mappings():
                for column in table.columns:
                    value: Any = row[column.name]
                    if value is None:
                        continue
                    if isinstance(column.type, LargeBinary):
                        value = bytes(value).decode("utf-8", "replace")
                    found.append((table.name, column.name, str(value)))
    return found


class TestSecretsAtRest:
    def test_no_secret_is_stored_in_clear_anywhere(
        self, store: Database, account: NewAccount
    ) -> None:
        """A copy of the database must not hand out working credentials."""
        forms = {
            form: kind for kind, secret in secrets_of(account).items() for form in forms_of(secret)
        }
        leaks = [
            (table, column, kind)
            for table, column, value in every_stored_text(store)
            for form, kind in forms.items()
            if form in value
        ]
        assert leaks == []

    def test_each_credential_is_one_row_holding_a_digest(
        self, store: Database, account: NewAccount
    ) -> None:
        with store.engine.connect() as conn:
            rows = conn.execute(
                select(credentials).where(credentials.c.account_id == account.account.id)
            ).all()

        assert sorted(r.kind for r in rows) == sorted(CREDENTIAL_KINDS)
        secrets = set(secrets_of(account).values())
        for row in rows:
            assert len(row.secret_hash) == 64
            assert int(row.secret_hash, 16) >= 0  # hex digits only
            assert row.secret_hash not in secrets
        # The CleverTap account id is public: it is kept as it is, to pair with the passcode.
        assert {r.kind: r.public_id for r in rows} == {
            "admin": None,
            "netcore": None,
            "cordial": None,
            "ortto": None,
            "clevertap": account.clevertap_account_id,
            "segment": None,
            "mixpanel": None,
            "mixpanel_import": None,
            "customerio": account.customerio_site_id,
            "amplitude": None,
            "posthog": None,
        }

    def test_every_account_gets_its_own_secrets(self, store: Database, account: NewAccount) -> None:
        other = create_account(store, f"other-{uuid.uuid4().hex[:6]}")

        mine, theirs = secrets_of(account), secrets_of(other)
        assert len(set(mine.values()) | set(theirs.values())) == 2 * len(CREDENTIAL_KINDS)
        assert account.clevertap_account_id != other.clevertap_account_id


class TestAuthenticate:
    @pytest.mark.parametrize("kind", CREDENTIAL_KINDS)
    def test_each_dialect_secret_opens_its_own_account(
        self, store: Database, account: NewAccount, kind: str
    ) -> None:
        found = authenticate(store, kind, secrets_of(account)[kind], public_id_for(kind, account))
        assert found.id == account.account.id
        assert found.name == account.account.name

    @pytest.mark.parametrize("kind", CREDENTIAL_KINDS)
    def test_a_secret_of_another_kind_is_refused(
        self, store: Database, account: NewAccount, kind: str
    ) -> None:
        """An Ortto key is not a Netcore api-key: each dialect accepts only its own."""
        for other_kind, secret in secrets_of(account).items():
            if other_kind == kind:
                continue
            with pytest.raises(Unauthorized) as refused:
                authenticate(store, kind, secret, public_id_for(kind, account))
            assert refused.value.status == 401

    @pytest.mark.parametrize("kind", CREDENTIAL_KINDS)
    def test_a_wrong_or_missing_secret_is_refused(
        self, store: Database, account: NewAccount, kind: str
    ) -> None:
        right = secrets_of(account)[kind]
        public_id = public_id_for(kind, account)
        for wrong in [right[:-1], right + "x", right.upper(), f" {right}", "", None]:
            with pytest.raises(Unauthorized):
                authenticate(store, kind, wrong, public_id)

    def test_clevertap_needs_the_account_id_and_passcode_that_belong_together(
        self, store: Database, account: NewAccount
    ) -> None:
        """CleverTap: "The X-CleverTap-Account-Id and X-CleverTap-Passcode are
        used to authenticate the request." A passcode opens an account only
        together with that account's own id."""
        other = create_account(store, f"other-{uuid.uuid4().hex[:6]}")
        passcode = account.clevertap_passcode

        found = authenticate(store, "clevertap", passcode, account.clevertap_account_id)
        assert found.id == account.account.id
        for account_id in [
            other.clevertap_account_id,
            "AAA-BBB-CCCC",
            account.netcore_api_key,
            None,
        ]:
            with pytest.raises(Unauthorized):
                authenticate(store, "clevertap", passcode, account_id)
        with pytest.raises(Unauthorized):
            authenticate(store, "clevertap", other.clevertap_passcode, account.clevertap_account_id)


class TestCreateAccount:
    def test_settings_are_stored_with_the_account(self, store: Database) -> None:
        settings = {"primary_kinds": ["email", "identity"], "retention_days": 30}
        name = f"with-settings-{uuid.uuid4().hex[:6]}"
        created = create_account(store, f"  {name} ", settings)

        [stored] = [a for a in list_accounts(store) if a.id == created.account.id]
        assert stored.settings == settings
        assert stored.primary_kinds == ("email", "identity")
        assert stored.name == name
        assert authenticate(store, "admin", created.admin_token).settings == settings

    def test_an_account_needs_a_name_and_nothing_is_stored_without_one(
        self, store: Database
    ) -> None:
        before = {a.id for a in list_accounts(store)}
        with pytest.raises(ValueError, match="name"):
            create_account(store, "   ")
        assert {a.id for a in list_accounts(store)} == before
