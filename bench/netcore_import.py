"""Benchmark: a Netcore bulk contact upload of a large CSV file, end to end.

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

    .venv/bin/python bench/netcore_import.py --backends postgresql   # 1 M rows
    .venv/bin/python bench/netcore_import.py --smoke                  # a test runs this

See bench/README.md for the recorded results.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

# Run as a script, Python puts bench/ on sys.path, not the repo root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.netcore_ingest import (
    BENCH_DIR,
    DEFAULT_POSTGRES_URL,
    parse_backends,
    print_markdown_table,
    run_on_backends,
    write_report,
)
from tests.e2e.bulk_upload_support import file_server
from tests.support import create_account_at, running_server

from eventyard.services.lists import create_list
from eventyard.storage.database import Database
from eventyard.storage.migrate import upgrade_database

DEFAULT_OUTPUT = BENCH_DIR / "results" / "netcore_import.json"
CITIES = ("Pune", "Goa", "Mumbai", "Delhi", "Chennai", "Kolkata")


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


def import_file(api: httpx.Client, key: str, admin: str, url: str, list_id: int) -> dict:  # type: ignore[type-arg]
    r = api.post(
        "/apiv2",
        params={"type": "contact", "activity": "bulkupload", "apikey": key},
        data={"path": url, "listid": str(list_id)},
    )
    r.raise_for_status()
    requestid = r.json()["requestid"]
    while True:
        job = api.get(f"/api/v1/jobs/{requestid}", headers={"Authorization": f"Bearer {admin}"})
        body = job.json()
        if body["status"] in ("completed", "failed"):
            return body  # type: ignore[no-any-return]
        time.sleep(0.2)


def run_backend(backend: str, database_url: str, args: argparse.Namespace) -> Result:
    upgrade_database(database_url)
    account = create_account_at(database_url, "bench")
    store = Database.from_url(database_url, pool_size=1)
    try:
        contact_list = create_list(store, account.account, "bench")
    finally:
        store.dispose()
    existing = int(args.rows * args.existing_fraction)
    with tempfile.TemporaryDirectory(prefix="eventyard-bench-import-") as tmp:
        root = Path(tmp)
        # Contacts numbered below ``existing`` are stored first, by a warm-up import.
        write_file(root / "warmup.csv", existing, 0, args.seed)
        size = write_file(root / "contacts.csv", args.rows, 0, args.seed + 1)
        env = {"EVENTYARD_URL_ALLOWLIST": "127.0.0.1/32", "EVENTYARD_WORKER_POLL_SECONDS": "0.1"}
        with (
            file_server(root) as files,
            running_server(
                database_url,
                root / "server.log",
                env,
                ready_path="/readyz",
                body_timeout_seconds=None,
            ) as server,
            httpx.Client(base_url=server.base_url, timeout=60) as api,
        ):
            key, admin = account.netcore_api_key, account.admin_token
            if existing:
                import_file(api, key, admin, files.url("warmup.csv"), contact_list.id)
            started = time.perf_counter()
            job = import_file(api, key, admin, files.url("contacts.csv"), contact_list.id)
            seconds = time.perf_counter() - started
            rss = peak_rss_mb(server.process.pid)
            members = api.get(
                f"/api/v1/lists/{contact_list.id}", headers={"Authorization": f"Bearer {admin}"}
            ).json()["members"]
        if job["status"] != "completed":
            print(f"[{backend}] import {job['status']}: {job['error']}")
            print((root / "server.log").read_text()[-3000:])
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
    parser.add_argument("--smoke", action="store_true", help="2000 rows, to check it runs")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rows = 2000
        args.existing_fraction = 0.25
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
    parameters = {
        "rows": args.rows,
        "existing_fraction": args.existing_fraction,
        "seed": args.seed,
        "smoke": args.smoke,
    }
    write_report("netcore_import", args.output, parameters, results, load_before)
    failed = [r for r in results if r.rows != args.rows or r.failed or r.list_members != args.rows]
    for r in failed:
        print(f"[{r.backend}] FAILED: {r}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
