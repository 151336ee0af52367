"""Benchmark: CleverTap ``POST /1/upload`` through a real server, on SQLite and PostgreSQL.

Same method as ``bench/netcore_ingest.py`` (and its helpers): per backend an
empty database, migrations, an account, ``uvicorn eventyard.app:create_app_from_env``
in a subprocess, one untimed warm-up batch, then ``--batches`` CleverTap
batches of ``--records`` records from ``--clients`` concurrent httpx clients.
About ``--profile-fraction`` of each batch's records are profile records
(``profileData`` with Name, Email, Phone, a subscription flag), the rest
events with a two-item ``Items`` array and a ``$D_`` date. Each batch names
``--contacts`` distinct users (``identity``), ``--new-fraction`` of them new.
Events use 20 event names, well inside the 512 event types per account.

It prints one table row per backend and writes ``bench/results/clevertap_ingest.json``
by default. It exits non-zero when a request fails, an answer is not
``{"status": "success", "processed": <records>, "unprocessed": []}``, or the
database does not hold every acknowledged event.

    .venv/bin/python bench/clevertap_ingest.py                  # both backends, defaults
    .venv/bin/python bench/clevertap_ingest.py --backends sqlite --batches 10
    .venv/bin/python bench/clevertap_ingest.py --smoke          # a few tiny batches

See bench/README.md for the recorded results.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from eventyard.storage.migrate import upgrade_database

# Run as a script, Python puts bench/ on sys.path, not the repo root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.netcore_ingest import (
    BENCH_DIR,
    Load,
    add_run_arguments,
    bench_server,
    count_activities,
    finish_args,
    percentile,
    print_markdown_table,
    run_on_backends,
    send_bodies,
    write_report,
)
from tests.support import create_account_at

DEFAULT_OUTPUT = BENCH_DIR / "results" / "clevertap_ingest.json"
UPLOAD_PATH = "/1/upload"
EVENT_NAMES = tuple(f"Event type {i:02d}" for i in range(20))
SMOKE = {"batches": 3, "records": 50, "contacts": 30, "clients": 2}


@dataclass(frozen=True)
class Result:
    backend: str
    batches: int
    records: int
    events: int
    profiles: int
    clients: int
    seconds: float
    records_per_s: float
    p50_ms: float
    p99_ms: float
    retried_503: int
    failed_requests: int
    stored_activities: int
    expected_activities: int
    #: Every measured batch's latency (retries included), in the order the answers arrived.
    latencies_ms: list[float]


# --- workload -----------------------------------------------------------------


def make_record(rng: random.Random, n: int, now: int, profile_fraction: float) -> dict[str, Any]:
    """One CleverTap record for user ``n``: a profile with ``profile_fraction``, else an event."""
    if rng.random() < profile_fraction:
        return {
            "type": "profile",
            "identity": f"user-{n:07d}",
            "profileData": {
                "Name": f"Customer {n}",
                "Email": f"Customer{n}@Example.com",
                "Phone": f"+1415{n:07d}",
                "MSG-email": n % 2 == 0,
                "Tier": rng.choice(("free", "silver", "gold")),
            },
        }
    return {
        "type": "event",
        "identity": f"user-{n:07d}",
        "ts": now - rng.randrange(0, 48 * 3600),
        "evtName": rng.choice(EVENT_NAMES),
        "evtData": {
            "Amount": rng.randrange(100, 5000) / 10,
            "Currency": "USD",
            "Payment mode": "Credit Card",
            "Delivery By": f"$D_{now + 86400}",
            "Items": [
                {"Category": "books", "Book name": "The millionaire next door", "Quantity": 1},
                {"Category": "books", "Book name": "Achieving inner zen", "Quantity": 4},
            ],
        },
    }


@dataclass(frozen=True)
class Batch:
    body: bytes
    records: int
    events: int


def make_batches(rng: random.Random, args: argparse.Namespace) -> tuple[Batch, list[Batch]]:
    """A warm-up batch (all new users) and the measured batches, as ``{"d": [...]}`` bodies.

    Each measured batch names ``args.contacts`` users, ``args.new_fraction`` of
    them new and the rest drawn from batches at least ``args.clients`` places
    earlier (normally acknowledged by then); each user gets one record and the
    remaining records go to random ones of them.
    """
    now = int(datetime.now(UTC).timestamp())

    def batch_of(users: list[int]) -> Batch:
        chosen = users + [rng.choice(users) for _ in range(max(0, args.records - len(users)))]
        rng.shuffle(chosen)
        records = [make_record(rng, n, now, args.profile_fraction) for n in chosen]
        events = sum(1 for r in records if r["type"] == "event")
        return Batch(orjson.dumps({"d": records}), len(records), events)

    warmup = batch_of(list(range(args.contacts)))
    settled = list(range(args.contacts))
    created: list[list[int]] = []
    next_user = args.contacts
    new_per_batch = round(args.contacts * args.new_fraction)
    batches = []
    for i in range(args.batches):
        if i - args.clients >= 0:
            settled.extend(created[i - args.clients])
        new = list(range(next_user, next_user + new_per_batch))
        next_user += new_per_batch
        batches.append(batch_of(new + rng.sample(settled, args.contacts - new_per_batch)))
        created.append(new)
    return warmup, batches


# --- load ---------------------------------------------------------------------------


async def send_all(
    base_url: str, headers: dict[str, str], batches: list[Batch], clients: int
) -> Load:
    """Send every batch with ``clients`` concurrent clients, retrying 503s like a real client."""

    def check(index: int, response: httpx.Response) -> str | None:
        expected = {"status": "success", "processed": batches[index].records, "unprocessed": []}
        if response.status_code != 200 or response.json() != expected:
            return f"{response.status_code} {response.text[:300]}"
        return None

    return await send_bodies(
        base_url, UPLOAD_PATH, headers, [b.body for b in batches], clients, check
    )


def run_backend(backend: str, database_url: str, args: argparse.Namespace) -> Result:
    upgrade_database(database_url)
    account = create_account_at(database_url, f"bench-{backend}")
    headers = {
        "X-CleverTap-Account-Id": account.clevertap_account_id,
        "X-CleverTap-Passcode": account.clevertap_passcode,
        "Content-Type": "application/json; charset=utf-8",
    }
    warmup, batches = make_batches(random.Random(args.seed), args)
    with bench_server(backend, database_url, args) as server:
        warm = asyncio.run(send_all(server.base_url, headers, [warmup], 1))
        load = asyncio.run(send_all(server.base_url, headers, batches, args.clients))
        server.failures.extend(warm.failures + load.failures)
    failures = server.failures
    records = sum(b.records for b in batches)
    events = sum(b.events for b in batches)
    return Result(
        backend=backend,
        batches=len(batches),
        records=records,
        events=events,
        profiles=records - events,
        clients=args.clients,
        seconds=round(load.seconds, 3),
        records_per_s=round(records / load.seconds, 1),
        p50_ms=round(percentile(load.latencies, 50) * 1000, 1),
        p99_ms=round(percentile(load.latencies, 99) * 1000, 1),
        retried_503=load.retries,
        failed_requests=len(failures),
        stored_activities=count_activities(database_url, account.account.id),
        expected_activities=events + warmup.events,
        latencies_ms=[round(x * 1000, 1) for x in load.latencies],
    )


def print_table(results: list[Result]) -> None:
    header = ("backend", "batches", "records", "profiles", "seconds", "records/s", "p50 ms")
    header += ("p99 ms", "503 retried")
    rows = [
        (
            r.backend,
            str(r.batches),
            str(r.records),
            str(r.profiles),
            f"{r.seconds:.2f}",
            f"{r.records_per_s:,.0f}",
            f"{r.p50_ms:.0f}",
            f"{r.p99_ms:.0f}",
            str(r.retried_503),
        )
        for r in results
    ]
    print_markdown_table(header, rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--records", type=int, default=1000, help="records per batch (default 1000)"
    )
    parser.add_argument(
        "--contacts", type=int, default=600, help="distinct users per batch (default 600)"
    )
    parser.add_argument(
        "--profile-fraction",
        type=float,
        default=0.1,
        help="share of records that are profiles (default 0.1)",
    )
    parser.add_argument(
        "--new-fraction",
        type=float,
        default=0.1,
        help="share of each batch's users never seen before (default 0.1)",
    )
    add_run_arguments(parser, DEFAULT_OUTPUT)
    args = finish_args(parser, argv, SMOKE, DEFAULT_OUTPUT, "eventyard-bench-clevertap-smoke.json")
    if not 1 <= args.records <= 1000:
        parser.error("--records must be 1 to 1000 (the CleverTap limit)")
    if not 1 <= args.contacts <= args.records:
        parser.error("--contacts must be between 1 and --records")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()
    results = run_on_backends(
        args, f"{args.batches} batches of {args.records} records", run_backend
    )
    print()
    print_table(results)
    parameters = {
        "batches": args.batches,
        "records_per_batch": args.records,
        "contacts_per_batch": args.contacts,
        "profile_fraction": args.profile_fraction,
        "new_fraction": args.new_fraction,
        "clients": args.clients,
        "server_workers": args.server_workers,
        "seed": args.seed,
        "smoke": args.smoke,
    }
    write_report("clevertap_ingest", args.output, parameters, results, load_before)
    failed = False
    for r in results:
        if r.failed_requests or r.stored_activities != r.expected_activities:
            print(
                f"[{r.backend}] FAILED: {r.failed_requests} failed requests, "
                f"{r.stored_activities} activities stored, {r.expected_activities} expected"
            )
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
