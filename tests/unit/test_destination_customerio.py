"""Destination kind ``customerio``: activities -> v2 batch ``event`` operations, and the answers."""

from __future__ import annotations

import base64

import orjson

from eventyard.core.delivery import ReceiverAnswer
from eventyard.dialects.customerio.destination import DESTINATION
from tests.outgoing import outgoing

URL = "https://track.customerio.example"
CREDENTIALS = {"site_id": "site", "api_key": "key"}


def test_an_operation_names_one_identifier_and_the_activity_id() -> None:
    """ "exactly one of id, email, phone, cio_id"; "id: ULID used for dedup" """
    activity = outgoing(("email", "a@x.io"), ("identity", "u1"), properties={"a": 1})
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, [activity], "d")
    assert request.url == f"{URL}/api/v2/batch"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"site:key").decode()
    (operation,) = orjson.loads(request.body)["batch"]
    assert operation == {
        "type": "person",
        "identifiers": {"id": "u1"},
        "action": "event",
        "name": "Order Completed",
        "id": activity.id,
        "timestamp": 1773480413,
        "attributes": {"a": 1},
    }


def test_an_anonymous_event_carries_anonymous_id() -> None:
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, [outgoing(("anonid", "an"))], "d")
    (operation,) = orjson.loads(request.body)["batch"]
    assert operation["anonymous_id"] == "an"
    assert "identifiers" not in operation


def test_a_207_refuses_the_operations_it_names() -> None:
    """``207 {"errors": [{"batch_index", "reason", "field", "message"}]}``"""
    activities = [outgoing(("identity", f"u{i}")) for i in range(3)]
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    body = {
        "errors": [{"batch_index": 1, "reason": "invalid", "field": "name", "message": "too long"}]
    }
    reading = DESTINATION.read_answer(request, ReceiverAnswer(207, {}, orjson.dumps(body)))
    assert reading.refused == {activities[1].id: "too long"}
    assert DESTINATION.read_answer(request, ReceiverAnswer(200, {}, b"{}")).refused == {}
