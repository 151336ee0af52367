"""bench/decode.py still runs: a tiny comparison of this checkout with itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DIALECTS = {"netcore", "clevertap", "segment", "ortto", "amplitude"}


@pytest.mark.bench
def test_decode_smoke_run_times_every_dialect_and_their_ratio(tmp_path: Path) -> None:
    output = tmp_path / "decode.json"
    src = str(ROOT / "src")
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "decode.py"), "--smoke", "--compare", src,
         "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": src},
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(output.read_text())
    for side in ("before", "after"):
        figures = report["ms_per_1000_records"][side]
        assert set(figures) == DIALECTS
        assert all(ms > 0 for ms in figures.values())
    assert set(report["ratio"]) == DIALECTS
    assert "ratio" in run.stdout
