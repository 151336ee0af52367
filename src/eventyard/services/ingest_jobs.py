"""The worker's side of queued ingestion: store a queued batch, exactly once."""

from __future__ import annotations

from typing import Any

from eventyard.core.commands import record_from_json
from eventyard.core.model import IngestRules
from eventyard.services.ingest import store_records
from eventyard.services.jobs import JobFailed, JobRun


def run_ingest_job(run: JobRun) -> dict[str, Any]:
    """Store the records of an ``ingest.records`` job as the request would have.

    The records, the contacts they create and the job's completion commit in
    one transaction: a worker that dies before the commit leaves the job to
    the next worker with nothing half-stored, and one that lost its lease
    meanwhile stores nothing. Records refused now (an activity definition
    deleted since, the daily limit reached, an unknown person id) are listed
    in the job's result by their label.
    """
    job = run.job
    payload = job.payload
    records = [record_from_json(doc) for doc in payload["records"]]
    rules = IngestRules(**payload.get("rules", {}))
    groups = payload.get("groups")
    labels = payload.get("labels") or [f"records[{i}]" for i in range(len(records))]
    with run.store.unit_of_work() as uow:
        account = uow.accounts.get(job.account_id) if job.account_id else None
        if account is None:
            raise JobFailed(f"account {job.account_id} no longer exists")
        outcome = store_records(uow, account, records, now=run.now(), rules=rules, groups=groups)
        result = {
            "received_at": payload.get("received_at"),
            "records": len(records),
            "stored_activities": outcome.stored_activities,
            "updated_profiles": outcome.updated_profiles,
            "created_contacts": len(outcome.created_contacts),
            "rejected": [
                {"record": labels[r.index], "code": r.code, "error": r.message}
                for r in outcome.rejected
            ],
            "contact_ids": outcome.contact_ids,
        }
        run.complete_in(uow, result)
        uow.commit()
    return result
