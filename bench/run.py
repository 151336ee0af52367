"""eventyard's benchmark suite: one command, every figure next to the same run's physical limit.

    .venv/bin/python bench/run.py              # the issue's sizes (about an hour)
    .venv/bin/python bench/run.py --quick      # smaller sizes, a few minutes
    .venv/bin/python bench/run.py --smoke      # tiny sizes; a test runs this
    .venv/bin/python bench/run.py --parts limit,ingest --backends postgresql

Parts, each measured in the same run and on the same machine:

``limit``   raw inserts of canonical activity rows into a freshly migrated
            ``activities`` table (same indexes and constraints), 1000 rows per
            transaction: PostgreSQL ``COPY`` through psycopg with 1 and with 2
            connections, SQLite ``executemany``. Every other figure is also a
            ratio to this: PostgreSQL's 2-connection rate, SQLite's rate.
``ingest``  batch ingest over HTTP against a real server (one uvicorn process,
            production settings), per dialect: Netcore, CleverTap and Segment
            1000-event batches, Ortto 100-activity batches, Cordial single
            activities; ``--clients`` concurrent clients; each 1000 events
            name ~600 contacts, 10 % of them new. Events/s, p50/p99, server
            CPU seconds and peak RSS. Every acknowledged event is checked.
``single``  single-event latency at fixed arrival rates and the maximum
            (``bench/single_event.py``: open loop, latency from the scheduled
            send time, group commit on).
``scaling`` PostgreSQL: Netcore batch ingest and the read paths (Cordial GET
            with filters, the canonical timeline) on an empty account and on
            one seeded with ``--scale-contacts`` contacts and
            ``--scale-activities`` activities.
``import``  a bulk CSV import of ``--import-rows`` rows
            (``bench/netcore_import.py``): rows/s and peak RSS.

The load generator runs in this process (or the part's own script), the
server in its own; both share the machine's cores with PostgreSQL. The JSON
goes to ``bench/results/suite.json``; ``bench/README.md`` keeps dated tables.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.load import percentile
from tests.reliability.dialects import DIALECTS_BY_NAME, Dialect, stored_markers
from tests.support import (
    create_account_at,
    running_server,
    scratch_postgres_database,
)

from eventyard.core.ids import new_id
from eventyard.core.model import NewAccount
from eventyard.storage.database import Database
from eventyard.storage.engine import normalize_database_url
from eventyard.storage.migrate import upgrade_database
from eventyard.storage.sql_dialect import _raw_converters
from eventyard.storage.tables import activities

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
PARTS = ("limit", "ingest", "single", "scaling", "import")
#: The servers run production settings but for the per-key rate limit (100 requests/s
#: per key by default), which would otherwise cap a capacity measurement at itself.
BENCH_ENV = {"EVENTYARD_RATE_LIMIT_PER_SECOND": "0"}
#: Dialects of the ingest part and the events per request of each.
INGEST = {"netcore": 1000, "clevertap": 1000, "segment": 1000, "ortto": 100, "cordial": 1}
#: The issue's targets.
TARGET_INGEST_SHARE = 0.50
TARGET_SCALING = 0.90
TARGET_SINGLE_P99_MS = 10.0
TARGET_SINGLE_MAX = 3000.0
TARGET_READ_P99_MS = 20.0
TARGET_IMPORT_SECONDS = 60.0
TARGET_IMPORT_RSS_MB = 300.0

PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {
        "limit_rows": 2000,
        "ingest_events": 2000,
        "cordial_requests": 40,
        "clients": 2,
        "single_rates": "50",
        "single_seconds": 1.0,
        "scale_contacts": 2000,
        "scale_activities": 20000,
        "read_requests": 5,
        "import_rows": 2000,
    },
    "quick": {
        "limit_rows": 30000,
        "ingest_events": 20000,
        "cordial_requests": 1000,
        "clients": 4,
        "single_rates": "100,1000",
        "single_seconds": 5.0,
        "scale_contacts": 100_000,
        "scale_activities": 1_000_000,
        "read_requests": 50,
        "import_rows": 100_000,
    },
    "full": {
        "limit_rows": 100_000,
        "ingest_events": 60000,
        "cordial_requests": 3000,
        "clients": 4,
        "single_rates": "100,1000",
        "single_seconds": 10.0,
        "scale_contacts": 1_000_000,
        "scale_activities": 10_000_000,
        "read_requests": 200,
        "import_rows": 1_000_000,
    },
}


# --- the server's resources -------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


# --- databases ----------------------------------------------------------------------------


@contextmanager
def fresh_database(backend: str, postgres_url: str) -> Iterator[str]:
    """A migrated, empty database of ``backend``, dropped afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="eventyard-suite-") as folder:
            url = f"sqlite:///{folder}/suite.db"
            upgrade_database(url)
            yield url
        return
    with scratch_postgres_database(postgres_url) as url:
        upgrade_database(url)
        yield url


