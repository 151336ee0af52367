"""Batches shaped like real client traffic, one builder per dialect, for ``bench/run.py``.

A person is a number ``n``: identity ``cust-<n>``, e-mail ``customer<n>@example.com``,
a mobile for every third, the same in every dialect and every batch (a client
that sends a person's events knows that person's identifiers). Every activity
carries a unique marker under its dialect's stored key, so that the suite can
look each acknowledged activity up afterwards; the records that are not
activities (a CleverTap profile record, a Segment identify) carry none and are
not counted as events.

The shapes, from the vendors' documentation and what their SDKs send:

- Netcore: ``identity`` and ``email`` on every event, ``mobile`` on a third,
  ``activity_params`` with numbers, numeric strings and a two-item product array.
- CleverTap: ``identity`` on every record, ``evtData`` with an ``Items`` array of
  objects (the "Charged" shape); one record in 20 is a ``profile`` record with
  ``Name``, ``Email`` and (for a third) ``Phone`` (1000 records a request, so 950 events).
- Segment: ``userId`` and ``anonymousId``, ``context.traits.email``, nested
  ``properties``; one call in 10 is an ``identify`` (so 900 tracks in 1000 calls); gzipped
  as Segment's SDKs send it. A batch is at most 500 KB,
  so 1000 calls leave about 500 bytes a call: the properties stay modest.
- Amplitude: ``user_id`` and ``device_id`` on every event, ``insert_id``, ``time`` in
  milliseconds, the SDK's ``library`` and device fields, nested ``event_properties``,
  plain ``user_properties`` on a fifth; one event in 10 is an ``$identify`` with
  ``$set``/``$setOnce``/``$add``/``$append`` (so 900 activities in 1000 events); sent
  to the ``/batch`` path it shares with PostHog (the dispatch's claim is measured too).
- Ortto: ``fields`` with ``str::email`` and the external id ``str:cm:external-id``
  (both in ``merge_by``), ``str::first``, typed ``attributes`` with an ``obj``.
- Cordial: one activity per request, ``email``, ``ats`` and nested ``properties``.
- Mixpanel: a server-side ``/import`` of 1000 events (gzip, the API secret as
  Basic user): ``distinct_id`` and ``$user_id`` (the identity) with ``$device_id``
  (an anonymous id), ``time`` in milliseconds, ``$insert_id``, ``mp_lib`` and
  nested ``properties`` with a product object and a cart array.
- Customer.io: a v2 ``/api/v2/batch`` of person operations, as the ``customerio``
  SDK's ``batch()`` sends it (no gzip): ``event`` operations by ``identifiers.id``
  with a ULID-like ``id``, a unix ``timestamp`` and nested ``attributes``; one
  operation in 10 an ``identify`` carrying ``email``, ``anonymous_id`` and (for a
  third) ``phone`` attributes (900 events in 1000 operations, under the 500 KB).
- PostHog: posthog-node's batch (``api_key``, ``sent_at``, gzipped): ``distinct_id``,
  ``uuid``, ``timestamp``, ``properties`` with ``$lib``, nested product, ``$groups`` on
  a quarter; one event in 10 is an ``$identify`` with ``$set`` and ``$anon_distinct_id``
  (so 900 events in 1000).
"""

from __future__ import annotations

import gzip
import random
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from bench.load import percentile
from tests.reliability.dialects import DIALECTS_BY_NAME, MARK, ORTTO_ACTIVITIES, stored_markers

from eventyard.core.model import NewAccount
from eventyard.storage.database import Database

#: An activity to send: the person's number and the activity's unique marker.
Event = tuple[int, str]
ASSET_ID = "55a6d1d3ac4d5253ca4afd9636442434"
PRODUCTS = (
    ("Simple Moisturizer", "Skin"),
    ("Serum", "Skin"),
    ("Trail Shoe", "Footwear"),
    ("Rain Jacket", "Apparel"),
    ("Espresso Beans", "Grocery"),
)
NETCORE_NAMES = ("Page Browse", "Product View", "Add To Cart", "Checkout", "Purchase")
#: Segment answers 400 above 500 KB of (inflated) batch.
SEGMENT_MAX_BATCH_BYTES = 500 * 1024
#: Each client's people start this far from the previous client's (``Clients``).
PEOPLE_PER_CLIENT = 10_000_000


