"""Destination kind ``ortto``: activities -> ``activities/create`` objects, and Ortto's answers."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from eventyard.core.delivery import OutgoingActivity, ReceiverAnswer
from eventyard.dialects.ortto.destination import DESTINATION, activity_id, typed_attributes
from tests.outgoing import outgoing

URL = "https://api.eu.ortto.example"
CREDENTIALS = {"api_key": "key-1"}


def objects(*activities: OutgoingActivity) -> list[dict[str, Any]]:
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    return list(orjson.loads(request.body)["activities"])


def test_a_request_posts_the_activities_with_the_api_key_header() -> None:
    """ "This endpoint requires a custom API key ... X-Api-Key: CUSTOM-PRIVATE-API-KEY" """
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, [outgoing(("email", "a@x.io"))], "d")
    assert (request.method, request.url) == ("POST", f"{URL}/v1/activities/create")
    assert request.headers["X-Api-Key"] == "key-1"


def test_an_activity_received_as_ortto_goes_back_as_it_came() -> None:
    activity = outgoing(
        ("email", "customer@example.com"),
        name="act:cm:product-purchase",
        properties={"str:cm:product-name": "Premium Plan", "int::v": 5000},
        value_milli=5000,
        dialect="ortto",
        location={"custom": {"name": "Melbourne"}},
    )
    assert objects(activity) == [
        {
            "activity_id": "act:cm:product-purchase",
            "attributes": {"str:cm:product-name": "Premium Plan", "int::v": 5000},
            "fields": {"str::email": "customer@example.com"},
            "merge_by": ["str::email"],
            "created": "2026-03-14T09:26:53Z",
            "key": activity.id,
            "location": {"custom": {"name": "Melbourne"}},
        }
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Order Completed", "act:cm:order-completed"),
        ("act:cm:signup", "act:cm:signup"),
        ("  Add_To Cart!! ", "act:cm:add-to-cart"),
        ("注文", "act:cm:activity"),
        ("x" * 300, "act:cm:" + "x" * 193),
    ],
)
def test_other_names_become_act_cm_ids(name: str, expected: str) -> None:
    """ "activity_id | string | Required. Custom activity identifier (e.g.,
    act:cm:product-purchase)" """
    assert activity_id(name) == expected


def test_properties_become_attributes_typed_by_their_value() -> None:
    """ "Activity attributes use the format type:namespace:field" (str, int, bol, dtz, obj)."""
    assert typed_attributes(
        {
            "Product Name": "Plan",
            "qty": 3,
            "member": True,
            "meta": {"a": 1},
            "price": 9.99,
            "tags": ["a", "b"],
            "gone": None,
            "str:cm:kept": "as is",
        }
    ) == {
        "str:cm:product-name": "Plan",
        "int:cm:qty": 3,
        "bol:cm:member": True,
        "obj:cm:meta": {"a": 1},
        "str:cm:price": "9.99",
        "str:cm:tags": '["a","b"]',
        "str:cm:gone": None,
        "str:cm:kept": "as is",
    }


def test_keys_that_make_the_same_field_are_numbered_in_order() -> None:
    assert typed_attributes({"a b": "1", "a-b": "2", "A B": "3"}) == {
        "str:cm:a-b": "1",
        "str:cm:a-b-2": "2",
        "str:cm:a-b-3": "3",
    }


def test_the_conversion_value_travels_as_int_v() -> None:
    """``int::v``: "Conversion value", the currency amount times 1000."""
    (sent,) = objects(outgoing(("email", "a@x.io"), properties={}, value_milli=29900))
    assert sent["attributes"] == {"int::v": 29900}


def test_merge_by_holds_the_email_then_other_ids_and_phone_always_travels() -> None:
    """ "merge_by | Field IDs to match existing contacts (max 2)" """
    (sent,) = objects(
        outgoing(
            ("mobile", "+61400000000"), ("identity", "u1"), ("anonid", "an"), ("email", "a@x.io")
        )
    )
    assert sent["merge_by"] == ["str::email", "str:cm:identity"]
    assert sent["fields"] == {
        "str::phone": "+61400000000",
        "str:cm:identity": "u1",
        "str::email": "a@x.io",
    }


def test_an_anonymous_contact_merges_by_its_anonid() -> None:
    (sent,) = objects(outgoing(("anonid", "an-1")))
    assert (sent["fields"], sent["merge_by"]) == ({"str:cm:anonid": "an-1"}, ["str:cm:anonid"])


def test_activities_are_batched_by_100_and_under_2_mb() -> None:
    """ "Max activities per request | 100"; "Max payload size | 2 MB" """
    activities = [outgoing(("email", f"u{i}@x.io")) for i in range(250)]
    requests = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    assert [len(r.activity_ids) for r in requests] == [100, 100, 50]
    assert [r.body for r in requests] == [
        r.body for r in DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    ]
    big = [outgoing(("email", "a@x.io"), properties={"t": "x" * 300_000}) for _ in range(10)]
    assert all(
        len(r.body) <= 2_000_000 for r in DESTINATION.build_requests(URL, CREDENTIALS, big, "d")
    )


def test_the_activities_with_an_error_are_refused_with_it() -> None:
    """The spec's result per activity, in order: ``{"person_id", "status": "ingested",
    "person_status", "activity_id"}``; an eventyard receiver adds ``error`` to refused ones."""
    activities = [outgoing(("email", f"u{i}@x.io")) for i in range(3)]
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    reason = (
        "activities[1]: activity_id 'act:cm:order-completed' has no activity definition;"
        " create it first"
    )
    body = {
        "activities": [
            {
                "person_id": "0" * 24,
                "status": "ingested",
                "person_status": "created",
                "activity_id": "act:cm:x",
            },
            {"activity_id": "act:cm:order-completed", "error": reason},
            {"status": "queued", "person_status": "queued", "activity_id": "act:cm:x"},
        ]
    }
    reading = DESTINATION.read_answer(request, ReceiverAnswer(200, {}, orjson.dumps(body)))
    assert reading.refused == {activities[1].id: reason}


def test_a_400_without_results_refuses_every_activity() -> None:
    """ "400 Bad Request - Invalid parameters or malformed JSON"; "413 Payload Too Large" """
    activities = [outgoing(("email", f"u{i}@x.io")) for i in range(2)]
    (request,) = DESTINATION.build_requests(URL, CREDENTIALS, activities, "d")
    answer = ReceiverAnswer(413, {}, b'{"error":"Payload Too Large","code":413}')
    reading = DESTINATION.read_answer(request, answer)
    assert set(reading.refused) == {a.id for a in activities}
    assert "Payload Too Large" in reading.refused[activities[0].id]
