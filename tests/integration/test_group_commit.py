"""Group commit: requests stored in one transaction get the outcome each would get alone.

Issue 8: "group commit: concurrent requests share one transaction and one
fsync, each answered only after that commit". docs/operations.md (Group
commit): "Every request gets the answer it would have got alone, as if the
group's requests had run one after the other".

Each test makes its requests one group deterministically: a first request
whose renderer waits inside the group's transaction holds the committer
while the others queue; released, the committer stores all of them in the
next transaction (``on_group`` reports the sizes, asserted every time).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import replace

import orjson
import pytest
from sqlalchemy import event, select

from eventyard.core.errors import EventyardError, IdempotencyConflict
from eventyard.core.identifiers import normalize_identifier
from eventyard.core.model import (
    Account,
    IngestRules,
    ProfileUpdate,
    RecordsOutcome,
    StoredResponse,
)
from eventyard.services.group_commit import GroupCommitter
from eventyard.services.ingest import IdempotencyRequest, IngestRequest, ingest_records
from eventyard.storage.database import Database
from eventyard.storage.tables import activities, contact_identifiers, contacts
from tests.integration.helpers import NOW, activity, count, new_account

TIMEOUT = 30


def respond(outcome: RecordsOutcome) -> StoredResponse:
    """The contact each record went to and what was refused, as a dialect would render it."""
    return StoredResponse(
        200,
        orjson.dumps(
            {
                "contact_ids": outcome.contact_ids,
                "stored": outcome.stored_activities,
                "rejected": [r.code for r in outcome.rejected],
            }
        ),
    )


def request(
    account: Account,
    email: str,
    name: str = "Add To Cart",
    *,
    respond_with: Callable[[RecordsOutcome], StoredResponse] = respond,
    idempotency: IdempotencyRequest | None = None,
    value_milli: int | None = None,
    message_id: str | None = None,
) -> IngestRequest:
    record = replace(activity(name, email=email), value_milli=value_milli, message_id=message_id)
    return IngestRequest(account, [record], NOW, respond_with, idempotency=idempotency)


class Committer:
    """A :class:`GroupCommitter` on ``store`` that remembers the size of every group."""

    def __init__(self, store: Database) -> None:
        self.sizes: list[int] = []
        self.committer = GroupCommitter(
            store, max_records=10, max_group=200, on_group=self.sizes.append
        )

    def one_group(self, requests: Sequence[IngestRequest]) -> list[Future[StoredResponse]]:
        """Submit ``requests`` so that they are stored in one transaction, in order."""
        entered, release = threading.Event(), threading.Event()
        account = requests[0].account

        def hold(outcome: RecordsOutcome) -> StoredResponse:
            entered.set()
            release.wait(TIMEOUT)
            return respond(outcome)

        holder = self.committer.submit(request(account, "holder@example.com", respond_with=hold))
        assert entered.wait(TIMEOUT)
        futures = [self.committer.submit(r) for r in requests]
        release.set()
        holder.result(TIMEOUT)
        for future in futures:
            future.exception(TIMEOUT)  # wait, whatever the outcome
        assert self.sizes[-2:] == [1, len(requests)], self.sizes
        return futures

    def close(self) -> None:
        self.committer.close()


@pytest.fixture
def committer(store: Database) -> Iterator[Committer]:
    grouped = Committer(store)
    yield grouped
    grouped.close()


def body(future: Future[StoredResponse]) -> dict[str, object]:
    parsed: dict[str, object] = orjson.loads(future.result(TIMEOUT).body)
    return parsed


def stored_emails(store: Database, account: Account) -> list[str]:
    """The e-mail of the contact of every stored activity of ``account``, in no order."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(contact_identifiers.c.value)
            .join(activities, activities.c.contact_id == contact_identifiers.c.contact_id)
            .where(activities.c.account_id == account.id, contact_identifiers.c.kind == "email")
        )
        return sorted(r.value for r in rows)