@dataclass(frozen=True)
class Request:
    """One HTTP request, its body already encoded."""

    method: str
    path: str
    headers: dict[str, str]
    content: bytes
    #: The markers of the activities it carries (its other records carry none).
    marks: list[str]
    auth: tuple[str, str] | None = None

    async def send(self, http: httpx.AsyncClient) -> httpx.Response:
        return await http.request(
            self.method,
            self.path,
            content=self.content,
            headers=self.headers,
            auth=self.auth or httpx.USE_CLIENT_DEFAULT,
        )


def identity(n: int) -> str:
    return f"cust-{n:09d}"


def email(n: int) -> str:
    return f"customer{n}@example.com"


def mobile(n: int) -> str | None:
    """A person's mobile: every third person has one."""
    return f"+91{9_000_000_000 + n}" if n % 3 == 0 else None


def _json(body: Any) -> tuple[dict[str, str], bytes]:
    return {"Content-Type": "application/json"}, orjson.dumps(body)


def _items(rng: random.Random) -> list[dict[str, Any]]:
    """A two-item product array: prices as numbers and as numeric strings."""
    (first, first_category), (second, second_category) = rng.sample(PRODUCTS, 2)
    return [
        {
            "product_name": first,
            "l1_category": first_category,
            "price": rng.randrange(100, 5000) / 10,
            "quantity": 1,
        },
        {
            "product_name": second,
            "l1_category": second_category,
            "price": f"{rng.randrange(100, 5000) / 10}",
            "quantity": "1",
        },
    ]


def netcore(account: NewAccount, events: Sequence[Event], rng: random.Random) -> Request:
    now = datetime.now(UTC)
    body = []
    for n, mark in events:
        event: dict[str, Any] = {
            "asset_id": ASSET_ID,
            "activity_name": rng.choice(NETCORE_NAMES),
            "timestamp": (now - timedelta(seconds=rng.randrange(0, 48 * 3600))).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "identity": identity(n),
            "email": email(n),
            "activity_source": rng.choice(("web", "app")),
            "activity_params": {
                MARK: mark,
                "customer_user_id": str(n),
                "total_item_qty": "2",
                "amount": rng.randrange(100, 10000) / 10,
                "currency": "INR",
                "items": _items(rng),
            },
        }
        if (phone := mobile(n)) is not None:
            event["mobile"] = phone
        body.append(event)
    headers, content = _json(body)
    return Request(
        "POST",
        "/v1/activity/upload",
        {**headers, "api-key": account.netcore_api_key},
        content,
        [mark for _, mark in events],
    )


def clevertap(account: NewAccount, events: Sequence[Event], rng: random.Random) -> Request:
    now = int(datetime.now(UTC).timestamp())
    records: list[dict[str, Any]] = []
    marks = []
    for position, (n, mark) in enumerate(events):
        if position % 20 == 19:
            profile: dict[str, Any] = {"Name": f"Customer {n}", "Email": email(n), "Tier": "gold"}
            if (phone := mobile(n)) is not None:
                profile["Phone"] = phone
            records.append(
                {"identity": identity(n), "ts": now, "type": "profile", "profileData": profile}
            )
            continue
        marks.append(mark)
        records.append(
            {
                "identity": identity(n),
                "ts": now - rng.randrange(0, 48 * 3600),
                "type": "event",
                "evtName": rng.choice(("Product Viewed", "Added To Cart", "Charged")),
                "evtData": {
                    MARK: mark,
                    "Amount": rng.randrange(100, 10000) / 10,
                    "Currency": "INR",
                    "Payment mode": rng.choice(("Credit card", "UPI", "COD")),
                    "Items": _items(rng),
                },
            }
        )
    headers, content = _json({"d": records})
    return Request(
        "POST",
        "/1/upload",
        {
            **headers,
            "X-CleverTap-Account-Id": account.clevertap_account_id,
            "X-CleverTap-Passcode": account.clevertap_passcode,
        },
        content,
        marks,
    )


