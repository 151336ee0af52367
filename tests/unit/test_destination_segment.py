"""Destination kind ``segment``: activities -> ``/v1/batch`` track calls, and Segment's answers."""

from __future__ import annotations

import base64

import orjson

from eventyard.core.delivery import ReceiverAnswer
from eventyard.dialects.segment.destination import DESTINATION
from tests.outgoing import outgoing

URL = "https://collector.example.com"
CREDENTIALS = {"write_key": "wk_123"}


def calls(*activities: object) -> list[dict[str, object]]:
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")  # type: ignore[arg-type]
    return list(orjson.loads(request.body)["batch"])


def test_a_request_is_a_batch_post_with_the_write_key_as_basic_user() -> None:
    """ "taking a Segment source Write Key, 'abc123', as the username, adding a colon, and
    then the password field is left empty"."""
    activity = outgoing(("identity", "u1"))
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, [activity], "d")
    assert (request.method, request.url) == ("POST", f"{URL}/v1/batch")
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"wk_123:").decode()
    assert request.activity_ids == (activity.id,)


def test_a_track_call_carries_name_properties_time_and_a_message_id_per_activity() -> None:
    activity = outgoing(("identity", "u1"), properties={"total": 42, "items": [{"sku": "a"}]})
    (call,) = calls(activity)
    assert call["type"] == "track"
    assert call["event"] == "Order Completed"
    assert call["properties"] == {"total": 42, "items": [{"sku": "a"}]}
    assert call["timestamp"] == "2026-03-14T09:26:53Z"
    assert call["messageId"] == f"eventyard-{activity.id}"
    assert call["context"] == {"library": {"name": "api"}}


def test_identity_is_the_user_id_and_anonid_the_anonymous_id() -> None:
    """The inverse of the inbound mapping: ``userId`` -> ``identity``, ``anonymousId`` ->
    ``anonid``; e-mail and phone travel as ``context.traits``."""
    (call,) = calls(outgoing(("email", "a@x.io"), ("identity", "u1"), ("anonid", "an-1")))
    assert (call["userId"], call["anonymousId"]) == ("u1", "an-1")
    assert call["context"] == {"library": {"name": "api"}, "traits": {"email": "a@x.io"}}


def test_an_anonymous_contact_stays_anonymous() -> None:
    (call,) = calls(outgoing(("anonid", "an-1")))
    assert "userId" not in call
    assert call["anonymousId"] == "an-1"


def test_a_contact_with_neither_goes_under_its_contact_id() -> None:
    """ "The HTTP API requires that each payload has a userId and/or anonymousId"."""
    activity = outgoing(("email", "a@x.io"), ("mobile", "+14155550100"))
    (call,) = calls(activity)
    assert call["userId"] == activity.contact_id
    assert call["context"]["traits"] == {"email": "a@x.io", "phone": "+14155550100"}  # type: ignore[index]


def test_a_segment_activity_sends_its_own_context_and_integrations_back() -> None:
    stored = {
        "context": {"library": {"name": "analytics-python", "version": "2.4.0"}, "ip": "1.2.3.4"},
        "integrations": {"All": False},
        "messageId": "m-1",
        "receivedAt": "2026-03-14T09:27:00Z",
    }
    (call,) = calls(outgoing(("identity", "u1"), dialect="segment", context=stored))
    assert call["context"] == stored["context"]
    assert call["integrations"] == {"All": False}


def test_the_same_activities_build_the_same_bytes() -> None:
    activities = [outgoing(("identity", f"u{i}")) for i in range(5)]
    first = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    again = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    assert [r.body for r in first] == [r.body for r in again]


def test_batches_stay_under_500_kb_and_a_call_over_32_kb_goes_alone() -> None:
    """ "The batch API endpoint accepts a maximum of 500KB per request, with a limit of 32KB
    per event in the batch." """
    big = outgoing(("identity", "big"), properties={"blob": "x" * 33_000})
    small = [outgoing(("identity", f"u{i}"), properties={"text": "y" * 20_000}) for i in range(60)]
    requests = DESTINATION.build_requests(URL, CREDENTIALS, [*small[:30], big, *small[30:]], "d")
    assert all(len(r.body) <= 500 * 1024 for r in requests)
    assert (big.id,) in [r.activity_ids for r in requests]
    sent = [i for r in requests for i in r.activity_ids]
    assert sent == [a.id for a in [*small[:30], big, *small[30:]]]
    assert len(requests) == 5  # 24 + 6, the big one, 24 + 6 ... in order


def answer(status: int, body: object, **headers: str) -> ReceiverAnswer:
    return ReceiverAnswer(status, headers, orjson.dumps(body))


def test_a_200_delivers_every_call() -> None:
    """ "Segment returns a 200 response for all API requests except errors caused by large
    payloads and JSON errors" """
    activities = [outgoing(("identity", "u1")), outgoing(("identity", "u2"))]
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    reading = DESTINATION.read_answer(request, answer(200, {"success": True}))
    assert (reading.refused, reading.resend_others) == ({}, False)


def test_a_400_naming_a_call_refuses_it_and_resends_the_others() -> None:
    """eventyard's 400 names the call: ``"errors":[{"index":1,"field":"batch[1]",...}]``;
    nothing of the batch was stored."""
    activities = [outgoing(("identity", f"u{i}")) for i in range(3)]
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    body = {
        "success": False,
        "code": "bad_request",
        "message": "batch[1] is 33065 bytes",
        "errors": [{"index": 1, "field": "batch[1]", "message": "batch[1] is 33065 bytes"}],
    }
    reading = DESTINATION.read_answer(request, answer(400, body))
    assert reading.refused == {activities[1].id: "batch[1] is 33065 bytes"}
    assert reading.resend_others is True


def test_a_400_without_indexes_refuses_every_call_with_the_answer() -> None:
    activities = [outgoing(("identity", f"u{i}")) for i in range(2)]
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    reading = DESTINATION.read_answer(request, answer(400, {"code": "invalid_json"}))
    assert set(reading.refused) == {a.id for a in activities}
    assert all(r.startswith("HTTP 400: ") for r in reading.refused.values())


def test_a_200_that_dropped_every_call_refuses_them() -> None:
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, [outgoing(("identity", "u"))], "d")
    reading = DESTINATION.read_answer(
        request, answer(200, {"success": True}, **{"X-Eventyard-Rejected-Messages": "1"})
    )
    assert list(reading.refused) == list(request.activity_ids)
