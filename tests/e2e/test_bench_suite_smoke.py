"""``bench/run.py --smoke`` runs every part of the benchmark suite on tiny sizes (but
``nodes`` and ``destinations``, which have smoke tests of their own).

The suite's figures are never asserted (the machine is shared and noisy);
what is asserted is that each part produced its figures, that the limit
was measured in the same run, and that every event the ingest, overlap and
workers parts got acknowledged was found stored exactly once.
"""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

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
            # The nodes and destinations parts have smoke tests of their own
            # (tests/e2e/test_bench_nodes_smoke.py, test_bench_destinations_smoke.py).
            "--parts",
            "limit,ingest,overlap,workers,single,scaling,import,backfill",
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
        assert set(per_dialect) == {
            "netcore",
            "clevertap",
            "segment",
            "ortto",
            "cordial",
            "mixpanel",
            "customerio",
            "amplitude",
            "posthog",
        }
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
    for imported in report["import"]:
        # The import again beside Netcore batch ingest (at this size it ends too soon to
        # measure ingest during it, and the report says so): every event and row accounted for.
        loaded = imported["under_load"]
        assert loaded["idle_events_per_s"] > 0
        assert (loaded["missing"], loaded["doubled"], loaded["failed_requests"]) == (0, 0, 0)
        assert loaded["import_rows"] == loaded["list_members"] == imported["rows"]
        assert loaded["during_events_per_s"] is not None or loaded["note"]
    assert "Batch ingest over HTTP" in run.stdout
    assert "Overlap" in run.stdout
    assert "worker processes vs one" in run.stdout
    assert "while the import runs" in run.stdout


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


@pytest.mark.bench
def test_the_suite_sends_batches_shaped_like_real_traffic() -> None:
    """Every dialect's batch carries what its real clients send (bench/README.md, "The traffic")."""
    from bench.traffic import TRAFFIC, ContactPool, events_of

    account: Any = SimpleNamespace(
        netcore_api_key="k",
        cordial_api_key="k",
        ortto_api_key="k",
        clevertap_account_id="a",
        clevertap_passcode="p",
        segment_write_key="k",
        mixpanel_api_secret="k",
        customerio_site_id="s",
        customerio_api_key="k",
        amplitude_api_key="k",
        posthog_api_key="k",
    )
    pool = ContactPool(0, seed=1)
    rng = random.Random(1)
    first = pool.batch(1000)
    people = pool.batch(1000)
    assert len(first) == 600
    assert (len(people), len(set(people) - set(first))) == (600, 60)

    def body(name: str) -> Any:
        traffic = TRAFFIC[name]
        request = traffic.build(account, events_of(people, traffic.per_request, "t"), rng)
        content = request.content
        if request.headers.get("Content-Encoding") == "gzip":
            assert len(content) < 500 * 1024
            content = gzip.decompress(content)
        return json.loads(content)

    netcore = body("netcore")
    assert len(netcore) == 1000
    assert all(e["identity"] and e["email"] for e in netcore)
    assert 0.25 < sum("mobile" in e for e in netcore) / 1000 < 0.42
    assert all(len(e["activity_params"]["items"]) == 2 for e in netcore)
    params = netcore[0]["activity_params"]
    assert isinstance(params["amount"], float)
    assert float(params["total_item_qty"]) == 2

    clevertap = body("clevertap")["d"]
    assert len(clevertap) == 1000
    assert all(r["identity"] for r in clevertap)
    assert sum(r["type"] == "profile" for r in clevertap) == 50
    assert all(r["evtData"]["Items"] for r in clevertap if r["type"] == "event")

    segment = body("segment")["batch"]
    assert len(segment) == 1000
    assert {c["type"] for c in segment} == {"track", "identify"}
    assert all(c["userId"] and c["anonymousId"] for c in segment)
    tracks = [c for c in segment if c["type"] == "track"]
    assert all(c["context"]["traits"]["email"] and c["properties"]["product"] for c in tracks)

    ortto = body("ortto")["activities"]
    assert len(ortto) == 100
    assert all(a["merge_by"] == ["str::email", "str:cm:external-id"] for a in ortto)
    assert all(isinstance(a["attributes"]["obj:cm:product"], dict) for a in ortto)

    cordial = body("cordial")
    assert cordial["email"]
    assert isinstance(cordial["properties"]["product"], dict)

    mixpanel = body("mixpanel")
    assert len(mixpanel) == 1000
    assert all(e["properties"]["$user_id"] and e["properties"]["$device_id"] for e in mixpanel)
    assert len({e["properties"]["$insert_id"] for e in mixpanel}) == 1000
    assert all(isinstance(e["properties"]["product"], dict) for e in mixpanel)
    customerio = body("customerio")["batch"]
    assert len(customerio) == 1000
    assert {o["action"] for o in customerio} == {"event", "identify"}
    assert all(o["identifiers"]["id"] for o in customerio)
    events = [o for o in customerio if o["action"] == "event"]
    assert len(events) == 900
    assert all(o["id"] and isinstance(o["attributes"]["product"], dict) for o in events)
    identifies = [o for o in customerio if o["action"] == "identify"]
    assert all(o["attributes"]["email"] and o["attributes"]["anonymous_id"] for o in identifies)
    amplitude = body("amplitude")["events"]
    assert len(amplitude) == 1000
    assert all(e["user_id"] and e["device_id"] and e["insert_id"] for e in amplitude)
    assert sum(e["event_type"] == "$identify" for e in amplitude) == 100
    tracked = [e for e in amplitude if e["event_type"] != "$identify"]
    assert all(isinstance(e["event_properties"]["product"], dict) for e in tracked)
    assert any("user_properties" in e for e in tracked)
    posthog = body("posthog")
    assert posthog["api_key"] == "k"
    assert len(posthog["batch"]) == 1000
    assert sum(e["event"] == "$identify" for e in posthog["batch"]) == 100
    assert all(e["distinct_id"] and e["uuid"] for e in posthog["batch"])
    assert sum("$groups" in e["properties"] for e in posthog["batch"]) > 200
