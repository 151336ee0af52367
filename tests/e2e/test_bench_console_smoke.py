"""bench/console_pages.py still runs: a tiny SQLite-only run (3,000 activities)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_bench_smoke import smoke_run


@pytest.mark.bench
def test_console_pages_smoke_run(tmp_path: Path) -> None:
    """Every console page answered 200 to the signed-in admin."""
    report = smoke_run("console_pages.py", tmp_path / "console_pages.json")
    assert report["benchmark"] == "console_pages"
    (result,) = report["results"]
    assert result["backend"] == "sqlite"
    assert result["failures"] == []
    assert {p["status"] for p in result["pages"]} == {200}
    assert len(result["pages"]) == 8