def segment(account: NewAccount, events: Sequence[Event], rng: random.Random) -> Request:
    now = datetime.now(UTC)
    calls: list[dict[str, Any]] = []
    marks = []
    for position, (n, mark) in enumerate(events):
        anonymous = str(uuid.uuid5(uuid.NAMESPACE_OID, str(n)))
        if position % 10 == 9:
            calls.append(
                {
                    "type": "identify",
                    "userId": identity(n),
                    "anonymousId": anonymous,
                    "traits": {"email": email(n), "name": f"Customer {n}", "plan": "pro"},
                    "messageId": str(uuid.uuid4()),
                }
            )
            continue
        marks.append(mark)
        (name, category), *_ = rng.sample(PRODUCTS, 1)
        calls.append(
            {
                "type": "track",
                "event": rng.choice(("Product Viewed", "Product Added", "Order Completed")),
                "userId": identity(n),
                "anonymousId": anonymous,
                "properties": {
                    MARK: mark,
                    "revenue": rng.randrange(100, 10000) / 10,
                    "product": {"name": name, "category": category, "quantity": 1},
                },
                "context": {"traits": {"email": email(n)}},
                "messageId": str(uuid.uuid4()),
                "timestamp": (now - timedelta(seconds=rng.randrange(0, 3600))).isoformat(),
            }
        )
    headers, content = _json({"batch": calls})
    if len(content) > SEGMENT_MAX_BATCH_BYTES:
        raise ValueError(f"a Segment batch of {len(content)} bytes is over Segment's 500 KB")
    # Segment's SDKs (analytics-node, the mobile ones) gzip their batches.
    return Request(
        "POST",
        "/v1/batch",
        {**headers, "Content-Encoding": "gzip"},
        gzip.compress(content, compresslevel=6),
        marks,
        auth=(account.segment_write_key, ""),
    )


def amplitude(account: NewAccount, events: Sequence[Event], rng: random.Random) -> Request:
    now_ms = int(time.time() * 1000)
    body_events: list[dict[str, Any]] = []
    marks = []
    for position, (n, mark) in enumerate(events):
        ids = {
            "user_id": identity(n),
            "device_id": str(uuid.uuid5(uuid.NAMESPACE_OID, str(n))),
            "insert_id": str(uuid.uuid4()),
            "time": now_ms - rng.randrange(0, 3_600_000),
            "library": "amplitude-python/1.3.0",
        }
        if position % 10 == 9:
            body_events.append(
                {
                    **ids,
                    "event_type": "$identify",
                    "user_properties": {
                        "$set": {"email": email(n), "plan": "pro"},
                        "$setOnce": {"first_seen": "2026-01-01"},
                        "$add": {"sessions": 1},
                        "$append": {"channels": "web"},
                    },
                }
            )
            continue
        marks.append(mark)
        (name, category), *_ = rng.sample(PRODUCTS, 1)
        event: dict[str, Any] = {
            **ids,
            "event_type": rng.choice(("Product Viewed", "Product Added", "Order Completed")),
            "event_properties": {
                MARK: mark,
                "product": {"name": name, "category": category, "quantity": 1},
                "tags": ["sale", category.lower()],
            },
            "session_id": now_ms - 60_000,
            "platform": "Web",
            "os_name": "Chrome",
            "country": "India",
            "price": rng.randrange(100, 10000) / 10,
            "quantity": 1,
        }
        if position % 5 == 0:
            event["user_properties"] = {"plan": "pro", "email": email(n)}
        body_events.append(event)
    headers, content = _json({"api_key": account.amplitude_api_key, "events": body_events})
    # The Python SDK sends JSON uncompressed (Accept-Encoding: identity, no gzip).
    return Request("POST", "/batch", headers, content, marks)


def ortto_activity(mark: str) -> str:
    """One of a few activity ids: Ortto takes at most 50 of one activity per person a day."""
    return f"act:cm:product-viewed-{zlib.crc32(mark.encode()) % ORTTO_ACTIVITIES}"


def ortto(account: NewAccount, events: Sequence[Event], rng: random.Random) -> Request:
    now = datetime.now(UTC)
    activities = []
    for n, mark in events:
        (name, category), *_ = rng.sample(PRODUCTS, 1)
        activities.append(
            {
                "activity_id": ortto_activity(mark),
                "attributes": {
                    f"str:cm:{MARK}": mark,
                    "str:cm:currency": "INR",
                    "int:cm:quantity": rng.randrange(1, 4),
                    "obj:cm:product": {
                        "name": name,
                        "category": category,
                        "price": rng.randrange(100, 5000) / 10,
                        "tags": ["sale", category.lower()],
                    },
                },
                "fields": {
                    "str::email": email(n),
                    "str:cm:external-id": identity(n),
                    "str::first": f"Customer {n}",
                },
                "merge_by": ["str::email", "str:cm:external-id"],
                "created": (now - timedelta(seconds=rng.randrange(0, 3600))).isoformat(),
            }
        )
    headers, content = _json({"activities": activities})
    return Request(
        "POST",
        "/v1/activities/create",
        {**headers, "X-Api-Key": account.ortto_api_key},
        content,
        [mark for _, mark in events],
    )


