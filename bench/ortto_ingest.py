"""Benchmark: Ortto ``POST /v1/activities/create``, sync and async, on SQLite and PostgreSQL.

Same method as ``bench/netcore_ingest.py`` (and its helpers): per backend an
empty database, migrations, ``uvicorn eventyard.app:create_app_from_env`` in a
subprocess with default settings (so its in-process job worker runs queued
work). Two accounts, each with the activity definition ``act:cm:purchase``
(``str:cm:product-name``, ``int:cm:quantity``, ``int::v``), take the same
workload: one untimed warm-up batch, then ``--batches`` batches of
``--activities`` (at most 100) activities from ``--clients`` concurrent httpx
clients. Each activity names its person by ``fields`` (``str::email``,
``str::first``) and ``merge_by: ["str::email"]``; each batch names
``--contacts`` distinct people, ``--new-fraction`` of them new, and no person
gets more than 49 activities: Ortto allows 50 per activity per contact per 24 h.

- **sync** (first account, ``"async": false``): activities/s and batch
  latency; every entry of every answer must be ``ingested``.
- **async** (second account, ``"async": true``): acceptance latency and
  accepted activities/s; then, from the jobs' ``finished_at``
  (``GET /api/v1/jobs/{id}``, polled until every job has ended), the
  end-to-end activities/s from the first request until the last job was
  completed, and each batch's latency from acceptance to stored.

In both modes the account must hold exactly every acknowledged activity. A
429 or 503 is retried after its ``Retry-After`` (up to 5 attempts) and
counted. It prints a table and the ratios, writes
``bench/results/ortto_ingest.json`` by default, and exits non-zero on any
failure.

    .venv/bin/python bench/ortto_ingest.py                  # both backends, defaults
    .venv/bin/python bench/ortto_ingest.py --backends sqlite --batches 50
    .venv/bin/python bench/ortto_ingest.py --smoke          # a few tiny batches

See bench/README.md for the recorded results.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from math import nan
from pathlib import Path
from typing import Any

import httpx
import orjson

from eventyard.core.model import NewAccount
from eventyard.dialects.ortto.translate import DAILY_LIMIT, MAX_ACTIVITIES
from eventyard.storage.migrate import upgrade_database

# Run as a script, Python puts bench/ on sys.path, not the repo root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.netcore_ingest import (
    BENCH_DIR,
    BenchServer,
    Load,
    add_run_arguments,
    bench_server,
    count_activities,
    finish_args,
    percentile,
    print_markdown_table,
    run_on_backends,
    send_bodies,
    write_report,
)
from tests.support import admin, create_account_at

DEFAULT_OUTPUT = BENCH_DIR / "results" / "ortto_ingest.json"
CREATE_PATH = "/v1/activities/create"
ACTIVITY_ID = "act:cm:purchase"
DEFINITION = {
    "activity_id": ACTIVITY_ID,
    "name": "Purchase",
    "fields": {"str:cm:product-name": "str", "int:cm:quantity": "int", "int::v": "int"},
}
PRODUCTS = ("Widget Pro", "Premium Plan", "Starter Kit", "Gift Card", "Refill Pack")
FIRST_NAMES = ("Ann", "Bea", "Cal", "Dee", "Eve", "Fay")
#: The most activities the workload gives one person: under Ortto's daily limit
#: ("Max activity events per activity per contact per 24 hours | 50").
PER_PERSON_CAP = DAILY_LIMIT - 1
#: 429 (the per-key rate limit) and 503 (database busy) both say when to come back.
RETRY_STATUSES = (429, 503)
#: How long the queued batches may take to be stored once all are accepted.
JOB_TIMEOUT_SECONDS = 600
JOB_POLL_SECONDS = 0.1
SMOKE = {"batches": 3, "activities": 50, "contacts": 30, "clients": 2}


@dataclass(frozen=True)
class SyncRun:
    """``"async": false``: each answer says every activity was stored."""

    seconds: float
    activities_per_s: float
    p50_ms: float
    p99_ms: float
    retried: int
    failed_requests: int
    #: Entries answered ``person_status: created`` (one per new person, warm-up included).
    created_persons: int
    stored_activities: int
    expected_activities: int
    #: Every measured batch's latency (retries included), in the order the answers arrived.
    latencies_ms: list[float]


@dataclass(frozen=True)
class AsyncRun:
    """``"async": true``: accepted at once, stored by the server's job worker."""

    accept_seconds: float
    accepted_per_s: float
    accept_p50_ms: float
    accept_p99_ms: float
    #: From the first request to the last job's ``finished_at``.
    end_to_end_seconds: float
    end_to_end_per_s: float
    #: Activities already stored when the last batch was accepted (the worker runs
    #: meanwhile), and the rate at which the worker stored the rest afterwards.
    stored_at_accept_end: int
    drain_per_s: float
    #: Per batch, from its job's ``created_at`` (acceptance) to its ``finished_at`` (stored).
    stored_p50_ms: float
    stored_p99_ms: float
    #: Per job, from ``started_at`` to ``finished_at``: the worker's time for one batch.
    job_run_p50_ms: float
    job_run_p99_ms: float
    retried: int
    failed_requests: int
    failed_jobs: int
    #: Summed from the jobs' results (warm-up included).
    created_persons: int
    stored_activities: int
    expected_activities: int
    accept_latencies_ms: list[float]
    stored_latencies_ms: list[float]


