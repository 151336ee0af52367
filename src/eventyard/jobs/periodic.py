"""Jobs that every worker's process enqueues on a schedule.

Each process that runs a worker (a server's own, ``eventyard worker``) holds
its own clock per periodic job and, when it is due, asks the job's enqueue
function, which checks the database: ``schedule_purge`` skips the purge when
one is queued or running or one was enqueued less than an interval ago, in a
transaction holding the schedule's turn. So however many processes run, the
job is enqueued about once per interval, and its queue runs one at a time.
The first try is one interval after the process starts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from eventyard.services.ports import Store
from eventyard.services.retention import PURGE_ACTIVITIES, schedule_purge
from eventyard.settings import Settings

log = logging.getLogger("eventyard.jobs")


@dataclass
class PeriodicJob:
    """A job a worker's process enqueues every ``every``, through ``enqueue``."""

    name: str
    every: timedelta
    enqueue: Callable[[Store, datetime, timedelta], str | None]
    next_at: datetime

    def run_if_due(self, store: Store, now: datetime) -> str | None:
        """Enqueue it if its time has come; the new job's id, if one was enqueued."""
        if now < self.next_at:
            return None
        # Whatever happens, the next try is one interval later, not at every poll.
        self.next_at = now + self.every
        job_id = self.enqueue(store, now, self.every)
        if job_id is not None:
            log.info("periodic job enqueued", extra={"kind": self.name, "job_id": job_id})
        return job_id


def periodic_jobs(settings: Settings, now: datetime) -> list[PeriodicJob]:
    """The jobs a worker's process enqueues on a schedule, first due one interval from ``now``."""
    every = timedelta(seconds=settings.retention_interval_seconds)
    return [
        PeriodicJob(
            name=PURGE_ACTIVITIES,
            every=every,
            enqueue=schedule_purge,
            next_at=now + every,
        )
    ]