# --- part 1: the limit --------------------------------------------------------------------


def canonical_rows(account_id: str, contacts: Sequence[str], count: int) -> list[dict[str, Any]]:
    """Activity rows as ingest writes them (``services.ingest.activity_row``)."""
    now = datetime.now(UTC)
    rng = random.Random(7)
    rows = []
    for i in range(count):
        occurred = now - timedelta(seconds=rng.randrange(0, 3 * 86400))
        rows.append(
            {
                "id": new_id(),
                "account_id": account_id,
                "contact_id": contacts[i % len(contacts)],
                "name": "Add To Cart",
                "occurred_at": occurred,
                "received_at": now,
                "source": "web",
                "dialect": "netcore",
                "asset_id": "55a6d1d3ac4d5253ca4afd9636442434",
                "journey_eligible": True,
                "properties": {
                    "currency": "INR",
                    "total_item_qty": 1,
                    "items": [{"sku": f"s-{i % 97}", "price": 19.5}, {"sku": "x", "price": 3}],
                },
                "dedup_key": None,
                "location": None,
                "value_milli": None,
                "unsearchable": None,
                "context": None,
            }
        )
    return rows


def encoded(url: str, rows: list[dict[str, Any]]) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Rows encoded as the store's own fast path encodes them for this database."""
    engine = create_engine(normalize_database_url(url))
    try:
        with engine.connect() as conn:
            convert = _raw_converters(conn, activities)
    finally:
        engine.dispose()
    columns = [c.name for c in activities.columns]
    return columns, [tuple(convert[c](row.get(c)) for c in columns) for row in rows]


def copy_rate(url: str, columns: list[str], values: list[tuple[Any, ...]], conns: int) -> float:
    """Rows/s of ``COPY`` in 1000-row transactions over ``conns`` connections."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    column_list = ", ".join(f'"{c}"' for c in columns)
    chunks = [values[i : i + 1000] for i in range(0, len(values), 1000)]

    def load(mine: list[list[tuple[Any, ...]]]) -> None:
        with psycopg.connect(dsn) as raw:
            for chunk in mine:
                with (
                    raw.cursor() as cursor,
                    cursor.copy(f"COPY activities ({column_list}) FROM STDIN") as copy,
                ):
                    for row in chunk:
                        copy.write_row(row)
                raw.commit()

    threads = [threading.Thread(target=load, args=(chunks[i::conns],)) for i in range(conns)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(values) / (time.perf_counter() - started)


def executemany_rate(url: str, columns: list[str], values: list[tuple[Any, ...]]) -> float:
    """Rows/s of SQLite ``executemany`` in 1000-row transactions, the server's pragmas."""
    path = url.removeprefix("sqlite:///")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    column_list = ", ".join(f'"{c}"' for c in columns)
    sql = f"INSERT INTO activities ({column_list}) VALUES ({', '.join('?' for _ in columns)})"  # noqa: S608
    started = time.perf_counter()
    for i in range(0, len(values), 1000):
        db.execute("BEGIN IMMEDIATE")
        db.executemany(sql, values[i : i + 1000])
        db.execute("COMMIT")
    rate = len(values) / (time.perf_counter() - started)
    db.close()
    return rate


def measure_limit(backend: str, args: argparse.Namespace) -> dict[str, float]:
    figures: dict[str, float] = {}
    rounds = [1, 2] if backend == "postgresql" else [1]
    for conns in rounds:
        with fresh_database(backend, args.postgres_url) as url:
            account = create_account_at(url, "limit")
            contacts = [new_id() for _ in range(600)]
            rows = canonical_rows(account.account.id, contacts, args.limit_rows)
            columns, values = encoded(url, rows)
            if backend == "postgresql":
                figures[f"{conns} connection{'s' if conns > 1 else ''}"] = copy_rate(
                    url, columns, values, conns
                )
            else:
                figures["executemany"] = executemany_rate(url, columns, values)
    return figures


