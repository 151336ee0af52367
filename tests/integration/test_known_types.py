"""Recognised property types, cached per process once committed.

Issue 18: "credential and registry lookups cached per process". A type once
recognised never changes (first use wins, docs/dialects/cordial.md), so a
batch whose every property type this process has seen committed sends no
registry statement; what a rolled-back transaction or savepoint recognised
is not remembered.
"""

from __future__ import annotations

from dataclasses import replace

import orjson
from sqlalchemy import event, select

from eventyard.core.model import Account, IngestRules, RecordsOutcome, StoredResponse
from eventyard.services.ingest import ingest_records
from eventyard.storage.database import Database
from eventyard.storage.tables import activities, event_type_properties, event_types
from tests.integration.helpers import NOW, activity, new_account

RULES = IngestRules(recognize_types=True)


def respond(outcome: RecordsOutcome) -> StoredResponse:
    return StoredResponse(200, orjson.dumps({"stored": outcome.stored_activities}))


def store_one(store: Database, account: Account, properties: dict[str, object]) -> list[str]:
    """Store one ``Buy`` activity; the statements sent that name the type registry."""
    sent: list[str] = []

    def note(*args: object) -> None:
        sent.append(str(args[2]))

    record = replace(activity("Buy", email="a@example.com"), properties=properties)
    event.listen(store.engine, "before_cursor_execute", note)
    try:
        ingest_records(store, account, [record], now=NOW, respond=respond, rules=RULES)
    finally:
        event.remove(store.engine, "before_cursor_execute", note)
    return [s for s in sent if "event_type" in s]


def registered(store: Database, account_id: str) -> list[tuple[str, str, str | None]]:
    ep = event_type_properties.c
    with store.engine.connect() as conn:
        names = conn.execute(
            select(event_types.c.name).where(event_types.c.account_id == account_id)
        ).scalars()
        props = conn.execute(
            select(ep.event_name, ep.property, ep.value_type).where(ep.account_id == account_id)
        )
        return sorted([(n, "", None) for n in names] + [tuple(r) for r in props])  # type: ignore[misc]


def unsearchable(store: Database, account_id: str) -> list[object]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(activities.c.unsearchable)
            .where(activities.c.account_id == account_id)
            .order_by(activities.c.id)
        )
        return [r.unsearchable for r in rows]


class TestKnownTypes:
    def test_a_batch_of_known_types_sends_no_registry_statement_and_is_still_flagged(
        self, store: Database
    ) -> None:
        account = new_account(store, "types")
        assert store_one(store, account, {"n": 1}) != []  # first use: registered
        assert store_one(store, account, {"n": 2}) == []  # known: nothing sent
        assert store_one(store, account, {"n": "two"}) == []  # known, another type
        assert unsearchable(store, account.id) == [None, None, ["n"]]
        assert store_one(store, account, {"n": 3, "m": True}) != []  # a new property
        assert registered(store, account.id) == [
            ("Buy", "", None),
            ("Buy", "m", "boolean"),
            ("Buy", "n", "number"),
        ]

    def test_types_a_rolled_back_savepoint_recognised_are_registered_by_the_next_use(
        self, store: Database
    ) -> None:
        account = new_account(store, "types")
        with store.unit_of_work() as uow:
            try:
                with uow.savepoint():
                    uow.event_types.recognize_types(account.id, {"Buy": {"n": "number"}}, NOW)
                    raise RuntimeError("the batch failed")
            except RuntimeError:
                pass
            uow.commit()
        with store.unit_of_work() as uow:  # rolled back: never committed
            uow.event_types.recognize_types(account.id, {"Buy": {"n": "number"}}, NOW)
        assert registered(store, account.id) == []
        assert store_one(store, account, {"n": 1}) != []
        assert registered(store, account.id) == [("Buy", "", None), ("Buy", "n", "number")]
