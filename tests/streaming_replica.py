"""A PostgreSQL streaming replica of a private cluster, for the read replica tests.

``pg_basebackup -R -X stream`` copies the primary (a cluster of the test's
own, from tests/reliability/private_postgres.py, whose ``initdb`` allows
replication connections from 127.0.0.1) into a directory and writes the
``primary_conninfo`` and ``standby.signal`` that make it a hot standby;
``pg_ctl start`` starts it on a free port. As root both run as the
``postgres`` OS user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from tests.reliability.private_postgres import PrivateCluster
from tests.support import free_port


@contextmanager
def streaming_replica(primary: PrivateCluster) -> Iterator[PrivateCluster]:
    """A hot standby streaming from ``primary``, started; stopped and deleted at the end."""
    directory = Path(tempfile.mkdtemp(prefix="eventyard-replica-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(directory, owner.pw_uid, owner.pw_gid)
    replica = PrivateCluster(primary.bin, directory / "data", free_port(), primary.as_user)
    try:
        subprocess.run(
            [
                *primary.as_user,
                str(primary.bin / "pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(primary.port),
                "-U",
                "postgres",
                "-D",
                str(replica.data),
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        replica.start()
        try:
            yield replica
        finally:
            with suppress(subprocess.CalledProcessError):  # already stopped
                replica.stop_immediately()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
