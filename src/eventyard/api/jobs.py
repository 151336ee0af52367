"""The canonical jobs API: what became of an account's background work."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from starlette.concurrency import run_in_threadpool

from eventyard.api.auth import reader_account
from eventyard.context import AppContext, get_context
from eventyard.core.model import Account, Job
from eventyard.http import iso_utc, json_response
from eventyard.services import jobs as job_service
from eventyard.services.imports import import_summary

router = APIRouter(prefix="/api/v1", tags=["Jobs"])

_JOB_FIELDS = """Each job is an object with:

- `id`, `kind` (what it does, e.g. `maintenance.purge_idempotency_keys`), `queue`
  (jobs of one queue run one at a time, in order; `null` for none);
- `status`: `queued` (waiting, or waiting to be retried), `running`, `completed`
  or `failed` (for good);
- `attempts` so far and `max_attempts`;
- `created_at`, `started_at` (first attempt), `finished_at`: ISO 8601 UTC or `null`;
- `progress` (what the running job reported last), `result` (once completed) and
  `error` (the last failure's message, also while a retry is pending);
- for a contact import (`contacts.import`), also `total`, `created`, `updated`,
  `failed` and `errors` (`[{"row", "reason"}]`, the first 100), so far."""


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else iso_utc(moment)


def job_json(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "queue": job.queue,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "created_at": iso_utc(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "progress": job.progress,
        "result": job.result,
        "error": job.error,
        # A contact import's counts and first errors, also while it runs.
        **(import_summary(job) or {}),
    }


@router.get(
    "/jobs/{job_id}",
    summary="Get one job",
    description="The job with this id, if it belongs to the caller's account (404 otherwise).\n\n"
    + _JOB_FIELDS,
)
async def get_job(
    job_id: str,
    account: Account = Depends(reader_account),
    ctx: AppContext = Depends(get_context),
) -> Response:
    job = await run_in_threadpool(job_service.get_job, ctx.store, account, job_id)
    return json_response(job_json(job))


@router.get(
    "/jobs",
    summary="List the account's jobs, newest first",
    description='`{"jobs": [...]}`, the newest `limit` jobs of the caller\'s account, '
    "optionally only those of one `kind`.\n\n" + _JOB_FIELDS,
)
async def list_jobs(
    kind: str | None = Query(None, description="Only jobs of this kind"),
    limit: int = Query(50, description="How many, 1 to 1000"),
    account: Account = Depends(reader_account),
    ctx: AppContext = Depends(get_context),
) -> Response:
    jobs = await run_in_threadpool(
        lambda: job_service.list_jobs(ctx.store, account, kind=kind, limit=limit)
    )
    return json_response({"jobs": [job_json(j) for j in jobs]})
