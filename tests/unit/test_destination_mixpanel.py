"""Destination kind ``mixpanel``: activities -> strict ``/import`` events, and its answers."""

from __future__ import annotations

import base64
from typing import Any

import orjson

from eventyard.core.delivery import OutgoingActivity, ReceiverAnswer
from eventyard.dialects.mixpanel.destination import DESTINATION
from tests.outgoing import outgoing

URL = "https://api.mixpanel.example"
CREDENTIALS = {"api_secret": "secret-1"}


def events(*activities: OutgoingActivity) -> list[dict[str, Any]]:
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    return list(orjson.loads(request.body))


def test_a_request_is_a_strict_import_with_the_secret_as_basic_user() -> None:
    """ "Project secret (legacy): Basic base64(<api_secret>:)" """
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, [outgoing(("identity", "u"))], "d")
    assert request.url == f"{URL}/import?strict=1"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"secret-1:").decode()


def test_an_event_has_time_in_ms_distinct_id_and_the_activity_id_as_insert_id() -> None:
    activity = outgoing(("identity", "u1"), ("anonid", "d1"), properties={"plan": "pro"})
    (event,) = events(activity)
    assert event == {
        "event": "Order Completed",
        "properties": {
            "plan": "pro",
            "mp_lib": "api",
            "distinct_id": "u1",
            "$device_id": "d1",
            "time": 1773480413000,
            "$insert_id": activity.id,
        },
    }


def test_an_anonymous_contact_is_a_device() -> None:
    (event,) = events(outgoing(("anonid", "d1")))
    assert event["properties"]["distinct_id"] == "$device:d1"


def test_a_partial_success_refuses_the_failed_records_only() -> None:
    """400 ``{"error": "some data points in the request failed validation",
    "num_records_imported": n, "failed_records": [{"index", "insert_id", "field",
    "message"}]}``: the valid events are imported."""
    activities = [outgoing(("identity", f"u{i}")) for i in range(3)]
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    body = {
        "code": 400,
        "error": "some data points in the request failed validation",
        "status": "Bad Request",
        "num_records_imported": 2,
        "failed_records": [
            {
                "index": 2,
                "insert_id": activities[2].id,
                "field": "properties.time",
                "message": "time is before 1971-01-01",
            }
        ],
    }
    reading = DESTINATION.read_answer(request, ReceiverAnswer(400, {}, orjson.dumps(body)))
    assert reading.refused == {activities[2].id: "time is before 1971-01-01"}
    assert reading.resend_others is False
    ok = b'{"code": 200, "num_records_imported": 3, "status": "OK"}'
    assert DESTINATION.read_answer(request, ReceiverAnswer(200, {}, ok)).refused == {}
    too_large = ReceiverAnswer(413, {}, b'{"code":413,"error":"request exceeds max limit"}')
    assert set(DESTINATION.read_answer(request, too_large).refused) == set(request.activity_ids)
