"""bench/destinations.py still runs: a tiny SQLite-only run (2,000 events a run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_bench_smoke import smoke_run


@pytest.mark.bench
def test_destinations_smoke_run(tmp_path: Path) -> None:
    """Every activity delivered once to the webhook receiver and stored once by the
    eventyard receiver of the clevertap destination; the figures are reported."""
    report = smoke_run("destinations.py", tmp_path / "destinations.json")
    assert report["benchmark"] == "destinations"
    (result,) = report["results"]
    assert result["backend"] == "sqlite"
    assert result["failures"] == []
    assert result["vendor_activities"] == result["hub_activities"] > 0
    assert result["webhook_delivered"] > 0
    assert result["plain_events_per_s"] > 0
    assert result["clevertap_delivered_per_s"] > 0
