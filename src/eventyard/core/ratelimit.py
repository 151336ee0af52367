"""Request rate limits: a token bucket per key."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """At most ``rate`` requests per second per key on average, bursts up to ``burst``.

    Kept in memory, so each server process counts on its own. Once more than
    10 000 keys are tracked, those whose bucket has refilled completely are
    forgotten (a full bucket is what an unknown key starts with).
    """

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def acquire(self, key: str, count: int = 1) -> float:
        """Take ``count`` tokens; 0.0 when allowed, else the seconds until they are free.

        A refusal takes nothing. ``count`` beyond ``burst`` is refused with
        the wait for a full bucket (a caller counting events per request
        must keep a request's events within ``burst``).
        """
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens < count:
                self._buckets[key] = (tokens, now)
                if count > self.burst:
                    return max(self.burst - tokens, 1.0) / self.rate
                return (count - tokens) / self.rate
            self._buckets[key] = (tokens - count, now)
            if len(self._buckets) > 10_000:
                self._forget_full(now)
            return 0.0

    def _forget_full(self, now: float) -> None:
        full = [
            key
            for key, (tokens, at) in self._buckets.items()
            if tokens + (now - at) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]
