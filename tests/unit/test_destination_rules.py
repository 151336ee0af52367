"""The rules of core/destinations.py and the webhook format, stated back (docs/destinations.md)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import orjson
import pytest

from eventyard.core.delivery import OutgoingActivity, ReceiverAnswer
from eventyard.core.destinations import (
    idempotency_key,
    lane_of,
    parse_filter,
    parse_retry_after,
    passes,
    retry_wait,
)
from eventyard.core.identifiers import Identifier
from eventyard.services.destinations import webhook

WHEN = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def outgoing(n: int, size: int = 10) -> OutgoingActivity:
    return OutgoingActivity(
        id=f"{n:024x}",
        contact_id="c" * 24,
        identifiers=(Identifier("email", "a@example.com"),),
        name="Viewed",
        occurred_at=WHEN,
        received_at=WHEN,
        source="web",
        dialect="test",
        asset_id=None,
        properties={"blob": "x" * size},
    )


class TestFilter:
    def test_an_activity_passes_when_it_matches_every_list_given(self) -> None:
        route = parse_filter({"dialects": ["a", "b"], "names": ["Viewed"]})
        assert passes(route, "a", "Viewed", "web")
        assert not passes(route, "c", "Viewed", "web")
        assert not passes(route, "a", "Bought", "web")
        assert passes(parse_filter(None), "any", "thing", "at all")
        assert passes(parse_filter({"sources": []}), "a", "b", "c")

    @pytest.mark.parametrize(
        "value", [[], {"names": "Viewed"}, {"names": [""]}, {"colours": ["red"]}, {"names": [1]}]
    )
    def test_a_malformed_filter_is_refused(self, value: object) -> None:
        with pytest.raises(ValueError, match="filter"):
            parse_filter(value)


class TestDeliveryRules:
    def test_a_contacts_lane_is_stable_and_in_range(self) -> None:
        lanes = {lane_of(f"contact-{n}", 8) for n in range(200)}
        assert lanes == set(range(8))
        assert lane_of("contact-1", 8) == lane_of("contact-1", 8)

    def test_the_idempotency_key_depends_only_on_destination_and_activity_ids(self) -> None:
        key = idempotency_key("d1", ["a", "b"])
        assert key == idempotency_key("d1", ["a", "b"])
        assert key != idempotency_key("d1", ["a"])
        assert key != idempotency_key("d2", ["a", "b"])
        assert len(key) <= 255

    def test_the_wait_doubles_with_jitter_up_to_the_cap_and_honours_retry_after(self) -> None:
        assert retry_wait(1, 1.0, 300, 0.0, None) == 0.5
        assert retry_wait(1, 1.0, 300, 0.999, None) == pytest.approx(1.0, abs=0.01)
        assert retry_wait(4, 1.0, 300, 0.999, None) == pytest.approx(8.0, abs=0.01)
        assert retry_wait(40, 1.0, 300, 0.999, None) == pytest.approx(300, abs=0.5)
        assert retry_wait(3, 1.0, 300, 0.5, 42.0) == 42.0
        assert retry_wait(3, 1.0, 300, 0.5, 10**9) == 3600

    def test_retry_after_is_seconds_or_an_http_date(self) -> None:
        """RFC 9110 10.2.3: Retry-After = HTTP-date / delay-seconds."""
        assert parse_retry_after("120", WHEN) == 120
        assert parse_retry_after("Fri, 04 Dec 2026 12:00:30 GMT", WHEN) == 30
        assert parse_retry_after("soon", WHEN) is None
        assert parse_retry_after(None, WHEN) is None


class TestWebhook:
    def test_the_body_is_signed_with_the_secret(self) -> None:
        (request,) = webhook.build_requests("https://x.test/h", {"secret": "k"}, [outgoing(1)], "d")
        expected = hmac.new(b"k", request.body, hashlib.sha256).hexdigest()
        assert request.headers["X-Eventyard-Signature"] == f"sha256={expected}"
        assert request.headers["X-Eventyard-Delivery"] == "d"
        (activity,) = orjson.loads(request.body)["activities"]
        assert activity["contact_id"] == "c" * 24
        assert activity["identifiers"] == [{"kind": "email", "value": "a@example.com"}]
        assert activity["id"] == f"{1:024x}"

    def test_requests_keep_the_order_and_the_record_and_byte_limits(self) -> None:
        many = [outgoing(n) for n in range(1203)]
        requests = webhook.build_requests("https://x.test/h", {"secret": "k"}, many, "d")
        assert [len(r.activity_ids) for r in requests] == [500, 500, 203]
        assert [i for r in requests for i in r.activity_ids] == [a.id for a in many]
        large = [outgoing(n, size=300_000) for n in range(7)]
        requests = webhook.build_requests("https://x.test/h", {"secret": "k"}, large, "d")
        assert all(len(r.body) <= webhook.MAX_BYTES for r in requests)
        assert [i for r in requests for i in r.activity_ids] == [a.id for a in large]

    def test_the_same_batch_builds_the_same_bytes(self) -> None:
        batch = [outgoing(n) for n in range(3)]
        first = webhook.build_requests("https://x.test/h", {"secret": "k"}, batch, "d")
        again = webhook.build_requests("https://x.test/h", {"secret": "k"}, batch, "d")
        assert [r.body for r in first] == [r.body for r in again]

    def test_a_4xx_refuses_every_activity_of_the_request_with_the_answer(self) -> None:
        (request,) = webhook.build_requests("https://x", {"secret": "k"}, [outgoing(1)], "d")
        reading = webhook.read_answer(request, ReceiverAnswer(422, {}, b"bad shape"))
        assert reading.refused == {f"{1:024x}": "HTTP 422: bad shape"}
        assert webhook.read_answer(request, ReceiverAnswer(204, {}, b"")).refused == {}
