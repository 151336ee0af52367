"""Benchmark: Netcore activity ingest through a real server, on SQLite and PostgreSQL.

For each backend this script creates an empty database (a temporary SQLite
file, or a fresh PostgreSQL database that is dropped afterwards), applies the
migrations, creates an account, starts ``uvicorn eventyard.app:create_app_from_env``
in a subprocess and then, from this process, sends ``--batches`` Netcore
batches of ``--events`` activities with ``--clients`` concurrent httpx
clients. Each batch names ``--contacts`` distinct contacts, ``--new-fraction``
of them never seen before and the rest already stored (``--overlap``: also
contacts that batches still in flight are creating). A 503 is retried after
its ``Retry-After``, up to 5 attempts, as a well-behaved client would; the
table counts those retries.

It prints one table row per backend and writes the figures as JSON
(``bench/results/netcore_ingest.json`` by default). It exits non-zero when a
request fails or the database does not hold every acknowledged activity.

    .venv/bin/python bench/netcore_ingest.py                  # both backends, defaults
    .venv/bin/python bench/netcore_ingest.py --backends sqlite --batches 10
    .venv/bin/python bench/netcore_ingest.py --smoke          # a few tiny batches

See bench/README.md for the recorded results.
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
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import OperationalError

from eventyard.storage.engine import normalize_database_url
from eventyard.storage.migrate import upgrade_database
from eventyard.storage.tables import activities

# Run as a script, Python puts bench/ on sys.path, not the repo root that holds tests/support.py.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support import create_account_at, running_server, scratch_postgres_database

BENCH_DIR = Path(__file__).resolve().parent
R = TypeVar("R")
DEFAULT_OUTPUT = BENCH_DIR / "results" / "netcore_ingest.json"
DEFAULT_POSTGRES_URL = os.environ.get(
    "EVENTYARD_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
UPLOAD_PATH = "/v1/activity/upload"
ACTIVITY_NAMES = ("Page Browse", "Product View", "Add To Cart", "Checkout", "Purchase")
#: Attempts per batch: a 503 (database busy or unavailable) is retried after its Retry-After.
MAX_ATTEMPTS = 5
SMOKE = {"batches": 3, "events": 50, "contacts": 30, "clients": 2}


@dataclass(frozen=True)
class Result:
    backend: str
    batches: int
    events: int
    clients: int
    seconds: float
    events_per_s: float
    p50_ms: float
    p99_ms: float
    retried_503: int
    failed_requests: int
    stored_activities: int
    #: Every measured batch's latency (retries included), in the order the answers arrived.
    latencies_ms: list[float]


# --- workload -----------------------------------------------------------------


def contact_fields(n: int) -> dict[str, str]:
    """The identifiers of synthetic contact ``n``: identity and e-mail, a mobile for a third."""
    fields = {"identity": f"cust-{n:07d}", "email": f"customer{n}@example.com"}
    if n % 3 == 0:
        fields["mobile"] = f"+9198{n:08d}"
    return fields


def make_event(rng: random.Random, n: int, now: datetime) -> dict[str, Any]:
    """One Netcore activity for contact ``n``; about half are older than 24 h."""
    occurred = now - timedelta(seconds=rng.randrange(0, 48 * 3600))
    price = rng.randrange(100, 5000) / 10
    return {
        "asset_id": "55a6d1d3ac4d5253ca4afd9636442434",
        "activity_name": rng.choice(ACTIVITY_NAMES),
        "timestamp": occurred.strftime("%Y-%m-%dT%H:%M:%SZ"),
        **contact_fields(n),
        "activity_source": rng.choice(("web", "app")),
        "activity_params": {
            "customer_user_id": str(n),
            "total_item_qty": "2",
            "currency": "INR",
            "items": [
                {
                    "product_name": "Simple Moisturizer",
                    "l1_category": "Skin",
                    "price": price,
                    "quantity": 1,
                },
                {"product_name": "Serum", "l1_category": "Skin", "price": "250.0", "quantity": "1"},
            ],
        },
    }


def make_batches(
    rng: random.Random,
    batches: int,
    events: int,
    contacts: int,
    new_fraction: float,
    settled_lag: int,
) -> tuple[bytes, list[bytes]]:
    """A warm-up batch (all new contacts) and the measured batches, as JSON bodies.

    Each measured batch names ``contacts`` distinct contacts: ``new_fraction``
    of them new, the others drawn from the contacts of earlier batches; every
    contact gets one event and the remaining events go to random ones of them.
    Repeated contacts come from the warm-up and from batches at least
    ``settled_lag`` places earlier: with that many clients those batches have
    normally been acknowledged when this one is sent. With ``settled_lag`` 1,
    a batch also names contacts that batches still in flight are creating.
    """
    now = datetime.now(UTC)
    next_contact = 0

    def batch_of(names: list[int]) -> bytes:
        chosen = names + [rng.choice(names) for _ in range(max(0, events - len(names)))]
        rng.shuffle(chosen)
        return orjson.dumps([make_event(rng, n, now) for n in chosen[:events]])

    warmup_contacts = list(range(contacts))
    next_contact = contacts
    # created[i]: the contacts batch i introduces (the warm-up is batch -1).
    settled = list(warmup_contacts)
    created: list[list[int]] = []
    warmup = batch_of(warmup_contacts)
    bodies = []
    new_per_batch = round(contacts * new_fraction)
    for i in range(batches):
        if i - settled_lag >= 0:
            settled.extend(created[i - settled_lag])
        new = list(range(next_contact, next_contact + new_per_batch))
        next_contact += new_per_batch
        repeated = rng.sample(settled, contacts - new_per_batch)
        bodies.append(batch_of(new + repeated))
        created.append(new)
    return warmup, bodies


# --- databases and server -------------------------------------------------------


@contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="eventyard-bench-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'bench.db'}"


def count_activities(database_url: str, account_id: str) -> int:
    engine = create_engine(normalize_database_url(database_url))
    try:
        with engine.connect() as conn:
            query = select(func.count()).where(activities.c.account_id == account_id)
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


# --- load ---------------------------------------------------------------------------


@dataclass
class Load:
    """What sending the batches measured."""

    seconds: float = 0.0
    #: Wall-clock time (``time.time()``) when the first request went out, to set
    #: against timestamps the server reports.
    started_at: float = 0.0
    #: Per batch, from the first attempt to the final answer (retries included).
    latencies: list[float] = field(default_factory=list)
    #: Answers (503 unless told otherwise) retried after their Retry-After, as a client would.
    retries: int = 0
    failures: list[str] = field(default_factory=list)


async def send_all(base_url: str, api_key: str, bodies: list[bytes], clients: int) -> Load:
    """Send every body with ``clients`` concurrent clients, retrying 503s like a real client."""
    headers = {"api-key": api_key, "Content-Type": "application/json"}

    def check(_: int, response: httpx.Response) -> str | None:
        if response.status_code != 200 or response.json() != {"status": "success"}:
            return f"{response.status_code} {response.text[:300]}"
        return None

    return await send_bodies(base_url, UPLOAD_PATH, headers, bodies, clients, check)


async def send_bodies(
    base_url: str,
    path: str,
    headers: Mapping[str, str],
    bodies: Sequence[bytes],
    clients: int,
    check: Callable[[int, httpx.Response], str | None],
    *,
    retry_statuses: Collection[int] = (503,),
) -> Load:
    """POST every body to ``path`` from ``clients`` concurrent clients; what it measured.

    An answer whose status is in ``retry_statuses`` is retried after its
    ``Retry-After``, up to ``MAX_ATTEMPTS``, as a well-behaved client would.
    ``check(i, response)`` judges the final answer to ``bodies[i]``: it
    returns what is wrong with it, or ``None``.
    """
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(bodies)):
        queue.put_nowait(index)
    load = Load()

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=120) as http:
            while True:
                try:
                    index = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                started = time.perf_counter()
                for attempt in range(MAX_ATTEMPTS):
                    response = await http.post(path, content=bodies[index], headers=headers)
                    if response.status_code not in retry_statuses or attempt == MAX_ATTEMPTS - 1:
                        break
                    load.retries += 1
                    await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                load.latencies.append(time.perf_counter() - started)
                if (failure := check(index, response)) is not None:
                    load.failures.append(failure)

    load.started_at = time.time()
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    load.seconds = time.perf_counter() - started
    return load


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (with 30 samples p99 is the slowest request)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def run_backend(backend: str, database_url: str, args: argparse.Namespace) -> Result:
    upgrade_database(database_url)
    account = create_account_at(database_url, f"bench-{backend}")
    rng = random.Random(args.seed)
    settled_lag = 1 if args.overlap else args.clients
    warmup, bodies = make_batches(
        rng, args.batches, args.events, args.contacts, args.new_fraction, settled_lag
    )
    with bench_server(backend, database_url, args) as server:
        # Not timed: creates the first contacts and warms the server up.
        warm = asyncio.run(send_all(server.base_url, account.netcore_api_key, [warmup], 1))
        load = asyncio.run(send_all(server.base_url, account.netcore_api_key, bodies, args.clients))
        failures = warm.failures + load.failures
        server.failures += failures
    events = args.batches * args.events
    stored = count_activities(database_url, account.account.id)
    return Result(
        backend=backend,
        batches=args.batches,
        events=events,
        clients=args.clients,
        seconds=round(load.seconds, 3),
        events_per_s=round(events / load.seconds, 1),
        p50_ms=round(percentile(load.latencies, 50) * 1000, 1),
        p99_ms=round(percentile(load.latencies, 99) * 1000, 1),
        retried_503=load.retries,
        failed_requests=len(failures),
        stored_activities=stored,
        latencies_ms=[round(x * 1000, 1) for x in load.latencies],
    )


def git_commit() -> str | None:
    """The commit being measured, when run from a git checkout."""
    try:
        run = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=BENCH_DIR,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return run.stdout.strip() or None


def print_table(results: list[Result]) -> None:
    header = (
        "backend",
        "batches",
        "events",
        "seconds",
        "events/s",
        "p50 ms",
        "p99 ms",
        "503 retried",
    )
    rows = [
        (
            r.backend,
            str(r.batches),
            str(r.events),
            f"{r.seconds:.2f}",
            f"{r.events_per_s:,.0f}",
            f"{r.p50_ms:.0f}",
            f"{r.p99_ms:.0f}",
            str(r.retried_503),
        )
        for r in results
    ]
    print_markdown_table(header, rows)


def print_markdown_table(
    header: tuple[str, ...], rows: Sequence[tuple[str, ...]], *, labels: int = 1
) -> None:
    """A Markdown table: the first ``labels`` columns left-aligned, the figures right-aligned."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        padded = [c.ljust(w) for c, w in zip(cells[:labels], widths[:labels], strict=True)]
        padded += [c.rjust(w) for c, w in zip(cells[labels:], widths[labels:], strict=True)]
        return "| " + " | ".join(padded) + " |"

    print(line(header))
    rules = ["-" * (w + 2) for w in widths[:labels]]
    rules += ["-" * (w + 1) + ":" for w in widths[labels:]]
    print("|" + "|".join(rules) + "|")
    for row in rows:
        print(line(row))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000, help="events per batch (default 1000)")
    parser.add_argument(
        "--contacts", type=int, default=600, help="distinct contacts per batch (default 600)"
    )
    parser.add_argument(
        "--new-fraction",
        type=float,
        default=0.1,
        help="share of each batch's contacts never seen before (default 0.1)",
    )
    parser.add_argument(
        "--overlap",
        action="store_true",
        help="let batches repeat contacts that concurrent batches are still creating "
        "(by default repeats come only from batches already acknowledged)",
    )
    add_run_arguments(parser, DEFAULT_OUTPUT)
    args = finish_args(parser, argv, SMOKE, DEFAULT_OUTPUT, "eventyard-bench-smoke.json")
    if not 1 <= args.events <= 1000:
        parser.error("--events must be 1 to 1000 (the Netcore limit)")
    if not 1 <= args.contacts <= args.events:
        parser.error("--contacts must be between 1 and --events")
    return args