def limit_of(backend: str, limits: dict[str, dict[str, float]]) -> float | None:
    figures = limits.get(backend) or {}
    return figures.get("2 connections") or figures.get("executemany")


# --- part 2: batch ingest over HTTP -----------------------------------------------------


class ContactPool:
    """Names for ~600 contacts per 1000 events, 10 % of them never seen before."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.known: list[str] = []
        self.serial = 0

    def batch(self, events: int) -> list[str]:
        contacts = max(1, events * 6 // 10)
        fresh = max(1, contacts // 10) if self.known else contacts
        names = [self._new() for _ in range(fresh)]
        names += self.rng.sample(self.known, min(contacts - fresh, len(self.known)))
        self.known.extend(names[:fresh])
        return names

    def _new(self) -> str:
        self.serial += 1
        return f"b{self.rng.randrange(1 << 30):x}-{self.serial}"


async def drive_ingest(
    base_url: str,
    account: NewAccount,
    dialect: Dialect,
    per_request: int,
    total_events: int,
    clients: int,
) -> dict[str, Any]:
    """Send ``total_events`` in requests of ``per_request`` from ``clients`` clients."""
    requests = max(1, total_events // per_request)
    pools = [ContactPool(seed) for seed in range(clients)]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(requests):
        queue.put_nowait(n)
    latencies: list[float] = []
    acknowledged: list[str] = []
    failures: list[str] = []

    async def client(number: int, http: httpx.AsyncClient) -> None:
        pool = pools[number]
        while not queue.empty():
            n = queue.get_nowait()
            names = pool.batch(per_request)
            marks = [f"{names[i % len(names)]}#{n}-{i}" for i in range(per_request)]
            request = dialect.batch(account, marks)
            started = time.perf_counter()
            r = await http.request(
                request.method,
                request.path,
                json=request.json,
                headers=request.headers,
                auth=request.auth or httpx.USE_CLIENT_DEFAULT,
            )
            latencies.append((time.perf_counter() - started) * 1000)
            if dialect.accepted(r):
                acknowledged.extend(marks)
            else:
                failures.append(f"{r.status_code} {r.text[:200]}")

    async with httpx.AsyncClient(base_url=base_url, timeout=120) as http:
        # Warm-up (not timed): the first contacts of every pool exist before timing.
        for pool in pools:
            names = pool.batch(per_request)
            marks = [f"{names[i % len(names)]}#w-{i}" for i in range(per_request)]
            request = dialect.batch(account, marks)
            await http.request(
                request.method,
                request.path,
                json=request.json,
                headers=request.headers,
                auth=request.auth or httpx.USE_CLIENT_DEFAULT,
            )
        started = time.perf_counter()
        await asyncio.gather(*(client(i, http) for i in range(clients)))
        seconds = time.perf_counter() - started
    return {
        "requests": requests,
        "events": len(acknowledged),
        "seconds": round(seconds, 2),
        "events_per_s": round(len(acknowledged) / seconds, 1),
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "failures": failures[:5],
        "failed": len(failures),
        "acknowledged": acknowledged,
    }


def measure_ingest(
    url: str, account: NewAccount, dialects: Sequence[str], args: argparse.Namespace, log: Path
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    with (
        running_server(url, log, BENCH_ENV, body_timeout_seconds=None) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as http,
    ):
        pid = server.process.pid
        for name in dialects:
            dialect = DIALECTS_BY_NAME[name]
            dialect.prepare(http, account)
            per_request = INGEST[name]
            total = args.cordial_requests if per_request == 1 else args.ingest_events
            cpu_before = cpu_seconds(pid)
            figures = asyncio.run(
                drive_ingest(server.base_url, account, dialect, per_request, total, args.clients)
            )
            figures["server_cpu_s"] = round(cpu_seconds(pid) - cpu_before, 2)
            figures["server_peak_rss_mb"] = peak_rss_mb(pid)
            results[name] = figures
    store = Database.from_url(url, pool_size=1)
    try:
        for name, figures in results.items():
            stored = set(stored_markers(store, account.account.id, DIALECTS_BY_NAME[name]))
            acknowledged = figures.pop("acknowledged")
            figures["missing"] = sum(1 for m in acknowledged if m not in stored)
    finally:
        store.dispose()
    return results


# --- part 3: single events ----------------------------------------------------------------


def run_script(script: str, arguments: list[str], output: Path) -> dict[str, Any]:
    """``bench/<script>`` in its own process; its JSON report."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *arguments, "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(output.read_text())
    return report


