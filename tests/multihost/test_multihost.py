"""Two nodes, a worker host, HAProxy, PgBouncer and a streaming replica, disturbed under load.

Issue 24: "the test run makes network namespaces (iproute2) for three hosts:
two eventyard nodes (``serve --workers 2 --no-worker`` each), one
``eventyard worker`` host, HAProxy in front of the nodes, PgBouncer and
PostgreSQL primary plus one streaming replica started by the test
(``pg_basebackup``). Under load from every dialect, one node is killed and
restarted, the replica is stopped and started, and PgBouncer is restarted:
every acknowledged event is stored exactly once, the client sees only
retryable errors (503 with ``Retry-After``, or a connection error retried with
the same ``Idempotency-Key``), and reads from the replica converge."

The hosts are in ``hosts.py``. The clients are the reliability suite's
(``tests/reliability/retrying_clients.py``): one per dialect (and one sending
Ortto batches with ``"async": true``, stored by the worker host), each batch
with its ``Idempotency-Key``, resent byte for byte until acknowledged. They
talk to HAProxy on 127.0.0.1 only.

Size: ``EVENTYARD_MULTIHOST_ROUNDS`` rounds of disturbances (default 1: a node
killed and restarted, the replica stopped and started, PgBouncer restarted;
the killed node alternates), ``EVENTYARD_MULTIHOST_CLIENTS`` clients per dialect
(default 1) and ``EVENTYARD_MULTIHOST_BATCHES`` acknowledged batches between two
disturbances (default 10).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from eventyard.storage.database import Database
from eventyard.storage.engine import normalize_database_url
from eventyard.storage.migrate import upgrade_database
from tests.multihost.hosts import (
    NODE_PORT,
    Bouncer,
    Node,
    haproxy,
    missing_tools,
    postgres_directory,
    primary_and_replica,
    private_network,
    serve_command,
    worker_command,
)
from tests.reliability.dialects import DIALECTS_BY_NAME, stored_markers
from tests.reliability.retrying_clients import (
    Answer,
    DialectLoad,
    Progress,
    RetryingClient,
    queued,
    wait_until_no_jobs_left,
)
from tests.support import create_account_at, free_port, missing_tool

ROUNDS = int(os.environ.get("EVENTYARD_MULTIHOST_ROUNDS", "1"))
CLIENTS_PER_DIALECT = int(os.environ.get("EVENTYARD_MULTIHOST_CLIENTS", "1"))
BATCHES_BETWEEN = int(os.environ.get("EVENTYARD_MULTIHOST_BATCHES", "10"))
DATABASE = "eventyard"
#: Server processes per node, as the issue asks.
NODE_WORKERS = 2
#: How long PgBouncer stays down when it is restarted.
BOUNCER_DOWN_SECONDS = 1.0
NODE_ENV = {
    # PgBouncer 1.18 (Debian 12) in transaction mode does not track prepared statements.
    "EVENTYARD_DATABASE_PREPARED_STATEMENTS": "false",
    "EVENTYARD_RATE_LIMIT_PER_SECOND": "0",
    "EVENTYARD_DB_CONNECT_TIMEOUT_SECONDS": "2",
    "EVENTYARD_DB_POOL_TIMEOUT_SECONDS": "5",
    "EVENTYARD_DB_POOL_SIZE": "4",
    "EVENTYARD_JOB_LEASE_SECONDS": "5",
    "EVENTYARD_WORKER_POLL_SECONDS": "0.2",
    "EVENTYARD_READ_CHECK_SECONDS": "0.5",
}


@dataclass(frozen=True)
class Tally:
    """Acknowledged events against the stored ones of the same accounts."""

    events: int
    missing: int
    doubled: int
    unasked: int


def tally(store: Database, clients: list[RetryingClient]) -> Tally:
    """Count, by the markers the clients sent, what ``store`` holds of each account."""
    by_dialect = {c.account.account.id: c.dialect for c in clients}
    return tally_of(
        clients,
        lambda account_id: Counter(stored_markers(store, account_id, by_dialect[account_id])),
    )


def tally_of(clients: list[RetryingClient], stored_in: Callable[[str], Counter[str]]) -> Tally:
    """Count the acknowledged markers against ``stored_in(account_id)``, account by account."""
    events = missing = doubled = unasked = 0
    by_account: dict[str, list[RetryingClient]] = {}
    for client in clients:
        by_account.setdefault(client.account.account.id, []).append(client)
    for account_id, group in by_account.items():
        acknowledged = {m for c in group for batch in c.acknowledged for m in batch}
        stored = stored_in(account_id)
        events += len(acknowledged)
        missing += len(acknowledged - set(stored))
        doubled += sum(n - 1 for n in stored.values() if n > 1)
        unasked += len(set(stored) - acknowledged)
    return Tally(events, missing, doubled, unasked)


def kind(answer: Answer) -> str:
    """What a client saw, for the summary: the non-2xx kinds are the retryable ones."""
    if answer.status is None:
        return f"connection error ({answer.error})"
    if answer.status == 503:
        return "503 from a node" if answer.server == "uvicorn" else "503 from the balancer"
    return str(answer.status)


def create_database(primary_url: str) -> None:
    admin = create_engine(normalize_database_url(primary_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    finally:
        admin.dispose()


def replica_streaming(primary: Database) -> bool:
    with primary.engine.connect() as conn:
        states = conn.execute(text("SELECT state FROM pg_stat_replication")).scalars().all()
    return list(states) == ["streaming"]


def wait_until_converged(
    replica: Database, clients: list[RetryingClient], timeout: float = 60
) -> tuple[Tally, float]:
    """Poll the replica until it holds every acknowledged event; its tally and the wait."""
    started = time.monotonic()
    while True:
        seen = tally(replica, clients)
        if seen.missing == 0 or time.monotonic() - started > timeout:
            return seen, time.monotonic() - started
        time.sleep(0.2)


def listed_markers(http: httpx.Client, client: RetryingClient) -> list[str]:
    """Every marker of ``client``'s account as the Cordial GET listing shows it through
    the balancer (10,000 a page, following the paging tokens), once per listed activity."""
    found: list[str] = []
    params: dict[str, str] = {"per_page": "10000"}
    auth = (client.account.cordial_api_key, "")
    while True:
        r = http.get("/v2/contactactivities", params=params, auth=auth)
        assert r.status_code == 200, r.text
        records = r.json()
        token = records[0]["paging"]["token"] if records and "paging" in records[0] else None
        key = client.dialect.stored_key
        found += [a["properties"][key] for a in records if key in a.get("properties", {})]
        if token is None:
            return found
        params = {"__paging_token": token}


def wait_until_listed(
    base_url: str, clients: list[RetryingClient], timeout: float = 60
) -> tuple[Tally, float]:
    """List every account through the balancer until it shows every acknowledged event
    (reads the nodes send to the replica); the tally and the wait."""
    started = time.monotonic()
    accounts = {c.account.account.id: c for c in clients}
    with httpx.Client(base_url=base_url, timeout=30) as http:
        while True:
            listed = {a: Counter(listed_markers(http, c)) for a, c in accounts.items()}
            seen = tally_of(clients, listed.__getitem__)
            if seen.missing == 0 or time.monotonic() - started > timeout:
                return seen, time.monotonic() - started
            time.sleep(0.5)


def replica_reads(nodes: Iterable[Node]) -> float:
    """``eventyard_database_reads_total{target="replica"}`` summed over the nodes."""
    total = 0.0
    for node in nodes:
        metrics = httpx.get(f"{node.base_url}/metrics", timeout=10).text
        for line in metrics.splitlines():
            if line.startswith('eventyard_database_reads_total{target="replica"}'):
                total += float(line.split()[-1])
    return total


# A round takes a minute or two on the shared machine; the default size fits the suite's 300 s.
@pytest.mark.timeout(max(300, 120 + 180 * ROUNDS))
def test_nodes_killed_replica_stopped_and_pgbouncer_restarted_under_load_lose_nothing(
    tmp_path: Path,
) -> None:
    why = missing_tools()
    if why is not None:
        missing_tool(why, "multihost")
    started = time.monotonic()
    stop = threading.Event()
    progress = Progress()
    kills = killed_processes = replica_restarts = bouncer_restarts = 0
    clients: list[RetryingClient] = []
    with ExitStack() as stack:
        network = stack.enter_context(private_network())
        for host in ("node1", "node2", "worker"):
            network.add_host(host)
        postgres_dir = stack.enter_context(postgres_directory())
        pair = stack.enter_context(primary_and_replica(postgres_dir, network))
        create_database(pair.primary.url())
        primary_url = pair.primary.url(DATABASE)
        upgrade_database(primary_url)
        primary = Database.from_url(primary_url, pool_size=1)
        stack.callback(primary.dispose)
        replica = Database.from_url(pair.replica.url(DATABASE), pool_size=1)
        stack.callback(replica.dispose)

        bouncer = Bouncer(
            postgres_dir / "pgbouncer", free_port(), f"127.0.0.1,{network.gateway}", pair.primary
        )
        bouncer.start()
        stack.callback(bouncer.stop)
        env = {
            **NODE_ENV,
            "EVENTYARD_DATABASE_URL": bouncer.url(network.gateway, DATABASE),
            # The replica straight, over the host's link (a standby takes no writes, and
            # the nodes check its replay lag themselves).
            "EVENTYARD_READ_DATABASE_URL": pair.replica.url(DATABASE, network.gateway),
            "EVENTYARD_EXPORT_DIR": str(tmp_path / "exports"),
        }
        nodes = {
            name: Node(name, network, serve_command(NODE_WORKERS), env, tmp_path / name)
            for name in ("node1", "node2")
        }
        for node in nodes.values():
            node.start(wait_ready=False)
            stack.callback(node.stop)
        for node in nodes.values():
            node.wait_ready()
        worker = Node("worker", network, worker_command(), env, tmp_path / "worker")
        worker.start(wait_ready=False)
        stack.callback(worker.stop)
        balanced = {n.host: f"{n.address}:{NODE_PORT}" for n in nodes.values()}
        base_url = stack.enter_context(haproxy(tmp_path / "haproxy", balanced))

        load = DialectLoad.prepare(
            primary_url,
            base_url,
            stop,
            per_dialect=CLIENTS_PER_DIALECT,
            on_acknowledged=progress.note,
        )
        ortto = DIALECTS_BY_NAME["ortto"]
        async_account = create_account_at(primary_url, "multihost-ortto-async")
        with httpx.Client(base_url=base_url, timeout=30) as http:
            ortto.prepare(http, async_account)
        clients = [
            *load.clients,
            RetryingClient(
                base_url,
                ortto,
                async_account,
                "ortto-async",
                stop,
                shape=queued,
                on_acknowledged=progress.note,
            ),
        ]
        for client in clients:
            client.start()
        load_started = time.monotonic()

        def advance() -> None:
            """Wait for more acknowledged batches; say why not when they do not come."""
            try:
                progress.wait_for_more(BATCHES_BETWEEN)
            except AssertionError as exc:
                unexpected = [f"{c.name}: {u}" for c in clients for u in c.unexpected]
                recent = Counter(kind(a) for c in clients for a in c.answers[-20:])
                logs = "\n".join(f"--- {n.host}\n{n.logs()}" for n in [*nodes.values(), worker])
                raise AssertionError(
                    f"{exc}; unexpected {unexpected[:5]}; recent {recent}\n{logs}"
                ) from exc

        try:
            for round_number in range(ROUNDS):
                victim = nodes[f"node{round_number % 2 + 1}"]
                advance()
                killed_processes += victim.kill()
                kills += 1
                advance()
                victim.start()
                advance()

                pair.replica.stop()
                advance()
                pair.replica.start()
                replica_restarts += 1
                advance()

                bouncer.stop()
                time.sleep(BOUNCER_DOWN_SECONDS)
                bouncer.start()
                bouncer_restarts += 1
                advance()
        finally:
            stop.set()
            for client in clients:
                client.join()
        load_ended = time.monotonic()
        wait_until_no_jobs_left(primary, async_account.account.id)

        answers = [a for c in clients for a in c.answers]
        unexpected = [f"{c.name}: {u}" for c in clients for u in c.unexpected]
        assert not unexpected, unexpected[:5]
        errors = Counter(kind(a) for a in answers if a.status is None or a.status >= 300)
        retryable = {"503 from a node", "503 from the balancer"}
        assert all(k in retryable or k.startswith("connection error") for k in errors), errors
        without_retry_after = [
            a for a in answers if a.status == 503 and not (a.retry_after or "").isdigit()
        ]
        assert not without_retry_after, without_retry_after[:5]
        stored = tally(primary, clients)
        assert all(n.process and n.process.poll() is None for n in nodes.values()), "a node died"
        seen, converged_in = wait_until_converged(replica, clients)
        streaming = replica_streaming(primary)
        replica_reads_before = replica_reads(nodes.values())
        listed, listed_in = wait_until_listed(base_url, clients)
        replica_reads_after = replica_reads(nodes.values())
        logs = f"{pair.logs()}\n--- pgbouncer\n{bouncer.log()[-3000:]}"
    requests = sum(len(c.acknowledged) for c in clients)
    print(
        f"\nmultihost: {requests} acknowledged requests ({len(answers)} sent), "
        f"{stored.events} events, {kills} node kills ({killed_processes} processes), "
        f"{replica_restarts} replica restarts, {bouncer_restarts} PgBouncer restarts, "
        f"errors seen by clients: {dict(errors) or 'none'}, "
        f"replays {sum(a.replayed for a in answers)}, missing {stored.missing}, "
        f"doubled {stored.doubled}, replica missing {seen.missing} doubled {seen.doubled} "
        f"(converged {converged_in:.1f} s after the load), listed through the nodes: "
        f"missing {listed.missing} doubled {listed.doubled} in {listed_in:.1f} s "
        f"({replica_reads_after - replica_reads_before:.0f} reads on the replica), "
        f"set-up {load_started - started:.0f} s, load {load_ended - load_started:.0f} s, "
        f"{time.monotonic() - started:.0f} s in all"
    )
    assert stored.missing == 0, stored
    assert stored.doubled == 0, stored
    assert stored.unasked == 0, stored
    assert seen.missing == 0, (seen, logs)
    assert seen.doubled == 0, seen
    assert seen.unasked == 0, seen
    assert streaming, f"the replica is not streaming again\n{logs}"
    # Read through HAProxy and the nodes: the Cordial listing of every account is one
    # of the reads the nodes send to the replica, and it lists every event once.
    assert listed.missing == 0, listed
    assert listed.doubled == 0, listed
    assert listed.unasked == 0, listed
    assert replica_reads_after > replica_reads_before, "the listing was not read on the replica"
