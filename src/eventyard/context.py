"""What every route needs, built once by ``create_app`` and kept on ``app.state``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import Request

from eventyard.core.ratelimit import RateLimiter
from eventyard.observability import Metrics
from eventyard.services.accounts import CredentialCache
from eventyard.services.ports import Store
from eventyard.settings import Settings


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class AppContext:
    settings: Settings
    store: Store
    metrics: Metrics
    credentials: CredentialCache
    now: Callable[[], datetime] = field(default=utc_now)
    #: Wakes this process's job worker after a job was committed; ``None``
    #: when the process runs no worker (``EVENTYARD_RUN_WORKER=false``).
    wake: Callable[[], None] | None = None
    #: Per-credential request rate limits (None: unlimited).
    rate_limiter: RateLimiter | None = None


def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx
