"""Built-in housekeeping jobs."""

from __future__ import annotations

from typing import Any

from eventyard.services.idempotency import purge_idempotency_keys
from eventyard.services.jobs import JobFailed, JobRun

PURGE_IDEMPOTENCY_KEYS = "maintenance.purge_idempotency_keys"


def purge_idempotency_keys_job(run: JobRun) -> dict[str, Any]:
    """Forget expired Idempotency-Keys now, rather than at the server's next periodic purge.

    Payload: ``{"ttl_seconds": N}`` (optional; ``EVENTYARD_IDEMPOTENCY_TTL_SECONDS``
    of the worker by default). Result: ``{"purged": <keys deleted>}``.
    """
    ttl = run.job.payload.get("ttl_seconds", run.settings.idempotency_ttl_seconds)
    if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 1:
        raise JobFailed(f"payload.ttl_seconds must be a whole number of seconds >= 1, not {ttl!r}")
    return {"purged": purge_idempotency_keys(run.store, run.now(), ttl)}
