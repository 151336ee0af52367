"""The dialect toolkit: one ISO 8601 reader with each dialect's variants, one UTC
formatter, one Basic-credential reader, one identifier coercion, one error collector."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventyard.core.errors import FieldError
from eventyard.dialects.toolkit.basic_auth import (
    Authorization,
    BasicCredential,
    decode_basic,
    split_authorization,
)
from eventyard.dialects.toolkit.identifiers import identifier_text
from eventyard.dialects.toolkit.records import RecordError, RecordErrors
from eventyard.dialects.toolkit.timestamps import (
    NotADateTime,
    NoTimeZone,
    OutOfRange,
    format_utc,
    parse_iso_datetime,
)
from eventyard.http import iso_utc

MOMENT = datetime(2021, 12, 29, 6, 36, 28, tzinfo=UTC)


class TestParseIsoDatetime:
    @pytest.mark.parametrize(
        "text",
        ["2021-12-29T06:36:28Z", "2021-12-29T12:06:28+05:30", "2021-12-29 06:36:28+00:00"],
    )
    def test_reads_a_zone_or_offset_as_utc(self, text: str) -> None:
        moment = parse_iso_datetime(text)
        assert moment == MOMENT
        assert moment.tzinfo is UTC

    def test_a_date_time_without_zone_is_utc_by_default(self) -> None:
        assert parse_iso_datetime("2021-12-29T06:36:28") == MOMENT

    def test_a_date_time_without_zone_is_refused_when_the_dialect_requires_one(self) -> None:
        """Ortto: "an ISO 8601 date-time with a time zone"."""
        with pytest.raises(NoTimeZone):
            parse_iso_datetime("2021-12-29T06:36:28", naive="refuse")
        assert parse_iso_datetime("2021-12-29T06:36:28Z", naive="refuse") == MOMENT

    def test_a_lower_case_z_only_where_the_dialect_takes_it(self) -> None:
        """RFC 3339 allows ``z``; Netcore and Cordial take it, Segment and Ortto do not."""
        assert parse_iso_datetime("2021-12-29T06:36:28z", lower_z=True) == MOMENT
        with pytest.raises(NotADateTime):
            parse_iso_datetime("2021-12-29T06:36:28z")

    def test_a_one_digit_month_only_with_loose_dates(self) -> None:
        """Segment's own batch example sends ``2015-2-02T00:30:08.276Z``."""
        expected = datetime(2015, 2, 2, 0, 30, 8, 276000, tzinfo=UTC)
        assert parse_iso_datetime("2015-2-02T00:30:08.276Z", loose_date=True) == expected
        with pytest.raises(NotADateTime):
            parse_iso_datetime("2015-2-02T00:30:08.276Z")

    @pytest.mark.parametrize("text", ["yesterday", "", "2021-13-01T00:00:00Z"])
    def test_refuses_what_is_no_date_time(self, text: str) -> None:
        with pytest.raises(NotADateTime):
            parse_iso_datetime(text)
        assert issubclass(NotADateTime, ValueError)

    @pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-02:00"])
    def test_a_moment_that_utc_cannot_hold_is_out_of_range(self, text: str) -> None:
        with pytest.raises(OutOfRange):
            parse_iso_datetime(text)
        assert issubclass(OutOfRange, ValueError)


class TestFormatUtc:
    def test_prints_utc_with_a_z(self) -> None:
        shifted = MOMENT.astimezone(timezone(timedelta(hours=5, minutes=30)))
        assert format_utc(shifted) == "2021-12-29T06:36:28Z"
        assert format_utc(MOMENT.replace(microsecond=5)) == "2021-12-29T06:36:28.000005Z"

    def test_is_the_formatter_of_the_http_helpers(self) -> None:
        assert iso_utc is format_utc


