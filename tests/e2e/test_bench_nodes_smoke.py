"""``bench/run.py --parts nodes`` still runs: Netcore batch ingest into one node, the same
node through HAProxy, and two nodes behind HAProxy, side by side (issue 24: "the bench
reports single-node and two-node (through HAProxy) throughput for Netcore batches side by
side"). The figures are not asserted (the machine is shared); that each set-up produced
them, and stored every acknowledged event exactly once, is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.multihost.hosts import tool
from tests.support import missing_tool

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.bench
def test_the_nodes_part_measures_one_node_and_two_behind_haproxy(
    tmp_path: Path, postgres_url: str
) -> None:
    if not Path(tool("haproxy")).exists():
        missing_tool("haproxy is missing: apt-get install haproxy (scripts/test does)", "nodes")
    output = tmp_path / "nodes.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--parts", "nodes",
         "--backends", "postgresql", "--postgres-url", postgres_url, "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(output.read_text())["nodes"]
    assert list(report) == ["1 node", "1 node, HAProxy", "2 nodes, HAProxy"]
    assert [(f["nodes"], f["haproxy"]) for f in report.values()] == [
        (1, False),
        (1, True),
        (2, True),
    ]
    for figures in report.values():
        assert figures["events"] > 0
        assert set(figures["statuses"]) == {"200"}
        assert (figures["missing"], figures["doubled"], figures["failed"]) == (0, 0, 0)
    assert "2 nodes, HAProxy" in run.stdout
