"""bench/load.py holds a mixed workload of every dialect, batch and single, without an error.

In the normal suite it runs 10 s per backend (``--smoke``). The long run is
the same test with a flag: ``EVENTYARD_LOAD_MINUTES=10 ./scripts/test
tests/reliability/test_load.py -k postgresql``; its latest figures are in
docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_mixed_load_loses_nothing_and_answers_every_request(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    database = ["--postgres-url", request.getfixturevalue("postgres_url")]
    if backend == "sqlite":
        database = []
    minutes = os.environ.get("EVENTYARD_LOAD_MINUTES")
    length = ["--minutes", minutes] if minutes else ["--smoke"]
    output = tmp_path / "load.json"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "load.py"),
            *length,
            "--backend",
            backend,
            *database,
            "--output",
            str(output),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120 + 90 * float(minutes or 0),
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(output.read_text())
    assert report["errors"] == {}
    assert (report["missing"], report["doubled"], report["server_log_errors"]) == (0, 0, 0)
    assert report["events"] > report["requests"] > 0
    # Every dialect was exercised, batches and single events alike.
    labels = set(report["endpoints"])
    assert {"netcore batch", "netcore single", "cordial single", "segment batch"} <= labels
    assert all(i["server_rss_mb"] > 0 for i in report["intervals"])