def basic(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class TestBasicAuth:
    def test_splits_the_scheme_in_lower_case_and_the_credential(self) -> None:
        assert split_authorization("  BASIC   abc  ") == Authorization("basic", "abc")
        assert split_authorization("Bearer") == Authorization("bearer", "")

    @pytest.mark.parametrize("header", [None, "", "   "])
    def test_an_absent_or_blank_header_is_none(self, header: str | None) -> None:
        assert split_authorization(header) is None

    def test_decodes_user_and_password(self) -> None:
        assert decode_basic(basic(b"key:secret")) == BasicCredential("key", "secret")
        assert decode_basic(basic(b"key:")) == BasicCredential("key", "")
        assert decode_basic(basic("clé".encode())) == BasicCredential("clé", None)

    @pytest.mark.parametrize("credential", ["not base64!", basic(b"\xff\xfe:")])
    def test_refuses_what_is_not_base64_of_utf8(self, credential: str) -> None:
        with pytest.raises(ValueError, match="base64"):
            decode_basic(credential)


class TestIdentifierText:
    def test_text_is_taken_as_it_is(self) -> None:
        assert identifier_text(" a ", "none") == " a "

    def test_integers_where_the_spec_allows_them(self) -> None:
        assert identifier_text(42, "int") == "42"
        assert identifier_text(42, "none") is None

    def test_floats_only_where_the_spec_says_a_number(self) -> None:
        assert identifier_text(42.0, "int_or_float") == "42"
        assert identifier_text(4.5, "int_or_float") == "4.5"
        assert identifier_text(42.0, "int") is None

    @pytest.mark.parametrize("raw", [True, False, None, [], {}])
    def test_booleans_and_containers_are_never_identifiers(self, raw: object) -> None:
        assert identifier_text(raw, "int_or_float") is None


class TestRecordErrors:
    def test_collects_problems_in_order_with_index_field_and_message(self) -> None:
        errors = RecordErrors()
        fail = errors.reporter(3)
        fail("timestamp", "timestamp is wrong")
        errors.add(5, "evtName", "evtName is required", 1010)
        assert list(errors) == [
            RecordError(3, "timestamp", "timestamp is wrong"),
            RecordError(5, "evtName", "evtName is required", 1010),
        ]
        assert len(errors) == 2
        assert errors.indexes() == {3, 5}

    def test_renders_as_the_canonical_field_errors(self) -> None:
        errors = RecordErrors()
        errors.add(0, "email", "email is not a valid e-mail address")
        assert errors.field_errors() == [
            FieldError("email", "email is not a valid e-mail address", 0)
        ]

    def test_an_empty_collector_is_false(self) -> None:
        assert not RecordErrors()


def test_a_loose_month_in_other_digits_is_read_as_before() -> None:
    """The loose reading takes any Unicode digit of month and day, as it always has."""
    expected = datetime(2015, 2, 2, tzinfo=UTC)
    assert parse_iso_datetime("2015-\u0660\u0662-02T00:00:00Z", loose_date=True) == expected
    assert parse_iso_datetime("2015-02-\u0662T00:00:00Z", loose_date=True) == expected


def _loose_reference(text: str) -> datetime | None:
    """Segment's reading spelled out: rewrite a one-digit month or day, then parse."""
    found = re.match(r"\A(\d{4})-(\d{1,2})-(\d{1,2})(.*)\Z", text, re.S)
    if found:
        year, month, day, rest = found.groups()
        text = f"{year}-{int(month):02d}-{int(day):02d}{rest}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


@given(
    st.from_regex(r"\A\d{4}-\d{1,3}-\d{1,3}([T ]\d\d:\d\d(:\d\d)?)?(Z|[+-]\d\d:\d\d)?\Z")
    | st.text(max_size=30)
)
def test_the_loose_reading_is_the_rewrite_then_the_parse(text: str) -> None:
    try:
        expected = _loose_reference(text)
    except OverflowError:
        expected = None
    try:
        found: datetime | None = parse_iso_datetime(text, loose_date=True)
    except ValueError:
        found = None
    assert found == expected
