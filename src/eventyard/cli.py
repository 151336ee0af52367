"""The ``eventyard`` command."""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, NoReturn, cast

import orjson
import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from eventyard.api.contacts import contact_json, erasure_json
from eventyard.api.definitions import definition_json
from eventyard.api.jobs import job_json
from eventyard.api.lists import list_json
from eventyard.core.account_settings import effective_settings, settings_document
from eventyard.core.activity_import import BackfillTally
from eventyard.core.contact_import import ImportTally
from eventyard.core.credentials import credential_document, issued_document
from eventyard.core.destinations import Destination, DestinationStats
from eventyard.core.errors import EventyardError
from eventyard.core.identifiers import parse_identifier_query
from eventyard.core.ids import is_id
from eventyard.core.model import Account, ActivityDefinition, Job
from eventyard.dialects.registry import (
    BUILTIN_DIALECTS,
    ISSUABLE_KINDS,
    create_account,
    destination_formats,
)
from eventyard.jobs.deliveries import DeliveryThreads
from eventyard.jobs.periodic import periodic_jobs
from eventyard.jobs.registry import HANDLERS
from eventyard.jobs.worker import Worker, WorkerThread
from eventyard.observability import configure_logging
from eventyard.services import definitions as definition_service
from eventyard.services import erasure as erasure_service
from eventyard.services import lists as list_service
from eventyard.services.accounts import (
    count_accounts,
    get_account,
    list_accounts,
    update_account_settings,
)
from eventyard.services.backfill import BackfillFormat, format_of, import_activities
from eventyard.services.credentials import (
    create_credential,
    list_credentials,
    revoke_credential,
)
from eventyard.services.destinations import manage as destination_service
from eventyard.services.destinations.manage import dead_letter_document, destination_document
from eventyard.services.destinations.sealing import CredentialSealer
from eventyard.services.imports import import_rows
from eventyard.services.jobs import enqueue_job, get_job, list_jobs
from eventyard.services.retention import purge_activities
from eventyard.services.sources import Download, SourceRefused, SourceUnavailable
from eventyard.settings import Settings
from eventyard.storage.database import Database
from eventyard.storage.engine import normalize_database_url
from eventyard.storage.migrate import upgrade_database
from eventyard.storage.replicas import ReadReplicas

