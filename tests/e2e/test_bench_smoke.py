"""The benchmark scripts still run: tiny SQLite-only runs of bench/netcore_ingest.py,
bench/clevertap_ingest.py and bench/ortto_ingest.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def smoke_run(script: str, output: Path) -> dict[str, Any]:
    """``bench/<script> --smoke`` on SQLite; its JSON report (the run must exit 0)."""
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / script),
            "--smoke",
            "--backends",
            "sqlite",
            "--output",
            str(output),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    report: dict[str, Any] = json.loads(output.read_text())
    return report


@pytest.mark.bench
def test_netcore_ingest_smoke_run(tmp_path: Path) -> None:
    report = smoke_run("netcore_ingest.py", tmp_path / "netcore_ingest.json")
    (result,) = report["results"]
    assert result["backend"] == "sqlite"
    assert result["failed_requests"] == 0
    assert result["events"] == result["batches"] * report["parameters"]["events_per_batch"]


@pytest.mark.bench
def test_clevertap_ingest_smoke_run(tmp_path: Path) -> None:
    """bench/clevertap_ingest.py --smoke on SQLite: every batch acknowledged in full."""
    report = smoke_run("clevertap_ingest.py", tmp_path / "clevertap_ingest.json")
    assert report["benchmark"] == "clevertap_ingest"
    (result,) = report["results"]
    assert result["backend"] == "sqlite"
    assert result["failed_requests"] == 0
    assert result["records"] == result["batches"] * report["parameters"]["records_per_batch"]
    assert 0 < result["profiles"] < result["records"]
    assert result["stored_activities"] == result["expected_activities"]


@pytest.mark.bench
def test_ortto_ingest_smoke_run(tmp_path: Path) -> None:
    """bench/ortto_ingest.py --smoke on SQLite: every sync activity ingested, every
    queued batch stored by the server's worker."""
    report = smoke_run("ortto_ingest.py", tmp_path / "ortto_ingest.json")
    assert report["benchmark"] == "ortto_ingest"
    (result,) = report["results"]
    assert result["backend"] == "sqlite"
    assert result["activities"] == result["batches"] * report["parameters"]["activities_per_batch"]
    for mode in (result["sync"], result["queued"]):
        assert mode["failed_requests"] == 0
        assert mode["stored_activities"] == mode["expected_activities"]
        assert mode["created_persons"] == result["persons"]
    assert result["queued"]["failed_jobs"] == 0
    assert result["queued"]["end_to_end_seconds"] >= result["queued"]["accept_seconds"] > 0


@pytest.mark.bench
def test_netcore_import_smoke_run(tmp_path: Path) -> None:
    """bench/netcore_import.py --smoke on SQLite: a bulk upload of 2000 rows, a quarter
    of them already stored, every row counted and every contact in the list."""
    report = smoke_run("netcore_import.py", tmp_path / "netcore_import.json")
    assert report["benchmark"] == "netcore_import"
    (result,) = report["results"]
    assert result["backend"] == "sqlite"
    assert (result["rows"], result["created"], result["updated"]) == (2000, 1500, 500)
    assert result["failed"] == 0
    assert result["list_members"] == 2000
    assert result["rows_per_s"] > 0
    assert result["peak_rss_mb"] > 0
