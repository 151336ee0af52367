"""Benchmark: a Netcore bulk contact upload of a large CSV file, end to end, and ingest beside it.

For each backend this script creates an empty database, an account and a
list, writes a CSV file of ``--rows`` contacts (e-mail, a mobile for a third,
three attributes; ``--existing-fraction`` of them already stored by an
earlier import), serves it from a threaded HTTP server on loopback, starts a
real server (``uvicorn eventyard.app:create_app_from_env``, one process with
its job worker, ``EVENTYARD_URL_ALLOWLIST=127.0.0.1/32`` so it may fetch from
loopback), then ``POST /apiv2?type=contact&activity=bulkupload`` and polls
``GET /api/v1/jobs/{requestid}`` until the import completes.

It reports the seconds from the request to the job's completion, rows/s, and
the server process's peak resident memory (``VmHWM``), and checks that every
row was counted and every contact is in the list.

Then (unless ``--no-ingest``), on a second fresh database and server, the
same import runs while Netcore batch ingest goes on beside it, the issue's
"the import yields to the API" (ingest keeps at least 70 % of its idle
rate). ``--ingest-clients`` clients send 1000-event batches shaped like
real traffic (``bench/traffic.py``, as ``bench/run.py``'s ingest part): first
``--ingest-batches`` of them on the idle server, then, once the import job
runs, the same load until the import finishes. Only the answers that arrived
before the job's ``finished_at`` count, over the time from the load's start
to then; fewer than ``MIN_DURING_BATCHES`` such answers is no measurement,
and the output says so instead of giving a figure. Every body is built
before its clock starts: for the import, as many as the idle rate would send
in ``LOAD_MARGIN`` times the import's own seconds (at most
``--ingest-max-batches``); if the load runs out before the import ends, the
output says how much of the import it covered. It reports idle events/s and
p99, the same during the import, their ratio against the 70 % target, the
import's seconds and rows/s under the load, and checks that every
acknowledged event is stored exactly once and the import counted every row.

    .venv/bin/python bench/netcore_import.py --backends postgresql   # 1 M rows
    .venv/bin/python bench/netcore_import.py --rows 200000 --backends sqlite,postgresql
    .venv/bin/python bench/netcore_import.py --smoke                  # a test runs this

See bench/README.md for the recorded results.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

# Run as a script, Python puts bench/ on sys.path, not the repo root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.netcore_ingest import (
    BENCH_DIR,
    DEFAULT_POSTGRES_URL,
    backend_database,
    parse_backends,
    print_markdown_table,
    run_on_backends,
    write_report,
)
from bench.traffic import TRAFFIC, Clients, Request, Tally, count_missing
from tests.e2e.bulk_upload_support import FileServer, file_server
from tests.support import Server, create_account_at, running_server

from eventyard.core.model import NewAccount
from eventyard.services.lists import create_list
from eventyard.storage.database import Database
from eventyard.storage.migrate import upgrade_database

DEFAULT_OUTPUT = BENCH_DIR / "results" / "netcore_import.json"
CITIES = ("Pune", "Goa", "Mumbai", "Delhi", "Chennai", "Kolkata")
#: The issue's target: Netcore batch ingest keeps this share of its idle rate during the import.
TARGET_INGEST_SHARE = 0.70
#: The ingest load's people start here, far from the file's (``customer<n>@example.com`` and
#: ``+9198<n>`` for n below the row count), so that no batch names a contact of the file.
INGEST_FIRST_PERSON = 100_000_000
#: Bodies built for the load during the import: the idle rate times the import's own
#: seconds times this. Under load the import gives way (EVENTYARD_IMPORT_BUSY_SHARE, 0.3 by
#: default: at least 3.3 times as long); 100,000 rows took 8 to 10 times as long in all.
LOAD_MARGIN = 12.0
#: Fewer batches answered while the import ran than this is no measurement.
MIN_DURING_BATCHES = 8
#: How often the job is polled, in seconds (the import's seconds include up to one poll).
POLL_SECONDS = 0.2
FINISHED = ("completed", "failed")


@dataclass(frozen=True)
class UnderLoad:
    """The import run again beside Netcore batch ingest, and that ingest idle and during it."""

    clients: int
    events_per_batch: int
    idle_batches: int
    idle_seconds: float
    idle_events_per_s: float
    idle_p99_ms: float
    #: The same idle load once more after the import (the database then holds the
    #: import's contacts and the load's own events): what ingest does on that data alone.
    after_events_per_s: float
    #: Batches built for the load during the import, and those answered before it finished.
    during_built: int
    during_batches: int
    #: From the load's start to the import's end (or the load's, if it ran out first).
    during_seconds: float
    #: ``None`` when the import ended before the load could be measured (see ``note``).
    during_events_per_s: float | None
    during_p99_ms: float | None
    #: During / idle events/s, against ``TARGET_INGEST_SHARE``.
    ratio: float | None
    #: The share of the import's seconds the measured load covered.
    load_covered: float
    note: str | None
    import_seconds: float
    import_rows_per_s: float
    import_rows: int
    import_failed: int
    list_members: int
    #: Acknowledged events (idle, during and after the cut) not stored / stored twice.
    missing: int
    doubled: int
    failed_requests: int


@dataclass(frozen=True)
class Result:
    backend: str
    rows: int
    file_bytes: int
    seconds: float
    rows_per_s: float
    peak_rss_mb: float
    created: int
    updated: int
    failed: int
    list_members: int
    #: ``None`` with ``--no-ingest``.
    under_load: UnderLoad | None


def write_file(path: Path, rows: int, first: int, seed: int) -> int:
    """``rows`` contacts numbered from ``first``; returns the file's size."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        out.write("EMAIL,MOBILE,FIRSTNAME,CITY,TIER\n")
        for n in range(first, first + rows):
            mobile = f"+9198{n:08d}" if n % 3 == 0 else ""
            out.write(
                f"customer{n}@example.com,{mobile},Name{n},{rng.choice(CITIES)},"
                f"{rng.randrange(1, 5)}\n"
            )
    return path.stat().st_size


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size (Linux ``VmHWM``), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class ImportServer:
    """A server on a fresh database: the account, the list the imports fill, the files."""

    server: Server
    api: httpx.Client
    files: FileServer
    account: NewAccount
    list_id: int

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.account.admin_token}"}

    def start_import(self, name: str) -> str:
        """Ask for the import of the served file ``name``; the job's id."""
        r = self.api.post(
            "/apiv2",
            params={
                "type": "contact",
                "activity": "bulkupload",
                "apikey": self.account.netcore_api_key,
            },
            data={"path": self.files.url(name), "listid": str(self.list_id)},
        )
        r.raise_for_status()
        return str(r.json()["requestid"])

    def import_file(self, name: str) -> dict[str, Any]:
        """Import the served file ``name``; the job once finished."""
        requestid = self.start_import(name)
        while (job := self.job(requestid))["status"] not in FINISHED:
            time.sleep(POLL_SECONDS)
        return job

    def job(self, requestid: str) -> dict[str, Any]:
        body: dict[str, Any] = self.api.get(
            f"/api/v1/jobs/{requestid}", headers=self.admin_headers
        ).json()
        return body

    def list_members(self) -> int:
        r = self.api.get(f"/api/v1/lists/{self.list_id}", headers=self.admin_headers)
        return int(r.json()["members"])


