"""Ortto activities/create bodies -> canonical activities and profiles (no HTTP, no database).

Spec: ``shared/specs/ortto-activities-create.txt``. Decisions the spec leaves
open: ``docs/dialects/ortto.md``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventyard.core.identifiers import Identifier
from eventyard.core.model import (
    ContactHint,
    MergeStrategy,
    NewActivity,
    ProfileUpdate,
    RecordRejection,
    RecordsOutcome,
)
from eventyard.core.payload import decode_json
from eventyard.dialects.ortto.translate import (
    DIALECT,
    MAX_ACTIVITIES,
    RULES,
    SOURCE,
    Accepted,
    Refused,
    Translation,
    activities_of,
    flatten,
    response_body,
    translate,
)

NOW = datetime(2025, 11, 1, 12, 0, tzinfo=UTC)
RETENTION = timedelta(days=548)
PAYLOADS = Path(__file__).parents[1] / "payloads" / "ortto"
SPEC_BODIES = sorted(PAYLOADS.glob("*.json"))
PERSON_ID = "00647687d2e43b25a0261f00"


def activity(**elements: Any) -> dict[str, Any]:
    """A valid activity merged by e-mail; ``...`` removes an element."""
    raw: dict[str, Any] = {
        "activity_id": "act:cm:product-purchase",
        "attributes": {"str:cm:product-name": "Premium Plan"},
        "fields": {"str::email": "customer@example.com"},
        "merge_by": ["str::email"],
    }
    raw.update(elements)
    return {k: v for k, v in raw.items() if v is not ...}


def run(
    *activities: Any,
    run_async: bool = False,
    now: datetime = NOW,
    default_strategy: MergeStrategy = "overwrite",
    retention: timedelta = RETENTION,
    check_unstorable: bool = False,
) -> Translation:
    return translate(
        list(activities),
        run_async=run_async,
        now=now,
        default_strategy=default_strategy,
        retention=retention,
        check_unstorable=check_unstorable,
    )


def ok(raw: Any, **options: Any) -> Accepted:
    [item] = run(raw, **options).items
    assert isinstance(item, Accepted), item
    return item


def new_activity(raw: Any, **options: Any) -> NewActivity:
    record = ok(raw, **options).records[-1]
    assert isinstance(record, NewActivity)
    return record


def profile(raw: Any, **options: Any) -> ProfileUpdate:
    record = ok(raw, **options).records[0]
    assert isinstance(record, ProfileUpdate)
    return record


def refused(raw: Any, **options: Any) -> str:
    """The error of the one activity ``raw``, which must be refused."""
    [item] = run(raw, **options).items
    assert isinstance(item, Refused), item
    return item.message


def load(path: Path) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(path.read_text())
    return body


class TestRequestBody:
    """ "The request body consists of a JSON object with an activities array"."""

    def test_activities_and_async(self) -> None:
        """ "Valid request body elements": activities and async."""
        assert activities_of({"activities": [activity()], "async": True}) == ([activity()], True)

    def test_async_defaults_to_false(self) -> None:
        """ "async | boolean | Optional. ... Default: false"."""
        assert activities_of({"activities": [activity()]}) == ([activity()], False)

    def test_100_activities_are_accepted(self) -> None:
        """ "Max activities per request | 100"."""
        activities, _ = activities_of({"activities": [activity()] * MAX_ACTIVITIES})
        assert len(activities) == 100

    def test_101_activities_are_refused(self) -> None:
        """ "Array of activity events to create (max 100 per request)"."""
        with pytest.raises(ValueError, match="holds 101 activities; at most 100"):
            activities_of({"activities": [activity()] * 101})

    def test_no_activity_is_refused(self) -> None:
        """ "activities | array of objects | Required." An empty array creates nothing."""
        with pytest.raises(ValueError, match="at least one activity"):
            activities_of({"activities": []})

    @pytest.mark.parametrize("value", [None, {}, "act", 1])
    def test_activities_must_be_an_array(self, value: Any) -> None:
        """ "activities | array of objects | **Required.**"."""
        with pytest.raises(ValueError, match='"activities" is required and must be an array'):
            activities_of({"activities": value})

    def test_activities_is_required(self) -> None:
        """ "activities | array of objects | **Required.**"."""
        with pytest.raises(ValueError, match='"activities" is required'):
            activities_of({"async": False})

    @pytest.mark.parametrize("body", [[activity()], "activities", None, 1])
    def test_the_body_must_be_an_object(self, body: Any) -> None:
        """ "The request body consists of a JSON object"."""
        with pytest.raises(ValueError, match="must be a JSON object"):
            activities_of(body)

    def test_an_unknown_body_element_is_refused(self) -> None:
        """ "Valid request body elements": activities and async only (a typo such as
        "asynch" would otherwise silently process a bulk load synchronously)."""
        with pytest.raises(ValueError, match="Unknown body element 'asynch'"):
            activities_of({"activities": [activity()], "asynch": True})

    @pytest.mark.parametrize("value", ["true", 1, 0, None])
    def test_async_must_be_a_boolean(self, value: Any) -> None:
        """ "async | boolean"."""
        with pytest.raises(ValueError, match='"async" must be true or false'):
            activities_of({"activities": [activity()], "async": value})


class TestSpecExamples:
    """The spec's four "Example request body" sections, replayed from tests/payloads/ortto."""

    def test_there_is_one_file_per_example(self) -> None:
        """ "Example request body - Basic activity creation / With backdating / Using
        person_id / With location data": one file each."""
        spec_headings = 4  # "Example request body - Basic ... / Backdating / person_id / Location"
        assert len(SPEC_BODIES) == spec_headings

    @pytest.mark.parametrize("path", SPEC_BODIES, ids=lambda p: p.stem)
    def test_every_example_translates_without_a_refusal(self, path: Path) -> None:
        """Each "Example request body" is a valid request."""
        activities, run_async = activities_of(load(path))
        translation = run(*activities, run_async=run_async)
        assert [type(i) for i in translation.items] == [Accepted] * len(activities)
        assert translation.accepted(queued=True) == []

    def test_basic_activity_creation(self) -> None:
        """ "Example request body - Basic activity creation"."""
        body = load(PAYLOADS / "basic_activity_creation.json")
        activities, run_async = activities_of(body)
        assert run_async is False
        [item] = run(*activities).items
        assert isinstance(item, Accepted)
        assert item.activity_id == "act:cm:product-purchase"
        assert item.person_id is None
        update, purchase = item.records
        assert isinstance(update, ProfileUpdate)
        assert isinstance(purchase, NewActivity)
        email = Identifier("email", "customer@example.com")
        assert update.identifiers == purchase.identifiers == (email,)
        assert update.attributes == {"str::first": "John"}
        assert update.dialect == DIALECT
        assert purchase.name == "act:cm:product-purchase"
        assert purchase.occurred_at == NOW
        assert purchase.properties == {"str:cm:product-name": "Premium Plan", "int::v": 5000}
        assert purchase.value_milli == 5000
        assert purchase.dialect == "ortto"
        assert purchase.source == SOURCE == "api"
        assert purchase.contact_hint is None
        assert purchase.dedup_key is None
        assert purchase.location is None

    def test_with_backdating(self) -> None:
        """ "Example request body - With backdating": created and key."""
        [raw] = load(PAYLOADS / "with_backdating.json")["activities"]
        item = ok(raw)
        assert item.queued is False
        [order] = item.records  # no field besides str::email: no profile update
        assert isinstance(order, NewActivity)
        assert order.occurred_at == datetime(2025, 10, 15, 14, 30, tzinfo=UTC)
        assert order.dedup_key is not None
        assert order.dedup_key.startswith("ortto:")
        assert order.value_milli == 29900

    def test_using_person_id(self) -> None:
        """ "Example request body - Using person_id": no fields, no merge_by."""
        [raw] = load(PAYLOADS / "using_person_id.json")["activities"]
        item = ok(raw)
        assert item.person_id == PERSON_ID
        [view] = item.records
        assert isinstance(view, NewActivity)
        assert view.contact_hint == ContactHint(PERSON_ID)
        assert view.identifiers == ()
        assert view.properties == {"str:cm:page-url": "/pricing", "str:cm:referrer": "google"}
        assert view.value_milli is None

    def test_with_location_data(self) -> None:
        """ "Example request body - With location data": a custom location."""
        [raw] = load(PAYLOADS / "with_location_data.json")["activities"]
        visit = new_activity(raw)
        assert visit.location == raw["location"]
        assert visit.location == {
            "custom": {
                "name": "Melbourne",
                "region": "Victoria",
                "country": "Australia",
                "timezone": "Australia/Melbourne",
            }
        }


