"""What came in and what was refused: hourly activity counts and ingest rejections."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from eventyard.core.errors import FieldError
from eventyard.core.ids import new_id
from eventyard.services.ports import Store

#: Errors kept per rejection: enough to see what is wrong, bounded per request.
MAX_ERRORS_KEPT = 20
#: Messages are cut to this many characters (they may quote client input).
MAX_MESSAGE_CHARS = 300
#: Rows removed per transaction when message ids are purged.
PURGE_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class HourlyCount:
    hour: datetime
    dialect: str
    name: str
    count: int


@dataclass(frozen=True, slots=True)
class RejectionError:
    #: The record's position in the request, when the error is about one record.
    index: int | None
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class Rejection:
    id: str
    dialect: str
    route: str
    status_code: int
    rejected_records: int
    errors: tuple[RejectionError, ...]
    received_at: datetime


def record_rejection(
    store: Store,
    account_id: str,
    *,
    dialect: str,
    route: str,
    status_code: int,
    rejected_records: int,
    errors: Sequence[RejectionError],
    now: datetime,
) -> None:
    """Remember, in a transaction of its own, that a request of the account was refused.

    Called after the request's own transaction rolled back (or committed
    the records that were good), so it never changes what was stored.
    """
    kept = [
        {"index": e.index, "field": e.field[:200], "message": e.message[:MAX_MESSAGE_CHARS]}
        for e in errors[:MAX_ERRORS_KEPT]
    ]
    with store.unit_of_work() as uow:
        uow.ingest_stats.add_rejection(
            {
                "id": new_id(),
                "account_id": account_id,
                "dialect": dialect,
                "route": route[:200],
                "status_code": status_code,
                "rejected_records": rejected_records,
                "errors": kept,
                "received_at": now,
            }
        )
        uow.commit()


def rejection_errors(errors: Sequence[FieldError]) -> list[RejectionError]:
    """``FieldError``s as rejection errors; without an index, one is read from the path."""
    return [
        RejectionError(e.index if e.index is not None else record_index(e.field), e.field, e.reason)
        for e in errors
    ]


def record_index(field: str) -> int | None:
    """The first ``[N]`` of a field path (``[3].email``, ``activities[3].name``), if any."""
    start = field.find("[")
    end = field.find("]", start + 1)
    if start < 0 or end < 0:
        return None
    number = field[start + 1 : end]
    return int(number) if number.isdigit() else None


def hourly_activity_counts(store: Store, account_id: str, since: datetime) -> list[HourlyCount]:
    """Activities received per hour, dialect and name, from the hour holding ``since``."""
    with store.unit_of_work(write=False) as uow:
        counts = uow.ingest_stats.hourly_counts(account_id, since)
    return sorted(
        (
            HourlyCount(hour, dialect, name, count)
            for (hour, dialect, name), count in counts.items()
        ),
        key=lambda c: (c.hour, c.dialect, c.name),
    )


def latest_rejections(store: Store, account_id: str, limit: int = 20) -> list[Rejection]:
    """The account's most recent rejections, newest first."""
    with store.unit_of_work(write=False) as uow:
        rows = uow.ingest_stats.latest_rejections(account_id, limit)
    return [
        Rejection(
            id=row["id"],
            dialect=row["dialect"],
            route=row["route"],
            status_code=row["status_code"],
            rejected_records=row["rejected_records"],
            errors=tuple(
                RejectionError(e.get("index"), e.get("field", ""), e.get("message", ""))
                for e in row["errors"]
            ),
            received_at=row["received_at"],
        )
        for row in rows
    ]


def rejected_records_since(store: Store, account_id: str, since: datetime) -> int:
    """How many records the account had refused since ``since``."""
    with store.unit_of_work(write=False) as uow:
        return uow.ingest_stats.rejected_records_since(account_id, since)


def compact_activity_counts(store: Store, now: datetime) -> int:
    """Fold the count rows of finished hours (one per batch) into one per key."""
    with store.unit_of_work() as uow:
        removed = uow.ingest_stats.compact_counts(now.replace(minute=0, second=0, microsecond=0))
        uow.commit()
    return removed


def purge_message_ids(store: Store, now: datetime, max_window: timedelta) -> int:
    """Forget message ids older than ``max_window`` (the longest window an account may set).

    An id older than its own account's window is already claimable again
    (``MessageIdRepository.claim``); this only keeps the table small.
    """
    purged = 0
    while True:
        with store.unit_of_work() as uow:
            batch = uow.message_ids.purge_before(now - max_window, PURGE_BATCH)
            uow.commit()
        purged += batch
        if batch < PURGE_BATCH:
            return purged
