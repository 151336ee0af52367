"""Core rules the Ortto dialect leans on: queued commands as JSON, merge strategies,
conversion values and the rate limiter (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventyard.core.commands import record_from_json, record_to_json
from eventyard.core.identifiers import Identifier
from eventyard.core.model import ContactHint, MergeStrategy, NewActivity, ProfileUpdate
from eventyard.core.money import milli_to_decimal
from eventyard.core.profiles import apply_update, is_empty
from eventyard.core.ratelimit import RateLimiter

CONTACT = "00647687d2e43b25a0261f00"


def through_json(record: NewActivity | ProfileUpdate) -> NewActivity | ProfileUpdate:
    """The record after a trip through a job's JSON payload, bytes and all."""
    return record_from_json(orjson.loads(orjson.dumps(record_to_json(record))))


class TestCommands:
    """A queued batch is kept as JSON; the worker must get back the very records."""

    def test_an_activity_with_every_field_round_trips(self) -> None:
        """Location, conversion value, hint with fallback and dedup key all survive."""
        activity = NewActivity(
            identifiers=(Identifier("email", "a@example.com"), Identifier("customer_id", "C-7")),
            name="act:cm:product-purchase",
            occurred_at=datetime(2025, 10, 15, 14, 30, 0, 123456, tzinfo=UTC),
            source="api",
            dialect="ortto",
            properties={"str:cm:product-name": "Premium Plan", "int::v": 5000, "obj:cm:o": None},
            asset_id="asset-1",
            dedup_key="ortto:abc",
            contact_hint=ContactHint(CONTACT, Identifier("objectId", CONTACT)),
            location={"custom": {"name": "Melbourne", "latitude": -37.8136}},
            value_milli=5000,
        )
        assert through_json(activity) == activity

    def test_an_activity_with_nothing_optional_round_trips(self) -> None:
        """An Ortto person_id activity: a hint without fallback, no identifiers."""
        activity = NewActivity(
            identifiers=(),
            name="act:cm:page-view",
            occurred_at=datetime(2025, 10, 15, tzinfo=UTC),
            source="api",
            dialect="ortto",
            properties={},
            contact_hint=ContactHint(CONTACT),
        )
        assert through_json(activity) == activity

    def test_a_time_with_an_offset_keeps_its_instant(self) -> None:
        """Ortto `created` may carry any offset; the instant is what counts."""
        melbourne = timezone(timedelta(hours=11))
        activity = NewActivity(
            identifiers=(Identifier("email", "a@example.com"),),
            name="act:cm:a",
            occurred_at=datetime(2025, 10, 16, 1, 30, tzinfo=melbourne),
            source="api",
            dialect="ortto",
            properties={},
        )
        back = through_json(activity)
        assert isinstance(back, NewActivity)
        assert back.occurred_at == datetime(2025, 10, 15, 14, 30, tzinfo=UTC)
        assert back.occurred_at.tzinfo is not None

    @pytest.mark.parametrize("strategy", ["overwrite", "fill_empty", "create_only"])
    def test_a_profile_update_round_trips_with_its_strategy(self, strategy: MergeStrategy) -> None:
        """A queued batch keeps each activity's merge_strategy."""
        update = ProfileUpdate(
            identifiers=(Identifier("email", "a@example.com"),),
            attributes={"str::first": "John", "bol::p": None, "str::last": ""},
            dialect="ortto",
            strategy=strategy,
        )
        assert through_json(update) == update

    def test_a_document_without_a_strategy_overwrites(self) -> None:
        """Documents written before strategies existed meant "overwrite"."""
        doc = record_to_json(ProfileUpdate((Identifier("identity", "u"),), {"a": 1}, "netcore"))
        del doc["strategy"]
        update = record_from_json(doc)
        assert isinstance(update, ProfileUpdate)
        assert update.strategy == "overwrite"

    def test_the_document_is_plain_json(self) -> None:
        """Job payloads are JSON columns: lists, strings and numbers only."""
        doc = record_to_json(
            NewActivity(
                identifiers=(Identifier("email", "a@example.com"),),
                name="act:cm:a",
                occurred_at=datetime(2025, 10, 15, 14, 30, tzinfo=UTC),
                source="api",
                dialect="ortto",
                properties={"int::v": 1},
                value_milli=1,
            )
        )
        assert doc["type"] == "activity"
        assert doc["identifiers"] == [["email", "a@example.com"]]
        assert doc["occurred_at"] == "2025-10-15T14:30:00+00:00"
        assert doc["contact_hint"] is None
        assert orjson.loads(orjson.dumps(doc)) == doc

    @given(
        st.lists(
            st.tuples(st.sampled_from(["email", "mobile", "customer_id"]), st.text(min_size=1)),
            max_size=3,
        ),
        st.dictionaries(
            st.text(max_size=10),
            st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
            max_size=5,
        ),
        st.datetimes(timezones=st.just(UTC)),
        st.none() | st.integers(-(2**63), 2**63 - 1),
    )
    def test_any_activity_round_trips(
        self,
        identifiers: list[tuple[str, str]],
        properties: dict[str, Any],
        occurred_at: datetime,
        value_milli: int | None,
    ) -> None:
        """Whatever a request queued, the worker stores the same record."""
        activity = NewActivity(
            identifiers=tuple(Identifier(k, v) for k, v in identifiers),
            name="act:cm:a",
            occurred_at=occurred_at,
            source="api",
            dialect="ortto",
            properties=properties,
            value_milli=value_milli,
        )
        assert through_json(activity) == activity


