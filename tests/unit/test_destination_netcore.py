"""Destination kind ``netcore``: activities -> Add Activity events, and Netcore's answers."""

from __future__ import annotations

from typing import Any

import orjson

from eventyard.core.delivery import OutgoingActivity, ReceiverAnswer
from eventyard.dialects.netcore.destination import DESTINATION
from tests.outgoing import outgoing

URL = "https://api2.netcore.example"
CREDENTIALS = {"api_key": "key-1"}


def events(*activities: OutgoingActivity, **credentials: str) -> list[dict[str, Any]]:
    (request,) = DESTINATION.build_requests(URL, {**CREDENTIALS, **credentials}, activities, "d")
    return list(orjson.loads(request.body))


def test_a_request_posts_the_event_array_with_the_api_key_header() -> None:
    """ "api-key | String | API key for authentication | ... | Yes" """
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, [outgoing(("identity", "u"))], "d")
    assert (request.method, request.url) == ("POST", f"{URL}/v1/activity/upload")
    assert request.headers["api-key"] == "key-1"
    assert isinstance(orjson.loads(request.body), list)


def test_an_event_carries_every_field_the_spec_requires() -> None:
    activity = outgoing(
        ("identity", "u1"),
        ("email", "a@x.io"),
        ("mobile", "3525252568"),
        ("anonid", "an-1"),
        ("custID", "c-1"),
        name="Add To Cart",
        properties={"currency": "INR", "product": [{"price": 250.3}]},
        source="app",
        asset_id="55a6d1d3ac4d5253ca4afd9636442434",
    )
    assert events(activity) == [
        {
            "asset_id": "55a6d1d3ac4d5253ca4afd9636442434",
            "activity_name": "Add To Cart",
            "timestamp": "2026-03-14T09:26:53Z",
            "identity": "u1",
            "email": "a@x.io",
            "mobile": "3525252568",
            "anonid": "an-1",
            "activity_source": "app",
            "activity_params": {"currency": "INR", "product": [{"price": 250.3}]},
        }
    ]


def test_asset_id_and_source_fall_back_when_the_activity_has_none() -> None:
    """ "asset_id | Pass website_id or app_id" (required); "activity_source ... web or app" """
    (event,) = events(outgoing(("email", "a@x.io"), source="analytics-python"))
    assert (event["asset_id"], event["activity_source"]) == ("eventyard", "web")
    (event,) = events(outgoing(("email", "a@x.io")), asset_id="site-7")
    assert event["asset_id"] == "site-7"


def test_a_contact_without_netcore_identifiers_goes_under_its_contact_id() -> None:
    activity = outgoing(("FBID", "123"))
    (event,) = events(activity)
    assert event["identity"] == activity.contact_id


def test_an_empty_array_is_left_out_so_the_event_is_inserted() -> None:
    """ "if it is blank, the system will not insert such events ... Do not Pass an Empty
    Array." """
    (event,) = events(outgoing(("identity", "u"), properties={"product": [], "total": 1}))
    assert event["activity_params"] == {"total": 1}


def test_events_are_batched_by_1000_the_same_way_every_time() -> None:
    """ "You can send single or bulk events (up to 1000 in one request)." """
    activities = [outgoing(("identity", f"u{i}")) for i in range(1001)]
    requests = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    assert [len(r.activity_ids) for r in requests] == [1000, 1]
    again = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    assert [r.body for r in requests] == [r.body for r in again]


def test_requests_stay_under_the_byte_limit() -> None:
    activities = [outgoing(("identity", f"u{i}"), properties={"v": "x" * 8000}) for i in range(900)]
    requests = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    assert len(requests) > 1
    assert all(len(r.body) <= DESTINATION.max_bytes for r in requests)


def test_success_delivers_every_event_and_skipped_ones_are_refused() -> None:
    """ "Response {"status": "success"}"; an eventyard receiver names skipped events in
    ``X-Eventyard-Skipped-Events``."""
    activities = [outgoing(("identity", f"u{i}")) for i in range(3)]
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    ok = DESTINATION.read_answer(request, ReceiverAnswer(200, {}, b'{"status":"success"}'))
    assert ok.refused == {}
    skipped = DESTINATION.read_answer(
        request,
        ReceiverAnswer(200, {"X-Eventyard-Skipped-Events": "0,2"}, b'{"status":"success"}'),
    )
    assert list(skipped.refused) == [activities[0].id, activities[2].id]


def test_a_400_naming_events_refuses_them_and_resends_the_others() -> None:
    """ "400 | Bad Request | Missing Parameter - Activity Name": nothing is stored."""
    activities = [outgoing(("identity", f"u{i}")) for i in range(3)]
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    body = {
        "status": "error",
        "code": 400,
        "message": "Bad Request | 1 of 3 events are invalid; nothing was stored",
        "errors": [
            {"index": 1, "field": "activity_name", "reason": "Missing Parameter - Activity Name"},
            {"index": 1, "field": "email", "reason": "email is not a valid e-mail address"},
        ],
    }
    reading = DESTINATION.read_answer(request, ReceiverAnswer(400, {}, orjson.dumps(body)))
    assert reading.refused == {
        activities[1].id: "Missing Parameter - Activity Name; email is not a valid e-mail address"
    }
    assert reading.resend_others is True


def test_a_400_without_indexes_refuses_every_event() -> None:
    activities = [outgoing(("identity", f"u{i}")) for i in range(2)]
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    body = b'{"status":"error","code":400,"message":"Bad Request | body is not valid JSON"}'
    reading = DESTINATION.read_answer(request, ReceiverAnswer(400, {}, body))
    assert set(reading.refused) == {a.id for a in activities}
    assert reading.resend_others is False


def test_asset_id_is_an_optional_credential() -> None:
    assert DESTINATION.credential_fields == ("api_key",)
    assert DESTINATION.optional_credential_fields == ("asset_id",)
