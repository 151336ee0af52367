"""eventyard's benchmark suite: one command, every figure next to the same run's physical limit.

    .venv/bin/python bench/run.py              # the issue's sizes (about an hour)
    .venv/bin/python bench/run.py --quick      # smaller sizes, a few minutes
    .venv/bin/python bench/run.py --smoke      # tiny sizes; a test runs this
    .venv/bin/python bench/run.py --parts limit,ingest --backends postgresql
    .venv/bin/python bench/run.py --parts limit,ingest --profile /tmp/profiles  # py-spy

Parts, each measured in the same run and on the same machine:

``limit``   raw inserts of canonical activity rows into a freshly migrated
            ``activities`` table (same indexes and constraints), 1000 rows per
            transaction: PostgreSQL ``COPY`` through psycopg with 1 and with 2
            connections, SQLite ``executemany``. Every other figure is also a
            ratio to this: PostgreSQL's 2-connection rate, SQLite's rate.
``ingest``  batch ingest over HTTP against a real server (one uvicorn process,
            production settings), per dialect, in batches shaped like real
            client traffic (``bench/traffic.py``): Netcore, CleverTap and
            Segment 1000-record batches, Ortto 100-activity batches, Cordial
            single activities; ``--clients`` concurrent clients; each 1000
            events name ~600 people, 10 % of them new. Events/s, p50/p99, every
            non-2xx, server CPU seconds and CPU ms per 1000 events, peak RSS.
            Every acknowledged event is looked up: none missing, none doubled.
``overlap`` Netcore batches whose new people are in another client's batch sent
            at the same moment (a person active on two channels at once):
            events/s against the same limit, p50/p99, every status; no retry,
            a 503 fails the run.
``workers`` the server with ``--workers 2``: Netcore batch ingest and single
            events, shown beside the one-process figures of ``ingest`` and
            ``single``.
``nodes``   PostgreSQL: Netcore batch ingest into one node (one server process),
            the same node through HAProxy, and two such nodes behind HAProxy
            (Debian's ``haproxy``, round robin, health check on ``/readyz``),
            side by side, each on a fresh database with the same traffic.
``single``  single-event latency at fixed arrival rates and the maximum
            (``bench/single_event.py``: open loop, latency from the scheduled
            send time, group commit on).
``scaling`` PostgreSQL: Netcore batch ingest and the read paths (Cordial GET
            with filters, the canonical timeline) on an empty account and on
            one seeded with ``--scale-contacts`` contacts and
            ``--scale-activities`` activities.
``import``  a bulk CSV import of ``--import-rows`` rows
            (``bench/netcore_import.py``): rows/s and peak RSS; then the same
            import beside Netcore batch ingest (``--import-ingest-batches``
            batches idle, the same load while the import runs): ingest's
            events/s during the import against idle (target 70 %) and the
            import's seconds under that load (``--no-import-ingest``: not).
``backfill`` an activity backfill of ``--backfill-rows`` NDJSON lines through
            ``eventyard activities import`` (``bench/backfill.py``): activities/s
            against the same limit as batch ingest (target on PostgreSQL: 50 %).

The load generator runs in this process (or the part's own script), the
server in its own; both share the machine's cores with PostgreSQL. The JSON
goes to ``bench/results/suite.json``; ``bench/README.md`` keeps dated tables.
``--profile DIR`` records the server with py-spy during ``--profile-part``
(speedscope JSON, summarised in the report, or ``--profile-format flamegraph``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.load import percentile
from bench.traffic import (
    TRAFFIC,
    Clients,
    ContactPool,
    Request,
    Tally,
    Traffic,
    count_missing,
    events_of,
)
from tests.multihost.hosts import haproxy
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
PARTS = (
    "limit",
    "ingest",
    "overlap",
    "workers",
    "nodes",
    "single",
    "scaling",
    "import",
    "backfill",
    "destinations",
)
#: The parts whose server ``--profile`` can record.
PROFILED_PARTS = ("ingest", "overlap", "workers", "single", "scaling")
#: The servers run production settings but for the per-key rate limit (100 requests/s
#: per key by default), which would otherwise cap a capacity measurement at itself.
BENCH_ENV = {"EVENTYARD_RATE_LIMIT_PER_SECOND": "0"}
#: Dialects of the ingest part and the events per request of each.
INGEST = {name: traffic.per_request for name, traffic in TRAFFIC.items()}
#: People are numbered; each dialect's clients (``PEOPLE_PER_CLIENT`` apart) and the overlap
#: part have their own range, so that 10 % of every dialect's people are new although they
#: share an account.
PEOPLE_PER_DIALECT = 100_000_000
#: After every dialect's range (9 dialects: 900 M; a mobile is +91 and 9,000,000,000 + n).
OVERLAP_FIRST_PERSON = len(TRAFFIC) * PEOPLE_PER_DIALECT
#: py-spy, installed with the test extras beside this Python.
PY_SPY = Path(sys.executable).parent / "py-spy"
#: Server worker processes of the ``workers`` part.
WORKERS = 2
#: The issue's targets.
TARGET_INGEST_SHARE = 0.50
TARGET_CPU_MS_PER_1000 = 15.0
TARGET_OVERLAP_SHARE = 0.40
TARGET_SCALING = 0.90
TARGET_SINGLE_P99_MS = 10.0
TARGET_SINGLE_MAX = 3000.0
TARGET_READ_P99_MS = 20.0
TARGET_IMPORT_SECONDS = 60.0
TARGET_IMPORT_RSS_MB = 300.0
TARGET_IMPORT_INGEST_SHARE = 0.70
TARGET_BACKFILL_SHARE = 0.50
TARGET_DESTINATION_SHARE = 0.80
TARGET_DESTINATION_LAG_SECONDS = 10.0

PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {
        "limit_rows": 2000,
        "ingest_events": 2000,
        "cordial_requests": 40,
        "clients": 2,
        "single_rates": "50",
        "single_seconds": 1.0,
        "single_contacts": 20,
        "single_clients": 4,
        "scale_contacts": 2000,
        "scale_activities": 20000,
        "read_requests": 5,
        "import_rows": 2000,
        "import_ingest_batches": 4,
        "backfill_rows": 5000,
    },
    "quick": {
        "limit_rows": 30000,
        "ingest_events": 20000,
        "cordial_requests": 1000,
        "clients": 4,
        "single_rates": "100,1000",
        "single_seconds": 5.0,
        "single_contacts": 2000,
        "single_clients": 64,
        "scale_contacts": 100_000,
        "scale_activities": 1_000_000,
        "read_requests": 50,
        "import_rows": 100_000,
        "import_ingest_batches": 30,
        "backfill_rows": 500_000,
    },
    "full": {
        "limit_rows": 100_000,
        "ingest_events": 60000,
        "cordial_requests": 3000,
        "clients": 4,
        "single_rates": "100,1000",
        "single_seconds": 10.0,
        "single_contacts": 2000,
        "single_clients": 64,
        "scale_contacts": 1_000_000,
        "scale_activities": 10_000_000,
        "read_requests": 200,
        "import_rows": 1_000_000,
        "import_ingest_batches": 60,
        "backfill_rows": 10_000_000,
    },
}


# --- the server's resources -------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """``pid`` and its living descendants (``--workers 2``: uvicorn's worker processes)."""
    found = [pid]
    for each in found:
        for task in Path(f"/proc/{each}/task").glob("*"):
            try:
                found.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                continue
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of the server so far: the process and every worker process it started."""
    return sum(cpu_seconds(each) for each in process_tree(pid))


def peak_rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def tree_peak_rss_mb(pid: int) -> float:
    """The sum of the peak RSS of the server's processes."""
    return round(sum(peak_rss_mb(each) for each in process_tree(pid)), 1)


class Profiler:
    """``--profile DIR``: py-spy records the server (all its processes) during one part.

    py-spy attaches to the running process (``--nonblocking``: the server is
    not paused to sample it, so the figures move little) and writes one file
    per measured stretch, named after the part, backend and dialect. A
    summary of the functions that hold the most samples goes into the report.
    """

    def __init__(self, folder: Path | None, part: str, output_format: str) -> None:
        self.folder = folder
        self.part = part
        self.format = output_format
        self.summaries: dict[str, Any] = {}

    @contextmanager
    def record(self, pid: int, label: str, part: str) -> Iterator[None]:
        if self.folder is None or part != self.part:
            yield
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        suffix = "speedscope.json" if self.format == "speedscope" else "svg"
        output = self.folder / f"{label}.{suffix}"
        command = [
            str(PY_SPY),
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--nonblocking",
            "--rate",
            "200",
            "--format",
            self.format,
            "--output",
            str(output),
        ]
        spy = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(1.0)  # py-spy attaches before the measured stretch starts
        try:
            yield
        finally:
            spy.send_signal(signal.SIGINT)
            said, _ = spy.communicate(timeout=120)
        if not output.exists():
            raise RuntimeError(f"py-spy wrote no profile:\n{said.decode(errors='replace')}")
        entry: dict[str, Any] = {"file": str(output)}
        if self.format == "speedscope":
            entry["top"] = top_functions(output)
        self.summaries[label] = entry


def top_functions(speedscope: Path, count: int = 15) -> list[dict[str, Any]]:
    """The functions with the most samples in a py-spy speedscope file: the share of
    all samples in which each is on the stack (inclusive) and at its top (self)."""
    data = orjson.loads(speedscope.read_bytes())
    frames = data["shared"]["frames"]
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0.0
    for profile in data["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            total += weight
            names = {
                f"{Path(frames[i].get('file') or '?').name}:{frames[i]['name']}" for i in stack
            }
            for name in names:
                inclusive[name] += weight
            if stack:
                leaf = frames[stack[-1]]
                own[f"{Path(leaf.get('file') or '?').name}:{leaf['name']}"] += weight
    if not total:
        return []
    return [
        {
            "function": name,
            "inclusive": round(inclusive[name] / total, 3),
            "self": round(weight / total, 3),
        }
        for name, weight in own.most_common(count)
    ]


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


async def drive_ingest(
    base_url: str,
    account: NewAccount,
    traffic: Traffic,
    total_events: int,
    clients: int,
    server_cpu: Callable[[], float],
    first_person: int = 0,
) -> dict[str, Any]:
    """Send ``total_events`` in requests of ``traffic.per_request`` from ``clients`` clients.

    Each client sends its share of the requests one after the other and has
    its own people (``ContactPool``): a batch names people the client's
    earlier, answered batches created, and new ones, never people a batch
    still in flight is creating (the ``overlap`` part does that).
    """
    requests = max(1, total_events // traffic.per_request)
    senders = Clients(account, traffic, clients, first_person)
    # Every body is built before the clock starts: building 1000 realistic events
    # takes the load generator 12-35 ms, as much as the server may spend on them.
    warmup = senders.warmup()
    queues = senders.queues(requests, "")
    tally = Tally(traffic.accepted)

    async with httpx.AsyncClient(base_url=base_url, timeout=120) as http:
        # Warm-up (not timed): the first people of every client exist before timing.
        for request in warmup:
            await request.send(http)
        cpu_before = server_cpu()
        started = time.perf_counter()
        await asyncio.gather(*(tally.send_each(http, mine) for mine in queues))
        seconds = time.perf_counter() - started
        cpu = server_cpu() - cpu_before
    return {
        "requests": requests,
        "events_sent": sum(len(r.marks) for mine in queues for r in mine),
        **tally.figures(seconds, cpu),
    }


async def drive_overlap(
    base_url: str,
    account: NewAccount,
    total_events: int,
    clients: int,
    server_cpu: Callable[[], float],
) -> dict[str, Any]:
    """Netcore batches whose new people are also in another client's batch sent at once.

    Clients go in pairs and in rounds: in each round every client sends one
    1000-event batch at the same moment; both clients of a pair name the same
    new people (10 % of the batch's ~600: a person active on two channels at
    once), so two transactions create each of them concurrently. The other
    people are drawn from those every client created in earlier rounds. No
    request is retried: every non-2xx is counted, and a 503 fails the run.
    """
    traffic = TRAFFIC["netcore"]
    per_request = traffic.per_request
    rounds = max(1, total_events // (per_request * clients))
    pairs = max(1, clients // 2)
    shared = ContactPool(OVERLAP_FIRST_PERSON, seed=99)
    tally = Tally(traffic.accepted)
    rngs = [random.Random(100 + number) for number in range(clients)]

    def round_requests(tag: str) -> list[Request]:
        contacts = per_request * 6 // 10
        new_each = max(1, contacts // 10) if shared.known else contacts
        news = [shared.fresh(new_each) for _ in range(pairs)]
        requests = []
        for number in range(clients):
            new = news[number % pairs]
            known = shared.rng.sample(shared.known, min(contacts - len(new), len(shared.known)))
            events = events_of(new + known, per_request, f"{tag}.{number}")
            requests.append(traffic.build(account, events, rngs[number]))
        for new in news:
            shared.known.extend(new)
        return requests

    async with httpx.AsyncClient(base_url=base_url, timeout=120) as http:
        # Warm-up (not timed): every pair's first people, sent by both of its clients at once.
        await asyncio.gather(*(r.send(http) for r in round_requests("w")))
        batches = [round_requests(str(n)) for n in range(rounds)]
        cpu_before = server_cpu()
        started = time.perf_counter()
        for requests in batches:
            await asyncio.gather(*(tally.send(http, r) for r in requests))
        seconds = time.perf_counter() - started
        cpu = server_cpu() - cpu_before
    return {
        "requests": rounds * clients,
        **tally.figures(seconds, cpu),
    }


def measure_ingest(
    url: str,
    account: NewAccount,
    dialects: Sequence[str],
    args: argparse.Namespace,
    log: Path,
    *,
    part: str = "ingest",
    workers: int = 1,
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    with (
        running_server(url, log, BENCH_ENV, workers=workers, body_timeout_seconds=None) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as http,
    ):
        pid = server.process.pid
        for name in dialects:
            traffic = TRAFFIC[name]
            traffic.prepare(http, account)
            total = args.cordial_requests if traffic.per_request == 1 else args.ingest_events
            with args.profiler.record(pid, f"{log.stem}-{name}", part):
                results[name] = asyncio.run(
                    drive_ingest(
                        server.base_url,
                        account,
                        traffic,
                        total,
                        args.clients,
                        partial(tree_cpu_seconds, pid),
                        first_person=list(TRAFFIC).index(name) * PEOPLE_PER_DIALECT,
                    )
                )
            results[name]["server_peak_rss_mb"] = tree_peak_rss_mb(pid)
    count_missing(url, account, results)
    return results


def on_fresh_database(
    backend: str,
    args: argparse.Namespace,
    measure: Callable[[str, NewAccount, Path], Any],
    log: Path,
) -> Any:
    """``measure(url, account, log)`` on a fresh database of ``backend`` with one account."""
    with fresh_database(backend, args.postgres_url) as url:
        return measure(url, create_account_at(url, log.stem), log)


def measure_overlap(
    url: str, account: NewAccount, args: argparse.Namespace, log: Path
) -> dict[str, Any]:
    with running_server(url, log, BENCH_ENV, body_timeout_seconds=None) as server:
        pid = server.process.pid
        with args.profiler.record(pid, log.stem, "overlap"):
            figures = asyncio.run(
                drive_overlap(
                    server.base_url,
                    account,
                    args.ingest_events,
                    args.clients,
                    partial(tree_cpu_seconds, pid),
                )
            )
        figures["server_peak_rss_mb"] = tree_peak_rss_mb(pid)
    figures["dialect"] = "netcore"
    results = {"netcore": figures}
    count_missing(url, account, results)
    return figures


# --- part 3: single events ----------------------------------------------------------------


def run_script(
    script: str,
    arguments: list[str],
    output: Path,
    profile: tuple[Profiler, str, str] | None = None,
) -> dict[str, Any]:
    """``bench/<script>`` in its own process; its JSON report.

    ``profile`` (profiler, label, part): py-spy records the script and every
    process it starts (its servers and its load generator) while it runs.
    """
    with tempfile.TemporaryFile() as said:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / script), *arguments, "--output", str(output)],
            cwd=ROOT,
            stdout=said,
            stderr=subprocess.STDOUT,
        )
        if profile is None:
            process.wait()
        else:
            profiler, label, part = profile
            with profiler.record(process.pid, label, part):
                process.wait()
        if process.returncode != 0:
            said.seek(0)
            raise RuntimeError(f"{script} failed:\n{said.read()[-6000:].decode(errors='replace')}")
    report: dict[str, Any] = json.loads(output.read_text())
    return report


def measure_single(
    backends: Sequence[str],
    args: argparse.Namespace,
    folder: Path,
    *,
    part: str = "single",
    workers: int = 1,
) -> Any:
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
            "--contacts",
            str(args.single_contacts),
            "--clients",
            str(args.single_clients),
            "--server-workers",
            str(workers),
        ],
        folder / f"{part}.json",
        (args.profiler, part, part),
    )
    return report["results"]


def drive_single_events(
    server_url: str, account: NewAccount, args: argparse.Namespace, seed: int
) -> dict[str, Any]:
    """Single Cordial activities against a running server, from ``single_event.py``'s load
    generator in its own process: fixed rates, then the maximum (its module says how)."""
    host, port = server_url.removeprefix("http://").split(":")
    spec = {
        "host": host,
        "port": int(port),
        "key": account.cordial_api_key,
        "rates": [float(r) for r in args.single_rates.split(",")],
        "seconds": args.single_seconds,
        "clients": args.single_clients,
        "contacts": args.single_contacts,
        "seed": seed,
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "single_event.py"), "--generate", json.dumps(spec)],
        capture_output=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"the single-event load generator failed:\n{done.stderr.decode()}")
    load: dict[str, Any] = json.loads(done.stdout)
    return load


