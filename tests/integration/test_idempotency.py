"""Idempotency keys and dedup keys: a retried request never stores twice.

DESIGN.md: "Acknowledged means durable: a 2xx is sent only after the
transaction that stores the data has committed." A client that lost that 2xx
retries with the same ``Idempotency-Key``; it must get the first response back
and nothing may be stored again. Concurrent retries are covered in
``test_concurrency.py``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from eventyard.core.errors import IdempotencyConflict
from eventyard.core.model import Account, IngestOutcome, NewAccount, NewActivity, StoredResponse
from eventyard.services import idempotency as idempotency_service
from eventyard.services.idempotency import IdempotencyRequest, purge_idempotency_keys
from eventyard.services.ingest import ingest_activities
from eventyard.storage.database import Database
from eventyard.storage.tables import activities, contacts, idempotency_keys
from tests.integration import helpers
from tests.integration.helpers import NOW, count, new_account, stored_names

ROUTE = "/v1/activity/upload"
DAY = 24 * 3600


def activity(email: str, name: str = "Add To Cart", dedup_key: str | None = None) -> NewActivity:
    """An activity of the contact with ``email``: here every event names one e-mail only."""
    return helpers.activity(name, dedup_key=dedup_key, email=email)


def body_of(batch: list[NewActivity]) -> bytes:
    """The request body a dialect would have parsed ``batch`` from."""
    return orjson.dumps([{"email": a.identifiers[0].value, "activity_name": a.name} for a in batch])


class Responder:
    """Renders the dialect's response and remembers how often it was asked to."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, outcome: IngestOutcome) -> StoredResponse:
        self.calls += 1
        return StoredResponse(
            200,
            orjson.dumps(
                {
                    "status": "success",
                    "stored": outcome.stored,
                    "duplicates": outcome.duplicates,
                    "call": self.calls,
                }
            ),
        )


def send(
    store: Database,
    account: Account,
    batch: list[NewActivity],
    *,
    key: str | None,
    now: datetime = NOW,
    ttl_seconds: int = DAY,
    respond: Any = None,
) -> StoredResponse:
    """What a dialect route does with a request carrying ``Idempotency-Key: key``."""
    idempotency = (
        IdempotencyRequest.for_request(key, ROUTE, body_of(batch), ttl_seconds) if key else None
    )
    return ingest_activities(
        store,
        account,
        batch,
        now=now,
        respond=respond or Responder(),
        idempotency=idempotency,
    )


class TestIdempotencyKeys:
    def test_a_retry_with_the_same_key_and_body_gets_the_first_response(
        self, store: Database, account: NewAccount
    ) -> None:
        acct = account.account
        batch = [activity("a@x.com"), activity("b@x.com", "Checkout")]
        responder = Responder()
        first = send(store, acct, batch, key="key-1", respond=responder)

        retry = send(
            store, acct, batch, key="key-1", now=NOW + timedelta(minutes=5), respond=responder
        )

        assert first.replayed is False
        assert retry.replayed is True
        assert (retry.status_code, retry.body, retry.media_type) == (
            first.status_code,
            first.body,
            first.media_type,
        )
        assert orjson.loads(retry.body) == {
            "status": "success",
            "stored": 2,
            "duplicates": 0,
            "call": 1,
        }
        assert responder.calls == 1
        assert stored_names(store, acct) == ["Add To Cart", "Checkout"]
        assert count(store, contacts, acct) == 2

    def test_the_same_key_with_another_body_is_refused_with_409(
        self, store: Database, account: NewAccount
    ) -> None:
        """Reusing a key for a different request is a client bug; storing the
        second body or replaying the first response would both hide it."""
        acct = account.account
        first_batch = [activity("a@x.com")]
        first = send(store, acct, first_batch, key="key-2")

        with pytest.raises(IdempotencyConflict) as refused:
            send(store, acct, [activity("other@x.com", "Purchase")], key="key-2")

        assert refused.value.status == 409
        assert stored_names(store, acct) == ["Add To Cart"]
        assert count(store, contacts, acct) == 1
        # The first request's answer is intact.
        again = send(store, acct, first_batch, key="key-2")
        assert (again.replayed, again.body) == (True, first.body)

    def test_keys_belong_to_one_account(self, store: Database, account: NewAccount) -> None:
        """Tenants never see each other's data, replayed responses included."""
        mine = account.account
        theirs = new_account(store, "other")
        batch = [activity("a@x.com")]
        send(store, mine, batch, key="shared-key")

        theirs_response = send(store, theirs, batch, key="shared-key")

        assert theirs_response.replayed is False
        assert stored_names(store, theirs) == ["Add To Cart"]
        assert stored_names(store, mine) == ["Add To Cart"]

    def test_a_key_can_be_used_again_once_its_lifetime_is_over(
        self, store: Database, account: NewAccount
    ) -> None:
        acct = account.account
        first_batch = [activity("a@x.com")]
        later_batch = [activity("a@x.com", "Purchase")]

        def send_at(seconds: int, batch: list[NewActivity]) -> StoredResponse:
            """Send ``batch`` with the key "key-3" (lifetime 60 s), ``seconds`` after NOW."""
            return send(
                store,
                acct,
                batch,
                key="key-3",
                now=NOW + timedelta(seconds=seconds),
                ttl_seconds=60,
            )

        send_at(0, first_batch)

        with pytest.raises(IdempotencyConflict):
            send_at(30, later_batch)
        reused = send_at(61, later_batch)

        assert reused.replayed is False
        assert stored_names(store, acct) == ["Add To Cart", "Purchase"]
        # From now on the key stands for the later request.
        replay = send_at(62, later_batch)
        assert (replay.replayed, replay.body) == (True, reused.body)
        with pytest.raises(IdempotencyConflict):
            send_at(63, first_batch)

    def test_a_request_that_fails_leaves_no_key_so_its_retry_proceeds(
        self, store: Database, account: NewAccount
    ) -> None:
        """Nothing was acknowledged, so nothing may be remembered: neither the
        activities nor the key (a remembered key would replay a response that
        was never sent, or block the retry forever)."""
        acct = account.account
        batch = [activity("a@x.com")]

        def crash(_outcome: IngestOutcome) -> StoredResponse:
            raise RuntimeError("renderer crashed after the activities were inserted")

        with pytest.raises(RuntimeError, match="renderer crashed"):
            send(store, acct, batch, key="key-4", respond=crash)

        assert count(store, idempotency_keys, acct) == 0
        assert count(store, activities, acct) == 0
        assert count(store, contacts, acct) == 0
        retry = send(store, acct, batch, key="key-4")
        assert retry.replayed is False
        assert orjson.loads(retry.body)["stored"] == 1
        assert stored_names(store, acct) == ["Add To Cart"]

    def test_without_a_key_every_request_is_stored(
        self, store: Database, account: NewAccount
    ) -> None:
        acct = account.account
        batch = [activity("a@x.com")]
        send(store, acct, batch, key=None)
        send(store, acct, batch, key=None)

        assert stored_names(store, acct) == ["Add To Cart", "Add To Cart"]
        assert count(store, idempotency_keys, acct) == 0