class TestActivityShape:
    def test_an_activity_must_be_an_object(self) -> None:
        """ "activities | array of objects"."""
        assert refused("act:cm:purchase") == "activities[0].activity: must be a JSON object"

    def test_an_unknown_element_is_refused_by_name(self) -> None:
        """ "Activity object elements" lists nine elements; others are mistakes."""
        assert refused(activity(person="x")) == (
            "activities[0].person: is not an element of an activity"
        )

    def test_the_index_names_the_activity(self) -> None:
        """ "400 Bad Request - Invalid parameters": the error says which activity."""
        translation = run(activity(), activity(activity_id=...), activity())
        assert [type(i) for i in translation.items] == [Accepted, Refused, Accepted]
        item = translation.items[1]
        assert isinstance(item, Refused)
        assert item.index == 1
        assert item.message.startswith("activities[1].activity_id: ")

    def test_the_input_is_not_modified(self) -> None:
        """ "Each activity object can create or update a contact": from a copy, not the body."""
        raw = activity(fields={"str::email": " A@Example.com ", "str::first": "Ann"})
        before = json.loads(json.dumps(raw))
        run(raw)
        assert raw == before

    def test_integers_beyond_64_bits_are_refused_with_their_path(self) -> None:
        """ "obj:cm:field-name | JSON object | Complex nested data structures", kept exactly
        or refused naming the value."""
        body = decode_json(
            b'{"activities": [{"activity_id": "act:cm:a", "person_id": "'
            + PERSON_ID.encode()
            + b'", "attributes": {"obj:cm:o": {"n": 123456789012345678901234567890}}}]}'
        )
        assert body.suspicious
        [raw] = body.value["activities"]
        assert refused(raw, check_unstorable=True) == (
            "activities[0].attributes.obj:cm:o.n: is an integer beyond 64 bits, which cannot "
            "be kept exactly; send it as a string"
        )

    def test_nesting_too_deep_to_store_is_refused_in_every_body(self) -> None:
        """An ``obj`` value the store cannot write back is refused even when the body
        looked ordinary (no ``\\u0000``, no long digits), not a 500 at commit time."""
        deep: Any = 1
        for _ in range(300):
            deep = {"a": deep}
        message = refused(activity(attributes={"obj:cm:deep": deep}), check_unstorable=False)
        assert message.startswith("activities[0].activity: is nested more than 254 levels")


class TestActivityId:
    """ "activity_id | string | **Required.** Custom activity identifier (e.g.,
    act:cm:product-purchase)"."""

    def test_required(self) -> None:
        """ "activity_id | string | **Required.**"."""
        assert refused(activity(activity_id=...)).startswith(
            "activities[0].activity_id: is required"
        )

    @pytest.mark.parametrize(
        "value",
        [
            None,
            7,
            "",
            "product-purchase",
            "act:product-purchase",
            "act:xx:product-purchase",
            "act:cm:",
            "act:cm:Product-Purchase",
            "act:cm:product purchase",
            "act:cm:" + "a" * 200,
        ],
    )
    def test_must_be_a_custom_activity_id(self, value: Any) -> None:
        """ "Custom activity identifier (e.g., act:cm:product-purchase)"."""
        assert refused(activity(activity_id=value)).startswith("activities[0].activity_id: ")

    def test_the_activity_is_named_by_its_id(self) -> None:
        """ "Create custom activity definition with matching activity_id"."""
        assert new_activity(activity(activity_id="act:cm:event-registration")).name == (
            "act:cm:event-registration"
        )


