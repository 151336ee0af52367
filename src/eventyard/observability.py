"""JSON log lines with a request id, and Prometheus metrics.

Credentials never reach the logs: request lines carry the path without its
query string (Netcore's bulk upload puts the API key there) and no headers.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventyard.core.model import ReplicaStatus

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
log = logging.getLogger("eventyard")

_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            # `serve --workers N` interleaves N processes' lines in one stream.
            "pid": record.process,
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("eventyard", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level)
        logger.propagate = False
    # uvicorn's access log prints query strings, which may hold API keys;
    # our own request line below replaces it.
    logging.getLogger("uvicorn.access").disabled = True


@dataclass
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    events: Counter
    jobs: Counter
    ingest_groups: Histogram
    refusals: Counter
    deliveries: Counter
    delivery_lag: Gauge
    reads: Counter
    replica_lag: Gauge
    replica_usable: Gauge

    @classmethod
    def create(cls) -> Metrics:
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            requests=Counter(
                "eventyard_http_requests_total",
                "HTTP requests by route, method and status",
                ["route", "method", "status"],
                registry=registry,
            ),
            latency=Histogram(
                "eventyard_http_request_duration_seconds",
                "HTTP request latency by route",
                ["route", "method"],
                registry=registry,
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            ),
            events=Counter(
                "eventyard_events_total",
                "Events received per dialect by outcome (accepted, rejected, skipped)",
                ["dialect", "outcome"],
                registry=registry,
            ),
            jobs=Counter(
                "eventyard_jobs_total",
                "Job attempts by kind and outcome (completed, failed, retried, lease_lost)",
                ["kind", "status"],
                registry=registry,
            ),
            ingest_groups=Histogram(
                "eventyard_ingest_group_commit_requests",
                "Ingest requests stored per group commit (one transaction, one fsync)",
                registry=registry,
                buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            ),
            refusals=Counter(
                "eventyard_credential_refusals_total",
                "Requests refused for their credential, by kind and reason "
                "(unknown, revoked, expired)",
                ["kind", "reason"],
                registry=registry,
            ),
            deliveries=Counter(
                "eventyard_destination_activities_total",
                "Activities per destination by outcome (delivered, dead) and failed "
                "delivery attempts (failed_attempt)",
                ["destination", "outcome"],
                registry=registry,
            ),
            delivery_lag=Gauge(
                "eventyard_destination_lag_seconds",
                "How long the activities of a destination's last delivery waited in its outbox",
                ["destination"],
                registry=registry,
                multiprocess_mode="max",
            ),
            reads=Counter(
                "eventyard_database_reads_total",
                "Read transactions of the routes that tolerate lag, by where they ran "
                "(replica, primary)",
                ["target"],
                registry=registry,
            ),
            replica_lag=Gauge(
                "eventyard_read_replica_lag_seconds",
                "How far each read replica was behind the primary at its last check",
                ["replica"],
                registry=registry,
                multiprocess_mode="max",
            ),
            replica_usable=Gauge(
                "eventyard_read_replica_usable",
                "1 while a read replica serves reads, 0 while it is down or lagging",
                ["replica"],
                registry=registry,
                multiprocess_mode="min",
            ),
        )

    def exposition(self) -> bytes:
        """The metrics in Prometheus text format.

        With several server processes (``PROMETHEUS_MULTIPROC_DIR`` set by
        ``eventyard serve --workers N``) every process writes its samples to
        that directory and any of them reports the sum of all.
        """
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return bytes(generate_latest(registry))
        return bytes(generate_latest(self.registry))

    def count_events(self, dialect: str, outcome: str, n: int) -> None:
        if n:
            self.events.labels(dialect, outcome).inc(n)

    def count_job(self, kind: str, status: str) -> None:
        self.jobs.labels(kind, status).inc()

    def count_group(self, requests: int) -> None:
        self.ingest_groups.observe(requests)

    def count_refusal(self, kind: str, reason: str) -> None:
        self.refusals.labels(kind, reason).inc()

    def count_delivery(self, destination_id: str, outcome: str, n: int) -> None:
        if n:
            self.deliveries.labels(destination_id, outcome).inc(n)

    def set_delivery_lag(self, destination_id: str, seconds: float) -> None:
        self.delivery_lag.labels(destination_id).set(seconds)

    def count_read(self, target: str) -> None:
        self.reads.labels(target).inc()

    def observe_replicas(self, statuses: Sequence[ReplicaStatus]) -> None:
        """The read replicas' state as just checked (lag is NaN for one that is down)."""
        for status in statuses:
            lag = status.lag_seconds
            self.replica_lag.labels(status.name).set(math.nan if lag is None else lag)
            self.replica_usable.labels(status.name).set(1 if status.state == "ok" else 0)


class RequestContextMiddleware:
    """Request id, one JSON log line and the HTTP metrics for every request."""

    def __init__(
        self, app: ASGIApp, metrics: Metrics, render_unexpected: Callable[[str], Response]
    ) -> None:
        self.app = app
        self.metrics = metrics
        # Builds the 500 response for a path (each dialect has its own shape).
        self.render_unexpected = render_unexpected
        # Request ids: this process's random prefix and a counter, 32 hex
        # digits like a UUID's, unique across processes and restarts without
        # a uuid4 (a getrandom call) per request.
        prefix = os.urandom(8).hex()
        counter = itertools.count()
        self.new_request_id: Callable[[], str] = lambda: f"{prefix}{next(counter):016x}"
        # The labelled metric of each (route, method[, status]), looked up once.
        self._counted: dict[tuple[str, str, str], Any] = {}
        self._timed: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else None
        request_id = request_id or self.new_request_id()
        token = request_id_var.set(request_id)
        status = 500
        started = time.perf_counter()

        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Logged here, while the request id is still set, and answered in
            # the shape of the dialect the client speaks.
            log.exception("unhandled error", extra={"path": scope["path"]})
            if response_started:
                raise
            await self.render_unexpected(scope["path"])(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.observe(template, scope["method"], status, elapsed)
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": template,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            request_id_var.reset(token)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count the request and time it in the HTTP metrics."""
        counted = self._counted.get((route, method, str(status)))
        if counted is None:
            counted = self.metrics.requests.labels(route, method, str(status))
            self._counted[(route, method, str(status))] = counted
        timed = self._timed.get((route, method))
        if timed is None:
            timed = self.metrics.latency.labels(route, method)
            self._timed[(route, method)] = timed
        counted.inc()
        timed.observe(seconds)
