"""Hosts of the multi-host test: network namespaces, PostgreSQL with a streaming replica,
PgBouncer, HAProxy and eventyard nodes, each a real process started by the test.

Layout (one private /24, picked free at random in 10.0.0.0/8, a bridge in the
root namespace at ``.1``)::

    127.0.0.1  clients --> HAProxy --+--> node1 (.11, namespace, serve --workers 2 --no-worker)
                                     +--> node2 (.12, namespace, serve --workers 2 --no-worker)
                                          worker (.13, namespace, eventyard worker)
    .1 (root)  PgBouncer (transaction pooling) --> PostgreSQL primary <-- streaming replica

Each host namespace holds one end of a veth pair (``eth0``, its address on the
/24, its only route the /24 itself: no default route, so a host reaches the
root namespace's services and nothing else); the other end is a port of the
bridge. PostgreSQL, the replica and PgBouncer listen on 127.0.0.1 and on the
bridge's address; HAProxy on 127.0.0.1 only, where the test's clients are.

PostgreSQL's ``initdb``, ``pg_ctl`` and PgBouncer refuse to run as root: they
run as the ``postgres`` OS user. Namespaces need root: :func:`missing_tools`
says what is missing for the test to run.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.reliability.private_postgres import postgres_bin
from tests.support import START_TIMEOUT_SECONDS, free_port

#: Where a node listens inside its namespace.
NODE_PORT = 8080


def missing_tools() -> str | None:
    """Why the multi-host test cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "haproxy", "pgbouncer"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return (
                f"{tool} is missing: apt-get install iproute2 haproxy pgbouncer (scripts/test does)"
            )
    if postgres_bin() is None:
        return "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no postgres OS user to run PostgreSQL and PgBouncer as"
    return None


def tool(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=60)


