"""The replay job: queue a destination's history, or its dead letters, for delivery again.

Replayed activities go through the same outbox, deliveries and retries as
live ones, marked ``replay``: in each lane they come after the live
activities waiting there, so a long replay never holds live deliveries back.
An activity still waiting in the outbox is not queued twice. The job pages
through the activities in (occurred_at, id) order, ``CHUNK`` per committed
transaction, and a job taken over by another worker goes on from its
progress.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventyard.core.destinations import lane_of, passes
from eventyard.services.destinations.outbox import LANES
from eventyard.services.jobs import JobFailed, JobRun

REPLAY_JOB = "destination_replay"
CHUNK = 2000


def _outbox_row(
    account_id: str, destination_id: str, activity: Any, now: datetime
) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "destination_id": destination_id,
        "activity_id": activity.id,
        "occurred_at": activity.occurred_at,
        "lane": lane_of(activity.contact_id, LANES),
        "replay": True,
        "queued_at": now,
        "delivery_id": None,
    }


def run_replay_job(run: JobRun) -> dict[str, Any]:
    job = run.job
    payload = job.payload
    account_id = job.account_id
    if account_id is None:
        raise JobFailed("a replay belongs to an account")
    destination_id = payload["destination_id"]
    queued = int(job.progress.get("queued", 0))
    if payload.get("dead_letters"):
        while True:
            with run.store.unit_of_work() as uow:
                if uow.destinations.get(account_id, destination_id) is None:
                    raise JobFailed("the destination was deleted")
                taken = uow.destinations.take_dead_letters(account_id, destination_id, CHUNK)
                now = run.now()
                uow.destinations.enqueue_again(
                    [_outbox_row(account_id, destination_id, a, now) for a in taken]
                )
                uow.commit()
            queued += len(taken)
            if not taken:
                break
            run.heartbeat({"queued": queued})
    if payload.get("from") is None:
        return {"queued": queued}
    start = datetime.fromisoformat(payload["from"])
    end = datetime.fromisoformat(payload["to"])
    received_before = payload.get("received_before")
    before = None if received_before is None else datetime.fromisoformat(received_before)
    cursor = job.progress.get("after")
    after = None if cursor is None else (datetime.fromisoformat(cursor[0]), str(cursor[1]))
    while True:
        with run.store.unit_of_work() as uow:
            destination = uow.destinations.get(account_id, destination_id)
            if destination is None:
                raise JobFailed("the destination was deleted")
            page = uow.destinations.history(account_id, start, end, before, after, CHUNK)
            now = run.now()
            rows = [
                _outbox_row(account_id, destination_id, a, now)
                for a in page
                if passes(destination.filter, a.dialect, a.name, a.source)
            ]
            uow.destinations.enqueue_again(rows)
            uow.commit()
        queued += len(rows)
        if len(page) < CHUNK:
            return {"queued": queued}
        last = page[-1]
        after = (last.occurred_at, last.id)
        run.heartbeat({"queued": queued, "after": [last.occurred_at.isoformat(), last.id]})
