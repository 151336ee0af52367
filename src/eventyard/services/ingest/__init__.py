"""Ingest: resolve who each record belongs to and store a request's records, once.

One concern a module:

- :mod:`.request`: a request's records and how to answer it
  (:class:`IngestRequest`), its transaction, its Idempotency-Key;
- :mod:`.records`: a batch inside a unit of work: admission, identity
  (:mod:`eventyard.services.resolution`), profile updates and the writes;
- :mod:`.admission`: the account's rules (registry limits, definitions,
  daily limits, type recognition);
- :mod:`.profiles`: attribute changes by merge strategy;
- :mod:`.queue`: records queued for the worker as one job.

The dialects reach all of it through one pipeline
(:mod:`eventyard.dialects.pipeline`); a group commit
(:mod:`eventyard.services.group_commit`) stores several requests in one
transaction through :func:`store_request`.
"""

from eventyard.services.idempotency import IdempotencyRequest
from eventyard.services.ingest.queue import (
    INGEST_JOB,
    DeferredRecords,
    enqueue_records,
    ingest_queue,
)
from eventyard.services.ingest.records import NO_RULES, activity_row, store_records
from eventyard.services.ingest.request import (
    IngestRequest,
    ingest_activities,
    ingest_records,
    ingest_request,
    store_request,
)
from eventyard.services.resolution import MAX_RESOLUTION_ATTEMPTS, resolve_contacts

__all__ = [
    "INGEST_JOB",
    "MAX_RESOLUTION_ATTEMPTS",
    "NO_RULES",
    "DeferredRecords",
    "IdempotencyRequest",
    "IngestRequest",
    "activity_row",
    "enqueue_records",
    "ingest_activities",
    "ingest_queue",
    "ingest_records",
    "ingest_request",
    "resolve_contacts",
    "store_records",
    "store_request",
]