@contextmanager
def import_server(database_url: str, root: Path, log_name: str) -> Iterator[ImportServer]:
    """A server on ``database_url`` (empty) serving the files in ``root``; the warm-up
    import (``warmup.csv``, if it has rows) done. A failed job prints the log's tail."""
    upgrade_database(database_url)
    account = create_account_at(database_url, "bench")
    store = Database.from_url(database_url, pool_size=1)
    try:
        contact_list = create_list(store, account.account, "bench")
    finally:
        store.dispose()
    env = {"EVENTYARD_URL_ALLOWLIST": "127.0.0.1/32", "EVENTYARD_WORKER_POLL_SECONDS": "0.1"}
    log = root / log_name
    with (
        file_server(root) as files,
        running_server(
            database_url, log, env, ready_path="/readyz", body_timeout_seconds=None
        ) as server,
        httpx.Client(base_url=server.base_url, timeout=60) as api,
    ):
        run = ImportServer(server, api, files, account, contact_list.id)
        if len((root / "warmup.csv").read_text().splitlines()) > 1:
            run.import_file("warmup.csv")
        yield run


def report_failed_job(backend: str, job: dict[str, Any], log: Path) -> None:
    if job["status"] != "completed":
        print(f"[{backend}] import {job['status']}: {job['error']}")
        print(log.read_text()[-3000:])


