"""Per device and per user event rates, answered 429 as Amplitude documents it.

HTTP V2: "Amplitude throttles requests for users and devices that exceed 30
events per second (measured as an average over a recent time window)";
Batch: "Each API key can send up to 1000 events per second for any
individual device ID or user ID" (averaged over 30 s). eventyard counts
events with the server's token buckets (``core.ratelimit``): per account and
device or user, the documented rate on average, bursts of 30 seconds' worth.
Like the request limit it is kept per server process, and it is off when the
server's rate limit is (``rate_limit_per_second = 0``).

A request with a throttled device or user is refused whole (nothing stored):
the 429 lists the events of the throttled ids in ``throttled_events``, which
the SDK sends again after 30 s, and it sends the others again at once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import Request

from eventyard.core.ratelimit import RateLimiter
from eventyard.dialects.amplitude.errors import THROTTLED, AmplitudeError, amplitude_error

#: Seconds over which the documented rate is averaged (the bucket's burst).
WINDOW_SECONDS = 30
HTTPAPI_EPS = 30
BATCH_EPS = 1000


@dataclass(frozen=True, slots=True)
class Threshold:
    name: str
    eps: int


HTTPAPI = Threshold("httpapi", HTTPAPI_EPS)
BATCH = Threshold("batch", BATCH_EPS)


def limiter_for(request: Request, threshold: Threshold) -> RateLimiter | None:
    """The application's bucket set for ``threshold``; ``None`` when rate limits are off."""
    state = request.app.state
    ctx = getattr(state, "ctx", None)
    if ctx is None or ctx.rate_limiter is None or ctx.settings.rate_limit_per_second <= 0:
        return None
    limiters: dict[str, RateLimiter] | None = getattr(state, "amplitude_throttles", None)
    if limiters is None:
        limiters = {}
        state.amplitude_throttles = limiters
    return limiters.setdefault(
        threshold.name, RateLimiter(threshold.eps, threshold.eps * WINDOW_SECONDS)
    )


def check_throttle(
    limiter: RateLimiter,
    threshold: Threshold,
    account_id: str,
    ids: Sequence[tuple[str | None, str | None]],
) -> AmplitudeError | None:
    """The 429 when a device or user of ``ids`` (each event's) is beyond its rate, else None."""
    events_of: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, (device_id, user_id) in enumerate(ids):
        if device_id is not None:
            events_of[("device", device_id)].append(index)
        if user_id is not None:
            events_of[("user", user_id)].append(index)
    devices: dict[str, int] = {}
    users: dict[str, int] = {}
    throttled: set[int] = set()
    wait = 0.0
    for (kind, value), indexes in events_of.items():
        waited = limiter.acquire(f"{account_id}:{kind}:{value}", len(indexes))
        if waited > 0:
            wait = max(wait, waited)
            (devices if kind == "device" else users)[value] = len(indexes)
            throttled.update(indexes)
    if not throttled:
        return None
    error = amplitude_error(
        THROTTLED,
        429,
        code="rate_limited",
        eps_threshold=threshold.eps,
        throttled_devices=devices,
        throttled_users=users,
        throttled_events=sorted(throttled),
    )
    error.headers["Retry-After"] = str(max(1, int(wait + 0.999)))
    error.records = len(ids)
    return error
