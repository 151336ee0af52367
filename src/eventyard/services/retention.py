"""Retention: activities older than their account's retention are purged.

Cordial: "Contact activity data will be stored for 18 months, after which it
will be systematically purged." Each account keeps its activities for its
``retention_days`` setting (548 days, about 18 months, by default); an
activity whose ``occurred_at`` is older than ``now - retention_days`` is
purged. Only activities: contacts, their identifiers and attributes, lists
and jobs stay.

On PostgreSQL, where activities are partitioned by month, a whole monthly
partition is dropped when every account's rows in it have expired, that is
when the month ends at or before the earliest cutoff of all accounts (the
account with the longest retention decides). Every other expired row, and
every expired row on SQLite, is deleted account by account in chunks of
``chunk_rows``, each chunk a transaction of its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from eventyard.core.errors import NotFound
from eventyard.core.model import Account
from eventyard.services.jobs import enqueue
from eventyard.services.ports import Store

#: The job kind that purges expired activities and creates partitions ahead.
PURGE_ACTIVITIES = "maintenance.purge_activities"
#: Its queue: two purges never run at once.
PURGE_QUEUE = "maintenance.purge_activities"
#: Rows deleted per transaction.
CHUNK_ROWS = 5_000
#: Monthly partitions kept ready beyond the current month (PostgreSQL).
MONTHS_AHEAD = 3


@dataclass(frozen=True)
class AccountPurge:
    """What a purge did (or, on a dry run, would do) to one account's activities."""

    account_id: str
    name: str
    retention_days: int
    #: Activities that occurred before this are expired.
    cutoff: datetime
    #: Expired activities removed (dry run: that would be removed), all in all.
    activities: int
    #: How many of those went with dropped partitions rather than row deletes.
    in_dropped_partitions: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "name": self.name,
            "retention_days": self.retention_days,
            "cutoff": self.cutoff.isoformat(),
            "activities": self.activities,
            "in_dropped_partitions": self.in_dropped_partitions,
        }


@dataclass(frozen=True)
class PurgeReport:
    dry_run: bool
    now: datetime
    accounts: tuple[AccountPurge, ...]
    #: Monthly partitions dropped (dry run: that would be dropped), oldest first.
    partitions_dropped: tuple[str, ...]
    #: Monthly partitions created ahead (never on a dry run).
    partitions_created: tuple[str, ...]

    @property
    def activities(self) -> int:
        return sum(account.activities for account in self.accounts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "now": self.now.isoformat(),
            "activities": self.activities,
            "accounts": [account.as_dict() for account in self.accounts],
            "partitions_dropped": list(self.partitions_dropped),
            "partitions_created": list(self.partitions_created),
        }


def cutoff_of(account: Account, now: datetime) -> datetime:
    """The moment before which the account's activities have expired."""
    return now - timedelta(days=account.retention_days)


