"""The credential cache: remembered briefly, positives only, bounded."""

from __future__ import annotations

from datetime import UTC, datetime

from eventyard.core.model import Account
from eventyard.services.accounts import CredentialCache

ACME = Account(id="a" * 24, name="Acme", settings={}, created_at=datetime(2026, 1, 1, tzinfo=UTC))
KEY = ("netcore", "digest", None)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_lives_exactly_its_ttl() -> None:
    clock = Clock()
    cache = CredentialCache(ttl_seconds=30, clock=clock)
    cache.put(KEY, ACME)
    clock.now += 29.9
    assert cache.get(KEY) == ACME
    clock.now += 0.1
    assert cache.get(KEY) is None


def test_ttl_zero_remembers_nothing() -> None:
    cache = CredentialCache(ttl_seconds=0)
    cache.put(KEY, ACME)
    assert cache.get(KEY) is None


def test_kind_and_public_id_are_part_of_the_key() -> None:
    cache = CredentialCache(ttl_seconds=30)
    cache.put(("clevertap", "digest", "ABC-DEF-GHIJ"), ACME)
    assert cache.get(("clevertap", "digest", None)) is None
    assert cache.get(("clevertap", "digest", "XYZ-DEF-GHIJ")) is None
    assert cache.get(("netcore", "digest", "ABC-DEF-GHIJ")) is None


def test_size_stays_bounded() -> None:
    cache = CredentialCache(ttl_seconds=30, max_entries=3)
    for i in range(10):
        cache.put(("netcore", f"d{i}", None), ACME)
    assert cache.get(("netcore", "d9", None)) == ACME
    assert len(cache._entries) <= 3


def test_clear_forgets_one_account_or_all() -> None:
    """A settings change must not wait for the TTL in the process that made it."""
    other = Account(id="b" * 24, name="Other", settings={}, created_at=ACME.created_at)
    cache = CredentialCache(ttl_seconds=30)
    cache.put(KEY, ACME)
    cache.put(("admin", "digest", None), ACME)
    cache.put(("netcore", "other", None), other)

    cache.clear(ACME.id)
    assert cache.get(KEY) is None
    assert cache.get(("admin", "digest", None)) is None
    assert cache.get(("netcore", "other", None)) == other

    cache.clear()
    assert cache.get(("netcore", "other", None)) is None
