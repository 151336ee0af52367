"""Benchmark: batch ingest with a destination active, and delivery keeping up with it.

For each backend, three runs, each on fresh databases with a real server
(production settings but the per-key rate limit, as ``bench/run.py``):

1. **plain**: Netcore batch ingest (``bench/traffic.py``, 1000 events a
   request from ``--clients`` clients) with no destination: events/s;
2. **webhook**: the same with one ``webhook`` destination delivering to a
   local receiver (an HTTP server in this process), from the server's own
   delivery threads: events/s, and its share of the plain rate (the
   issue's target: at least 80 %); then how long the outbox took to drain;
3. **clevertap**: the same ingest with one ``clevertap`` destination whose
   receiver is a second eventyard server on a database of its own (the
   "vendor"): the destination's ``lag_seconds``, sampled every half second
   while the ingest runs and until the outbox is empty (the target: under
   10 s), and the delivery rate (activities delivered per second, from the
   first event sent to the last delivered). Every activity the hub stored
   must be stored once by the vendor.

    .venv/bin/python bench/destinations.py --backends sqlite,postgresql --events 20000
    .venv/bin/python bench/destinations.py --smoke                  # a test runs this

``bench/run.py`` part ``destinations`` runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

# Run as a script, Python puts bench/ on sys.path, not the repo root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.netcore_ingest import (
    BENCH_DIR,
    DEFAULT_POSTGRES_URL,
    parse_backends,
    print_markdown_table,
    write_report,
)
from bench.run import BENCH_ENV, drive_ingest, fresh_database, tree_cpu_seconds
from bench.traffic import TRAFFIC
from tests.e2e.destination_support import WebhookReceiver, webhook_receiver
from tests.support import admin, create_account_at, running_server

from eventyard.core.model import NewAccount
from eventyard.storage.database import Database
from eventyard.storage.tables import activities

DEFAULT_OUTPUT = BENCH_DIR / "results" / "destinations.json"
#: The issue's targets.
TARGET_SHARE = 0.80
TARGET_LAG_SECONDS = 10.0
#: How long the outbox may take to drain after the ingest before the run fails.
DRAIN_DEADLINE_SECONDS = 600.0
HUB_ENV = {**BENCH_ENV, "EVENTYARD_URL_ALLOWLIST": "127.0.0.1/32"}


@dataclass
class DestinationRun:
    backend: str
    events: int
    plain_events_per_s: float
    webhook_events_per_s: float
    webhook_share: float
    webhook_drain_seconds: float
    webhook_delivered: int
    clevertap_events_per_s: float
    clevertap_max_lag_seconds: float
    clevertap_lag_at_end_of_ingest: float
    clevertap_drain_seconds: float
    clevertap_delivered_per_s: float
    hub_activities: int
    vendor_activities: int
    failures: list[str] = field(default_factory=list)


def stored_activities(url: str, account: NewAccount) -> int:
    store = Database.from_url(url, pool_size=1)
    try:
        with store.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(activities)
                    .where(activities.c.account_id == account.account.id)
                ).scalar_one()
            )
    finally:
        store.dispose()


def ingest(base_url: str, account: NewAccount, pid: int, args: argparse.Namespace) -> Any:
    return asyncio.run(
        drive_ingest(
            base_url,
            account,
            TRAFFIC["netcore"],
            args.events,
            args.clients,
            partial(tree_cpu_seconds, pid),
        )
    )


def create_destination(http: httpx.Client, account: NewAccount, body: dict[str, Any]) -> str:
    r = http.post("/api/v1/destinations", json=body, headers=admin(account))
    if r.status_code != 201:
        raise SystemExit(f"destination refused: {r.status_code} {r.text}")
    return str(r.json()["id"])


def figures_of(http: httpx.Client, account: NewAccount, destination_id: str) -> dict[str, Any]:
    r = http.get(f"/api/v1/destinations/{destination_id}", headers=admin(account))
    r.raise_for_status()
    return dict(r.json())


def drain(http: httpx.Client, account: NewAccount, destination_id: str) -> float:
    """Seconds until nothing is pending (raises after ``DRAIN_DEADLINE_SECONDS``)."""
    started = time.perf_counter()
    while figures_of(http, account, destination_id)["pending"]:
        if time.perf_counter() - started > DRAIN_DEADLINE_SECONDS:
            raise SystemExit("the outbox did not drain")
        time.sleep(0.2)
    return time.perf_counter() - started


@contextmanager
def lag_sampler(read: Callable[[], dict[str, Any]], every: float = 0.5) -> Iterator[list[float]]:
    """``lag_seconds`` read every ``every`` seconds while the block runs."""
    lags: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(every):
            try:
                lags.append(float(read()["lag_seconds"]))
            except httpx.HTTPError:
                continue

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield lags
    finally:
        stop.set()
        thread.join()


def run_plain(backend: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    with fresh_database(backend, args.postgres_url) as url:
        account = create_account_at(url, "plain")
        with running_server(url, folder / "plain.log", HUB_ENV, body_timeout_seconds=None) as hub:
            return dict(ingest(hub.base_url, account, hub.process.pid, args))


def run_webhook(backend: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    with (
        fresh_database(backend, args.postgres_url) as url,
        webhook_receiver() as receiver,
    ):
        account = create_account_at(url, "webhook")
        with (
            running_server(url, folder / "webhook.log", HUB_ENV, body_timeout_seconds=None) as hub,
            httpx.Client(base_url=hub.base_url, timeout=60) as http,
        ):
            destination = create_destination(
                http,
                account,
                {
                    "name": "bench",
                    "kind": "webhook",
                    "url": receiver.url,
                    "credentials": {"secret": receiver.secret},
                },
            )
            figures = dict(ingest(hub.base_url, account, hub.process.pid, args))
            figures["drain_seconds"] = drain(http, account, destination)
        figures["delivered"] = distinct_taken(receiver)
        figures["stored"] = stored_activities(url, account)
    return figures


def distinct_taken(receiver: WebhookReceiver) -> int:
    return len(set(receiver.taken_ids()))


def run_clevertap(backend: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    with (
        fresh_database(backend, args.postgres_url) as hub_url,
        fresh_database(backend, args.postgres_url) as vendor_url,
    ):
        account = create_account_at(hub_url, "hub")
        vendor_account = create_account_at(vendor_url, "vendor")
        with (
            running_server(
                vendor_url, folder / "vendor.log", BENCH_ENV, body_timeout_seconds=None
            ) as vendor,
            running_server(hub_url, folder / "hub.log", HUB_ENV, body_timeout_seconds=None) as hub,
            httpx.Client(base_url=hub.base_url, timeout=60) as http,
        ):
            destination = create_destination(
                http,
                account,
                {
                    "name": "vendor",
                    "kind": "clevertap",
                    "url": vendor.base_url,
                    "credentials": {
                        "account_id": vendor_account.clevertap_account_id,
                        "passcode": vendor_account.clevertap_passcode,
                    },
                },
            )
            started = time.perf_counter()
            with lag_sampler(partial(figures_of, http, account, destination)) as lags:
                figures = dict(ingest(hub.base_url, account, hub.process.pid, args))
                at_end = figures_of(http, account, destination)["lag_seconds"]
                figures["drain_seconds"] = drain(http, account, destination)
            total = time.perf_counter() - started
            delivered = figures_of(http, account, destination)["delivered"]
        figures.update(
            max_lag_seconds=max([*lags, at_end]),
            lag_at_end_of_ingest=at_end,
            delivered=delivered,
            delivered_per_s=delivered / total,
            hub_activities=stored_activities(hub_url, account),
            vendor_activities=stored_activities(vendor_url, vendor_account),
        )
    return figures


def run_backend(backend: str, args: argparse.Namespace) -> DestinationRun:
    with tempfile.TemporaryDirectory(prefix="eventyard-bench-destinations-") as folder:
        where = Path(folder)
        print(f"[{backend}] plain ingest ...", flush=True)
        plain = run_plain(backend, args, where)
        print(f"[{backend}] ingest with a webhook destination ...", flush=True)
        webhook = run_webhook(backend, args, where)
        print(f"[{backend}] ingest delivered to an eventyard receiver as clevertap ...", flush=True)
        clevertap = run_clevertap(backend, args, where)
    run = DestinationRun(
        backend=backend,
        events=int(plain["events"]),
        plain_events_per_s=plain["events_per_s"],
        webhook_events_per_s=webhook["events_per_s"],
        webhook_share=round(webhook["events_per_s"] / plain["events_per_s"], 3),
        webhook_drain_seconds=round(webhook["drain_seconds"], 2),
        webhook_delivered=webhook["delivered"],
        clevertap_events_per_s=clevertap["events_per_s"],
        clevertap_max_lag_seconds=round(clevertap["max_lag_seconds"], 2),
        clevertap_lag_at_end_of_ingest=round(clevertap["lag_at_end_of_ingest"], 2),
        clevertap_drain_seconds=round(clevertap["drain_seconds"], 2),
        clevertap_delivered_per_s=round(clevertap["delivered_per_s"], 1),
        hub_activities=clevertap["hub_activities"],
        vendor_activities=clevertap["vendor_activities"],
    )
    for name, figures in (("plain", plain), ("webhook", webhook), ("clevertap", clevertap)):
        if figures["failed"]:
            run.failures.append(f"{name}: {figures['failed']} requests failed")
    if webhook["delivered"] != webhook["stored"]:
        run.failures.append(
            f"webhook: {webhook['delivered']} activities delivered of {webhook['stored']}"
        )
    if run.vendor_activities != run.hub_activities:
        run.failures.append(
            f"clevertap: the vendor stored {run.vendor_activities} of {run.hub_activities}"
        )
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20000, help="events per run")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--backends", default="sqlite,postgresql", help="sqlite, postgresql")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true", help="2000 events, to check it runs")
    args = parser.parse_args(argv)
    if args.smoke:
        args.events, args.clients = 2000, 2
    if args.output is None:
        tmp = Path(tempfile.gettempdir()) / "eventyard-bench-destinations-smoke.json"
        args.output = tmp if args.smoke else DEFAULT_OUTPUT
    args.backends = parse_backends(parser, args.backends)
    load_before = os.getloadavg()
    results = [run_backend(backend, args) for backend in args.backends]
    print()
    print_markdown_table(
        (
            "backend",
            "events",
            "plain ev/s",
            "webhook ev/s",
            "share",
            "clevertap ev/s",
            "max lag s",
            "delivered/s",
            "drain s",
        ),
        [
            (
                r.backend,
                f"{r.events:,}",
                f"{r.plain_events_per_s:,.0f}",
                f"{r.webhook_events_per_s:,.0f}",
                f"{r.webhook_share:.0%}",
                f"{r.clevertap_events_per_s:,.0f}",
                f"{r.clevertap_max_lag_seconds:.1f}",
                f"{r.clevertap_delivered_per_s:,.0f}",
                f"{r.clevertap_drain_seconds:.1f}",
            )
            for r in results
        ],
    )
    write_report(
        "destinations",
        args.output,
        {"events": args.events, "clients": args.clients},
        results,
        load_before,
    )
    failed = [r for r in results if r.failures]
    for r in failed:
        print(f"[{r.backend}] FAILED: {', '.join(r.failures)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
