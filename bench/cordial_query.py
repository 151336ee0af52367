"""Benchmark: Cordial GET /v2/contactactivities with filters, and an export, at 1 M activities.

For each backend: a fresh database, migrated; one account whose ``--activities``
(1,000,000) activities of ``--contacts`` (100,000) contacts, spread over the
12 months before 2026-11-01, are written straight through the storage layer
(COPY on PostgreSQL, one ``executemany`` per batch on SQLite), then
``ANALYZE``. Against a real server (default settings, its own worker turned
off) it measures ``--requests`` (20) sequential GETs per filter shape with
``per_page`` 25 and 10,000 (p50/p99 latency, rows returned), then one export
of every activity (``POST /v2/contactactivityexport``, NDJSON by default) run
by a separate ``eventyard worker`` process: rows/s and the worker's peak RSS
(``VmHWM`` from ``/proc``).

    .venv/bin/python bench/cordial_query.py --backends postgresql      # 1 M activities
    .venv/bin/python bench/cordial_query.py --activities 200000 --format csv
    .venv/bin/python bench/cordial_query.py --smoke                     # tiny; a test runs this

See bench/README.md for the recorded results.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select, text

from eventyard.core.activity_query import ActivityQuery, encode_query_token
from eventyard.core.ids import new_id
from eventyard.storage.database import Database
from eventyard.storage.migrate import upgrade_database
from eventyard.storage.partitions import Month, ensure_months
from eventyard.storage.sql_dialect import insert_rows
from eventyard.storage.tables import activities, contact_identifiers, contacts

# Run as a script, Python puts bench/ on sys.path, not the repo root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.netcore_ingest import (
    BENCH_DIR,
    DEFAULT_POSTGRES_URL,
    bench_server,
    finish_args,
    percentile,
    print_markdown_table,
    run_on_backends,
    write_report,
)
from tests.support import create_account_at

DEFAULT_OUTPUT = BENCH_DIR / "results" / "cordial_query.json"
SMOKE = {"activities": 3000, "contacts": 300, "requests": 3}
LIST = "/v2/contactactivities"
EXPORT = "/v2/contactactivityexport"
#: Action names and their share of the activities.
ACTIONS = {"browse": 0.55, "cart": 0.2, "open": 0.15, "order": 0.07, "click": 0.03}
#: The activities span the 12 months before this moment.
END = datetime(2026, 11, 1, tzinfo=UTC)
SPAN = timedelta(days=365)
SEED_BATCH = 50_000
PER_PAGES = (25, 10_000)


@dataclass
class Shape:
    """One kind of GET, measured at each ``per_page``."""

    name: str
    per_page: int | None
    p50_ms: float
    p99_ms: float
    #: Records (or the count) the first answer returned.
    rows: int
    latencies_ms: list[float] = field(default_factory=list)


@dataclass
class Result:
    backend: str
    activities: int
    contacts: int
    seed_seconds: float
    shapes: list[Shape]
    export_format: str
    export_rows: int
    #: From the job's startedAt to its finishedAt (the worker's time).
    export_seconds: float
    export_rows_per_s: float
    #: From the POST to the status poll that saw it complete.
    export_wall_seconds: float
    export_bytes: int
    worker_peak_rss_mb: float
    #: The worker's peak RSS before the export (after an export of nothing).
    worker_idle_rss_mb: float
    failures: list[str] = field(default_factory=list)


# --- seeding ------------------------------------------------------------------------


def seed(
    database_url: str, account_id: str, n_activities: int, n_contacts: int, rng: random.Random
) -> None:
    """Contacts (an e-mail each, a custID for every second one) and their activities."""
    store = Database.from_url(database_url, pool_size=1)
    try:
        now = datetime.now(UTC)
        contact_ids = [new_id() for _ in range(n_contacts)]
        with store.unit_of_work() as uow:
            # Past months get partitions of their own, as a server running for a year has.
            ensure_months(uow.conn, Month.of(END - SPAN), Month.of(END))
            for start in range(0, n_contacts, SEED_BATCH):
                chunk = range(start, min(n_contacts, start + SEED_BATCH))
                insert_rows(
                    uow.conn,
                    contacts,
                    [
                        {
                            "id": contact_ids[i],
                            "account_id": account_id,
                            "status": "known",
                            "attributes": {},
                            "merged_into": None,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for i in chunk
                    ],
                )
                identifiers = [
                    {
                        "account_id": account_id,
                        "kind": "email",
                        "value": email(i),
                        "contact_id": contact_ids[i],
                        "created_at": now,
                    }
                    for i in chunk
                ]
                identifiers += [
                    {
                        "account_id": account_id,
                        "kind": "custID",
                        "value": f"C{i:07d}",
                        "contact_id": contact_ids[i],
                        "created_at": now,
                    }
                    for i in chunk
                    if i % 2 == 0
                ]
                insert_rows(uow.conn, contact_identifiers, identifiers)
            uow.commit()
        names = list(ACTIONS)
        weights = list(ACTIONS.values())
        span_s = int(SPAN.total_seconds())
        for start in range(0, n_activities, SEED_BATCH):
            count = min(SEED_BATCH, n_activities - start)
            chosen = rng.choices(names, weights, k=count)
            rows = []
            for k in range(count):
                n = start + k
                rows.append(
                    {
                        "id": new_id(),
                        "account_id": account_id,
                        "contact_id": contact_ids[rng.randrange(n_contacts)],
                        "name": chosen[k],
                        "occurred_at": END - timedelta(seconds=rng.randrange(span_s)),
                        "received_at": now,
                        "source": "api",
                        "dialect": "cordial",
                        "journey_eligible": False,
                        "dedup_key": None,
                        "properties": {
                            "url": f"https://example.com/p/{n % 5000}",
                            "title": "Khaki Shirt",
                            "price": (n % 9000) / 100,
                        },
                    }
                )
            with store.unit_of_work() as uow:
                insert_rows(uow.conn, activities, rows)
                uow.commit()
        with store.engine.connect() as conn:
            # What autovacuum would have done by now (it is off on the bench
            # machine): statistics, and on PostgreSQL the visibility map that
            # lets counts read the index alone (an insert-only table gets it
            # from autovacuum since PostgreSQL 13).
            if conn.dialect.name == "postgresql":
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
            else:
                conn.execute(text("ANALYZE"))
                conn.commit()
    finally:
        store.dispose()


def email(i: int) -> str:
    return f"c{i}@example.com"


def middle_position(database_url: str, account_id: str, n_activities: int) -> tuple[datetime, str]:
    """The (occurred_at, id) halfway down the newest-first listing: a deep keyset position."""
    store = Database.from_url(database_url, pool_size=1)
    try:
        a = activities.c
        with store.unit_of_work(write=False) as uow:
            row = uow.conn.execute(
                select(a.occurred_at, a.id)
                .where(a.account_id == account_id)
                .order_by(a.occurred_at.desc(), a.id.desc())
                .offset(n_activities // 2)
                .limit(1)
            ).one()
        return row[0], row[1]
    finally:
        store.dispose()


# --- measuring ----------------------------------------------------------------------


def shapes_to_measure(
    rng: random.Random, args: argparse.Namespace, deep: tuple[datetime, str]
) -> list[tuple[str, bool, Any]]:
    """``(name, paged, params factory)``: paged shapes run at every per_page."""
    month_start = (END - timedelta(days=120)).date()
    month_end = (END - timedelta(days=90)).date()
    deep_token = encode_query_token(ActivityQuery().continued_after(*deep))
    deep_page = max(1, args.activities // 2)

    def between(_: int) -> dict[str, Any]:
        return {
            "action": "browse",
            "time[between][start]": str(month_start),
            "time[between][end]": str(month_end),
        }

    return [
        ("all, newest first", True, lambda _: {}),
        ("action + 1 month", True, between),
        ("email", True, lambda _: {"email": email(rng.randrange(args.contacts))}),
        (
            "custID + action",
            True,
            lambda _: {"custID": f"C{rng.randrange(0, args.contacts, 2):07d}", "action": "browse"},
        ),
        ("token at the middle", True, lambda _: {"__paging_token": deep_token}),
        ("page= at the middle", True, lambda per_page: {"page": max(1, deep_page // per_page)}),
        ("return_count (all)", False, lambda _: {"return_count": "true"}),
        (
            "return_count (action + 1 month)",
            False,
            lambda _: {**between(0), "return_count": "true"},
        ),
    ]


def measure_gets(
    http: httpx.Client, key: str, args: argparse.Namespace, deep: tuple[datetime, str]
) -> tuple[list[Shape], list[str]]:
    rng = random.Random(args.seed)
    shapes: list[Shape] = []
    failures: list[str] = []
    for name, paged, params_of in shapes_to_measure(rng, args, deep):
        for per_page in PER_PAGES if paged else (None,):
            latencies: list[float] = []
            rows = 0
            for i in range(args.requests + 1):  # the first one warms up, not measured
                params = params_of(per_page or 25)
                if per_page is not None:
                    params["per_page"] = per_page
                started = time.perf_counter()
                r = http.get(LIST, params=params, auth=(key, ""))
                body = r.json()
                elapsed = time.perf_counter() - started
                if r.status_code != 200:
                    failures.append(f"{name}: {r.status_code} {r.text[:200]}")
                    continue
                if i == 0:
                    rows = (
                        body["count"]
                        if isinstance(body, dict)
                        else sum(1 for item in body if "paging" not in item)
                    )
                    continue
                latencies.append(elapsed)
            if latencies:
                shapes.append(
                    Shape(
                        name,
                        per_page,
                        round(percentile(latencies, 50) * 1000, 1),
                        round(percentile(latencies, 99) * 1000, 1),
                        rows,
                        [round(x * 1000, 1) for x in latencies],
                    )
                )
            print(f"  {name} per_page={per_page}: {shapes[-1].p50_ms} ms p50", flush=True)
    return shapes, failures


def vm_kib(pid: int, field_name: str) -> int:
    """A ``VmHWM``/``VmRSS`` line of ``/proc/<pid>/status``, in KiB (0 where unknown)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@contextmanager
