"""Accounts and their credentials."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from eventyard.core.account_settings import apply_settings_patch
from eventyard.core.credentials import (
    ADMIN,
    CredentialKind,
    digests_match,
    hash_secret,
    new_secret,
)
from eventyard.core.errors import NotFound, Unauthorized
from eventyard.core.ids import is_id, new_id
from eventyard.core.model import Account, NewAccount
from eventyard.core.signatures import new_signing_secret
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
    credentials: list[tuple[str, str | None, str]] = []
    for kind in (ADMIN, *(k for k in credential_kinds if k.kind != ADMIN.kind)):
        secret = new_secret(kind.prefix)
        public_id = None
        if kind.public_id_name is not None and kind.new_public_id is not None:
            public_id = kind.new_public_id()
            shown[kind.public_id_name] = public_id
        shown[kind.secret_name] = secret
        credentials.append((kind.kind, public_id, hash_secret(secret)))
    with store.unit_of_work() as uow:
        uow.accounts.add(account, credentials)
        uow.commit()
    return NewAccount(account=account, secrets=shown)


class CredentialCache:
    """Accounts recently authenticated in this process, for ``ttl_seconds``.

    Spares every request a database round trip. Only successful look-ups are
    kept (wrong secrets always go to the database, so they cannot fill the
    cache); keys are digests, never secrets. The price: an account's settings
    or a removed credential take up to ``ttl_seconds`` to be seen here.
    """

    def __init__(
        self,
        ttl_seconds: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[tuple[str, str, str | None], tuple[float, Account]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str | None]) -> Account | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self.clock():
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: tuple[str, str, str | None], account: Account) -> None:
        if self.ttl_seconds <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # rare; cheaper than tracking age order
            self._entries[key] = (self.clock() + self.ttl_seconds, account)

    def clear(self, account_id: str | None = None) -> None:
        """Forget ``account_id``'s entries (every entry without one), e.g. after a settings change.

        Only this process's cache: other processes see the change when their
        entries expire, at most ``ttl_seconds`` later.
        """
        with self._lock:
            if account_id is None:
                self._entries.clear()
                return
            for key in [k for k, (_, a) in self._entries.items() if a.id == account_id]:
                del self._entries[key]


def cached_account(
    cache: CredentialCache, kind: str, secret: str | None, public_id: str | None = None
) -> Account | None:
    """The account of a credential :func:`authenticate` checked lately, or ``None``."""
    if not secret:
        return None
    return cache.get((kind, hash_secret(secret), public_id))


def authenticate(
    store: Store,
    kind: str,
    secret: str | None,
    public_id: str | None = None,
    cache: CredentialCache | None = None,
) -> Account:
    """The account a credential belongs to, or ``Unauthorized``.

    The lookup goes through the digest's index; the digest found is compared
    again with ``hmac.compare_digest`` so that no comparison leaks timing.
    """
    if not secret:
        raise Unauthorized("Missing credentials")
    digest = hash_secret(secret)
    key = (kind, digest, public_id)
    if cache is not None and (cached := cache.get(key)) is not None:
        return cached
    with store.unit_of_work(write=False) as uow:
        found = uow.accounts.find_by_credential(kind, digest, public_id)
    if found is None or not digests_match(found[1], secret):
        raise Unauthorized("Invalid credentials")
    if cache is not None:
        cache.put(key, found[0])
    return found[0]


def get_account(store: Store, account_id: str) -> Account:
    """The account, or ``NotFound``."""
    with store.unit_of_work(write=False) as uow:
        account = uow.accounts.get(account_id) if is_id(account_id) else None
    if account is None:
        raise NotFound(f"No account {account_id!r}")
    return account


def update_account_settings(
    store: Store, account: Account, patch: object, cache: CredentialCache | None = None
) -> Account:
    """Apply a JSON merge patch to the account's settings and return the account as stored.

    A key set to ``null`` goes back to its default; an unknown key or a bad
    value is a 400 naming it. The account's row is locked while it changes, so
    concurrent patches of different keys both take effect. ``cache`` (this
    process's) forgets the account at once; other server processes keep the
    old settings for up to ``auth_cache_seconds``.
    """
    with store.unit_of_work() as uow:
        current = uow.accounts.get(account.id, for_update=True)
        if current is None:
            raise NotFound(f"No account {account.id!r}")
        settings = apply_settings_patch(current.settings, patch)
        uow.accounts.update_settings(account.id, settings)
        uow.commit()
    if cache is not None:
        cache.clear(account.id)
    return replace(current, settings=settings)


def list_accounts(store: Store) -> list[Account]:
    with store.unit_of_work(write=False) as uow:
        return uow.accounts.list()


def count_accounts(store: Store) -> int:
    with store.unit_of_work(write=False) as uow:
        return uow.accounts.count()
