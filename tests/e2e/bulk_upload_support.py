"""Real servers on loopback for the bulk upload tests: CSV files, callbacks, e-mail, S3.

Nothing is mocked: a threaded ``http.server`` serves the files and records the
callbacks, aiosmtpd receives the e-mails, and moto's server mode stands in for
S3 (no real S3 can run here; moto speaks its HTTP API, so boto3 runs unchanged).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller

from tests.support import free_port


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FileServer:
    """Serves ``root`` over HTTP; ``/redirect?to=URL`` redirects; POSTs are recorded.

    A POST to a path containing ``fail-first`` is answered 500 the first time.
    """

    root: Path
    base_url: str = ""
    deliveries: list[Delivery] = field(default_factory=list)
    _failed: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    def posts_to(self, path: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.path == path]


def _handler(files: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", parse_qs(parts.query)["to"][0])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            target = files.root / parts.path.lstrip("/")
            if not target.is_file():
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", str(target.stat().st_size))
            self.end_headers()
            with target.open("rb") as handle:
                while chunk := handle.read(1 << 16):
                    self.wfile.write(chunk)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with files._lock:
                files.deliveries.append(Delivery(self.path, dict(self.headers.items()), body))
                fail = "fail-first" in self.path and self.path not in files._failed
                files._failed.add(self.path)
            self.send_response(500 if fail else 204)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


@contextmanager
def file_server(root: Path, host: str = "127.0.0.1") -> Iterator[FileServer]:
    files = FileServer(root)
    httpd = ThreadingHTTPServer((host, 0), _handler(files))
    httpd.daemon_threads = True
    files.base_url = f"http://{host}:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield files
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


@dataclass
class SmtpServer:
    port: int
    inbox: _Inbox

    def to(self, address: str) -> list[Message]:
        return [m for rcpt, m in self.inbox.messages if address in rcpt]


@contextmanager
def smtp_server() -> Iterator[SmtpServer]:
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer(port, inbox)
    finally:
        controller.stop()


@contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 in server mode on a loopback port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def wait_for(condition: Callable[[], Any], timeout: float = 120, what: str = "condition") -> Any:
    """Poll until ``condition()`` is truthy; its value. Fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
