"""Any invalid record yields a precise error: its position and the field at fault.

Issue 9: "Hypothesis property tests for each dialect's translation (... any
invalid one yields a precise error)". For every dialect Hypothesis builds a
batch of valid records, breaks exactly one of them in one field with a value
that field refuses, and checks that the translation names that record's
index and that field, keeps every other record, and never raises. (That any
valid record round-trips through the canonical model is
tests/reliability/test_round_trip_properties.py, on a real server.)

Adding a dialect is one entry in ``DIALECTS``: a valid record, the bad
values of each field, and a function from a batch to the problems found
(index, field) and the number of records kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventyard.core.errors import EventyardError
from eventyard.dialects.amplitude.translate import Upload
from eventyard.dialects.amplitude.translate import translate_events as translate_amplitude
from eventyard.dialects.clevertap.translate import translate_records
from eventyard.dialects.cordial.translate import CONTACT_KEYS, translate_activity
from eventyard.dialects.mixpanel.translate import Context as MixpanelContext
from eventyard.dialects.mixpanel.translate import translate_records as mixpanel_records
from eventyard.dialects.netcore.translate import translate_events
from eventyard.dialects.ortto.translate import Accepted, Refused, translate
from eventyard.dialects.segment.translate import (
    MAX_MESSAGE_ID_LENGTH,
    parse_request,
    translate_messages,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
MISSING = object()  # the field left out of the record


@dataclass(frozen=True)
class Problem:
    index: int
    field: str


#: What a translation of a batch found: the problems, and how many records it kept.
Outcome = tuple[list[Problem], int]


@dataclass(frozen=True)
class Dialect:
    valid: Callable[[int], dict[str, Any]]
    #: field -> values that field refuses (``MISSING``: leaving it out).
    bad: dict[str, list[Any]]
    translate: Callable[[list[Any]], Outcome]
    #: The dialect refuses a request with several records (Cordial takes one).
    single: bool = False


# --- Netcore -------------------------------------------------------------


def netcore_valid(n: int) -> dict[str, Any]:
    return {
        "asset_id": "55a6d1d3ac4d5253ca4afd9636442434",
        "activity_name": "Add To Cart",
        "timestamp": "2025-09-30T08:40:46Z",
        "identity": f"customer-{n}",
        "activity_source": "web",
        "activity_params": {"currency": "INR"},
    }


def netcore_translate(batch: list[Any]) -> Outcome:
    translation, errors = translate_events(batch)
    assert all(e.index is not None for e in errors)
    return [Problem(e.index or 0, e.field) for e in errors], len(translation.activities)


NETCORE = Dialect(
    netcore_valid,
    {
        # "Missing Parameter - asset_id", and the other required fields likewise.
        "asset_id": [MISSING, "", "   ", 5, "x" * 256],
        "activity_name": [MISSING, "", 5, ["Add"], "x" * 256],
        "timestamp": [MISSING, "", "soon", 1700000000, "2025-13-01T00:00:00Z"],
        "activity_source": [MISSING, "", "tv", 3],
        "activity_params": [MISSING, [], "x", 5],
        "identity": [MISSING, {"id": 1}, 1.5, True],
        "email": [5, "not an e-mail"],
    },
    netcore_translate,
)

# --- CleverTap -----------------------------------------------------------


def clevertap_valid(n: int) -> dict[str, Any]:
    return {
        "identity": f"customer-{n}",
        "type": "event",
        "ts": 1700000000,
        "evtName": "Charged",
        "evtData": {"Amount": 300},
    }


def clevertap_translate(batch: list[Any]) -> Outcome:
    translation = translate_records(batch, now=NOW)
    return [Problem(e.index, e.field) for e in translation.errors], len(translation.commands)


CLEVERTAP = Dialect(
    clevertap_valid,
    {
        "type": [MISSING, "click", 5],
        "evtName": [MISSING, "", 5, "x" * 121, "App Launched"],
        "evtData": [MISSING, [], "x"],
        "ts": ["soon", True, 1.5, 10**14],
        "identity": [MISSING, {"id": 1}, 1.5],
    },
    clevertap_translate,
)

# --- Ortto ---------------------------------------------------------------


def ortto_valid(n: int) -> dict[str, Any]:
    return {
        "activity_id": "act:cm:purchase",
        "attributes": {"str:cm:product": "Widget", "int:cm:count": 2},
        "fields": {"str::email": f"p{n}@example.com"},
        "merge_by": ["str::email"],
        "created": (NOW - timedelta(days=1)).isoformat(),
    }


def ortto_translate(batch: list[Any]) -> Outcome:
    translation = translate(
        batch,
        run_async=False,
        now=NOW,
        default_strategy="overwrite",
        retention=timedelta(days=548),
    )
    problems = []
    for item in translation.items:
        if isinstance(item, Refused):
            # "activities[3].attributes.int:cm:count: must be an integer"
            prefix = f"activities[{item.index}]."
            assert item.message.startswith(prefix), item.message
            problems.append(Problem(item.index, item.message[len(prefix) :].split(": ")[0]))
    kept = sum(isinstance(item, Accepted) for item in translation.items)
    return problems, kept


ORTTO = Dialect(
    ortto_valid,
    {
        "activity_id": [MISSING, "", "purchase", 5],
        "attributes": [MISSING, [], "x"],
        "created": [5, "yesterday", "2026-05-31T00:00:00", (NOW - timedelta(days=600)).isoformat()],
        "key": ["", 5, "k" * 256],
        "person_id": ["not-an-id", 5],
        "fields": [[], "x"],
        "fields.str::email": [5, True],
        "merge_by": [["str::phone-number", "str::email", "str::first", "str::last"], "x"],
    },
    ortto_translate,
)


def ortto_typed_attributes() -> dict[str, list[Any]]:
    """Each typed attribute refuses a value of another type (field "attributes.ID")."""
    return {
        "attributes.str:cm:product": [5, True, {"a": 1}],
        "attributes.int:cm:count": ["2", 2.5, True, 2**63],
    }


# --- Cordial -------------------------------------------------------------


def cordial_valid(n: int) -> dict[str, Any]:
    return {
        "email": f"c{n}@example.com",
        "a": "browse",
        "ats": "2025-01-09T17:47:43Z",
        "properties": {"url": "https://example.com/shoes"},
    }


def cordial_translate(batch: list[Any]) -> Outcome:
    [body] = batch
    try:
        translate_activity(body, keys=CONTACT_KEYS, now=NOW)
    except EventyardError as exc:
        # Cordial answers one error naming the field: the body is record 0.
        return [Problem(0, e.field) for e in exc.errors], 0
    return [], 1


CORDIAL = Dialect(
    cordial_valid,
    {
        "a": [MISSING, "", 5, "x" * 41, "open"],
        "ats": [5, "soon", "2025-13-01"],
        "properties": [[], "x"],
        "email": [MISSING, 5, "not an e-mail"],
    },
    cordial_translate,
    single=True,
)

# --- Segment -------------------------------------------------------------


def segment_valid(n: int) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": f"user-{n}",
        "event": "Item Purchased",
        "properties": {"revenue": 39.95},
        "timestamp": "2025-01-09T17:47:43Z",
        "messageId": f"m-{n}",
    }


def segment_translate(batch: list[Any]) -> Outcome:
    translation = translate_messages(
        parse_request({"batch": batch}, None), None, now=NOW, write_key="k"
    )
    return [Problem(p.index, p.field) for p in translation.errors], len(translation.records)


SEGMENT = Dialect(
    segment_valid,
    {
        "type": [MISSING, "click", 5],
        # "All Track events sent to Segment must have an event field".
        "event": [MISSING, "", 5, "x" * 256],
        "properties": [[], "x"],
        "timestamp": ["soon", 1700000000, "2015-13-01T00:00:00Z"],
        "userId": [MISSING, {"id": 1}, ["u"]],
        # A number is read as its digits, as the libraries' own ids are strings.
        "messageId": [{"id": 1}, 1.5, "m" * (MAX_MESSAGE_ID_LENGTH + 1)],
        "writeKey": ["another-sources-key"],
    },
    segment_translate,
)

# --- Mixpanel (strict /import) ---------------------------------------------


def mixpanel_valid(n: int) -> dict[str, Any]:
    return {
        "event": "Purchase",
        "properties": {
            "distinct_id": f"user-{n}",
            "time": int(NOW.timestamp()) - 86400 * 30,
            "$insert_id": f"insert-{n}",
            "cart": {"items": [{"sku": "A1"}]},
        },
    }


def mixpanel_translate(batch: list[Any]) -> Outcome:
    translation = mixpanel_records(batch, MixpanelContext("import", NOW, None, strict=True))
    return (
        [Problem(p.index, p.field) for p in translation.errors],
        len(set(translation.positions)),
    )


MIXPANEL = Dialect(
    mixpanel_valid,
    {
        "event": [MISSING, "", 5],
        "properties": [[], "x"],
        # "rejected if before 1971-01-01 or more than 1 hour in the future".
        "properties.time": [MISSING, "soon", 100, int(NOW.timestamp()) + 7200],
        "properties.distinct_id": [MISSING, "undefined", "null", {"id": 1}],
        # "≤ 36 bytes; only alphanumerics and -".
        "properties.$insert_id": [MISSING, "not valid!", "x" * 37, 5],
    },
    mixpanel_translate,
)


# --- Amplitude -----------------------------------------------------------


def amplitude_valid(n: int) -> dict[str, Any]:
    return {
        "user_id": f"user-{n:05d}",
        "event_type": "watch_tutorial",
        "time": 1396381378123,
        "insert_id": f"insert-{n}",
        "event_properties": {"source": "notification"},
    }


def amplitude_translate(batch: list[Any]) -> Outcome:
    translation, problems = translate_amplitude(Upload("k", batch, 5, size=0), now=NOW)
    return [Problem(e.index, e.field) for e in problems.errors], len(translation.records)


AMPLITUDE = Dialect(
    amplitude_valid,
    {
        "event_type": [MISSING, "", 5, "x" * 1025],
        # Refused ids ("null"), too long, too short with no other id ("ab").
        "user_id": [MISSING, {"id": 1}, ["u"], "null", "x" * 1025, "ab"],
        "time": ["2024-01-01T00:00:00Z", True, -5],
        "insert_id": [{"id": 1}, "x" * 1025],
        "event_properties": [[], "x"],
        # Operations are read on $identify only (tests/unit/test_amplitude_translate.py).
        "user_properties": [[], "x"],
        "groups": ["x", {f"type{i}": "v" for i in range(6)}],
    },
    amplitude_translate,
)

DIALECTS: dict[str, Dialect] = {
    "netcore": NETCORE,
    "clevertap": CLEVERTAP,
    "ortto": Dialect(ORTTO.valid, {**ORTTO.bad, **ortto_typed_attributes()}, ORTTO.translate),
    "cordial": CORDIAL,
    "segment": SEGMENT,
    "mixpanel": MIXPANEL,
    "amplitude": AMPLITUDE,
}


def broken(record: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    """``record`` with ``field`` (``a.b``: key ``b`` of object ``a``) set to ``value``."""
    record = {**record}
    head, _, rest = field.partition(".")
    if rest:
        record[head] = broken(record[head], rest, value)
    elif value is MISSING:
        record.pop(head, None)
        if head == "identity":  # Netcore, CleverTap: no identifier at all
            record.pop("email", None)
        if head == "userId":  # Segment: "userId or anonymousId" required
            record.pop("anonymousId", None)
    else:
        record[head] = value
    return record


@st.composite
def batches(draw: st.DrawFn, dialect: Dialect) -> tuple[list[Any], int, str]:
    """A batch of valid records but one, which has one bad field."""
    size = 1 if dialect.single else draw(st.integers(1, 6))
    position = draw(st.integers(0, size - 1))
    field = draw(st.sampled_from(sorted(dialect.bad)))
    value = draw(st.sampled_from(dialect.bad[field]))
    batch: list[Any] = [dialect.valid(n) for n in range(size)]
    batch[position] = broken(batch[position], field, value)
    return batch, position, field


@pytest.mark.parametrize("name", list(DIALECTS))
def test_every_valid_record_is_kept(name: str) -> None:
    dialect = DIALECTS[name]
    size = 1 if dialect.single else 5
    assert dialect.translate([dialect.valid(n) for n in range(size)]) == ([], size)


@pytest.mark.parametrize("name", list(DIALECTS))
def test_a_bad_field_is_named_with_its_record(name: str) -> None:
    dialect = DIALECTS[name]

    @settings(max_examples=300, deadline=None)
    @given(case=batches(dialect))
    def check(case: tuple[list[Any], int, str]) -> None:
        batch, position, field = case
        problems, kept = dialect.translate(batch)
        assert problems, f"record {position} with a bad {field} was accepted: {batch[position]}"
        # Only the broken record is blamed, and the field at fault is named
        # (a missing identifier may be named by the one the dialect asks for).
        assert {p.index for p in problems} == {position}, problems
        assert field in {p.field for p in problems}, (field, problems)
        assert kept == len(batch) - 1

    check()
