"""A PostgreSQL instance of a test's own, to stop and start without touching anyone else's.

The outage test stops its database with ``pg_ctl stop -m immediate`` (what a
crash or an operator's emergency stop does); doing that to the machine's
shared cluster would fail every other test running at the time. So it gets
a cluster of its own: ``initdb`` into a temporary directory with the
server binaries under ``/usr/lib/postgresql/*/bin``, on a free loopback
port, trust authentication. ``initdb`` and ``pg_ctl`` refuse to run as
root; as root they run as the ``postgres`` OS user (``runuser``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.support import free_port


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL server's ``bin`` directory, if any."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3])
    )
    return Path(found[-1]).parent if found else None


@dataclass
class PrivateCluster:
    """A running PostgreSQL of one test: ``url`` names its ``postgres`` database."""

    bin: Path
    data: Path
    port: int
    as_user: list[str]

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data.parent} "
            "-c shared_buffers=16MB -c max_connections=60"
        )
        self._pg_ctl("-l", str(self.data.parent / "postgres.log"), "-o", options, "start")

    def stop_immediately(self) -> None:
        """``pg_ctl stop -m immediate``: every backend ends at once, no checkpoint."""
        self._pg_ctl("-m", "immediate", "stop")

    def log(self) -> str:
        path = self.data.parent / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def private_postgres() -> Iterator[PrivateCluster]:
    """A fresh cluster, started; stopped and deleted at the end."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    directory = Path(tempfile.mkdtemp(prefix="eventyard-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(directory, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    cluster = PrivateCluster(bin_dir, directory / "data", free_port(), as_user)
    try:
        subprocess.run(
            [
                *as_user,
                str(bin_dir / "initdb"),
                "-D",
                str(cluster.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        cluster.start()
        try:
            yield cluster
        finally:
            with suppress(subprocess.CalledProcessError):  # already stopped
                cluster.stop_immediately()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
