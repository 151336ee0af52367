"""Race freedom: writers that meet on the same contacts at the same moment.

DESIGN.md: "PostgreSQL is the production store and the scale-out path: many
stateless API and worker processes share one database." STYLE.md: "uniqueness
enforced by constraints and ON CONFLICT, never check-then-insert."

Each thread below has its own ``Database`` (its own engine and pool), as
separate processes would; a barrier releases them together. Any exception a
writer raises (a lost race, "database is locked", a deadlock) fails the test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TypeVar

import pytest
from sqlalchemy import func, select

from eventyard.core.errors import IdempotencyConflict
from eventyard.core.identifiers import normalize_identifier
from eventyard.core.model import Account, NewActivity
from eventyard.services.contacts import find_contacts, get_contact
from eventyard.services.ingest import IdempotencyRequest
from eventyard.storage.database import Database
from eventyard.storage.tables import activities
from tests.integration.helpers import (
    activity,
    activity_owners,
    audit_kinds,
    contact_ids,
    contact_rows,
    ingest,
    new_account,
    stored_names,
)

WRITERS = 5
ROUNDS = 3
EVENTS_PER_WRITER = 4
#: Generous: a healthy run takes well under a second per round; a deadlock or
#: a writer stuck on a lock runs into it (and the busy timeout, 30 s, first).
TIMEOUT = 90

T = TypeVar("T")


def run_together(database_url: str, writers: int, work: Callable[[Database, int], T]) -> list[T]:
    """Run ``work(database, index)`` in ``writers`` threads released at once.

    Every thread gets its own ``Database``, connected before the barrier so
    that the race is on the writes, not on opening connections. Returns the
    results in thread order; re-raises the first exception a writer raised.
    """
    databases = [Database.from_url(database_url, pool_size=2) for _ in range(writers)]
    barrier = threading.Barrier(writers, timeout=TIMEOUT)

    def run(index: int) -> T:
        databases[index].ping()
        barrier.wait()
        return work(databases[index], index)

    executor = ThreadPoolExecutor(max_workers=writers)
    futures = [executor.submit(run, i) for i in range(writers)]
    _done, stuck = wait(futures, timeout=TIMEOUT)
    if stuck:
        # Leave the stuck threads (and their connections) behind rather than
        # hang the suite as well.
        executor.shutdown(wait=False, cancel_futures=True)
        pytest.fail(f"{len(stuck)} of {writers} writers still running after {TIMEOUT} s")
    executor.shutdown()
    for database in databases:
        database.dispose()
    return [f.result() for f in futures]


@pytest.mark.parametrize("round_", range(ROUNDS))
class TestWritersMeetingOnTheSameContacts:
    def test_one_contact_per_identifier_and_every_activity_once(
        self, store: Database, database_url: str, round_: int
    ) -> None:
        """Writers that all name the same new e-mail and mobile (each from its
        own device) create exactly one contact between them: the losers of the
        race find the winner's contact instead of failing or duplicating it."""
        acct = new_account(store, "race")
        email, mobile = f"race-{round_}@x.com", f"+1 555 010 {round_:04d}"

        def work(database: Database, index: int) -> list[str]:
            batch = [
                activity(f"w{index}-e{j}", email=email, mobile=mobile, anonid=f"device-{index}")
                for j in range(EVENTS_PER_WRITER)
            ]
            return contact_ids(ingest(database, acct, batch))

        results = run_together(database_url, WRITERS, work)

        [row] = contact_rows(store, acct)
        assert (row.status, row.merged_into) == ("known", None)
        assert {cid for ids in results for cid in ids} == {row.id}
        contact = get_contact(store, acct, row.id)
        assert {(i.kind, i.value) for i in contact.identifiers} == {
            ("email", email),
            ("mobile", f"+1555010{round_:04d}"),
            *(("anonid", f"device-{i}") for i in range(WRITERS)),
        }
        assert [c.id for c in find_contacts(store, acct, normalize_identifier("email", email))] == [
            row.id
        ]
        expected_names = sorted(
            f"w{i}-e{j}" for i in range(WRITERS) for j in range(EVENTS_PER_WRITER)
        )
        assert stored_names(store, acct) == expected_names
        assert set(activity_owners(store, acct)) == {row.id}

    def test_an_anonymous_contact_is_converted_once(
        self, store: Database, database_url: str, round_: int
    ) -> None:
        """Netcore: "If an anonymous profile is found, it is converted into a
        known user." Several log-ins from the same cookie at once convert it
        once: same id, one audit entry, no second contact."""
        acct = new_account(store, "race")
        [anonymous] = contact_ids(ingest(store, acct, [activity("Page View", anonid="cookie")]))
        email = f"login-{round_}@x.com"

        def work(database: Database, index: int) -> list[str]:
            batch = [activity(f"Login {index}", anonid="cookie", email=email)]
            return contact_ids(ingest(database, acct, batch))

        results = run_together(database_url, WRITERS, work)

        assert results == [[anonymous]] * WRITERS
        assert [(r.id, r.status, r.merged_into) for r in contact_rows(store, acct)] == [
            (anonymous, "known", None)
        ]
        assert audit_kinds(store, acct) == ["converted"]
        assert set(activity_owners(store, acct)) == {anonymous}
        assert len(stored_names(store, acct)) == WRITERS + 1

    def test_an_anonymous_contact_is_merged_once(
        self, store: Database, database_url: str, round_: int
    ) -> None:
        """An anonymous contact met with a known one by several writers at once
        is merged into it exactly once, and no activity is left behind on it."""
        acct = new_account(store, "race")
        [anonymous] = contact_ids(ingest(store, acct, [activity("Page View", anonid="cookie")]))
        [known] = contact_ids(ingest(store, acct, [activity("Signup", email="k@x.com")]))

        def work(database: Database, index: int) -> list[str]:
            batch = [
                activity(f"Visit {index}", anonid="cookie"),
                activity(f"Login {index}", anonid="cookie", email="k@x.com"),
            ]
            return contact_ids(ingest(database, acct, batch))

        results = run_together(database_url, WRITERS, work)

        assert results == [[known, known]] * WRITERS
        assert {r.id: (r.status, r.merged_into) for r in contact_rows(store, acct)} == {
            anonymous: ("merged", known),
            known: ("known", None),
        }
        assert audit_kinds(store, acct) == ["merged"]
        assert set(activity_owners(store, acct)) == {known}
        assert len(stored_names(store, acct)) == 2 * WRITERS + 2

    def test_concurrent_retries_with_one_idempotency_key_store_once(
        self, store: Database, database_url: str, round_: int
    ) -> None:
        """A client that retries while its first attempt is still running gets
        the first attempt's response: exactly one writer stores the batch."""
        acct = new_account(store, "race")
        batch = [activity("Purchase", email=f"buyer-{round_}@x.com")]
        request = IdempotencyRequest.for_request("retry-key", "/v1/activity/upload", b"[1]", 3600)

        results = run_together(
            database_url, WRITERS, lambda database, _i: ingest(database, acct, batch, request)
        )

        assert sorted(r.replayed for r in results) == [False] + [True] * (WRITERS - 1)
        assert len({r.body for r in results}) == 1
        assert stored_names(store, acct) == ["Purchase"]

    def test_concurrent_different_requests_with_one_key_store_one(
        self, store: Database, database_url: str, round_: int
    ) -> None:
        acct = new_account(store, "race")

        def work(database: Database, index: int) -> str:
            batch = [activity(f"Request {index}", email=f"r{index}@x.com")]
            request = IdempotencyRequest.for_request(
                f"reused-{round_}", "/v1/activity/upload", f"[{index}]".encode(), 3600
            )
            try:
                ingest(database, acct, batch, request)
            except IdempotencyConflict:
                return "conflict"
            return "stored"

        results = run_together(database_url, WRITERS, work)

        assert sorted(results) == ["conflict"] * (WRITERS - 1) + ["stored"]
        [winner] = [i for i, r in enumerate(results) if r == "stored"]
        assert stored_names(store, acct) == [f"Request {winner}"]
        assert len(contact_rows(store, acct)) == 1