class TestAttributes:
    """ "attributes | object | **Required.** Activity-specific fields using format
    type:namespace:field"."""

    @pytest.mark.parametrize("value", [..., None, [], "x", 1])
    def test_a_required_object(self, value: Any) -> None:
        """ "attributes | object | **Required.**"."""
        assert refused(activity(attributes=value)) == (
            "activities[0].attributes: is required and must be an object"
        )

    def test_attributes_are_the_properties_under_their_field_ids(self) -> None:
        """The spec's "Common use cases": purchase, registration, support ticket."""
        attributes = {
            "str:cm:product-name": "Widget Pro",
            "int::v": 4999,
            "int:cm:quantity": 2,
            "bol:cm:is-member": True,
            "dtz:cm:event-date": "2025-11-15T18:00:00Z",
            "obj:cm:cart": {"items": [{"sku": "W-1"}], "coupon": None},
        }
        assert new_activity(activity(attributes=attributes)).properties == attributes

    @pytest.mark.parametrize(
        ("field_id", "value"),
        [
            ("str:cm:product-name", "Premium Plan"),
            ("int:cm:quantity", 3),
            ("int:cm:quantity", -3),
            ("bol:cm:is-member", True),
            ("bol:cm:is-member", False),
            ("dtz:cm:event-date", "2025-11-15T18:00:00Z"),
            ("dtz:cm:event-date", "2025-11-15T18:00:00+10:00"),
            ("obj:cm:details", {"a": [1, "b"]}),
        ],
    )
    def test_typed_values(self, field_id: str, value: Any) -> None:
        """ "Attribute field types": str, int, bol, dtz, obj."""
        assert new_activity(activity(attributes={field_id: value})).properties == {field_id: value}

    @pytest.mark.parametrize(
        ("field_id", "value", "reason"),
        [
            ("str:cm:product-name", 5, "must be a string"),
            ("str:cm:product-name", ["a"], "must be a string"),
            ("int:cm:quantity", "3", "must be an integer"),
            ("int:cm:quantity", 3.5, "must be an integer"),
            ("int:cm:quantity", True, "must be an integer"),
            ("int:cm:quantity", 2**63, "is too large"),
            ("bol:cm:is-member", "true", "must be true or false"),
            ("bol:cm:is-member", 1, "must be true or false"),
            ("dtz:cm:event-date", 1763229600, "must be an ISO 8601 date-time string"),
            ("dtz:cm:event-date", "next tuesday", "is not an ISO 8601 date-time"),
            ("dtz:cm:event-date", "2025-11-15T18:00:00", "needs a time zone"),
            ("obj:cm:details", [1, 2], "must be a JSON object"),
            ("obj:cm:details", "{}", "must be a JSON object"),
        ],
    )
    def test_a_value_of_another_type_is_refused_naming_the_field(
        self, field_id: str, value: Any, reason: str
    ) -> None:
        """ "Activity attributes use the format type:namespace:field"."""
        message = refused(activity(attributes={field_id: value}))
        assert message.startswith(f"activities[0].attributes.{field_id}: ")
        assert reason in message

    def test_a_bool_is_not_an_integer(self) -> None:
        """ "int:cm:field-name | Integer value" (JSON true is no number)."""
        assert refused(activity(attributes={"int::v": False})) == (
            "activities[0].attributes.int::v: must be an integer"
        )

    @pytest.mark.parametrize("kind", ["str", "int", "bol", "dtz", "obj"])
    def test_null_is_allowed_for_every_type_and_kept(self, kind: str) -> None:
        """ "Set to null - Excludes field from searches"."""
        field_id = f"{kind}:cm:field"
        assert new_activity(activity(attributes={field_id: None})).properties == {field_id: None}

    def test_empty_and_zero_are_kept_apart_from_null(self) -> None:
        """ "Set to 0 or "" (empty string) - Allows field to be found in searches; Set to
        null - Excludes field from searches"."""
        attributes = {"str:cm:a": "", "str:cm:b": None, "int:cm:c": 0, "int:cm:d": None}
        properties = new_activity(activity(attributes=attributes)).properties
        assert properties == attributes
        assert properties["str:cm:a"] == ""
        assert properties["str:cm:a"] is not None
        assert properties["int:cm:c"] == 0
        assert properties["int:cm:c"] is not None

    @pytest.mark.parametrize(
        "field_id",
        [
            "product-name",
            "str:product-name",
            "str:cm:a:b",
            "txt:cm:product-name",
            "str:xx:product-name",
            "str:cm:",
            "str:cm:Product-Name",
            "str:cm:product name",
            "str:cm:" + "a" * 101,
        ],
    )
    def test_a_malformed_field_id_is_refused(self, field_id: str) -> None:
        """ "Activity attributes use the format type:namespace:field"."""
        message = refused(activity(attributes={field_id: "x"}))
        assert message.startswith(f"activities[0].attributes.{field_id}: is not a valid field id")

    def test_int_v_is_the_conversion_value(self) -> None:
        """ "int::v | Conversion value (currency x 1000) | int::v: 5000 (represents $5.00)"."""
        purchase = new_activity(activity(attributes={"int::v": 5000}))
        assert purchase.value_milli == 5000
        assert purchase.properties == {"int::v": 5000}

    @pytest.mark.parametrize("attributes", [{}, {"int::v": None}, {"int:cm:v": 5}])
    def test_no_conversion_value_without_int_v(self, attributes: dict[str, Any]) -> None:
        """Only "int::v" is the conversion value (``int:cm:v`` is a custom integer)."""
        assert new_activity(activity(attributes=attributes)).value_milli is None

    @pytest.mark.parametrize("value", ["5000", 5.0, True])
    def test_a_conversion_value_must_be_an_integer(self, value: Any) -> None:
        """ "int::v | Conversion value (currency x 1000)": thousandths, never fractions."""
        assert refused(activity(attributes={"int::v": value})) == (
            "activities[0].attributes.int::v: must be an integer"
        )


