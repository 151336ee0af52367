"""Destination kind ``posthog``: activities -> capture ``/batch/`` events, and PostHog's answers."""

from __future__ import annotations

import uuid

import orjson

from eventyard.core.delivery import ReceiverAnswer
from eventyard.dialects.posthog.destination import DESTINATION
from tests.outgoing import outgoing

URL = "https://us.i.posthog.example"
CREDENTIALS = {"api_key": "phc_1"}


def test_an_event_carries_the_key_the_distinct_id_and_a_stable_uuid() -> None:
    """ "uuid is the event identity … Retried SDK sends keep the same uuid" """
    activity = outgoing(("identity", "u1"), properties={"plan": "pro"})
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, [activity], "d")
    sent = orjson.loads(request.body)
    assert request.url == f"{URL}/batch/"
    assert sent["api_key"] == "phc_1"
    (event,) = sent["batch"]
    assert event["distinct_id"] == "u1"
    assert event["properties"] == {"plan": "pro", "$lib": "api"}
    assert event["timestamp"] == "2026-03-14T09:26:53Z"
    assert uuid.UUID(event["uuid"]) == uuid.UUID(
        orjson.loads(DESTINATION.build_requests(URL, CREDENTIALS, [activity], "x")[0].body)[
            "batch"
        ][0]["uuid"]
    )


def test_an_anonymous_contact_is_a_visitor_not_yet_identified() -> None:
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, [outgoing(("anonid", "an"))], "d")
    (event,) = orjson.loads(request.body)["batch"]
    assert (event["distinct_id"], event["properties"]["$is_identified"]) == ("an", False)


def test_answers() -> None:
    """Success is ``200 {"status": 1}``; dropped events are unnamed, so only a request whose
    every event was dropped is refused."""
    activities = [outgoing(("identity", f"u{i}")) for i in range(2)]
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    ok = ReceiverAnswer(200, {}, b'{"status":1}')
    assert DESTINATION.read_answer(request, ok).refused == {}
    some = ReceiverAnswer(200, {"X-Eventyard-Rejected-Events": "1"}, b'{"status":1}')
    assert DESTINATION.read_answer(request, some).refused == {}
    every = ReceiverAnswer(200, {"X-Eventyard-Rejected-Events": "2"}, b'{"status":1}')
    assert set(DESTINATION.read_answer(request, every).refused) == set(request.activity_ids)
    invalid = ReceiverAnswer(400, {}, b'{"type":"validation_error","detail":"bad","attr":"body"}')
    assert set(DESTINATION.read_answer(request, invalid).refused) == set(request.activity_ids)
