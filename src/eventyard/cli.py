"""The ``eventyard`` command."""

from __future__ import annotations

import os
import tempfile
from typing import Annotated

import orjson
import typer
import uvicorn
from rich.console import Console
from rich.table import Table

from eventyard.observability import configure_logging
from eventyard.services.accounts import count_accounts, create_account, list_accounts
from eventyard.settings import Settings
from eventyard.storage.database import Database
from eventyard.storage.migrate import upgrade_database

app = typer.Typer(help="eventyard: a self-hosted customer activity hub.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
accounts_app = typer.Typer(help="Accounts (tenants) and their credentials.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(accounts_app, name="accounts")
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
