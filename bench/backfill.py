"""Benchmark: an activity backfill of a large NDJSON file, end to end.

For each backend this script creates an empty database and an account,
stores the first tenth of the file's people beforehand (a backfill of
history for contacts the account already has, and for new ones), writes an
NDJSON file of ``--rows`` activities shaped like an export of real history
(each person about 20 activities; e-mail and identity on every line, a
mobile for a third; an ``id`` per line; nested properties with a product
array; times spread over a year), then runs ``eventyard activities import``
as an operator would (its own process, default settings) and times it.

It reports the seconds, activities/s, the importing process's peak resident
memory, and checks that every line was stored exactly once, for the right
contact count, with ``journey_eligible`` false. ``bench/run.py`` part
``backfill`` runs it and sets the rate against the same limit as batch
ingest (part ``limit``).

    .venv/bin/python bench/backfill.py --backends postgresql          # 10 M lines
    .venv/bin/python bench/backfill.py --smoke                          # a test runs this
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from sqlalchemy import func, select

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
from tests.support import create_account_at

from eventyard.core.identifiers import Identifier
from eventyard.core.model import ProfileUpdate
from eventyard.services.ingest import store_records
from eventyard.storage.database import Database
from eventyard.storage.migrate import upgrade_database
from eventyard.storage.tables import activities, contacts

DEFAULT_OUTPUT = BENCH_DIR / "results" / "backfill.json"
ROOT = Path(__file__).resolve().parents[1]
#: Activities per person, about.
PER_PERSON = 20
NAMES = ("Page Browse", "Product View", "Add To Cart", "Checkout", "Purchase")
PRODUCTS = ("Serum", "Trail Shoe", "Rain Jacket", "Espresso Beans", "Moisturizer")
START = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Result:
    backend: str
    rows: int
    file_mb: float
    seconds: float
    rows_per_s: float
    peak_rss_mb: float
    stored: int
    contacts_created: int
    activities_in_database: int
    contacts_in_database: int
    journey_eligible: int


def person(n: int) -> dict[str, str]:
    ids = {"email": f"customer{n}@example.com", "identity": f"cust-{n}"}
    if n % 3 == 0:
        ids["mobile"] = f"+9198{n:08d}"
    return ids


def write_file(path: Path, rows: int, people: int, seed: int) -> None:
    """``rows`` activities of ``people`` people, in time order, as NDJSON."""
    rng = random.Random(seed)
    step = timedelta(days=365) / rows
    with path.open("wb") as out:
        for n in range(rows):
            who = rng.randrange(people)
            product = rng.choice(PRODUCTS)
            line = {
                "id": f"h-{n}",
                "name": rng.choice(NAMES),
                "occurred_at": (START + step * n).isoformat().replace("+00:00", "Z"),
                **person(who),
                "properties": {
                    "order_id": f"o-{n}",
                    "amount": round(rng.uniform(5, 500), 2),
                    "items": [{"name": product, "qty": rng.randrange(1, 4)}],
                    "utm": {"source": rng.choice(("mail", "ads", "direct"))},
                },
            }
            out.write(orjson.dumps(line) + b"\n")


def store_existing(database_url: str, account_id: str, people: int) -> None:
    """The first tenth of the people, stored before the backfill as ingest stores them."""
    store = Database.from_url(database_url, pool_size=1)
    try:
        with store.unit_of_work(write=False) as uow:
            account = uow.accounts.get(account_id)
        assert account is not None
        known = range(0, people, 10)
        for first in range(0, len(known), 2000):
            updates = [
                ProfileUpdate(
                    tuple(Identifier(k, v) for k, v in person(n).items()),
                    {"origin": "crm"},
                    dialect="netcore",
                )
                for n in known[first : first + 2000]
            ]
            with store.unit_of_work() as uow:
                store_records(uow, account, updates, now=datetime.now(UTC))
                uow.commit()
    finally:
        store.dispose()


def run_backend(backend: str, database_url: str, args: argparse.Namespace) -> Result:
    upgrade_database(database_url)
    created = create_account_at(database_url, "bench")
    account_id = created.account.id
    people = max(1, args.rows // PER_PERSON)
    store_existing(database_url, account_id, people)
    with tempfile.TemporaryDirectory(prefix="eventyard-bench-backfill-") as tmp:
        path = Path(tmp) / "history.ndjson"
        write_file(path, args.rows, people, args.seed)
        size = path.stat().st_size
        env = {
            **os.environ,
            "EVENTYARD_DATABASE_URL": database_url,
            # 10 M lines are about 2.7 GB: the operator of such a backfill
            # raises the file limit (1 GB by default) as docs/settings.md says.
            "EVENTYARD_IMPORT_MAX_BYTES": str(max(size, 1 << 30)),
        }
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.perf_counter()
        done = subprocess.run(
            [
                *(sys.executable, "-m", "eventyard", "activities", "import", str(path)),
                *("--account", account_id, "--dialect", "netcore", "--json"),
            ],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode != 0:
        raise SystemExit(f"[{backend}] the backfill failed:\n{done.stderr[-3000:]}")
    summary = orjson.loads(done.stdout)
    store = Database.from_url(database_url, pool_size=1)
    try:
        with store.engine.connect() as conn:
            stored, eligible = conn.execute(
                select(func.count(), func.count().filter(activities.c.journey_eligible)).where(
                    activities.c.account_id == account_id
                )
            ).one()
            contact_count = conn.execute(
                select(func.count()).where(contacts.c.account_id == account_id)
            ).scalar_one()
    finally:
        store.dispose()
    return Result(
        backend=backend,
        rows=args.rows,
        file_mb=round(size / 1e6, 1),
        seconds=round(seconds, 2),
        rows_per_s=round(args.rows / seconds),
        # ru_maxrss of the children is the largest any of them reached, in KiB.
        peak_rss_mb=round(max(peak, before) / 1024, 1),
        stored=summary["stored"],
        contacts_created=summary["contacts_created"],
        activities_in_database=stored,
        contacts_in_database=contact_count,
        journey_eligible=eligible,
    )


def failures(result: Result, rows: int) -> list[str]:
    people = max(1, rows // PER_PERSON)
    wrong = []
    if result.stored != rows or result.activities_in_database != rows:
        wrong.append(
            f"{result.stored} reported and {result.activities_in_database} stored of {rows}"
        )
    if result.journey_eligible:
        wrong.append(f"{result.journey_eligible} backfilled activities are journey-eligible")
    if result.contacts_in_database > people:
        wrong.append(f"{result.contacts_in_database} contacts for {people} people")
    return wrong


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="lines (default 10 M)")
    parser.add_argument("--backends", default="postgresql", help="sqlite, postgresql")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true", help="5000 lines, to check it runs")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rows = 5000
    if args.output is None:
        tmp = Path(tempfile.gettempdir()) / "eventyard-bench-backfill-smoke.json"
        args.output = tmp if args.smoke else DEFAULT_OUTPUT
    args.backends = parse_backends(parser, args.backends)
    load_before = os.getloadavg()
    results = run_on_backends(args, f"backfill of {args.rows} activities", run_backend)
    print()
    print_markdown_table(
        ("backend", "lines", "MB", "seconds", "activities/s", "peak RSS MB", "contacts created"),
        [
            (
                r.backend,
                f"{r.rows:,}",
                f"{r.file_mb:.0f}",
                f"{r.seconds:.1f}",
                f"{r.rows_per_s:,.0f}",
                f"{r.peak_rss_mb:.0f}",
                f"{r.contacts_created:,}",
            )
            for r in results
        ],
    )
    write_report("backfill", args.output, {"rows": args.rows}, results, load_before)
    failed = [r for r in results if failures(r, args.rows)]
    for r in failed:
        print(f"[{r.backend}] FAILED: {', '.join(failures(r, args.rows))}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