class TestOverlappingBatches:
    """Two writers with overlapping batches in opposite orders finish, on
    PostgreSQL without a deadlock, and store what each sent."""

    PEOPLE = 40

    def setup_people(self, store: Database, acct: Account) -> dict[int, str]:
        """Anonymous visitors 0..n-1 (the batches will convert them) and known
        customers (the batches will give them a mobile)."""
        anonymous = contact_ids(
            ingest(store, acct, [activity("Visit", anonid=f"c{i}") for i in range(self.PEOPLE)])
        )
        ingest(store, acct, [activity("Signup", email=f"k{i}@x.com") for i in range(self.PEOPLE)])
        return dict(enumerate(anonymous))

    def batch(self, order: range, *, dedup: bool) -> list[NewActivity]:
        events = []
        for i in order:
            keys = ({"dedup_key": f"login-{i}"}, {"dedup_key": f"call-{i}"}) if dedup else ({}, {})
            events += [
                activity(f"Login {i}", anonid=f"c{i}", email=f"new{i}@x.com", **keys[0]),
                activity(f"Call {i}", email=f"k{i}@x.com", mobile=f"555{i:04d}", **keys[1]),
                activity(f"New {i}", email=f"n{i}@x.com"),
            ]
        return events

    @pytest.mark.parametrize("dedup", [False, True], ids=["plain", "dedup-keys"])
    def test_opposite_orders_do_not_deadlock(
        self, store: Database, database_url: str, dedup: bool
    ) -> None:
        acct = new_account(store, "race")
        anonymous = self.setup_people(store, acct)
        orders = [range(self.PEOPLE), range(self.PEOPLE - 1, -1, -1)]

        results = run_together(
            database_url,
            2,
            lambda database, index: ingest(database, acct, self.batch(orders[index], dedup=dedup)),
        )

        assert all(not r.replayed for r in results)
        for i, contact_id in anonymous.items():
            contact = get_contact(store, acct, contact_id)
            assert contact.status == "known"
            assert ("email", f"new{i}@x.com") in {(x.kind, x.value) for x in contact.identifiers}
        # Anonymous + known + new: nobody was created twice.
        assert len(contact_rows(store, acct)) == 3 * self.PEOPLE
        copies = 1 if dedup else 2
        with store.engine.connect() as conn:
            per_name = dict(
                conn.execute(
                    select(activities.c.name, func.count())
                    .where(activities.c.account_id == acct.id)
                    .group_by(activities.c.name)
                ).all()
            )
        for i in range(self.PEOPLE):
            assert per_name[f"Login {i}"] == copies
            assert per_name[f"Call {i}"] == copies
            assert per_name[f"New {i}"] == 2
        assert audit_kinds(store, acct) == ["converted"] * self.PEOPLE


def test_the_same_events_twice_in_opposite_orders(store: Database, database_url: str) -> None:
    """Two writers send the same dedup-keyed batch, one reversed: both finish, none deadlocks.

    Found on PostgreSQL: without a fixed insert order the two transactions
    locked the dedup keys in opposite orders and one was aborted (503).
    """
    acct = new_account(store, "race")
    ingest(store, acct, [activity("Signup", email=f"k{i}@x.com") for i in range(1000)])

    def batch(order: range) -> list[NewActivity]:
        return [activity(f"Order {i}", email=f"k{i}@x.com", dedup_key=f"order-{i}") for i in order]

    orders = [range(1000), range(999, -1, -1)]
    for _round in range(3):
        run_together(database_url, 2, lambda db, i: ingest(db, acct, batch(orders[i])))
    assert len(stored_names(store, acct)) == 2000