def cordial(account: NewAccount, events: Sequence[Event], rng: random.Random) -> Request:
    ((n, mark),) = events
    (name, category), *_ = rng.sample(PRODUCTS, 1)
    body = {
        "email": email(n),
        "a": rng.choice(("browse", "cart", "order")),
        "ats": (datetime.now(UTC) - timedelta(seconds=rng.randrange(0, 3600))).isoformat(),
        "properties": {
            MARK: mark,
            "url": f"https://shop.example.com/p/{category.lower()}",
            "product": {"name": name, "category": category, "price": rng.randrange(100, 5000)},
            "tags": ["web", category.lower()],
        },
    }
    headers, content = _json(body)
    return Request(
        "POST",
        "/v2/contactactivities",
        headers,
        content,
        [mark],
        auth=(account.cordial_api_key, ""),
    )


def mixpanel(account: NewAccount, events: Sequence[Event], rng: random.Random) -> Request:
    now_ms = int(time.time() * 1000)
    batch = []
    for n, mark in events:
        (name, category), (other, _) = rng.sample(PRODUCTS, 2)
        batch.append(
            {
                "event": rng.choice(("Product Viewed", "Added To Cart", "Order Completed")),
                "properties": {
                    "distinct_id": identity(n),
                    "$user_id": identity(n),
                    "$device_id": str(uuid.uuid5(uuid.NAMESPACE_OID, str(n))),
                    "time": now_ms - rng.randrange(0, 3_600_000),
                    "$insert_id": uuid.uuid4().hex,
                    "mp_lib": "python",
                    MARK: mark,
                    "product": {"name": name, "category": category, "price": rng.randrange(1, 500)},
                    "cart": [name, other],
                    "revenue": rng.randrange(100, 10000) / 10,
                },
            }
        )
    headers, content = _json(batch)
    return Request(
        "POST",
        "/import?strict=1",
        {**headers, "Content-Encoding": "gzip"},
        gzip.compress(content, compresslevel=6),
        [mark for _, mark in events],
        auth=(account.mixpanel_api_secret, ""),
    )


def customerio(account: NewAccount, events: Sequence[Event], rng: random.Random) -> Request:
    now = int(time.time())
    operations: list[dict[str, Any]] = []
    marks = []
    for position, (n, mark) in enumerate(events):
        person = {"type": "person", "identifiers": {"id": identity(n)}}
        if position % 10 == 9:
            attributes: dict[str, Any] = {
                "email": email(n),
                "anonymous_id": str(uuid.uuid5(uuid.NAMESPACE_OID, str(n))),
                "first_name": f"Customer {n}",
                "plan": "pro",
            }
            if (phone := mobile(n)) is not None:
                attributes["phone"] = phone
            operations.append({**person, "action": "identify", "attributes": attributes})
            continue
        marks.append(mark)
        (name, category), *_ = rng.sample(PRODUCTS, 1)
        operations.append(
            {
                **person,
                "action": "event",
                "name": rng.choice(("product_viewed", "added_to_cart", "purchase")),
                "id": uuid.uuid4().hex.upper()[:26],
                "timestamp": now - rng.randrange(0, 3600),
                "attributes": {
                    MARK: mark,
                    "price": rng.randrange(100, 10000) / 10,
                    "product": {"name": name, "category": category, "quantity": 1},
                },
            }
        )
    headers, content = _json({"batch": operations})
    if len(content) > SEGMENT_MAX_BATCH_BYTES:
        raise ValueError(f"a Customer.io batch of {len(content)} bytes is over its 500 KB")
    return Request(
        "POST",
        "/api/v2/batch",
        headers,
        content,
        marks,
        auth=(account.customerio_site_id, account.customerio_api_key),
    )


