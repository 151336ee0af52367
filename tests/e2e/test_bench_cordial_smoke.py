"""bench/cordial_query.py still runs: a tiny SQLite-only run (3,000 activities)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_bench_smoke import smoke_run


@pytest.mark.bench
def test_cordial_query_smoke_run(tmp_path: Path) -> None:
    """Every filter shape answered at both page sizes, and the worker process exported
    every stored activity."""
    report = smoke_run("cordial_query.py", tmp_path / "cordial_query.json")
    assert report["benchmark"] == "cordial_query"
    (result,) = report["results"]
    assert result["backend"] == "sqlite"
    assert result["failures"] == []
    assert result["export_rows"] == result["activities"] == report["parameters"]["activities"]
    assert result["worker_peak_rss_mb"] > 0
    shapes = {(s["name"], s["per_page"]) for s in result["shapes"]}
    assert len(shapes) == 14
    counts = {s["name"]: s["rows"] for s in result["shapes"] if s["per_page"] is None}
    assert counts["return_count (all)"] == result["activities"]
