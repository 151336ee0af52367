"""Benchmark: the web console's pages at 1 M stored activities.

For each backend: a fresh database with the Cordial benchmark's data
(``--activities`` activities of ``--contacts`` contacts written through the
storage layer, ``bench/cordial_query.py`` ``seed``), plus a week of hourly
counts; then, against a real server, ``--requests`` sequential requests of
each page signed in as the account's admin: p50 and p99 latency.

    .venv/bin/python bench/console_pages.py --backends postgresql      # 1 M activities
    .venv/bin/python bench/console_pages.py --smoke                     # tiny; a test runs this
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from eventyard.core.ids import new_id
from eventyard.storage.database import Database
from eventyard.storage.migrate import upgrade_database
from eventyard.storage.sql_dialect import insert_rows
from eventyard.storage.tables import activity_counts

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.cordial_query import email, seed
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

DEFAULT_OUTPUT = BENCH_DIR / "results" / "console_pages.json"
SMOKE = {"activities": 3000, "contacts": 300, "requests": 3}


@dataclass
class PageTiming:
    page: str
    path: str
    p50_ms: float
    p99_ms: float
    status: int


@dataclass
class Result:
    backend: str
    activities: int
    pages: list[PageTiming] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def seed_counts(database_url: str, account_id: str) -> None:
    """A week of hourly counts, as ingest would have kept them: 4 names x 168 hours."""
    store = Database.from_url(database_url, pool_size=1)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    rows = [
        {
            "id": new_id(),
            "account_id": account_id,
            "hour": hour - timedelta(hours=h),
            "dialect": "cordial",
            "name": name,
            "count": 100 + h,
        }
        for h in range(168)
        for name in ("browse", "cart", "open", "order")
    ]
    try:
        with store.unit_of_work() as uow:
            insert_rows(uow.conn, activity_counts, rows)
            uow.commit()
    finally:
        store.dispose()


def timed(
    http: httpx.Client, path: str, n: int, *, stream: bool = False
) -> tuple[list[float], int]:
    samples, status = [], 0
    for _ in range(n):
        started = time.perf_counter()
        if stream:
            # The tail's first response: headers and the first line of the stream.
            with http.stream("GET", path) as r:
                status = r.status_code
                next(r.iter_lines())
        else:
            r = http.get(path)
            status = r.status_code
        samples.append((time.perf_counter() - started) * 1000)
    return samples, status


def run_backend(backend: str, database_url: str, args: argparse.Namespace) -> Result:
    upgrade_database(database_url)
    account = create_account_at(database_url, f"bench-{backend}")
    print(f"[{backend}] seeding {args.activities:,} activities ...", flush=True)
    seed(database_url, account.account.id, args.activities, args.contacts, random.Random(1))
    seed_counts(database_url, account.account.id)
    result = Result(backend=backend, activities=args.activities)
    with (
        bench_server(backend, database_url, args) as server,
        httpx.Client(base_url=server.base_url, timeout=60) as http,
    ):
        form = http.get("/console/sign-in")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        http.post(
            "/console/sign-in", data={"csrf_token": token.group(1), "token": account.admin_token}
        )
        found = http.get("/console/contacts", params={"q": email(0)})
        contact = re.search(r"/console/contacts/([0-9a-f]{24})", found.text)
        assert contact is not None, found.text[:500]
        pages = [
            ("overview", "/console", False),
            ("overview counts (fragment)", "/console/overview/totals", False),
            ("search by e-mail", f"/console/contacts?q={email(0)}", False),
            ("search by e-mail prefix", "/console/contacts?q=c12", False),
            ("contact page with timeline", f"/console/contacts/{contact.group(1)}", False),
            ("jobs", "/console/jobs", False),
            ("live tail page", "/console/tail", False),
            ("live tail stream, first response", "/console/tail/stream", True),
        ]
        for name, path, stream in pages:
            timed(http, path, 1, stream=stream)  # warm up
            samples, status = timed(http, path, args.requests, stream=stream)
            if status != 200:
                result.failures.append(f"{name}: {status}")
            result.pages.append(
                PageTiming(
                    name,
                    path,
                    round(percentile(samples, 50), 1),
                    round(percentile(samples, 99), 1),
                    status,
                )
            )
        server.failures += result.failures
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--activities", type=int, default=1_000_000)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30, help="measured requests per page")
    parser.add_argument("--backends", default="postgresql", help="sqlite, postgresql")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--server-workers", type=int, default=1)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check it runs")
    return finish_args(parser, argv, SMOKE, DEFAULT_OUTPUT, "eventyard-bench-console-smoke.json")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()
    results = run_on_backends(args, f"{args.activities:,} activities", run_backend)
    for r in results:
        print(f"\n{r.backend}, {r.activities:,} activities:\n")
        print_markdown_table(
            ("page", "p50 ms", "p99 ms"),
            [(p.page, f"{p.p50_ms:.1f}", f"{p.p99_ms:.1f}") for p in r.pages],
        )
    parameters: dict[str, Any] = {
        "activities": args.activities,
        "contacts": args.contacts,
        "requests": args.requests,
        "smoke": args.smoke,
    }
    write_report("console_pages", args.output, parameters, results, load_before)
    return 1 if any(r.failures for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