class TestPersonId:
    """ "person_id | string | Person's unique ID. If provided, ignores fields and merge_by."."""

    def test_a_person_id_is_a_contact_hint(self) -> None:
        """ "Directly attaches activity to the specified contact"."""
        item = ok(activity(person_id=PERSON_ID, fields=..., merge_by=...))
        [record] = item.records
        assert isinstance(record, NewActivity)
        assert record.contact_hint == ContactHint(PERSON_ID)
        assert record.identifiers == ()
        assert item.person_id == PERSON_ID

    def test_fields_and_merge_by_are_ignored(self) -> None:
        """ "Ignores fields object entirely", even fields that would be refused."""
        raw = activity(
            person_id=PERSON_ID,
            fields={"str::email": "not an address", "bogus": 1},
            merge_by=["str::first", "str::last", "str::phone"],
            merge_strategy=9,
        )
        item = ok(raw)
        assert len(item.records) == 1
        assert item.records[0].identifiers == ()

    @pytest.mark.parametrize(
        "value", ["", "0064768", PERSON_ID + "0", "00647687d2e43b25a0261g00", 647687, ["x"]]
    )
    def test_a_malformed_person_id_is_refused(self, value: Any) -> None:
        """ "person_id | string | Person's unique ID" (24 hex characters, as the spec's
        "00647687d2e43b25a0261f00")."""
        assert refused(activity(person_id=value)) == (
            "activities[0].person_id: must be a 24-character person id"
        )

    def test_a_null_person_id_is_no_person_id(self) -> None:
        """ "fields ... Required if person_id not provided": null is not provided."""
        assert ok(activity(person_id=None)).person_id is None


class TestMergeBy:
    """ "fields ... Required if person_id not provided"; "merge_by | array of strings |
    Field IDs to match existing contacts (max 2). Required if person_id not provided"."""

    @pytest.mark.parametrize("value", [..., None, {}, [], "str::email"])
    def test_fields_are_required_without_person_id(self, value: Any) -> None:
        """ "fields | object | ... Required if person_id not provided"."""
        assert refused(activity(fields=value)) == (
            "activities[0].fields: is required when person_id is not given"
        )

    @pytest.mark.parametrize(
        "value", [..., None, [], "str::email", ["str::email", "str::phone", "str:cm:id"]]
    )
    def test_merge_by_is_required_without_person_id_with_one_or_two_ids(self, value: Any) -> None:
        """ "merge_by | array of strings | Field IDs to match existing contacts (max 2)"."""
        fields = {"str::email": "a@example.com", "str::phone": "+61 400 000 000", "str:cm:id": "7"}
        message = refused(activity(fields=fields, merge_by=value))
        assert message.startswith("activities[0].merge_by: is required when person_id is not")

    def test_two_ids_are_allowed(self) -> None:
        """ "Examples: ["str::email"], ["str::email", "str::phone"]"."""
        fields = {"str::email": "a@example.com", "str::phone": "+61 400 000 000"}
        assert new_activity(
            activity(fields=fields, merge_by=["str::email", "str::phone"])
        ).identifiers == (
            Identifier("email", "a@example.com"),
            Identifier("mobile", "+61400000000"),
        )

    def test_an_id_twice_is_refused(self) -> None:
        """ "Field IDs to match existing contacts (max 2)": two different ones."""
        message = refused(activity(merge_by=["str::email", "str::email"]))
        assert message == "activities[0].merge_by: names the same field twice"

    def test_a_merge_id_must_be_in_fields(self) -> None:
        """ "Field IDs to match existing contacts": the values come from fields."""
        message = refused(activity(merge_by=["str::phone"]))
        assert message == "activities[0].merge_by[0]: 'str::phone' must be one of the ids in fields"

    @pytest.mark.parametrize("value", ["", "   ", None])
    def test_a_merge_field_must_not_be_empty(self, value: Any) -> None:
        """ "Ortto searches for existing contact matching the field(s)": an empty value
        matches nobody."""
        message = refused(activity(fields={"str::email": value}))
        assert message == (
            "activities[0].fields.str::email: is a merge_by field and must not be empty"
        )

    @pytest.mark.parametrize(
        ("field_id", "value"),
        [
            ("bol::p", True),
            ("int:cm:customer-number", 42),
            ("str::first", "John"),
            ("str::last", ""),
        ],
    )
    def test_only_text_identifiers_can_merge(self, field_id: str, value: Any) -> None:
        """ "Field IDs to match existing contacts": e-mail, phone or a custom text id;
        the error names the merge_by entry, whatever the value."""
        message = refused(activity(fields={field_id: value}, merge_by=[field_id]))
        assert message.startswith(f"activities[0].merge_by[0]: '{field_id}' cannot identify")

    def test_a_custom_text_field_is_an_identifier_of_its_own_kind(self) -> None:
        """ "Custom person fields use type:cm:field-name format"."""
        raw = activity(
            fields={"str:cm:customer-id": " C-77 ", "str::first": "Ann"},
            merge_by=["str:cm:customer-id"],
        )
        item = ok(raw)
        update, purchase = item.records
        assert purchase.identifiers == (Identifier("customer_id", "C-77"),)
        assert update.identifiers == purchase.identifiers
        # A custom merge field is also an attribute, exactly as sent.
        assert isinstance(update, ProfileUpdate)
        assert update.attributes == {"str:cm:customer-id": " C-77 ", "str::first": "Ann"}

    def test_a_custom_field_spelling_a_well_known_kind_is_that_kind(self) -> None:
        """``str:cm:custid`` is ``custID``, as the read API and primary_kinds spell it."""
        raw = activity(fields={"str:cm:custid": "C-77"}, merge_by=["str:cm:custid"])
        assert new_activity(raw).identifiers == (Identifier("custID", "C-77"),)

    def test_a_custom_field_that_cannot_be_a_kind_is_refused(self) -> None:
        """ "Custom person fields use type:cm:field-name format"; as a merge field it must
        make an identifier kind."""
        raw = activity(fields={"str:cm:9-lives": "x"}, merge_by=["str:cm:9-lives"])
        assert "must start with a letter" in refused(raw)

    def test_a_non_string_merge_id_is_refused(self) -> None:
        """ "merge_by | array of strings"."""
        message = refused(activity(merge_by=[5]))
        assert message == "activities[0].merge_by[0]: 5 must be one of the ids in fields"


