"""``bench/run.py --smoke`` runs every part of the benchmark suite on tiny sizes.

The suite's figures are never asserted (the machine is shared and noisy);
what is asserted is that each part produced its figures, that the limit
was measured in the same run, and that every event the ingest part got
acknowledged was found stored.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.bench
def test_the_suite_runs_every_part_on_tiny_sizes(tmp_path: Path, postgres_url: str) -> None:
    output = tmp_path / "suite.json"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--smoke",
            "--postgres-url",
            postgres_url,
            "--output",
            str(output),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(output.read_text())
    assert set(report["limit"]) == {"sqlite", "postgresql"}
    assert set(report["limit"]["postgresql"]) == {"1 connection", "2 connections"}
    for backend in ("sqlite", "postgresql"):
        per_dialect = report["ingest"][backend]
        assert set(per_dialect) == {"netcore", "clevertap", "segment", "ortto", "cordial"}
        for figures in per_dialect.values():
            assert figures["events"] > 0
            assert (figures["missing"], figures["failed"]) == (0, 0)
    assert {run["backend"] for run in report["single"]} == {"sqlite", "postgresql"}
    assert report["scaling"]["seeded"]["activities"] > 0
    assert report["scaling"]["seeded"]["reads"]["timeline"]["statuses"] == [200]
    assert {run["backend"] for run in report["import"]} == {"sqlite", "postgresql"}
    assert "Batch ingest over HTTP" in run.stdout
