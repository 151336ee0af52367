"""``bench/wal.py`` still runs: WAL and disk bytes per stored activity on a private
PostgreSQL, the figures docs/scaling.md's plan is built on. Not asserted: the figures
themselves; asserted: that they were measured and every acknowledged event stored once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.private_postgres import postgres_bin
from tests.support import missing_tool

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.bench
def test_wal_smoke_run_measures_wal_and_disk_per_activity(tmp_path: Path) -> None:
    if postgres_bin() is None:
        missing_tool("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin", "wal")
    output = tmp_path / "wal.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "wal.py"), "--smoke", "--dialects",
         "netcore,ortto", "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(output.read_text())
    assert set(report["dialects"]) == {"netcore", "ortto"}
    for figures in report["dialects"].values():
        assert figures["events"] > 0
        assert figures["wal_bytes_per_activity"] > 0
        assert (figures["missing"], figures["doubled"], figures["failed"]) == (0, 0, 0)
    assert report["disk"]["activities (partitions, TOAST, indexes)"]["bytes_per_activity"] > 0
    assert "WAL bytes / activity" in run.stdout
