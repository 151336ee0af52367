"""Netcore Add Activity bodies -> canonical activities (no HTTP, no database).

Spec: ``shared/specs/netcore-activity-upload.txt``.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventyard.core.errors import FieldError
from eventyard.core.identifiers import Identifier
from eventyard.dialects.netcore.translate import (
    MAX_EVENTS,
    MISSING_ACTIVITY_NAME,
    events_of,
    translate_event,
    translate_events,
)
from tests.support import netcore_event

#: The spec's first "Sample Request", as sent (identity and email are a real
#: address in the vendor page, obfuscated there; any address will do).
SPEC_SAMPLE_REQUEST: list[dict[str, Any]] = [
    {
        "asset_id": "55a6d1d3ac4d5253ca4afd9636442434",
        "activity_name": "Add To Cart",
        "timestamp": "2025-09-30T08:40:46",
        "identity": "jane.doe@example.com",
        "email": "jane.doe@example.com",
        "mobile": "3525252568",
        "anonid": "",
        "activity_source": "web",
        "activity_params": {
            "customer_user_id": "1234",
            "total_item_qty": 1,
            "currency": "INR",
            "product": [
                {
                    "mrp": 250.1,
                    "l2_category": "Moisturizers",
                    "l3_category": "Serums & Essence",
                    "l1_category": "Skin",
                    "price": 250.3,
                    "quantity": 100,
                    "product_name": "Simple Moisturizer",
                }
            ],
        },
    }
]

#: The spec's second sample, "[[{...}]]", with its unquoted values quoted.
SPEC_NESTED_SAMPLE: list[list[dict[str, Any]]] = [
    [
        {
            "asset_id": "sdbsjdh623jhmsndbkfs",
            "activity_name": "Purchase",
            "timestamp": "2020-04-28T16:47:37",
            "identity": "CUSTOMER_ID",
            "activity_source": "web",
            "activity_params": {
                "customer_user_id": "xxxxxx",
                "total_item_qty": 2,
                "currency": "INR",
                "items": [
                    {
                        "mrp": 250.1,
                        "l2_category": "Moisturizers",
                        "l3_category": "Serums & Essence",
                        "l1_category": "Skin",
                        "price": 250.3,
                        "quantity": 1,
                        "product_name": "L'Oreal Paris Revitalift Crystal Micro-Essence",
                    },
                    {
                        "l1_category": "Makeup",
                        "quantity": 1,
                        "mrp": 620.3,
                        "product_name": "Maybelline New York Instant Age Rewind Eraser Dark "
                        "Circles Treatment Concealer - 150 Neutralizer",
                        "price": 496.8,
                    },
                ],
            },
        }
    ]
]


def errors_by_field(errors: list[FieldError]) -> dict[str, str]:
    return {e.field: e.reason for e in errors}


def translate_ok(event: dict[str, Any], index: int = 0) -> Any:
    activity, errors = translate_event(index, event)
    assert errors == []
    assert activity is not None
    return activity


def translate_bad(event: Any, index: int = 0) -> dict[str, str]:
    activity, errors = translate_event(index, event)
    assert activity is None
    assert errors
    assert {e.index for e in errors} == {index}
    return errors_by_field(errors)


class TestRequestBody:
    """ "You can send single or bulk events (up to 1000 in one request).\""""

    def test_an_array_is_a_batch(self) -> None:
        body = [netcore_event(identity="a"), netcore_event(identity="b")]
        events, errors = events_of(body)
        assert errors == []
        assert events == body

    def test_a_bare_object_counts_as_one_event(self) -> None:
        event = netcore_event()
        assert events_of(event) == ([event], [])

    def test_the_specs_array_of_arrays_sample_is_flattened(self) -> None:
        """The spec's own second sample is wrapped twice: ``[[{ ... }]]``."""
        events, errors = events_of(SPEC_NESTED_SAMPLE)
        assert errors == []
        assert events == SPEC_NESTED_SAMPLE[0]
        translation, errors = translate_events(events)
        assert errors == []
        [activity] = translation.activities
        assert activity.name == "Purchase"
        assert activity.identifiers == (Identifier("identity", "CUSTOMER_ID"),)

    def test_several_inner_arrays_are_flattened_in_order(self) -> None:
        a, b, c = (netcore_event(identity=x) for x in "abc")
        assert events_of([[a, b], [c]]) == ([a, b, c], [])

    @pytest.mark.parametrize("body", [[], [[]], [[], []]])
    def test_zero_events_is_an_error(self, body: Any) -> None:
        events, errors = events_of(body)
        assert events == []
        assert errors == [FieldError("body", "body must hold at least one event")]

    def test_exactly_1000_events_are_accepted(self) -> None:
        body = [netcore_event(identity=f"c{i}") for i in range(MAX_EVENTS)]
        events, errors = events_of(body)
        assert errors == []
        assert len(events) == 1000

    def test_more_than_1000_events_is_an_error(self) -> None:
        """ "upload activities in bulk(Max:1000) at a time"."""
        events, errors = events_of([netcore_event()] * 1001)
        assert events == []
        assert errors == [FieldError("body", "at most 1000 events per request, got 1001")]

    def test_the_limit_counts_events_not_inner_arrays(self) -> None:
        events, errors = events_of([[netcore_event()] * 600, [netcore_event()] * 401])
        assert events == []
        assert [e.reason for e in errors] == ["at most 1000 events per request, got 1001"]

    @pytest.mark.parametrize("body", [None, "events", 42, 4.2, True])
    def test_a_body_that_is_neither_array_nor_object_is_an_error(self, body: Any) -> None:
        events, errors = events_of(body)
        assert events == []
        assert [e.field for e in errors] == ["body"]
        assert errors[0].index is None

    @pytest.mark.parametrize("item", ["text", 7, None, ["nested"]])
    def test_a_non_object_inside_a_batch_is_reported_by_index(self, item: Any) -> None:
        events, errors = events_of([netcore_event(), item])
        assert errors == []
        _, errors = translate_events(events)
        assert errors == [FieldError("event", "each event must be a JSON object", 1)]


