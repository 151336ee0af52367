"""WAL and disk per stored activity on PostgreSQL, per dialect: the figures a capacity plan needs.

    .venv/bin/python bench/wal.py                      # 20,000 events per batch dialect
    .venv/bin/python bench/wal.py --events 2000 --dialects netcore,segment --smoke

A PostgreSQL cluster of the run's own (``initdb`` into a temporary directory,
default settings, so no other database's writes are in its WAL), one
eventyard server with the production settings, and the batch traffic of
``bench/traffic.py`` (about 600 people per 1000 events, 10 % of them new).
For each dialect on a fresh account: a ``CHECKPOINT``, then
``pg_current_wal_lsn()`` before and after the ingest (its warm-up included);
WAL bytes per stored activity is the difference over the account's stored
activities (every acknowledged one is looked up: none missing, none
doubled). The first write of a page after a checkpoint logs the whole page
(``full_page_writes``), so a checkpoint at the start of each stretch gives
the upper figure a busy server with checkpoints every few minutes sees. At
the end, the bytes on disk of the activities partitions (heap, TOAST and
indexes), of the contacts and identifiers, of the dedup message ids and of
the whole database, per stored activity.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.run import BENCH_ENV, drive_ingest, tree_cpu_seconds
from bench.traffic import TRAFFIC, count_missing
from tests.reliability.private_postgres import private_postgres
from tests.support import create_account_at, running_server

from eventyard.storage.engine import normalize_database_url
from eventyard.storage.migrate import upgrade_database

RESULTS = Path(__file__).parent / "results"
#: Batch dialects (Cordial takes one activity a request: its WAL is its commits').
DIALECTS = ("netcore", "clevertap", "segment", "ortto", "mixpanel", "customerio", "amplitude")
TABLE_GROUPS = {
    "activities (partitions, TOAST, indexes)": (
        "SELECT coalesce(sum(pg_total_relation_size(relid)), 0) "
        "FROM pg_partition_tree('activities') WHERE isleaf"
    ),
    "contacts and their identifiers": (
        "SELECT pg_total_relation_size('contacts') + pg_total_relation_size('contact_identifiers')"
    ),
    "message ids (dedup)": "SELECT pg_total_relation_size('message_ids')",
    "the whole database": "SELECT pg_database_size(current_database())",
}


def scalar(url: str, query: str, **params: str) -> Any:
    """The one value ``query`` returns (None for a statement that returns no rows)."""
    engine = create_engine(normalize_database_url(url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            result = conn.execute(text(query), params)
            return result.scalar() if result.returns_rows else None
    finally:
        engine.dispose()


def measure(events: int, clients: int, dialects: list[str], folder: Path) -> dict[str, Any]:
    with private_postgres() as cluster:
        url = cluster.url
        upgrade_database(url)
        per_dialect: dict[str, dict[str, Any]] = {}
        with running_server(
            url, folder / "server.log", BENCH_ENV, body_timeout_seconds=None
        ) as server:
            pid = server.process.pid
            for name in dialects:
                traffic = TRAFFIC[name]
                account = create_account_at(url, f"wal-{name}")
                with httpx.Client(base_url=server.base_url, timeout=30) as http:
                    traffic.prepare(http, account)
                scalar(url, "CHECKPOINT")
                before = scalar(url, "SELECT pg_current_wal_lsn()::text")
                figures = asyncio.run(
                    drive_ingest(
                        server.base_url,
                        account,
                        traffic,
                        events,
                        clients,
                        lambda: tree_cpu_seconds(pid),
                    )
                )
                wal = int(
                    scalar(
                        url,
                        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), CAST(:before AS pg_lsn))",
                        before=before,
                    )
                )
                count_missing(url, account, {name: figures})
                # The warm-up's activities too: they were written in the same stretch.
                stored = int(
                    scalar(
                        url,
                        "SELECT count(*) FROM activities WHERE account_id = :account",
                        account=account.account.id,
                    )
                )
                per_dialect[name] = {
                    "events": stored,
                    "wal_bytes": wal,
                    "wal_bytes_per_activity": round(wal / stored) if stored else None,
                    "missing": figures["missing"],
                    "doubled": figures["doubled"],
                    "failed": figures["failed"],
                }
        activities = int(scalar(url, "SELECT count(*) FROM activities"))
        disk = {
            label: {
                "bytes": int(scalar(url, query)),
                "bytes_per_activity": round(int(scalar(url, query)) / activities)
                if activities
                else None,
            }
            for label, query in TABLE_GROUPS.items()
        }
    return {"dialects": per_dialect, "activities": activities, "disk": disk}


def show(result: dict[str, Any]) -> None:
    console = Console(width=120)
    table = Table(title="WAL per stored activity (a CHECKPOINT before each dialect)")
    for column in ("dialect", "activities", "WAL MB", "WAL bytes / activity", "missing"):
        table.add_column(column, justify="right")
    for name, f in result["dialects"].items():
        table.add_row(
            name,
            f"{f['events']:,}",
            f"{f['wal_bytes'] / 1e6:,.1f}",
            f"{f['wal_bytes_per_activity']:,}",
            f"{f['missing']} missing, {f['doubled']} doubled",
        )
    console.print(table)
    table = Table(title=f"On disk after {result['activities']:,} activities")
    for column in ("tables", "MB", "bytes / activity"):
        table.add_column(column, justify="right")
    for label, f in result["disk"].items():
        table.add_row(label, f"{f['bytes'] / 1e6:,.1f}", f"{f['bytes_per_activity']:,}")
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per dialect")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--dialects", default=",".join(DIALECTS))
    parser.add_argument("--smoke", action="store_true", help="2000 events per dialect")
    parser.add_argument("--output", type=Path, default=RESULTS / "wal.json")
    args = parser.parse_args(argv)
    events = 2000 if args.smoke else args.events
    dialects = [d for d in args.dialects.split(",") if d]
    with tempfile.TemporaryDirectory(prefix="eventyard-wal-") as folder:
        result = measure(events, args.clients, dialects, Path(folder))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    show(result)
    lost = sum(f["missing"] + f["doubled"] + f["failed"] for f in result["dialects"].values())
    return 1 if lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