app = typer.Typer(help="eventyard: a self-hosted customer activity hub.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
accounts_app = typer.Typer(help="Accounts (tenants) and their credentials.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(accounts_app, name="accounts")
credentials_app = typer.Typer(
    help="An account's credentials: issue, list and revoke keys and tokens.",
    no_args_is_help=True,
)
app.add_typer(credentials_app, name="credentials")
jobs_app = typer.Typer(
    help="Background jobs: follow them, enqueue a built-in one.", no_args_is_help=True
)
app.add_typer(jobs_app, name="jobs")
definitions_app = typer.Typer(
    help="Activity definitions (Ortto): the activities an account declares and their fields.",
    no_args_is_help=True,
)
app.add_typer(definitions_app, name="definitions")
console = Console()
log = logging.getLogger("eventyard")
err_console = Console(stderr=True)


def _settings() -> Settings:
    """The settings from the environment; a bad ``EVENTYARD_*`` value ends the command."""
    try:
        return Settings()
    except ValidationError as exc:
        for error in exc.errors():
            if not error["loc"]:  # a rule across settings: its message names them
                err_console.print(f"[red]{escape(error['msg'])}[/red]")
                continue
            name = "EVENTYARD_" + "_".join(str(part) for part in error["loc"]).upper()
            err_console.print(f"[red]{name}[/red]: {escape(error['msg'])}")
        raise typer.Exit(2) from None


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
    settings = _settings()
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
    backend = normalize_database_url(settings.database_url).get_backend_name()
    process_count, why = choose_workers(workers or settings.workers, backend, available_cpus())
    log.info(
        f"serving with {process_count} server process{'es' if process_count > 1 else ''}: {why}",
        extra={"workers": process_count},
    )
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


def available_cpus() -> int:
    """The CPUs this process may run on (a container's or ``taskset``'s share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def choose_workers(asked: int, backend: str, cpus: int) -> tuple[int, str]:
    """How many server processes to start, and why: ``asked`` unless it is 0 (choose).

    Measured on 2 cores (bench/README.md, "How many server processes"): a
    second process did not raise single-event requests/s (SQLite lower, each
    process having its own group commit whose groups are smaller and whose
    writers take turns; PostgreSQL within the noise, with a higher p99) nor
    Netcore batch ingest. So SQLite, whose writers take turns whatever the
    process count, gets one process. PostgreSQL gets one per two CPUs,
    leaving the others to the database and the rest of the machine: one on
    2 cores, as measured; larger machines are not measured.
    """
    if asked:
        return asked, "as asked (--workers or EVENTYARD_WORKERS)"
    if backend == "sqlite":
        return 1, (
            "SQLite writes take turns, so more processes only make smaller group commits; "
            "--workers or EVENTYARD_WORKERS chooses another count"
        )
    count = max(1, cpus // 2)
    return count, (
        f"one per 2 of the {cpus} CPUs, the others left to PostgreSQL; "
        "--workers or EVENTYARD_WORKERS chooses another count"
    )


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply the schema migrations."""
    settings = _settings()
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
    settings = _settings()
    upgrade_database(settings.database_url)
    store = _store(settings)
    try:
        created = create_account(store, name)
    finally:
        store.dispose()
    values = {
        "account_id": created.account.id,
        **created.secrets,
        # Signs the account's callbacks; also shown by GET /api/v1/account.
        "signing_secret": created.account.signing_secret or "",
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
    settings = _settings()
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
    settings = _settings()
    if poll is not None:
        settings = settings.model_copy(update={"worker_poll_seconds": poll})
    configure_logging(settings.log_level)
    upgrade_database(settings.database_url)
    # One connection for the jobs, one for the heartbeat that runs beside them,
    # one per delivery thread.
    store = Database.from_settings(settings, pool_size=2 + settings.destination_workers)
    # Exports read from the replicas of EVENTYARD_READ_DATABASE_URL, if any.
    read_store = ReadReplicas.from_settings(store, settings, pool_size=1)
    if read_store is not None:
        read_store.start()
    try:
        job_worker = Worker(
            store,
            settings,
            HANDLERS,
            periodic=periodic_jobs(settings, datetime.now(UTC)),
            read_store=read_store,
        )
        if once:
            job_worker.run_once()
        else:
            deliveries = DeliveryThreads(
                store, settings, destination_formats(), worker_id=job_worker.worker_id
            )
            deliveries.start()
            try:
                _run_until_signalled(job_worker)
            finally:
                deliveries.stop()
    finally:
        if read_store is not None:
            read_store.dispose()
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


@app.command()
def purge(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Change nothing; say what a purge would remove.")
    ] = False,
    account: Annotated[
        str | None,
        typer.Option(help="Only this account's activities (no partition is dropped)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Purge activities older than their account's retention (retention_days, default 548).

    On PostgreSQL it also creates the coming months' partitions and drops the
    monthly partitions in which every account's activities have expired. The
    job workers do the same every EVENTYARD_RETENTION_INTERVAL_SECONDS.
    """
    with _command_store() as store:
        report = purge_activities(store, datetime.now(UTC), dry_run=dry_run, account_id=account)
    if as_json:
        typer.echo(orjson.dumps(report.as_dict()).decode())
        return
    verb = "would purge" if dry_run else "purged"
    _print_rows(
        ("account", "name", "retention_days", "cutoff", f"activities {verb}", "in partitions"),
        [
            (
                row.account_id,
                row.name,
                str(row.retention_days),
                row.cutoff.isoformat(timespec="seconds"),
                str(row.activities),
                str(row.in_dropped_partitions),
            )
            for row in report.accounts
        ],
    )
    dropped = ", ".join(report.partitions_dropped) or "none"
    typer.echo(f"Partitions {'that would be ' if dry_run else ''}dropped: {dropped}")
    if report.partitions_created:
        typer.echo(f"Partitions created: {', '.join(report.partitions_created)}")
    typer.echo(f"Activities {verb}: {report.activities}")


def _store_at_head() -> Database:
    settings = _settings()
    upgrade_database(settings.database_url)
    return _store(settings)


def _account_option(store: Database, account_id: str | None) -> Account | None:
    """The account an ``--account`` option names (``NotFound`` if none), or ``None``."""
    return None if account_id is None else get_account(store, account_id)


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
    with _command_store() as store:
        found = list_jobs(store, _account_option(store, account), kind=kind, limit=limit)
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
    _print_rows(columns, rows)


@jobs_app.command("show")
def jobs_show(
    job_id: Annotated[str, typer.Argument(help="The job's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show one job: payload, progress, result, error and its lease."""
    with _command_store() as store:
        job = get_job(store, None, job_id)
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
    with _command_store() as store:
        owner = _account_option(store, account)
        job_id = enqueue_job(
            store, account=owner, kind=kind, payload=body, queue=queue, now=datetime.now(UTC)
        )
    typer.echo(job_id)


@contextmanager
def _command_store() -> Iterator[Database]:
    """The migrated store for one command; an expected failure ends it with exit code 1."""
    store = _store_at_head()
    try:
        yield store
    except EventyardError as exc:
        _fail(exc)
    finally:
        store.dispose()


def _fail(exc: EventyardError) -> NoReturn:
    """Say what went wrong, each further problem on its own line; exit 1, no traceback."""
    err_console.print(f"[bold red]Error:[/bold red] {escape(exc.message)}", soft_wrap=True)
    for error in exc.errors:
        # The field, where the reason does not name it already.
        named = not error.field or error.field in error.reason
        reason = error.reason if named else f"{error.field}: {error.reason}"
        if error.reason != exc.message or not named:
            err_console.print(f"  {escape(reason)}", soft_wrap=True)
    raise typer.Exit(1)


def _print_rows(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A table on a terminal; piped into another program, one tab-separated line per row."""
    if not console.is_terminal:
        # Never wrapped or cut to a terminal width.
        for row in rows:
            typer.echo("\t".join(row))
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)


#: What ``activities import --dialect`` may name.
DIALECT_NAMES = frozenset(dialect.name for dialect in BUILTIN_DIALECTS)
AccountOption = Annotated[str, typer.Option("--account", help="The account's id.")]
ActivityIdArgument = Annotated[
    str, typer.Argument(help="The activity id, e.g. act:cm:product-purchase.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@accounts_app.command("settings")
def accounts_settings(
    account_id: Annotated[str, typer.Argument(help="The account's id.")],
    changes: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="KEY=VALUE, repeatable. VALUE is read as JSON when it is JSON "
            '(true, 3, ["email"], null to restore the default), else as text.',
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show an account's settings, defaults filled in, or change them with --set.

    Running servers see a change within EVENTYARD_CREDENTIAL_CHECK_SECONDS.
    """
    patch = dict(_setting_change(text) for text in changes or [])
    with _command_store() as store:
        account = get_account(store, account_id)
        if patch:
            account = update_account_settings(store, account, patch)
    document = settings_document(effective_settings(account.settings))
    if as_json:
        typer.echo(orjson.dumps(document).decode())
        return
    _print_rows(
        ("setting", "value"),
        [(key, orjson.dumps(value).decode()) for key, value in document.items()],
    )


@credentials_app.command("create")
def credentials_create(
    account_id: AccountOption,
    kind: Annotated[
        str,
        typer.Option(
            "--kind",
            help="admin, read, or a dialect's: "
            + ", ".join(k.kind for k in ISSUABLE_KINDS if k.kind not in ("admin", "read"))
            + ".",
        ),
    ],
    name: Annotated[str | None, typer.Option("--name", help="A label for people.")] = None,
    expires_at: Annotated[
        str | None,
        typer.Option("--expires-at", help="ISO 8601 time with its offset, e.g. 2027-01-31T00:00Z."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Issue a credential and print it with its secret, shown this once only."""
    with _command_store() as store:
        account = get_account(store, account_id)
        issued = create_credential(
            store, account, ISSUABLE_KINDS, kind, name=name, expires_at=expires_at
        )
    document = issued_document(issued.credential, issued.kind, issued.secret)
    if as_json:
        typer.echo(orjson.dumps(document).decode())
        return
    table = Table(title=f"Credential {issued.credential.id}", show_header=False)
    for key, value in document.items():
        table.add_row(key, escape("" if value is None else str(value)))
    console.print(table)
    console.print("[yellow]Store the secret now: it is kept only as a hash.[/yellow]")


@credentials_app.command("list")
def credentials_list(
    account_id: AccountOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """List the account's credentials (never their secrets), revoked ones included."""
    with _command_store() as store:
        account = get_account(store, account_id)
        found = list_credentials(store, account.id)
    now, kinds = datetime.now(UTC), {k.kind: k for k in ISSUABLE_KINDS}
    documents = [credential_document(c, kinds.get(c.kind), now) for c in found]
    if as_json:
        for document in documents:
            typer.echo(orjson.dumps(document).decode())
        return
    columns = ("id", "kind", "prefix", "name", "status", "created_at", "last_used_at", "expires_at")
    _print_rows(columns, [[str(d[c] or "") for c in columns] for d in documents])


@credentials_app.command("revoke")
def credentials_revoke(
    credential_id: Annotated[str, typer.Argument(help="The credential's id.")],
    account_id: AccountOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Revoke a credential: every server refuses it within 2 x EVENTYARD_CREDENTIAL_CHECK_SECONDS.

    The account's last active admin credential is not revoked.
    """
    with _command_store() as store:
        account = get_account(store, account_id)
        revoke_credential(store, account.id, credential_id)
        revoked = next(c for c in list_credentials(store, account.id) if c.id == credential_id)
    kinds = {k.kind: k for k in ISSUABLE_KINDS}
    document = credential_document(revoked, kinds.get(revoked.kind), datetime.now(UTC))
    if as_json:
        typer.echo(orjson.dumps(document).decode())
        return
    console.print(f"Credential {escape(credential_id)} revoked.")


def _setting_change(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise typer.BadParameter(f"{text!r} is not KEY=VALUE", param_hint="--set")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = raw
    return key.strip(), value


@definitions_app.command("create")
def definitions_create(
    account_id: AccountOption,
    activity_id: ActivityIdArgument,
    name: Annotated[str, typer.Option("--name", help="A name for people.")],
    fields: Annotated[
        list[str] | None,
        typer.Option(
            "--field",
            help="FIELD_ID[=TYPE], repeatable: str:cm:product-name=str, int::v. "
            "TYPE must be the id's prefix, which is also its default.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Declare an activity definition: the attribute fields its activities may carry."""
    field_map = dict(_field_declaration(text) for text in fields or [])
    with _command_store() as store:
        account = get_account(store, account_id)
        created = definition_service.create_definition(store, account, activity_id, name, field_map)
    _print_definition(created, as_json)


def _field_declaration(text: str) -> tuple[str, str]:
    field_id, sep, kind = text.partition("=")
    return field_id, kind if sep else field_id.partition(":")[0]


@definitions_app.command("list")
def definitions_list(account_id: AccountOption, as_json: JsonOption = False) -> None:
    """List an account's activity definitions (JSON lines with --json)."""
    with _command_store() as store:
        found = definition_service.list_definitions(store, get_account(store, account_id))
    if as_json:
        for definition in found:
            typer.echo(orjson.dumps(definition_json(definition)).decode())
        return
    _print_rows(
        ("activity_id", "name", "fields", "auto_created", "updated_at"),
        [
            (
                d.activity_id,
                d.name,
                str(len(d.fields)),
                str(d.auto_created).lower(),
                d.updated_at.isoformat(),
            )
            for d in found
        ],
    )


@definitions_app.command("show")
def definitions_show(
    account_id: AccountOption, activity_id: ActivityIdArgument, as_json: JsonOption = False
) -> None:
    """Show one activity definition and its fields."""
    with _command_store() as store:
        found = definition_service.get_definition(
            store, get_account(store, account_id), activity_id
        )
    _print_definition(found, as_json)


@definitions_app.command("delete")
def definitions_delete(account_id: AccountOption, activity_id: ActivityIdArgument) -> None:
    """Remove an activity definition. Activities already stored stay."""
    with _command_store() as store:
        definition_service.delete_definition(store, get_account(store, account_id), activity_id)
    console.print(f"Deleted activity definition {escape(activity_id)}.", soft_wrap=True)


def _print_definition(definition: ActivityDefinition, as_json: bool) -> None:
    if as_json:
        typer.echo(orjson.dumps(definition_json(definition)).decode())
        return
    origin = " (auto-created)" if definition.auto_created else ""
    console.print(
        f"{escape(definition.activity_id)}: {escape(definition.name)}{origin}", soft_wrap=True
    )
    _print_rows(("field", "type"), list(definition.fields.items()))


lists_app = typer.Typer(help="Contact lists (Netcore listid).", no_args_is_help=True)
app.add_typer(lists_app, name="lists")
contacts_app = typer.Typer(
    help="Contacts: import them from CSV files, erase them on request.", no_args_is_help=True
)
app.add_typer(contacts_app, name="contacts")


@lists_app.command("create")
def lists_create(
    account_id: AccountOption,
    name: Annotated[str, typer.Argument(help="The list's name, unique in the account.")],
    as_json: JsonOption = False,
) -> None:
    """Create a list; prints its integer id (the listid of a bulk upload)."""
    with _command_store() as store:
        created = list_service.create_list(store, get_account(store, account_id), name)
    if as_json:
        typer.echo(orjson.dumps(list_json(created)).decode())
        return
    typer.echo(str(created.id))


@lists_app.command("list")
def lists_list(account_id: AccountOption, as_json: JsonOption = False) -> None:
    """List an account's lists with their member counts (JSON lines with --json)."""
    with _command_store() as store:
        found = list_service.list_lists(store, get_account(store, account_id))
    if as_json:
        for contact_list in found:
            typer.echo(orjson.dumps(list_json(contact_list)).decode())
        return
    _print_rows(
        ("id", "name", "members", "created_at"),
        [(str(c.id), c.name, str(c.members), c.created_at.isoformat()) for c in found],
    )


@lists_app.command("contacts")
def lists_contacts(
    account_id: AccountOption,
    list_id: Annotated[int, typer.Argument(help="The list's id.")],
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, by id.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """Show a list's first contacts by id (JSON lines with --json)."""
    with _command_store() as store:
        members, _ = list_service.list_members(
            store, get_account(store, account_id), list_id, limit, None
        )
    if as_json:
        for contact in members:
            typer.echo(orjson.dumps(contact_json(contact)).decode())
        return
    _print_rows(
        ("id", "identifiers", "attributes"),
        [
            (
                c.id,
                " ".join(str(i) for i in c.identifiers),
                orjson.dumps(c.attributes).decode(),
            )
            for c in members
        ],
    )


def _local_or_url(source: str) -> str:
    """A local file as its absolute path; a URL as it is."""
    if "://" not in source and Path(source).exists():
        return str(Path(source).resolve())
    return source


def _file_progress(
    started: float, as_json: bool
) -> tuple[Progress, Callable[[int, Download], None]]:
    """A progress bar of a file being loaded (bytes, rows, rows/s, ETA), and how to move it."""
    progress = Progress(
        TextColumn("[bold]importing"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[rows]} rows, {task.fields[rate]} rows/s"),
        TimeRemainingColumn(),
        console=err_console,
        disable=as_json,
    )
    task = progress.add_task("import", total=None, rows=0, rate=0)

    def moved(rows: int, download: Download) -> None:
        rate = round(rows / max(time.monotonic() - started, 1e-6))
        progress.update(task, completed=download.read, total=download.size, rows=rows, rate=rate)

    return progress, moved


@contacts_app.command("import")
def contacts_import(
    source: Annotated[
        str, typer.Argument(help="A CSV file: a local path, an http(s):// or s3:// URL.")
    ],
    account_id: AccountOption,
    list_id: Annotated[
        int | None, typer.Option("--list", help="Also make the contacts members of this list.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Import contacts from a CSV file, as a Netcore bulk upload does, with a progress bar.

    URLs pass the same SSRF rule as bulk uploads (EVENTYARD_URL_ALLOWLIST);
    local files are read whatever EVENTYARD_IMPORT_LOCAL_FILES says.
    """
    source = _local_or_url(source)
    settings = _settings()
    tally = ImportTally()
    started = time.monotonic()
    with _command_store() as store:
        account = get_account(store, account_id)
        if list_id is not None:
            list_service.get_list(store, account, list_id)
        progress, moved = _file_progress(started, as_json)
        try:
            with progress:
                import_rows(
                    store,
                    settings,
                    account,
                    source,
                    list_id,
                    tally,
                    local_files=True,
                    clock=lambda: datetime.now(UTC),
                    on_batch=lambda done, download: moved(done.total, download),
                )
        except (SourceRefused, SourceUnavailable) as exc:
            _fail(EventyardError("import_failed", f"{exc} ({tally.total} rows stored before)"))
    seconds = time.monotonic() - started
    summary = {**tally.to_json(), "seconds": round(seconds, 3)}
    del summary["rows_done"]
    if as_json:
        typer.echo(orjson.dumps(summary).decode())
        return
    table = Table(title="Import", show_header=False)
    for key in ("total", "created", "updated", "failed"):
        table.add_row(key, str(summary[key]))
    table.add_row("seconds", f"{seconds:.1f}")
    table.add_row("rows/s", f"{tally.total / max(seconds, 1e-6):,.0f}")
    console.print(table)
    if tally.errors:
        errors = Table("row", "reason", title=f"First {len(tally.errors)} rows skipped")
        for error in tally.errors:
            errors.add_row(str(error["row"]), escape(error["reason"]))
        console.print(errors)


@contacts_app.command("erase")
def contacts_erase(
    contact: Annotated[
        str,
        typer.Argument(help="The contact's id, or one of its identifiers as KIND:VALUE."),
    ],
    account_id: AccountOption,
    yes: Annotated[bool, typer.Option("--yes", help="Erase without asking.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Erase a contact and everything held about them (right to erasure); cannot be undone.

    Removes the contact, every contact merged into it, their identifiers,
    activities, memberships and identity history, their queued records and
    their rows in export files still on disk. Prints the audit record, which
    keeps ids and counts only.
    """
    settings = _settings()
    with _command_store() as store:
        account = get_account(store, account_id)
        question = f"Erase {contact} and all its data? This cannot be undone"
        if not yes and not typer.confirm(question):
            raise typer.Exit(1)
        options: dict[str, Any] = {
            "requested_via": "cli",
            "now": datetime.now(UTC),
            "export_dir": Path(settings.export_dir),
        }
        if is_id(contact):
            erasure = erasure_service.erase_contact(store, account, contact, **options)
        else:
            try:
                identifier = parse_identifier_query(contact)
            except ValueError as exc:
                raise EventyardError(
                    "invalid_identifier", f"{contact!r} is neither a contact id nor {exc}"
                ) from exc
            erasure = erasure_service.erase_by_identifier(store, account, identifier, **options)
    document = erasure_json(erasure)
    if as_json:
        typer.echo(orjson.dumps(document).decode())
        return
    table = Table(title=f"Erasure {erasure.id}", show_header=False)
    table.add_row("contacts", ", ".join(erasure.contact_ids))
    for kind, count in erasure.removed.items():
        table.add_row(kind.replace("_", " "), str(count))
    table.add_row("erased at", document["erased_at"])
    console.print(table)


activities_app = typer.Typer(
    help="Activities: load historical ones from a file.", no_args_is_help=True
)
app.add_typer(activities_app, name="activities")


@activities_app.command("import")
def activities_import(
    source: Annotated[
        str,
        typer.Argument(help="An NDJSON or CSV file: a local path, an http(s):// or s3:// URL."),
    ],
    account_id: AccountOption,
    dialect: Annotated[
        str,
        typer.Option(
            "--dialect", help="The dialect the activities came through (stored as their dialect)."
        ),
    ],
    file_format: Annotated[
        str | None,
        typer.Option(
            "--format", help="ndjson or csv; by default .csv files are CSV, others NDJSON."
        ),
    ] = None,
    after_row: Annotated[
        int,
        typer.Option(
            "--after-row", min=0, help="Skip the lines up to this one (stored by an earlier run)."
        ),
    ] = 0,
    as_json: JsonOption = False,
) -> None:
    """Load a backfill of historical activities, for existing or new contacts.

    Each line (NDJSON) or row (CSV) is an activity with its contact's
    identifiers, a name and its occurred_at; stored with journey_eligible
    false. An activity with an id is stored once however often it is loaded.
    See docs/operations.md, "Imports and backfills at size".
    """
    if dialect not in DIALECT_NAMES:
        _fail(
            EventyardError(
                "invalid_dialect",
                f"--dialect {dialect!r} is none of: {', '.join(sorted(DIALECT_NAMES))}",
            )
        )
    if file_format not in (None, "ndjson", "csv"):
        _fail(EventyardError("invalid_format", "--format is ndjson or csv"))
    source = _local_or_url(source)
    chosen = cast(BackfillFormat, file_format) if file_format else format_of(source)
    settings = _settings()
    tally = BackfillTally(rows_done=after_row)
    started = time.monotonic()
    with _command_store() as store:
        account = get_account(store, account_id)
        progress, moved = _file_progress(started, as_json)
        try:
            with progress:
                import_activities(
                    store,
                    settings,
                    account,
                    source,
                    dialect,
                    tally,
                    file_format=chosen,
                    local_files=True,
                    clock=lambda: datetime.now(UTC),
                    on_chunk=lambda done, download: moved(done.total, download),
                )
        except (SourceRefused, SourceUnavailable) as exc:
            _fail(
                EventyardError(
                    "import_failed",
                    f"{exc} (lines up to {tally.rows_done} are stored: "
                    f"go on with --after-row {tally.rows_done})",
                )
            )
    seconds = time.monotonic() - started
    summary = {**tally.to_json(), "seconds": round(seconds, 3)}
    if as_json:
        typer.echo(orjson.dumps(summary).decode())
        return
    table = Table(title="Activity backfill", show_header=False)
    for key in ("total", "stored", "repeated", "failed", "contacts_created", "rows_done"):
        table.add_row(key, str(summary[key]))
    table.add_row("seconds", f"{seconds:.1f}")
    table.add_row("activities/s", f"{tally.total / max(seconds, 1e-6):,.0f}")
    console.print(table)
    for error in tally.errors[:10]:
        err_console.print(f"line {error['row']}: {escape(error['reason'])}")


destinations_app = typer.Typer(
    help="Destinations: where an account's activities are delivered (docs/destinations.md).",
    no_args_is_help=True,
)
app.add_typer(destinations_app, name="destinations")
DestinationArgument = Annotated[str, typer.Argument(help="The destination's id.")]
CredentialOption = Annotated[
    list[str] | None,
    typer.Option(
        "--credential",
        help="NAME=VALUE, repeatable: the kind's credential fields (webhook: secret; "
        "segment: write_key; clevertap: account_id and passcode; others: api_key).",
    ),
]
CredentialsFileOption = Annotated[
    Path | None,
    typer.Option(
        "--credentials-file",
        help="A JSON object of the credential fields, instead of --credential (keeps "
        "secrets off the process list).",
    ),
]
FilterOption = Annotated[
    str | None,
    typer.Option("--filter", help='JSON: {"names": [...], "dialects": [...], "sources": [...]}.'),
]


def _credentials_given(pairs: list[str] | None, file: Path | None) -> Any:
    """The credentials of --credential NAME=VALUE or of --credentials-file; None without."""
    if pairs and file is not None:
        raise typer.BadParameter("give --credential or --credentials-file, not both")
    if file is not None:
        try:
            found = orjson.loads(file.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise typer.BadParameter(f"{file}: {exc}", param_hint="--credentials-file") from exc
        return found  # not an object: the destination's checks say what it must hold
    if not pairs:
        return None
    credentials: dict[str, Any] = {}
    for text in pairs:
        name, sep, value = text.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{text!r} is not NAME=VALUE", param_hint="--credential")
        credentials[name] = value
    return credentials


def _filter_given(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--filter") from exc


@contextmanager
def _destination_tools() -> Iterator[tuple[Database, Settings, CredentialSealer]]:
    """The store, the settings (SSRF guard, limits) and the credential sealer of a command."""
    settings = _settings()
    with _command_store() as store:
        yield store, settings, CredentialSealer(store, settings)


def _print_destination(
    destination: Destination, stats: DestinationStats | None, as_json: bool, **extra: Any
) -> None:
    document = {**destination_document(destination, stats, datetime.now(UTC)), **extra}
    if as_json:
        typer.echo(orjson.dumps(document).decode())
        return
    table = Table(title=f"Destination {destination.id}", show_header=False)
    for key, value in document.items():
        shown = orjson.dumps(value).decode() if isinstance(value, dict) else value
        table.add_row(key, escape("" if shown is None else str(shown)))
    console.print(table)


@destinations_app.command("create")
def destinations_create(
    account_id: AccountOption,
    name: Annotated[str, typer.Option("--name", help="A name for people.")],
    kind: Annotated[
        str,
        typer.Option(
            "--kind",
            help="webhook, or a dialect's: "
            + ", ".join(sorted(k for k in destination_formats() if k != "webhook"))
            + ".",
        ),
    ],
    url: Annotated[str, typer.Option("--url", help="Where to deliver (the SSRF guard applies).")],
    credential: CredentialOption = None,
    credentials_file: CredentialsFileOption = None,
    filter_json: FilterOption = None,
    backfill_from: Annotated[
        str | None,
        typer.Option(
            "--backfill-from",
            help="ISO 8601 time with its offset: deliver the activities that occurred since "
            "then too (a job of a running worker queues them).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a destination: every activity stored from now on is delivered to it."""
    body: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "url": url,
        "credentials": _credentials_given(credential, credentials_file) or {},
    }
    if filter_json is not None:
        body["filter"] = _filter_given(filter_json)
    if backfill_from is not None:
        body["backfill_from"] = backfill_from
    with _destination_tools() as (store, settings, sealer):
        account = get_account(store, account_id)
        created, job_id = destination_service.create_destination(
            store, sealer, destination_formats(), settings, account, body, datetime.now(UTC)
        )
    _print_destination(created, None, as_json, backfill_job_id=job_id)


@destinations_app.command("list")
def destinations_list(account_id: AccountOption, as_json: JsonOption = False) -> None:
    """List the account's destinations with their figures (JSON lines with --json)."""
    with _command_store() as store:
        account = get_account(store, account_id)
        found = [
            destination_service.get_destination(store, account.id, d.id)
            for d in destination_service.list_destinations(store, account.id)
        ]
    now = datetime.now(UTC)
    documents = [destination_document(d, stats, now) for d, stats in found]
    if as_json:
        for document in documents:
            typer.echo(orjson.dumps(document).decode())
        return
    columns = ("id", "name", "kind", "enabled", "delivered", "pending", "dead", "lag_seconds")
    _print_rows(
        columns,
        [[str(d[c]).lower() if c == "enabled" else str(d[c]) for c in columns] for d in documents],
    )


@destinations_app.command("show")
def destinations_show(
    account_id: AccountOption, destination_id: DestinationArgument, as_json: JsonOption = False
) -> None:
    """One destination and its figures: delivered, pending, failed attempts, dead, lag."""
    with _command_store() as store:
        account = get_account(store, account_id)
        found, stats = destination_service.get_destination(store, account.id, destination_id)
    _print_destination(found, stats, as_json)


def _change_destination(account_id: str, destination_id: str, body: dict[str, Any]) -> Destination:
    with _destination_tools() as (store, settings, sealer):
        account = get_account(store, account_id)
        return destination_service.update_destination(
            store,
            sealer,
            destination_formats(),
            settings,
            account,
            destination_id,
            body,
            datetime.now(UTC),
        )


@destinations_app.command("update")
def destinations_update(
    account_id: AccountOption,
    destination_id: DestinationArgument,
    name: Annotated[str | None, typer.Option("--name", help="A new name.")] = None,
    url: Annotated[str | None, typer.Option("--url", help="A new URL.")] = None,
    credential: CredentialOption = None,
    credentials_file: CredentialsFileOption = None,
    filter_json: FilterOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a destination's name, URL, credentials (all of them) or filter."""
    body: dict[str, Any] = {}
    if name is not None:
        body["name"] = name
    if url is not None:
        body["url"] = url
    credentials = _credentials_given(credential, credentials_file)
    if credentials is not None:
        body["credentials"] = credentials
    if filter_json is not None:
        body["filter"] = _filter_given(filter_json)
    if not body:
        raise typer.BadParameter("nothing to change: give --name, --url, --credential or --filter")
    _print_destination(_change_destination(account_id, destination_id, body), None, as_json)


@destinations_app.command("pause")
def destinations_pause(
    account_id: AccountOption, destination_id: DestinationArgument, as_json: JsonOption = False
) -> None:
    """Hold deliveries back; activities keep being queued for it."""
    changed = _change_destination(account_id, destination_id, {"enabled": False})
    _print_destination(changed, None, as_json)


@destinations_app.command("resume")
def destinations_resume(
    account_id: AccountOption, destination_id: DestinationArgument, as_json: JsonOption = False
) -> None:
    """Deliver again, from what was queued while it was paused."""
    changed = _change_destination(account_id, destination_id, {"enabled": True})
    _print_destination(changed, None, as_json)


@destinations_app.command("replay")
def destinations_replay(
    account_id: AccountOption,
    destination_id: DestinationArgument,
    start: Annotated[
        str | None, typer.Option("--from", help="ISO 8601 time with its offset.")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="ISO 8601 time with its offset (default: now).")
    ] = None,
    dead_letters: Annotated[
        bool, typer.Option("--dead-letters", help="Send the dead letters again.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Send the activities that occurred in a period again, or the dead letters (a job of a
    running server or `eventyard worker` queues them)."""
    body: dict[str, Any] = {"dead_letters": dead_letters}
    if start is not None:
        body["from"] = start
    if end is not None:
        body["to"] = end
    with _command_store() as store:
        account = get_account(store, account_id)
        job_id = destination_service.replay_destination(
            store, account, destination_id, body, datetime.now(UTC)
        )
    if as_json:
        typer.echo(orjson.dumps({"job_id": job_id}).decode())
        return
    console.print(f"Replay queued as job {escape(job_id)} (eventyard jobs show {escape(job_id)}).")


@destinations_app.command("dead-letters")
def destinations_dead_letters(
    account_id: AccountOption,
    destination_id: DestinationArgument,
    limit: Annotated[int, typer.Option("--limit", help="Most dead letters (1-1000).")] = 100,
    after: Annotated[
        str | None, typer.Option("--after", help="Those after this activity id.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The activities the receiver refused for good, with its answer (JSON lines with --json)."""
    with _command_store() as store:
        account = get_account(store, account_id)
        letters = destination_service.list_dead_letters(
            store, account.id, destination_id, limit, after
        )
    documents = [dead_letter_document(letter) for letter in letters]
    if as_json:
        for document in documents:
            typer.echo(orjson.dumps(document).decode())
        return
    columns = ("activity_id", "status", "reason", "dead_at")
    _print_rows(columns, [[str(d[c]) for c in columns] for d in documents])


@destinations_app.command("delete")
def destinations_delete(account_id: AccountOption, destination_id: DestinationArgument) -> None:
    """Remove a destination with what it still had to deliver and its dead letters."""
    with _command_store() as store:
        account = get_account(store, account_id)
        destination_service.delete_destination(store, account.id, destination_id)
    console.print(f"Deleted destination {escape(destination_id)}.")