def worker_process(
    database_url: str, export_dir: Path, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``eventyard worker`` in a subprocess on ``database_url``; stopped with SIGTERM."""
    env = {
        **os.environ,
        "EVENTYARD_DATABASE_URL": database_url,
        "EVENTYARD_EXPORT_DIR": str(export_dir),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "eventyard", "worker", "--poll", "0.2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def run_export(
    http: httpx.Client,
    key: str,
    fmt: str,
    worker: subprocess.Popen[bytes],
    filters: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], float]:
    """POST an export (of everything by default); the finished job and the wall time to
    see it complete."""
    started = time.perf_counter()
    body = {"name": "bench", "format": fmt, **(filters or {})}
    r = http.post(EXPORT, json=body, auth=(key, ""))
    if r.status_code != 202:
        raise RuntimeError(f"export refused: {r.status_code} {r.text}")
    job_id = r.json()["jobID"]
    while True:
        job: dict[str, Any] = http.get(f"/v2/jobs/{job_id}", auth=(key, "")).json()
        if job["status"] in ("complete", "failed"):
            return job, time.perf_counter() - started
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited with {worker.returncode}")
        time.sleep(0.2)


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def run_backend(backend: str, database_url: str, args: argparse.Namespace) -> Result:
    upgrade_database(database_url)
    account = create_account_at(database_url, f"bench-{backend}")
    rng = random.Random(args.seed)
    print(f"[{backend}] seeding {args.activities:,} activities ...", flush=True)
    started = time.perf_counter()
    seed(database_url, account.account.id, args.activities, args.contacts, rng)
    seed_seconds = time.perf_counter() - started
    print(f"[{backend}] seeded in {seed_seconds:.1f} s", flush=True)
    deep = middle_position(database_url, account.account.id, args.activities)
    key = account.cordial_api_key
    # The server runs no worker: the export runs in a worker process of its own,
    # whose memory is then the export's alone.
    previous = os.environ.get("EVENTYARD_RUN_WORKER")
    os.environ["EVENTYARD_RUN_WORKER"] = "false"
    try:
        with (
            tempfile.TemporaryDirectory(prefix="eventyard-bench-export-") as tmp,
            bench_server(backend, database_url, args) as server,
            httpx.Client(base_url=server.base_url, timeout=300) as http,
        ):
            shapes, failures = measure_gets(http, key, args, deep)
            with worker_process(database_url, Path(tmp), Path(tmp) / "worker.log") as worker:
                # An export of nothing first: the worker is then up, connected and has
                # imported everything, and its peak so far is the baseline.
                run_export(http, key, args.format, worker, {"action": "(none)"})
                idle_kib = vm_kib(worker.pid, "VmHWM")
                job, wall = run_export(http, key, args.format, worker)
                peak_kib = vm_kib(worker.pid, "VmHWM")
            if job["status"] != "complete":
                failures.append(f"export {job['status']}: {job.get('error')}")
            server.failures += failures
    finally:
        if previous is None:
            os.environ.pop("EVENTYARD_RUN_WORKER", None)
        else:
            os.environ["EVENTYARD_RUN_WORKER"] = previous
    rows = int(job.get("totalRecords") or 0)
    seconds = (parse_time(job["finishedAt"]) - parse_time(job["startedAt"])).total_seconds()
    return Result(
        backend=backend,
        activities=args.activities,
        contacts=args.contacts,
        seed_seconds=round(seed_seconds, 1),
        shapes=shapes,
        export_format=args.format,
        export_rows=rows,
        export_seconds=round(seconds, 2),
        export_rows_per_s=round(rows / seconds, 1) if seconds > 0 else 0.0,
        export_wall_seconds=round(wall, 2),
        export_bytes=int(job.get("bytes") or 0),
        worker_peak_rss_mb=round(peak_kib / 1024, 1),
        worker_idle_rss_mb=round(idle_kib / 1024, 1),
        failures=failures,
    )


# --- report ----------------------------------------------------------------------------


def print_tables(results: list[Result]) -> None:
    print("\nGET /v2/contactactivities, sequential requests:\n")
    print_markdown_table(
        ("backend", "filter", "per_page", "rows", "p50 ms", "p99 ms"),
        [
            (
                r.backend,
                s.name,
                "" if s.per_page is None else f"{s.per_page:,}",
                f"{s.rows:,}",
                f"{s.p50_ms:.0f}",
                f"{s.p99_ms:.0f}",
            )
            for r in results
            for s in r.shapes
        ],
        labels=2,
    )
    print("\nExport of every activity (eventyard worker process):\n")
    print_markdown_table(
        ("backend", "format", "rows", "MB", "seconds", "rows/s", "peak RSS MB", "RSS before MB"),
        [
            (
                r.backend,
                r.export_format,
                f"{r.export_rows:,}",
                f"{r.export_bytes / 1e6:.0f}",
                f"{r.export_seconds:.1f}",
                f"{r.export_rows_per_s:,.0f}",
                f"{r.worker_peak_rss_mb:.0f}",
                f"{r.worker_idle_rss_mb:.0f}",
            )
            for r in results
        ],
        labels=2,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--activities", type=int, default=1_000_000, help="stored activities (default 1,000,000)"
    )
    parser.add_argument(
        "--contacts", type=int, default=100_000, help="contacts they belong to (default 100,000)"
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=20,
        help="measured GETs per filter shape and per_page (default 20)",
    )
    parser.add_argument(
        "--format",
        choices=("json", "csv"),
        default="json",
        help="export format (default json: NDJSON)",
    )
    parser.add_argument(
        "--backends",
        default="sqlite,postgresql",
        help="comma-separated: sqlite, postgresql (default both)",
    )
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help="PostgreSQL server to create the scratch database on",
    )
    parser.add_argument(
        "--server-workers", type=int, default=1, help="uvicorn worker processes (default 1)"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the data")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="JSON file (default bench/results/cordial_query.json)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes (3,000 activities, 3 requests) to check the script runs",
    )
    args = finish_args(parser, argv, SMOKE, DEFAULT_OUTPUT, "eventyard-bench-cordial-smoke.json")
    if args.activities < 2 or not 1 <= args.contacts <= args.activities:
        parser.error("--activities must be at least 2 and --contacts 1 to --activities")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()
    results = run_on_backends(
        args, f"{args.activities:,} activities of {args.contacts:,} contacts", run_backend
    )
    print_tables(results)
    parameters = {
        "activities": args.activities,
        "contacts": args.contacts,
        "requests": args.requests,
        "format": args.format,
        "actions": ACTIONS,
        "span_days": SPAN.days,
        "server_workers": args.server_workers,
        "seed": args.seed,
        "smoke": args.smoke,
    }
    write_report("cordial_query", args.output, parameters, results, load_before)
    failed = False
    for r in results:
        if r.failures or r.export_rows != r.activities:
            print(
                f"[{r.backend}] FAILED: {r.failures[:3]}, "
                f"exported {r.export_rows} of {r.activities}"
            )
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