def add_run_arguments(
    parser: argparse.ArgumentParser, default_output: Path, *, batches: int = 30
) -> None:
    """The options every ingest benchmark has: load, where it runs, what it writes."""
    parser.add_argument(
        "--batches", type=int, default=batches, help=f"measured batches (default {batches})"
    )
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (default 4)")
    parser.add_argument(
        "--backends",
        default="sqlite,postgresql",
        help="comma-separated: sqlite, postgresql (default both)",
    )
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help="PostgreSQL server to create the scratch database on "
        "(default $EVENTYARD_BENCH_POSTGRES_URL or postgresql://postgres@127.0.0.1:5432/postgres)",
    )
    parser.add_argument(
        "--server-workers", type=int, default=1, help="uvicorn worker processes (default 1)"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the workload")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"JSON file (default {default_output.relative_to(BENCH_DIR.parent)}; "
        "with --smoke a file in the temporary directory)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes (3 batches of 50, 30 contacts, 2 clients) to check that the script runs",
    )


def finish_args(
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    smoke: dict[str, Any],
    default_output: Path,
    smoke_output: str,
) -> argparse.Namespace:
    """Parse ``argv``; apply ``--smoke`` sizes, the default output and the backend list."""
    args = parser.parse_args(argv)
    if args.smoke:
        for name, value in smoke.items():
            setattr(args, name, value)
    if args.output is None:
        args.output = Path(tempfile.gettempdir()) / smoke_output if args.smoke else default_output
    args.backends = parse_backends(parser, args.backends)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()
    results = run_on_backends(args, f"{args.batches} batches of {args.events} events", run_backend)
    print()
    print_table(results)
    parameters = {
        "batches": args.batches,
        "events_per_batch": args.events,
        "contacts_per_batch": args.contacts,
        "new_fraction": args.new_fraction,
        "clients": args.clients,
        "overlap": args.overlap,
        "server_workers": args.server_workers,
        "seed": args.seed,
        "smoke": args.smoke,
    }
    write_report("netcore_ingest", args.output, parameters, results, load_before)
    failed = False
    for r in results:
        expected = r.events + args.events  # the measured batches plus the warm-up batch
        if r.failed_requests or r.stored_activities != expected:
            print(
                f"[{r.backend}] FAILED: {r.failed_requests} failed requests, "
                f"{r.stored_activities} activities stored, {expected} expected"
            )
            failed = True
    return 1 if failed else 0


def parse_backends(parser: argparse.ArgumentParser, value: str) -> list[str]:
    """``--backends sqlite,postgresql`` as a list; unknown names are a usage error."""
    backends = [b.strip() for b in value.split(",") if b.strip()]
    if unknown := set(backends) - {"sqlite", "postgresql"}:
        parser.error(f"unknown backend(s): {', '.join(sorted(unknown))}")
    return backends


@contextmanager
def backend_database(backend: str, postgres_url: str) -> Iterator[str]:
    """An empty database of ``backend`` for one run, removed afterwards."""
    with ExitStack() as stack:
        if backend == "sqlite":
            yield stack.enter_context(sqlite_database())
            return
        try:
            url = stack.enter_context(scratch_postgres_database(postgres_url))
        except OperationalError as exc:
            raise SystemExit(f"PostgreSQL is not reachable at {postgres_url}: {exc}") from exc
        yield url


@dataclass
class BenchServer:
    """The server of one backend's run, and what went wrong while it ran."""

    base_url: str
    #: Failures the run found; when there are any, the server's log tail is printed.
    failures: list[str] = field(default_factory=list)


@contextmanager
def bench_server(
    backend: str, database_url: str, args: argparse.Namespace
) -> Iterator[BenchServer]:
    """A real server on ``database_url`` for the block, as deployed (default settings).

    ``uvicorn eventyard.app:create_app_from_env`` in a subprocess with
    ``args.server_workers`` processes. Failures the block adds to
    ``failures`` are printed after the server stopped, with its log's tail.
    """
    with tempfile.TemporaryDirectory(prefix="eventyard-bench-log-") as tmp:
        log_path = Path(tmp) / "server.log"
        with running_server(
            database_url,
            log_path,
            workers=args.server_workers,
            ready_path="/readyz",
            body_timeout_seconds=None,  # default settings, as deployed
        ) as server:
            run = BenchServer(server.base_url)
            yield run
        if run.failures:
            print(f"[{backend}] {len(run.failures)} failures, first: {run.failures[0]}")
            print(f"[{backend}] server log tail:\n{log_path.read_text()[-3000:]}")


def run_on_backends(
    args: argparse.Namespace, describe: str, run: Callable[[str, str, argparse.Namespace], R]
) -> list[R]:
    """``run(backend, database_url, args)`` once per ``args.backends``, each on a fresh database."""
    results: list[R] = []
    for backend in args.backends:
        with backend_database(backend, args.postgres_url) as url:
            print(f"[{backend}] {describe} ...", flush=True)
            results.append(run(backend, url, args))
    return results


def write_report(
    name: str,
    output: Path,
    parameters: dict[str, Any],
    results: Sequence[Any],
    load_before: tuple[float, float, float],
) -> None:
    """The run as JSON: parameters, commit, machine and every result."""
    report = {
        "benchmark": name,
        "date": datetime.now(UTC).date().isoformat(),
        "commit": git_commit(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "note": "server, database and load generator share the machine",
            "load_average_1m_before": round(load_before[0], 2),
            "load_average_1m_after": round(os.getloadavg()[0], 2),
        },
        "parameters": parameters,
        "results": [asdict(r) for r in results],
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    print(f"\nwrote {output}")


if __name__ == "__main__":
    sys.exit(main())
