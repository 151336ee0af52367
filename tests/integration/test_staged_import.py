"""A contact import through staging tables stores what ingest's own path would have stored.

Imports resolve their chunks set-based through staging tables
(storage/repositories/staging.py) and hand their rare rows to the planner;
before, every row went through ``store_records`` as a profile update. Random
files over a small universe of identifiers (known and anonymous kinds,
contacts that already exist, rows repeating a contact, rows joining two
people) go through both, each in an account of its own, and the stored
results must be the same up to the naming of contact ids: each row's
contact, the created and updated counts, every live contact with its
identifiers, status and attributes (last value wins), the merged contacts,
the identity audit and the list's members. On both databases.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from eventyard.core.contact_import import ImportRow, ImportTally
from eventyard.core.identifiers import Identifier
from eventyard.core.model import Account, NewActivity, ProfileUpdate
from eventyard.dialects.registry import create_account
from eventyard.services.imports import IMPORT_DIALECT, store_rows
from eventyard.services.ingest import store_records
from eventyard.services.lists import create_list
from eventyard.storage.database import Database
from eventyard.storage.tables import (
    activities,
    contact_identifiers,
    contacts,
    identity_events,
    list_members,
)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
KINDS = ["identity", "email", "anonid"]

people_rows = st.builds(
    lambda person, kinds, city: (
        tuple(Identifier(kind, f"p{person}") for kind in kinds),
        {"city": city} if city else {},
    ),
    st.integers(0, 6),
    st.lists(st.sampled_from(KINDS), min_size=1, max_size=3, unique=True),
    st.sampled_from(["", "Pune", "Goa"]),
)
mixed_rows = st.builds(
    lambda idents, tier: (tuple(dict.fromkeys(idents)), {"tier": tier}),
    st.lists(
        st.builds(Identifier, st.sampled_from(KINDS), st.sampled_from(["a", "b", "c", "d"])),
        min_size=1,
        max_size=3,
    ),
    st.sampled_from(["1", "2"]),
)
rows = st.lists(st.one_of(people_rows, people_rows, mixed_rows), min_size=1, max_size=12)
A1, A2 = Identifier("anonid", "p1"), Identifier("anonid", "p2")
I1, E1, E2 = Identifier("identity", "p1"), Identifier("email", "p1"), Identifier("email", "p2")

Row = tuple[tuple[Identifier, ...], dict[str, Any]]


def import_rows(
    store: Database, account: Account, list_id: int, file: list[Row], *, staged: bool
) -> tuple[list[str | None], ImportTally]:
    """Store ``file`` as one chunk; each row's contact and the counts."""
    batch = [ImportRow(n + 2, idents, attrs) for n, (idents, attrs) in enumerate(file)]
    tally = ImportTally()
    with store.unit_of_work() as uow:
        if staged:
            store_rows(uow, account, batch, list_id, tally, NOW)
            contact_of: list[str | None] = []
        else:
            updates = [
                ProfileUpdate(r.identifiers, r.attributes, dialect=IMPORT_DIALECT) for r in batch
            ]
            outcome = store_records(uow, account, updates, now=NOW)
            contact_of = list(outcome.contact_ids)
            seen: set[str | None] = set()
            for cid in contact_of:
                tally.total += 1
                if cid in outcome.created_contacts and cid not in seen:
                    tally.created += 1
                else:
                    tally.updated += 1
                seen.add(cid)
            uow.lists.add_members(account.id, list_id, {c for c in contact_of if c}, NOW)
        uow.commit()
    return contact_of, tally


def holdings(
    store: Database, account: Account, list_id: int
) -> tuple[dict[str, frozenset[Identifier]], Any]:
    """What the account holds, contacts named by their identifiers."""
    with store.engine.connect() as conn:
        owned: dict[str, set[Identifier]] = {}
        for kind, value, cid in conn.execute(
            select(
                contact_identifiers.c.kind,
                contact_identifiers.c.value,
                contact_identifiers.c.contact_id,
            ).where(contact_identifiers.c.account_id == account.id)
        ):
            owned.setdefault(cid, set()).add(Identifier(kind, value))
        found = conn.execute(
            select(
                contacts.c.id, contacts.c.status, contacts.c.merged_into, contacts.c.attributes
            ).where(contacts.c.account_id == account.id)
        ).all()
        audit = conn.execute(
            select(identity_events.c.kind, identity_events.c.contact_id).where(
                identity_events.c.account_id == account.id
            )
        ).all()
        members = (
            conn.execute(select(list_members.c.contact_id).where(list_members.c.list_id == list_id))
            .scalars()
            .all()
        )
    name = {cid: frozenset(idents) for cid, idents in owned.items()}
    live = Counter(
        (name.get(c.id, frozenset()), c.status, tuple(sorted(c.attributes.items())))
        for c in found
        if c.merged_into is None
    )
    merged = Counter(name[c.merged_into] for c in found if c.merged_into is not None)
    return name, (
        live,
        merged,
        Counter((kind, name.get(cid)) for kind, cid in audit),
        sorted(sorted(name[cid]) for cid in members),
    )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(history=st.lists(rows, max_size=2), file=rows)
