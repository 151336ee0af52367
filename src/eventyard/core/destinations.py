"""Destinations: what one is, which activities it takes, and the rules of delivery.

Pure rules, stated here so that tests can state them back:

- A destination's ``filter`` is ``{"dialects", "names", "sources"}``, each an
  optional list of strings; an activity passes when it matches every list
  given (an absent or empty filter passes everything).
- A contact's activities share a ``lane`` (a stable hash of the contact id):
  a lane is delivered one batch at a time, in the order its activities were
  stored, so a contact's activities arrive in order; a destination's lanes
  are delivered in parallel.
- A request's ``Idempotency-Key`` depends only on the destination and the
  activity ids it carries, so that a retried request carries the same key.
- A failed attempt waits ``base * 2^(attempts-1)`` seconds, capped, with
  jitter (a uniform draw between half and all of it), or as long as the
  receiver's ``Retry-After`` asks (capped at an hour).
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from eventyard.core.model import Activity

#: The keys a filter may have.
FILTER_KEYS = ("dialects", "names", "sources")
#: The longest wait a ``Retry-After`` may impose.
MAX_RETRY_AFTER_SECONDS = 3600.0
#: Statuses retried by the machinery whatever the format (RFC 9110 408, RFC 8470 425, 429, 5xx).
RETRIED_STATUSES = frozenset({408, 425, 429})
#: Statuses whose request's activities all go to the dead letters.
REFUSED_STATUSES = frozenset({401, 403})


@dataclass(frozen=True)
class Destination:
    """A destination of an account, its credentials decrypted."""

    id: str
    account_id: str
    name: str
    kind: str
    url: str
    #: The credentials as stored: encrypted (services/destinations/sealing.py).
    sealed_credentials: str
    filter: Mapping[str, list[str]]
    enabled: bool
    created_at: datetime
    updated_at: datetime
    delivered: int = 0
    failed_attempts: int = 0
    last_delivery_at: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class DestinationStats:
    """What ``GET /api/v1/destinations/{id}`` reports beside the destination."""

    pending: int
    dead: int
    oldest_pending_at: datetime | None


@dataclass(frozen=True)
class DeadLetter:
    activity_id: str
    status: int | None
    reason: str
    answer: str | None
    dead_at: datetime


@dataclass(frozen=True)
class DeliveryClaim:
    """A delivery a worker holds the lease of."""

    account_id: str
    id: str
    destination_id: str
    lane: int
    #: Attempts before this one.
    attempts: int


@dataclass(frozen=True)
class DeliveryItem:
    """An activity of a delivery, in order; ``activity`` is ``None`` once it was erased."""

    activity_id: str
    activity: Activity | None
    queued_at: datetime


@dataclass(frozen=True)
class Route:
    """A destination as ingest sees it: its id and filter."""

    id: str
    filter: Mapping[str, Sequence[str]] = field(default_factory=dict)


def parse_filter(value: Any) -> dict[str, list[str]]:
    """The filter as stored; ``ValueError`` says what is wrong with it."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("filter must be an object with dialects, names and sources lists")
    unknown = sorted(set(value) - set(FILTER_KEYS))
    if unknown:
        raise ValueError(f"filter has unknown keys {unknown}; it may have {list(FILTER_KEYS)}")
    parsed: dict[str, list[str]] = {}
    for key in FILTER_KEYS:
        given = value.get(key)
        if given is None:
            continue
        if not isinstance(given, list) or not all(isinstance(v, str) and v for v in given):
            raise ValueError(f"filter.{key} must be a list of non-empty strings")
        if given:
            parsed[key] = list(dict.fromkeys(given))
    return parsed


def passes(route_filter: Mapping[str, Sequence[str]], dialect: str, name: str, source: str) -> bool:
    """Whether an activity passes a filter: it matches every list given."""
    for key, value in (("dialects", dialect), ("names", name), ("sources", source)):
        wanted = route_filter.get(key)
        if wanted and value not in wanted:
            return False
    return True


def lane_of(contact_id: str, lanes: int) -> int:
    """The lane of a contact's activities: stable across processes and restarts."""
    return zlib.crc32(contact_id.encode()) % lanes


def idempotency_key(destination_id: str, activity_ids: Sequence[str]) -> str:
    """The ``Idempotency-Key`` of a request carrying ``activity_ids`` to a destination."""
    digest = hashlib.sha256(destination_id.encode())
    for activity_id in activity_ids:
        digest.update(b"," + activity_id.encode())
    return f"eventyard-{destination_id}-{digest.hexdigest()[:40]}"


def retry_wait(
    attempts: int, base_seconds: float, max_seconds: float, draw: float, retry_after: float | None
) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt; ``draw`` is uniform in [0, 1)."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), MAX_RETRY_AFTER_SECONDS)
    ceiling: float = min(base_seconds * 2.0 ** min(max(attempts - 1, 0), 30), max_seconds)
    return ceiling * (0.5 + draw / 2)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` in seconds (RFC 9110 10.2.3: delay-seconds or an HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max((when - now).total_seconds(), 0.0)