def purge_activities(
    store: Store,
    now: datetime,
    *,
    dry_run: bool = False,
    account_id: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
    on_chunk: Callable[[int], None] | None = None,
) -> PurgeReport:
    """Purge every account's expired activities (only ``account_id``'s when given).

    First the monthly partitions for the next ``MONTHS_AHEAD`` months are
    created (PostgreSQL), then whole expired partitions are dropped, then the
    remaining expired rows are deleted in chunks. With ``account_id`` no
    partition is dropped: partitions hold every account's rows. ``dry_run``
    changes nothing and reports what a purge would do now. ``on_chunk`` is
    called with the running count after each committed chunk (a job's
    heartbeat); ``NotFound`` when ``account_id`` names no account.
    """
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    with store.unit_of_work(write=False) as uow:
        everyone = uow.retention.accounts()
    selected = everyone if account_id is None else [a for a in everyone if a.id == account_id]
    if account_id is not None and not selected:
        raise NotFound(f"No account {account_id!r}")
    created = [] if dry_run else ensure_partitions_ahead(store, now)
    dropped: list[str] = []
    from_partitions: Counter[str] = Counter()
    if account_id is None:
        dropped, from_partitions = _drop_expired_partitions(store, now, dry_run=dry_run)
    purged = 0
    results = []
    for account in selected:
        cutoff = cutoff_of(account, now)
        if dry_run:
            with store.unit_of_work(write=False) as uow:
                removed = uow.retention.count_expired(account.id, cutoff)
        else:
            removed = from_partitions[account.id]
            while True:
                with store.unit_of_work() as uow:
                    deleted = uow.retention.delete_expired(account.id, cutoff, chunk_rows)
                    uow.commit()
                removed += deleted
                purged += deleted
                if on_chunk is not None and deleted:
                    on_chunk(purged)
                if deleted < chunk_rows:
                    break
        results.append(
            AccountPurge(
                account_id=account.id,
                name=account.name,
                retention_days=account.retention_days,
                cutoff=cutoff,
                activities=removed,
                in_dropped_partitions=from_partitions[account.id],
            )
        )
    return PurgeReport(
        dry_run=dry_run,
        now=now,
        accounts=tuple(results),
        partitions_dropped=tuple(dropped),
        partitions_created=tuple(created),
    )


def ensure_partitions_ahead(store: Store, now: datetime) -> list[str]:
    """Create the monthly partitions from this month to ``MONTHS_AHEAD`` ahead that are missing.

    Rows of those months that wait in the default partition move into them.
    Returns the partitions created; nothing happens on SQLite.
    """
    with store.unit_of_work() as uow:
        created = uow.retention.ensure_partitions(now, MONTHS_AHEAD)
        uow.commit()
    return created


def _drop_expired_partitions(
    store: Store, now: datetime, *, dry_run: bool
) -> tuple[list[str], Counter[str]]:
    """Drop the monthly partitions in which every account's rows have expired.

    One transaction per partition. Each reads every account's retention
    afresh with the account rows locked, so an account whose retention was
    just lengthened keeps the rows it still needs. Returns the partitions
    and how many rows of each account went with them.
    """
    dropped: list[str] = []
    counts: Counter[str] = Counter()
    if dry_run:
        with store.unit_of_work(write=False) as uow:
            everyone = uow.retention.accounts()
            if not everyone:
                return dropped, counts
            earliest = min(cutoff_of(account, now) for account in everyone)
            for partition in uow.retention.droppable_partitions(earliest):
                counts.update(uow.retention.count_by_account(partition))
                dropped.append(partition)
        return dropped, counts
    while True:
        with store.unit_of_work() as uow:
            everyone = uow.retention.accounts(lock=True)
            if not everyone:
                return dropped, counts
            earliest = min(cutoff_of(account, now) for account in everyone)
            droppable = uow.retention.droppable_partitions(earliest)
            if not droppable:
                return dropped, counts
            partition = droppable[0]
            in_partition = uow.retention.count_by_account(partition)
            uow.retention.drop_partition(partition)
            uow.commit()
        counts.update(in_partition)
        dropped.append(partition)


def schedule_purge(store: Store, now: datetime, every: timedelta) -> str | None:
    """Enqueue a purge unless one is queued or running, or the last began less than ``every`` ago.

    Every process running a worker calls this on its own clock; the check and
    the enqueue happen in one transaction holding the schedule's turn, so
    across processes the purge is enqueued at most once per ``every``.
    Returns the new job's id, or ``None`` when none was needed.
    """
    with store.unit_of_work() as uow:
        uow.retention.take_schedule_turn(PURGE_ACTIVITIES)
        latest = uow.jobs.list(None, kind=PURGE_ACTIVITIES, limit=1)
        if latest and (
            latest[0].status in ("queued", "running") or latest[0].created_at > now - every
        ):
            return None
        job_id = enqueue(
            uow,
            account_id=None,
            kind=PURGE_ACTIVITIES,
            payload={},
            queue=PURGE_QUEUE,
            max_attempts=3,
            now=now,
        )
        uow.commit()
    return job_id
