"""Benchmark: single-event requests (Cordial POST /v2/contactactivities), group commit on and off.

For each backend: a fresh database, migrated; one account; a real server
(``uvicorn eventyard.app:create_app_from_env``, default settings except the
per-key rate limit, turned off because one key sends everything). A load
generator in a separate process (asyncio on uvloop, raw HTTP/1.1 keep-alive
connections, prepared request bytes) measures:

- latency at fixed arrival rates (``--rates``, default 100 and 1000 per
  second): open loop, request *i* is due at ``start + i / rate`` and its
  latency runs from that moment, so a server that falls behind is charged
  for the queue it builds (no coordinated omission); p50/p99/p99.9;
- the maximum: ``--clients`` (64) connections, each sending its next request
  when the previous one is answered, for ``--seconds``; requests/s.

Each request is one activity of a contact named by e-mail: 90 % of them one
of ``--contacts`` (2,000) known contacts, 10 % new. The modes (``--modes``:
``group`` = ``EVENTYARD_GROUP_COMMIT=true``, ``alone`` = ``false``) alternate
A/B/A/B for ``--rounds`` rounds, each on a fresh server and database, so
that drift in the machine's load touches both alike. Mode ``before`` serves
the code of another checkout (``--before-tree``, e.g. a ``git worktree`` of
the commit before a change) on the same database schema. The stored activities
are counted after each round: every 200 must be a stored row.

    .venv/bin/python bench/single_event.py                       # both backends, both modes
    .venv/bin/python bench/single_event.py --backends postgresql --rounds 2
    .venv/bin/python bench/single_event.py --smoke

See bench/README.md ("Single-event requests and group commit") for results.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

# Run as a script, Python puts bench/ on sys.path, not the repo root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.netcore_ingest import (
    BENCH_DIR,
    DEFAULT_POSTGRES_URL,
    backend_database,
    finish_args,
    write_report,
)
from tests.support import create_account_at, running_server

from eventyard.storage.database import Database
from eventyard.storage.migrate import upgrade_database
from eventyard.storage.tables import activities

PATH = "/v2/contactactivities"
DEFAULT_OUTPUT = BENCH_DIR / "results" / "single_event.json"
SMOKE = {"rates": "50", "seconds": 1.0, "clients": 4, "rounds": 1, "contacts": 20}
MODES = {"group": "true", "alone": "false"}


# --- load generator (runs in its own process) ----------------------------------


def request_bytes(host: str, auth: str, i: int, contacts: int, rng: random.Random) -> bytes:
    """One Cordial activity as raw HTTP/1.1 request bytes."""
    who = f"new-{i}-{rng.getrandbits(32)}" if rng.random() < 0.1 else str(rng.randrange(contacts))
    body = json.dumps(
        {
            "email": f"user-{who}@example.com",
            "a": rng.choice(("browse", "cart", "wishlist", "search")),
            "properties": {"url": f"/p/{rng.randrange(500)}", "n": i},
        },
        separators=(",", ":"),
    ).encode()
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Connection:
    """One keep-alive HTTP/1.1 connection, one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status


async def connect(host: str, port: int) -> Connection:
    reader, writer = await asyncio.open_connection(host, port)
    return Connection(reader, writer)


async def open_loop(
    host: str, port: int, requests: list[bytes], rate: float, max_connections: int = 256
) -> tuple[list[float], dict[int, int]]:
    """Send ``requests`` at ``rate`` per second; latency from each one's due time, in ms.

    At most ``max_connections`` are open; a request due while all are busy
    waits for one, and that wait counts in its latency. Status 0 is a
    request whose connection failed.
    """
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    opened = 0
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start = time.perf_counter() + 0.05

    async def one(i: int, raw: bytes) -> None:
        nonlocal opened
        due = start + i / rate
        if idle.empty() and opened < max_connections:
            opened += 1
            conn = await connect(host, port)
        else:
            conn = await idle.get()
        try:
            status = await conn.send(raw)
        except (OSError, asyncio.IncompleteReadError):
            status = 0
            conn.writer.close()
            conn = await connect(host, port)
        latencies.append((time.perf_counter() - due) * 1000)
        statuses[status] = statuses.get(status, 0) + 1
        idle.put_nowait(conn)

    tasks = []
    for i, raw in enumerate(requests):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, raw)))
    await asyncio.gather(*tasks)
    while not idle.empty():
        idle.get_nowait().writer.close()
    return latencies, statuses


