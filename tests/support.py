"""Helpers shared by the test modules and the benchmarks: servers, databases, sample events."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from starlette.routing import BaseRoute

from eventyard.core.model import NewAccount
from eventyard.dialects.registry import create_account
from eventyard.storage.database import Database
from eventyard.storage.engine import normalize_database_url
from eventyard.storage.migrate import upgrade_database

ROOT = Path(__file__).resolve().parents[1]
PAYLOADS = Path(__file__).parent / "payloads"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
#: How long a starting server may take to answer; generous for a loaded machine.
START_TIMEOUT_SECONDS = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def scratch_postgres_database(admin_url: str) -> Iterator[str]:
    """A new, empty database ``eventyard_test_<hex>`` beside ``admin_url``; yields its URL.

    At the end it is dropped ``WITH (FORCE)``, so connections a test or a
    server left open do not keep it alive.
    """
    admin = create_engine(normalize_database_url(admin_url), isolation_level="AUTOCOMMIT")
    name = f"eventyard_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextmanager
def own_database(backend: str, directory: Path) -> Iterator[str]:
    """A migrated database of ``backend`` for one test or module, which no other
    server's worker looks at: a SQLite file in ``directory`` or a scratch PostgreSQL
    database."""
    if backend == "sqlite":
        url = f"sqlite:///{directory / 'own.db'}"
        upgrade_database(url)
        yield url
        return
    admin_url = os.environ.get("EVENTYARD_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    with scratch_postgres_database(admin_url) as url:
        upgrade_database(url)
        yield url


def run_cli(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m eventyard ARGS`` on ``database_url``, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "eventyard", *args],
        env={**os.environ, "EVENTYARD_DATABASE_URL": database_url, **env},
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def create_account_at(database_url: str, name: str) -> NewAccount:
    """Create an account in the database at ``database_url``, for a server to serve."""
    store = Database.from_url(database_url, pool_size=1)
    try:
        return create_account(store, name)
    finally:
        store.dispose()


@dataclass(frozen=True)
class TlsFiles:
    """A certificate for 127.0.0.1 and localhost, signed by a CA made for the test.

    For SDKs that speak only HTTPS: the server is started with ``cert`` and
    ``key``, and the SDK's own CA setting (``REQUESTS_CA_BUNDLE``,
    ``NODE_EXTRA_CA_CERTS``, an ``ssl`` context ...) is pointed at ``ca``.
    """

    ca: Path
    cert: Path
    key: Path


def tls_files(directory: Path) -> TlsFiles:
    """Make a CA and a server certificate (``trustme``) and write them into ``directory``."""
    import trustme

    directory.mkdir(parents=True, exist_ok=True)
    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1", "localhost")
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    authority.cert_pem.write_to_path(str(files.ca))
    issued.cert_chain_pems[0].write_to_path(str(files.cert))
    for intermediate in issued.cert_chain_pems[1:]:
        intermediate.write_to_path(str(files.cert), append=True)
    issued.private_key_pem.write_to_path(str(files.key))
    return files


@dataclass
class Server:
    """A real eventyard server process on a loopback port."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    #: The CA that signed the server's certificate, when it serves HTTPS.
    ca: Path | None = None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


