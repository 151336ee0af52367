"""bench/single_event.py still runs: a tiny SQLite-only run, group commit on and off."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_bench_smoke import smoke_run


@pytest.mark.bench
def test_single_event_smoke_run(tmp_path: Path) -> None:
    """Both modes measured; every acknowledged request stored; groups formed only with
    group commit on."""
    report = smoke_run("single_event.py", tmp_path / "single_event.json")
    assert report["benchmark"] == "single_event"
    by_mode = {r["mode"]: r for r in report["results"]}
    assert set(by_mode) == {"group", "alone"}
    for result in by_mode.values():
        assert result["backend"] == "sqlite"
        assert result["acknowledged"] > 0
        assert result["stored"] >= result["acknowledged"]
        assert result["max"]["requests_per_s"] > 0
        assert set(result["rates"]) == {"50.0"}
    assert by_mode["group"]["groups"]["count"] > 0
    assert by_mode["alone"]["groups"].get("count", 0) == 0
