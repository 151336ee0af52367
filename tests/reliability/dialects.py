"""The dialects the reliability suite exercises: adding a dialect is one entry in ``DIALECTS``.

Each entry knows how to authenticate as an account, how to send a batch of
activities each carrying a unique marker (a property named ``mark``), and how
to find those markers again among the stored activities. The crash, hostile
input, tenant isolation, fuzz and load parts all iterate over ``DIALECTS``.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select

from eventyard.core.model import NewAccount
from eventyard.storage.database import Database
from eventyard.storage.tables import activities
from tests.support import admin

#: The property every generated activity carries with its marker.
MARK = "mark"


@dataclass(frozen=True)
class Request:
    """One HTTP request of a dialect, ready for ``httpx.Client.request``."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any = None
    auth: tuple[str, str] | None = None

    def send(self, http: httpx.Client, **extra_headers: str) -> httpx.Response:
        return http.request(
            self.method,
            self.path,
            json=self.json,
            headers={**self.headers, **extra_headers},
            auth=self.auth,
        )


@dataclass(frozen=True)
class Dialect:
    """How the reliability suite speaks one dialect."""

    name: str
    #: Largest number of activities one request of this dialect carries in the suite.
    batch_size: int
    #: ``batch(account, markers)``: one request storing one activity per marker.
    batch: Callable[[NewAccount, Sequence[str]], Request]
    #: The key under which the marker is stored in ``activities.properties``.
    stored_key: str = MARK
    #: Whether a 2xx answer means every activity of the request is stored.
    accepted: Callable[[httpx.Response], bool] = lambda r: 200 <= r.status_code < 300
    #: Called once per account before the first request (definitions, settings).
    prepare: Callable[[httpx.Client, NewAccount], None] = lambda http, account: None
    #: The status of a request whose credential opens no account (Amplitude: 400, the key
    #: travels in the body as ``api_key``).
    unauthorized_status: int = 401

    def contact_of(self, marker: str) -> str:
        """The e-mail of the contact an activity with ``marker`` belongs to.

        Markers sharing a prefix before ``#`` share a contact, so a batch
        exercises both new and already known contacts.
        """
        return f"{marker.split('#', 1)[0]}@reliability.example.com"


def _netcore(account: NewAccount, markers: Sequence[str]) -> Request:
    d = DIALECTS_BY_NAME["netcore"]
    body = [
        {
            "asset_id": "reliability",
            "activity_name": "Reliability Check",
            "timestamp": "2026-01-01T00:00:00Z",
            "identity": d.contact_of(m),
            "activity_source": "web",
            "activity_params": {MARK: m},
        }
        for m in markers
    ]
    return Request("POST", "/v1/activity/upload", {"api-key": account.netcore_api_key}, body)


def _clevertap(account: NewAccount, markers: Sequence[str]) -> Request:
    d = DIALECTS_BY_NAME["clevertap"]
    body = {
        "d": [
            {
                "identity": d.contact_of(m),
                "ts": 1767225600,
                "type": "event",
                "evtName": "Reliability Check",
                "evtData": {MARK: m},
            }
            for m in markers
        ]
    }
    headers = {
        "X-CleverTap-Account-Id": account.clevertap_account_id,
        "X-CleverTap-Passcode": account.clevertap_passcode,
    }
    return Request("POST", "/1/upload", headers, body)


def _clevertap_accepted(r: httpx.Response) -> bool:
    """CleverTap answers 200 with per-record results; success means none unprocessed."""
    if r.status_code != 200:
        return False
    body = r.json()
    return bool(body.get("status") == "success" and not body.get("unprocessed"))


#: Ortto allows "Max activity events per activity per contact per 24 hours | 50";
#: spreading markers over this many activities keeps long runs under it.
ORTTO_ACTIVITIES = 8


def _ortto_activity(marker: str) -> str:
    return f"act:cm:reliability-check-{zlib.crc32(marker.encode()) % ORTTO_ACTIVITIES}"


def _ortto(account: NewAccount, markers: Sequence[str]) -> Request:
    d = DIALECTS_BY_NAME["ortto"]
    body = {
        "activities": [
            {
                "activity_id": _ortto_activity(m),
                "attributes": {f"str:cm:{MARK}": m},
                "fields": {"str::email": d.contact_of(m)},
                "merge_by": ["str::email"],
            }
            for m in markers
        ]
    }
    return Request("POST", "/v1/activities/create", {"X-Api-Key": account.ortto_api_key}, body)


def _ortto_accepted(r: httpx.Response) -> bool:
    """Ortto answers 200 when any activity was accepted; each one says whether it was."""
    if r.status_code != 200:
        return False
    return all(entry.get("status") in {"ingested", "queued"} for entry in r.json()["activities"])


def _ortto_prepare(http: httpx.Client, account: NewAccount) -> None:
    """Ortto refuses activities without a definition; let first use create it."""
    r = http.patch(
        "/api/v1/account/settings", json={"auto_create_definitions": True}, headers=admin(account)
    )
    assert r.status_code == 200, r.text


def _cordial(account: NewAccount, markers: Sequence[str]) -> Request:
    """Cordial's POST carries one activity; the suite sends it one marker at a time."""
    (marker,) = markers
    d = DIALECTS_BY_NAME["cordial"]
    body = {"email": d.contact_of(marker), "a": "reliability-check", "properties": {MARK: marker}}
    return Request("POST", "/v2/contactactivities", {}, body, auth=(account.cordial_api_key, ""))


