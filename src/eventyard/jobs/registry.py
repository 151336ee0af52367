"""Which handler runs each kind of job.

Every process that runs jobs (a server's in-process worker, ``eventyard
worker``) takes its handlers from :data:`HANDLERS`, so a built-in kind is one
line below, and a worker only ever claims the kinds it has a handler for.
Code outside the built-ins may add a kind with :func:`register`; it counts in
the processes that import that code.

This module imports no dialect: a worker process loads the handlers only.
"""

from __future__ import annotations

from collections.abc import Callable

from eventyard.jobs.maintenance import PURGE_IDEMPOTENCY_KEYS, purge_idempotency_keys_job
from eventyard.jobs.retention import purge_activities_job
from eventyard.services.destinations.replay import REPLAY_JOB, run_replay_job
from eventyard.services.exports import EXPORT_ACTIVITIES, run_activity_export
from eventyard.services.imports import (
    CALLBACK_JOB,
    CONTACT_IMPORT_JOB,
    EMAIL_JOB,
    run_import_job,
)
from eventyard.services.ingest import INGEST_JOB
from eventyard.services.ingest_jobs import run_ingest_job
from eventyard.services.jobs import Handler
from eventyard.services.notifications import run_callback_job, run_email_job
from eventyard.services.retention import PURGE_ACTIVITIES

#: Job kind -> the handler that runs it.
HANDLERS: dict[str, Handler] = {
    PURGE_IDEMPOTENCY_KEYS: purge_idempotency_keys_job,
    INGEST_JOB: run_ingest_job,
    CONTACT_IMPORT_JOB: run_import_job,
    CALLBACK_JOB: run_callback_job,
    EMAIL_JOB: run_email_job,
    PURGE_ACTIVITIES: purge_activities_job,
    EXPORT_ACTIVITIES: run_activity_export,
    REPLAY_JOB: run_replay_job,
}


def register(kind: str) -> Callable[[Handler], Handler]:
    """Decorator: ``handler`` runs the jobs of ``kind``; a kind has one handler only."""

    def add(handler: Handler) -> Handler:
        if HANDLERS.get(kind, handler) is not handler:
            raise ValueError(f"job kind {kind!r} already has a handler")
        HANDLERS[kind] = handler
        return handler

    return add