def count_stored(url: str, account: NewAccount, dialect: str) -> int:
    store = Database.from_url(url, pool_size=1)
    try:
        with store.engine.connect() as conn:
            query = select(func.count()).where(
                activities.c.account_id == account.account.id, activities.c.dialect == dialect
            )
            return int(conn.execute(query).scalar_one())
    finally:
        store.dispose()


def measure_workers(
    backends: Sequence[str], args: argparse.Namespace, folder: Path
) -> dict[str, Any]:
    """Netcore batch ingest, then single events, with the server in ``WORKERS`` processes
    (one server and database per backend for both)."""
    ingest: dict[str, Any] = {}
    single: list[dict[str, Any]] = []
    for backend in backends:
        with fresh_database(backend, args.postgres_url) as url:
            account = create_account_at(url, "workers")
            log = folder / f"workers-{backend}.log"
            figures: dict[str, Any] = {}
            with running_server(
                url, log, BENCH_ENV, workers=WORKERS, body_timeout_seconds=None
            ) as server:
                pid = server.process.pid
                with args.profiler.record(pid, f"{log.stem}-netcore", "workers"):
                    figures = asyncio.run(
                        drive_ingest(
                            server.base_url,
                            account,
                            TRAFFIC["netcore"],
                            args.ingest_events,
                            args.clients,
                            partial(tree_cpu_seconds, pid),
                        )
                    )
                with args.profiler.record(pid, f"{log.stem}-single", "workers"):
                    load = drive_single_events(server.base_url, account, args, seed=1)
                figures["server_peak_rss_mb"] = tree_peak_rss_mb(pid)
            results = {"netcore": figures}
            count_missing(url, account, results)
            ingest[backend] = figures
            runs = [*load["rates"].values(), load["max"]]
            acknowledged = sum(run["statuses"].get("200", 0) for run in runs)
            failed = sum(n for run in runs for code, n in run["statuses"].items() if code != "200")
            # Every 200, and the generator's warm-up (one request per contact), stored once.
            stored = count_stored(url, account, "cordial")
            single.append(
                {
                    "backend": backend,
                    "rates": load["rates"],
                    "max": load["max"],
                    "acknowledged": acknowledged,
                    "failed": failed,
                    "missing": args.single_contacts + acknowledged - stored,
                }
            )
    return {"workers": WORKERS, "ingest": ingest, "single": single}