class TestPersonFields:
    """ "fields | object | Contact data to create/update. Uses format type::field or
    type:namespace:field"."""

    def test_email_and_phone_are_normalised_identifiers(self) -> None:
        """ "str::email | Email address"; "str::phone | Phone number"."""
        fields = {"str::email": " Customer@Example.COM ", "str::phone": "+61 (3) 9999-0000"}
        purchase = new_activity(activity(fields=fields, merge_by=["str::email"]))
        assert purchase.identifiers == (
            Identifier("email", "customer@example.com"),
            Identifier("mobile", "+61399990000"),
        )

    def test_email_and_phone_are_not_attributes(self) -> None:
        """ "str::email | Email address"; "str::phone | Phone number": identifiers."""
        fields = {"str::email": "a@example.com", "str::phone": "0400 000 000"}
        assert [type(r) for r in ok(activity(fields=fields)).records] == [NewActivity]

    @pytest.mark.parametrize("merge_by", [["str::email"], ["str::phone"]])
    def test_a_malformed_email_is_refused_naming_the_field(self, merge_by: list[str]) -> None:
        """Whether or not it is a merge field, a bad address is an error, not an identifier."""
        fields = {"str::email": "customer@", "str::phone": "0400 000 000"}
        assert refused(activity(fields=fields, merge_by=merge_by)) == (
            "activities[0].fields.str::email: is not a valid e-mail address"
        )

    def test_a_malformed_phone_is_refused_naming_the_field(self) -> None:
        """ "str::phone | Phone number"."""
        message = refused(activity(fields={"str::email": "a@example.com", "str::phone": "call"}))
        assert message.startswith("activities[0].fields.str::phone: must contain only digits")

    @pytest.mark.parametrize("value", ["", None])
    def test_an_empty_phone_outside_merge_by_is_dropped(self, value: Any) -> None:
        """ "str::phone | Phone number": an empty one names nobody."""
        fields = {"str::email": "a@example.com", "str::phone": value}
        item = ok(activity(fields=fields))
        assert [type(r) for r in item.records] == [NewActivity]
        assert item.records[0].identifiers == (Identifier("email", "a@example.com"),)

    def test_other_fields_are_attributes_under_their_field_ids(self) -> None:
        """ "Standard person fields" and "Custom person fields", kept as sent."""
        attributes = {
            "str::first": "John",
            "str::last": "",
            "bol::p": True,
            "bol::sp": None,
            "int:cm:visits": 0,
            "obj:cm:prefs": {"lang": "en"},
        }
        update = profile(activity(fields={"str::email": "a@example.com", **attributes}))
        assert update.attributes == attributes
        assert update.identifiers == (Identifier("email", "a@example.com"),)

    def test_the_profile_update_comes_first_in_the_activitys_records(self) -> None:
        """The activity sees the contact as its fields leave it."""
        item = ok(activity(fields={"str::email": "a@example.com", "str::first": "J"}))
        assert [type(r) for r in item.records] == [ProfileUpdate, NewActivity]

    @pytest.mark.parametrize(
        ("field_id", "value"), [("str::first", 5), ("bol::p", "yes"), ("int:cm:visits", "1")]
    )
    def test_a_field_of_another_type_is_refused(self, field_id: str, value: Any) -> None:
        """ "Uses format type::field or type:namespace:field": the type holds."""
        fields = {"str::email": "a@example.com", field_id: value}
        assert refused(activity(fields=fields)).startswith(f"activities[0].fields.{field_id}: ")

    def test_a_malformed_field_id_is_refused(self) -> None:
        """ "Standard person fields use the format type::field"."""
        fields = {"str::email": "a@example.com", "first": "John"}
        assert refused(activity(fields=fields)).startswith(
            "activities[0].fields.first: is not a valid field id"
        )


class TestMergeStrategy:
    """ "merge_strategy | integer | Override API key merge setting: 1 (append only),
    2 (overwrite), 3 (ignore existing)"."""

    FIELDS = {"str::email": "a@example.com", "str::first": "John"}

    @pytest.mark.parametrize(
        ("value", "strategy"), [(1, "fill_empty"), (2, "overwrite"), (3, "create_only")]
    )
    def test_each_value(self, value: int, strategy: str) -> None:
        """ "1 (append only), 2 (overwrite), 3 (ignore existing)"."""
        update = profile(activity(fields=self.FIELDS, merge_strategy=value))
        assert update.strategy == strategy

    @pytest.mark.parametrize("default", ["fill_empty", "overwrite", "create_only"])
    def test_the_default_is_the_accounts(self, default: MergeStrategy) -> None:
        """ "Override API key merge setting": without it, the account's setting holds."""
        update = profile(activity(fields=self.FIELDS), default_strategy=default)
        assert update.strategy == default
        update = profile(
            activity(fields=self.FIELDS, merge_strategy=None), default_strategy=default
        )
        assert update.strategy == default

    @pytest.mark.parametrize("value", [0, 4, "1", True, 1.0, [1], {"1": 1}])
    def test_other_values_are_refused(self, value: Any) -> None:
        """ "merge_strategy | integer | ... 1 ..., 2 ..., 3 ..."."""
        assert refused(activity(fields=self.FIELDS, merge_strategy=value)) == (
            "activities[0].merge_strategy: must be 1 (append only), 2 (overwrite) or "
            "3 (ignore existing)"
        )


