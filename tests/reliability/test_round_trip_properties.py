"""Any valid record, sent in any dialect, comes back unchanged from the canonical model.

Issue 9: "Hypothesis property tests for each dialect's translation (any valid
record round-trips through the canonical model ...)". Hypothesis draws an
activity (a name, properties of any JSON shape the dialect allows, a moment
in the account's retention) and a fresh contact; the test sends it to a real
server in the dialect's wire format, then finds the contact and its timeline
through eventyard's own read API and compares name, properties and moment.
Invalid records are the subject of tests/reliability/test_translation_properties.py.

Adding a dialect is one entry in ``DIALECTS``. ``EVENTYARD_PROPERTY_EXAMPLES``
sets the examples per dialect and backend (default 25).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventyard.core.model import NewAccount
from tests.support import admin, find_contact

EXAMPLES = int(os.environ.get("EVENTYARD_PROPERTY_EXAMPLES", "25"))
PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    # One account serves every example of a test; each example has its own contact.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Moments within every account's retention (548 days) and Ortto's window.
EARLIEST = datetime.now(UTC) - timedelta(days=300)
LATEST = datetime.now(UTC) - timedelta(minutes=5)

#: Text every store keeps as sent: any Unicode scalar but U+0000 (which no
#: dialect stores; the hostile-input tests cover it).
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)
#: Property names every dialect keeps: Cordial strips names that are all
#: digits or hold a period ("Property keys consisting of numeric-only values
#: (e.g. 57) or keys containing a period ... will be stripped").
KEY = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00."), min_size=1, max_size=30
).filter(lambda k: not k.isdecimal() and not k.isdigit())
SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    # CleverTap reads "$D_" strings as dates: "Date values must be prefixed with $D_".
    | TEXT.filter(lambda s: not s.startswith("$D_"))
)
JSON = st.recursive(
    SCALAR,
    lambda inner: (
        st.lists(inner, min_size=1, max_size=3)
        | st.dictionaries(KEY, inner, min_size=1, max_size=3)
    ),
    max_leaves=10,
)
#: Netcore skips an event whose top-level parameter is an empty array ("Do not
#: Pass an Empty Array"), so lists above are never empty.
PROPERTIES = st.dictionaries(KEY, JSON, max_size=8)
#: Names as the dialects keep them: no surrounding blanks (Netcore and
#: CleverTap trim them), 1 to 40 characters (Cordial's limit), none reserved.
NAME = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=8,
).map(lambda s: f"evt {s}")
MOMENT = st.datetimes(
    min_value=EARLIEST.replace(tzinfo=None),
    max_value=LATEST.replace(tzinfo=None),
    timezones=st.just(UTC),
)


@dataclass(frozen=True)
class Sample:
    name: str
    properties: dict[str, Any]
    moment: datetime
    #: A fresh contact for every call: Hypothesis replays examples (shrinking,
    #: its database), and a replay must not find the previous call's activity.
    person: str = field(default_factory=lambda: f"rt-{uuid.uuid4().hex}")


@dataclass(frozen=True)
class Sent:
    """What the read API must show: the contact's identifier and the activity."""

    identifier: str
    name: str
    properties: dict[str, Any]
    moment: datetime


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def send_netcore(http: httpx.Client, account: NewAccount, s: Sample) -> Sent:
    event = {
        "asset_id": "55a6d1d3ac4d5253ca4afd9636442434",
        "activity_name": s.name,
        "timestamp": iso(s.moment),
        "identity": s.person,
        "activity_source": "web",
        "activity_params": s.properties,
    }
    r = http.post("/v1/activity/upload", json=[event], headers={"api-key": account.netcore_api_key})
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "success"}, r.text
    return Sent(f"identity:{s.person}", s.name, s.properties, s.moment)


def send_clevertap(http: httpx.Client, account: NewAccount, s: Sample) -> Sent:
    moment = s.moment.replace(microsecond=0)  # "ts": a UNIX epoch in seconds
    record = {
        "identity": s.person,
        "type": "event",
        "ts": int(moment.timestamp()),
        "evtName": s.name,
        "evtData": s.properties,
    }
    r = http.post(
        "/1/upload",
        json={"d": [record]},
        headers={
            "X-CleverTap-Account-Id": account.clevertap_account_id,
            "X-CleverTap-Passcode": account.clevertap_passcode,
        },
    )
    assert r.json() == {"status": "success", "processed": 1, "unprocessed": []}, r.text
    return Sent(f"identity:{s.person}", s.name, s.properties, moment)


def send_cordial(http: httpx.Client, account: NewAccount, s: Sample) -> Sent:
    email = f"{s.person}@example.com"
    body = {"email": email, "a": s.name, "ats": iso(s.moment), "properties": s.properties}
    r = http.post("/v2/contactactivities", json=body, auth=(account.cordial_api_key, ""))
    assert r.status_code == 200, r.text
    assert r.json()["success"] is True, r.text
    return Sent(f"email:{email}", s.name, s.properties, s.moment)


def send_segment(http: httpx.Client, account: NewAccount, s: Sample) -> Sent:
    message = {
        "type": "track",
        "userId": s.person,
        "event": s.name,
        "properties": s.properties,
        "timestamp": iso(s.moment),
        "messageId": uuid.uuid4().hex,
    }
    r = http.post("/v1/batch", json={"batch": [message]}, auth=(account.segment_write_key, ""))
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True}, r.text
    return Sent(f"identity:{s.person}", s.name, s.properties, s.moment)