# --- part 2d: nodes behind a load balancer ---------------------------------------------

#: The set-ups of the ``nodes`` part: (label, nodes, through HAProxy).
NODE_SETUPS = (("1 node", 1, False), ("1 node, HAProxy", 1, True), ("2 nodes, HAProxy", 2, True))


def servers_cpu_seconds(pids: list[int]) -> float:
    return sum(tree_cpu_seconds(pid) for pid in pids)


def measure_nodes(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Netcore batch ingest against each of ``NODE_SETUPS`` on PostgreSQL, each on a fresh
    database with an account of its own; every node one server process."""
    results: dict[str, Any] = {}
    for label, count, balanced in NODE_SETUPS:
        with fresh_database("postgresql", args.postgres_url) as url, ExitStack() as stack:
            account = create_account_at(url, "nodes")
            servers = [
                stack.enter_context(
                    running_server(
                        url,
                        folder / f"nodes-{count}-{balanced}-{n}.log",
                        BENCH_ENV,
                        ready_path="/readyz",
                        body_timeout_seconds=None,
                    )
                )
                for n in range(count)
            ]
            base_url = servers[0].base_url
            if balanced:
                nodes = {f"node{n}": s.base_url.split("//")[1] for n, s in enumerate(servers)}
                base_url = stack.enter_context(haproxy(folder / f"haproxy-{count}", nodes))
            pids = [s.process.pid for s in servers]
            figures = asyncio.run(
                drive_ingest(
                    base_url,
                    account,
                    TRAFFIC["netcore"],
                    args.ingest_events,
                    args.clients,
                    partial(servers_cpu_seconds, pids),
                )
            )
            figures["nodes"] = count
            figures["haproxy"] = balanced
            figures["server_peak_rss_mb"] = sum(tree_peak_rss_mb(pid) for pid in pids)
            count_missing(url, account, {"netcore": figures})
            results[label] = figures
    return results


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
            ingest = measure_ingest(
                url, account, ["netcore"], args, folder / f"scale-{label}.log", part="scaling"
            )
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
            "--ingest-batches",
            str(args.import_ingest_batches),
            "--ingest-clients",
            str(args.clients),
            *([] if args.import_ingest else ["--no-ingest"]),
        ],
        folder / "import.json",
    )
    return report.get("results", report)


# --- part 6: activity backfill ----------------------------------------------------------


def measure_backfill(backends: Sequence[str], args: argparse.Namespace, folder: Path) -> Any:
    report = run_script(
        "backfill.py",
        [
            "--rows",
            str(args.backfill_rows),
            "--backends",
            ",".join(backends),
            "--postgres-url",
            args.postgres_url,
        ],
        folder / "backfill.json",
    )
    return report.get("results", report)


# --- part 7: destinations -------------------------------------------------------------


def measure_destinations(backends: Sequence[str], args: argparse.Namespace, folder: Path) -> Any:
    """bench/destinations.py: ingest with a webhook destination, delivery as CleverTap."""
    report = run_script(
        "destinations.py",
        [
            "--events",
            str(args.ingest_events),
            "--clients",
            str(args.clients),
            "--backends",
            ",".join(backends),
            "--postgres-url",
            args.postgres_url,
        ],
        folder / "destinations.json",
    )
    return report.get("results", report)


# --- report -----------------------------------------------------------------------------


def verdict(met: bool) -> str:
    return "[green]met[/green]" if met else "[red]not met[/red]"


def cpu_cell(figures: dict[str, Any], *, target: bool) -> str:
    """The server's CPU per 1000 events, with the <= 15 ms verdict where it is the target."""
    cpu = figures.get("server_cpu_ms_per_1000")
    if cpu is None:
        return ""
    return f"{cpu} {verdict(cpu <= TARGET_CPU_MS_PER_1000)}" if target else str(cpu)


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
            "CPU ms / 1000 ev",
            "peak RSS MB",
            "non-2xx",
            "missing/doubled",
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
                cpu_cell(f, target=name == "netcore"),
                str(f["server_peak_rss_mb"]),
                str(f["failed"]),
                f"{f['missing']}/{f['doubled']}",
            )
        console.print(table)
    if result.get("overlap"):
        table = Table(
            title="2b. Overlap: Netcore batches naming people that concurrent batches create"
        )
        for column in (
            "backend",
            "events/s",
            "of limit",
            "target 40 %",
            "p50 ms",
            "p99 ms",
            "CPU ms / 1000 ev",
            "statuses",
            "missing/doubled",
        ):
            table.add_column(column, justify="right")
        for backend, f in result["overlap"].items():
            limit = limit_of(backend, limits)
            share = f["events_per_s"] / limit if limit else None
            no_503 = "503" not in f["statuses"]
            table.add_row(
                backend,
                f"{f['events_per_s']:,.0f}",
                "" if share is None else f"{share:.0%}",
                "" if share is None else verdict(share >= TARGET_OVERLAP_SHARE and no_503),
                str(f["p50_ms"]),
                str(f["p99_ms"]),
                cpu_cell(f, target=False),
                " ".join(f"{code}: {count}" for code, count in f["statuses"].items()),
                f"{f['missing']}/{f['doubled']}",
            )
        console.print(table)
    workers = result.get("workers")
    if workers:
        table = Table(title=f"2c. The server in {workers['workers']} worker processes vs one")
        for column in ("backend", "figure", "1 process", f"{workers['workers']} workers"):
            table.add_column(column, justify="right")
        for backend, f in workers["ingest"].items():
            one = result.get("ingest", {}).get(backend, {}).get("netcore")
            table.add_row(
                backend,
                "Netcore events/s",
                f"{one['events_per_s']:,.0f}" if one else "",
                f"{f['events_per_s']:,.0f}",
            )
            table.add_row(
                backend,
                "Netcore p50/p99 ms",
                f"{one['p50_ms']}/{one['p99_ms']}" if one else "",
                f"{f['p50_ms']}/{f['p99_ms']}",
            )
            table.add_row(
                backend,
                "Netcore CPU ms / 1000 ev",
                cpu_cell(one, target=False) if one else "",
                cpu_cell(f, target=False),
            )
        singles = {run["backend"]: run for run in result.get("single", [])}
        for run in workers["single"]:
            one = singles.get(run["backend"])
            table.add_row(
                run["backend"],
                "single events, max requests/s",
                f"{one['max']['requests_per_s']:,.0f}" if one else "",
                f"{run['max']['requests_per_s']:,.0f}",
            )
        console.print(table)
    nodes = result.get("nodes")
    if nodes:
        table = Table(title="2d. Netcore batch ingest, PostgreSQL: 1 node against 2 behind HAProxy")
        for column in ("set-up", "events/s", "vs 1 node", "p50 ms", "p99 ms", "CPU ms / 1000 ev"):
            table.add_column(column, justify="right")
        alone = nodes.get("1 node", {}).get("events_per_s")
        for label, f in nodes.items():
            table.add_row(
                label,
                f"{f['events_per_s']:,.0f}",
                f"{f['events_per_s'] / alone:.2f}x" if alone else "",
                str(f["p50_ms"]),
                str(f["p99_ms"]),
                cpu_cell(f, target=False),
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
    if result.get("py_spy"):
        show_profiles(console, result["py_spy"])
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
        show_import_under_load(console, result["import"])
    if result.get("backfill"):
        table = Table(title="6. Activity backfill (eventyard activities import, NDJSON)")
        for column in (
            "backend",
            "lines",
            "seconds",
            "activities/s",
            "of limit",
            "target 50 %",
            "peak RSS MB",
        ):
            table.add_column(column, justify="right")
        for run in result["backfill"]:
            limit = limit_of(run["backend"], limits)
            share = run["rows_per_s"] / limit if limit else None
            table.add_row(
                run["backend"],
                f"{run['rows']:,}",
                str(run["seconds"]),
                f"{run['rows_per_s']:,.0f}",
                "" if share is None else f"{share:.0%}",
                ""
                if share is None or run["backend"] != "postgresql"
                else verdict(share >= TARGET_BACKFILL_SHARE),
                str(run["peak_rss_mb"]),
            )
        console.print(table)
    if result.get("destinations"):
        show_destinations(console, result["destinations"])


def show_destinations(console: Console, runs: list[dict[str, Any]]) -> None:
    table = Table(title="7. Destinations: Netcore ingest with one active, delivery as CleverTap")
    for column in (
        "backend",
        "events",
        "plain ev/s",
        "outbox only",
        "webhook ev/s",
        "target 80 %",
        "max lag s",
        "target < 10 s",
        "delivered/s",
    ):
        table.add_column(column, justify="right")
    for run in runs:
        share = run["webhook_share"]
        table.add_row(
            run["backend"],
            f"{run['events']:,}",
            f"{run['plain_events_per_s']:,.0f}",
            f"{run['outbox_events_per_s']:,.0f} ({run['outbox_share']:.0%})",
            f"{run['webhook_events_per_s']:,.0f}",
            f"{share:.0%} {verdict(share >= TARGET_DESTINATION_SHARE)}",
            str(run["clevertap_max_lag_seconds"]),
            verdict(run["clevertap_max_lag_seconds"] < TARGET_DESTINATION_LAG_SECONDS),
            f"{run['clevertap_delivered_per_s']:,.0f}",
        )
    console.print(table)


def show_import_under_load(console: Console, runs: list[dict[str, Any]]) -> None:
    """Netcore batch ingest idle and while the import runs, and the import under that load."""
    loaded = [run for run in runs if run.get("under_load")]
    if not loaded:
        return
    table = Table(title="5b. Netcore batch ingest while the import runs (1000-event batches)")
    for column in (
        "backend",
        "idle ev/s",
        "during import ev/s",
        "of idle / target 70 %",
        "p99 ms idle / during",
        "import s alone / loaded",
        "rows/s alone / loaded",
        "missing/doubled",
    ):
        table.add_column(column, justify="right")
    for run in loaded:
        u = run["under_load"]
        during = u["during_events_per_s"]
        table.add_row(
            run["backend"],
            f"{u['idle_events_per_s']:,.0f}",
            "(too short)" if during is None else f"{during:,.0f}",
            ""
            if u["ratio"] is None
            else f"{u['ratio']:.0%} {verdict(u['ratio'] >= TARGET_IMPORT_INGEST_SHARE)}",
            f"{u['idle_p99_ms']} / {'' if during is None else u['during_p99_ms']}",
            f"{run['seconds']} / {u['import_seconds']}",
            f"{run['rows_per_s']:,.0f} / {u['import_rows_per_s']:,.0f}",
            f"{u['missing']}/{u['doubled']}",
        )
    console.print(table)
    for run in loaded:
        if run["under_load"]["note"]:
            console.print(f"{run['backend']}: {run['under_load']['note']}")


def show_profiles(console: Console, profiles: dict[str, Any]) -> None:
    for label, entry in profiles["stretches"].items():
        if not entry.get("top"):
            console.print(f"py-spy profile of {label}: {entry['file']}")
            continue
        table = Table(title=f"py-spy, {label} (share of samples): {entry['file']}")
        for column in ("function", "self", "on the stack"):
            table.add_column(column, justify="right")
        for row in entry["top"]:
            table.add_row(row["function"], f"{row['self']:.1%}", f"{row['inclusive']:.1%}")
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
    parser.add_argument(
        "--no-import-ingest",
        dest="import_ingest",
        action="store_false",
        help="the import part only imports, not again beside Netcore batch ingest",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="record the server with py-spy during --profile-part, one file per stretch in DIR",
    )
    parser.add_argument("--profile-part", choices=PROFILED_PARTS, default="ingest")
    parser.add_argument(
        "--server-tree",
        type=Path,
        default=None,
        metavar="DIR",
        help="serve the code of another checkout (an earlier commit's worktree) with this "
        "run's traffic and checks; not for the single part (single_event.py --modes before)",
    )
    parser.add_argument(
        "--profile-format",
        choices=("speedscope", "flamegraph"),
        default="speedscope",
        help="speedscope JSON (summarised in the report) or a flame graph SVG",
    )
    args = parser.parse_args(argv)
    if args.server_tree is not None:
        if "single" in args.parts.split(","):
            parser.error("--server-tree: run the single part as single_event.py --modes before")
        # The servers import eventyard from that checkout; this process (accounts,
        # traffic, checks) keeps its own, on the same schema.
        BENCH_ENV["PYTHONPATH"] = str(args.server_tree.resolve() / "src")
    if args.profile is not None and not PY_SPY.exists():
        parser.error(f"--profile needs py-spy at {PY_SPY}: pip install -e '.[test]'")
    args.profiler = Profiler(args.profile, args.profile_part, args.profile_format)
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
            "sharing": "server (1 process; the workers part: 2), PostgreSQL and the load"
            " generator share all cores",
        },
        "parameters": {name: getattr(args, name) for name in PROFILES["full"]},
        "part_seconds": {},
    }
    with tempfile.TemporaryDirectory(prefix="eventyard-suite-logs-") as logs:
        folder = Path(logs)
        measures: dict[str, Callable[[], Any]] = {
            "limit": lambda: {b: measure_limit(b, args) for b in backends},
            "ingest": lambda: {
                b: on_fresh_database(
                    b,
                    args,
                    lambda url, account, log: measure_ingest(url, account, dialects, args, log),
                    folder / f"ingest-{b}.log",
                )
                for b in backends
            },
            "overlap": lambda: {
                b: on_fresh_database(
                    b,
                    args,
                    lambda url, account, log: measure_overlap(url, account, args, log),
                    folder / f"overlap-{b}.log",
                )
                for b in backends
            },
            "workers": lambda: measure_workers(backends, args, folder),
            "nodes": lambda: measure_nodes(args, folder),
            "single": lambda: measure_single(backends, args, folder),
            "scaling": lambda: measure_scaling(args, folder),
            "import": lambda: measure_import(backends, args, folder),
            "backfill": lambda: measure_backfill(backends, args, folder),
            "destinations": lambda: measure_destinations(backends, args, folder),
        }
        for part in PARTS:
            if part not in parts or (part in ("scaling", "nodes") and "postgresql" not in backends):
                continue
            started = time.perf_counter()
            result[part] = measures[part]()
            result["part_seconds"][part] = round(time.perf_counter() - started, 1)
    result["machine"]["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    if args.profile is not None:
        result["py_spy"] = {"part": args.profile_part, "stretches": args.profiler.summaries}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    show(result)
    return 1 if lost_events(result) else 0


def lost_events(result: dict[str, Any]) -> int:
    """Acknowledged events missing or stored twice, and failed requests, over every part."""
    checked = [f for per_dialect in result.get("ingest", {}).values() for f in per_dialect.values()]
    checked += list(result.get("overlap", {}).values())
    checked += list(result.get("workers", {}).get("ingest", {}).values())
    checked += list(result.get("nodes", {}).values())
    # Single events: every request the load generator sent was answered 200 and stored.
    unstored = sum(
        run["failed"] + abs(run["missing"]) for run in result.get("workers", {}).get("single", [])
    )
    scaling = result.get("scaling", {})
    checked += [scaling[label]["netcore"] for label in ("empty", "seeded") if label in scaling]
    # The import's own checks (rows counted, events stored once) fail its script, and so the run.
    unstored += sum(
        run["under_load"]["missing"]
        + run["under_load"]["doubled"]
        + run["under_load"]["failed_requests"]
        for run in result.get("import", [])
        if run.get("under_load")
    )
    return unstored + sum(f["missing"] + f["doubled"] + f["failed"] for f in checked)


if __name__ == "__main__":
    raise SystemExit(main())
