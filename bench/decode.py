"""Benchmark: CPU to parse and translate 1000 events, per dialect, in this process.

What a batch route does with a body before any I/O: decode the JSON, find
the records and translate every one into canonical commands (Netcore
``/v1/activity/upload``, CleverTap ``/1/upload``, Segment ``/v1/batch``,
Ortto ``/v1/activities/create``, Amplitude ``/batch``). The bodies look like
real traffic:

- Netcore: identity and e-mail on every event, a mobile on a third, a
  two-item product array in ``activity_params``, numbers and numeric strings;
- CleverTap: the same with ``identity`` and ``evtData`` holding nested items;
- Segment: ``userId`` + ``anonymousId``, ``context.traits.email``, nested
  ``properties``;
- Ortto: ``fields`` with e-mail and phone, typed ``attributes``;
- Amplitude: ``user_id`` + ``device_id``, ``insert_id``, ``time`` in
  milliseconds, device fields and nested ``event_properties``.

It prints the best of ``--rounds`` timings per dialect in milliseconds of
CPU per 1000 events. With ``--compare SRC`` it also times the ``src``
directory of another checkout (say, the commit before a change) in a child
process, round by round alternating with this one, and prints the ratio.

    python bench/decode.py --quick
    python bench/decode.py --smoke      # a few tiny bodies; a test runs this
    git archive <rev> src | tar -x -C /tmp/before
    python bench/decode.py --quick --compare /tmp/before/src
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
DIALECTS = ("netcore", "clevertap", "segment", "ortto", "amplitude")
#: Records per body: each dialect's batch limit (Ortto's is 100).
BATCH = {"netcore": 1000, "clevertap": 1000, "segment": 1000, "ortto": 100, "amplitude": 1000}
NAMES = ("Page Browse", "Product View", "Add To Cart", "Checkout", "Purchase")


def _products(rng: random.Random) -> list[dict[str, Any]]:
    return [
        {
            "prid": str(rng.randrange(10_000, 99_999)),
            "name": f"Product {rng.randrange(1000)}",
            "price": round(rng.uniform(1, 500), 2),
            "prqt": rng.randrange(1, 5),
        }
        for _ in range(2)
    ]


def netcore_body(count: int, rng: random.Random) -> bytes:
    events = []
    for i in range(count):
        contact = rng.randrange(600)
        moment = NOW - timedelta(seconds=rng.randrange(86_400))
        event: dict[str, Any] = {
            "asset_id": "ead0ad01af1e5f1bb3a8a37e5dcb7bde",
            "activity_name": rng.choice(NAMES),
            "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "identity": f"customer-{contact}",
            "email": f"Customer.{contact}@Example.com",
            "activity_source": rng.choice(("web", "app")),
            "activity_params": {
                "product": _products(rng),
                "amount": round(rng.uniform(1, 1000), 2),
                "order_id": str(rng.randrange(10**8)),
                "quantity": rng.randrange(1, 9),
                "coupon": "WINTER",
            },
        }
        if i % 3 == 0:
            event["mobile"] = f"+91 98{contact:08d}"
        events.append(event)
    return orjson.dumps(events)


def clevertap_body(count: int, rng: random.Random) -> bytes:
    records = []
    for i in range(count):
        contact = rng.randrange(600)
        moment = NOW - timedelta(seconds=rng.randrange(86_400))
        record: dict[str, Any] = {
            "type": "event",
            "identity": f"customer-{contact}",
            "ts": int(moment.timestamp()),
            "evtName": rng.choice(NAMES),
            "evtData": {
                "Amount": round(rng.uniform(1, 1000), 2),
                "Order Id": str(rng.randrange(10**8)),
                "Items": _products(rng),
                "Email": f"customer.{contact}@example.com",
                "Delivery": {"city": "Pune", "pin": "411001", "express": i % 2 == 0},
            },
        }
        records.append(record)
    return orjson.dumps({"d": records})


def segment_body(count: int, rng: random.Random) -> bytes:
    messages = []
    for i in range(count):
        contact = rng.randrange(600)
        moment = NOW - timedelta(seconds=rng.randrange(86_400))
        messages.append(
            {
                "type": "track",
                "event": rng.choice(NAMES),
                "userId": f"customer-{contact}",
                "anonymousId": f"0f9c2a1e-5b7d-4c3e-9a{contact:010d}",
                "messageId": f"msg-{i}-{rng.randrange(10**9)}",
                "timestamp": moment.isoformat().replace("+00:00", "Z"),
                "context": {
                    "library": {"name": "analytics-python", "version": "2.3.2"},
                    "traits": {"email": f"customer.{contact}@example.com"},
                    "ip": "203.0.113.7",
                },
                "properties": {
                    "revenue": round(rng.uniform(1, 1000), 2),
                    "order_id": str(rng.randrange(10**8)),
                    "products": _products(rng),
                    "shipping": {"method": "express", "cost": 4.5},
                },
            }
        )
    return orjson.dumps(
        {"batch": messages, "sentAt": NOW.isoformat().replace("+00:00", "Z"), "writeKey": "k"}
    )


def ortto_body(count: int, rng: random.Random) -> bytes:
    activities = []
    for i in range(count):
        contact = rng.randrange(600)
        moment = NOW - timedelta(seconds=rng.randrange(86_400))
        activity: dict[str, Any] = {
            "activity_id": "act:cm:product-purchase",
            "attributes": {
                "str:cm:product": f"Product {rng.randrange(1000)}",
                "int:cm:quantity": rng.randrange(1, 9),
                "int::v": rng.randrange(1000, 500_000),
                "dtz:cm:shipped": moment.isoformat(),
            },
            "fields": {
                "str::email": f"customer.{contact}@example.com",
                "str::first": "Ada",
            },
            "merge_by": ["str::email"],
            "created": moment.isoformat().replace("+00:00", "Z"),
        }
        if i % 3 == 0:
            activity["fields"]["str::phone"] = f"+61 4{contact:08d}"
        activities.append(activity)
    return orjson.dumps({"activities": activities})


def amplitude_body(count: int, rng: random.Random) -> bytes:
    events = []
    for i in range(count):
        contact = rng.randrange(600)
        moment = NOW - timedelta(seconds=rng.randrange(86_400))
        events.append(
            {
                "user_id": f"customer-{contact}",
                "device_id": f"0f9c2a1e-5b7d-4c3e-9a{contact:010d}",
                "event_type": rng.choice(NAMES),
                "time": int(moment.timestamp() * 1000),
                "insert_id": f"ins-{i}-{rng.randrange(10**9)}",
                "library": "amplitude-python/1.3.0",
                "platform": "Web",
                "os_name": "Chrome",
                "country": "India",
                "session_id": int(NOW.timestamp() * 1000),
                "event_properties": {
                    "order_id": str(rng.randrange(10**8)),
                    "products": _products(rng),
                    "shipping": {"method": "express", "cost": 4.5},
                },
                "price": round(rng.uniform(1, 1000), 2),
                "quantity": 1,
            }
        )
    return orjson.dumps({"api_key": "k", "events": events})


BODIES: dict[str, Callable[[int, random.Random], bytes]] = {
    "netcore": netcore_body,
    "clevertap": clevertap_body,
    "segment": segment_body,
    "ortto": ortto_body,
    "amplitude": amplitude_body,
}


def route_path(dialect: str) -> Callable[[bytes], int]:
    """What the dialect's batch route does with a body before any I/O; returns records kept."""
    from eventyard.core.payload import decode_json

    if dialect == "netcore":
        from eventyard.dialects.netcore import translate as netcore

        def run_netcore(body: bytes) -> int:
            payload = decode_json(body)
            events, problems = netcore.events_of(payload.value)
            assert not problems
            translation, errors = netcore.translate_events(
                events, check_unstorable=payload.suspicious
            )
            assert not errors, errors[:3]
            return len(translation.activities)

        return run_netcore
    if dialect == "clevertap":
        from eventyard.dialects.clevertap import translate as clevertap

        def run_clevertap(body: bytes) -> int:
            payload = decode_json(body)
            records, problem = clevertap.records_of(payload.value)
            assert problem is None
            translation = clevertap.translate_records(
                records, now=NOW, check_unstorable=payload.suspicious
            )
            assert not translation.errors, translation.errors[:3]
            return len(translation.commands)

        return run_clevertap
    if dialect == "segment":
        from eventyard.dialects.segment import translate as segment

        def run_segment(body: bytes) -> int:
            payload = decode_json(body)
            parsed = segment.parse_request(payload.value, None, suspicious=payload.suspicious)
            translation = segment.translate_messages(parsed, None, now=NOW, write_key="k")
            assert not translation.errors, translation.errors[:3]
            return len(translation.records)

        return run_segment
    if dialect == "amplitude":
        from eventyard.dialects.amplitude import translate as amplitude

        def run_amplitude(body: bytes) -> int:
            upload = amplitude.parse_upload(body)
            translation, problems = amplitude.translate_events(upload, now=NOW)
            assert not problems, problems.errors[:3]
            return len(translation.records)

        return run_amplitude
    from eventyard.dialects.ortto import translate as ortto

    def run_ortto(body: bytes) -> int:
        payload = decode_json(body)
        activities, run_async = ortto.activities_of(payload.value)
        translation = ortto.translate(
            activities,
            run_async=run_async,
            now=NOW,
            default_strategy="overwrite",
            retention=timedelta(days=365),
            check_unstorable=payload.suspicious,
        )
        refused = [i for i in translation.items if not hasattr(i, "records")]
        assert not refused, refused[:3]
        return len(translation.items)

    return run_ortto