def wait_for(what: str, ready: Callable[[], bool], timeout: float = START_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up within {timeout} s")
        time.sleep(0.1)


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.0.0.0/8 that no interface of this machine is on."""
    used = subprocess.run(
        ["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=True
    ).stdout
    networks = [
        ipaddress.IPv4Interface(word).network
        for line in used.splitlines()
        for word in line.split()
        if "/" in word and word[0].isdigit()
    ]
    for _ in range(100):
        candidate = ipaddress.IPv4Network(
            f"10.{random.randrange(64, 250)}.{random.randrange(1, 250)}.0/24"
        )
        if not any(candidate.overlaps(n) for n in networks):
            return candidate
    raise RuntimeError("no free /24 in 10.0.0.0/8")


@dataclass
class Network:
    """A bridge in the root namespace and host namespaces on one private /24."""

    tag: str
    subnet: ipaddress.IPv4Network
    hosts: dict[str, str] = field(default_factory=dict)

    @property
    def bridge(self) -> str:
        return f"ey{self.tag}br"

    @property
    def gateway(self) -> str:
        """The root namespace's address on the /24, where the database side listens."""
        return str(self.subnet[1])

    def namespace(self, host: str) -> str:
        return f"eventyard-{self.tag}-{host}"

    def add_host(self, host: str) -> str:
        """A namespace for ``host`` linked to the bridge; its address."""
        number = 11 + len(self.hosts)
        address = str(self.subnet[number])
        namespace = self.namespace(host)
        outside, inside = f"ey{self.tag}{number}r", f"ey{self.tag}{number}h"
        run("ip", "netns", "add", namespace)
        self.hosts[host] = address
        run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        run("ip", "link", "set", outside, "master", self.bridge)
        run("ip", "link", "set", outside, "up")
        run("ip", "link", "set", inside, "netns", namespace)
        inns = ("ip", "netns", "exec", namespace)
        run(*inns, "ip", "link", "set", inside, "name", "eth0")
        run(*inns, "ip", "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0")
        run(*inns, "ip", "link", "set", "eth0", "up")
        run(*inns, "ip", "link", "set", "lo", "up")
        return address

    def pids(self, host: str) -> list[int]:
        """Every process running in ``host``'s namespace."""
        out = subprocess.run(
            ["ip", "netns", "pids", self.namespace(host)], capture_output=True, text=True
        ).stdout
        return [int(p) for p in out.split()]

    def kill_all(self, host: str) -> int:
        """SIGKILL every process of ``host`` (a machine pulled from the rack); how many."""
        pids = self.pids(host)
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)

    def teardown(self) -> None:
        for host in list(self.hosts):
            self.kill_all(host)
            subprocess.run(["ip", "netns", "del", self.namespace(host)], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


@contextmanager
def private_network() -> Iterator[Network]:
    """The bridge, up, with the gateway address; torn down (namespaces too) at the end."""
    network = Network(uuid.uuid4().hex[:6], _free_subnet())
    try:
        run("ip", "link", "add", network.bridge, "type", "bridge")
        run("ip", "addr", "add", f"{network.gateway}/24", "dev", network.bridge)
        run("ip", "link", "set", network.bridge, "up")
        yield network
    finally:
        network.teardown()


def _give_to_postgres(path: Path) -> None:
    owner = pwd.getpwnam("postgres")
    os.chown(path, owner.pw_uid, owner.pw_gid)


@contextmanager
def postgres_directory() -> Iterator[Path]:
    """A temporary directory the ``postgres`` OS user owns (pytest's ``tmp_path`` is root's
    alone, closed to it), for the clusters and PgBouncer; deleted at the end."""
    directory = Path(tempfile.mkdtemp(prefix="eventyard-multihost-"))
    try:
        _give_to_postgres(directory)
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@dataclass
class Cluster:
    """One PostgreSQL server (primary or standby) of the test's own."""

    name: str
    bin: Path
    data: Path
    port: int
    listen: str

    @property
    def log_path(self) -> Path:
        return self.data.parent / f"{self.name}.log"

    def url(self, database: str = "postgres", host: str = "127.0.0.1") -> str:
        return f"postgresql://postgres@{host}:{self.port}/{database}"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60", *args],
            check=True,
            capture_output=True,
            timeout=90,
            user="postgres",
            group="postgres",
            extra_groups=[],
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses={self.listen} -k {self.data.parent} "
            "-c shared_buffers=32MB -c max_connections=100 -c fsync=off "
            "-c wal_level=replica -c max_wal_senders=4 -c hot_standby=on"
        )
        self._pg_ctl("-l", str(self.log_path), "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("-m", mode, "stop")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class DatabasePair:
    """A primary and its streaming replica (``pg_basebackup -R`` through a replication slot)."""

    primary: Cluster
    replica: Cluster

    def logs(self) -> str:
        return (
            f"--- primary\n{self.primary.log()[-4000:]}\n--- replica\n{self.replica.log()[-4000:]}"
        )


@contextmanager
def primary_and_replica(directory: Path, network: Network) -> Iterator[DatabasePair]:
    # ``directory``: one of :func:`postgres_directory`.
    """``initdb`` a primary listening on 127.0.0.1 and the network's gateway (trust for the
    /24 and for replication from 127.0.0.1), start it, clone a standby with
    ``pg_basebackup -R -C -S`` and start that too; both stopped at the end."""
    bin_dir = postgres_bin()
    assert bin_dir is not None
    listen = f"127.0.0.1,{network.gateway}"
    primary = Cluster("primary", bin_dir, directory / "primary", free_port(), listen)
    replica = Cluster("replica", bin_dir, directory / "replica", free_port(), listen)
    subprocess.run(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(primary.data),
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
        user="postgres",
        group="postgres",
        extra_groups=[],
    )
    with (primary.data / "pg_hba.conf").open("a") as hba:
        hba.write(f"host all all {network.subnet} trust\n")
        hba.write("host replication all 127.0.0.1/32 trust\n")
    with ExitStack() as stack:
        primary.start()
        stack.callback(primary.stop, "immediate")
        subprocess.run(
            [
                str(bin_dir / "pg_basebackup"),
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
                "-C",
                "-S",
                "eventyard_replica",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=120,
            user="postgres",
            group="postgres",
            extra_groups=[],
        )
        replica.start()
        stack.callback(lambda: suppress_stop(replica))
        yield DatabasePair(primary, replica)


def suppress_stop(cluster: Cluster) -> None:
    with suppress(subprocess.CalledProcessError):  # already stopped
        cluster.stop("immediate")


@dataclass
class Bouncer:
    """PgBouncer in transaction pooling mode in front of the primary."""

    directory: Path
    port: int
    listen: str
    primary: Cluster
    process: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> Path:
        return self.directory / "pgbouncer.ini"

    def url(self, host: str, database: str) -> str:
        return f"postgresql://postgres@{host}:{self.port}/{database}"

    def write_config(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        _give_to_postgres(self.directory)
        (self.directory / "userlist.txt").write_text('"postgres" ""\n')
        self.config.write_text(
            "[databases]\n"
            f"* = host=127.0.0.1 port={self.primary.port}\n"
            "[pgbouncer]\n"
            f"listen_addr = {self.listen}\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.directory / 'userlist.txt'}\n"
            "pool_mode = transaction\n"
            "max_client_conn = 1000\n"
            "default_pool_size = 40\n"
            "server_connect_timeout = 2\n"
            "server_login_retry = 1\n"
            "server_reset_query =\n"
            "ignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {self.directory / 'pgbouncer.log'}\n"
        )

    def start(self) -> None:
        if not self.config.exists():
            self.write_config()
        self.process = subprocess.Popen(
            [tool("pgbouncer"), str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            user="postgres",
            group="postgres",
            extra_groups=[],
        )
        wait_for("PgBouncer", self._accepts)

    def _accepts(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"PgBouncer exited:\n{self.log()}")
        with socket.socket() as s:
            s.settimeout(1)
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        """SIGTERM: PgBouncer drops every client and server connection at once."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)

    def log(self) -> str:
        path = self.directory / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""


#: What HAProxy answers when no node could: a 503 with Retry-After, the answer every
#: dialect's clients retry, rather than its own 502/503/504 pages.
BALANCER_UNAVAILABLE = (
    '{"status":"error","code":503,'
    '"message":"Service Unavailable | no node could answer; retry with the same Idempotency-Key"}'
)


def balancer_error_page() -> bytes:
    body = BALANCER_UNAVAILABLE.encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json\r\n"
        "Cache-Control: no-cache\r\n"
        "Connection: close\r\n"
        "Retry-After: 1\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode() + body


def haproxy_config(port: int, nodes: dict[str, str], error_page: Path, bind: str) -> str:
    """HAProxy in front of ``nodes`` (name: ``host:port``): a health check on ``/readyz``,
    retries on another node when one refuses or drops a connection before answering
    (``option redispatch``), and a 503 with Retry-After when none can answer."""
    servers = "\n".join(f"  server {name} {address} check" for name, address in nodes.items())
    return f"""global
  maxconn 2000
  tune.bufsize 65536

defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  timeout queue 10s
  retries 3
  option redispatch 1
  retry-on conn-failure empty-response
  errorfile 502 {error_page}
  errorfile 503 {error_page}
  errorfile 504 {error_page}

frontend eventyard
  bind {bind}:{port}
  default_backend nodes

backend nodes
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
  default-server inter 500ms fall 2 rise 2
{servers}
"""


@contextmanager
def haproxy(directory: Path, nodes: dict[str, str], bind: str = "127.0.0.1") -> Iterator[str]:
    """HAProxy on a free port of ``bind`` in front of ``nodes`` (name: ``host:port``), up
    once it answers and a node is in service; yields its base URL."""
    directory.mkdir(parents=True, exist_ok=True)
    error_page = directory / "unavailable.http"
    error_page.write_bytes(balancer_error_page())
    port = free_port()
    config = directory / "haproxy.cfg"
    config.write_text(haproxy_config(port, nodes, error_page, bind))
    log = directory / "haproxy.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [tool("haproxy"), "-db", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        base_url = f"http://{bind}:{port}"

        def listening() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"HAProxy exited:\n{log.read_text(errors='replace')}")
            try:
                return httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for("HAProxy", listening)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Node:
    """An eventyard process tree in a host namespace: ``serve`` or ``worker``."""

    host: str
    network: Network
    command: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    lives: int = 0

    @property
    def address(self) -> str:
        return self.network.hosts[self.host]

    @property
    def base_url(self) -> str:
        return f"http://{self.address}:{NODE_PORT}"

    def start(self, *, wait_ready: bool = True) -> None:
        self.lives += 1
        log = self.log_path.with_suffix(f".{self.lives}.log")
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                ["ip", "netns", "exec", self.network.namespace(self.host), *self.command],
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if wait_ready:
            self.wait_ready()

    def wait_ready(self) -> None:
        """Wait until the node's ``/readyz`` answers 200 (what HAProxy's check asks)."""
        wait_for(self.host, self._ready)

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.host} exited:\n{self.logs()}")
        try:
            return httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> int:
        """SIGKILL every process of the host; how many there were."""
        killed = self.network.kill_all(self.host)
        if self.process is not None:
            self.process.wait(30)
        return killed

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-3000:]
            for p in sorted(self.log_path.parent.glob(f"{self.log_path.stem}.*.log"))
        )


def serve_command(workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "eventyard",
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        str(NODE_PORT),
        "--workers",
        str(workers),
        "--no-worker",
    ]


def worker_command() -> list[str]:
    return [sys.executable, "-m", "eventyard", "worker"]
