"""Records queued for the worker instead of stored in the request: one job per request.

An account's queued records run in order, one job after the other, on the
account's own queue; the job commits with the request's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from eventyard.core.commands import Record, record_to_json
from eventyard.core.model import (
    Account,
    IngestRules,
)
from eventyard.services.jobs import enqueue
from eventyard.services.ports import UnitOfWork


@dataclass(frozen=True, slots=True)
class DeferredRecords:
    """Records to queue for the worker instead of storing them in the request.

    ``groups`` ties records that stand or fall together (an Ortto activity
    and the profile update it carries); ``labels`` name each record for the
    job's report (``activities[3]``).
    """

    records: Sequence[Record]
    groups: Sequence[int] | None = None
    labels: Sequence[str] | None = None


#: The job kind of queued records, and the queue that keeps an account's in order.
INGEST_JOB = "ingest.records"


def ingest_queue(account_id: str) -> str:
    return f"ingest:{account_id}"


def enqueue_records(
    uow: UnitOfWork,
    account: Account,
    deferred: DeferredRecords,
    *,
    rules: IngestRules,
    now: datetime,
) -> str:
    """Queue ``deferred`` as one job of the account's ingest queue; returns its id.

    The job commits with the caller's transaction: once the client has its
    answer, the records are durable and will be stored exactly once.
    """

    return enqueue(
        uow,
        account_id=account.id,
        kind=INGEST_JOB,
        queue=ingest_queue(account.id),
        payload={
            "records": [record_to_json(r) for r in deferred.records],
            "groups": None if deferred.groups is None else list(deferred.groups),
            "labels": None if deferred.labels is None else list(deferred.labels),
            "rules": {
                "require_definitions": rules.require_definitions,
                "daily_limit": rules.daily_limit,
            },
            "received_at": now.isoformat(),
        },
        now=now,
    )