def time_dialect(dialect: str, repeats: int, events: int | None = None) -> float:
    """Best CPU milliseconds per 1000 records of ``repeats`` runs, each over a body not seen before.

    A few other bodies are translated first, warming imports and caches as a
    long-running server has them; no timed body repeats one of them, so a
    cache is only as good as it is for real traffic.
    """
    rng = random.Random(f"{dialect}-decode")
    size = min(BATCH[dialect], events or BATCH[dialect])
    run = route_path(dialect)
    for _ in range(3):
        assert run(BODIES[dialect](size, rng)) == size
    bodies = [BODIES[dialect](size, rng) for _ in range(repeats)]
    best = float("inf")
    for body in bodies:
        start = time.process_time()
        run(body)
        best = min(best, time.process_time() - start)
    return best * 1000 * 1000 / size


def child_round(dialects: list[str], repeats: int, events: int | None) -> dict[str, float]:
    return {d: time_dialect(d, repeats, events) for d in dialects}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dialects", default=",".join(DIALECTS))
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    parser.add_argument("--repeats", type=int, default=20, help="timed bodies per round")
    parser.add_argument("--events", type=int, help="records per body (default: the batch limit)")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 5 bodies")
    parser.add_argument("--smoke", action="store_true", help="1 round of 2 bodies of 20 records")
    parser.add_argument("--compare", metavar="SRC", help="another checkout's src directory")
    parser.add_argument("--output", type=Path, help="also write the figures here as JSON")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.repeats = 3, 5
    if args.smoke:
        args.rounds, args.repeats, args.events = 1, 2, 20
    dialects = [d for d in args.dialects.split(",") if d]
    if args.child:
        print(json.dumps(child_round(dialects, args.repeats, args.events)))
        return 0
    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    sources = {"this": os.environ.get("PYTHONPATH", here)}
    if args.compare:
        sources = {"before": args.compare, "after": sources["this"]}
    best: dict[str, dict[str, float]] = {name: {} for name in sources}
    child = [sys.executable, __file__, "--child", "--dialects", ",".join(dialects),
             "--repeats", str(args.repeats)]  # fmt: skip
    if args.events:
        child += ["--events", str(args.events)]
    for _ in range(args.rounds):
        for name, src in sources.items():
            out = subprocess.run(
                child,
                env={**os.environ, "PYTHONPATH": src},
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            for dialect, ms in json.loads(out.stdout).items():
                best[name][dialect] = min(best[name].get(dialect, float("inf")), ms)
    header = "dialect     " + "".join(f"{name:>12}" for name in sources)
    print(header + ("       ratio" if args.compare else "") + "   (CPU ms per 1000 records)")
    for dialect in dialects:
        row = f"{dialect:<12}" + "".join(f"{best[name][dialect]:12.2f}" for name in sources)
        if args.compare:
            row += f"{best['after'][dialect] / best['before'][dialect]:12.2f}"
        print(row)
    if args.output:
        report: dict[str, Any] = {"ms_per_1000_records": best}
        if args.compare:
            report["ratio"] = {d: best["after"][d] / best["before"][d] for d in dialects}
        args.output.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