class TestOneTransaction:
    def test_every_request_of_a_group_is_stored_once_and_answered_with_its_own_contact(
        self, store: Database, committer: Committer
    ) -> None:
        account = new_account(store, "group")
        emails = [f"member-{i}@example.com" for i in range(20)]
        futures = committer.one_group([request(account, e) for e in emails])
        answered = [body(f)["contact_ids"] for f in futures]
        assert len({ids[0] for ids in answered}) == 20  # type: ignore[index]
        assert stored_emails(store, account) == sorted([*emails, "holder@example.com"])

    def test_two_requests_naming_one_new_contact_make_one_contact(
        self, store: Database, committer: Committer
    ) -> None:
        """As sequentially: the second request finds the contact the first created."""
        account = new_account(store, "group")
        first, second = committer.one_group(
            [request(account, "new@example.com"), request(account, "NEW@example.com", "Buy")]
        )
        assert body(first)["contact_ids"] == body(second)["contact_ids"]
        # The holder's contact and the new one.
        assert count(store, contacts, account) == 2
        assert count(store, activities, account) == 3

    def test_a_message_id_claimed_by_an_earlier_member_is_a_repeat(
        self, store: Database, committer: Committer
    ) -> None:
        account = new_account(store, "group")
        first, second = committer.one_group(
            [
                request(account, "a@example.com", message_id="m-1"),
                request(account, "a@example.com", message_id="m-1"),
            ]
        )
        assert body(first)["stored"] == 1
        assert body(second)["stored"] == 0
        assert count(store, activities, account) == 2  # the holder's and the first


class TestIdempotency:
    def test_a_key_used_twice_in_one_group_is_replayed_and_a_changed_request_conflicts(
        self, store: Database, committer: Committer
    ) -> None:
        account = new_account(store, "group")
        key = IdempotencyRequest("retry-1", "fingerprint-a", 3600)
        other = IdempotencyRequest("retry-1", "fingerprint-b", 3600)
        first, replay, changed = committer.one_group(
            [
                request(account, "a@example.com", idempotency=key),
                request(account, "a@example.com", idempotency=key),
                request(account, "b@example.com", idempotency=other),
            ]
        )
        assert not first.result().replayed
        assert replay.result().replayed
        assert replay.result().body == first.result().body
        assert isinstance(changed.exception(), IdempotencyConflict)
        assert stored_emails(store, account) == ["a@example.com", "holder@example.com"]


class TestFailures:
    def test_a_request_its_dialect_refuses_leaves_nothing_and_the_others_are_stored(
        self, store: Database, committer: Committer
    ) -> None:
        """A renderer raising (Cordial refuses a rejected record) rolls back that request only."""
        account = new_account(store, "group")

        def refuse(outcome: RecordsOutcome) -> StoredResponse:
            raise EventyardError("invalid", "refused by the dialect", 400)

        good, refused, also_good = committer.one_group(
            [
                request(account, "good@example.com"),
                request(account, "refused@example.com", respond_with=refuse),
                request(account, "also-good@example.com"),
            ]
        )
        assert body(good)["stored"] == body(also_good)["stored"] == 1
        error = refused.exception()
        assert isinstance(error, EventyardError)
        assert error.status == 400
        assert stored_emails(store, account) == [
            "also-good@example.com",
            "good@example.com",
            "holder@example.com",
        ]
        assert count(store, contacts, account) == 3  # no contact for the refused request

    def test_a_request_failing_in_the_database_gets_its_own_error_and_the_others_are_stored(
        self, store: Database, committer: Committer
    ) -> None:
        """A value beyond the column's 64-bit integer fails only when the database stores it."""
        account = new_account(store, "group")
        too_big = 2**70
        try:
            ingest_records(
                store,
                account,
                request(account, "alone@example.com", value_milli=too_big).records,
                now=NOW,
                respond=respond,
            )
        except Exception as exc:  # the database's own error, whichever it is
            alone: type[Exception] = type(exc)
        else:
            pytest.fail("the database stored a value beyond 64 bits")
        good, bad, also_good = committer.one_group(
            [
                request(account, "good@example.com"),
                request(account, "bad@example.com", value_milli=too_big),
                request(account, "also-good@example.com"),
            ]
        )
        assert body(good)["stored"] == body(also_good)["stored"] == 1
        error = bad.exception()
        assert type(error) is alone
        assert stored_emails(store, account) == [
            "also-good@example.com",
            "good@example.com",
            "holder@example.com",
        ]


def render_all(outcome: RecordsOutcome) -> StoredResponse:
    """Everything the outcome says about the request, as the Ortto renderer reads it."""
    return StoredResponse(
        200,
        orjson.dumps(
            {
                "contact_ids": outcome.contact_ids,
                "stored": outcome.stored_activities,
                "updated": outcome.updated_profiles,
                "created": sorted(outcome.created_contacts),
                "rejected": [[r.index, r.code] for r in outcome.rejected],
            }
        ),
    )