@dataclass(frozen=True)
class Result:
    backend: str
    batches: int
    activities: int
    clients: int
    #: Distinct people the workload names, warm-up included (the same in both modes).
    persons: int
    sync: SyncRun
    queued: AsyncRun
    #: Async accepted activities/s and end-to-end activities/s, each over sync activities/s.
    accept_vs_sync: float
    end_to_end_vs_sync: float

    @property
    def failed(self) -> bool:
        s, q = self.sync, self.queued
        return bool(
            s.failed_requests
            or s.stored_activities != s.expected_activities
            or s.created_persons != self.persons
            or q.failed_requests
            or q.failed_jobs
            or q.stored_activities != q.expected_activities
            or q.created_persons != self.persons
        )


# --- workload -----------------------------------------------------------------


def make_activity(rng: random.Random, person: int) -> dict[str, Any]:
    """One purchase by ``person``, with typed attributes and the person's fields."""
    quantity = rng.randrange(1, 5)
    return {
        "activity_id": ACTIVITY_ID,
        "attributes": {
            "str:cm:product-name": rng.choice(PRODUCTS),
            "int:cm:quantity": quantity,
            # "int::v | Conversion value (currency x 1000)"
            "int::v": quantity * rng.randrange(1_000, 100_000),
        },
        "fields": {
            "str::email": f"buyer{person}@example.com",
            "str::first": FIRST_NAMES[person % len(FIRST_NAMES)],
        },
        "merge_by": ["str::email"],
    }


@dataclass(frozen=True)
class Workload:
    """The activities of the warm-up and of the measured batches, by person."""

    warmup: list[int]
    batches: list[list[int]]

    @property
    def persons(self) -> int:
        return len({p for batch in [self.warmup, *self.batches] for p in batch})