class TestApplyUpdate:
    """Ortto "merge_strategy ... 1 (append only), 2 (overwrite), 3 (ignore existing)"."""

    CURRENT = {"str::first": "Ann", "str::last": "", "bol::p": None, "int:cm:visits": 0}
    PATCH = {"str::first": "John", "str::last": "Smith", "bol::p": True, "int:cm:visits": 9}

    def test_overwrite_replaces_every_given_attribute(self) -> None:
        """ "2 (overwrite)"."""
        after = apply_update({**self.CURRENT, "other": 1}, self.PATCH, "overwrite", created=False)
        assert after == {**self.PATCH, "other": 1}

    def test_fill_empty_sets_only_missing_null_or_empty_attributes(self) -> None:
        """ "1 (append only)": what the contact lacks is added; 0 and false are values."""
        patch = {**self.PATCH, "str:cm:new": "x"}
        after = apply_update(self.CURRENT, patch, "fill_empty", created=False)
        assert after == {
            "str::first": "Ann",
            "str::last": "Smith",
            "bol::p": True,
            "int:cm:visits": 0,
            "str:cm:new": "x",
        }

    def test_fill_empty_keeps_false(self) -> None:
        """ "1 (append only)": false is a value, not a gap."""
        after = apply_update({"bol::sp": False}, {"bol::sp": True}, "fill_empty", created=False)
        assert after == {"bol::sp": False}

    def test_create_only_leaves_an_existing_contact_as_it_is(self) -> None:
        """ "3 (ignore existing)"."""
        current = dict(self.CURRENT)
        assert apply_update(current, self.PATCH, "create_only", created=False) is current

    def test_create_only_sets_the_attributes_of_a_contact_the_call_created(self) -> None:
        """ "3 (ignore existing)": a new contact still gets its fields."""
        after = apply_update({}, self.PATCH, "create_only", created=True)
        assert after == self.PATCH

    @pytest.mark.parametrize("strategy", ["overwrite", "fill_empty", "create_only"])
    def test_the_current_attributes_are_not_modified(self, strategy: MergeStrategy) -> None:
        """The caller's dict is the stored state; the update is a new one."""
        current = dict(self.CURRENT)
        apply_update(current, self.PATCH, strategy, created=True)
        assert current == self.CURRENT

    def test_null_is_stored_as_null_not_a_deletion(self) -> None:
        """ "Set to null - Excludes field from searches": null is a value."""
        after = apply_update(
            {"str::first": "Ann"}, {"str::first": None}, "overwrite", created=False
        )
        assert after == {"str::first": None}

    @pytest.mark.parametrize(
        ("value", "empty"), [(None, True), ("", True), (0, False), (" ", False)]
    )
    def test_is_empty(self, value: Any, empty: bool) -> None:
        """What "append only" may fill: missing, null or ""."""
        assert is_empty(value) is empty


