"""The real ``eventyard`` command plus one job kind whose end the test decides.

Run as ``python -m tests.e2e.job_worker worker …``. Its handler waits until
the file named by the job's payload exists, so a test can stop or kill a
worker while it holds a job, then let the job end, without timing anything.
The built-in kinds all end at once; this kind exists only in test processes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from eventyard.cli import app
from eventyard.jobs.registry import register
from eventyard.services.jobs import JobRun

WAIT_FOR_FILE = "test.wait_for_file"


@register(WAIT_FOR_FILE)
def wait_for_file(run: JobRun) -> dict[str, Any]:
    """Report the worker's pid as progress, wait for ``payload.path``; result: the pid."""
    path = Path(run.job.payload["path"])
    run.heartbeat({"waiting_for": str(path), "pid": os.getpid()})
    while not path.exists():
        time.sleep(0.05)
    return {"pid": os.getpid()}


if __name__ == "__main__":
    app()
