"""A batch that keeps losing races for new identifiers still gets through, or says 503.

The losses are provoked with a store whose contact repository reports a lost
race a given number of times (a fake around the real store: real
transactions, real writes once it lets the plan through).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest

from eventyard.core.errors import ConcurrentUpdate, EventyardError
from eventyard.core.identity import ResolutionPlan
from eventyard.core.model import NewAccount
from eventyard.services import ingest as ingest_service
from eventyard.services import resolution
from eventyard.services.ports import UnitOfWork
from eventyard.storage.database import Database
from tests.integration.helpers import activity, ingest, stored_names


class LosingContacts:
    """The real contact repository, except that the first ``losses`` writes lose."""

    def __init__(self, real: Any, race: LosingStore) -> None:
        self.real = real
        self.race = race

    def apply_resolution(
        self, account_id: str, plan: ResolutionPlan, now: datetime, also_lock: Any = ()
    ) -> None:
        if self.race.losses_left:
            self.race.losses_left -= 1
            raise ConcurrentUpdate()
        self.real.apply_resolution(account_id, plan, now, also_lock)

    def start_bulk_resolution(self, account_id: str, batch: Any) -> Any:
        # The set-based writer (PostgreSQL) loses the same way.
        if self.race.losses_left:
            self.race.losses_left -= 1
            raise ConcurrentUpdate()
        return self.real.start_bulk_resolution(account_id, batch)

    def take_identity_turn(self, account_id: str) -> None:
        self.race.turns_taken += 1
        self.real.take_identity_turn(account_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class LosingUnitOfWork:
    def __init__(self, real: UnitOfWork, race: LosingStore) -> None:
        self.real = real
        self.contacts = LosingContacts(real.contacts, race)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class LosingStore:
    def __init__(self, real: Database, losses: int) -> None:
        self.real = real
        self.losses_left = losses
        self.turns_taken = 0

    @contextmanager
    def unit_of_work(self, *, write: bool = True) -> Iterator[Any]:
        with self.real.unit_of_work(write=write) as uow:
            yield LosingUnitOfWork(uow, self)

    def ping(self) -> None:
        self.real.ping()


def test_after_two_losses_the_batch_takes_its_turn_and_is_stored(
    store: Database, account: NewAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resolution.time, "sleep", lambda _seconds: None)
    losing = LosingStore(store, losses=5)
    ingest(losing, account.account, [activity("Signup", email="race@x.com")])
    assert losing.turns_taken == 1
    assert stored_names(store, account.account) == ["Signup"]


def test_a_batch_that_never_wins_is_a_503_and_stores_nothing(
    store: Database, account: NewAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resolution.time, "sleep", lambda _seconds: None)
    losing = LosingStore(store, losses=ingest_service.MAX_RESOLUTION_ATTEMPTS)
    with pytest.raises(EventyardError) as caught:
        ingest(losing, account.account, [activity("Signup", email="never@x.com")])
    assert caught.value.status == 503
    assert caught.value.headers["Retry-After"] == "1"
    assert stored_names(store, account.account) == []
