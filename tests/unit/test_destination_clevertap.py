"""Destination kind ``clevertap``: activities -> Upload Events records, and CleverTap's answers."""

from __future__ import annotations

from typing import Any

import orjson

from eventyard.core.delivery import OutgoingActivity, ReceiverAnswer
from eventyard.dialects.clevertap.destination import DESTINATION
from tests.outgoing import outgoing

URL = "https://eu1.api.clevertap.example"
CREDENTIALS = {"account_id": "ABC-DEF-1234", "passcode": "pass"}


def records(*activities: OutgoingActivity) -> list[dict[str, Any]]:
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    return list(orjson.loads(request.body)["d"])


def test_a_request_posts_to_upload_with_the_account_headers() -> None:
    """ "These headers are all required. The X-CleverTap-Account-Id and X-CleverTap-Passcode
    are used to authenticate the request." """
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, [outgoing(("identity", "u"))], "d")
    assert (request.method, request.url) == ("POST", f"{URL}/1/upload")
    assert request.headers["X-CleverTap-Account-Id"] == "ABC-DEF-1234"
    assert request.headers["X-CleverTap-Passcode"] == "pass"


def test_an_event_record_carries_name_data_and_epoch_seconds() -> None:
    """ "type | (Required) Set to event"; "ts ... Formatted as a UNIX epoch in seconds" """
    (record,) = records(outgoing(("identity", "u1"), properties={"Amount": 300, "Items": []}))
    assert record == {
        "identity": "u1",
        "ts": 1773480413,
        "type": "event",
        "evtName": "Order Completed",
        "evtData": {"Amount": 300, "Items": []},
    }


def test_every_user_id_field_the_contact_has_is_sent() -> None:
    (record,) = records(outgoing(("FBID", "34322423"), ("identity", "u1"), ("email", "a@x.io")))
    assert (record["identity"], record["FBID"]) == ("u1", "34322423")
    assert "email" not in record


def test_a_contact_without_one_is_sent_under_its_email_then_mobile_then_contact_id() -> None:
    """ "identity | ... It can be the user's email, a phone number, or any other identifier" """
    assert records(outgoing(("mobile", "+4412"), ("email", "a@x.io")))[0]["identity"] == "a@x.io"
    assert records(outgoing(("mobile", "+4412")))[0]["identity"] == "+4412"
    anonymous = outgoing(("anonid", "an-1"))
    assert records(anonymous)[0]["identity"] == anonymous.contact_id


def test_records_are_batched_by_1000_and_the_same_input_builds_the_same_bytes() -> None:
    """ "1000 event records can be sent per API call." """
    activities = [outgoing(("identity", f"u{i}")) for i in range(2500)]
    requests = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    assert [len(r.activity_ids) for r in requests] == [1000, 1000, 500]
    again = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    assert [r.body for r in requests] == [r.body for r in again]


def test_requests_stay_under_the_byte_limit() -> None:
    activities = [outgoing(("identity", f"u{i}"), properties={"v": "x" * 500}) for i in range(9000)]
    requests = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    assert all(len(r.body) <= DESTINATION.max_bytes for r in requests)
    assert [i for r in requests for i in r.activity_ids] == [a.id for a in activities]


def unprocessed_answer(status: str, *entries: dict[str, Any]) -> ReceiverAnswer:
    body = {"status": status, "processed": 0, "unprocessed": list(entries)}
    return ReceiverAnswer(200, {}, orjson.dumps(body))


def test_success_delivers_every_record() -> None:
    """ "Example Response {"status": "success", "processed": 1, "unprocessed": []}" """
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, [outgoing(("identity", "u"))], "d")
    assert DESTINATION.read_answer(request, unprocessed_answer("success")).refused == {}


def test_unprocessed_records_are_named_by_the_record_they_echo() -> None:
    """ "unprocessed": [{"status":"fail", "code":<error code>, "error":<error msg>,
    "record":<record>}]"""
    activities = [
        outgoing(("identity", "u1")),
        outgoing(("identity", "u2"), name="App Launched"),
        outgoing(("identity", "u3")),
    ]
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    sent = orjson.loads(request.body)["d"]
    entry = {"status": "fail", "code": 1012, "error": "reserved", "record": sent[1]}
    reading = DESTINATION.read_answer(request, unprocessed_answer("partial", entry))
    assert reading.refused == {activities[1].id: "1012: reserved"}


def test_identical_records_are_matched_one_each_in_order() -> None:
    twins = [outgoing(("identity", "u1"), name="Same") for _ in range(3)]
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, twins, "d")
    sent = orjson.loads(request.body)["d"]
    entries = [{"code": 1040, "error": "limit", "record": sent[0]}] * 2
    reading = DESTINATION.read_answer(request, unprocessed_answer("partial", *entries))
    assert list(reading.refused) == [twins[0].id, twins[1].id]


def test_an_entry_with_an_index_names_that_record() -> None:
    activities = [outgoing(("identity", "u1")), outgoing(("identity", "u2"))]
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    entry = {"status": "fail", "code": 512, "error": "bad", "index": 1}
    reading = DESTINATION.read_answer(request, unprocessed_answer("partial", entry))
    assert reading.refused == {activities[1].id: "512: bad"}


def test_a_fail_whose_records_cannot_be_matched_refuses_them_all() -> None:
    activities = [outgoing(("identity", "u1")), outgoing(("identity", "u2"))]
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    entry = {"status": "fail", "code": 1, "error": "x", "record": {"other": True}}
    reading = DESTINATION.read_answer(request, unprocessed_answer("fail", entry))
    assert set(reading.refused) == {a.id for a in activities}


def test_a_request_level_400_refuses_every_record() -> None:
    """Request-level errors: ``{"status": "fail", "error": "...", "code": 400}``."""
    activities = [outgoing(("identity", "u1")), outgoing(("identity", "u2"))]
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    body = orjson.dumps(
        {"status": "fail", "error": '"d" must hold at least one record', "code": 400}
    )
    reading = DESTINATION.read_answer(request, ReceiverAnswer(400, {}, body))
    assert set(reading.refused) == {a.id for a in activities}
    assert "at least one record" in reading.refused[activities[0].id]