class TestSpecSample:
    """The spec's "Sample Request" body must be stored as sent."""

    def test_sample_request_translates(self) -> None:
        events, errors = events_of(copy.deepcopy(SPEC_SAMPLE_REQUEST))
        assert errors == []
        translation, errors = translate_events(events)
        assert errors == []
        assert translation.skipped == []
        [activity] = translation.activities
        assert activity.name == "Add To Cart"
        assert activity.asset_id == "55a6d1d3ac4d5253ca4afd9636442434"
        assert activity.source == "web"
        assert activity.dialect == "netcore"
        assert activity.occurred_at == datetime(2025, 9, 30, 8, 40, 46, tzinfo=UTC)
        # "anonid": "" is no identifier at all.
        assert activity.identifiers == (
            Identifier("identity", "jane.doe@example.com"),
            Identifier("email", "jane.doe@example.com"),
            Identifier("mobile", "3525252568"),
        )
        assert activity.properties == SPEC_SAMPLE_REQUEST[0]["activity_params"]


class TestRequiredFields:
    """The spec's parameter table marks these "Required: Yes"."""

    @pytest.mark.parametrize("missing", [None, "", "   "])
    def test_activity_name_missing_uses_the_specs_error_text(self, missing: str | None) -> None:
        """ "400 | Bad Request | Missing Parameter - Activity Name"."""
        errors = translate_bad(netcore_event(activity_name=missing))
        assert errors == {"activity_name": "Missing Parameter - Activity Name"}
        assert MISSING_ACTIVITY_NAME == "Missing Parameter - Activity Name"

    @pytest.mark.parametrize("value", [42, ["Add To Cart"], {"name": "x"}, True])
    def test_activity_name_must_be_a_string(self, value: Any) -> None:
        errors = translate_bad(netcore_event(activity_name=value))
        assert errors == {"activity_name": "activity_name must be a string"}

    def test_activity_name_is_at_most_255_characters(self) -> None:
        assert translate_ok(netcore_event(activity_name="n" * 255)).name == "n" * 255
        errors = translate_bad(netcore_event(activity_name="n" * 256))
        assert errors == {"activity_name": "activity_name must be at most 255 characters"}

    @pytest.mark.parametrize("missing", [None, "", "  "])
    def test_asset_id_is_required(self, missing: str | None) -> None:
        """ "asset_id | Pass website_id or app_id ... | String | Yes"."""
        errors = translate_bad(netcore_event(asset_id=missing))
        assert errors == {"asset_id": "Missing Parameter - asset_id"}

    def test_asset_id_must_be_a_string(self) -> None:
        errors = translate_bad(netcore_event(asset_id=12345))
        assert errors == {"asset_id": "asset_id must be a string"}

    @pytest.mark.parametrize("missing", [None, ""])
    def test_timestamp_is_required(self, missing: str | None) -> None:
        errors = translate_bad(netcore_event(timestamp=missing))
        assert errors == {"timestamp": "Missing Parameter - timestamp"}

    @pytest.mark.parametrize("missing", [None, ""])
    def test_activity_source_is_required(self, missing: str | None) -> None:
        errors = translate_bad(netcore_event(activity_source=missing))
        assert set(errors) == {"activity_source"}
        assert errors["activity_source"].startswith("Missing Parameter - activity_source")

    @pytest.mark.parametrize("source", ["api", "sms", "website", "mobile", "web,app", 1, ["web"]])
    def test_activity_source_is_web_or_app(self, source: Any) -> None:
        """ "Valid values: web, app"."""
        errors = translate_bad(netcore_event(activity_source=source))
        assert set(errors) == {"activity_source"}
        assert "'web' or 'app'" in errors["activity_source"]

    @pytest.mark.parametrize(("sent", "stored"), [("web", "web"), ("app", "app"), (" App ", "app")])
    def test_activity_source_is_kept(self, sent: str, stored: str) -> None:
        assert translate_ok(netcore_event(activity_source=sent)).source == stored

    def test_activity_params_is_required(self) -> None:
        errors = translate_bad(netcore_event(activity_params=None))
        assert set(errors) == {"activity_params"}
        assert errors["activity_params"].startswith("Missing Parameter - activity_params")

    @pytest.mark.parametrize("params", [[{"currency": "INR"}], "currency=INR", 3, True])
    def test_activity_params_must_be_an_object(self, params: Any) -> None:
        """ "activity_params | ... | Object | Yes"."""
        errors = translate_bad(netcore_event(activity_params=params))
        assert errors == {"activity_params": "activity_params must be a JSON object"}

    def test_every_missing_field_is_reported_at_once(self) -> None:
        errors = translate_bad({}, index=4)
        assert set(errors) == {
            "asset_id",
            "activity_name",
            "timestamp",
            "activity_source",
            "activity_params",
            "identity",
        }
        assert errors["activity_name"] == MISSING_ACTIVITY_NAME