class TestOneBatch:
    """Requests of one account and rules are stored as one batch; each answer is its own slice."""

    def test_the_first_request_naming_a_new_contact_created_it_and_the_later_ones_found_it(
        self, store: Database, committer: Committer
    ) -> None:
        account = new_account(store, "group")
        update = ProfileUpdate(
            identifiers=(normalize_identifier("email", "new@example.com"),),
            attributes={"plan": "gold"},
            dialect="segment",
        )
        profile = IngestRequest(account, [update], NOW, render_all)
        later = request(account, "new@example.com", respond_with=render_all)
        first, second = committer.one_group([profile, later])
        created = body(first)
        found = body(second)
        assert created["updated"] == 1
        assert created["stored"] == 0
        assert created["created"] == created["contact_ids"]
        assert found["stored"] == 1
        assert found["created"] == []
        assert found["contact_ids"] == created["contact_ids"]

    def test_a_limit_an_earlier_request_used_up_refuses_the_later_ones_record_by_its_own_index(
        self, store: Database, committer: Committer
    ) -> None:
        """Ortto's 50-a-day limit counted across the group as one after the other."""
        account = new_account(store, "group")
        rules = IngestRules(daily_limit=1)
        buy = request(account, "a@example.com", "Buy", respond_with=render_all)
        buy = replace(buy, rules=rules)
        first, second = committer.one_group([buy, buy])
        assert body(first)["rejected"] == []
        assert body(first)["stored"] == 1
        assert body(second)["rejected"] == [[0, "daily_limit"]]
        assert body(second)["stored"] == 0


class TestRoundTrips:
    """Issue 18: "a group-commit committer whose round trips do not grow with the group"."""

    def statements_of_one_group(
        self, store: Database, committer: Committer, requests: Sequence[IngestRequest]
    ) -> int:
        """How many statements the database was sent while ``requests`` were stored as a group."""
        sent: list[str] = []

        def count_statement(*args: object) -> None:
            sent.append(str(args[2]))

        event.listen(store.engine, "before_cursor_execute", count_statement)
        try:
            futures = committer.one_group(requests)
        finally:
            event.remove(store.engine, "before_cursor_execute", count_statement)
        for future in futures:
            assert not future.result(TIMEOUT).replayed
        return len(sent)

    def test_ten_requests_with_idempotency_keys_take_as_many_statements_as_two(
        self, store: Database, committer: Committer
    ) -> None:
        account = new_account(store, "group")

        def keyed(n: int, prefix: str) -> list[IngestRequest]:
            return [
                request(
                    account,
                    f"{prefix}-{i}@example.com",
                    idempotency=IdempotencyRequest(f"{prefix}-{i}", "f", 3600),
                )
                for i in range(n)
            ]

        # The holder's contact exists before either group is counted.
        self.statements_of_one_group(store, committer, keyed(2, "warm-up"))
        two = self.statements_of_one_group(store, committer, keyed(2, "two"))
        ten = self.statements_of_one_group(store, committer, keyed(10, "ten"))
        assert ten == two
        assert count(store, activities, account) == 3 * 1 + 2 + 2 + 10  # holders and members


class TestIdempotencyKeysOfEarlierRequests:
    def test_each_member_gets_its_own_keys_answer_replay_conflict_or_stored(
        self, store: Database, committer: Committer
    ) -> None:
        """Keys claimed by one statement for the whole group, answered as if claimed alone."""
        account = new_account(store, "group")
        used = IdempotencyRequest("used", "fingerprint-a", 3600)
        earlier = ingest_records(
            store,
            account,
            request(account, "earlier@example.com").records,
            now=NOW,
            respond=respond,
            idempotency=used,
        )
        replay, changed, fresh, keyless = committer.one_group(
            [
                request(account, "earlier@example.com", idempotency=used),
                request(
                    account,
                    "changed@example.com",
                    idempotency=IdempotencyRequest("used", "fingerprint-b", 3600),
                ),
                request(
                    account,
                    "fresh@example.com",
                    idempotency=IdempotencyRequest("fresh", "fingerprint-c", 3600),
                ),
                request(account, "keyless@example.com"),
            ]
        )
        assert replay.result().replayed
        assert replay.result().body == earlier.body
        assert isinstance(changed.exception(), IdempotencyConflict)
        assert not fresh.result().replayed
        assert body(fresh)["stored"] == body(keyless)["stored"] == 1
        assert stored_emails(store, account) == [
            "earlier@example.com",
            "fresh@example.com",
            "holder@example.com",
            "keyless@example.com",
        ]
        # The fresh key keeps its answer: sent again alone, it is replayed.
        again = ingest_records(
            store,
            account,
            request(account, "fresh@example.com").records,
            now=NOW,
            respond=respond,
            idempotency=IdempotencyRequest("fresh", "fingerprint-c", 3600),
        )
        assert again.replayed
        assert again.body == fresh.result().body
