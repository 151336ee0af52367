"""Accounts: creating them (with a credential of each kind), reading them, their settings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from eventyard.core.account_settings import apply_settings_patch
from eventyard.core.credentials import ADMIN, CredentialKind
from eventyard.core.errors import NotFound
from eventyard.core.ids import is_id, new_id
from eventyard.core.model import Account, NewAccount
from eventyard.core.signatures import new_signing_secret
from eventyard.services.credentials import Authenticator, issue_credential
from eventyard.services.ports import Store


def create_account(
    store: Store,
    name: str,
    settings: dict[str, Any] | None = None,
    *,
    credential_kinds: Sequence[CredentialKind],
) -> NewAccount:
    """Create an account with a credential of each kind (and the admin token).

    The secrets are returned in clear text this once only; the store keeps
    their digests.
    """
    name = name.strip()
    if not name:
        raise ValueError("an account needs a name")
    checked = apply_settings_patch({}, settings or {})
    account = Account(
        id=new_id(),
        name=name,
        settings=checked,
        created_at=datetime.now(UTC),
        signing_secret=new_signing_secret(),
    )
    shown: dict[str, str] = {}
    with store.unit_of_work() as uow:
        uow.accounts.add(account)
        for kind in (ADMIN, *(k for k in credential_kinds if k.kind != ADMIN.kind)):
            shown.update(issue_credential(uow, account.id, kind, account.created_at).shown)
        uow.commit()
    return NewAccount(account=account, secrets=shown)


def get_account(store: Store, account_id: str) -> Account:
    """The account, or ``NotFound``."""
    with store.unit_of_work(write=False) as uow:
        account = uow.accounts.get(account_id) if is_id(account_id) else None
    if account is None:
        raise NotFound(f"No account {account_id!r}")
    return account


def update_account_settings(
    store: Store, account: Account, patch: object, authenticator: Authenticator | None = None
) -> Account:
    """Apply a JSON merge patch to the account's settings and return the account as stored.

    A key set to ``null`` goes back to its default; an unknown key or a bad
    value is a 400 naming it. The account's row is locked while it changes, so
    concurrent patches of different keys both take effect. ``authenticator``
    (this process's) forgets the account at once; other server processes see
    the new settings at their next credential check (``credential_check_seconds``).
    """
    with store.unit_of_work() as uow:
        current = uow.accounts.get(account.id, for_update=True)
        if current is None:
            raise NotFound(f"No account {account.id!r}")
        settings = apply_settings_patch(current.settings, patch)
        uow.accounts.update_settings(account.id, settings)
        uow.commit()
    if authenticator is not None:
        authenticator.forget(account_id=account.id)
    return replace(current, settings=settings)


def list_accounts(store: Store) -> list[Account]:
    with store.unit_of_work(write=False) as uow:
        return uow.accounts.list()


def count_accounts(store: Store) -> int:
    with store.unit_of_work(write=False) as uow:
        return uow.accounts.count()