def plan_workload(rng: random.Random, args: argparse.Namespace) -> Workload:
    """Who each activity is for: a warm-up batch of new people, then the measured batches.

    Each batch names ``args.contacts`` distinct people and shares its
    activities among them as evenly as it can. ``args.new_fraction`` of them
    are new, the rest drawn from batches at least ``args.clients`` places
    earlier (normally acknowledged by then) among those who can take another
    batch's share without reaching Ortto's daily limit.
    """
    share = -(-args.activities // args.contacts)  # the most activities one person gets per batch
    used: Counter[int] = Counter()

    def batch_of(people: list[int]) -> list[int]:
        spread = [people[i % len(people)] for i in range(args.activities)]
        rng.shuffle(spread)
        used.update(spread)
        return spread

    warmup = batch_of(list(range(args.contacts)))
    settled = list(range(args.contacts))
    created: list[list[int]] = []
    next_person = args.contacts
    new_per_batch = round(args.contacts * args.new_fraction)
    batches = []
    for i in range(args.batches):
        if i - args.clients >= 0:
            settled.extend(created[i - args.clients])
        settled = [p for p in settled if used[p] + share <= PER_PERSON_CAP]
        repeats = args.contacts - new_per_batch
        if len(settled) < repeats:
            raise SystemExit(
                f"batch {i}: only {len(settled)} earlier people can take {share} more "
                f"activities under the daily limit, {repeats} needed; "
                "raise --new-fraction or lower --batches"
            )
        new = list(range(next_person, next_person + new_per_batch))
        next_person += new_per_batch
        batches.append(batch_of(new + rng.sample(settled, repeats)))
        created.append(new)
    return Workload(warmup, batches)


def request_bodies(
    workload: Workload, args: argparse.Namespace, *, run_async: bool
) -> tuple[bytes, list[bytes]]:
    """The warm-up body and the measured ones; the same activities in both modes."""
    rng = random.Random(args.seed)

    def body(people: list[int]) -> bytes:
        activities = [make_activity(rng, p) for p in people]
        return orjson.dumps({"activities": activities, "async": run_async})

    return body(workload.warmup), [body(people) for people in workload.batches]


# --- load ---------------------------------------------------------------------------


def send_batches(
    base_url: str, account: NewAccount, bodies: list[bytes], args: argparse.Namespace, status: str
) -> tuple[Load, list[httpx.Response]]:
    """Send ``bodies`` from ``args.clients`` clients; each of their activities should
    answer ``status``. The load and the answers that did."""
    answers: list[httpx.Response] = []

    def check(_: int, response: httpx.Response) -> str | None:
        problem = answer_problem(response, args.activities, status)
        if problem is None:
            answers.append(response)
        return problem

    headers = {"X-Api-Key": account.ortto_api_key, "Content-Type": "application/json"}
    load = asyncio.run(
        send_bodies(
            base_url,
            CREATE_PATH,
            headers,
            bodies,
            args.clients,
            check,
            retry_statuses=RETRY_STATUSES,
        )
    )
    return load, answers


def answer_problem(response: httpx.Response, size: int, status: str) -> str | None:
    """What is wrong with an answer to a batch of ``size`` that should all be ``status``."""
    if response.status_code != 200:
        return f"{response.status_code} {response.text[:300]}"
    entries = response.json().get("activities", [])
    if len(entries) != size:
        return f"{len(entries)} entries for {size} activities"
    for i, entry in enumerate(entries):
        if entry.get("status") != status or entry.get("activity_id") != ACTIVITY_ID:
            return f"activities[{i}] is not {status}: {entry}"
    if status == "queued" and "x-eventyard-job-id" not in response.headers:
        return "no X-Eventyard-Job-Id header on a queued answer"
    return None


def created_persons(answers: list[httpx.Response]) -> int:
    """Entries of sync answers that say their person was created."""
    entries = [e for r in answers for e in r.json()["activities"]]
    return sum(1 for e in entries if e["person_status"] == "created")


def job_ids(answers: list[httpx.Response]) -> list[str]:
    return [r.headers["x-eventyard-job-id"] for r in answers]


def wait_for_jobs(
    base_url: str, account: NewAccount, job_ids: list[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Every job once it has ended (``completed`` or ``failed``), and what went wrong.

    Jobs of one account run in order, so this asks about the oldest unfinished
    one until it has ended: about one request per poll while the worker works.
    """
    ended: list[dict[str, Any]] = []
    deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
    with httpx.Client(base_url=base_url, headers=admin(account), timeout=30) as http:
        for job_id in job_ids:
            while True:
                job = http.get(f"/api/v1/jobs/{job_id}").raise_for_status().json()
                if job["status"] in ("completed", "failed"):
                    ended.append(job)
                    break
                if time.monotonic() > deadline:
                    return ended, [
                        f"job {job_id} still {job['status']} after {JOB_TIMEOUT_SECONDS} s"
                    ]
                time.sleep(JOB_POLL_SECONDS)
    problems = []
    for job in ended:
        result = job["result"] or {}
        if job["status"] != "completed" or result.get("rejected"):
            problems.append(
                f"job {job['id']} {job['status']}: {job['error'] or result['rejected'][:3]}"
            )
    return ended, problems


def moment(job: dict[str, Any], name: str) -> float:
    """A job's timestamp ``name`` as seconds since the epoch."""
    return datetime.fromisoformat(job[name]).timestamp()


# --- runs ---------------------------------------------------------------------------


def create_definition(base_url: str, account: NewAccount) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        r = http.post("/api/v1/activity-definitions", json=DEFINITION, headers=admin(account))
        if r.status_code != 201:
            raise SystemExit(f"could not create the activity definition: {r.status_code} {r.text}")


def run_sync(
    server: BenchServer,
    database_url: str,
    account: NewAccount,
    workload: Workload,
    args: argparse.Namespace,
) -> SyncRun:
    warmup, bodies = request_bodies(workload, args, run_async=False)
    # Not timed: creates the first people and warms the server up.
    warm, warm_answers = send_batches(server.base_url, account, [warmup], args, "ingested")
    load, answers = send_batches(server.base_url, account, bodies, args, "ingested")
    failures = warm.failures + load.failures
    server.failures += [f"sync: {f}" for f in failures]
    activities = len(bodies) * args.activities
    return SyncRun(
        seconds=round(load.seconds, 3),
        activities_per_s=round(activities / load.seconds, 1),
        p50_ms=ms(percentile(load.latencies, 50)),
        p99_ms=ms(percentile(load.latencies, 99)),
        retried=warm.retries + load.retries,
        failed_requests=len(failures),
        created_persons=created_persons(warm_answers + answers),
        stored_activities=count_activities(database_url, account.account.id),
        expected_activities=activities + args.activities,
        latencies_ms=[ms(x) for x in load.latencies],
    )


def run_async(
    server: BenchServer,
    database_url: str,
    account: NewAccount,
    workload: Workload,
    args: argparse.Namespace,
) -> AsyncRun:
    warmup, bodies = request_bodies(workload, args, run_async=True)
    # Not timed: creates the first people and runs the worker's path once.
    warm, warm_answers = send_batches(server.base_url, account, [warmup], args, "queued")
    warm_ended, warm_problems = wait_for_jobs(server.base_url, account, job_ids(warm_answers))
    load, answers = send_batches(server.base_url, account, bodies, args, "queued")
    ended, problems = wait_for_jobs(server.base_url, account, job_ids(answers))
    failures = warm.failures + load.failures
    server.failures += [f"async: {f}" for f in failures + warm_problems + problems]
    activities = len(bodies) * args.activities
    finished = [j for j in ended if j["finished_at"] is not None]
    end_to_end = (
        max(moment(j, "finished_at") for j in finished) - load.started_at if finished else nan
    )
    accept_end = load.started_at + load.seconds
    early = sum(1 for j in finished if moment(j, "finished_at") <= accept_end) * args.activities
    stored = [moment(j, "finished_at") - moment(j, "created_at") for j in finished]
    run = [moment(j, "finished_at") - moment(j, "started_at") for j in finished]
    return AsyncRun(
        accept_seconds=round(load.seconds, 3),
        accepted_per_s=round(activities / load.seconds, 1),
        accept_p50_ms=ms(percentile(load.latencies, 50)),
        accept_p99_ms=ms(percentile(load.latencies, 99)),
        end_to_end_seconds=round(end_to_end, 3),
        end_to_end_per_s=round(activities / end_to_end, 1),
        stored_at_accept_end=early,
        drain_per_s=round((activities - early) / max(end_to_end - load.seconds, 1e-3), 1),
        stored_p50_ms=ms(percentile(stored, 50)) if stored else nan,
        stored_p99_ms=ms(percentile(stored, 99)) if stored else nan,
        job_run_p50_ms=ms(percentile(run, 50)) if run else nan,
        job_run_p99_ms=ms(percentile(run, 99)) if run else nan,
        retried=warm.retries + load.retries,
        failed_requests=len(failures),
        failed_jobs=len(warm_problems) + len(problems),
        created_persons=sum(
            (j["result"] or {}).get("created_contacts", 0) for j in warm_ended + ended
        ),
        stored_activities=count_activities(database_url, account.account.id),
        expected_activities=activities + args.activities,
        accept_latencies_ms=[ms(x) for x in load.latencies],
        stored_latencies_ms=[ms(x) for x in stored],
    )


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def run_backend(backend: str, database_url: str, args: argparse.Namespace) -> Result:
    upgrade_database(database_url)
    sync_account = create_account_at(database_url, f"bench-{backend}-sync")
    async_account = create_account_at(database_url, f"bench-{backend}-async")
    workload = plan_workload(random.Random(args.seed), args)
    with bench_server(backend, database_url, args) as server:
        for account in (sync_account, async_account):
            create_definition(server.base_url, account)
        sync = run_sync(server, database_url, sync_account, workload, args)
        queued = run_async(server, database_url, async_account, workload, args)
    return Result(
        backend=backend,
        batches=args.batches,
        activities=args.batches * args.activities,
        clients=args.clients,
        persons=workload.persons,
        sync=sync,
        queued=queued,
        accept_vs_sync=round(queued.accepted_per_s / sync.activities_per_s, 2),
        end_to_end_vs_sync=round(queued.end_to_end_per_s / sync.activities_per_s, 2),
    )


# --- report -------------------------------------------------------------------------


def print_table(results: list[Result]) -> None:
    header: tuple[str, ...] = ("backend", "mode", "batches", "activities", "seconds")
    header += ("activities/s", "p50 ms", "p99 ms", "retried")
    rows = []
    for r in results:
        s, q = r.sync, r.queued
        rows += [
            table_row(r, "sync", s.seconds, s.activities_per_s, s.p50_ms, s.p99_ms, s.retried),
            table_row(
                r,
                "async accepted",
                q.accept_seconds,
                q.accepted_per_s,
                q.accept_p50_ms,
                q.accept_p99_ms,
                q.retried,
            ),
            table_row(
                r,
                "async stored",
                q.end_to_end_seconds,
                q.end_to_end_per_s,
                q.stored_p50_ms,
                q.stored_p99_ms,
                None,
            ),
        ]
    print_markdown_table(header, rows, labels=2)
    print("\nasync stored: seconds and activities/s from the first request to the last job's end;")
    print("p50/p99 from each batch's acceptance to its job's end.")
    for r in results:
        print(
            f"[{r.backend}] async accepted / sync: {r.accept_vs_sync:.2f}; "
            f"async stored / sync: {r.end_to_end_vs_sync:.2f}; worker per batch "
            f"p50 {r.queued.job_run_p50_ms:.0f} ms, p99 {r.queued.job_run_p99_ms:.0f} ms; "
            f"{r.queued.stored_at_accept_end} stored when the last batch was accepted, "
            f"the rest at {r.queued.drain_per_s:,.0f} activities/s"
        )
    by_backend = {r.backend: r for r in results}
    if {"sqlite", "postgresql"} <= set(by_backend):
        lite, pg = by_backend["sqlite"], by_backend["postgresql"]
        print(
            "postgresql / sqlite: "
            f"sync {pg.sync.activities_per_s / lite.sync.activities_per_s:.2f}, "
            f"async accepted {pg.queued.accepted_per_s / lite.queued.accepted_per_s:.2f}, "
            f"async stored {pg.queued.end_to_end_per_s / lite.queued.end_to_end_per_s:.2f}"
        )


def table_row(
    r: Result, mode: str, seconds: float, per_s: float, p50: float, p99: float, retried: int | None
) -> tuple[str, ...]:
    return (
        r.backend,
        mode,
        str(r.batches),
        str(r.activities),
        f"{seconds:.2f}",
        f"{per_s:,.0f}",
        f"{p50:.0f}",
        f"{p99:.0f}",
        "" if retried is None else str(retried),
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--activities",
        type=int,
        default=MAX_ACTIVITIES,
        help=f"activities per batch (default and most {MAX_ACTIVITIES})",
    )
    parser.add_argument(
        "--contacts", type=int, default=60, help="distinct people per batch (default 60)"
    )
    parser.add_argument(
        "--new-fraction",
        type=float,
        default=0.1,
        help="share of each batch's people never seen before (default 0.1)",
    )
    # Batches of 100 are small: 200 of them take seconds, like the other benches' 30.
    add_run_arguments(parser, DEFAULT_OUTPUT, batches=200)
    args = finish_args(parser, argv, SMOKE, DEFAULT_OUTPUT, "eventyard-bench-ortto-smoke.json")
    if not 1 <= args.activities <= MAX_ACTIVITIES:
        parser.error(f"--activities must be 1 to {MAX_ACTIVITIES} (the Ortto limit)")
    if not 1 <= args.contacts <= args.activities:
        parser.error("--contacts must be between 1 and --activities")
    if not 0 <= args.new_fraction <= 1:
        parser.error("--new-fraction must be between 0 and 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()
    results = run_on_backends(
        args,
        f"{args.batches} batches of {args.activities} activities, sync then async",
        run_backend,
    )
    print()
    print_table(results)
    parameters = {
        "batches": args.batches,
        "activities_per_batch": args.activities,
        "contacts_per_batch": args.contacts,
        "new_fraction": args.new_fraction,
        "clients": args.clients,
        "server_workers": args.server_workers,
        "seed": args.seed,
        "smoke": args.smoke,
    }
    write_report("ortto_ingest", args.output, parameters, results, load_before)
    failed = False
    for r in results:
        if r.failed:
            s, q = r.sync, r.queued
            print(
                f"[{r.backend}] FAILED: sync {s.failed_requests} failed requests, "
                f"{s.stored_activities}/{s.expected_activities} activities stored, "
                f"{s.created_persons}/{r.persons} people created; async "
                f"{q.failed_requests} failed requests, {q.failed_jobs} failed jobs, "
                f"{q.stored_activities}/{q.expected_activities} activities stored, "
                f"{q.created_persons}/{r.persons} people created"
            )
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