def wait_until_serving(
    process: subprocess.Popen[bytes],
    base_url: str,
    log_path: Path,
    path: str = "/healthz",
    *,
    ca: Path | None = None,
) -> None:
    """Return once ``base_url + path`` answers 200; raise with the log if the process dies first."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"server exited with {process.returncode}:\n{log_path.read_text(errors='replace')}"
            )
        try:
            verify = ssl.create_default_context(cafile=str(ca)) if ca else True
            answer = httpx.get(f"{base_url}{path}", timeout=1, verify=verify)
            if answer.status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"server did not answer:\n{log_path.read_text(errors='replace')}")
        time.sleep(0.1)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Ask the server to shut down; kill it if it has not within 20 s."""
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running_server(
    database_url: str,
    log_path: Path,
    extra_env: dict[str, str] | None = None,
    *,
    workers: int = 1,
    ready_path: str = "/healthz",
    body_timeout_seconds: float | None = 2,
    port: int | None = None,
    tls: TlsFiles | None = None,
) -> Iterator[Server]:
    """Start ``uvicorn eventyard.app:create_app_from_env`` and wait until ``ready_path`` answers.

    ``body_timeout_seconds`` is short by default so that the slow-body test
    waits 2 s rather than 30; ``None`` leaves the server's own default (the
    benchmark measures default settings). ``extra_env`` comes last and wins.
    ``port`` lets a restarted server come back where its clients are (a free one by default).
    ``tls`` serves HTTPS with that certificate (``Server.ca`` names its CA).
    """
    port = port or free_port()
    env = {
        **os.environ,
        "EVENTYARD_DATABASE_URL": database_url,
        # Export files go beside the log, never into the working directory.
        "EVENTYARD_EXPORT_DIR": str(log_path.parent / "exports"),
    }
    if body_timeout_seconds is not None:
        env["EVENTYARD_BODY_TIMEOUT_SECONDS"] = str(body_timeout_seconds)
    env.update(extra_env or {})
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "eventyard.app:create_app_from_env",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
    ]
    scheme = "http"
    if tls is not None:
        command += ["--ssl-certfile", str(tls.cert), "--ssl-keyfile", str(tls.key)]
        scheme = "https"
    base_url = f"{scheme}://127.0.0.1:{port}"
    ca = None if tls is None else tls.ca
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            wait_until_serving(process, base_url, log_path, ready_path, ca=ca)
            yield Server(base_url=base_url, process=process, log_path=log_path, ca=ca)
        finally:
            stop_server(process)


def netcore_event(**overrides: Any) -> dict[str, Any]:
    """A valid Netcore activity; keyword arguments replace or (with None) drop fields."""
    event: dict[str, Any] = {
        "asset_id": "55a6d1d3ac4d5253ca4afd9636442434",
        "activity_name": "Add To Cart",
        "timestamp": "2025-09-30T08:40:46Z",
        "identity": "customer-1",
        "activity_source": "web",
        "activity_params": {"currency": "INR", "total_item_qty": 1},
    }
    for key, value in overrides.items():
        if value is None:
            event.pop(key, None)
        else:
            event[key] = value
    return event


def admin(account: NewAccount) -> dict[str, str]:
    """Headers for eventyard's own API as ``account``'s administrator."""
    return {"Authorization": f"Bearer {account.admin_token}"}


def find_contact(http: httpx.Client, account: NewAccount, identifier: str) -> dict[str, Any] | None:
    """The contact owning ``KIND:VALUE`` in ``account`` (read API), or None."""
    r = http.get("/api/v1/contacts", params={"identifier": identifier}, headers=admin(account))
    assert r.status_code == 200, r.text
    contacts = r.json()["contacts"]
    assert len(contacts) <= 1, contacts
    return contacts[0] if contacts else None


def read_contact(http: httpx.Client, account: NewAccount, identifier: str) -> dict[str, Any]:
    """The full contact (``GET /api/v1/contacts/{id}``) owning ``KIND:VALUE``; it must exist."""
    found = find_contact(http, account, identifier)
    assert found is not None, f"no contact for {identifier}"
    r = http.get(f"/api/v1/contacts/{found['id']}", headers=admin(account))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def activities_by_id(
    http: httpx.Client, account: NewAccount, contact_id: str, *, one_page: bool = False
) -> list[dict[str, Any]]:
    """Every stored activity of the contact, newest first, read 1,000 at a time.

    ``one_page`` reads a single page and asserts it is the last (no ``next_cursor``):
    for tests that mean to have fewer than 1,000 activities.
    """
    stored: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 1000}
        if cursor is not None:
            params["cursor"] = cursor
        r = http.get(
            f"/api/v1/contacts/{contact_id}/activities", params=params, headers=admin(account)
        )
        assert r.status_code == 200, r.text
        page = r.json()
        stored += page["activities"]
        cursor = page["next_cursor"]
        if one_page:
            assert cursor is None, "more than 1000 activities where one page was expected"
        if cursor is None:
            return stored


