"""What the services need from storage. ``eventyard.storage`` implements it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from eventyard.core.identifiers import Identifier
from eventyard.core.identity import ContactRef, ResolutionPlan
from eventyard.core.model import Account, ActivityPage, Contact, StoredResponse


class AccountRepository(Protocol):
    def add(
        self, account: Account, credentials: Sequence[tuple[str, str | None, str]]
    ) -> None: ...
    def find_by_credential(
        self, kind: str, secret_hash: str, public_id: str | None = None
    ) -> tuple[Account, str] | None: ...
    def list(self) -> list[Account]: ...
    def count(self) -> int: ...


class ContactRepository(Protocol):
    def find_owners(
        self, account_id: str, identifiers: Iterable[Identifier]
    ) -> dict[Identifier, ContactRef]: ...
    def apply_resolution(self, account_id: str, plan: ResolutionPlan, now: datetime) -> None: ...
    def find_by_identifier(self, account_id: str, identifier: Identifier) -> list[Contact]: ...
    def get(self, account_id: str, contact_id: str) -> Contact | None: ...
    def identity_events(self, account_id: str, contact_id: str) -> list[dict[str, Any]]: ...


class ActivityRepository(Protocol):
    def insert(self, rows: Sequence[dict[str, Any]]) -> int: ...
    def page(
        self, account_id: str, contact_id: str, limit: int, cursor: tuple[datetime, str] | None
    ) -> ActivityPage: ...


class IdempotencyRepository(Protocol):
    def claim(
        self, account_id: str, key: str, fingerprint: str, now: datetime, ttl_seconds: int
    ) -> tuple[str, StoredResponse | None]: ...
    def complete(self, account_id: str, key: str, response: StoredResponse) -> None: ...


class UnitOfWork(Protocol):
    accounts: AccountRepository
    contacts: ContactRepository
    activities: ActivityRepository
    idempotency: IdempotencyRepository

    def commit(self) -> None: ...
    def savepoint(self) -> AbstractContextManager[None]: ...


class Store(Protocol):
    def unit_of_work(self, *, write: bool = True) -> AbstractContextManager[UnitOfWork]: ...
    def ping(self) -> None: ...


