"""Hold a mixed workload against a real server and record memory and latency each minute.

Every dialect of the reliability suite (``tests/reliability/dialects.py``)
sends both batches and single events at a fixed total request rate, from a
load generator in this process while the server runs in its own. Each
interval records requests, events, errors, p50/p99 latency per endpoint and
the server's resident memory. At the end every acknowledged event is looked
up in the database: acknowledged but missing, or stored twice, is an error.

    .venv/bin/python bench/load.py                    # 10 minutes on PostgreSQL
    .venv/bin/python bench/load.py --minutes 1 --backend sqlite
    .venv/bin/python bench/load.py --smoke            # 10 s, intervals of 5 s (a test runs it)

Results go to ``bench/results/load.json`` (``--output``) and a table; the
latest long run's figures are in ``docs/reliability.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.reliability.dialects import (
    DIALECTS,
    Dialect,
    markers,
    stored_markers,
)
from tests.support import (
    create_account_at,
    running_server,
    scratch_postgres_database,
)

from eventyard.core.model import NewAccount
from eventyard.storage.database import Database
from eventyard.storage.migrate import upgrade_database

RESULTS = Path(__file__).parent / "results"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
#: Activities per batch request (capped by each dialect's own batch size).
BATCH = 50
#: Requests one client keeps open at most.
MAX_IN_FLIGHT = 32


@dataclass
class Interval:
    minute: int
    seconds: float
    requests: int
    events: int
    errors: int
    server_rss_mb: float
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class Tally:
    """What the load generator saw, as it happens."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    requests: int = 0
    events: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    acknowledged: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, round(share * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children (``--workers`` processes), in MB."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for one in pids:
        try:
            status = Path(f"/proc/{one}/status").read_text()
        except FileNotFoundError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return round(total / 1024, 1)


async def client_loop(
    http: httpx.AsyncClient,
    account: NewAccount,
    tally: Tally,
    rate: float,
    deadline: float,
    seed: int,
) -> None:
    """Start requests at ``rate`` per second (Poisson arrivals) until ``deadline``.

    Open loop: a request starts on schedule whether or not earlier ones have
    been answered (up to ``MAX_IN_FLIGHT`` at once), so a slow server shows
    as latency, not as a lower rate. Each request is a batch or a single event.
    """
    rng = random.Random(seed)
    serial = 0
    next_at = time.monotonic()
    in_flight: set[asyncio.Task[None]] = set()
    room = asyncio.Semaphore(MAX_IN_FLIGHT)
    while True:
        next_at += rng.expovariate(rate)
        # A generator that fell behind its schedule stops at the deadline too:
        # the run lasts as long as asked, whatever the rate reached.
        if next_at >= deadline or time.monotonic() >= deadline:
            break
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        dialect = rng.choice(DIALECTS)
        single = dialect.batch_size == 1 or rng.random() < 0.5
        size = 1 if single else min(BATCH, dialect.batch_size)
        label = f"{dialect.name} {'single' if single else 'batch'}"
        serial += 1
        sent = markers(f"l{seed}x{serial}", size, contacts=max(1, size * 6 // 10))
        await room.acquire()
        task = asyncio.create_task(send(http, account, dialect, label, sent, tally))
        in_flight.add(task)
        task.add_done_callback(lambda done: (in_flight.discard(done), room.release()))
    if in_flight:
        await asyncio.gather(*in_flight)


async def send(
    http: httpx.AsyncClient,
    account: NewAccount,
    dialect: Dialect,
    label: str,
    sent: list[str],
    tally: Tally,
) -> None:
    request = dialect.batch(account, sent)
    started = time.perf_counter()
    try:
        r = await http.request(
            request.method,
            request.path,
            json=request.json,
            headers=request.headers,
            auth=request.auth or httpx.USE_CLIENT_DEFAULT,
        )
    except httpx.HTTPError as exc:
        tally.errors[f"{label}: {type(exc).__name__}"] += 1
        return
    tally.latencies[label].append((time.perf_counter() - started) * 1000)
    tally.requests += 1
    if dialect.accepted(r):
        tally.events += len(sent)
        tally.acknowledged[dialect.name].extend(sent)
    else:
        tally.errors[f"{label}: {r.status_code}"] += 1


async def drive(
    base_url: str,
    account: NewAccount,
    pid: int,
    args: argparse.Namespace,
    intervals: list[Interval],
) -> Tally:
    tally = Tally()
    seconds = args.minutes * 60
    every = args.interval
    started = time.monotonic()
    deadline = started + seconds
    limits = httpx.Limits(max_connections=args.clients * MAX_IN_FLIGHT)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:
        loops = [
            asyncio.create_task(
                client_loop(http, account, tally, args.rate / args.clients, deadline, seed)
            )
            for seed in range(args.clients)
        ]
        seen_requests = seen_events = seen_errors = 0
        seen_latency: dict[str, int] = defaultdict(int)
        minute = 0
        while not all(loop.done() for loop in loops):
            await asyncio.wait(
                loops, timeout=max(0.0, started + (minute + 1) * every - time.monotonic())
            )
            minute += 1
            latency = {}
            for label, values in sorted(tally.latencies.items()):
                fresh = values[seen_latency[label] :]
                seen_latency[label] = len(values)
                latency[label] = {
                    "requests": len(fresh),
                    "p50": round(percentile(fresh, 0.50), 1),
                    "p99": round(percentile(fresh, 0.99), 1),
                }
            errors = sum(tally.errors.values())
            intervals.append(
                Interval(
                    minute=minute,
                    seconds=round(time.monotonic() - started, 1),
                    requests=tally.requests - seen_requests,
                    events=tally.events - seen_events,
                    errors=errors - seen_errors,
                    server_rss_mb=rss_mb(pid),
                    latency_ms=latency,
                )
            )
            seen_requests, seen_events, seen_errors = tally.requests, tally.events, errors
        for loop in loops:
            loop.result()
    return tally


def verify(database_url: str, account: NewAccount, tally: Tally) -> dict[str, int]:
    """Acknowledged events missing from the database, and events stored twice."""
    store = Database.from_url(database_url, pool_size=1)
    try:
        missing = doubled = 0
        for dialect in DIALECTS:
            stored = Counter(stored_markers(store, account.account.id, dialect))
            acked = tally.acknowledged.get(dialect.name, [])
            missing += sum(1 for marker in acked if stored[marker] == 0)
            doubled += sum(count - 1 for count in stored.values() if count > 1)
        return {"missing": missing, "doubled": doubled}
    finally:
        store.dispose()


@contextmanager
def database(backend: str, postgres_url: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="eventyard-load-") as folder:
            yield f"sqlite:///{folder}/load.db"
        return
    with scratch_postgres_database(postgres_url) as url:
        yield url


def run(args: argparse.Namespace) -> dict[str, Any]:
    intervals: list[Interval] = []
    with database(args.backend, args.postgres_url) as url:
        upgrade_database(url)
        account = create_account_at(url, "load")
        log_dir = Path(tempfile.mkdtemp(prefix="eventyard-load-log-"))
        with (
            running_server(
                url,
                log_dir / "server.log",
                {"EVENTYARD_LOG_LEVEL": "WARNING"} if args.quiet_log else {},
                workers=args.workers,
                body_timeout_seconds=None,
            ) as server,
            httpx.Client(base_url=server.base_url, timeout=30) as http,
        ):
            for dialect in DIALECTS:
                dialect.prepare(http, account)
            rss_start = rss_mb(server.process.pid)
            started = time.monotonic()
            tally = asyncio.run(
                drive(server.base_url, account, server.process.pid, args, intervals)
            )
            elapsed = time.monotonic() - started
            rss_end = rss_mb(server.process.pid)
            server_errors = sum(
                1 for line in server.log_path.read_text().splitlines() if '"level":"error"' in line
            )
        checked = verify(url, account, tally)
    endpoints = {
        label: {
            "requests": len(values),
            "p50": round(percentile(values, 0.50), 1),
            "p99": round(percentile(values, 0.99), 1),
        }
        for label, values in sorted(tally.latencies.items())
    }
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "parameters": {
            "backend": args.backend,
            "minutes": args.minutes,
            "rate": args.rate,
            "clients": args.clients,
            "workers": args.workers,
        },
        "seconds": round(elapsed, 1),
        "requests": tally.requests,
        "events": tally.events,
        "errors": dict(tally.errors),
        "server_log_errors": server_errors,
        **checked,
        "rss_mb": {"start": rss_start, "end": rss_end},
        "endpoints": endpoints,
        "intervals": [asdict(i) for i in intervals],
    }


def show(result: dict[str, Any]) -> None:
    console = Console()
    summary = Table(title=f"Load, {result['parameters']['backend']}, {result['seconds']} s")
    for column in ("requests", "events", "errors", "missing", "doubled", "RSS start", "RSS end"):
        summary.add_column(column, justify="right")
    summary.add_row(
        str(result["requests"]),
        str(result["events"]),
        str(sum(result["errors"].values()) + result["server_log_errors"]),
        str(result["missing"]),
        str(result["doubled"]),
        f"{result['rss_mb']['start']} MB",
        f"{result['rss_mb']['end']} MB",
    )
    console.print(summary)
    endpoints = Table(title="Latency per endpoint (ms)")
    for column in ("endpoint", "requests", "p50", "p99"):
        endpoints.add_column(column, justify="right" if column != "endpoint" else "left")
    for label, figures in result["endpoints"].items():
        endpoints.add_row(label, str(figures["requests"]), str(figures["p50"]), str(figures["p99"]))
    console.print(endpoints)
    minutes = Table(title="Each interval")
    for column in ("#", "at s", "requests", "events", "errors", "RSS MB", "worst p99 ms"):
        minutes.add_column(column, justify="right")
    for interval in result["intervals"]:
        worst = max((v["p99"] for v in interval["latency_ms"].values()), default=0.0)
        minutes.add_row(
            str(interval["minute"]),
            str(interval["seconds"]),
            str(interval["requests"]),
            str(interval["events"]),
            str(interval["errors"]),
            str(interval["server_rss_mb"]),
            str(worst),
        )
    console.print(minutes)
    if result["errors"]:
        console.print(f"[red]errors: {result['errors']}[/red]")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--interval", type=float, default=60, help="seconds per recorded interval")
    parser.add_argument("--rate", type=float, default=50, help="requests per second, in all")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--quiet-log", action="store_true", help="server logs warnings only")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("EVENTYARD_BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "load.json")
    parser.add_argument("--smoke", action="store_true", help="10 s, intervals of 5 s, 20 req/s")
    args = parser.parse_args(argv)
    if args.smoke:
        args.minutes, args.interval, args.rate = 1 / 6, 5.0, 20.0
    result = run(args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    show(result)
    failed = sum(result["errors"].values()) + result["missing"] + result["doubled"]
    failed += result["server_log_errors"]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