def activities_of(
    http: httpx.Client, account: NewAccount, identifier: str, *, one_page: bool = False
) -> list[dict[str, Any]]:
    """Every stored activity of the contact owning ``KIND:VALUE`` (see
    :func:`activities_by_id`); [] when there is no such contact."""
    found = find_contact(http, account, identifier)
    if found is None:
        return []
    return activities_by_id(http, account, found["id"], one_page=one_page)


def identity_events(http: httpx.Client, account: NewAccount, contact_id: str) -> list[Any]:
    """The contact's identity history (``GET /api/v1/contacts/{id}/identity-events``)."""
    r = http.get(f"/api/v1/contacts/{contact_id}/identity-events", headers=admin(account))
    assert r.status_code == 200, r.text
    return list(r.json()["identity_events"])


def identifier_pairs(contact: dict[str, Any]) -> set[tuple[str, str]]:
    """A contact's identifiers as ``{(kind, value)}``."""
    return {(i["kind"], i["value"]) for i in contact["identifiers"]}


def upload_netcore_event(http: httpx.Client, account: NewAccount, identity: str) -> None:
    """Netcore's ``/v1/activity/upload`` of one activity of ``identity``, which must be
    accepted: the person is then first seen through Netcore."""
    r = http.post(
        "/v1/activity/upload",
        json=[netcore_event(identity=identity)],
        headers={"api-key": account.netcore_api_key},
    )
    assert r.status_code == 200, r.text


def missing_tool(message: str, test: str) -> NoReturn:
    """A tool ``test`` needs is missing: fail under ``CI=true``, skip loudly elsewhere."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: the {test} test must run)")
    pytest.skip(f"SKIPPING THE {test.upper()} TEST: {message}")


def npm_install(folder: Path, spec: str, test: str) -> Path:
    """``npm install SPEC`` into ``folder`` (no audit, fund or lock file); its ``node_modules``.

    Without node and npm, or when the install fails, :func:`missing_tool` for ``test``.
    """
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        missing_tool(f"node and npm are needed to install and run {spec}", test)
    run = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--no-package-lock", spec],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if run.returncode != 0:
        missing_tool(f"npm install {spec} failed:\n{run.stdout}\n{run.stderr}", test)
    return folder / "node_modules"


def app_routes(prefix: str) -> list[APIRoute]:
    """Every route of eventyard's own whose path starts with ``prefix`` (no dialect's),
    read from the application itself, so that a test walking them covers a new one too.

    FastAPI lists each ``include_router`` as one entry holding its router; the
    routers here carry their prefix in their routes' paths, so opening them is
    enough (one included with a prefix of its own would make its paths miss).
    """
    # Imported here: most tests never build an application in-process.
    from eventyard.app import create_app
    from eventyard.settings import Settings

    unopened = Path("/nonexistent/never-opened.db")
    app = create_app(Settings(database_url=f"sqlite:///{unopened}", run_worker=False))

    def opened(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
        for route in routes:
            if isinstance(route, APIRoute):
                yield route
            included = getattr(route, "original_router", None)
            if included is not None:
                yield from opened(included.routes)

    # Dialects' vendor paths may sit under eventyard's own prefixes (Customer.io's
    # /api/v1/customers): a walk of eventyard's API leaves them out.
    from eventyard.dialects.registry import BUILTIN_DIALECTS

    vendor = {id(r) for d in BUILTIN_DIALECTS for r in d.router.routes}
    return [r for r in opened(app.routes) if r.path.startswith(prefix) and id(r) not in vendor]


@contextmanager
def filled_database(
    request: pytest.FixtureRequest, tmp_path: Path, fill: Callable[[str], None]
) -> Iterator[str]:
    """A database of the test's backend (``request.param``: sqlite or postgresql) that
    ``fill(url)`` has brought to an older revision and filled: for migration tests."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        fill(url)
        yield url
        return
    with scratch_postgres_database(str(request.getfixturevalue("postgres_url"))) as url:
        fill(url)
        yield url
