"""Amplitude's translation, the /batch claim, the profile operations and event throttling.

The rules are the ones docs/dialects/amplitude.md states; the merge strategies
they map onto are core's (``core.profiles.apply_update``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from eventyard.core.errors import EventyardError
from eventyard.core.model import GroupMembership, NewActivity, ProfileUpdate
from eventyard.core.profiles import apply_update
from eventyard.core.ratelimit import RateLimiter
from eventyard.dialects.amplitude.errors import AmplitudeError, plain_error, render_error
from eventyard.dialects.amplitude.routes import claims_batch
from eventyard.dialects.amplitude.throttle import HTTPAPI, check_throttle
from eventyard.dialects.amplitude.translate import (
    Upload,
    dedup_key,
    parse_identification,
    parse_upload,
    revenue_milli,
    translate_events,
)

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def upload(*events: Any, min_id_length: int = 5) -> Upload:
    return Upload("k", list(events), min_id_length, size=0)


class TestApplyUpdate:
    @pytest.mark.parametrize(
        ("strategy", "current", "patch", "after"),
        [
            ("unset", {"a": 1, "b": 2}, {"a": "-", "z": "-"}, {"b": 2}),
            ("increment", {"n": 1}, {"n": 2.5, "m": 3}, {"n": 3.5, "m": 3}),
            ("increment", {"n": "x"}, {"n": 2}, {"n": 2}),
            ("increment", {"n": 1}, {"n": "two"}, {"n": 1}),
            ("increment", {"n": True}, {"n": 1}, {"n": 1}),
            ("append", {}, {"t": "a"}, {"t": ["a"]}),
            ("append", {"t": "x"}, {"t": ["a", "b"]}, {"t": ["x", "a", "b"]}),
            ("prepend", {"t": ["x"]}, {"t": "a"}, {"t": ["a", "x"]}),
            ("append_missing", {"t": ["a"]}, {"t": ["a", "b", "b"]}, {"t": ["a", "b"]}),
            ("prepend_missing", {"t": ["a"]}, {"t": ["b", "a"]}, {"t": ["b", "a"]}),
            ("remove", {"t": ["a", "b", "a"]}, {"t": "a"}, {"t": ["b"]}),
            ("remove", {"t": "a"}, {"t": "a"}, {"t": "a"}),
            # "Remove doesn't do anything if the value doesn't exist."
            ("remove", {}, {"t": "a"}, {}),
        ],
    )
    def test_operations(
        self, strategy: Any, current: dict[str, Any], patch: dict[str, Any], after: Any
    ) -> None:
        assert apply_update(current, patch, strategy, created=False) == after

    def test_the_old_strategies_are_unchanged(self) -> None:
        assert apply_update({"a": 1}, {"a": 2}, "overwrite", created=False) == {"a": 2}
        assert apply_update({"a": ""}, {"a": 2}, "fill_empty", created=False) == {"a": 2}
        assert apply_update({"a": 1}, {"a": 2}, "create_only", created=False) == {"a": 1}
        assert apply_update({"a": 1}, {"a": 2}, "create_only", created=True) == {"a": 2}


class TestRateLimiterCount:
    def test_count_takes_that_many_tokens_or_none(self) -> None:
        clock = [0.0]
        limiter = RateLimiter(10, 20, clock=lambda: clock[0])
        assert limiter.acquire("k", 15) == 0.0
        assert limiter.acquire("k", 10) == pytest.approx(0.5)  # 5 left, 5 missing
        assert limiter.acquire("k", 5) == 0.0  # the refusal took nothing
        assert limiter.acquire("k", 25) > 0  # beyond the burst: never at once
        clock[0] = 100
        assert limiter.acquire("k", 25) > 0


class TestClaim:
    @pytest.mark.parametrize(
        ("body", "mine"),
        [
            (b'{"api_key": "k", "events": [{"event_type": "e"}]}', True),
            (b'  {"events": []}', True),
            (b'{"api_key": "k", "batch": [{"event": "e", "properties": {"events": [1]}}]}', False),
            (b'{"api_key": "k", "events": [{"event_properties": {"batch": [1]}}]}', True),
            (b'{"api_key": "k", "batch": [], "events": []}', False),
            (b'[{"event": "e"}]', False),
            (b"data=abc&compression=lz64", False),
            (b'{"events": 1, "batch": [', False),
        ],
    )
    def test_amplitude_bodies_are_claimed(self, body: bytes, mine: bool) -> None:
        assert claims_batch(None, body) is mine  # type: ignore[arg-type]


class TestEvents:
    def test_an_event_becomes_an_activity_and_its_plain_properties_an_update(self) -> None:
        translation, problems = translate_events(
            upload(
                {
                    "user_id": "user-1",
                    "device_id": "device-1",
                    "event_type": "e",
                    "time": 1_700_000_000_000,
                    "insert_id": "i-1",
                    "user_properties": {"plan": "pro"},
                }
            ),
            now=NOW,
        )
        assert not problems
        activity, update = translation.records
        assert isinstance(activity, NewActivity)
        assert activity.occurred_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
        assert {str(i) for i in activity.identifiers} == {"identity:user-1", "anonid:device-1"}
        assert isinstance(update, ProfileUpdate)
        assert update.attributes == {"plan": "pro"}
        key = dedup_key("i-1", "device-1", "user-1")
        assert (activity.message_id, update.message_id) == (key, f"{key}.1")
        assert translation.positions == [0, 0]

    def test_identify_operations_become_updates_in_order(self) -> None:
        translation, problems = translate_events(
            upload(
                {
                    "user_id": "user-1",
                    "event_type": "$identify",
                    "user_properties": {"$add": {"n": 1}, "$set": {"a": 1}, "$unset": {"b": "-"}},
                    "groups": {"org": ["x", "y"]},
                }
            ),
            now=NOW,
        )
        assert not problems
        strategies = [
            (r.strategy, r.attributes) for r in translation.records if isinstance(r, ProfileUpdate)
        ]
        assert strategies == [
            ("unset", {"b": "-"}),
            ("overwrite", {"a": 1}),
            ("increment", {"n": 1}),
        ]
        groups = [r.group_id for r in translation.records if isinstance(r, GroupMembership)]
        assert groups == ["org:x", "org:y"]

    def test_dedup_scope_is_the_device_else_the_user(self) -> None:
        assert dedup_key("i", "d", "u1") == dedup_key("i", "d", "u2")
        assert dedup_key("i", None, "u1") != dedup_key("i", None, "u2")
        assert dedup_key(None, "d", "u") is None

    def test_problems_go_to_their_maps(self) -> None:
        _, problems = translate_events(
            upload(
                {"user_id": "user-1", "event_type": "e", "time": True},
                {"user_id": "ab", "event_type": "e"},
                {"device_id": "device-1", "event_type": "e", "user_id": "ab"},
                {"user_id": "Undefined", "event_type": "e"},
            ),
            now=NOW,
        )
        assert problems.maps == {
            "invalid": {"time": [0], "user_id": [3]},
            "missing": {},
            "id_length": {"user_id": [1]},
        }
        refusal = problems.refusal(4)
        assert refusal.status == 400
        assert refusal.records == 4

    def test_revenue(self) -> None:
        assert revenue_milli({"revenue": 1.005}, {}) == 1005
        assert revenue_milli({"price": 2, "quantity": 3}, {}) == 6000
        assert revenue_milli({}, {"$price": 1.5}) == 1500
        assert revenue_milli({"price": "2"}, {}) is None


class TestBodies:
    def test_more_than_2000_events_is_413(self) -> None:
        body = orjson.dumps({"api_key": "k", "events": [{}] * 2001})
        with pytest.raises(AmplitudeError) as raised:
            parse_upload(body)
        assert raised.value.status == 413

    def test_min_id_length_must_be_positive(self) -> None:
        with pytest.raises(AmplitudeError):
            parse_upload(b'{"api_key": "k", "events": [{}], "options": {"min_id_length": 0}}')
        parsed = parse_upload(b'{"api_key": "k", "events": [{}], "options": {"min_id_length": 2}}')
        assert parsed.min_id_length == 2

    def test_identification_is_an_object_or_an_array(self) -> None:
        one = parse_identification(b"api_key=k&identification=%7B%22user_id%22%3A%22u%22%7D")
        assert one.identifications == [{"user_id": "u"}]
        with pytest.raises(AmplitudeError) as raised:
            parse_identification(b"api_key=k&identification=%5B1%5D")
        assert raised.value.plain == "missing_event"


class TestThrottle:
    def test_the_events_of_a_throttled_device_are_listed(self) -> None:
        limiter = RateLimiter(HTTPAPI.eps, 3)
        ids = [("d1", None), ("d1", "u1"), ("d2", None)]
        assert check_throttle(limiter, HTTPAPI, "acct", ids) is None
        refusal = check_throttle(limiter, HTTPAPI, "acct", [("d1", None)] * 2 + [("d2", None)])
        assert refusal is not None
        assert refusal.status == 429
        assert refusal.extra["throttled_devices"] == {"d1": 2}
        assert refusal.extra["throttled_events"] == [0, 1]
        assert refusal.extra["eps_threshold"] == 30


class TestRenderError:
    def test_the_request_limit_is_amplitudes_429_naming_no_event(self) -> None:
        exc = EventyardError("rate_limited", "Too many requests", 429, headers={"Retry-After": "3"})
        response = render_error(exc)
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "3"
        body = orjson.loads(response.body)
        assert body["code"] == 429
        assert body["error"] == "Too many requests for some devices and users"
        assert body["throttled_events"] == []

    def test_every_error_carries_its_status_in_code(self) -> None:
        """The SDK reads the status from the body's ``code``."""
        for status, error in ((404, "Invalid request path"), (413, "Payload too large")):
            body = orjson.loads(render_error(EventyardError("x", "why", status)).body)
            assert (body["code"], body["error"], body["message"]) == (status, error, "why")
        body = orjson.loads(render_error(EventyardError("x", "Database down", 503)).body)
        assert (body["code"], body["error"]) == (503, "Database down")

    def test_identify_answers_in_plain_text(self) -> None:
        response = render_error(plain_error("missing_event"))
        assert (response.status_code, response.body) == (400, b"missing_event")
        assert response.media_type == "text/plain"
