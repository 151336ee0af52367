"""``eventyard destinations …`` as real processes, delivered by a real ``eventyard worker``
to a real webhook receiver, on both databases.

docs/destinations.md, "Command line": the commands do what the API does. The
story of the issue, by command line: a destination whose receiver refuses
its credentials (401) dead-letters what it was sent; ``update --credential``
fixes them and ``replay --dead-letters`` delivers them. Errors end the
command with exit code 1 and a message naming the field, never a traceback;
credentials are never printed.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

from eventyard.services.accounts import get_account
from eventyard.services.ingest.records import store_records
from eventyard.storage.database import Database
from tests.e2e.destination_support import WebhookReceiver, wait_for, webhook_receiver
from tests.e2e.test_cli import cli_env, create_account_json, run
from tests.integration.helpers import NOW, activity
from tests.support import own_database, stop_server

#: The receiver is on 127.0.0.1, which the SSRF guard refuses unless allowed.
ALLOW_LOCAL = {"EVENTYARD_URL_ALLOWLIST": "127.0.0.1/32"}
WORKER_ENV = {
    **ALLOW_LOCAL,
    "EVENTYARD_DESTINATION_LINGER_SECONDS": "0",
    "EVENTYARD_DESTINATION_RETRY_BASE_SECONDS": "0.2",
    "EVENTYARD_WORKER_POLL_SECONDS": "0.1",
}


@pytest.fixture
def database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database of its own: no other test's worker delivers for these destinations."""
    if backend == "postgresql":
        request.getfixturevalue("postgres_url")
    with own_database(backend, tmp_path) as url:
        yield url


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as found:
        yield found


def cli(url: str, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    return run(url, *args, check=check, env={**ALLOW_LOCAL, **env})


def cli_json(url: str, *args: str) -> Any:
    return orjson.loads(cli(url, *args, "--json").stdout)


def failure(url: str, *args: str, **env: str) -> str:
    """A command that must fail: exit code 1, a message, no traceback; its stderr."""
    result = cli(url, *args, check=False, **env)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.startswith("Error: "), result.stderr
    return result.stderr


def store_viewed(url: str, account_id: str, count: int, tag: str) -> None:
    """``count`` activities stored by ingest (queued for the account's destinations)."""
    store = Database.from_url(url, pool_size=1)
    try:
        account = get_account(store, account_id)
        batch = [activity("Viewed", email=f"{tag}{n}@example.com") for n in range(count)]
        with store.unit_of_work() as uow:
            store_records(uow, account, batch, now=NOW)
            uow.commit()
    finally:
        store.dispose()


@contextmanager
def worker(url: str, log: Path) -> Iterator[None]:
    """``eventyard worker``: its delivery threads deliver, its job worker runs replays."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "eventyard", "worker"],
            env=cli_env(url, **WORKER_ENV),
            stdout=out,
            stderr=out,
        )
    try:
        yield
    finally:
        stop_server(process)


def test_a_refused_credential_is_fixed_and_its_dead_letters_replayed(
    database: str, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    account_id = create_account_json(database, "CLI destinations")["account_id"]
    account = ("--account", account_id)
    wrong = "not-the-receivers-secret"
    created = cli_json(
        database,
        "destinations",
        "create",
        *account,
        "--name",
        "warehouse",
        "--kind",
        "webhook",
        "--url",
        receiver.url,
        "--credential",
        f"secret={wrong}",
        "--filter",
        '{"names": ["Viewed"]}',
    )
    destination = created["id"]
    assert {k: created[k] for k in ("name", "kind", "url", "enabled", "filter")} == {
        "name": "warehouse",
        "kind": "webhook",
        "url": receiver.url.rstrip("/"),
        "enabled": True,
        "filter": {"names": ["Viewed"]},
    }
    assert wrong not in orjson.dumps(created).decode()

    # Paused: activities are queued, nothing goes out.
    assert cli_json(database, "destinations", "pause", *account, destination)["enabled"] is False
    store_viewed(database, account_id, 5, "first")
    with worker(database, tmp_path / "worker1.log"):
        shown = cli_json(database, "destinations", "show", *account, destination)
        assert (shown["pending"], shown["delivered"], receiver.requests) == (5, 0, [])
        cli(database, "destinations", "resume", *account, destination)
        # The receiver checks the signature: a wrong secret is a 401, which
        # dead-letters the request.
        wait_for(
            lambda: cli_json(database, "destinations", "show", *account, destination)["dead"] == 5,
            what="five dead letters",
        )
    assert receiver.taken == []
    letters = [
        orjson.loads(line)
        for line in cli(
            database, "destinations", "dead-letters", *account, destination, "--json"
        ).stdout.splitlines()
    ]
    assert len(letters) == 5
    assert {letter["status"] for letter in letters} == {401}

    cli(
        database,
        "destinations",
        "update",
        *account,
        destination,
        "--credential",
        f"secret={receiver.secret}",
    )
    job = cli_json(database, "destinations", "replay", *account, destination, "--dead-letters")
    assert job["job_id"]
    with worker(database, tmp_path / "worker2.log"):
        wait_for(lambda: len(receiver.taken) == 5, what="the dead letters delivered")
        done = wait_for(
            lambda: (
                (f := cli_json(database, "destinations", "show", *account, destination))["pending"]
                == 0
                and f
            ),
            what="the replay settled",
        )
    assert (done["delivered"], done["dead"]) == (5, 0)
    emails = [i["value"] for a in receiver.taken for i in a["identifiers"] if i["kind"] == "email"]
    assert sorted(emails) == sorted(f"first{n}@example.com" for n in range(5))
    # Every request signed with the wrong secret was refused, every one after the
    # update was taken: the new credentials are the ones used.
    statuses = [r.status for r in receiver.requests]
    first_taken = statuses.index(200)
    assert set(statuses[:first_taken]) == {401}
    assert set(statuses[first_taken:]) == {200}
    assert receiver.bad_signatures == first_taken

    listed = cli(database, "destinations", "list", *account).stdout
    assert destination in listed
    assert "warehouse" in listed
    assert wrong not in listed
    assert receiver.secret not in listed
    cli(database, "destinations", "delete", *account, destination)
    assert cli(database, "destinations", "list", *account, "--json").stdout == ""
    assert "No such destination" in failure(database, "destinations", "show", *account, destination)


def test_bad_options_are_refused_naming_the_field(database: str, receiver: WebhookReceiver) -> None:
    account_id = create_account_json(database, "CLI destination errors")["account_id"]
    base = ("destinations", "create", "--account", account_id, "--name", "x")
    webhook = (*base, "--kind", "webhook", "--url", receiver.url)
    assert "kind must be one of" in failure(
        database, *base, "--kind", "fax", "--url", receiver.url, "--credential", "secret=s"
    )
    assert "credentials" in failure(database, *webhook)
    assert "credentials.token" in failure(database, *webhook, "--credential", "token=s")
    # Without the allowlist the SSRF guard refuses a loopback address, naming the url.
    refused = failure(database, *webhook, "--credential", "secret=s", EVENTYARD_URL_ALLOWLIST="")
    assert "url" in refused
    assert cli(database, "destinations", "list", "--account", account_id, "--json").stdout == ""
