"""Destination kind ``cordial``: activities -> contact activities, and Cordial's answers."""

from __future__ import annotations

import base64
from typing import Any

import orjson

from eventyard.core.delivery import OutgoingActivity, ReceiverAnswer
from eventyard.dialects.cordial.destination import DESTINATION, cordial_properties
from tests.outgoing import outgoing

URL = "https://api.cordial.example"
CREDENTIALS = {"api_key": "key-1"}


def body(activity: OutgoingActivity) -> dict[str, Any]:
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, [activity], "d")
    sent: dict[str, Any] = orjson.loads(request.body)
    return sent


def test_each_activity_is_one_post_with_the_key_as_basic_user() -> None:
    """ "POST | /v2/contactactivities | Creates a new contact activity"; "Cordial's core APIs
    use https Basic Authentication" """
    activities = [outgoing(("email", f"u{i}@x.io")) for i in range(3)]
    requests = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    assert [r.activity_ids for r in requests] == [(a.id,) for a in activities]
    assert {(r.method, r.url) for r in requests} == {("POST", f"{URL}/v2/contactactivities")}
    assert requests[0].headers["Authorization"] == "Basic " + base64.b64encode(b"key-1:").decode()


def test_the_body_is_the_spec_example_shape() -> None:
    """{ "a": "browse", "email": "msmith@example.com", "ats": "2025-01-09 17:47:43",
    "properties": { "category": "Shirts", ... } }"""
    activity = outgoing(
        ("email", "msmith@example.com"),
        name="browse",
        properties={"category": "Shirts", "price": 9.99},
    )
    assert body(activity) == {
        "a": "browse",
        "email": "msmith@example.com",
        "ats": "2026-03-14T09:26:53Z",
        "properties": {"category": "Shirts", "price": 9.99},
    }


def test_cordial_keys_come_first_and_at_most_three_fit_in_six_parameters() -> None:
    """ "Six is the maximum number of parameters allowed for the payload." """
    sent = body(outgoing(("identity", "u"), ("cID", "9"), ("custID", "c-1"), ("email", "a@x.io")))
    assert [k for k in sent if k not in {"a", "ats", "properties"}] == ["email", "custID", "cID"]
    assert len(sent) <= 6


def test_without_cordial_keys_identity_and_mobile_are_sent() -> None:
    sent = body(outgoing(("mobile", "+4412345"), ("identity", "u1")))
    assert (sent["mobile"], sent["identity"]) == ("+4412345", "u1")


def test_an_anonymous_contact_goes_under_its_contact_id() -> None:
    activity = outgoing(("anonid", "an-1"))
    assert body(activity)["cID"] == activity.contact_id


def test_keys_cordial_would_strip_are_renamed() -> None:
    """ "Property keys consisting of numeric-only values (e.g. 57) or keys containing a period,
    like shoes.color, will be stripped." """
    assert cordial_properties(
        {"57": 1, "shoes.color": "red", "shoes_color": "blue", "nested": {"a.b": 1}}
    ) == {"_57": 1, "shoes_color": "red", "shoes_color-2": "blue", "nested": {"a.b": 1}}


def test_the_same_activity_builds_the_same_bytes() -> None:
    activity = outgoing(("email", "a@x.io"), properties={"b": 1, "a": [1, 2]})
    first = DESTINATION.build_requests(URL, CREDENTIALS, [activity], "d")
    assert first[0].body == DESTINATION.build_requests(URL, CREDENTIALS, [activity], "d")[0].body


def test_a_success_delivers_and_an_error_object_refuses_with_its_key() -> None:
    """ "The Cordial API will return an error object with an errorKey and message" """
    activity = outgoing(("email", "a@x.io"), name="open")
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, [activity], "d")
    ok = ReceiverAnswer(200, {}, b'{"success":true,"cID":"01a2097b2f1475d9e4d7cd02"}')
    assert DESTINATION.read_answer(request, ok).refused == {}
    error = {
        "error": True,
        "errorKey": "CONTACT_ACTIVITIES_INCORRECT_ACTION_NAME",
        "message": "'open' is a reserved action",
    }
    refused = DESTINATION.read_answer(request, ReceiverAnswer(422, {}, orjson.dumps(error)))
    assert refused.refused == {
        activity.id: "CONTACT_ACTIVITIES_INCORRECT_ACTION_NAME: 'open' is a reserved action"
    }