def posthog(account: NewAccount, events: Sequence[Event], rng: random.Random) -> Request:
    now = datetime.now(UTC)
    batch: list[dict[str, Any]] = []
    marks = []
    for position, (n, mark) in enumerate(events):
        lib = {"$lib": "posthog-node", "$lib_version": "5.74.0", "$geoip_disable": True}
        if position % 10 == 9:
            batch.append(
                {
                    "event": "$identify",
                    "distinct_id": identity(n),
                    "uuid": str(uuid.uuid4()),
                    "properties": {
                        **lib,
                        "$set": {"email": email(n), "name": f"Customer {n}"},
                        "$set_once": {"first_plan": "free"},
                        "$anon_distinct_id": str(uuid.uuid5(uuid.NAMESPACE_OID, str(n))),
                    },
                    "timestamp": now.isoformat(),
                }
            )
            continue
        marks.append(mark)
        (name, category), *_ = rng.sample(PRODUCTS, 1)
        properties: dict[str, Any] = {
            **lib,
            MARK: mark,
            "revenue": rng.randrange(100, 10000) / 10,
            "product": {"name": name, "category": category, "tags": ["sale"]},
        }
        if position % 4 == 0:
            properties["$groups"] = {"company": f"org-{n % 97}"}
        batch.append(
            {
                "event": rng.choice(("product viewed", "product added", "$pageview")),
                "distinct_id": identity(n),
                "uuid": str(uuid.uuid4()),
                "properties": properties,
                "timestamp": (now - timedelta(seconds=rng.randrange(0, 3600))).isoformat(),
            }
        )
    body = {"api_key": account.posthog_api_key, "batch": batch, "sent_at": now.isoformat()}
    headers, content = _json(body)
    # posthog-node gzips its batches (Content-Encoding: gzip), to /batch/.
    return Request(
        "POST",
        "/batch/",
        {**headers, "Content-Encoding": "gzip"},
        gzip.compress(content, compresslevel=6),
        marks,
    )


@dataclass(frozen=True)
class Traffic:
    """How the suite sends one dialect's traffic and checks what was acknowledged."""

    name: str
    #: Activities per request.
    per_request: int
    build: Callable[[NewAccount, Sequence[Event], random.Random], Request]

    @property
    def stored_key(self) -> str:
        return DIALECTS_BY_NAME[self.name].stored_key

    def accepted(self, response: httpx.Response) -> bool:
        """Whether a response means every activity of its request is stored."""
        return DIALECTS_BY_NAME[self.name].accepted(response)

    def prepare(self, http: httpx.Client, account: NewAccount) -> None:
        DIALECTS_BY_NAME[self.name].prepare(http, account)


TRAFFIC: dict[str, Traffic] = {
    t.name: t
    for t in (
        Traffic("netcore", 1000, netcore),
        Traffic("clevertap", 1000, clevertap),
        Traffic("segment", 1000, segment),
        Traffic("ortto", 100, ortto),
        Traffic("cordial", 1, cordial),
        Traffic("mixpanel", 1000, mixpanel),
        Traffic("customerio", 1000, customerio),
        Traffic("amplitude", 1000, amplitude),
        Traffic("posthog", 1000, posthog),
    )
}


