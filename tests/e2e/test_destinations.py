"""Destinations end to end: a real eventyard server delivering to a real webhook receiver.

docs/destinations.md, quoted test by test. Each test has an account of its
own on a server (and database) of this module; the receiver is an HTTP
server in the test process (``destination_support.py``) on 127.0.0.1, which
``EVENTYARD_URL_ALLOWLIST`` lets the server reach.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventyard.core.model import NewAccount
from eventyard.dialects.registry import create_account
from eventyard.storage.database import Database
from tests.e2e.destination_support import WebhookReceiver, wait_for, webhook_receiver
from tests.support import admin, netcore_event, own_database, running_server

FAST_DELIVERY = {
    # The receivers are on loopback: only 127.0.0.1 is let in.
    "EVENTYARD_URL_ALLOWLIST": "127.0.0.1/32",
    "EVENTYARD_WORKER_POLL_SECONDS": "0.1",
    "EVENTYARD_JOB_RETRY_BASE_SECONDS": "0.1",
    "EVENTYARD_DESTINATION_RETRY_BASE_SECONDS": "0.2",
    "EVENTYARD_DESTINATION_RETRY_MAX_SECONDS": "1",
    "EVENTYARD_DESTINATION_LEASE_SECONDS": "3",
    "EVENTYARD_DESTINATION_LINGER_SECONDS": "0",
    "EVENTYARD_DESTINATION_TIMEOUT_SECONDS": "2",
}


@dataclass
class Hub:
    database_url: str
    store: Database
    api: httpx.Client
    directory: Path


@pytest.fixture(scope="module")
def hub(backend: str, tmp_path_factory: pytest.TempPathFactory, request: Any) -> Iterator[Hub]:
    if backend == "postgresql":
        request.getfixturevalue("postgres_url")  # PostgreSQL is there (CI fails otherwise)
    directory = tmp_path_factory.mktemp(f"destinations-{backend}")
    with (
        own_database(backend, directory) as url,
        running_server(url, directory / "server.log", FAST_DELIVERY) as server,
        httpx.Client(base_url=server.base_url, timeout=60) as api,
    ):
        store = Database.from_url(url, pool_size=2)
        try:
            yield Hub(url, store, api, directory)
        finally:
            store.dispose()


@pytest.fixture
def tenant(hub: Hub) -> NewAccount:
    return create_account(hub.store, "destinations")


def send_events(hub: Hub, account: NewAccount, events: list[dict[str, Any]]) -> None:
    r = hub.api.post(
        "/v1/activity/upload", json=events, headers={"api-key": account.netcore_api_key}
    )
    assert r.status_code == 200, r.text


def create_webhook(
    hub: Hub, account: NewAccount, receiver: WebhookReceiver, **extra: Any
) -> dict[str, Any]:
    body = {
        "name": "hook",
        "kind": "webhook",
        "url": receiver.url,
        "credentials": {"secret": receiver.secret},
        **extra,
    }
    r = hub.api.post("/api/v1/destinations", json=body, headers=admin(account))
    assert r.status_code == 201, r.text
    return dict(r.json())


def destination(hub: Hub, account: NewAccount, destination_id: str) -> dict[str, Any]:
    r = hub.api.get(f"/api/v1/destinations/{destination_id}", headers=admin(account))
    assert r.status_code == 200, r.text
    return dict(r.json())


def events_of(contacts: int, per_contact: int, name: str = "Add To Cart") -> list[dict[str, Any]]:
    return [
        netcore_event(identity=f"buyer-{c}", activity_name=name, activity_params={"n": n})
        for n in range(per_contact)
        for c in range(contacts)
    ]


def assert_in_order_once(receiver: WebhookReceiver, expected: int) -> list[dict[str, Any]]:
    """Each activity taken once, and each contact's in the order they were stored."""
    taken = receiver.taken
    ids = [a["id"] for a in taken]
    assert len(ids) == len(set(ids)) == expected
    by_contact: dict[str, list[str]] = {}
    for activity in taken:
        by_contact.setdefault(activity["contact_id"], []).append(activity["id"])
    for contact_ids in by_contact.values():
        # Ids grow in the order activities are stored.
        assert contact_ids == sorted(contact_ids)
    return taken