class TestCreated:
    """ "created | string | ISO 8601 timestamp for backdating activities (up to 90 days or
    retention period)"."""

    def test_absent_means_now(self) -> None:
        """ "created | string | ISO 8601 timestamp for backdating activities": optional."""
        assert new_activity(activity()).occurred_at == NOW

    @pytest.mark.parametrize(
        "text",
        ["2025-10-15T14:30:00Z", "2025-10-15T14:30:00+00:00", "2025-10-16T00:30:00+10:00"],
    )
    def test_iso_8601_with_a_zone_is_kept_as_utc(self, text: str) -> None:
        """ "Use the created field with ISO 8601 timestamp"."""
        occurred_at = new_activity(activity(created=text)).occurred_at
        assert occurred_at == datetime(2025, 10, 15, 14, 30, tzinfo=UTC)
        assert occurred_at.utcoffset() == timedelta(0)

    @pytest.mark.parametrize("text", ["2025-10-15T14:30:00", "2025-10-15"])
    def test_a_time_without_a_zone_is_refused(self, text: str) -> None:
        """A naive time could be any of 26 hours; the client must say which."""
        assert "needs a time zone" in refused(activity(created=text))

    @pytest.mark.parametrize("value", [1760538600, "yesterday", "", True])
    def test_other_values_are_refused(self, value: Any) -> None:
        """ "merge_strategy | integer | ... 1 ..., 2 ..., 3 ..."."""
        assert refused(activity(created=value)).startswith("activities[0].created: ")

    def test_up_to_an_hour_in_the_future_is_allowed(self) -> None:
        """Clocks drift; an hour of skew is tolerated."""
        created = (NOW + timedelta(hours=1)).isoformat()
        assert new_activity(activity(created=created)).occurred_at == NOW + timedelta(hours=1)

    def test_more_than_an_hour_in_the_future_is_refused(self) -> None:
        """ "for backdating activities": created is a past time."""
        created = (NOW + timedelta(hours=1, seconds=1)).isoformat()
        assert refused(activity(created=created)) == (
            f"activities[0].created: {created} is in the future"
        )

    def test_older_than_the_retention_is_refused(self) -> None:
        """ "up to 90 days or retention period": nothing older than the account keeps."""
        created = (NOW - timedelta(days=30, seconds=1)).isoformat()
        assert refused(activity(created=created), retention=timedelta(days=30)) == (
            f"activities[0].created: {created} is older than the account's retention of 30 days"
        )
        at_the_limit = (NOW - timedelta(days=30)).isoformat()
        assert ok(activity(created=at_the_limit), retention=timedelta(days=30)).queued is False

    @pytest.mark.parametrize("days", [0, 1, 89, 90])
    def test_up_to_90_days_old_is_processed_immediately(self, days: int) -> None:
        """ "Activities up to 90 days old (or your retention period) process immediately"."""
        created = (NOW - timedelta(days=days)).isoformat()
        assert ok(activity(created=created)).queued is False

    @pytest.mark.parametrize("age", [timedelta(days=90, seconds=1), timedelta(days=400)])
    def test_older_than_90_days_is_queued(self, age: timedelta) -> None:
        """ "Activities older than 90 days are queued (may take up to 1 hour to process)"."""
        raw = activity(created=(NOW - age).isoformat())
        assert ok(raw).queued is True
        assert new_activity(raw).occurred_at == NOW - age


class TestKey:
    """ "key | string | Combined with created to create unique identifier for duplicate
    prevention"."""

    CREATED = "2025-10-15T14:30:00Z"

    def dedup(self, **elements: Any) -> str | None:
        return new_activity(activity(**elements)).dedup_key

    def test_no_key_no_dedup_key(self) -> None:
        """ "Combine key attribute with created timestamp": no key, nothing to combine."""
        assert self.dedup(created=self.CREATED) is None

    def test_the_same_key_and_created_are_one_activity(self) -> None:
        """ "If same key + created pair sent multiple times, Ortto merges requests"."""
        first = self.dedup(key="order-12345", created=self.CREATED)
        again = new_activity(
            activity(key="order-12345", created="2025-10-16T00:30:00+10:00"),
            now=NOW + timedelta(days=1),
        ).dedup_key
        assert first is not None
        assert first == again
        assert len(first) <= 255

    def test_another_created_is_another_activity(self) -> None:
        """ "If same key + created pair sent multiple times": another pair is another."""
        first = self.dedup(key="order-12345", created=self.CREATED)
        assert first != self.dedup(key="order-12345", created="2025-10-15T14:30:01Z")

    def test_another_key_is_another_activity(self) -> None:
        """ "If same key + created pair sent multiple times": another pair is another."""
        first = self.dedup(key="order-12345", created=self.CREATED)
        assert first != self.dedup(key="order-12346", created=self.CREATED)

    def test_a_key_without_created_dedups_on_the_key_alone(self) -> None:
        """Not "now": a retry a second later must still be the same activity."""
        first = self.dedup(key="order-12345")
        later = new_activity(activity(key="order-12345"), now=NOW + timedelta(hours=5)).dedup_key
        assert first is not None
        assert first == later
        assert first != self.dedup(key="order-12345", created=NOW.isoformat())

    @pytest.mark.parametrize("value", ["", "k" * 256, 12345, ["k"]])
    def test_a_key_is_a_string_of_1_to_255_characters(self, value: Any) -> None:
        """ "key | string"."""
        assert refused(activity(key=value)) == (
            "activities[0].key: must be a string of 1 to 255 characters"
        )
        assert self.dedup(key="k" * 255) is not None


