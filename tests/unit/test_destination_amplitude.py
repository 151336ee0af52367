"""Destination kind ``amplitude``: activities -> HTTP V2 events, and Amplitude's answers."""

from __future__ import annotations

from typing import Any

import orjson

from eventyard.core.delivery import OutgoingActivity, ReceiverAnswer
from eventyard.dialects.amplitude.destination import DESTINATION
from tests.outgoing import outgoing

URL = "https://api2.amplitude.example"
CREDENTIALS = {"api_key": "key-1"}


def body(*activities: OutgoingActivity) -> dict[str, Any]:
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    sent: dict[str, Any] = orjson.loads(request.body)
    return sent


def test_the_key_travels_in_the_body_and_short_ids_are_kept() -> None:
    """ "the key is the body's api_key"; "An ID shorter than the minimum is removed" unless
    ``options.min_id_length`` allows it."""
    sent = body(outgoing(("identity", "u1")))
    assert sent["api_key"] == "key-1"
    assert sent["options"] == {"min_id_length": 1}


def test_an_event_maps_ids_time_properties_insert_id_and_revenue() -> None:
    activity = outgoing(("identity", "u1"), ("anonid", "d1"), value_milli=4999, properties={"a": 1})
    (event,) = body(activity)["events"]
    assert event == {
        "user_id": "u1",
        "device_id": "d1",
        "event_type": "Order Completed",
        "time": 1773480413000,
        "event_properties": {"a": 1},
        "insert_id": activity.id,
        "library": "api",
        "revenue": 4.999,
    }


def test_the_events_a_400_lists_are_refused_and_the_others_resent() -> None:
    """ "Invalid field values on some events": the listed events "fail and all others are
    retried"."""
    activities = [outgoing(("identity", f"user{i}")) for i in range(3)]
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    answer = {
        "code": 400,
        "error": "Invalid field values on some events",
        "events_with_invalid_fields": {"time": [2]},
        "events_with_missing_fields": {"event_type": [0]},
    }
    reading = DESTINATION.read_answer(request, ReceiverAnswer(400, {}, orjson.dumps(answer)))
    assert reading.refused == {
        activities[2].id: "events_with_invalid_fields: time",
        activities[0].id: "events_with_missing_fields: event_type",
    }
    assert reading.resend_others is True


def test_a_400_for_the_request_refuses_every_event() -> None:
    activities = [outgoing(("identity", "user1"))]
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    answer = b'{"code": 400, "error": "Invalid API key: no project of this server has this key"}'
    reading = DESTINATION.read_answer(request, ReceiverAnswer(400, {}, answer))
    assert "Invalid API key" in reading.refused[activities[0].id]
