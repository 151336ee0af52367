"""The transactional outbox: stored activities queued for the account's destinations."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from eventyard.core.destinations import lane_of, passes
from eventyard.services.ports import UnitOfWork

#: A destination's outbox is split by contact into this many lanes, delivered
#: in parallel; a lane goes one delivery at a time, in order. Fixed, so that a
#: contact's queued activities always share a lane.
LANES = 8


def queue_for_destinations(
    uow: UnitOfWork,
    account_id: str,
    rows: Sequence[dict[str, Any]],
    stored: Collection[str],
    now: datetime,
) -> int:
    """Queue the stored ``rows`` for every destination they pass (paused ones too); how many.

    Runs in the unit of work that stores them, so an activity is queued if and
    only if it is stored. One indexed read of the account's destinations and
    one multi-row write (COPY on PostgreSQL) per batch.
    """
    if not stored:
        return 0
    routes = uow.destinations.routes(account_id)
    if not routes:
        return 0
    lanes: dict[str, int] = {}
    queued = []
    for row in rows:
        if row["id"] not in stored:
            continue
        contact_id = row["contact_id"]
        lane = lanes.get(contact_id)
        if lane is None:
            lane = lanes[contact_id] = lane_of(contact_id, LANES)
        for route in routes:
            if route.filter and not passes(
                route.filter, row["dialect"], row["name"], row["source"]
            ):
                continue
            queued.append(
                {
                    "account_id": account_id,
                    "destination_id": route.id,
                    "activity_id": row["id"],
                    "occurred_at": row["occurred_at"],
                    "lane": lane,
                    "replay": False,
                    "queued_at": now,
                    "delivery_id": None,
                }
            )
    uow.destinations.enqueue(queued)
    return len(queued)