def send_mixpanel(http: httpx.Client, account: NewAccount, s: Sample) -> Sent:
    """A strict ``/import``; ``time`` in milliseconds (the moment is kept to the millisecond),
    and ``distinct_id`` and ``$insert_id`` stay among the properties."""
    moment_ms = int(s.moment.timestamp() * 1000)
    properties = {**s.properties, "distinct_id": s.person, "$insert_id": uuid.uuid4().hex}
    event = {"event": s.name, "properties": {**properties, "time": moment_ms}}
    r = http.post("/import", json=[event], auth=(account.mixpanel_api_secret, ""))
    assert r.status_code == 200, r.text
    assert r.json() == {"code": 200, "num_records_imported": 1, "status": "OK"}, r.text
    moment = datetime.fromtimestamp(moment_ms / 1000, UTC)
    return Sent(f"identity:{s.person}", s.name, properties, moment)


def send_amplitude(http: httpx.Client, account: NewAccount, s: Sample) -> Sent:
    """``time`` is whole milliseconds ("milliseconds since epoch"): the moment is sent
    and compared at that precision."""
    millis = (s.moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    event = {
        "user_id": s.person,
        "event_type": s.name,
        "event_properties": s.properties,
        "time": millis,
        "insert_id": uuid.uuid4().hex,
    }
    r = http.post("/2/httpapi", json={"api_key": account.amplitude_api_key, "events": [event]})
    assert r.status_code == 200, r.text
    assert r.json()["events_ingested"] == 1, r.text
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)
    return Sent(f"identity:{s.person}", s.name, s.properties, moment)


#: Ortto attributes are typed by their field id ("str:cm:...", "int:cm:...")
#: and declared in the activity's definition first.
ORTTO_ACTIVITY = "act:cm:round-trip"
ORTTO_FIELDS = {
    "str:cm:text": "str",
    "int:cm:count": "int",
    "bol:cm:flag": "bol",
    "obj:cm:details": "obj",
}
ORTTO_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "str:cm:text": TEXT,
    "int:cm:count": st.integers(-(2**63) + 1, 2**63 - 1),
    "bol:cm:flag": st.booleans(),
    "obj:cm:details": st.dictionaries(KEY, JSON, max_size=4),
}


def prepare_ortto(http: httpx.Client, account: NewAccount) -> None:
    r = http.post(
        "/api/v1/activity-definitions",
        json={"activity_id": ORTTO_ACTIVITY, "name": "Round trip", "fields": ORTTO_FIELDS},
        headers=admin(account),
    )
    assert r.status_code == 201, r.text


def send_ortto(http: httpx.Client, account: NewAccount, s: Sample) -> Sent:
    email = f"{s.person}@example.com"
    # The drawn properties become the object attribute; the typed ones come
    # from the sample's name so each type is exercised.
    attributes = {
        "str:cm:text": s.name,
        "int:cm:count": len(s.properties),
        "bol:cm:flag": bool(s.properties),
        "obj:cm:details": s.properties,
    }
    activity = {
        "activity_id": ORTTO_ACTIVITY,
        "attributes": attributes,
        "fields": {"str::email": email},
        "merge_by": ["str::email"],
        "created": iso(s.moment),
    }
    r = http.post(
        "/v1/activities/create",
        json={"activities": [activity]},
        headers={"X-Api-Key": account.ortto_api_key},
    )
    assert r.status_code == 200, r.text
    [entry] = r.json()["activities"]
    assert entry["status"] in {"ingested", "queued"}, r.text
    return Sent(f"email:{email}", ORTTO_ACTIVITY, attributes, s.moment)


@dataclass(frozen=True)
class Dialect:
    send: Callable[[httpx.Client, NewAccount, Sample], Sent]
    prepare: Callable[[httpx.Client, NewAccount], None] | None = None


DIALECTS: dict[str, Dialect] = {
    "netcore": Dialect(send_netcore),
    "clevertap": Dialect(send_clevertap),
    "cordial": Dialect(send_cordial),
    "segment": Dialect(send_segment),
    "ortto": Dialect(send_ortto, prepare_ortto),
    "mixpanel": Dialect(send_mixpanel),
    "amplitude": Dialect(send_amplitude),
}

SAMPLES = st.builds(
    Sample,
    name=NAME,
    properties=PROPERTIES,
    moment=MOMENT,
)


def stored_activity(http: httpx.Client, account: NewAccount, identifier: str) -> dict[str, Any]:
    """The contact's one activity, once stored (Ortto queues backdated ones for the worker)."""
    deadline = time.monotonic() + 20
    while True:
        contact = find_contact(http, account, identifier)
        if contact is not None:
            r = http.get(f"/api/v1/contacts/{contact['id']}/activities", headers=admin(account))
            assert r.status_code == 200, r.text
            activities = r.json()["activities"]
            if activities:
                [activity] = activities
                return dict(activity)
        assert time.monotonic() < deadline, f"nothing stored for {identifier}"
        time.sleep(0.05)


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_any_valid_activity_round_trips(
    http: httpx.Client, account: NewAccount, dialect: str
) -> None:
    spec = DIALECTS[dialect]
    if spec.prepare is not None:
        spec.prepare(http, account)

    @PROPERTY_SETTINGS
    @given(drawn=SAMPLES)
    def round_trip(drawn: Sample) -> None:
        sample = Sample(drawn.name, drawn.properties, drawn.moment)
        sent = spec.send(http, account, sample)
        stored = stored_activity(http, account, sent.identifier)
        assert stored["dialect"] == dialect
        assert stored["name"] == sent.name
        assert stored["properties"] == sent.properties
        # Types too: 1.0 must not come back as 1, nor True as 1.
        assert repr(stored["properties"]) == repr(sent.properties)
        occurred = datetime.fromisoformat(stored["occurred_at"].replace("Z", "+00:00"))
        assert occurred == sent.moment

    round_trip()