# Two rows of one new person: one contact, the second row's value wins.
@example(history=[], file=[((E1,), {"city": "Pune"}), ((E1, I1), {"city": "Goa"})])
# An anonymous contact named with a known identifier is converted (a rare row).
@example(history=[[((A1,), {})]], file=[((A1, I1), {"tier": "1"}), ((E2,), {})])
# Two known people joined by one row: a conflict, settled by the primary kind.
@example(history=[[((I1,), {}), ((E1,), {})]], file=[((I1, E1), {"tier": "2"})])
# A row naming an existing person and a new identifier; another row names it too.
@example(history=[[((I1,), {"city": "Goa"})]], file=[((I1, E1), {}), ((E1,), {"tier": "1"})])
# New groups without an identifier common to all their rows go to the planner.
@example(history=[], file=[((A1, I1), {}), ((I1, E1), {}), ((E1, A2), {})])
def test_staged_and_ingest_paths_store_the_same(
    store: Database, history: list[list[Row]], file: list[Row]
) -> None:
    results = []
    for staged in (True, False):
        account = create_account(store, f"staged-{uuid.uuid4().hex[:8]}").account
        list_id = create_list(store, account, "imported").id
        for earlier in history:  # made the same way in both accounts
            import_rows(store, account, list_id, earlier, staged=False)
        _, tally = import_rows(store, account, list_id, file, staged=staged)
        _, held = holdings(store, account, list_id)
        results.append(((tally.total, tally.created, tally.updated, tally.failed), held))
    assert results[0] == results[1]


def test_an_import_and_concurrent_ingest_of_the_same_people_make_one_contact_each(
    store: Database,
) -> None:
    """Issue 19: the import shares the server with the API. While chunks of an import
    create 3,000 people, ingest batches (the API's own path, in threads of their own)
    name the same people, some first, some after: every person ends as exactly one
    contact with its identifiers, the import counts every row once, and every
    activity ingest acknowledged is stored for the contact of its person."""
    account = create_account(store, f"race-{uuid.uuid4().hex[:8]}").account
    list_id = create_list(store, account, "imported").id
    people = 3000
    rows = [
        ImportRow(n + 2, (Identifier("email", f"p{n}@example.com"),), {"n": str(n)})
        for n in range(people)
    ]
    tally = ImportTally()
    errors: list[BaseException] = []

    def import_file() -> None:
        try:
            for first in range(0, people, 500):
                with store.unit_of_work() as uow:
                    store_rows(uow, account, rows[first : first + 500], list_id, tally, NOW)
                    uow.commit()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    def ingest(offset: int) -> None:
        try:
            order = list(range(offset, people, 3))
            random.Random(offset).shuffle(order)
            for first in range(0, len(order), 100):
                records = [
                    NewActivity(
                        (Identifier("email", f"p{n}@example.com"), Identifier("identity", f"u{n}")),
                        "Visit",
                        NOW,
                        "api",
                        "netcore",
                        {"n": n},
                    )
                    for n in order[first : first + 100]
                ]
                with store.unit_of_work() as uow:
                    store_records(uow, account, records, now=NOW)
                    uow.commit()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=import_file)]
    threads += [threading.Thread(target=ingest, args=(offset,)) for offset in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert (tally.total, tally.created + tally.updated, tally.failed) == (people, people, 0)
    with store.engine.connect() as conn:
        owners = dict(
            conn.execute(
                select(contact_identifiers.c.value, contact_identifiers.c.contact_id).where(
                    contact_identifiers.c.account_id == account.id
                )
            ).all()
        )
        live = conn.execute(
            select(contacts.c.id, contacts.c.attributes).where(
                contacts.c.account_id == account.id, contacts.c.merged_into.is_(None)
            )
        ).all()
        visits = conn.execute(
            select(activities.c.contact_id, activities.c.properties).where(
                activities.c.account_id == account.id
            )
        ).all()
        members = set(
            conn.execute(select(list_members.c.contact_id).where(list_members.c.list_id == list_id))
            .scalars()
            .all()
        )
    assert len(live) == people
    for n in range(people):
        assert owners[f"p{n}@example.com"] == owners[f"u{n}"]
    assert {cid: attrs["n"] for cid, attrs in live} == {
        owners[f"p{n}@example.com"]: str(n) for n in range(people)
    }
    assert sorted((owners[f"u{props['n']}"] == cid) for cid, props in visits) == [True] * people
    assert members == {cid for cid, _ in live}