class TestLocation:
    """ "The location object supports three methods"."""

    @pytest.mark.parametrize(
        "location",
        [
            {"source_ip": "119.18.0.218"},
            {"source_ip": "2001:db8::1"},
            {
                "custom": {
                    "name": "Melbourne",
                    "region": "Victoria",
                    "country": "Australia",
                    "country_code": "AU",
                    "latitude": -37.8136,
                    "longitude": 144.9631,
                    "timezone": "Australia/Melbourne",
                }
            },
            {
                "address": {
                    "address1": "123 Main St",
                    "city": "Melbourne",
                    "region": "VIC",
                    "country": "Australia",
                    "postal_code": "3000",
                }
            },
            {"custom": {"latitude": 90, "longitude": -180}},
        ],
        ids=["ip", "ipv6", "custom", "address", "extremes"],
    )
    def test_the_specs_methods_are_stored_as_sent(self, location: dict[str, Any]) -> None:
        """ "1. IP-based geolocation", "2. Custom location (coordinates)", "3. Postal
        address" (stored as sent; eventyard does not geolocate)."""
        assert new_activity(activity(location=location)).location == location

    @pytest.mark.parametrize("ip", ["119.18.0", "localhost", "", 119180218])
    def test_source_ip_must_be_an_ip_address(self, ip: Any) -> None:
        """IP-based geolocation: `"source_ip": "119.18.0.218"`."""
        assert refused(activity(location={"source_ip": ip})) == (
            "activities[0].location.source_ip: must be an IPv4 or IPv6 address"
        )

    @pytest.mark.parametrize(
        ("key", "value"),
        [("latitude", 90.5), ("latitude", -91), ("longitude", 180.01), ("longitude", "144.9")],
    )
    def test_coordinates_must_be_in_range(self, key: str, value: Any) -> None:
        """Custom location: `"latitude": -37.8136, "longitude": 144.9631`, in degrees."""
        message = refused(activity(location={"custom": {key: value}}))
        assert message.startswith(f"activities[0].location.custom.{key}: must be a number from")

    def test_a_boolean_is_no_coordinate(self) -> None:
        """ "Custom location (coordinates)": numbers."""
        assert "must be a number" in refused(activity(location={"custom": {"latitude": True}}))

    @pytest.mark.parametrize("method", ["custom", "address"])
    def test_unknown_keys_of_a_method_are_refused(self, method: str) -> None:
        """ "The location object supports three methods", with the keys they show."""
        assert refused(activity(location={method: {"planet": "Earth"}})) == (
            f"activities[0].location.{method}.planet: is not a key of {method}"
        )

    def test_text_keys_must_be_strings(self) -> None:
        """Postal address: `"postal_code": "3000"`, text."""
        assert refused(activity(location={"address": {"postal_code": 3000}})) == (
            "activities[0].location.address.postal_code: must be a string"
        )

    def test_an_unknown_method_is_refused(self) -> None:
        """ "The location object supports three methods"."""
        assert refused(activity(location={"gps": {"latitude": 1}})) == (
            "activities[0].location.gps: is not a location method (source_ip, custom, address)"
        )

    @pytest.mark.parametrize("value", [{}, [], "Melbourne", 1])
    def test_location_must_be_an_object_naming_a_method(self, value: Any) -> None:
        """ "location | object | Geographic location data"."""
        assert refused(activity(location=value)).startswith("activities[0].location: must be")

    @pytest.mark.parametrize("value", ["Melbourne", ["x"]])
    def test_a_method_must_be_an_object(self, value: Any) -> None:
        """Custom location and postal address: `"custom": {...}`, `"address": {...}`."""
        assert refused(activity(location={"custom": value})) == (
            "activities[0].location.custom: must be an object"
        )


class TestAsync:
    """ "Set async: true for: Bulk operations ... Activities are queued and processed in order."."""

    def test_every_valid_activity_is_queued_in_order(self) -> None:
        """ "Activities are queued and processed in order."."""
        translation = run(
            activity(), activity(activity_id="bad"), activity(person_id=PERSON_ID), run_async=True
        )
        assert translation.run_async is True
        queued = translation.accepted(queued=True)
        assert [i.index for i in queued] == [0, 2]
        assert translation.accepted(queued=False) == []
        assert isinstance(translation.items[1], Refused)

    def test_synchronous_activities_are_not_queued(self) -> None:
        """ "async ... Default: false"."""
        translation = run(activity(), activity())
        assert translation.accepted(queued=True) == []
        assert [i.index for i in translation.accepted(queued=False)] == [0, 1]


class TestRules:
    def test_activities_need_definitions_and_a_daily_limit_of_50(self) -> None:
        """ "ensure the activity definition exists"; "Max activity events per activity per
        contact per 24 hours | 50"."""
        assert RULES.require_definitions is True
        assert RULES.daily_limit == 50


class TestFlatten:
    def test_each_activitys_records_share_its_index_as_group_and_label(self) -> None:
        """ "Each activity object can create or update a contact and associate an activity
        event with them": both stand or fall together."""
        translation = run(
            activity(fields={"str::email": "a@example.com", "str::first": "A"}),
            activity(activity_id="bad"),
            activity(person_id=PERSON_ID),
        )
        flat = flatten(translation.accepted(queued=False))
        assert [type(r) for r in flat.records] == [ProfileUpdate, NewActivity, NewActivity]
        assert flat.groups == [0, 0, 2]
        assert flat.labels == ["activities[0]", "activities[0]", "activities[2]"]

    def test_nothing_accepted_is_nothing_to_store(self) -> None:
        """ "400 Bad Request - Invalid parameters": nothing is stored."""
        flat = flatten([])
        assert (flat.records, flat.groups, flat.labels) == ([], [], [])


def outcome(
    contact_ids: list[str | None],
    created: set[str] | None = None,
    rejected: list[RecordRejection] | None = None,
) -> RecordsOutcome:
    """What the ingest service reports for the records of the synchronous activities."""
    return RecordsOutcome(
        stored_activities=sum(1 for c in contact_ids if c is not None),
        updated_profiles=0,
        rejected=rejected or [],
        contact_ids=contact_ids,
        created_contacts=frozenset(created or ()),
    )


def answer(translation: Translation, result: RecordsOutcome | None) -> tuple[int, dict[str, Any]]:
    return response_body(translation, flatten(translation.accepted(queued=False)), result)


