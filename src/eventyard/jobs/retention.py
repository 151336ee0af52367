"""The retention job: create partitions ahead, purge expired activities.

Workers enqueue it on a schedule (``eventyard.jobs.periodic``); ``eventyard
jobs enqueue maintenance.purge_activities`` runs one now.
"""

from __future__ import annotations

from typing import Any

from eventyard.core.errors import EventyardError, StoreUnavailable
from eventyard.services.jobs import JobFailed, JobRun
from eventyard.services.retention import purge_activities


def purge_activities_job(run: JobRun) -> dict[str, Any]:
    """Create partitions ahead, then purge expired activities of every account.

    Payload (all optional): ``{"dry_run": bool, "account_id": "…"}``; with an
    account only its rows are purged and no partition is dropped. Result:
    the purge report (``activities``, per-account counts and cutoffs,
    ``partitions_dropped``, ``partitions_created``).
    """
    payload = run.job.payload
    dry_run = payload.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise JobFailed(f"payload.dry_run must be true or false, not {dry_run!r}")
    account_id = payload.get("account_id")
    if account_id is not None and not isinstance(account_id, str):
        raise JobFailed(f"payload.account_id must be an account id, not {account_id!r}")
    try:
        report = purge_activities(
            run.store,
            run.now(),
            dry_run=dry_run,
            account_id=account_id,
            on_chunk=lambda purged: run.heartbeat({"purged": purged}),
        )
    except StoreUnavailable:
        raise  # retried with backoff
    except EventyardError as exc:
        raise JobFailed(exc.message) from exc
    return report.as_dict()
