"""ingest_records: profiles, contacts named by id, registry limits, dry runs (both backends)."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import orjson

from eventyard.core.identifiers import Identifier
from eventyard.core.model import (
    Account,
    ContactHint,
    EventTypeLimits,
    NewActivity,
    ProfileUpdate,
    RecordsOutcome,
    StoredResponse,
)
from eventyard.services.contacts import get_contact
from eventyard.services.ingest import IdempotencyRequest, ingest_records
from eventyard.storage.database import Database
from eventyard.storage.tables import event_types, idempotency_keys
from tests.integration.helpers import NOW, activity, contact_rows, count, new_account, stored_names

LIMITS = EventTypeLimits(max_types=5, max_properties_per_type=3, reserved_names=frozenset({"Sys"}))


def outcome_json(outcome: RecordsOutcome) -> StoredResponse:
    body = {
        "stored": outcome.stored_activities,
        "profiles": outcome.updated_profiles,
        "rejected": [[r.index, r.code] for r in outcome.rejected],
        "contacts": outcome.contact_ids,
        "dry_run": outcome.dry_run,
    }
    return StoredResponse(200, orjson.dumps(body))


def run(store: Database, account: Account, records: list[Any], **options: Any) -> dict[str, Any]:
    response = ingest_records(store, account, records, now=NOW, respond=outcome_json, **options)
    result: dict[str, Any] = orjson.loads(response.body)
    return result


def profile(attributes: dict[str, Any], **identifiers: str) -> ProfileUpdate:
    return ProfileUpdate(
        identifiers=tuple(Identifier(k, v) for k, v in identifiers.items()),
        attributes=attributes,
        dialect="test",
    )


class TestProfiles:
    def test_attributes_merge_shallowly_across_records_and_requests(self, store: Database) -> None:
        acct = new_account(store, "profiles")
        first = run(
            store,
            acct,
            [
                profile({"Name": "Jane", "Plan": "free", "prefs": {"a": 1}}, identity="u-1"),
                profile({"Plan": "pro"}, identity="u-1"),
            ],
        )
        assert first["profiles"] == 2
        run(store, acct, [profile({"prefs": {"b": 2}, "Gone": None}, identity="u-1")])
        contact = get_contact(store, acct, first["contacts"][0])
        assert contact.attributes == {
            "Name": "Jane",
            "Plan": "pro",
            "prefs": {"b": 2},
            "Gone": None,
        }
        assert len(contact_rows(store, acct)) == 1

    def test_profile_and_events_of_one_batch_meet_on_one_contact(self, store: Database) -> None:
        acct = new_account(store, "mixed")
        result = run(
            store,
            acct,
            [activity("Viewed", email="m@x.io"), profile({"Name": "M"}, email="m@x.io")],
        )
        assert result["contacts"][0] == result["contacts"][1]
        assert get_contact(store, acct, result["contacts"][0]).attributes == {"Name": "M"}


class TestContactHints:
    def hinted(self, contact_id: str, fallback: Identifier | None) -> NewActivity:
        return replace(
            activity("Hinted"), identifiers=(), contact_hint=ContactHint(contact_id, fallback)
        )

    def test_an_existing_contact_id_takes_the_record(self, store: Database) -> None:
        acct = new_account(store, "hint")
        known = run(store, acct, [activity("Signup", email="h@x.io")])["contacts"][0]
        result = run(store, acct, [self.hinted(known, Identifier("objectId", known))])
        assert result["contacts"] == [known]
        assert sorted(stored_names(store, acct)) == ["Hinted", "Signup"]
        # The fallback identifier was not attached: the id named the contact itself.
        kinds = {i.kind for i in get_contact(store, acct, known).identifiers}
        assert kinds == {"email"}

    def test_unknown_id_falls_back_to_the_identifier(self, store: Database) -> None:
        acct = new_account(store, "fallback")
        ghost = "0" * 24
        result = run(store, acct, [self.hinted(ghost, Identifier("objectId", ghost))])
        contact = get_contact(store, acct, result["contacts"][0])
        assert contact.identifiers == (Identifier("objectId", ghost),)

    def test_unknown_id_without_fallback_is_rejected_and_the_rest_stored(
        self, store: Database
    ) -> None:
        acct = new_account(store, "nofallback")
        result = run(store, acct, [self.hinted("f" * 24, None), activity("Ok", email="o@x.io")])
        assert result["rejected"] == [[0, "unknown_contact"]]
        assert result["contacts"][0] is None
        assert stored_names(store, acct) == ["Ok"]

    def test_another_accounts_contact_id_is_unknown_here(self, store: Database) -> None:
        mine, theirs = new_account(store, "mine"), new_account(store, "theirs")
        their_contact = run(store, theirs, [activity("X", email="t@x.io")])["contacts"][0]
        result = run(store, mine, [self.hinted(their_contact, None)])
        assert result["rejected"] == [[0, "unknown_contact"]]
        assert stored_names(store, theirs) == ["X"]


class TestRegistryLimits:
    def test_records_beyond_the_type_limit_are_refused_the_rest_stored(
        self, store: Database
    ) -> None:
        acct = new_account(store, "types")
        batch = [activity(f"T{i}", email=f"t{i}@x.io") for i in range(6)]
        result = run(store, acct, batch, event_limits=LIMITS)
        # 5 types, 1 reserved: 4 user types fit.
        assert result["rejected"] == [[4, "event_type_limit"], [5, "event_type_limit"]]
        assert result["stored"] == 4
        again = run(
            store, acct, [activity("T0", email="z@x.io"), activity("T9")], event_limits=LIMITS
        )
        assert again["rejected"] == [[1, "event_type_limit"]]

    def test_property_keys_are_limited_per_type(self, store: Database) -> None:
        acct = new_account(store, "keys")
        records = [
            replace(activity("T", email="k@x.io"), properties={"a": 1, "b": 2}),
            replace(activity("T", email="k@x.io"), properties={"c": 3, "d": 4}),
            replace(activity("T", email="k@x.io"), properties={"a": 5, "c": 6}),
        ]
        result = run(store, acct, records, event_limits=LIMITS)
        assert result["rejected"] == [[1, "event_property_limit"]]
        assert result["stored"] == 2

    def test_concurrent_batches_never_exceed_the_type_limit(
        self, store: Database, database_url: str
    ) -> None:
        acct = new_account(store, "race")
        barrier = threading.Barrier(4)
        errors: list[BaseException] = []

        def writer(n: int) -> None:
            db = Database.from_url(database_url, pool_size=2)
            try:
                barrier.wait()
                run(
                    db,
                    acct,
                    [activity(f"W{n}-{i}", email=f"w{n}@x.io") for i in range(3)],
                    event_limits=LIMITS,
                )
            except BaseException as exc:  # reported below
                errors.append(exc)
            finally:
                db.dispose()

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert count(store, event_types, acct) == 4
        assert len(stored_names(store, acct)) == 4


class TestDryRun:
    def test_dry_run_answers_like_the_real_call_and_leaves_nothing(self, store: Database) -> None:
        acct = new_account(store, "dry")
        batch = [activity(f"D{i}", email=f"d{i}@x.io") for i in range(6)] + [
            profile({"Name": "P"}, email="p@x.io")
        ]
        key = IdempotencyRequest.for_request("dry-key", "/test", b"body", 3600)
        dry = run(store, acct, batch, event_limits=LIMITS, dry_run=True, idempotency=key)
        assert dry["dry_run"] is True
        assert dry["rejected"] == [[4, "event_type_limit"], [5, "event_type_limit"]]
        assert contact_rows(store, acct) == []
        assert count(store, event_types, acct) == 0
        assert count(store, idempotency_keys, acct) == 0
        real = run(store, acct, batch, event_limits=LIMITS, idempotency=key)
        assert {k: v for k, v in real.items() if k not in ("contacts", "dry_run")} == {
            k: v for k, v in dry.items() if k not in ("contacts", "dry_run")
        }
        assert count(store, idempotency_keys, acct) == 1