class TestIdentifiers:
    """ "At least one of the identifiers is required: identity, email, mobile, or anonid.\""""

    NO_IDENTIFIER = (
        "At least one of the identifiers is required: identity, email, mobile, or anonid"
    )

    def test_an_event_without_identifiers_is_rejected(self) -> None:
        errors = translate_bad(netcore_event(identity=None))
        assert errors == {"identity": self.NO_IDENTIFIER}

    @pytest.mark.parametrize("blank", ["", "   "])
    def test_empty_strings_do_not_count(self, blank: str) -> None:
        event = netcore_event(identity=blank, email=blank, mobile=blank, anonid=blank)
        assert translate_bad(event) == {"identity": self.NO_IDENTIFIER}

    @pytest.mark.parametrize(
        ("field", "value", "expected"),
        [
            ("identity", "CUSTOMER_ID", Identifier("identity", "CUSTOMER_ID")),
            ("email", " Jane@Example.COM ", Identifier("email", "jane@example.com")),
            ("mobile", "+91 98450-12345", Identifier("mobile", "+919845012345")),
            ("anonid", "cookie-123", Identifier("anonid", "cookie-123")),
        ],
    )
    def test_any_one_identifier_is_enough(
        self, field: str, value: str, expected: Identifier
    ) -> None:
        event = netcore_event(**{"identity": None, field: value})
        assert translate_ok(event).identifiers == (expected,)

    def test_empty_identifiers_beside_a_real_one_are_ignored(self) -> None:
        """The spec's sample sends ``"anonid": ""`` beside identity, email and mobile."""
        event = netcore_event(identity="", email="", mobile="", anonid="cookie-9")
        assert translate_ok(event).identifiers == (Identifier("anonid", "cookie-9"),)

    def test_identifiers_come_in_the_specs_order(self) -> None:
        event = netcore_event(anonid="c1", mobile="555 1234", email="j@x.io", identity="u1")
        assert [i.kind for i in translate_ok(event).identifiers] == [
            "identity",
            "email",
            "mobile",
            "anonid",
        ]

    def test_integer_identity_is_accepted(self) -> None:
        """ "identity | ... | String/Integer"."""
        activity = translate_ok(netcore_event(identity=1234567))
        assert activity.identifiers == (Identifier("identity", "1234567"),)

    def test_integer_mobile_is_accepted(self) -> None:
        activity = translate_ok(netcore_event(identity=None, mobile=3525252568))
        assert activity.identifiers == (Identifier("mobile", "3525252568"),)

    @pytest.mark.parametrize(
        ("field", "value"),
        [("identity", True), ("identity", 1.5), ("email", 42), ("anonid", 42), ("mobile", [1])],
    )
    def test_other_types_are_rejected(self, field: str, value: Any) -> None:
        errors = translate_bad(netcore_event(**{field: value}))
        # identity is "String/Integer" in the spec's table; mobile is accepted as a number too.
        expected = "a string or an integer" if field in ("identity", "mobile") else "a string"
        assert errors == {field: f"{field} must be {expected}"}

    @pytest.mark.parametrize(
        ("field", "value", "reason"),
        [
            ("email", "jane@", "email is not a valid e-mail address"),
            ("mobile", "CALL-ME-NOW", "mobile must contain only digits"),
            ("mobile", "12", "mobile must have between 3 and 20 digits"),
        ],
    )
    def test_a_malformed_identifier_is_reported_not_skipped(
        self, field: str, value: str, reason: str
    ) -> None:
        """A bad identifier is named, even when another identifier is valid."""
        errors = translate_bad(netcore_event(identity="u1", **{field: value}))
        assert set(errors) == {field}
        assert errors[field].startswith(reason)

    def test_a_malformed_only_identifier_is_not_also_reported_as_missing(self) -> None:
        errors = translate_bad(netcore_event(identity=None, email="nobody"))
        assert errors == {"email": "email is not a valid e-mail address"}


