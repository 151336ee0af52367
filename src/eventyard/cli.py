"""The ``eventyard`` command."""

from __future__ import annotations

import os
import signal
import tempfile
import threading
from datetime import UTC, datetime
from types import FrameType
from typing import Annotated

import orjson
import typer
import uvicorn
from rich.console import Console
from rich.table import Table

from eventyard.api.jobs import job_json
from eventyard.core.errors import NotFound
from eventyard.core.model import Account, Job
from eventyard.jobs.registry import HANDLERS
from eventyard.jobs.worker import Worker, WorkerThread
from eventyard.observability import configure_logging
from eventyard.services.accounts import count_accounts, create_account, get_account, list_accounts
from eventyard.services.jobs import enqueue_job, get_job, list_jobs
from eventyard.settings import Settings
from eventyard.storage.database import Database
from eventyard.storage.migrate import upgrade_database

app = typer.Typer(help="eventyard: a self-hosted customer activity hub.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
accounts_app = typer.Typer(help="Accounts (tenants) and their credentials.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(accounts_app, name="accounts")
jobs_app = typer.Typer(
    help="Background jobs: follow them, enqueue a built-in one.", no_args_is_help=True
)
app.add_typer(jobs_app, name="jobs")
console = Console()
err_console = Console(stderr=True)


def _store(settings: Settings) -> Database:
    return Database.from_settings(settings, pool_size=1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (EVENTYARD_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (EVENTYARD_PORT).")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Server processes (EVENTYARD_WORKERS).")
    ] = None,
    run_worker: Annotated[
        bool | None,
        typer.Option(
            "--worker/--no-worker",
            help="Run a job worker in each server process (EVENTYARD_RUN_WORKER).",
        ),
    ] = None,
) -> None:
    """Apply migrations, then serve the HTTP API."""
    settings = Settings()
    configure_logging(settings.log_level)
    upgrade_database(settings.database_url)
    store = _store(settings)
    try:
        if count_accounts(store) == 0:
            err_console.print(
                "[bold]No accounts yet.[/bold] Create one with: "
                '[cyan]eventyard accounts create "My Company"[/cyan]'
            )
    finally:
        store.dispose()
    # Child worker processes read their settings from the same environment.
    os.environ["EVENTYARD_DATABASE_URL"] = settings.database_url
    if run_worker is not None:
        os.environ["EVENTYARD_RUN_WORKER"] = "true" if run_worker else "false"
    process_count = workers or settings.workers
    if process_count > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker keeps its own counters; a shared directory lets
        # /metrics report the sum over all of them.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="eventyard-metrics-")
    uvicorn.run(
        "eventyard.app:create_app_from_env",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=process_count,
        access_log=False,
        log_config=None,
        proxy_headers=False,
    )


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply the schema migrations."""
    settings = Settings()
    upgrade_database(settings.database_url, revision)
    console.print(f"Database at revision {revision}.")


@accounts_app.command("create")
def accounts_create(
    name: Annotated[str, typer.Argument(help="The account's name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Create an account and print its credentials. They are shown this once only."""
    if not name.strip():
        raise typer.BadParameter("an account needs a name", param_hint="NAME")
    settings = Settings()
    upgrade_database(settings.database_url)
    store = _store(settings)
    try:
        created = create_account(store, name)
    finally:
        store.dispose()
    values = {
        "account_id": created.account.id,
        "admin_token": created.admin_token,
        "netcore_api_key": created.netcore_api_key,
        "cordial_api_key": created.cordial_api_key,
        "ortto_api_key": created.ortto_api_key,
        "clevertap_account_id": created.clevertap_account_id,
        "clevertap_passcode": created.clevertap_passcode,
    }
    if as_json:
        typer.echo(orjson.dumps(values).decode())
        return
    table = Table(title=f"Account {created.account.name!r}", show_header=False)
    for key, value in values.items():
        table.add_row(key, value)
    console.print(table)
    console.print("[yellow]Store these now: secrets are kept only as hashes.[/yellow]")


@accounts_app.command("list")
def accounts_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """List accounts (ids and names; never credentials)."""
    settings = Settings()
    upgrade_database(settings.database_url)
    store = _store(settings)
    try:
        accounts = list_accounts(store)
    finally:
        store.dispose()
    if as_json:
        for a in accounts:
            typer.echo(
                orjson.dumps(
                    {"account_id": a.id, "name": a.name, "created_at": a.created_at.isoformat()}
                ).decode()
            )
        return
    if not console.is_terminal:
        # Piped into another program: one tab-separated line per account,
        # never wrapped or cut to a terminal width.
        for a in accounts:
            typer.echo(f"{a.id}\t{a.name}\t{a.created_at.isoformat()}")
        return
    table = Table("account_id", "name", "created_at")
    for a in accounts:
        table.add_row(a.id, a.name, a.created_at.isoformat())
    console.print(table)


@app.command()
def worker(
    once: Annotated[
        bool, typer.Option("--once", help="Run at most one due job, then exit.")
    ] = False,
    poll: Annotated[
        float | None,
        typer.Option(
            min=0.01, help="Seconds between looks for due jobs (EVENTYARD_WORKER_POLL_SECONDS)."
        ),
    ] = None,
) -> None:
    """Apply migrations, then run background jobs until SIGTERM or Ctrl-C.

    On the first signal the job in hand is finished, then the worker exits
    with status 0; a second signal stops it at once.
    """
    settings = Settings()
    if poll is not None:
        settings = settings.model_copy(update={"worker_poll_seconds": poll})
    configure_logging(settings.log_level)
    upgrade_database(settings.database_url)
    # One connection for the jobs, one for the heartbeat that runs beside them.
    store = Database.from_settings(settings, pool_size=2)
    try:
        job_worker = Worker(store, settings, HANDLERS)
        if once:
            job_worker.run_once()
        else:
            _run_until_signalled(job_worker)
    finally:
        store.dispose()


def _run_until_signalled(job_worker: Worker) -> None:
    """Run ``job_worker`` on a thread until SIGTERM or SIGINT, then stop it gracefully."""
    signalled = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        signal.signal(signum, signal.SIG_DFL)  # a second one stops at once
        signalled.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    thread = WorkerThread(job_worker)
    thread.start()
    while thread.is_alive() and not signalled.wait(1):
        pass
    thread.stop()


def _store_at_head() -> Database:
    settings = Settings()
    upgrade_database(settings.database_url)
    return _store(settings)


def _account_option(store: Database, account_id: str | None) -> Account | None:
    if account_id is None:
        return None
    try:
        return get_account(store, account_id)
    except NotFound:
        raise typer.BadParameter(f"no account {account_id!r}", param_hint="--account") from None


def _job_record(job: Job) -> dict[str, object]:
    """A job as the API shows it, plus what only operators see."""
    return {
        **job_json(job),
        "account_id": job.account_id,
        "payload": job.payload,
        "run_after": job.run_after.isoformat(),
        "lease_owner": job.lease_owner,
    }


@jobs_app.command("list")
def jobs_list(
    account: Annotated[
        str | None, typer.Option(help="Only this account's jobs (default: every account's).")
    ] = None,
    kind: Annotated[str | None, typer.Option(help="Only jobs of this kind.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """List jobs, newest first: what they do, their status and attempts."""
    store = _store_at_head()
    try:
        found = list_jobs(store, _account_option(store, account), kind=kind, limit=limit)
    finally:
        store.dispose()
    if as_json:
        for job in found:
            typer.echo(orjson.dumps(_job_record(job)).decode())
        return
    columns = ("id", "account_id", "kind", "status", "attempts", "created_at", "error")
    rows = [
        (
            job.id,
            job.account_id or "-",
            job.kind,
            job.status,
            f"{job.attempts}/{job.max_attempts}",
            job.created_at.isoformat(),
            job.error or "",
        )
        for job in found
    ]
    if not console.is_terminal:
        # Piped: one tab-separated line per job, never cut to a terminal width.
        for row in rows:
            typer.echo("\t".join(row))
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*row)
    console.print(table)


@jobs_app.command("show")
def jobs_show(
    job_id: Annotated[str, typer.Argument(help="The job's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show one job: payload, progress, result, error and its lease."""
    store = _store_at_head()
    try:
        job = get_job(store, None, job_id)
    except NotFound:
        err_console.print(f"No job {job_id!r}.")
        raise typer.Exit(1) from None
    finally:
        store.dispose()
    record = _job_record(job)
    if as_json:
        typer.echo(orjson.dumps(record).decode())
        return
    table = Table(title=f"Job {job.id}", show_header=False)
    for key, value in record.items():
        shown = value if isinstance(value, str) else orjson.dumps(value).decode()
        table.add_row(key, shown)
    console.print(table)


@jobs_app.command("enqueue")
def jobs_enqueue(
    kind: Annotated[str, typer.Argument(help="A job kind this version can run.")],
    payload: Annotated[str, typer.Option(help="The job's payload, a JSON object.")] = "{}",
    account: Annotated[str | None, typer.Option(help="The account the job is for.")] = None,
    queue: Annotated[
        str | None, typer.Option(help="Run after the earlier jobs of this queue.")
    ] = None,
) -> None:
    """Enqueue a job (for example maintenance.purge_idempotency_keys); prints its id."""
    if kind not in HANDLERS:
        known = ", ".join(sorted(HANDLERS))
        raise typer.BadParameter(f"unknown job kind {kind!r}; known: {known}", param_hint="KIND")
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--payload") from None
    if not isinstance(body, dict):
        raise typer.BadParameter("must be a JSON object", param_hint="--payload")
    store = _store_at_head()
    try:
        owner = _account_option(store, account)
        job_id = enqueue_job(
            store, account=owner, kind=kind, payload=body, queue=queue, now=datetime.now(UTC)
        )
    finally:
        store.dispose()
    typer.echo(job_id)