class TestMilliToDecimal:
    """ "int::v | Conversion value (currency x 1000) | int::v: 5000 (represents $5.00)"."""

    @pytest.mark.parametrize(
        ("milli", "text"),
        [
            (5000, "5.00"),
            (4999, "4.999"),
            (29900, "29.90"),
            (0, "0.00"),
            (1, "0.001"),
            (10, "0.01"),
            (-5000, "-5.00"),
            (-5, "-0.005"),
            (2**63 - 1, "9223372036854775.807"),
        ],
    )
    def test_exact_with_at_least_two_decimals(self, milli: int, text: str) -> None:
        """ "int::v: 5000 (represents $5.00)"."""
        assert milli_to_decimal(milli) == text

    @given(st.integers(-(2**63), 2**63 - 1))
    def test_every_value_is_kept_exactly(self, milli: int) -> None:
        """Every 64-bit conversion value is shown exactly, never through a float."""
        text = milli_to_decimal(milli)
        assert Decimal(text) * 1000 == milli
        assert len(text.partition(".")[2]) in (2, 3)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestRateLimiter:
    """ "429 Too Many Requests - Rate limit exceeded"."""

    def test_a_burst_then_a_wait(self) -> None:
        """A burst of `burst` requests, then `rate` per second; the wait is the Retry-After."""
        clock = FakeClock()
        limiter = RateLimiter(rate=2, burst=3, clock=clock)
        assert [limiter.acquire("k") for _ in range(3)] == [0.0, 0.0, 0.0]
        assert limiter.acquire("k") == pytest.approx(0.5)
        clock.now += 0.25
        assert limiter.acquire("k") == pytest.approx(0.25)
        clock.now += 0.25
        assert limiter.acquire("k") == 0.0
        assert limiter.acquire("k") == pytest.approx(0.5)

    def test_refused_requests_take_no_token(self) -> None:
        """A client that retries too early is not pushed further back."""
        clock = FakeClock()
        limiter = RateLimiter(rate=1, burst=1, clock=clock)
        assert limiter.acquire("k") == 0.0
        for _ in range(5):
            assert limiter.acquire("k") == pytest.approx(1.0)
        clock.now += 1
        assert limiter.acquire("k") == 0.0

    def test_a_long_pause_refills_up_to_the_burst_only(self) -> None:
        """Idle time does not bank more than one burst."""
        clock = FakeClock()
        limiter = RateLimiter(rate=10, burst=2, clock=clock)
        clock.now += 3600
        assert [limiter.acquire("k") for _ in range(3)][2] > 0

    def test_keys_are_counted_apart(self) -> None:
        """Each API key (account) has its own bucket."""
        limiter = RateLimiter(rate=1, burst=1, clock=FakeClock())
        assert limiter.acquire("ortto:a") == 0.0
        assert limiter.acquire("ortto:a") > 0
        assert limiter.acquire("ortto:b") == 0.0

    def test_rate_zero_turns_the_limit_off(self) -> None:
        """EVENTYARD_RATE_LIMIT_PER_SECOND=0 turns the limit off."""
        limiter = RateLimiter(rate=0, burst=1, clock=FakeClock())
        assert all(limiter.acquire("k") == 0.0 for _ in range(100))

    def test_full_buckets_are_forgotten_once_there_are_many(self) -> None:
        """Memory stays bounded: refilled buckets go once there are more than 10 000."""
        clock = FakeClock()
        limiter = RateLimiter(rate=1, burst=1, clock=clock)
        for n in range(10_001):
            limiter.acquire(f"k{n}")
        assert len(limiter._buckets) == 10_001  # none has refilled yet
        clock.now += 1
        limiter.acquire("new")
        assert set(limiter._buckets) == {"new"}
        assert limiter.acquire("k0") == 0.0  # a forgotten key starts with a full bucket