class TestApi:
    def test_a_destination_is_created_listed_read_changed_and_deleted(
        self, hub: Hub, tenant: NewAccount
    ) -> None:
        """POST, GET (list and one), PATCH, DELETE; credentials are never shown."""
        with webhook_receiver() as receiver:
            created = create_webhook(hub, tenant, receiver, filter={"names": ["Add To Cart"]})
            assert "credentials" not in created
            assert created["kind"] == "webhook"
            assert created["enabled"] is True
            assert created["filter"] == {"names": ["Add To Cart"]}
            listed = hub.api.get("/api/v1/destinations", headers=admin(tenant)).json()
            assert [d["id"] for d in listed["destinations"]] == [created["id"]]
            one = destination(hub, tenant, created["id"])
            assert one["pending"] == 0
            assert one["dead"] == 0
            assert one["lag_seconds"] == 0
            assert receiver.secret not in str(listed) + str(one)
            r = hub.api.patch(
                f"/api/v1/destinations/{created['id']}",
                json={"name": "renamed", "enabled": False},
                headers=admin(tenant),
            )
            assert r.status_code == 200, r.text
            assert r.json()["name"] == "renamed"
            assert r.json()["enabled"] is False
            r = hub.api.delete(f"/api/v1/destinations/{created['id']}", headers=admin(tenant))
            assert r.status_code == 204
            r = hub.api.get(f"/api/v1/destinations/{created['id']}", headers=admin(tenant))
            assert r.status_code == 404

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"kind": "carrier-pigeon"}, "kind"),
            ({"credentials": {}}, "credentials.secret"),
            ({"credentials": {"secret": "x", "token": "y"}}, "credentials.token"),
            ({"url": "http://169.254.169.254/latest/meta-data"}, "url"),
            ({"url": "ftp://example.com/"}, "url"),
            ({"filter": {"names": "Add To Cart"}}, "filter"),
            ({"filter": {"colours": ["red"]}}, "filter"),
            ({"backfill_from": "yesterday"}, "backfill_from"),
        ],
    )
    def test_a_bad_field_is_a_422_naming_it(
        self, hub: Hub, tenant: NewAccount, change: dict[str, Any], field: str
    ) -> None:
        """The SSRF guard refuses a link-local URL at creation, as it does import URLs."""
        body = {
            "name": "hook",
            "kind": "webhook",
            "url": "http://127.0.0.1:9/hook",
            "credentials": {"secret": "x"},
            **change,
        }
        r = hub.api.post("/api/v1/destinations", json=body, headers=admin(tenant))
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["error"]["errors"]] == [field]

    def test_another_accounts_destination_is_not_found(self, hub: Hub, tenant: NewAccount) -> None:
        other = create_account(hub.store, "other")
        with webhook_receiver() as receiver:
            created = create_webhook(hub, tenant, receiver)
        path = f"/api/v1/destinations/{created['id']}"
        assert hub.api.get(path, headers=admin(other)).status_code == 404
        assert hub.api.patch(path, json={"name": "x"}, headers=admin(other)).status_code == 404
        assert hub.api.delete(path, headers=admin(other)).status_code == 404
        r = hub.api.post(f"{path}/replay", json={"dead_letters": True}, headers=admin(other))
        assert r.status_code == 404
        assert hub.api.get(f"{path}/dead-letters", headers=admin(other)).status_code == 404
        assert hub.api.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401