def measure_single(backends: Sequence[str], args: argparse.Namespace, folder: Path) -> Any:
    report = run_script(
        "single_event.py",
        [
            "--backends",
            ",".join(backends),
            "--postgres-url",
            args.postgres_url,
            "--modes",
            "group",
            "--rounds",
            "1",
            "--rates",
            args.single_rates,
            "--seconds",
            str(args.single_seconds),
        ],
        folder / "single.json",
    )
    return report["results"]


# --- part 4: scaling ----------------------------------------------------------------------


def seed_scale(url: str, account_id: str, contacts: int, activity_count: int) -> float:
    """``contacts`` contacts with an identity and an e-mail each, and ``activity_count``
    activities spread over them, written with COPY; seconds taken."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    started = time.perf_counter()
    now = datetime.now(UTC)
    ids = [new_id() for _ in range(contacts)]
    with psycopg.connect(dsn) as raw:
        with raw.cursor() as cursor:
            with cursor.copy(
                "COPY contacts (id, account_id, status, attributes, merged_into, created_at,"
                " updated_at) FROM STDIN"
            ) as copy:
                for cid in ids:
                    copy.write_row((cid, account_id, "known", "{}", None, now, now))
            with cursor.copy(
                "COPY contact_identifiers (account_id, kind, value, contact_id, created_at)"
                " FROM STDIN"
            ) as copy:
                for n, cid in enumerate(ids):
                    copy.write_row((account_id, "identity", f"seed-{n}", cid, now))
                    copy.write_row((account_id, "email", f"seed-{n}@example.com", cid, now))
        raw.commit()
        columns = [c.name for c in activities.columns]
        column_list = ", ".join(f'"{c}"' for c in columns)
        made = 0
        while made < activity_count:
            size = min(100_000, activity_count - made)
            rows = canonical_rows(account_id, ids[made % contacts :] + ids, size)
            _, values = encoded(url, rows)
            with (
                raw.cursor() as cursor,
                cursor.copy(f"COPY activities ({column_list}) FROM STDIN") as copy,
            ):
                for row in values:
                    copy.write_row(row)
            raw.commit()
            made += size
        raw.autocommit = True
        raw.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def give_seed_contact_activities(base_url: str, account: NewAccount, count: int = 10) -> None:
    """On the empty database, the contact the reads ask for with as many activities as
    a seeded contact has (10 M / 1 M), so both columns time the same queries."""
    events = [
        {
            "asset_id": "bench",
            "activity_name": "Add To Cart",
            "timestamp": (datetime.now(UTC) - timedelta(minutes=n)).isoformat(),
            "identity": "seed-7",
            "email": "seed-7@example.com",
            "activity_source": "web",
            "activity_params": {"n": n},
        }
        for n in range(count)
    ]
    r = httpx.post(
        f"{base_url}/v1/activity/upload",
        json=events,
        headers={"api-key": account.netcore_api_key},
        timeout=60,
    )
    r.raise_for_status()


def measure_reads(base_url: str, account: NewAccount, requests: int) -> dict[str, Any]:
    """p50/p99 of a Cordial GET with filters and of the canonical timeline."""
    out: dict[str, Any] = {}
    with httpx.Client(base_url=base_url, timeout=60) as http:
        r = http.get(
            "/api/v1/contacts",
            params={"identifier": "identity:seed-7"},
            headers={"Authorization": f"Bearer {account.admin_token}"},
        )
        found = r.json()["contacts"] if r.status_code == 200 else []
        shapes = {
            "cordial GET ?email&action": (
                "/v2/contactactivities",
                {"email": "seed-7@example.com", "action": "Add To Cart", "per_page": 25},
                {"auth": (account.cordial_api_key, "")},
            ),
            "cordial GET ?action&time": (
                "/v2/contactactivities",
                {
                    "action": "Add To Cart",
                    "time[gte]": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
                    "per_page": 25,
                },
                {"auth": (account.cordial_api_key, "")},
            ),
        }
        if found:
            shapes["timeline"] = (
                f"/api/v1/contacts/{found[0]['id']}/activities",
                {"limit": 50},
                {"headers": {"Authorization": f"Bearer {account.admin_token}"}},
            )
        for label, (path, params, extra) in shapes.items():
            times = []
            status = set()
            for _ in range(requests):
                started = time.perf_counter()
                r = http.get(path, params=params, **extra)
                times.append((time.perf_counter() - started) * 1000)
                status.add(r.status_code)
            out[label] = {
                "p50_ms": round(percentile(times, 0.5), 1),
                "p99_ms": round(percentile(times, 0.99), 1),
                "statuses": sorted(status),
            }
    return out


def measure_scaling(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, contacts, count in (
        ("empty", 0, 0),
        ("seeded", args.scale_contacts, args.scale_activities),
    ):
        with fresh_database("postgresql", args.postgres_url) as url:
            account = create_account_at(url, f"scaling {label}")
            seconds = seed_scale(url, account.account.id, contacts, count) if contacts else 0.0
            ingest = measure_ingest(url, account, ["netcore"], args, folder / f"scale-{label}.log")
            with running_server(url, folder / f"reads-{label}.log", BENCH_ENV) as server:
                if not contacts:
                    give_seed_contact_activities(server.base_url, account)
                reads = measure_reads(server.base_url, account, args.read_requests)
            out[label] = {
                "contacts": contacts,
                "activities": count,
                "seed_seconds": round(seconds, 1),
                "netcore": ingest["netcore"],
                "reads": reads,
            }
    return out


# --- part 5: bulk import --------------------------------------------------------------


def measure_import(backends: Sequence[str], args: argparse.Namespace, folder: Path) -> Any:
    report = run_script(
        "netcore_import.py",
        [
            "--rows",
            str(args.import_rows),
            "--backends",
            ",".join(backends),
            "--postgres-url",
            args.postgres_url,
        ],
        folder / "import.json",
    )
    return report.get("results", report)


# --- report -----------------------------------------------------------------------------


def verdict(met: bool) -> str:
    return "[green]met[/green]" if met else "[red]not met[/red]"


def show(result: dict[str, Any]) -> None:
    console = Console(width=140)
    limits: dict[str, dict[str, float]] = result.get("limit", {})
    if limits:
        table = Table(title="1. The limit: raw inserts of canonical activity rows (rows/s)")
        for column in ("backend", "how", "rows/s"):
            table.add_column(column)
        for backend, figures in limits.items():
            for how, rate in figures.items():
                table.add_row(backend, how, f"{rate:,.0f}")
        console.print(table)
    for backend, per_dialect in result.get("ingest", {}).items():
        limit = limit_of(backend, limits)
        table = Table(title=f"2. Batch ingest over HTTP, {backend}")
        for column in (
            "dialect",
            "per request",
            "events/s",
            "of limit",
            "target 50 %",
            "p50 ms",
            "p99 ms",
            "CPU s",
            "peak RSS MB",
            "missing",
        ):
            table.add_column(column, justify="right")
        for name, f in per_dialect.items():
            share = f["events_per_s"] / limit if limit else None
            table.add_row(
                name,
                str(INGEST[name]),
                f"{f['events_per_s']:,.0f}",
                "" if share is None else f"{share:.0%}",
                "" if share is None or INGEST[name] == 1 else verdict(share >= TARGET_INGEST_SHARE),
                str(f["p50_ms"]),
                str(f["p99_ms"]),
                str(f["server_cpu_s"]),
                str(f["server_peak_rss_mb"]),
                str(f["missing"] + f["failed"]),
            )
        console.print(table)
    if result.get("single"):
        table = Table(title="3. Single-event requests (Cordial POST, group commit on)")
        for column in ("backend", "rate/s", "p50 ms", "p99 ms", "p99.9 ms", "target"):
            table.add_column(column, justify="right")
        for run in result["single"]:
            for rate, f in run["rates"].items():
                target = verdict(f["p99_ms"] < TARGET_SINGLE_P99_MS) if float(rate) == 1000 else ""
                table.add_row(
                    run["backend"],
                    rate,
                    str(f["p50_ms"]),
                    str(f["p99_ms"]),
                    str(f["p999_ms"]),
                    target,
                )
            top = run["max"]
            table.add_row(
                run["backend"],
                f"max {top['requests_per_s']:,.0f}",
                str(top["p50_ms"]),
                str(top["p99_ms"]),
                "",
                verdict(top["requests_per_s"] >= TARGET_SINGLE_MAX),
            )
        console.print(table)
    scaling = result.get("scaling")
    if scaling:
        empty, seeded = scaling["empty"], scaling["seeded"]
        ratio = seeded["netcore"]["events_per_s"] / max(empty["netcore"]["events_per_s"], 1e-9)
        table = Table(
            title=f"4. Scaling, PostgreSQL: {seeded['contacts']:,} contacts, "
            f"{seeded['activities']:,} activities vs empty"
        )
        for column in ("figure", "empty", "seeded", "ratio / target"):
            table.add_column(column, justify="right")
        table.add_row(
            "Netcore events/s",
            f"{empty['netcore']['events_per_s']:,.0f}",
            f"{seeded['netcore']['events_per_s']:,.0f}",
            f"{ratio:.0%} {verdict(ratio >= TARGET_SCALING)}",
        )
        for label, f in seeded["reads"].items():
            e = empty["reads"].get(label, {})
            table.add_row(
                f"{label} p50/p99 ms",
                f"{e.get('p50_ms')}/{e.get('p99_ms')}",
                f"{f['p50_ms']}/{f['p99_ms']}",
                verdict(f["p99_ms"] < TARGET_READ_P99_MS),
            )
        console.print(table)
    if result.get("import"):
        table = Table(title="5. Bulk CSV import")
        for column in ("backend", "rows", "seconds", "rows/s", "peak RSS MB", "target"):
            table.add_column(column, justify="right")
        for run in result["import"]:
            ok = (
                run["seconds"] < TARGET_IMPORT_SECONDS and run["peak_rss_mb"] < TARGET_IMPORT_RSS_MB
            )
            table.add_row(
                run["backend"],
                f"{run['rows']:,}",
                str(run["seconds"]),
                f"{run['rows_per_s']:,.0f}",
                str(run["peak_rss_mb"]),
                verdict(ok) if run["rows"] >= 1_000_000 else "(1 M rows for the target)",
            )
        console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--dialects", default=",".join(INGEST))
    parser.add_argument(
        "--postgres-url", default=os.environ.get("EVENTYARD_BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, a few minutes")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (a test runs this)")
    for name, default in PROFILES["full"].items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=None)
    parser.add_argument("--output", type=Path, default=RESULTS / "suite.json")
    args = parser.parse_args(argv)
    profile = "smoke" if args.smoke else "quick" if args.quick else "full"
    for name, default in PROFILES[profile].items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    parts = [p for p in args.parts.split(",") if p]
    backends = [b for b in args.backends.split(",") if b]
    dialects = [d for d in args.dialects.split(",") if d]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {sorted(unknown)}")
    load_before = os.getloadavg()[0]
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip(),
        "profile": profile,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_1m_before": round(load_before, 2),
            "sharing": "server (1 process), PostgreSQL and the load generator share all cores",
        },
        "parameters": {name: getattr(args, name) for name in PROFILES["full"]},
    }
    with tempfile.TemporaryDirectory(prefix="eventyard-suite-logs-") as logs:
        folder = Path(logs)
        if "limit" in parts:
            result["limit"] = {b: measure_limit(b, args) for b in backends}
        if "ingest" in parts:
            result["ingest"] = {}
            for backend in backends:
                with fresh_database(backend, args.postgres_url) as url:
                    account = create_account_at(url, "ingest")
                    result["ingest"][backend] = measure_ingest(
                        url, account, dialects, args, folder / f"ingest-{backend}.log"
                    )
        if "single" in parts:
            result["single"] = measure_single(backends, args, folder)
        if "scaling" in parts and "postgresql" in backends:
            result["scaling"] = measure_scaling(args, folder)
        if "import" in parts:
            result["import"] = measure_import(backends, args, folder)
    result["machine"]["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    show(result)
    lost = sum(
        f["missing"] + f["failed"]
        for per_dialect in result.get("ingest", {}).values()
        for f in per_dialect.values()
    )
    return 1 if lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