def run_backend(backend: str, database_url: str, args: argparse.Namespace) -> Result:
    existing = int(args.rows * args.existing_fraction)
    with tempfile.TemporaryDirectory(prefix="eventyard-bench-import-") as tmp:
        root = Path(tmp)
        # Contacts numbered below ``existing`` are stored first, by a warm-up import.
        write_file(root / "warmup.csv", existing, 0, args.seed)
        size = write_file(root / "contacts.csv", args.rows, 0, args.seed + 1)
        with import_server(database_url, root, "server.log") as run:
            started = time.perf_counter()
            job = run.import_file("contacts.csv")
            seconds = time.perf_counter() - started
            rss = peak_rss_mb(run.server.process.pid)
            members = run.list_members()
            report_failed_job(backend, job, run.server.log_path)
        under_load = None
        if args.ingest:
            # A database of its own, so that the import does the same work as alone.
            with backend_database(backend, args.postgres_url) as url:
                under_load = import_under_load(backend, url, root, args, seconds)
    return Result(
        backend=backend,
        rows=job["total"],
        file_bytes=size,
        seconds=round(seconds, 2),
        rows_per_s=round(job["total"] / seconds),
        peak_rss_mb=round(rss, 1),
        created=job["created"],
        updated=job["updated"],
        failed=job["failed"],
        list_members=members,
        under_load=under_load,
    )


# --- the import beside Netcore batch ingest -------------------------------------------------


async def send_idle(
    base_url: str, warmup: list[Request], queues: list[list[Request]], tally: Tally
) -> float:
    """The warm-up requests (untimed), then every queue by its own client; seconds taken."""
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as http:
        for request in warmup:
            await request.send(http)
        started = time.perf_counter()
        await asyncio.gather(*(tally.send_each(http, mine) for mine in queues))
        return time.perf_counter() - started


@dataclass(frozen=True)
class Stretch:
    """The load sent while an import job ran (``time.perf_counter()`` moments)."""

    load_started: float
    #: When the job finished, by its ``finished_at``.
    import_finished: float
    #: When polling saw it finished (as the import's own seconds are timed).
    import_seen: float
    job: dict[str, Any]


async def send_while_importing(
    run: ImportServer, requestid: str, queues: list[list[Request]], tally: Tally
) -> Stretch:
    """Once the job runs, every queue by its own client until the job finishes (a client
    stops before its next request; the answers in flight arrive after the job's end)."""
    async with httpx.AsyncClient(base_url=run.server.base_url, timeout=120) as http:

        async def job() -> dict[str, Any]:
            r = await http.get(f"/api/v1/jobs/{requestid}", headers=run.admin_headers)
            body: dict[str, Any] = r.json()
            return body

        state = await job()
        while state["status"] == "queued":
            await asyncio.sleep(0.05)
            state = await job()
        finished = asyncio.Event()
        load_started, wall_started = time.perf_counter(), time.time()
        load = asyncio.gather(*(tally.send_each(http, mine, finished.is_set) for mine in queues))
        while state["status"] not in FINISHED:
            await asyncio.sleep(POLL_SECONDS)
            state = await job()
        seen = time.perf_counter()
        finished.set()
        await load
    # The server's clock is this machine's: its finished_at, on the perf_counter scale.
    ended = datetime.fromisoformat(state["finished_at"]).timestamp()
    return Stretch(load_started, load_started + ended - wall_started, seen, state)