def _segment(account: NewAccount, markers: Sequence[str]) -> Request:
    d = DIALECTS_BY_NAME["segment"]
    body = {
        "batch": [
            {
                "type": "track",
                "userId": d.contact_of(m),
                "event": "Reliability Check",
                "properties": {MARK: m},
                "messageId": f"{m}-{uuid.uuid5(uuid.NAMESPACE_URL, m)}",
                "timestamp": "2026-01-01T00:00:00Z",
            }
            for m in markers
        ]
    }
    return Request("POST", "/v1/batch", {}, body, auth=(account.segment_write_key, ""))


def _segment_accepted(r: httpx.Response) -> bool:
    """Segment answers 200 even when it drops invalid calls; the suite's calls are all valid."""
    return r.status_code == 200 and "X-Eventyard-Rejected-Messages" not in r.headers


def _mixpanel(account: NewAccount, markers: Sequence[str]) -> Request:
    """Mixpanel's strict ``/import``: ``time``, ``distinct_id`` and ``$insert_id`` each."""
    d = DIALECTS_BY_NAME["mixpanel"]
    body = [
        {
            "event": "Reliability Check",
            "properties": {
                "distinct_id": d.contact_of(m),
                "time": 1767225600,
                # Fresh per request: the hostile-input cases reuse one marker in one
                # account, and the same (event, distinct_id, time, $insert_id) is a duplicate.
                "$insert_id": uuid.uuid4().hex,
                MARK: m,
            },
        }
        for m in markers
    ]
    return Request("POST", "/import", {}, body, auth=(account.mixpanel_api_secret, ""))


def _mixpanel_accepted(r: httpx.Response) -> bool:
    """Strict ``/import`` answers 200 only when every event was imported."""
    return r.status_code == 200 and r.json().get("code") == 200


def _customerio(account: NewAccount, markers: Sequence[str]) -> Request:
    """Customer.io's v2 batch: one ``event`` operation per marker, its ``id`` for dedup.

    The ids are fresh for every request built (a request resent keeps them): the
    hostile-input cases share one account and the same marker, and an id seen
    before would be dropped as a repeat ("a repeated value is ignored")."""
    d = DIALECTS_BY_NAME["customerio"]
    body = {
        "batch": [
            {
                "type": "person",
                "identifiers": {"email": d.contact_of(m)},
                "action": "event",
                "name": "Reliability Check",
                "id": uuid.uuid4().hex,
                "timestamp": 1767225600,
                "attributes": {MARK: m},
            }
            for m in markers
        ]
    }
    auth = (account.customerio_site_id, account.customerio_api_key)
    return Request("POST", "/api/v2/batch", {}, body, auth=auth)


def _customerio_accepted(r: httpx.Response) -> bool:
    """200 ``{}``: every operation stored; 207 names the refused ones."""
    return r.status_code == 200


def _amplitude(account: NewAccount, markers: Sequence[str]) -> Request:
    """Through the shared ``/batch`` (Amplitude's Batch API: 1000 events per second per
    user, so the suite's loads stay under the throttle). Each request gets fresh
    ``insert_id`` values (a resent request keeps its own): the hostile-input cases
    reuse one marker in one account, and equal ids would make later cases duplicates."""
    d = DIALECTS_BY_NAME["amplitude"]
    body = {
        "api_key": account.amplitude_api_key,
        "events": [
            {
                "user_id": d.contact_of(m),
                "event_type": "Reliability Check",
                "event_properties": {MARK: m},
                "insert_id": f"{m}-{uuid.uuid4()}",
                "time": 1767225600000,
            }
            for m in markers
        ],
    }
    return Request("POST", "/batch", {}, body)


def _posthog(account: NewAccount, markers: Sequence[str]) -> Request:
    d = DIALECTS_BY_NAME["posthog"]
    body = {
        "api_key": account.posthog_api_key,
        "batch": [
            {
                "event": "Reliability Check",
                "distinct_id": d.contact_of(m),
                "properties": {MARK: m},
                # Fresh per request (a retry resends the same Request): the hostile input
                # tests send one marker text to one account per module, case after case.
                "uuid": str(uuid.uuid4()),
                "timestamp": "2026-01-01T00:00:00Z",
            }
            for m in markers
        ],
    }
    return Request("POST", "/batch/", {}, body)


def _posthog_accepted(r: httpx.Response) -> bool:
    """PostHog answers 200 even when it drops invalid events; the suite's are all valid."""
    return r.status_code == 200 and "X-Eventyard-Rejected-Events" not in r.headers


DIALECTS: tuple[Dialect, ...] = (
    Dialect("netcore", 1000, _netcore),
    Dialect("clevertap", 1000, _clevertap, accepted=_clevertap_accepted),
    Dialect(
        "ortto",
        100,
        _ortto,
        stored_key=f"str:cm:{MARK}",
        accepted=_ortto_accepted,
        prepare=_ortto_prepare,
    ),
    Dialect("cordial", 1, _cordial),
    Dialect("segment", 1000, _segment, accepted=_segment_accepted),
    Dialect("mixpanel", 1000, _mixpanel, accepted=_mixpanel_accepted),
    Dialect("customerio", 1000, _customerio, accepted=_customerio_accepted),
    Dialect("amplitude", 1000, _amplitude, unauthorized_status=400),
    Dialect("posthog", 1000, _posthog, accepted=_posthog_accepted),
)
DIALECTS_BY_NAME = {d.name: d for d in DIALECTS}


def stored_markers(store: Database, account_id: str, dialect: Dialect) -> list[str]:
    """Every marker stored for ``account_id``, once per stored activity (so repeats show)."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(activities.c.properties).where(activities.c.account_id == account_id)
        ).scalars()
        return [p[dialect.stored_key] for p in rows if dialect.stored_key in p]


def markers(prefix: str, count: int, contacts: int) -> list[str]:
    """``count`` unique markers spread over ``contacts`` contacts (``prefix-c#i``)."""
    return [f"{prefix}-{i % contacts}#{i}" for i in range(count)]