class TestTimestamp:
    """ "We currently support the UTC and ISO-8601 time zones.\""""

    @pytest.mark.parametrize(
        ("sent", "utc"),
        [
            # "UTC Example Expected Value format: 2021-12-29T12:06:28Z"
            ("2021-12-29T12:06:28Z", datetime(2021, 12, 29, 12, 6, 28, tzinfo=UTC)),
            # "ISO-8601 ... for IST. Expected Value Format: 2021-12-29T06:12:28+05:30"
            ("2021-12-29T06:12:28+05:30", datetime(2021, 12, 29, 0, 42, 28, tzinfo=UTC)),
            ("2021-12-29T06:12:28+0530", datetime(2021, 12, 29, 0, 42, 28, tzinfo=UTC)),
            ("2021-12-28T23:30:00-07:00", datetime(2021, 12, 29, 6, 30, tzinfo=UTC)),
            ("2021-12-29T12:06:28+00:00", datetime(2021, 12, 29, 12, 6, 28, tzinfo=UTC)),
            ("2021-12-29T12:06:28.250Z", datetime(2021, 12, 29, 12, 6, 28, 250000, tzinfo=UTC)),
            # The spec's own samples carry no zone: "2025-09-30T08:40:46".
            ("2025-09-30T08:40:46", datetime(2025, 9, 30, 8, 40, 46, tzinfo=UTC)),
            (" 2021-12-29T12:06:28Z ", datetime(2021, 12, 29, 12, 6, 28, tzinfo=UTC)),
        ],
    )
    def test_is_stored_in_utc(self, sent: str, utc: datetime) -> None:
        occurred_at = translate_ok(netcore_event(timestamp=sent)).occurred_at
        assert occurred_at == utc
        assert occurred_at.utcoffset() == timedelta(0)
        assert occurred_at.tzinfo is UTC

    def test_an_offset_moves_the_date(self) -> None:
        occurred_at = translate_ok(netcore_event(timestamp="2022-01-01T02:00:00+05:30")).occurred_at
        assert occurred_at == datetime(2021, 12, 31, 20, 30, tzinfo=UTC)

    @pytest.mark.parametrize(
        "sent",
        [
            "2021-12-29",
            "29-12-2021 12:06:28",
            "12/29/2021",
            "yesterday",
            "2021-12-29T",
            "2021-12-29T12",
            "20211229T120628Z",
            "2021-12-29T12:06:28 IST",
            "2021-12-29t12:06:28Z",
        ],
    )
    def test_anything_but_an_iso_date_time_is_rejected(self, sent: str) -> None:
        errors = translate_bad(netcore_event(timestamp=sent))
        assert set(errors) == {"timestamp"}
        assert "ISO 8601 date-time" in errors["timestamp"]
        assert repr(sent) in errors["timestamp"]

    @pytest.mark.parametrize("sent", [1640779588, 1640779588.5, ["2021-12-29T12:06:28Z"]])
    def test_epoch_numbers_are_rejected(self, sent: Any) -> None:
        assert set(translate_bad(netcore_event(timestamp=sent))) == {"timestamp"}

    @pytest.mark.parametrize(
        "sent", ["2021-02-30T00:00:00Z", "2021-13-01T00:00:00Z", "2021-12-29T25:00:00Z"]
    )
    def test_impossible_dates_are_rejected(self, sent: str) -> None:
        errors = translate_bad(netcore_event(timestamp=sent))
        assert set(errors) == {"timestamp"}
        assert repr(sent) in errors["timestamp"]

    @pytest.mark.parametrize("sent", ["0001-01-01T00:00:00+05:30", "9999-12-31T23:59:59-05:00"])
    def test_an_instant_outside_the_calendar_is_reported_not_raised(self, sent: str) -> None:
        """Expected failures "are 4xx, never 500": UTC of these is before year 1 / after 9999."""
        errors = translate_bad(netcore_event(timestamp=sent))
        assert set(errors) == {"timestamp"}
        assert repr(sent) in errors["timestamp"]

    def test_a_lower_case_z_means_utc(self) -> None:
        """RFC 3339 (the profile of ISO 8601 the spec's examples follow) allows "z"."""
        occurred_at = translate_ok(netcore_event(timestamp="2021-12-29T12:06:28z")).occurred_at
        assert occurred_at == datetime(2021, 12, 29, 12, 6, 28, tzinfo=UTC)

    @given(
        moment=st.datetimes(
            min_value=datetime(1900, 1, 1),
            max_value=datetime(2200, 1, 1),
            timezones=st.builds(
                timezone, st.integers(-12 * 60, 14 * 60).map(lambda m: timedelta(minutes=m))
            ),
        )
    )
    def test_any_offset_keeps_the_instant(self, moment: datetime) -> None:
        stored = translate_ok(netcore_event(timestamp=moment.isoformat())).occurred_at
        assert stored == moment
        assert stored.tzinfo is UTC

    @given(
        moment=st.datetimes(
            timezones=st.builds(
                timezone, st.integers(-23 * 60, 23 * 60).map(lambda m: timedelta(minutes=m))
            ),
        )
    )
    def test_any_date_time_is_stored_or_reported(self, moment: datetime) -> None:
        activity, errors = translate_event(0, netcore_event(timestamp=moment.isoformat()))
        try:
            expected = moment.astimezone(UTC)
        except OverflowError:
            assert activity is None
            assert [e.field for e in errors] == ["timestamp"]
        else:
            assert errors == []
            assert activity is not None
            assert activity.occurred_at == expected


