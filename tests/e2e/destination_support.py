"""A real webhook receiver for the destination tests: an HTTP server on 127.0.0.1.

It checks each request's ``X-Eventyard-Signature`` with the secret it was
given, answers what the test asks (``answer_with``), can go away and come
back on the same port (``down``/``up``), and keeps what it took: every
request, and each activity id once per ``Idempotency-Key`` (a receiver that
honours the key, as the docs ask of one).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def activities(self) -> list[dict[str, Any]]:
        return list(orjson.loads(self.body)["activities"])


@dataclass
class WebhookReceiver:
    secret: str
    port: int = 0
    #: Every request, answered or not, in arrival order.
    requests: list[Received] = field(default_factory=list)
    #: The activities it took (2xx answers), once per Idempotency-Key.
    taken: list[dict[str, Any]] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    bad_signatures: int = 0
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    #: While set and not yet released, requests wait here before being answered.
    hold: threading.Event | None = None
    #: Requests whose body was read (answered or still held).
    requests_started: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def answer_with(self, status: int, **headers: str) -> None:
        with self.lock:
            self.status, self.headers = status, headers

    def up(self) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def taken_ids(self) -> list[str]:
        with self.lock:
            return [a["id"] for a in self.taken]


def _handler(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with receiver.lock:
                receiver.requests_started += 1
                hold = receiver.hold
            if hold is not None:
                hold.wait(60)
            headers = {k.lower(): v for k, v in self.headers.items()}
            expected = (
                "sha256=" + hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
            )
            with receiver.lock:
                status, extra = receiver.status, dict(receiver.headers)
                signed = hmac.compare_digest(headers.get("x-eventyard-signature", ""), expected)
                if not signed:
                    receiver.bad_signatures += 1
                    status = 401
                receiver.requests.append(Received(headers, body, status))
                key = headers.get("idempotency-key", "")
                if 200 <= status < 300 and key not in receiver.keys:
                    receiver.keys.add(key)
                    receiver.taken.extend(orjson.loads(body)["activities"])
            answer = b'{"ok":true}' if status < 300 else b'{"error":"refused"}'
            try:
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name.replace("_", "-"), value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except OSError:
                pass  # the sender is gone (killed): what it sent was taken all the same

    return Handler


SECRET = "s3cret-webhook-key"


@contextmanager
def webhook_receiver(secret: str = SECRET) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(secret)
    receiver.up()
    try:
        yield receiver
    finally:
        receiver.down()


def wait_for(condition: Callable[[], Any], timeout: float = 90, what: str = "condition") -> Any:
    """Poll ``condition`` until it is truthy; fail after ``timeout`` (a bound, not a measure)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
