"""Two real server processes on one database, hit at the same moment.

DESIGN.md: "many stateless API and worker processes share one database". Both
servers receive, in the same instant, batches naming the same identifiers that
nobody has seen before. Whatever the interleaving, every person must end up as
exactly one contact holding every activity sent for it, once, and no request
may fail with a 5xx. The SQLite variant checks that two processes on one file
wait for the write lock instead of answering "database is locked".
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from eventyard.core.model import NewAccount
from eventyard.storage.database import Database
from eventyard.storage.migrate import upgrade_database
from eventyard.storage.tables import activities, contacts
from tests.support import Server, create_account_at, netcore_event, running_server

UPLOAD = "/v1/activity/upload"
#: Concurrent senders per server in every round.
SENDERS_PER_SERVER = 2
PEOPLE_PER_ROUND = 3
BASE_TIME = datetime(2025, 9, 30, 8, 0, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Person:
    identity: str
    email: str
    mobile: str
    anonid: str

    @classmethod
    def new(cls, n: int) -> Person:
        tag = uuid.uuid4().hex[:10]
        return cls(
            identity=f"race-{tag}",
            email=f"Race.{tag}@Example.com",
            mobile=f"+91 {9_000_000_000 + n}",
            anonid=f"anon-{tag}",
        )

    @property
    def lookups(self) -> list[str]:
        return [
            f"identity:{self.identity}",
            f"email:{self.email.lower()}",
            f"mobile:{self.mobile.replace(' ', '')}",
            f"anonid:{self.anonid}",
        ]


def batch_for(sender: int, round_no: int, people: list[Person]) -> list[dict[str, Any]]:
    """A batch that names the people's identifiers in a sender-specific shape and order.

    Every event holds the email, so whatever commits first, the email's owner
    absorbs the person's other identifiers: the expected outcome is one contact
    per person for every interleaving. Even senders also first send an
    anonymous event and then one tying the anonid to the email, which converts
    or merges depending on who wins.
    """
    ordered = people if sender % 2 == 0 else list(reversed(people))
    events: list[dict[str, Any]] = []
    for p in ordered:
        shapes: list[dict[str, Any]] = [
            {"identity": p.identity, "email": p.email, "mobile": p.mobile},
            {"identity": None, "email": p.email},
        ]
        if sender % 2 == 0:
            shapes = [
                {"identity": None, "anonid": p.anonid},
                {"identity": None, "anonid": p.anonid, "email": p.email},
                *shapes,
            ]
        else:
            shapes = [*shapes, {"identity": None, "email": p.email, "anonid": p.anonid}]
        for k, shape in enumerate(shapes):
            events.append(
                netcore_event(
                    **shape,
                    timestamp=(BASE_TIME + timedelta(minutes=round_no)).isoformat(),
                    activity_params={"marker": f"{round_no}:{sender}:{p.identity}:{k}"},
                )
            )
    return events


@dataclass
class Outcome:
    status: int
    body: str


def send_simultaneously(
    servers: list[Server], account: NewAccount, batches: list[list[dict[str, Any]]]
) -> list[Outcome]:
    """POST each batch from its own thread, all released by one barrier.

    Consecutive batches go to the same server, so each server gets both shapes.
    """
    barrier = threading.Barrier(len(batches))
    results: list[Outcome | None] = [None] * len(batches)

    def send(i: int) -> None:
        server = servers[i // SENDERS_PER_SERVER % len(servers)]
        with httpx.Client(base_url=server.base_url, timeout=120) as http:
            barrier.wait()
            try:
                r = http.post(UPLOAD, json=batches[i], headers={"api-key": account.netcore_api_key})
                results[i] = Outcome(r.status_code, r.text)
            except httpx.HTTPError as exc:
                results[i] = Outcome(0, repr(exc))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r if r is not None else Outcome(0, "thread died") for r in results]


def run_rounds(
    servers: list[Server], account: NewAccount, rounds: int
) -> dict[Person, Counter[str]]:
    """Race the servers for ``rounds`` rounds; the markers each person must end up with."""
    expected: dict[Person, Counter[str]] = {}
    senders = SENDERS_PER_SERVER * len(servers)
    failures: list[str] = []
    for round_no in range(rounds):
        people = [Person.new(round_no * 100 + n) for n in range(PEOPLE_PER_ROUND)]
        batches = [batch_for(s, round_no, people) for s in range(senders)]
        for outcome in send_simultaneously(servers, account, batches):
            if outcome.status != 200:
                failures.append(f"round {round_no}: {outcome.status} {outcome.body[:300]}")
        for p in people:
            expected[p] = Counter(
                e["activity_params"]["marker"]
                for batch in batches
                for e in batch
                if e["activity_params"]["marker"].split(":")[2] == p.identity
            )
    assert not failures, "\n".join(failures)
    return expected


def assert_one_contact_per_person(
    server: Server, account: NewAccount, expected: dict[Person, Counter[str]]
) -> None:
    headers = {"Authorization": f"Bearer {account.admin_token}"}
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        for person, markers in expected.items():
            owners = set()
            for lookup in person.lookups:
                r = http.get("/api/v1/contacts", params={"identifier": lookup}, headers=headers)
                assert r.status_code == 200, r.text
                found = r.json()["contacts"]
                assert len(found) == 1, (lookup, found)
                owners.add(found[0]["id"])
            assert len(owners) == 1, (person, owners)
            [contact_id] = owners
            contact = http.get(f"/api/v1/contacts/{contact_id}", headers=headers).json()
            assert contact["status"] == "known"
            assert sorted(i["kind"] for i in contact["identifiers"]) == [
                "anonid",
                "email",
                "identity",
                "mobile",
            ]
            r = http.get(
                f"/api/v1/contacts/{contact_id}/activities",
                params={"limit": 1000},
                headers=headers,
            )
            assert r.status_code == 200, r.text
            assert r.json()["next_cursor"] is None
            stored = Counter(a["properties"]["marker"] for a in r.json()["activities"])
            assert stored == markers, person


def assert_totals(database_url: str, account: NewAccount, people: int, events: int) -> None:
    """No stray contacts or activities beyond what the read API showed."""
    store = Database.from_url(database_url, pool_size=1)
    try:
        with store.engine.connect() as conn:
            live = conn.execute(
                select(func.count())
                .select_from(contacts)
                .where(
                    contacts.c.account_id == account.account.id,
                    contacts.c.merged_into.is_(None),
                )
            ).scalar_one()
            stored = conn.execute(
                select(func.count())
                .select_from(activities)
                .where(activities.c.account_id == account.account.id)
            ).scalar_one()
    finally:
        store.dispose()
    assert live == people
    assert stored == events


def assert_clean_logs(servers: list[Server]) -> None:
    for server in servers:
        logs = server.logs()
        assert "database is locked" not in logs
        assert "Traceback" not in logs
        assert '"level":"error"' not in logs


def race(database_url: str, tmp_path: Path, rounds: int) -> None:
    """Migrate the database, start two servers on it and race them for ``rounds`` rounds."""
    upgrade_database(database_url)
    account = create_account_at(database_url, f"race-{uuid.uuid4().hex[:8]}")
    with ExitStack() as stack:
        servers = [
            stack.enter_context(running_server(database_url, tmp_path / f"server-{i}.log"))
            for i in range(2)
        ]
        expected = run_rounds(servers, account, rounds)
        for server in servers:
            assert_one_contact_per_person(server, account, expected)
        assert_totals(
            database_url,
            account,
            people=len(expected),
            events=sum(sum(m.values()) for m in expected.values()),
        )
        assert_clean_logs(servers)


@pytest.mark.postgres_only
def test_two_servers_on_one_postgresql_database(postgres_url: str, tmp_path: Path) -> None:
    race(postgres_url, tmp_path, rounds=40)


def test_two_servers_on_one_sqlite_file(tmp_path: Path) -> None:
    race(f"sqlite:///{tmp_path / 'shared.db'}", tmp_path, rounds=25)