class TestDedupKeys:
    """An activity's dedup key (DESIGN.md: "dedup key") is stored once per account."""

    def test_activities_with_a_stored_dedup_key_are_skipped_and_counted(
        self, store: Database, account: NewAccount
    ) -> None:
        acct = account.account
        responder = Responder()
        first = orjson.loads(
            send(
                store,
                acct,
                [
                    activity("a@x.com", "First", dedup_key="order-1"),
                    activity("a@x.com", "Same batch again", dedup_key="order-1"),
                    activity("a@x.com", "Second", dedup_key="order-2"),
                ],
                key=None,
                respond=responder,
            ).body
        )
        second = orjson.loads(
            send(
                store,
                acct,
                [
                    activity("a@x.com", "Later again", dedup_key="order-2"),
                    activity("a@x.com", "No key"),
                ],
                key=None,
                respond=responder,
            ).body
        )

        assert (first["stored"], first["duplicates"]) == (2, 1)
        assert (second["stored"], second["duplicates"]) == (1, 1)
        assert stored_names(store, acct) == ["First", "No key", "Second"]

    def test_dedup_keys_belong_to_one_account(self, store: Database, account: NewAccount) -> None:
        mine = account.account
        theirs = new_account(store, "other")
        send(store, mine, [activity("a@x.com", "Mine", dedup_key="order-9")], key=None)
        send(store, theirs, [activity("a@x.com", "Theirs", dedup_key="order-9")], key=None)

        assert stored_names(store, mine) == ["Mine"]
        assert stored_names(store, theirs) == ["Theirs"]


class TestPurge:
    """Expired keys are deleted by the purge, off the ingest path."""

    def test_purge_deletes_expired_keys_and_keeps_live_ones(
        self, store: Database, account: NewAccount
    ) -> None:
        acct = account.account
        send(store, acct, [activity("old@x.com")], key="old", now=NOW - timedelta(days=2))
        send(store, acct, [activity("new@x.com")], key="new", now=NOW)
        assert count(store, idempotency_keys, acct) == 2

        purged = purge_idempotency_keys(store, NOW, DAY)

        assert purged >= 1
        with store.engine.connect() as conn:
            left = set(
                conn.execute(
                    select(idempotency_keys.c.key).where(idempotency_keys.c.account_id == acct.id)
                ).scalars()
            )
        assert left == {"new"}
        # The live key still replays; the purged one is a fresh request again.
        assert send(store, acct, [activity("new@x.com")], key="new", now=NOW).replayed
        assert not send(store, acct, [activity("old@x.com")], key="old", now=NOW).replayed

    def test_purge_works_through_many_transactions(
        self, store: Database, account: NewAccount, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Large backlogs are deleted in bounded transactions until none is left."""
        monkeypatch.setattr(idempotency_service, "PURGE_BATCH", 3)
        acct = account.account
        for i in range(7):
            send(store, acct, [activity(f"u{i}@x.com")], key=f"k{i}", now=NOW - timedelta(days=3))
        purge_idempotency_keys(store, NOW, DAY)
        assert count(store, idempotency_keys, acct) == 0