async def closed_loop(
    host: str, port: int, requests: list[bytes], clients: int, seconds: float
) -> tuple[int, float, dict[int, int], list[float]]:
    """``clients`` connections sending back to back for ``seconds``: answered, elapsed, statuses."""
    conns = [await connect(host, port) for _ in range(clients)]
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    position = 0
    deadline = time.perf_counter() + seconds

    async def client(conn: Connection) -> None:
        nonlocal position
        while time.perf_counter() < deadline and position < len(requests):
            raw = requests[position]
            position += 1
            sent = time.perf_counter()
            try:
                status = await conn.send(raw)
            except (OSError, asyncio.IncompleteReadError):
                status = 0
                conn.writer.close()
                conn = await connect(host, port)
            latencies.append((time.perf_counter() - sent) * 1000)
            statuses[status] = statuses.get(status, 0) + 1

    begin = time.perf_counter()
    await asyncio.gather(*(client(c) for c in conns))
    elapsed = time.perf_counter() - begin
    for conn in conns:
        conn.writer.close()
    return sum(statuses.values()), elapsed, statuses, latencies


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def generate(spec: dict[str, Any]) -> dict[str, Any]:
    """The load of one round, as the load process runs it (``spec`` from the parent)."""
    import uvloop

    host, port = spec["host"], spec["port"]
    rng = random.Random(spec["seed"])
    auth = base64.b64encode(f"{spec['key']}:".encode()).decode()
    counter = iter(range(10**9))

    def batch(n: int) -> list[bytes]:
        return [request_bytes(host, auth, next(counter), spec["contacts"], rng) for _ in range(n)]

    result: dict[str, Any] = {"rates": {}}

    async def main() -> None:
        # Warm up: contacts exist, connections pooled, caches filled.
        await closed_loop(host, port, batch(spec["contacts"]), 8, 60.0)
        for rate in spec["rates"]:
            n = max(50, int(rate * spec["seconds"]))
            latencies, statuses = await open_loop(host, port, batch(n), rate)
            result["rates"][str(rate)] = {
                "requests": n,
                "p50_ms": round(percentile(latencies, 0.50), 2),
                "p99_ms": round(percentile(latencies, 0.99), 2),
                "p999_ms": round(percentile(latencies, 0.999), 2),
                "max_ms": round(max(latencies), 2),
                "statuses": statuses,
            }
        n = int(20_000 * spec["seconds"])
        answered, elapsed, statuses, latencies = await closed_loop(
            host, port, batch(n), spec["clients"], spec["seconds"]
        )
        result["max"] = {
            "requests": answered,
            "seconds": round(elapsed, 2),
            "requests_per_s": round(answered / elapsed, 1),
            "p50_ms": round(percentile(latencies, 0.50), 2),
            "p99_ms": round(percentile(latencies, 0.99), 2),
            "statuses": statuses,
        }
        result["sent"] = next(counter)

    uvloop.run(main())
    return result


# --- the parent: databases, servers, rounds ----------------------------------------


@dataclass
class Round:
    backend: str
    mode: str
    round: int
    rates: dict[str, dict[str, Any]]
    max: dict[str, Any]
    acknowledged: int
    stored: int
    groups: dict[str, float]


def group_metrics(base_url: str) -> dict[str, float]:
    """Count and sum of ``eventyard_ingest_group_commit_requests`` from ``/metrics``."""
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    found: dict[str, float] = {}
    for line in text.splitlines():
        for name in ("count", "sum"):
            if line.startswith(f"eventyard_ingest_group_commit_requests_{name} "):
                found[name] = float(line.split()[1])
    return found


