"""``bench/run.py --smoke`` runs every part of the benchmark suite on tiny sizes.

The suite's figures are never asserted (the machine is shared and noisy);
what is asserted is that each part produced its figures, that the limit
was measured in the same run, and that every event the ingest, overlap and
workers parts got acknowledged was found stored exactly once.
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
            assert (figures["missing"], figures["doubled"], figures["failed"]) == (0, 0, 0)
        assert per_dialect["netcore"]["server_cpu_ms_per_1000"] is not None
        overlap = report["overlap"][backend]
        assert overlap["events"] > 0
        assert set(overlap["statuses"]) == {"200"}
        assert (overlap["missing"], overlap["doubled"], overlap["failed"]) == (0, 0, 0)
        workers = report["workers"]["ingest"][backend]
        assert workers["events"] > 0
        assert (workers["missing"], workers["doubled"], workers["failed"]) == (0, 0, 0)
    assert report["workers"]["workers"] == 2
    assert {run["backend"] for run in report["workers"]["single"]} == {"sqlite", "postgresql"}
    assert {run["backend"] for run in report["single"]} == {"sqlite", "postgresql"}
    assert report["scaling"]["seeded"]["activities"] > 0
    assert report["scaling"]["seeded"]["reads"]["timeline"]["statuses"] == [200]
    assert {run["backend"] for run in report["import"]} == {"sqlite", "postgresql"}
    assert "Batch ingest over HTTP" in run.stdout
    assert "Overlap" in run.stdout
    assert "worker processes vs one" in run.stdout


@pytest.mark.bench
def test_a_profile_shows_where_the_server_spends_its_time(
    tmp_path: Path, postgres_url: str
) -> None:
    """``--profile DIR`` records the server with py-spy during the chosen part."""
    output = tmp_path / "suite.json"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--smoke",
            "--parts",
            "overlap",
            "--backends",
            "sqlite",
            "--profile",
            str(tmp_path / "profiles"),
            "--profile-part",
            "overlap",
            "--output",
            str(output),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    stretches = json.loads(output.read_text())["py_spy"]["stretches"]
    assert set(stretches) == {"overlap-sqlite"}
    profile = Path(stretches["overlap-sqlite"]["file"])
    assert profile.parent == tmp_path / "profiles"
    assert json.loads(profile.read_text())["profiles"]
    top = stretches["overlap-sqlite"]["top"]
    assert top
    assert all(0 < row["self"] <= row["inclusive"] <= 1 for row in top)
    assert "py-spy, overlap-sqlite" in run.stdout