class ContactPool:
    """The people of one client: ~600 per 1000 events, 10 % of them new in each batch.

    People are numbered from ``first``; pools with distinct ``first`` never
    share a person. ``known`` are the people of batches already answered.
    """

    def __init__(self, first: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.known: list[int] = []
        self.next = first

    def fresh(self, count: int) -> list[int]:
        made = list(range(self.next, self.next + count))
        self.next += count
        return made

    def batch(self, events: int) -> list[int]:
        """The people of the next batch; the new ones become known."""
        contacts = max(1, events * 6 // 10)
        new = self.fresh(max(1, contacts // 10) if self.known else contacts)
        people = new + self.rng.sample(self.known, min(contacts - len(new), len(self.known)))
        self.known.extend(new)
        return people


def events_of(people: Sequence[int], count: int, tag: str) -> list[Event]:
    """``count`` activities over ``people`` (each at least once while there are enough)."""
    return [(people[i % len(people)], f"{people[i % len(people)]}#{tag}-{i}") for i in range(count)]


class Clients:
    """``count`` clients sending one dialect's traffic, each with its own people and random stream.

    Client ``number``'s people are numbered from ``first_person + number *
    PEOPLE_PER_CLIENT``. Requests built later name the people that earlier
    ones (of the same client) created, so successive stretches of load can
    share one ``Clients``.
    """

    def __init__(
        self, account: NewAccount, traffic: Traffic, count: int, first_person: int = 0
    ) -> None:
        self.account = account
        self.traffic = traffic
        self.count = count
        self.pools = [
            ContactPool(first_person + number * PEOPLE_PER_CLIENT, seed=number)
            for number in range(count)
        ]
        self.rngs = [random.Random(number) for number in range(count)]

    def request(self, number: int, tag: str) -> Request:
        """Client ``number``'s next request; ``tag`` makes its markers unique."""
        per_request = self.traffic.per_request
        people = self.pools[number].batch(per_request)
        return self.traffic.build(
            self.account, events_of(people, per_request, tag), self.rngs[number]
        )

    def warmup(self) -> list[Request]:
        """One request per client, to send untimed: every client's first people."""
        return [self.request(number, "w") for number in range(self.count)]

    def queues(self, requests: int, tag: str) -> list[list[Request]]:
        """``requests`` requests dealt to the clients in turn, one list per client."""
        return [
            [self.request(number, f"{tag}{n}") for n in range(number, requests, self.count)]
            for number in range(self.count)
        ]


@dataclass(frozen=True)
class Answer:
    """One request's answer, as a load generator saw it."""

    #: ``time.perf_counter()`` when the answer arrived.
    at: float
    latency_ms: float
    status: int
    #: The markers of the activities it acknowledged (none unless accepted).
    acknowledged: list[str]
    failure: str | None


class Tally:
    """What a stretch of load got back: latencies, statuses, acknowledged markers."""

    def __init__(self, accepted: Callable[[httpx.Response], bool]) -> None:
        self.accepted = accepted
        self.answers: list[Answer] = []

    async def send(self, http: httpx.AsyncClient, request: Request) -> None:
        started = time.perf_counter()
        r = await request.send(http)
        at = time.perf_counter()
        accepted = self.accepted(r)
        self.answers.append(
            Answer(
                at,
                (at - started) * 1000,
                r.status_code,
                request.marks if accepted else [],
                None if accepted else f"{r.status_code} {r.text[:200]}",
            )
        )

    async def send_each(
        self,
        http: httpx.AsyncClient,
        requests: Sequence[Request],
        until: Callable[[], bool] | None = None,
    ) -> None:
        """Send ``requests`` one after the other; stop before the next once ``until()`` is true."""
        for request in requests:
            if until is not None and until():
                return
            await self.send(http, request)

    def answered_by(self, moment: float) -> Tally:
        """The answers that arrived by ``moment`` (``time.perf_counter()``), as a tally."""
        cut = Tally(self.accepted)
        cut.answers = [a for a in self.answers if a.at <= moment]
        return cut

    @property
    def acknowledged(self) -> list[str]:
        return [mark for answer in self.answers for mark in answer.acknowledged]

    def figures(self, seconds: float, cpu: float | None) -> dict[str, Any]:
        """The figures every batch part reports (``cpu``: the server's CPU seconds, if read)."""
        done = self.acknowledged
        latencies = [a.latency_ms for a in self.answers]
        failures = [a.failure for a in self.answers if a.failure is not None]
        statuses = Counter(a.status for a in self.answers)
        return {
            "events": len(done),
            "seconds": round(seconds, 2),
            "events_per_s": round(len(done) / seconds, 1),
            "p50_ms": round(percentile(latencies, 0.50), 1),
            "p99_ms": round(percentile(latencies, 0.99), 1),
            "statuses": {str(code): count for code, count in sorted(statuses.items())},
            "server_cpu_s": None if cpu is None else round(cpu, 2),
            "server_cpu_ms_per_1000": (
                round(cpu * 1e6 / len(done), 1) if cpu is not None and done else None
            ),
            "failures": failures[:5],
            "failed": len(failures),
            "acknowledged": done,
        }


def count_missing(url: str, account: NewAccount, results: dict[str, dict[str, Any]]) -> None:
    """Replace each figure set's acknowledged markers by how many of them are not stored
    and how many are stored more than once."""
    store = Database.from_url(url, pool_size=1)
    try:
        for name, figures in results.items():
            traffic = TRAFFIC[figures.get("dialect", name)]
            stored = Counter(
                stored_markers(store, account.account.id, DIALECTS_BY_NAME[traffic.name])
            )
            acknowledged = figures.pop("acknowledged")
            figures["missing"] = sum(1 for m in acknowledged if m not in stored)
            figures["doubled"] = sum(1 for m in acknowledged if stored[m] > 1)
    finally:
        store.dispose()
