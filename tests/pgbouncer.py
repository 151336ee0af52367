"""A PgBouncer of the test run's own, in transaction pooling mode, in front of a PostgreSQL.

Debian's ``pgbouncer`` package (``./scripts/test`` installs it): one process
on a free loopback port, ``pool_mode = transaction``, trust authentication,
and a wildcard database entry, so that every database of the server behind
it (the run's scratch databases included) is reachable under its own name.
PgBouncer refuses to run as root; as root it runs as the ``postgres`` OS
user (its ``-u`` option).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.support import free_port

PGBOUNCER = "/usr/sbin/pgbouncer"
START_TIMEOUT_SECONDS = 30


def pgbouncer_binary() -> str | None:
    """PgBouncer's path when installed (Debian puts it in /usr/sbin, outside a user's PATH)."""
    if os.access(PGBOUNCER, os.X_OK):
        return PGBOUNCER
    return shutil.which("pgbouncer")


@dataclass
class PgBouncer:
    """A running PgBouncer: :meth:`url` turns a PostgreSQL URL into the same one through it."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes]

    def url(self, direct_url: str) -> str:
        parsed = make_url(direct_url).set(host="127.0.0.1", port=self.port)
        return parsed.render_as_string(hide_password=False)

    def log(self) -> str:
        path = self.directory / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _config(upstream: str, port: int, directory: Path) -> str:
    server = make_url(upstream)
    host = server.host or "127.0.0.1"
    upstream_port = server.port or 5432
    user = server.username or "postgres"
    return f"""\
[databases]
* = host={host} port={upstream_port} user={user}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory}/users.txt
pool_mode = transaction
default_pool_size = 20
max_client_conn = 1000
max_db_connections = 40
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
logfile = {directory}/pgbouncer.log
pidfile = {directory}/pgbouncer.pid
admin_users = {user}
"""


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def running_pgbouncer(upstream_url: str) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode before the server of ``upstream_url``, stopped at the end."""
    binary = pgbouncer_binary()
    if binary is None:
        raise RuntimeError("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    directory = Path(tempfile.mkdtemp(prefix="eventyard-pgbouncer-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(directory, owner.pw_uid, owner.pw_gid)
        as_user = ["-u", "postgres"]  # PgBouncer's own switch: the signals reach it
    port = free_port()
    user = make_url(upstream_url).username or "postgres"
    (directory / "users.txt").write_text(f'"{user}" ""\n')
    config = directory / "pgbouncer.ini"
    config.write_text(_config(upstream_url, port, directory))
    process = subprocess.Popen(
        [binary, *as_user, str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    bouncer = PgBouncer(port, directory, process)
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _listening(port):
            if process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited with {process.returncode}:\n{bouncer.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"pgbouncer did not listen on {port}:\n{bouncer.log()}")
            time.sleep(0.05)
        yield bouncer
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(directory, ignore_errors=True)
