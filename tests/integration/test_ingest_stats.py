"""Message-id dedup, group memberships, activity context, hourly counts and rejections.

On both databases. Segment's duplicate-data guide is the reason for message
ids: "Segment deduplicates on the event's messageId, not on the contents of
the event payload" and "stores at least 24 hours' worth of event
messageIds" (docs/api.md, ``dedup_window_hours``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from eventyard.core.commands import Record, record_from_json, record_to_json
from eventyard.core.identifiers import Identifier
from eventyard.core.model import (
    GroupMembership,
    NewAccount,
    NewActivity,
    ProfileUpdate,
    RecordsOutcome,
    StoredResponse,
)
from eventyard.dialects.registry import create_account
from eventyard.services.accounts import update_account_settings
from eventyard.services.ingest import ingest_records
from eventyard.services.ingest_stats import (
    RejectionError,
    compact_activity_counts,
    hourly_activity_counts,
    latest_rejections,
    purge_message_ids,
    record_index,
    record_rejection,
    rejected_records_since,
)
from eventyard.storage.database import Database
from eventyard.storage.tables import activity_counts, message_ids

NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)


def activity(
    user: str,
    name: str = "Order Completed",
    *,
    message_id: str | None = None,
    occurred_at: datetime = NOW,
    context: dict[str, object] | None = None,
    dialect: str = "segment",
) -> NewActivity:
    return NewActivity(
        identifiers=(Identifier("identity", user),),
        name=name,
        occurred_at=occurred_at,
        source="api",
        dialect=dialect,
        properties={"total": 10},
        context=context,
        message_id=message_id,
    )


def ingest(
    store: Database, new: NewAccount, records: Sequence[Record], now: datetime = NOW
) -> RecordsOutcome:
    outcomes: list[RecordsOutcome] = []

    def respond(outcome: RecordsOutcome) -> StoredResponse:
        outcomes.append(outcome)
        return StoredResponse(status_code=200, body=b"{}")

    ingest_records(store, new.account, records, now=now, respond=respond)
    return outcomes[0]


def stored_names(store: Database, new: NewAccount, user: str) -> list[str]:
    with store.unit_of_work(write=False) as uow:
        (contact,) = uow.contacts.find_by_identifier(new.account.id, Identifier("identity", user))
        page = uow.activities.page(new.account.id, contact.id, 100, None)
    return [a.name for a in page.activities]


class TestMessageIds:
    def test_a_retried_message_with_a_new_timestamp_is_stored_once(
        self, store: Database, account: NewAccount
    ) -> None:
        """A retried batch carries a later sentAt, so its corrected timestamp moves:
        the message id alone decides."""
        first = ingest(store, account, [activity("u1", message_id="m-1")])
        again = ingest(
            store,
            account,
            [activity("u1", message_id="m-1", occurred_at=NOW + timedelta(seconds=3))],
            now=NOW + timedelta(minutes=5),
        )
        assert (first.stored_activities, again.stored_activities) == (1, 0)
        assert stored_names(store, account, "u1") == ["Order Completed"]

    def test_the_same_id_twice_in_one_batch_keeps_the_first(
        self, store: Database, account: NewAccount
    ) -> None:
        outcome = ingest(
            store,
            account,
            [
                activity("u2", "First", message_id="dup"),
                activity("u2", "Second", message_id="dup"),
                activity("u2", "Third", message_id="other"),
            ],
        )
        assert outcome.stored_activities == 2
        assert outcome.contact_ids[1] is None
        assert sorted(stored_names(store, account, "u2")) == ["First", "Third"]

    def test_ids_are_per_account(self, store: Database, account: NewAccount) -> None:
        other = create_account(store, "other")
        assert ingest(store, account, [activity("u3", message_id="shared")]).stored_activities
        assert ingest(store, other, [activity("u3", message_id="shared")]).stored_activities

    def test_an_id_is_claimable_again_after_the_accounts_window(
        self, store: Database, account: NewAccount
    ) -> None:
        refreshed = replace(
            account,
            account=update_account_settings(store, account.account, {"dedup_window_hours": 1}),
        )
        ingest(store, refreshed, [activity("u4", message_id="late")])
        inside = ingest(
            store, refreshed, [activity("u4", message_id="late")], now=NOW + timedelta(minutes=59)
        )
        after = ingest(
            store, refreshed, [activity("u4", message_id="late")], now=NOW + timedelta(minutes=61)
        )
        assert (inside.stored_activities, after.stored_activities) == (0, 1)

    def test_a_profile_update_and_a_group_call_are_deduplicated_too(
        self, store: Database, account: NewAccount
    ) -> None:
        update = ProfileUpdate(
            identifiers=(Identifier("identity", "u5"),),
            attributes={"plan": "pro"},
            dialect="segment",
            message_id="p-1",
        )
        ingest(store, account, [update])
        changed = ProfileUpdate(
            identifiers=(Identifier("identity", "u5"),),
            attributes={"plan": "free"},
            dialect="segment",
            message_id="p-1",
        )
        outcome = ingest(store, account, [changed])
        assert outcome.updated_profiles == 0
        with store.unit_of_work(write=False) as uow:
            (contact,) = uow.contacts.find_by_identifier(
                account.account.id, Identifier("identity", "u5")
            )
        assert contact.attributes["plan"] == "pro"

    def test_concurrent_requests_with_one_id_store_it_once(
        self, store: Database, account: NewAccount
    ) -> None:
        results: list[int] = []
        barrier = threading.Barrier(4)

        def send() -> None:
            barrier.wait()
            results.append(
                ingest(store, account, [activity("u6", message_id="race")]).stored_activities
            )

        threads = [threading.Thread(target=send) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == [0, 0, 0, 1]
        assert stored_names(store, account, "u6") == ["Order Completed"]

    def test_the_purge_forgets_only_ids_older_than_the_longest_window(
        self, store: Database, account: NewAccount
    ) -> None:
        ingest(store, account, [activity("u7", message_id="old")], now=NOW - timedelta(days=100))
        ingest(store, account, [activity("u7", message_id="new")])
        purge_message_ids(store, NOW, timedelta(days=90))
        with store.unit_of_work(write=False) as uow:
            kept = uow.conn.execute(  # type: ignore[attr-defined]
                select(message_ids.c.message_id).where(
                    message_ids.c.account_id == account.account.id
                )
            ).all()
        assert [r[0] for r in kept] == ["new"]


class TestGroupsAndContext:
    def test_group_traits_merge_key_by_key(self, store: Database, account: NewAccount) -> None:
        ident = (Identifier("identity", "g1"),)
        ingest(
            store,
            account,
            [GroupMembership(ident, "acme", {"name": "Acme", "plan": "free"}, "segment")],
        )
        ingest(store, account, [GroupMembership(ident, "acme", {"plan": "pro"}, "segment")])
        ingest(store, account, [GroupMembership(ident, "beta", {}, "segment")])
        with store.unit_of_work(write=False) as uow:
            (contact,) = uow.contacts.find_by_identifier(account.account.id, ident[0])
            groups = uow.groups.of_contact(account.account.id, contact.id)
        assert [(g.group_id, g.traits) for g in groups] == [
            ("acme", {"name": "Acme", "plan": "pro"}),
            ("beta", {}),
        ]

    def test_concurrent_first_memberships_keep_every_trait(
        self, store: Database, account: NewAccount
    ) -> None:
        ident = (Identifier("identity", "g2"),)
        ingest(store, account, [activity("g2")])  # the contact exists first
        barrier = threading.Barrier(3)

        def join(key: str) -> None:
            barrier.wait()
            ingest(store, account, [GroupMembership(ident, "team", {key: True}, "segment")])

        threads = [threading.Thread(target=join, args=(k,)) for k in ("a", "b", "c")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with store.unit_of_work(write=False) as uow:
            (contact,) = uow.contacts.find_by_identifier(account.account.id, ident[0])
            (group,) = uow.groups.of_contact(account.account.id, contact.id)
        assert group.traits == {"a": True, "b": True, "c": True}

    def test_context_is_kept_as_sent(self, store: Database, account: NewAccount) -> None:
        context = {"context": {"library": {"name": "analytics-python"}}, "integrations": {}}
        ingest(store, account, [activity("c1", context=context)])
        with store.unit_of_work(write=False) as uow:
            (contact,) = uow.contacts.find_by_identifier(
                account.account.id, Identifier("identity", "c1")
            )
            (stored,) = uow.activities.page(account.account.id, contact.id, 10, None).activities
        assert stored.context == context

    def test_queued_records_keep_their_new_fields(self) -> None:
        records: list[Record] = [
            activity("q", message_id="m", context={"context": {"ip": "1.2.3.4"}}),
            ProfileUpdate((Identifier("identity", "q"),), {"a": 1}, "segment", message_id="p"),
            GroupMembership((Identifier("identity", "q"),), "g", {"t": 1}, "segment", None, "x"),
        ]
        assert [record_from_json(record_to_json(r)) for r in records] == records


class TestHourlyCounts:
    def test_counts_follow_what_was_stored_not_what_was_sent(
        self, store: Database, account: NewAccount
    ) -> None:
        ingest(store, account, [activity("h1"), activity("h1"), activity("h1", "Viewed")])
        ingest(
            store,
            account,
            [activity("h1", message_id="once"), activity("h1", message_id="once")],
            now=NOW + timedelta(hours=1),
        )
        ingest(store, account, [activity("h1", dialect="netcore")], now=NOW + timedelta(hours=1))
        counts = hourly_activity_counts(store, account.account.id, NOW - timedelta(days=7))
        hour = NOW.replace(minute=0)
        assert [(c.hour, c.dialect, c.name, c.count) for c in counts] == [
            (hour, "segment", "Order Completed", 2),
            (hour, "segment", "Viewed", 1),
            (hour + timedelta(hours=1), "netcore", "Order Completed", 1),
            (hour + timedelta(hours=1), "segment", "Order Completed", 1),
        ]

    def test_folding_past_hours_keeps_every_sum(self, store: Database, account: NewAccount) -> None:
        for minute in range(3):
            ingest(store, account, [activity("h2")], now=NOW + timedelta(minutes=minute))
        ingest(store, account, [activity("h2")], now=NOW + timedelta(hours=2))
        before = hourly_activity_counts(store, account.account.id, NOW - timedelta(hours=1))

        def rows() -> int:
            with store.unit_of_work(write=False) as uow:
                return int(
                    uow.conn.execute(  # type: ignore[attr-defined]
                        select(func.count()).where(
                            activity_counts.c.account_id == account.account.id
                        )
                    ).scalar_one()
                )

        assert rows() == 4
        compact_activity_counts(store, NOW + timedelta(hours=2))
        assert rows() == 2
        assert hourly_activity_counts(store, account.account.id, NOW - timedelta(hours=1)) == before
        assert [c.count for c in before] == [3, 1]


class TestRejections:
    def test_latest_first_with_their_errors_and_counts(
        self, store: Database, account: NewAccount
    ) -> None:
        for minute, count in ((1, 3), (2, 1)):
            record_rejection(
                store,
                account.account.id,
                dialect="netcore",
                route="/v1/activity/upload",
                status_code=400,
                rejected_records=count,
                errors=[RejectionError(1, "[1].timestamp", "timestamp is not a date" * 50)],
                now=NOW + timedelta(minutes=minute),
            )
        latest = latest_rejections(store, account.account.id)
        assert [r.rejected_records for r in latest] == [1, 3]
        assert latest[0].errors[0].index == 1
        assert len(latest[0].errors[0].message) == 300
        assert rejected_records_since(store, account.account.id, NOW) == 4
        assert rejected_records_since(store, account.account.id, NOW + timedelta(minutes=2)) == 1

    @pytest.mark.parametrize(
        ("field", "index"),
        [("[3].email", 3), ("activities[12].name", 12), ("body", None), ("x[a]", None)],
    )
    def test_the_record_index_is_read_from_the_field_path(
        self, field: str, index: int | None
    ) -> None:
        assert record_index(field) == index