class TestActivityParams:
    """ "The activity_params object holds event-specific metadata.\""""

    def test_numbers_sent_as_strings_stay_strings(self) -> None:
        """The bulk sample sends ``"total_item_qty": "2"`` and ``"price": "250.0"``."""
        params = {
            "customer_user_id": "xxxxxx",
            "total_item_qty": "2",
            "currency": "INR",
            "items": [{"mrp": "250.0", "price": "250.0", "quantity": "1"}],
            "price": 250.0,
            "mrp": 620.20,
        }
        stored = translate_ok(netcore_event(activity_params=copy.deepcopy(params))).properties
        assert stored == params
        assert stored["total_item_qty"] == "2"
        assert stored["items"][0]["mrp"] == "250.0"
        assert isinstance(stored["price"], float)

    def test_nested_values_are_kept_exactly(self) -> None:
        params = {
            "big": 12345678901234567890,
            "neg": -0.5,
            "flag": False,
            "none": None,
            "unicode": "Crème brûlée ₹",
            "deep": {"a": [{"b": [1, "1", 1.0]}]},
        }
        assert translate_ok(netcore_event(activity_params=copy.deepcopy(params))).properties == (
            params
        )

    def test_an_empty_object_is_accepted(self) -> None:
        assert translate_ok(netcore_event(activity_params={})).properties == {}