class TestDelivery:
    def test_every_activity_arrives_once_signed_in_order_per_contact(
        self, hub: Hub, tenant: NewAccount
    ) -> None:
        """Each request is signed (X-Eventyard-Signature), carries X-Eventyard-Delivery and
        an Idempotency-Key; each activity arrives once, a contact's in the stored order,
        with its contact_id and identifiers."""
        with webhook_receiver() as receiver:
            created = create_webhook(hub, tenant, receiver)
            for _ in range(3):
                send_events(hub, tenant, events_of(contacts=5, per_contact=4))
            wait_for(lambda: len(receiver.taken) >= 60, what="60 activities delivered")
            taken = assert_in_order_once(receiver, 60)
            assert receiver.bad_signatures == 0
            first = receiver.requests[0].headers
            assert first["x-eventyard-delivery"]
            assert first["idempotency-key"]
            assert first["content-type"] == "application/json"
            activity = taken[0]
            assert activity["name"] == "Add To Cart"
            assert activity["dialect"] == "netcore"
            identities = {
                i["value"] for a in taken for i in a["identifiers"] if i["kind"] == "identity"
            }
            assert identities == {f"buyer-{c}" for c in range(5)}
            figures = wait_for(
                lambda: (d := destination(hub, tenant, created["id"]))["pending"] == 0 and d,
                what="nothing pending",
            )
            assert figures["delivered"] == 60
            assert figures["dead"] == 0
            assert figures["last_delivery_at"] is not None

    def test_the_filter_keeps_what_matches_every_list(self, hub: Hub, tenant: NewAccount) -> None:
        with webhook_receiver() as receiver:
            create_webhook(hub, tenant, receiver, filter={"names": ["Purchase"]})
            send_events(hub, tenant, events_of(2, 2, "Add To Cart") + events_of(2, 3, "Purchase"))
            wait_for(lambda: len(receiver.taken) >= 6, what="the purchases")
            send_events(hub, tenant, events_of(1, 1, "Purchase"))
            wait_for(lambda: len(receiver.taken) >= 7, what="the last purchase")
            assert {a["name"] for a in receiver.taken} == {"Purchase"}
            assert len(receiver.taken) == 7

    def test_a_paused_destination_queues_and_delivers_when_resumed(
        self, hub: Hub, tenant: NewAccount
    ) -> None:
        with webhook_receiver() as receiver:
            created = create_webhook(hub, tenant, receiver)
            path = f"/api/v1/destinations/{created['id']}"
            hub.api.patch(path, json={"enabled": False}, headers=admin(tenant))
            send_events(hub, tenant, events_of(2, 2))
            assert destination(hub, tenant, created["id"])["pending"] == 4
            assert receiver.taken == []
            hub.api.patch(path, json={"enabled": True}, headers=admin(tenant))
            wait_for(lambda: len(receiver.taken) >= 4, what="the paused activities")
            assert_in_order_once(receiver, 4)

    def test_a_receiver_down_for_ten_seconds_under_load_loses_nothing(
        self, hub: Hub, tenant: NewAccount
    ) -> None:
        """Connection errors are retried with backoff until the receiver is back."""
        with webhook_receiver() as receiver:
            created = create_webhook(hub, tenant, receiver)
            receiver.down()
            sending = threading.Event()
            sent = [0]

            def load() -> None:
                while not sending.is_set():
                    send_events(hub, tenant, events_of(contacts=10, per_contact=2))
                    sent[0] += 20
                    time.sleep(0.05)

            thread = threading.Thread(target=load)
            thread.start()
            sending.wait(10)
            sending.set()
            thread.join()
            assert destination(hub, tenant, created["id"])["failed_attempts"] > 0
            receiver.up()
            wait_for(lambda: len(receiver.taken) >= sent[0], what="every activity")
            assert_in_order_once(receiver, sent[0])
            figures = wait_for(
                lambda: (d := destination(hub, tenant, created["id"]))["pending"] == 0 and d,
                what="nothing pending",
            )
            assert figures["delivered"] == sent[0]

    def test_a_retryable_answer_is_retried_after_retry_after(
        self, hub: Hub, tenant: NewAccount
    ) -> None:
        """429 and 503 are retried (Retry-After honoured); nothing is dead-lettered."""
        with webhook_receiver() as receiver:
            receiver.answer_with(429, **{"Retry-After": "1"})
            created = create_webhook(hub, tenant, receiver)
            send_events(hub, tenant, events_of(3, 2))
            wait_for(lambda: len(receiver.requests) >= 2, what="two refused attempts")
            receiver.answer_with(200)
            wait_for(lambda: len(receiver.taken) >= 6, what="every activity")
            assert_in_order_once(receiver, 6)
            figures = destination(hub, tenant, created["id"])
            assert figures["dead"] == 0
            assert figures["failed_attempts"] >= 2

    def test_a_401_goes_to_dead_letters_and_a_replay_after_fixing_credentials_delivers(
        self, hub: Hub, tenant: NewAccount
    ) -> None:
        with webhook_receiver() as receiver:
            created = create_webhook(hub, tenant, receiver, credentials={"secret": "wrong"})
            path = f"/api/v1/destinations/{created['id']}"
            send_events(hub, tenant, events_of(3, 2))
            figures = wait_for(
                lambda: (d := destination(hub, tenant, created["id"]))["dead"] == 6 and d,
                what="six dead letters",
            )
            assert figures["pending"] == 0
            assert receiver.taken == []
            letters = hub.api.get(f"{path}/dead-letters", headers=admin(tenant)).json()
            assert len(letters["dead_letters"]) == 6
            assert {d["status"] for d in letters["dead_letters"]} == {401}
            assert "refused" in letters["dead_letters"][0]["answer"]
            r = hub.api.patch(
                path, json={"credentials": {"secret": receiver.secret}}, headers=admin(tenant)
            )
            assert r.status_code == 200
            r = hub.api.post(f"{path}/replay", json={"dead_letters": True}, headers=admin(tenant))
            assert r.status_code == 202, r.text
            job_id = r.json()["job_id"]
            wait_for(lambda: len(receiver.taken) >= 6, what="the replayed dead letters")
            assert_in_order_once(receiver, 6)
            job = hub.api.get(f"/api/v1/jobs/{job_id}", headers=admin(tenant)).json()
            assert job["status"] == "completed"
            assert job["result"] == {"queued": 6}
            assert destination(hub, tenant, created["id"])["dead"] == 0

    def test_backfill_from_delivers_history_once_and_live_activities_after(
        self, hub: Hub, tenant: NewAccount
    ) -> None:
        send_events(hub, tenant, events_of(4, 3))
        with webhook_receiver() as receiver:
            created = create_webhook(hub, tenant, receiver, backfill_from="2000-01-01T00:00:00Z")
            assert created["backfill_job_id"]
            send_events(hub, tenant, events_of(2, 1, "Purchase"))
            wait_for(lambda: len(receiver.taken) >= 14, what="history and live activities")
            taken = receiver.taken
            ids = [a["id"] for a in taken]
            assert len(ids) == len(set(ids)) == 14
            assert sum(a["name"] == "Purchase" for a in taken) == 2

    def test_a_replay_of_a_period_delivers_it_again(self, hub: Hub, tenant: NewAccount) -> None:
        with webhook_receiver() as receiver:
            created = create_webhook(hub, tenant, receiver)
            send_events(hub, tenant, events_of(2, 2))
            wait_for(lambda: len(receiver.taken) >= 4, what="live delivery")
            # Settled too: a replay asked for while an activity's delivery is still
            # in flight leaves that activity to it (docs/destinations.md, Replay).
            wait_for(
                lambda: destination(hub, tenant, created["id"])["pending"] == 0,
                what="the live delivery settled",
            )
            r = hub.api.post(
                f"/api/v1/destinations/{created['id']}/replay",
                json={"from": "2025-09-30T00:00:00Z", "to": "2025-10-01T00:00:00Z"},
                headers=admin(tenant),
            )
            assert r.status_code == 202, r.text

            def sent() -> list[str]:
                return [a["id"] for r in list(receiver.requests) for a in r.activities]

            wait_for(lambda: len(sent()) >= 8, what="the replay")
            assert sorted(sent()) == sorted(receiver.taken_ids()[:4] * 2)


