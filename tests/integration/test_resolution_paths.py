"""The set-based resolution on PostgreSQL stores what the planner would have stored.

``core.identity.plan_resolution`` is the reference for the rules; the
set-based path (storage/set_resolution.py) takes the batches of common cases
and hands everything else to the planner. Random batches over a small
universe of identifiers (known and anonymous kinds, with contacts that
already exist) go through both, each in an account of its own, and the
stored results must be the same up to the naming of contact ids: the
contact of each entry, the contacts created, every live contact with its
identifiers and status, the merged ones, and the identity audit.

PostgreSQL only: SQLite has the planner path alone.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from eventyard.core.identifiers import Identifier
from eventyard.core.model import Account
from eventyard.dialects.registry import create_account
from eventyard.services.resolution import resolve_contacts
from eventyard.storage.database import Database
from eventyard.storage.migrate import upgrade_database
from eventyard.storage.tables import contact_identifiers, contacts, identity_events

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

KINDS = ["identity", "email", "anonid"]
#: Any identifiers at all: conflicts, merges and conversions are frequent.
mixed_entries = st.lists(
    st.builds(Identifier, st.sampled_from(KINDS), st.sampled_from(["a", "b", "c", "d", "e"])),
    min_size=1,
    max_size=3,
).map(tuple)
#: Some of one person's identifiers, as real traffic names them.
person_entries = st.builds(
    lambda person, kinds: tuple(Identifier(kind, f"p{person}") for kind in kinds),
    st.integers(0, 5),
    st.lists(st.sampled_from(KINDS), min_size=1, max_size=3, unique=True),
)
entries = st.one_of(person_entries, person_entries, person_entries, mixed_entries)
batches = st.lists(entries, min_size=1, max_size=10)
ANON_1, ANON_2 = Identifier("anonid", "p1"), Identifier("anonid", "p2")
IDENTITY_1, EMAIL_1 = Identifier("identity", "p1"), Identifier("email", "p1")


class PlannerOnlyContacts:
    """The real contact repository without its set-based path."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def start_bulk_resolution(self, *_args: Any, **_kwargs: Any) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class PlannerOnlyUnitOfWork:
    def __init__(self, real: Any) -> None:
        self.real = real
        self.contacts = PlannerOnlyContacts(real.contacts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.fixture(scope="module")
def postgres_store(postgres_url: str) -> Iterator[Database]:
    upgrade_database(postgres_url)
    database = Database.from_url(postgres_url, pool_size=2)
    yield database
    database.dispose()


@contextmanager
def unit_of_work(store: Database, *, set_based: bool) -> Iterator[Any]:
    with store.unit_of_work() as uow:
        yield uow if set_based else PlannerOnlyUnitOfWork(uow)
        uow.commit()


def resolve(
    store: Database, account: Account, batch: list[tuple[Identifier, ...]], *, set_based: bool
) -> tuple[list[str], set[str]]:
    with unit_of_work(store, set_based=set_based) as uow:
        return resolve_contacts(uow, account, batch, NOW, locked=range(0, len(batch), 2))


def stored(store: Database, account: Account) -> tuple[dict[str, frozenset[Identifier]], Any]:
    """Each live contact's identifiers, and what the account holds up to contact ids."""
    with store.engine.connect() as conn:
        owned: dict[str, set[Identifier]] = {}
        for kind, value, contact_id in conn.execute(
            select(
                contact_identifiers.c.kind,
                contact_identifiers.c.value,
                contact_identifiers.c.contact_id,
            ).where(contact_identifiers.c.account_id == account.id)
        ):
            owned.setdefault(contact_id, set()).add(Identifier(kind, value))
        rows = conn.execute(
            select(contacts.c.id, contacts.c.status, contacts.c.merged_into).where(
                contacts.c.account_id == account.id
            )
        ).all()
        audit = conn.execute(
            select(identity_events.c.kind, identity_events.c.contact_id).where(
                identity_events.c.account_id == account.id
            )
        ).all()
    name = {cid: frozenset(idents) for cid, idents in owned.items()}
    live = Counter((name.get(r.id, frozenset()), r.status) for r in rows if r.merged_into is None)
    merged = Counter(name[r.merged_into] for r in rows if r.merged_into is not None)
    return name, (live, merged, Counter((kind, name.get(cid)) for kind, cid in audit))


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(history=st.lists(batches, max_size=2), batch=batches)
# An anonymous contact met with a known identifier is converted (the planner's case).
@example(history=[[(ANON_1,)]], batch=[(ANON_1, IDENTITY_1)])
# A new person named in several shapes is one contact, known.
@example(history=[], batch=[(ANON_1,), (ANON_1, IDENTITY_1), (IDENTITY_1, EMAIL_1)])
# Groups without an identifier common to all their entries go to the planner.
@example(history=[], batch=[(ANON_1, IDENTITY_1), (IDENTITY_1, EMAIL_1), (EMAIL_1, ANON_2)])
# An anonymous contact merged by one entry is the survivor for another entry
# that names it by a different identifier.
@example(history=[[(ANON_1, ANON_2), (IDENTITY_1,)]], batch=[(ANON_1, IDENTITY_1), (ANON_2,)])
# An entry without identifiers gets a contact of its own.
@example(history=[], batch=[(ANON_1,), ()])
# New identifiers for a known contact, named by several entries.
@example(history=[[(IDENTITY_1,)]], batch=[(IDENTITY_1, EMAIL_1), (EMAIL_1, IDENTITY_1, ANON_1)])
def test_set_based_and_planner_paths_store_the_same(
    postgres_store: Database,
    history: list[list[tuple[Identifier, ...]]],
    batch: list[tuple[Identifier, ...]],
) -> None:
    results = []
    for set_based in (True, False):
        account = create_account(postgres_store, f"paths-{uuid.uuid4().hex[:8]}").account
        for earlier in history:  # contacts that already exist, made the same way in both
            resolve(postgres_store, account, earlier, set_based=False)
        contact_of, created = resolve(postgres_store, account, batch, set_based=set_based)
        name, holdings = stored(postgres_store, account)
        results.append(
            (
                [name.get(cid) for cid in contact_of],
                {name.get(cid) for cid in created},
                holdings,
            )
        )
    assert results[0] == results[1]
