"""The ``eventyard`` command, run as a real process on SQLite and PostgreSQL.

Each test gets an empty database of its own (``empty_database``, in conftest.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import inspect

from eventyard.core.errors import Unauthorized
from eventyard.services.credentials import authenticate
from eventyard.storage.database import Database
from eventyard.storage.engine import build_engine
from eventyard.storage.migrate import current_revision, heads
from tests.support import (
    Server,
    free_port,
    netcore_event,
    running_server,
    stop_server,
    wait_until_serving,
)

CREDENTIAL_KEYS = {
    "account_id",
    "admin_token",
    "netcore_api_key",
    "cordial_api_key",
    "ortto_api_key",
    "clevertap_account_id",
    "clevertap_passcode",
    "segment_write_key",
    "mixpanel_project_token",
    "mixpanel_api_secret",
    "customerio_site_id",
    "customerio_api_key",
    "amplitude_api_key",
    "posthog_api_key",
    "signing_secret",
}
SECRET_KEYS = CREDENTIAL_KEYS - {"account_id", "clevertap_account_id", "customerio_site_id"}
ENTRY_POINTS = ("module", "script")


def command(entry: str) -> list[str]:
    """``python -m eventyard`` or the ``eventyard`` console script of this environment."""
    if entry == "module":
        return [sys.executable, "-m", "eventyard"]
    script = Path(sys.executable).with_name("eventyard")
    assert script.exists(), f"console script missing: {script}"
    return [str(script)]


def cli_env(database_url: str | None, **extra: str) -> dict[str, str]:
    # The developer's settings stay out; the test run's PgBouncer setting (conftest.py) in.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("EVENTYARD_") or k == "EVENTYARD_DATABASE_PREPARED_STATEMENTS"
    }
    if database_url is not None:
        env["EVENTYARD_DATABASE_URL"] = database_url
    # Rich sizes its tables to the terminal; a pipe has none.
    env["COLUMNS"] = "250"
    env.update(extra)
    return env


def run(
    database_url: str | None,
    *args: str,
    entry: str = "module",
    cwd: Path | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``eventyard ARGS`` on ``database_url``; ``env`` adds settings to the command's."""
    result = subprocess.run(
        [*command(entry), *args],
        env=cli_env(database_url, **(env or {})),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert result.returncode == 0, (result.stdout, result.stderr)
    return result


def create_account_json(database_url: str, name: str, entry: str = "module") -> dict[str, Any]:
    result = run(database_url, "accounts", "create", name, "--json", entry=entry)
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    created = orjson.loads(lines[0])
    assert isinstance(created, dict)
    return created


def upload_and_look_up(
    http: httpx.Client, created: dict[str, Any], identity: str
) -> list[dict[str, Any]]:
    """Upload one Netcore event for ``identity`` with the api-key the CLI printed,
    then return what the admin API, with the CLI's admin token, finds for it."""
    r = http.post(
        "/v1/activity/upload",
        json=[netcore_event(identity=identity)],
        headers={"api-key": created["netcore_api_key"]},
    )
    assert r.status_code == 200, r.text
    r = http.get(
        "/api/v1/contacts",
        params={"identifier": f"identity:{identity}"},
        headers={"Authorization": f"Bearer {created['admin_token']}"},
    )
    assert r.status_code == 200, r.text
    contacts: list[dict[str, Any]] = r.json()["contacts"]
    return contacts


def revision_of(database_url: str) -> str | None:
    engine = build_engine(database_url, pool_size=1)
    try:
        return current_revision(engine)
    finally:
        engine.dispose()


def table_names(database_url: str) -> set[str]:
    engine = build_engine(database_url, pool_size=1)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


class TestDbUpgrade:
    @pytest.mark.parametrize("entry", ENTRY_POINTS)
    def test_upgrades_an_empty_database_to_head(self, empty_database: str, entry: str) -> None:
        assert table_names(empty_database) == set()

        run(empty_database, "db", "upgrade", entry=entry)

        engine = build_engine(empty_database, pool_size=1)
        try:
            assert current_revision(engine) == heads()[0]
        finally:
            engine.dispose()
        assert {"accounts", "contacts", "activities"} <= table_names(empty_database)

    def test_upgrade_to_a_given_revision_stops_there(self, empty_database: str) -> None:
        """docs/operations.md: "`eventyard db upgrade <revision> # to a given revision`"
        and "`eventyard db upgrade` # to the latest revision ("head")"."""
        run(empty_database, "db", "upgrade", "0001")

        assert revision_of(empty_database) == "0001"
        # 0002 adds the event type registry: not there yet.
        assert {"accounts", "contacts", "activities"} <= table_names(empty_database)
        assert "event_types" not in table_names(empty_database)

        run(empty_database, "db", "upgrade")

        assert revision_of(empty_database) == heads()[0]
        assert "event_types" in table_names(empty_database)

    def test_upgrade_twice_is_harmless(self, empty_database: str) -> None:
        run(empty_database, "db", "upgrade")
        created = create_account_json(empty_database, "Survivor")
        run(empty_database, "db", "upgrade")

        listed = run(empty_database, "accounts", "list", "--json").stdout
        assert created["account_id"] in listed


class TestAccountsCreate:
    @pytest.mark.parametrize("entry", ENTRY_POINTS)
    def test_json_prints_exactly_the_credentials(self, empty_database: str, entry: str) -> None:
        created = create_account_json(empty_database, "Acme Retail", entry=entry)

        assert set(created) == CREDENTIAL_KEYS
        assert all(isinstance(v, str) and v for v in created.values()), created
        assert re.fullmatch(r"[0-9a-f]{24}", created["account_id"])
        secrets = [created[k] for k in SECRET_KEYS]
        assert len(set(secrets)) == len(secrets)
        assert all(len(s) >= 32 for s in secrets)

    def test_credentials_work_against_a_server(self, empty_database: str, tmp_path: Path) -> None:
        created = create_account_json(empty_database, "Acme Retail")
        identity = f"cli-{uuid.uuid4().hex[:8]}"

        with (
            running_server(empty_database, tmp_path / "server.log") as server,
            httpx.Client(base_url=server.base_url, timeout=30) as http,
        ):
            assert len(upload_and_look_up(http, created, identity)) == 1
            # Credentials are not interchangeable.
            r = http.post(
                "/v1/activity/upload",
                json=[netcore_event(identity=identity)],
                headers={"api-key": created["cordial_api_key"]},
            )
            assert r.status_code == 401, r.text

        # The dialects not served yet authenticate through the same service.
        store = Database.from_url(empty_database, pool_size=1)
        try:
            for kind, secret, public_id in (
                ("admin", created["admin_token"], None),
                ("netcore", created["netcore_api_key"], None),
                ("cordial", created["cordial_api_key"], None),
                ("ortto", created["ortto_api_key"], None),
                ("clevertap", created["clevertap_passcode"], created["clevertap_account_id"]),
                ("segment", created["segment_write_key"], None),
                ("mixpanel", created["mixpanel_project_token"], None),
                ("mixpanel_import", created["mixpanel_api_secret"], None),
                ("customerio", created["customerio_api_key"], created["customerio_site_id"]),
                ("posthog", created["posthog_api_key"], None),
            ):
                assert authenticate(store, kind, secret, public_id).id == created["account_id"]
            with pytest.raises(Unauthorized):
                authenticate(store, "clevertap", created["clevertap_passcode"], "AAA-BBB-CCCC")
            with pytest.raises(Unauthorized):
                authenticate(store, "ortto", created["cordial_api_key"])
        finally:
            store.dispose()

    def test_each_account_gets_its_own_credentials(self, empty_database: str) -> None:
        first = create_account_json(empty_database, "First")
        second = create_account_json(empty_database, "Second")
        for key in CREDENTIAL_KEYS:
            assert first[key] != second[key], key

    def test_default_database_is_a_file_in_the_working_directory(self, tmp_path: Path) -> None:
        result = run(None, "accounts", "create", "Local", "--json", cwd=tmp_path)
        created = orjson.loads(result.stdout)
        assert (tmp_path / "eventyard.db").is_file()
        listed = run(None, "accounts", "list", "--json", cwd=tmp_path).stdout
        assert created["account_id"] in listed


class TestAccountsList:
    def test_shows_names_and_ids_but_no_secret(self, empty_database: str) -> None:
        accounts = [create_account_json(empty_database, name) for name in ("Acme Retail", "Globex")]

        table = run(empty_database, "accounts", "list")
        as_json = run(empty_database, "accounts", "list", "--json")

        for output in (table, as_json):
            everything = output.stdout + output.stderr
            for name in ("Acme Retail", "Globex"):
                assert name in output.stdout
            for created in accounts:
                assert created["account_id"] in output.stdout
                for key in SECRET_KEYS:
                    assert created[key] not in everything, key
                    assert created[key][4:16] not in everything, key
        rows = [orjson.loads(line) for line in as_json.stdout.splitlines()]
        assert [r["name"] for r in rows] == ["Acme Retail", "Globex"]
        assert all(set(r) == {"account_id", "name", "created_at"} for r in rows)

    def test_empty_list(self, empty_database: str) -> None:
        assert run(empty_database, "accounts", "list", "--json").stdout == ""


@contextmanager
def serve(
    database_url: str, tmp_path: Path, entry: str = "module", *extra: str
) -> Iterator[Server]:
    """``eventyard serve --port N [extra...]`` in a subprocess, terminated afterwards.

    The returned server's ``logs()`` are what ``serve`` wrote to stderr.
    """
    port = free_port()
    out_path, err_path = tmp_path / "serve.out", tmp_path / "serve.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        process = subprocess.Popen(
            [*command(entry), "serve", "--port", str(port), *extra],
            env=cli_env(database_url),
            stdout=out,
            stderr=err,
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            wait_until_serving(process, base_url, err_path)
            yield Server(base_url=base_url, process=process, log_path=err_path)
        finally:
            stop_server(process)


class TestServe:
    @pytest.mark.parametrize("entry", ENTRY_POINTS)
    def test_empty_database_hint_then_serves(
        self, empty_database: str, tmp_path: Path, entry: str
    ) -> None:
        with serve(empty_database, tmp_path, entry) as server:
            hint = server.logs()
            assert "No accounts yet" in hint
            assert 'eventyard accounts create "My Company"' in hint
            with httpx.Client(base_url=server.base_url, timeout=30) as http:
                assert http.get("/healthz").json() == {"status": "ok"}
                # serve applied the migrations before it started.
                assert http.get("/readyz").json() == {"status": "ok", "database": "ok"}
        assert server.process.returncode is not None
        assert {"accounts", "contacts", "activities"} <= table_names(empty_database)

    def test_without_a_worker_count_it_chooses_one_and_says_why(
        self, empty_database: str, tmp_path: Path
    ) -> None:
        """docs/operations.md: "Unset (`0`), `serve` chooses the count and says so in its
        first log line (`serving with 1 server process: …`): one process on SQLite"."""
        with serve(empty_database, tmp_path) as server:
            lines = [
                orjson.loads(line)
                for line in server.logs().splitlines()
                if line.startswith("{") and "serving with" in line
            ]
        assert len(lines) == 1, server.logs()
        assert lines[0]["workers"] == 1
        assert lines[0]["msg"].startswith("serving with 1 server process: ")
        assert "--workers" in lines[0]["msg"]

    def test_a_worker_count_given_is_used_and_logged_as_asked(
        self, empty_database: str, tmp_path: Path
    ) -> None:
        with serve(empty_database, tmp_path, "module", "--workers", "2") as server:
            deadline = time.monotonic() + 60
            while server.logs().count("Started server process") < 2:
                assert time.monotonic() < deadline, server.logs()
                time.sleep(0.1)
            assert "serving with 2 server processes: as asked" in server.logs()

    def test_serves_the_accounts_the_cli_created(self, empty_database: str, tmp_path: Path) -> None:
        created = create_account_json(empty_database, "Acme Retail")
        identity = f"serve-{uuid.uuid4().hex[:8]}"

        with serve(empty_database, tmp_path) as server:
            assert "No accounts yet" not in server.logs()
            with httpx.Client(base_url=server.base_url, timeout=30) as http:
                [contact] = upload_and_look_up(http, created, identity)
                assert contact["status"] == "known"

    def test_workers_share_their_metrics(self, empty_database: str, tmp_path: Path) -> None:
        """docs/operations.md: "`--host`, `--port` and `--workers` override the
        settings"; "`eventyard serve --workers N` (N > 1) points
        `PROMETHEUS_MULTIPROC_DIR` at a fresh temporary directory ..., and whichever
        worker answers `/metrics` reports the sum over all of them"."""
        requests = 20

        def healthz_count(base_url: str) -> float:
            # A fresh connection each time, so any worker may answer.
            r = httpx.get(f"{base_url}/metrics", timeout=30)
            assert r.status_code == 200, r.text
            total = 0.0
            for family in text_string_to_metric_families(r.text):
                for sample in family.samples:
                    if sample.name == "eventyard_http_requests_total" and sample.labels == {
                        "route": "/healthz",
                        "method": "GET",
                        "status": "200",
                    }:
                        total += sample.value
            return total

        with serve(
            empty_database, tmp_path, "module", "--host", "127.0.0.1", "--workers", "2"
        ) as server:
            assert server.base_url.startswith("http://127.0.0.1:")
            # Both workers are up before the requests, so either may answer them.
            deadline = time.monotonic() + 60
            while server.logs().count("Started server process") < 2:
                assert time.monotonic() < deadline, server.logs()
                time.sleep(0.1)
            before = healthz_count(server.base_url)
            for _ in range(requests):
                r = httpx.get(f"{server.base_url}/healthz", timeout=30)
                assert r.json() == {"status": "ok"}
            # Every scrape, whichever worker answers it, sees all of them.
            for _ in range(10):
                assert healthz_count(server.base_url) - before == requests


class TestUsage:
    def test_help_lists_the_commands(self) -> None:
        result = run(None, "--help", entry="script")
        for name in ("serve", "db", "accounts"):
            assert name in result.stdout

    def test_empty_account_name_is_a_clean_error(self, tmp_path: Path) -> None:
        result = run(f"sqlite:///{tmp_path / 'x.db'}", "accounts", "create", "   ", check=False)
        assert result.returncode != 0
        assert "name" in result.stderr
        assert "Traceback" not in result.stdout + result.stderr

    @pytest.mark.parametrize(
        ("name", "value", "message"),
        [
            ("EVENTYARD_URL_ALLOWLIST", "10.0.0.0/8, 127.0.0.1/33", "'127.0.0.1/33' is not a CIDR"),
            ("EVENTYARD_URL_ALLOWLIST", "localhost", "'localhost' is not a CIDR"),
            ("EVENTYARD_PORT", "http", "valid integer"),
        ],
    )
    def test_a_bad_setting_stops_serve_before_it_starts(
        self, tmp_path: Path, name: str, value: str, message: str
    ) -> None:
        """A typo in the SSRF allow-list (issue 9) must not surface at the first import
        that happens to read it: serve refuses to start and names the variable."""
        port = str(free_port())
        result = subprocess.run(
            [*command("module"), "serve", "--port", port],
            env=cli_env(f"sqlite:///{tmp_path / 'x.db'}", **{name: value}),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 2, (result.stdout, result.stderr)
        assert name in result.stderr
        assert message in result.stderr.replace("\n", " ")
        assert "Traceback" not in result.stderr
        assert not (tmp_path / "x.db").exists(), "nothing was done before the refusal"

    def test_accounts_list_is_readable_in_a_pipe(self, tmp_path: Path) -> None:
        """Piped to grep or a file (no terminal), every row keeps its full id and name."""
        url = f"sqlite:///{tmp_path / 'x.db'}"
        name = "Acme Widgets International Holdings"
        created = create_account_json(url, name)
        env = cli_env(url)
        env.pop("COLUMNS")
        result = subprocess.run(
            [*command("module"), "accounts", "list"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        [row] = [line for line in result.stdout.splitlines() if created["account_id"] in line]
        assert name in row