class TestEmptyArray:
    """ "if you are passing the data in the format of an array and if it is blank,
    the system will not insert such events in the Netcore CE. Do not Pass an Empty Array.\""""

    @pytest.mark.parametrize("key", ["product", "items"])
    def test_an_event_with_an_empty_array_is_dropped(self, key: str) -> None:
        event = netcore_event(activity_params={"currency": "INR", key: []})
        assert translate_event(0, event) == (None, [])

    def test_dropped_events_are_listed_and_the_others_kept(self) -> None:
        events = [
            netcore_event(identity="a"),
            netcore_event(identity="b", activity_params={"product": []}),
            netcore_event(identity="c"),
            netcore_event(identity="d", activity_params={"items": [], "product": [{"sku": 1}]}),
        ]
        translation, errors = translate_events(events)
        assert errors == []
        assert translation.skipped == [1, 3]
        assert [a.identifiers[0].value for a in translation.activities] == ["a", "c"]

    def test_a_non_empty_array_is_stored(self) -> None:
        params = {"product": [{"product_name": "Simple Moisturizer", "price": 250.3}]}
        assert translate_ok(netcore_event(activity_params=params)).properties == params

    def test_an_invalid_event_with_an_empty_array_is_still_reported(self) -> None:
        event = netcore_event(activity_name=None, activity_params={"product": []})
        assert translate_bad(event) == {"activity_name": MISSING_ACTIVITY_NAME}


class TestErrorReporting:
    """DESIGN.md: "a precise message naming the record and field"."""

    def test_every_invalid_event_is_reported_by_index_and_field(self) -> None:
        events = [
            netcore_event(identity="ok-0"),
            netcore_event(activity_name=None, timestamp="2021-12-29"),
            netcore_event(identity="ok-2"),
            netcore_event(activity_source="sms", identity=None),
            "not an event",
            netcore_event(identity="ok-5", email="broken@"),
        ]
        _, errors = translate_events(events)
        assert [(e.index, e.field) for e in errors] == [
            (1, "activity_name"),
            (1, "timestamp"),
            (3, "activity_source"),
            (3, "identity"),
            (4, "event"),
            (5, "email"),
        ]
        assert errors[0].reason == MISSING_ACTIVITY_NAME

    def test_valid_events_around_invalid_ones_still_translate(self) -> None:
        events = [netcore_event(identity="a"), netcore_event(asset_id=None), netcore_event()]
        translation, errors = translate_events(events)
        assert [(e.index, e.field) for e in errors] == [(1, "asset_id")]
        assert len(translation.activities) == 2

    def test_a_valid_batch_keeps_its_order(self) -> None:
        events = [netcore_event(identity=f"c{i}", activity_name=f"e{i}") for i in range(50)]
        translation, errors = translate_events(events)
        assert errors == []
        assert [a.name for a in translation.activities] == [f"e{i}" for i in range(50)]

    JSON = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=8,
    )

    @given(
        overrides=st.dictionaries(
            st.sampled_from(
                [
                    "asset_id",
                    "activity_name",
                    "timestamp",
                    "identity",
                    "email",
                    "mobile",
                    "anonid",
                    "activity_source",
                    "activity_params",
                ]
            ),
            JSON,
        )
    )
    def test_any_json_event_is_translated_or_reported_never_raises(
        self, overrides: dict[str, Any]
    ) -> None:
        """Every event is stored, refused with reasons, or skipped; and docs/dialects/
        netcore.md: "a valid event whose `activity_params` has a top-level value that
        is an empty array (`"product": []`) is **skipped**: not stored, not an error",
        so an event is skipped exactly when it has such a value."""
        event = {**netcore_event(), **overrides}
        activity, errors = translate_event(7, event)
        params = event["activity_params"]
        has_empty_array = isinstance(params, dict) and any(v == [] for v in params.values())
        if errors:
            assert activity is None
            assert all(e.index == 7 and e.reason for e in errors)
        elif activity is not None:
            assert activity.occurred_at.tzinfo is UTC
            assert activity.identifiers
            assert activity.source in {"web", "app"}
            assert not has_empty_array, event
        else:
            # Skipped: only an empty array among the top-level params may cause that.
            assert has_empty_array, event