def run_round(backend: str, mode: str, number: int, args: argparse.Namespace) -> Round:
    with backend_database(backend, args.postgres_url) as url:
        upgrade_database(url)
        account = create_account_at(url, f"bench-single-{mode}")
        with tempfile.TemporaryDirectory(prefix="eventyard-bench-log-") as tmp:
            env = {"EVENTYARD_RATE_LIMIT_PER_SECOND": "0"}
            if mode == "before":
                # The server runs the code of another checkout (its own defaults).
                env["PYTHONPATH"] = str(Path(args.before_tree).resolve() / "src")
            else:
                env["EVENTYARD_GROUP_COMMIT"] = MODES[mode]
            with running_server(
                url,
                Path(tmp) / "server.log",
                env,
                workers=args.server_workers,
                ready_path="/readyz",
                body_timeout_seconds=None,
            ) as server:
                host, port = server.base_url.removeprefix("http://").split(":")
                spec = {
                    "host": host,
                    "port": int(port),
                    "key": account.cordial_api_key,
                    "rates": [float(r) for r in args.rates.split(",")],
                    "seconds": args.seconds,
                    "clients": args.clients,
                    "contacts": args.contacts,
                    "seed": number,
                }
                done = subprocess.run(
                    [sys.executable, __file__, "--generate", json.dumps(spec)],
                    capture_output=True,
                    check=False,
                )
                if done.returncode:
                    raise SystemExit(f"the load generator failed:\n{done.stderr.decode()}")
                load = json.loads(done.stdout)
                groups = group_metrics(server.base_url)
        store = Database.from_url(url, pool_size=1)
        try:
            with store.engine.connect() as conn:
                stored = conn.execute(select(func.count()).select_from(activities)).scalar_one()
        finally:
            store.dispose()
    acknowledged = sum(r["statuses"].get("200", 0) for r in load["rates"].values())
    acknowledged += load["max"]["statuses"].get("200", 0)
    return Round(
        backend, mode, number, load["rates"], load["max"], acknowledged, int(stored), groups
    )


def print_table(rounds: list[Round], rates: list[str]) -> None:
    head = "| backend | mode | round | " + " | ".join(f"{r}/s p50 / p99 / p99.9 ms" for r in rates)
    print(head + " | max req/s | max p99 ms | mean group |")
    print("|" + "---|" * (head.count("|") + 3))
    for r in rounds:
        cells = [
            f"{r.rates[k]['p50_ms']} / {r.rates[k]['p99_ms']} / {r.rates[k]['p999_ms']}"
            for k in rates
        ]
        mean = r.groups.get("sum", 0) / r.groups["count"] if r.groups.get("count") else 0
        print(
            f"| {r.backend} | {r.mode} | {r.round} | "
            + " | ".join(cells)
            + f" | {r.max['requests_per_s']:.0f} | {r.max['p99_ms']} | {mean:.1f} |"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--modes", default="group,alone")
    parser.add_argument(
        "--before-tree",
        help="a checkout of an earlier commit (git worktree add); mode 'before' serves its code",
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rates", default="100,1000", help="arrival rates, per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="per rate and for the max")
    parser.add_argument("--clients", type=int, default=64, help="connections for the max")
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--server-workers", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (a test runs this)")
    parser.add_argument("--output", type=Path, default=None)
    return finish_args(parser, argv, SMOKE, DEFAULT_OUTPUT, "single_event_smoke.json")


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) == 3 and sys.argv[1] == "--generate":
        print(json.dumps(generate(json.loads(sys.argv[2]))))
        return 0
    args = parse_args(argv)
    load_before = os.getloadavg()
    modes = args.modes.split(",")
    rounds: list[Round] = []
    for backend in args.backends:
        for number in range(1, args.rounds + 1):
            for mode in modes if number % 2 else reversed(modes):
                print(f"[{backend}] round {number}, {mode} ...", flush=True)
                rounds.append(run_round(backend, mode, number, args))
    lost = [r for r in rounds if r.stored < r.acknowledged]
    print()
    print_table(rounds, [str(float(r)) for r in args.rates.split(",")])
    parameters = {
        "rates": args.rates,
        "seconds": args.seconds,
        "clients": args.clients,
        "contacts": args.contacts,
        "server_workers": args.server_workers,
        "rounds": args.rounds,
        "modes": modes,
    }
    write_report("single_event", args.output, parameters, rounds, load_before)
    if lost:
        print(f"acknowledged but not stored: {[(r.backend, r.mode, r.round) for r in lost]}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
