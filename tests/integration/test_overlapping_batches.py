"""Concurrent batches that name the contacts other batches are still creating.

Issue 18: "When concurrent batches name contacts that other batches are
still creating (a person active on two channels at once), it falls to 6,936
events/s with a p99 of 2.3 s, and a batch got ``503 Too many concurrent
changes to the same contacts``, which a Netcore client does not expect from
a healthy server."

Real traffic: identity and e-mail on every event, a mobile on a third;
every writer's batches draw on the same new people. Such batches wait for
each other's new contacts and then use them: none fails, none is resolved
twice, and every person is one contact.
"""

from __future__ import annotations

import random
import threading
import time

import pytest
from sqlalchemy import select

from eventyard.core.model import NewActivity
from eventyard.services import resolution
from eventyard.storage.database import Database
from eventyard.storage.tables import contact_identifiers
from tests.integration.helpers import (
    activity,
    contact_ids,
    contact_rows,
    ingest,
    new_account,
    stored_names,
)
from tests.integration.test_concurrency import run_together

WRITERS = 4
BATCHES = 3
EVENTS = 150
PEOPLE = 60


def person_event(name: str, person: int, rng: random.Random) -> NewActivity:
    identifiers = {"identity": f"person-{person}", "email": f"person-{person}@x.com"}
    if rng.random() < 1 / 3:
        identifiers["mobile"] = f"+1 555 02{person:05d}"
    return activity(name, **identifiers)


def test_overlapping_batches_wait_for_each_other_and_make_one_contact_per_person(
    store: Database, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    acct = new_account(store, "overlap")
    retries: list[float] = []
    real_sleep = time.sleep
    lock = threading.Lock()

    def counting_sleep(seconds: float) -> None:
        with lock:
            retries.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(resolution.time, "sleep", counting_sleep)
    # Everyone's batches name half of the same new people, in their own order.
    people_of = {
        (w, b): random.Random(w * 100 + b).sample(range(PEOPLE), PEOPLE // 2)
        for w in range(WRITERS)
        for b in range(BATCHES)
    }

    def work(database: Database, writer: int) -> list[tuple[int, str]]:
        rng = random.Random(writer)
        owners: list[tuple[int, str]] = []
        for b in range(BATCHES):
            people = [rng.choice(people_of[writer, b]) for _ in range(EVENTS)]
            batch = [person_event(f"w{writer}-b{b}-e{e}", p, rng) for e, p in enumerate(people)]
            owners += zip(people, contact_ids(ingest(database, acct, batch)), strict=True)
        return owners

    results = run_together(database_url, WRITERS, work)

    assert retries == [], "batches retried instead of waiting for each other"
    assert len(stored_names(store, acct)) == WRITERS * BATCHES * EVENTS
    contact_of: dict[int, set[str]] = {}
    for person, contact_id in (pair for owners in results for pair in owners):
        contact_of.setdefault(person, set()).add(contact_id)
    assert all(len(ids) == 1 for ids in contact_of.values()), "a person got two contacts"
    rows = contact_rows(store, acct)
    assert {row.id for row in rows} == {next(iter(ids)) for ids in contact_of.values()}
    assert {(row.status, row.merged_into) for row in rows} == {("known", None)}
    with store.engine.connect() as conn:
        owner_of = {
            (kind, value): contact_id
            for kind, value, contact_id in conn.execute(
                select(
                    contact_identifiers.c.kind,
                    contact_identifiers.c.value,
                    contact_identifiers.c.contact_id,
                ).where(contact_identifiers.c.account_id == acct.id)
            )
        }
    for person, ids in contact_of.items():
        assert owner_of["identity", f"person-{person}"] in ids
        assert owner_of["email", f"person-{person}@x.com"] in ids


def test_concurrent_batches_of_thousands_of_new_people_are_all_stored(
    store: Database, database_url: str
) -> None:
    """A first import spread over several writers: each batch creates thousands
    of identifiers at once. Locking each of them would exhaust PostgreSQL's
    shared lock table (6,400 by default, for every connection together: "out
    of shared memory"); such batches take none, and are all stored."""
    acct = new_account(store, "first-import")
    per_batch = 1500

    def work(database: Database, writer: int) -> list[str]:
        rng = random.Random(writer)
        # Each writer its own people, all of them new, created at the same time.
        people = range(writer * per_batch, (writer + 1) * per_batch)
        batch = [person_event(f"w{writer}-e{p}", p, rng) for p in people]
        return contact_ids(ingest(database, acct, batch))

    results = run_together(database_url, WRITERS, work)

    assert len(stored_names(store, acct)) == WRITERS * per_batch
    rows = contact_rows(store, acct)
    assert len(rows) == WRITERS * per_batch
    assert {cid for ids in results for cid in ids} == {row.id for row in rows}