class TestResponseBody:
    """ "Response structure": one entry per activity with person_id, status,
    person_status and activity_id."""

    A = "00647687d2e43b25a0261f00"
    B = "00647687d2e43b25a0261f01"

    def test_the_specs_synchronous_example(self) -> None:
        """ "Example response - Synchronous processing": one person created, one updated."""
        translation = run(activity(fields={"str::email": "a@example.com"}), activity())
        status, body = answer(translation, outcome([self.A, self.B], created={self.A}))
        assert status == 200
        assert body == {
            "activities": [
                {
                    "person_id": self.A,
                    "status": "ingested",
                    "person_status": "created",
                    "activity_id": "act:cm:product-purchase",
                },
                {
                    "person_id": self.B,
                    "status": "ingested",
                    "person_status": "updated",
                    "activity_id": "act:cm:product-purchase",
                },
            ]
        }

    def test_a_contact_created_by_the_batch_is_updated_by_its_later_activities(self) -> None:
        """ "person_status | "created" (new contact), "updated" (existing)": the first
        activity of a new contact created it; for the next it already existed."""
        translation = run(activity(), activity(), activity())
        _, body = answer(translation, outcome([self.A] * 3, created={self.A}))
        assert [e["person_status"] for e in body["activities"]] == ["created", "updated", "updated"]

    def test_the_activity_of_a_profile_update_reports_its_contact(self) -> None:
        """An activity with person fields is two records; the entry is the activity's."""
        raw = activity(fields={"str::email": "a@example.com", "str::first": "A"})
        translation = run(raw, activity(person_id=self.B))
        status, body = answer(translation, outcome([self.A, self.A, self.B], created={self.A}))
        assert status == 200
        assert [(e["person_id"], e["person_status"]) for e in body["activities"]] == [
            (self.A, "created"),
            (self.B, "updated"),
        ]

    def test_the_specs_asynchronous_example(self) -> None:
        """ "Example response - Asynchronous processing": status and person_status
        "queued"; person_id only when the request gave one."""
        translation = run(activity(), activity(person_id=PERSON_ID), run_async=True)
        status, body = answer(translation, outcome([]))
        assert status == 200
        assert body == {
            "activities": [
                {
                    "status": "queued",
                    "person_status": "queued",
                    "activity_id": "act:cm:product-purchase",
                },
                {
                    "person_id": PERSON_ID,
                    "status": "queued",
                    "person_status": "queued",
                    "activity_id": "act:cm:product-purchase",
                },
            ]
        }

    def test_old_activities_are_queued_beside_ingested_ones(self) -> None:
        """ "Activities older than 90 days are queued"."""
        old = (NOW - timedelta(days=100)).isoformat()
        translation = run(activity(created=old), activity())
        status, body = answer(translation, outcome([self.A]))
        assert status == 200
        assert [e["status"] for e in body["activities"]] == ["queued", "ingested"]

    def test_refused_activities_carry_an_error_naming_them(self) -> None:
        """ "400 Bad Request - Invalid parameters": per activity, beside the good ones."""
        translation = run(activity(), activity(attributes={"int::v": "5"}), "junk")
        status, body = answer(translation, outcome([self.A]))
        assert status == 200
        assert body["activities"][1:] == [
            {
                "activity_id": "act:cm:product-purchase",
                "error": "activities[1].attributes.int::v: must be an integer",
            },
            {"error": "activities[2].activity: must be a JSON object"},
        ]

    def test_activities_the_service_refused_carry_its_reason(self) -> None:
        """ "ensure the activity definition exists": refused by the store, by index."""
        raw = activity(fields={"str::email": "a@example.com", "str::first": "A"})
        translation = run(activity(), raw)
        rejection = RecordRejection(2, "undefined_activity", "activity_id has no definition")
        status, body = answer(translation, outcome([self.A, None, None], rejected=[rejection]))
        assert status == 200
        assert body["activities"][1] == {
            "activity_id": "act:cm:product-purchase",
            "error": "activities[1]: activity_id has no definition",
        }

    def test_400_when_no_activity_was_accepted(self) -> None:
        """ "400 Bad Request - Invalid parameters"."""
        translation = run(activity(activity_id=...), activity(merge_by=...))
        status, body = answer(translation, None)
        assert status == 400
        assert body["code"] == 400
        assert body["error"] == "No activity was accepted; see each activity's error"
        assert [set(e) for e in body["activities"]] == [{"error"}, {"activity_id", "error"}]

    def test_400_when_the_service_refused_every_activity(self) -> None:
        """ "Max activity events per activity per contact per 24 hours | 50"."""
        translation = run(activity())
        rejection = RecordRejection(0, "daily_limit", "already 50 today")
        status, body = answer(translation, outcome([None], rejected=[rejection]))
        assert status == 400
        assert body["activities"] == [
            {"activity_id": "act:cm:product-purchase", "error": "activities[0]: already 50 today"}
        ]

    @given(st.lists(st.sampled_from(["ok", "bad", "old", "person"]), min_size=1, max_size=20))
    def test_one_entry_per_activity_in_request_order(self, kinds: list[str]) -> None:
        """ "activities | array | Array of activity result objects", one per activity."""
        old = (NOW - timedelta(days=100)).isoformat()
        raws = {
            "ok": activity(),
            "bad": activity(activity_id="nope"),
            "old": activity(created=old),
            "person": activity(person_id=PERSON_ID),
        }
        translation = run(*(raws[k] for k in kinds))
        stored = flatten(translation.accepted(queued=False))
        # The route stores nothing, and has no outcome, when every activity was refused.
        nothing = set(kinds) == {"bad"}
        result = None if nothing else outcome([self.A] * len(stored.records))
        status, body = response_body(translation, stored, result)
        entries = body["activities"]
        assert len(entries) == len(kinds)
        expected = {"ok": "ingested", "person": "ingested", "old": "queued", "bad": None}
        assert [e.get("status") for e in entries] == [expected[k] for k in kinds]
        assert [("error" in e) for e in entries] == [k == "bad" for k in kinds]
        assert status == (400 if nothing else 200)
