"""The job kinds a worker runs, and the retry schedule.

Issue: "the registry must be importable without importing dialects"; "a
dialect/service will register "ingest.records" later -- design it so adding
a handler is one line".
"""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest

from eventyard.jobs.maintenance import PURGE_IDEMPOTENCY_KEYS, purge_idempotency_keys_job
from eventyard.jobs.registry import HANDLERS, register
from eventyard.services.jobs import JobRun, retry_delay


def test_the_registry_loads_no_dialect_and_no_web_framework() -> None:
    """A worker process loads its handlers only, not the HTTP side."""
    probe = (
        "import sys, eventyard.jobs.registry, eventyard.jobs.worker\n"
        "print(sorted(m for m in sys.modules if m.startswith(('eventyard.dialects', "
        "'eventyard.api', 'fastapi', 'eventyard.storage'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_the_maintenance_job_is_built_in() -> None:
    assert HANDLERS[PURGE_IDEMPOTENCY_KEYS] is purge_idempotency_keys_job


def test_register_adds_a_kind_and_refuses_a_second_handler_for_it() -> None:
    kind = "test.registered"

    @register(kind)
    def first(_run: JobRun) -> dict[str, Any]:
        return {}

    try:
        assert HANDLERS[kind] is first
        assert register(kind)(first) is first  # registering the same one again is harmless
        with pytest.raises(ValueError, match=kind):
            register(kind)(lambda _run: None)
        assert HANDLERS[kind] is first
    finally:
        del HANDLERS[kind]


@pytest.mark.parametrize(
    ("attempts", "seconds"),
    [(1, 4), (2, 8), (3, 16), (10, 2048), (11, 3600), (1000, 3600)],
)
def test_retries_back_off_exponentially_up_to_an_hour(attempts: int, seconds: int) -> None:
    """operations.md: "`EVENTYARD_JOB_RETRY_BASE_SECONDS` x 2^attempts later (4 s, 8 s,
    16 s ... by default, at most an hour)"."""
    assert retry_delay(attempts, 2.0) == timedelta(seconds=seconds)