def resent(receiver: WebhookReceiver) -> bool:
    """Whether some request came twice (the same Idempotency-Key)."""
    with receiver.lock:
        keys = [r.headers["idempotency-key"] for r in receiver.requests]
    return len(keys) > len(set(keys))


class TestWorkerKilled:
    def test_a_worker_killed_mid_delivery_loses_and_doubles_nothing(
        self, backend: str, tmp_path: Path, request: Any
    ) -> None:
        """The server runs no worker; an ``eventyard worker`` is SIGKILLed while the
        receiver holds its request; another worker sends the delivery again after the
        lease, with the same Idempotency-Key, and the receiver keeps each activity once."""
        if backend == "postgresql":
            request.getfixturevalue("postgres_url")
        env = {**FAST_DELIVERY, "EVENTYARD_RUN_WORKER": "false"}
        with (
            own_database(backend, tmp_path) as url,
            running_server(url, tmp_path / "server.log", env) as server,
            httpx.Client(base_url=server.base_url, timeout=60) as api,
            webhook_receiver() as receiver,
        ):
            store = Database.from_url(url, pool_size=2)
            try:
                account = create_account(store, "killed")
            finally:
                store.dispose()
            hub = Hub(url, store, api, tmp_path)
            create_webhook(hub, account, receiver)
            send_events(hub, account, events_of(contacts=20, per_contact=5))
            stalled = threading.Event()
            receiver.hold = stalled
            worker_env = {
                **os.environ,
                **env,
                "EVENTYARD_DATABASE_URL": url,
                "EVENTYARD_DESTINATION_WORKERS": "1",
            }
            command = [sys.executable, "-m", "eventyard", "worker"]
            with (tmp_path / "worker1.log").open("wb") as log:
                first = subprocess.Popen(command, env=worker_env, stdout=log, stderr=log)
            try:
                wait_for(lambda: receiver.requests_started >= 1, what="a request in flight")
                first.send_signal(signal.SIGKILL)
                first.wait(20)
            finally:
                if first.poll() is None:
                    first.kill()
            stalled.set()
            with (tmp_path / "worker2.log").open("wb") as log:
                second = subprocess.Popen(command, env=worker_env, stdout=log, stderr=log)
            try:
                # The held request's activities count as taken once released:
                # wait for the lease to run out and the delivery to go again too.
                wait_for(
                    lambda: len(receiver.taken) >= 100 and resent(receiver),
                    what="every activity, and the interrupted delivery sent again",
                )
            finally:
                second.terminate()
                second.wait(20)
            assert_in_order_once(receiver, 100)
            assert resent(receiver), "the interrupted request was sent again"
