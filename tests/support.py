"""Helpers shared by the test modules: servers, accounts, sample events."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

PAYLOADS = Path(__file__).parent / "payloads"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A real uvicorn process serving eventyard on a loopback port."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def running_server(
    database_url: str, log_path: Path, extra_env: dict[str, str] | None = None
) -> Iterator[Server]:
    """Start ``uvicorn eventyard.app:create_app_from_env`` and wait until it answers."""
    port = free_port()
    env = {
        **os.environ,
        "EVENTYARD_DATABASE_URL": database_url,
        "EVENTYARD_BODY_TIMEOUT_SECONDS": "2",
        **(extra_env or {}),
    }
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "eventyard.app:create_app_from_env",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{log_path.read_text()}")
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield Server(base_url=base_url, process=process, log_path=log_path)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log_file.close()


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
