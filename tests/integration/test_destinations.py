"""The outbox and delivery machinery in process, on both databases, with a real receiver.

docs/destinations.md: "an activity is queued in the transaction that stores
it", "a retried delivery is the same request", "401/403 and other refusals
go to the dead letters with the receiver's answer".
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from eventyard.core.model import Account
from eventyard.dialects.registry import destination_formats
from eventyard.jobs.deliveries import DeliveryThreads
from eventyard.services.destinations import manage
from eventyard.services.destinations.delivery import Deliverer
from eventyard.services.destinations.sealing import CredentialSealer
from eventyard.services.ingest.records import store_records
from eventyard.services.pacing import Foreground
from eventyard.settings import Settings
from eventyard.storage.database import Database
from tests.e2e.destination_support import WebhookReceiver, webhook_receiver
from tests.integration.helpers import NOW, activity, new_account
from tests.support import own_database

SETTINGS = Settings(
    url_allowlist="127.0.0.1/32", destination_timeout_seconds=5, destination_linger_seconds=0
)


@pytest.fixture
def store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Database]:
    """A database of its own: no server's delivery threads take these tests' deliveries."""
    if backend == "postgresql":
        request.getfixturevalue("postgres_url")
    with own_database(backend, tmp_path) as url:
        database = Database.from_url(url, pool_size=2)
        try:
            yield database
        finally:
            database.dispose()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as found:
        yield found


def create(store: Database, account: Account, url: str, secret: str, **extra: object) -> str:
    body = {
        "name": "hook",
        "kind": "webhook",
        "url": url,
        "credentials": {"secret": secret},
        **extra,
    }
    created, _ = manage.create_destination(
        store,
        CredentialSealer(store, SETTINGS),
        destination_formats(),
        SETTINGS,
        account,
        body,
        NOW,
    )
    return created.id


def pending(store: Database, account: Account, destination_id: str) -> int:
    return manage.get_destination(store, account.id, destination_id)[1].pending


def deliverer(store: Database, clock_offset: list[float]) -> Deliverer:
    return Deliverer(
        store,
        SETTINGS,
        destination_formats(),
        CredentialSealer(store, SETTINGS),
        worker_id="test-worker",
        clock=lambda: NOW + timedelta(seconds=clock_offset[0]),
    )


def deliver_all(found: Deliverer) -> int:
    attempts = 0
    while found.run_once():
        attempts += 1
    return attempts


class TestOutbox:
    def test_an_ingest_that_rolls_back_queues_nothing(
        self, store: Database, receiver: WebhookReceiver
    ) -> None:
        account = new_account(store, "outbox")
        destination_id = create(store, account, receiver.url, receiver.secret)

        def fail_after_storing() -> None:
            with store.unit_of_work() as uow:
                store_records(uow, account, [activity("Viewed", email="a@example.com")], now=NOW)
                raise RuntimeError("the request failed after storing")

        with pytest.raises(RuntimeError):
            fail_after_storing()
        assert pending(store, account, destination_id) == 0
        with store.unit_of_work() as uow:
            store_records(uow, account, [activity("Viewed", email="a@example.com")], now=NOW)
            uow.commit()
        assert pending(store, account, destination_id) == 1

    def test_each_destination_queues_what_passes_its_filter(
        self, store: Database, receiver: WebhookReceiver
    ) -> None:
        account = new_account(store, "filters")
        everything = create(store, account, receiver.url, receiver.secret)
        viewed = create(store, account, receiver.url, receiver.secret, filter={"names": ["Viewed"]})
        nothing = create(
            store,
            account,
            receiver.url,
            receiver.secret,
            filter={"names": ["Viewed"], "sources": ["ios"]},
        )
        batch = [activity("Viewed", email="a@example.com"), activity("Bought", email="b@x.io")]
        with store.unit_of_work() as uow:
            store_records(uow, account, batch, now=NOW)
            uow.commit()
        assert pending(store, account, everything) == 2
        assert pending(store, account, viewed) == 1
        assert pending(store, account, nothing) == 0


class TestDeliverer:
    def test_a_retried_delivery_is_the_same_request(
        self, store: Database, receiver: WebhookReceiver
    ) -> None:
        """503 then 200: the second attempt has the same body, delivery id and key."""
        account = new_account(store, "retry")
        destination_id = create(store, account, receiver.url, receiver.secret)
        with store.unit_of_work() as uow:
            store_records(
                uow, account, [activity("Viewed", email=f"{n}@x.io") for n in range(3)], now=NOW
            )
            uow.commit()
        receiver.answer_with(503)
        clock = [0.0]
        found = deliverer(store, clock)
        try:
            attempts = deliver_all(found)
            assert attempts >= 1
            assert receiver.taken == []
            failed = len(receiver.requests)
            receiver.answer_with(200)
            clock[0] = 600  # past every backoff
            deliver_all(found)
        finally:
            found.close()
        first, again = receiver.requests[0], receiver.requests[failed]
        retried = [
            r
            for r in receiver.requests[failed:]
            if r.headers["idempotency-key"] == first.headers["idempotency-key"]
        ]
        assert retried
        assert retried[0].body == first.body
        assert retried[0].headers["x-eventyard-delivery"] == first.headers["x-eventyard-delivery"]
        assert again.status == 200
        assert len(receiver.taken) == 3
        destination, stats = manage.get_destination(store, account.id, destination_id)
        assert stats.pending == 0
        assert destination.failed_attempts >= 1
        assert destination.delivered == 3

    @pytest.mark.parametrize("status", [400, 403, 404, 301])
    def test_a_refusal_sends_the_request_to_the_dead_letters(
        self, store: Database, receiver: WebhookReceiver, status: int
    ) -> None:
        account = new_account(store, f"refused-{status}")
        destination_id = create(store, account, receiver.url, receiver.secret)
        with store.unit_of_work() as uow:
            store_records(uow, account, [activity("Viewed", email="a@x.io")], now=NOW)
            uow.commit()
        receiver.answer_with(status, Location="http://127.0.0.1:9/elsewhere")
        found = deliverer(store, [0.0])
        try:
            deliver_all(found)
        finally:
            found.close()
        letters = manage.list_dead_letters(store, account.id, destination_id, 10, None)
        assert [letter.status for letter in letters] == [status]
        assert "refused" in (letters[0].answer or "")
        destination, stats = manage.get_destination(store, account.id, destination_id)
        assert stats.pending == 0
        assert stats.dead == 1
        assert destination.last_error is not None


class TestGivingWayToIngest:
    """docs/destinations.md, "Deliveries and ingest on the same server": while the server
    process receives ingest, a delivery thread takes EVENTYARD_DESTINATION_BUSY_SHARE of
    the time; a delivery whose oldest activity waited EVENTYARD_DESTINATION_CATCH_UP_SECONDS
    does not pause, and `eventyard worker` processes (no foreground) never pause."""

    SHARE = 0.25

    def threads(self, store: Database, foreground: Foreground | None) -> DeliveryThreads:
        settings = SETTINGS.model_copy(
            update={"destination_busy_share": self.SHARE, "destination_catch_up_seconds": 5}
        )
        return DeliveryThreads(
            store, settings, destination_formats(), worker_id="pacing", foreground=foreground
        )

    def delivered_after(
        self, store: Database, receiver: WebhookReceiver, waited_seconds: float
    ) -> Deliverer:
        """A deliverer that has just delivered activities queued ``waited_seconds`` ago."""
        account = new_account(store, f"pacing{int(waited_seconds)}")
        create(store, account, receiver.url, receiver.secret)
        with store.unit_of_work() as uow:
            store_records(uow, account, [activity("Viewed", email="p@x.io")], now=NOW)
            uow.commit()
        found = deliverer(store, [waited_seconds])
        assert found.run_once()
        assert len(receiver.taken) >= 1
        return found

    @pytest.mark.parametrize(
        ("waited_seconds", "pause"),
        # 0.3 s of delivery at a quarter of the time: 0.9 s of pause; none when late.
        [(1, 0.9), (30, 0.0)],
    )
    def test_a_delivery_pauses_while_ingest_is_answered_unless_late(
        self, store: Database, receiver: WebhookReceiver, waited_seconds: float, pause: float
    ) -> None:
        foreground = Foreground()
        found = self.delivered_after(store, receiver, waited_seconds=waited_seconds)
        assert found.last_wait_seconds >= waited_seconds
        slept: list[float] = []
        try:
            with foreground.serving():
                paused = self.threads(store, foreground).give_way(found, 0.3, slept.append)
        finally:
            found.close()
        assert paused == pytest.approx(pause)
        assert sum(slept) == pytest.approx(pause)

    def test_no_pause_without_ingest_or_outside_the_server(
        self, store: Database, receiver: WebhookReceiver
    ) -> None:
        found = self.delivered_after(store, receiver, waited_seconds=1)
        slept: list[float] = []
        try:
            quiet = self.threads(store, Foreground()).give_way(found, 0.3, slept.append)
            worker = self.threads(store, None).give_way(found, 0.3, slept.append)
        finally:
            found.close()
        assert (quiet, worker, slept) == (0, 0, [])