def import_under_load(
    backend: str, database_url: str, root: Path, args: argparse.Namespace, alone_seconds: float
) -> UnderLoad:
    """Netcore batch ingest on the idle server, then the import with the same load beside it."""
    traffic = TRAFFIC["netcore"]
    idle = Tally(traffic.accepted)
    during = Tally(traffic.accepted)
    with import_server(database_url, root, "server-under-load.log") as run:
        traffic.prepare(run.api, run.account)
        clients = Clients(run.account, traffic, args.ingest_clients, INGEST_FIRST_PERSON)
        # Every body is built before its clock starts (bench/README.md, "The traffic").
        warmup = clients.warmup()
        idle_seconds = asyncio.run(
            send_idle(
                run.server.base_url,
                warmup,
                clients.queues(args.ingest_batches, "idle"),
                idle,
            )
        )
        batches_per_s = len(idle.answers) / idle_seconds
        built = min(
            args.ingest_max_batches,
            max(MIN_DURING_BATCHES, math.ceil(batches_per_s * alone_seconds * LOAD_MARGIN)),
        )
        queues = clients.queues(built, "during")
        started = time.perf_counter()
        requestid = run.start_import("contacts.csv")
        stretch = asyncio.run(send_while_importing(run, requestid, queues, during))
        import_seconds = stretch.import_seen - started
        after = Tally(traffic.accepted)
        after_seconds = asyncio.run(
            send_idle(run.server.base_url, [], clients.queues(args.ingest_batches, "after"), after)
        )
        members = run.list_members()
        report_failed_job(backend, stretch.job, run.server.log_path)
    ran_out = len(during.answers) == built and (
        max(a.at for a in during.answers) < stretch.import_finished
    )
    end = max(a.at for a in during.answers) if ran_out else stretch.import_finished
    measured = during.answered_by(end)
    window = end - stretch.load_started
    note = None
    if len(measured.answers) < MIN_DURING_BATCHES:
        note = (
            f"the import ended {window:.2f} s after the load started, with "
            f"{len(measured.answers)} batches answered: too short to measure (more --rows)"
        )
    elif ran_out:
        note = f"the load ran out after {window:.1f} s of the import (more --ingest-max-batches)"
    idle_figures = idle.figures(idle_seconds, None)
    enough = len(measured.answers) >= MIN_DURING_BATCHES
    during_figures = measured.figures(window, None) if enough else None
    check = {
        "netcore": {"acknowledged": idle.acknowledged + during.acknowledged + after.acknowledged}
    }
    count_missing(database_url, run.account, check)
    job = stretch.job
    during_rate = None if during_figures is None else during_figures["events_per_s"]
    return UnderLoad(
        clients=args.ingest_clients,
        events_per_batch=traffic.per_request,
        idle_batches=len(idle.answers),
        idle_seconds=round(idle_seconds, 2),
        idle_events_per_s=idle_figures["events_per_s"],
        idle_p99_ms=idle_figures["p99_ms"],
        after_events_per_s=after.figures(after_seconds, None)["events_per_s"],
        during_built=built,
        during_batches=len(measured.answers),
        during_seconds=round(window, 2),
        during_events_per_s=during_rate,
        during_p99_ms=None if during_figures is None else during_figures["p99_ms"],
        ratio=None if during_rate is None else round(during_rate / idle_figures["events_per_s"], 3),
        load_covered=round(max(0.0, window) / (stretch.import_finished - started), 3),
        note=note,
        import_seconds=round(import_seconds, 2),
        import_rows_per_s=round(job["total"] / import_seconds),
        import_rows=job["total"],
        import_failed=job["failed"],
        list_members=members,
        missing=check["netcore"]["missing"],
        doubled=check["netcore"]["doubled"],
        failed_requests=sum(a.failure is not None for a in idle.answers + during.answers),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows (default 1000000)")
    parser.add_argument(
        "--existing-fraction",
        type=float,
        default=0.0,
        help="share of the rows whose contacts an earlier import stored (default 0)",
    )
    parser.add_argument("--backends", default="postgresql", help="sqlite, postgresql")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument(
        "--no-ingest",
        dest="ingest",
        action="store_false",
        help="only the import alone, not again beside Netcore batch ingest",
    )
    parser.add_argument(
        "--ingest-batches",
        type=int,
        default=60,
        help="1000-event Netcore batches measured on the idle server (default 60)",
    )
    parser.add_argument(
        "--ingest-clients", type=int, default=4, help="concurrent ingest clients (default 4)"
    )
    parser.add_argument(
        "--ingest-max-batches",
        type=int,
        default=1500,
        help="at most this many batches built for the load during the import "
        "(default 1500, about 750 MB of bodies)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="2000 rows, 4 ingest batches from 2 clients, to check it runs",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.rows = 2000
        args.existing_fraction = 0.25
        args.ingest_batches = 4
        args.ingest_clients = 2
        args.ingest_max_batches = 20
    if args.output is None:
        tmp = Path(tempfile.gettempdir()) / "eventyard-bench-import-smoke.json"
        args.output = tmp if args.smoke else DEFAULT_OUTPUT
    args.backends = parse_backends(parser, args.backends)
    load_before = os.getloadavg()
    results = run_on_backends(args, f"import of {args.rows} rows", run_backend)
    print()
    print_markdown_table(
        ("backend", "rows", "MB", "seconds", "rows/s", "peak RSS MB", "created", "updated"),
        [
            (
                r.backend,
                str(r.rows),
                f"{r.file_bytes / 1e6:.1f}",
                f"{r.seconds:.2f}",
                f"{r.rows_per_s:,}",
                f"{r.peak_rss_mb:.0f}",
                str(r.created),
                str(r.updated),
            )
            for r in results
        ],
    )
    loaded = [(r.backend, r.under_load) for r in results if r.under_load is not None]
    if loaded:
        print("\nThe import beside Netcore batch ingest (1000-event batches):\n")
        print_under_load(loaded)
    parameters = {
        "rows": args.rows,
        "existing_fraction": args.existing_fraction,
        "seed": args.seed,
        "smoke": args.smoke,
        "ingest": args.ingest,
        "ingest_batches": args.ingest_batches,
        "ingest_clients": args.ingest_clients,
        "ingest_max_batches": args.ingest_max_batches,
        "target_ingest_share": TARGET_INGEST_SHARE,
    }
    write_report("netcore_import", args.output, parameters, results, load_before)
    failed = [r for r in results if failures(r, args.rows)]
    for r in failed:
        print(f"[{r.backend}] FAILED: {', '.join(failures(r, args.rows))}")
    return 1 if failed else 0


def print_under_load(loaded: list[tuple[str, UnderLoad]]) -> None:
    print_markdown_table(
        (
            "backend",
            "idle ev/s",
            "idle p99 ms",
            "during import ev/s",
            "during p99 ms",
            "ratio",
            "target 70 %",
            "idle after ev/s",
            "import s",
            "import rows/s",
            "missing/doubled",
        ),
        [
            (
                backend,
                f"{u.idle_events_per_s:,.0f}",
                f"{u.idle_p99_ms:.0f}",
                "" if u.during_events_per_s is None else f"{u.during_events_per_s:,.0f}",
                "" if u.during_p99_ms is None else f"{u.during_p99_ms:.0f}",
                "" if u.ratio is None else f"{u.ratio:.0%}",
                "" if u.ratio is None else ingest_verdict(u.ratio),
                f"{u.after_events_per_s:,.0f}",
                f"{u.import_seconds:.2f}",
                f"{u.import_rows_per_s:,}",
                f"{u.missing}/{u.doubled}",
            )
            for backend, u in loaded
        ],
    )
    for backend, u in loaded:
        print(
            f"[{backend}] {u.during_batches} batches answered in the {u.during_seconds:.1f} s "
            f"of the import the load measured ({u.load_covered:.0%} of it), {u.during_built} built"
        )
        if u.note:
            print(f"[{backend}] note: {u.note}")


def ingest_verdict(ratio: float) -> str:
    return "met" if ratio >= TARGET_INGEST_SHARE else "not met"


def failures(r: Result, rows: int) -> list[str]:
    """What went wrong in a backend's run: rows not counted, events lost, requests failed."""
    found = []
    if r.rows != rows or r.failed or r.list_members != rows:
        found.append(f"import alone: {r.rows} rows, {r.failed} failed, {r.list_members} in list")
    u = r.under_load
    if u is not None:
        if u.import_rows != rows or u.import_failed or u.list_members != rows:
            found.append(
                f"import under load: {u.import_rows} rows, {u.import_failed} failed, "
                f"{u.list_members} in list"
            )
        if u.missing or u.doubled or u.failed_requests:
            found.append(
                f"ingest: {u.missing} missing, {u.doubled} doubled, "
                f"{u.failed_requests} failed requests"
            )
    return found


if __name__ == "__main__":
    sys.exit(main())
