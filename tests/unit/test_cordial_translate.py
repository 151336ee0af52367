"""Cordial listing parameters, Basic credentials, paging tokens, CSV cells (no HTTP, no DB).

Spec: ``shared/specs/cordial-contactactivities.txt``. Decisions the spec
leaves open: ``docs/dialects/cordial.md``.
"""

from __future__ import annotations

import base64
import contextlib
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventyard.core.activity_query import (
    ActivityQuery,
    TimeBound,
    decode_query_token,
    encode_query_token,
)
from eventyard.core.errors import EventyardError
from eventyard.core.identifiers import Identifier
from eventyard.dialects.cordial.translate import (
    api_key_from_authorization,
    parse_export,
    parse_listing,
)
from eventyard.services.exports import csv_cell

KEYS = ("email", "custID", "cID")
VALIDATION = "CONTACT_ACTIVITIES_VALIDATION_ERROR"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[arg-type,misc]


def query(*params: tuple[str, str]) -> ActivityQuery:
    return parse_listing(list(params), KEYS).query


def refused(*params: tuple[str, str]) -> EventyardError:
    """The validation error ``params`` give; the test checks the field it names."""
    with pytest.raises(EventyardError) as caught:
        parse_listing(list(params), KEYS)
    assert caught.value.code == VALIDATION
    assert caught.value.status == 422
    return caught.value


def field_of(error: EventyardError) -> str | None:
    return error.errors[0].field if error.errors else None


def basic(credential: bytes) -> str:
    return "Basic " + base64.b64encode(credential).decode("ascii")


class TestTimeBounds:
    def test_between_dates_is_the_three_whole_days(self) -> None:
        """Spec: "?time[between][start]=2025-01-01&time[between][end]=2025-01-03" retrieves
        "the contact activities that have occurred between the specified start date and
        end date": the end date counts as a whole day."""
        q = query(("time[between][start]", "2025-01-01"), ("time[between][end]", "2025-01-03"))
        assert q.lower == TimeBound(utc(2025, 1, 1), True)
        assert q.upper == TimeBound(utc(2025, 1, 4), False)

    @pytest.mark.parametrize(
        ("name", "lower", "upper"),
        [
            ("time[gte]", TimeBound(utc(2025, 1, 3), True), None),
            ("time[gt]", TimeBound(utc(2025, 1, 4), True), None),
            ("time[lt]", None, TimeBound(utc(2025, 1, 3), False)),
            ("time[lte]", None, TimeBound(utc(2025, 1, 4), False)),
            ("time", TimeBound(utc(2025, 1, 3), True), TimeBound(utc(2025, 1, 4), False)),
        ],
    )
    def test_a_date_stands_for_its_whole_day(
        self, name: str, lower: TimeBound | None, upper: TimeBound | None
    ) -> None:
        """Spec: time "can be searched with modifiers (lt,gt,lte,gte,between.start,
        between.end)"; docs: a date stands for its whole day (gt starts the next day,
        lte includes it, lt ends before it)."""
        q = query((name, "2025-01-03"))
        assert (q.lower, q.upper) == (lower, upper)

    @pytest.mark.parametrize(
        ("name", "lower", "upper"),
        [
            ("time[gte]", TimeBound(utc(2025, 1, 9, 17, 47, 43), True), None),
            ("time[gt]", TimeBound(utc(2025, 1, 9, 17, 47, 43), False), None),
            ("time[lt]", None, TimeBound(utc(2025, 1, 9, 17, 47, 43), False)),
            ("time[lte]", None, TimeBound(utc(2025, 1, 9, 17, 47, 43), True)),
            (
                "time",
                TimeBound(utc(2025, 1, 9, 17, 47, 43), True),
                TimeBound(utc(2025, 1, 9, 17, 47, 43), True),
            ),
        ],
    )
    def test_a_date_time_is_one_moment(
        self, name: str, lower: TimeBound | None, upper: TimeBound | None
    ) -> None:
        """Spec: time "The action timestamp for the action", example "2025-01-09 17:47:43"."""
        q = query((name, "2025-01-09 17:47:43"))
        assert (q.lower, q.upper) == (lower, upper)

    def test_an_offset_is_converted_to_utc(self) -> None:
        """Spec: "Date format is ISO 8601 standard"; a date-time with an offset is that moment."""
        q = query(("time[gte]", "2025-01-09T17:47:43+02:00"))
        assert q.lower == TimeBound(utc(2025, 1, 9, 15, 47, 43), True)

    def test_bounds_combine_to_the_tighter_one(self) -> None:
        """Several modifiers are a conjunction: the narrowest lower and upper bound win."""
        q = query(
            ("time[gte]", "2025-01-01"),
            ("time[gt]", "2025-01-02"),
            ("time[lte]", "2025-01-10"),
            ("time[lt]", "2025-01-05T12:00:00Z"),
        )
        assert q.lower == TimeBound(utc(2025, 1, 3), True)
        assert q.upper == TimeBound(utc(2025, 1, 5, 12), False)

    def test_equal_bounds_keep_the_exclusive_one(self) -> None:
        """gte and gt at the same moment: gt (exclusive) is the tighter bound."""
        q = query(("time[gte]", "2025-01-03T00:00:00Z"), ("time[gt]", "2025-01-03T00:00:00Z"))
        assert q.lower == TimeBound(utc(2025, 1, 3), False)
        q = query(("time[lt]", "2025-01-03T00:00:00Z"), ("time[lte]", "2025-01-03T00:00:00Z"))
        assert q.upper == TimeBound(utc(2025, 1, 3), False)

    def test_contradicting_bounds_are_an_empty_range(self) -> None:
        assert query(("time[gt]", "2025-01-05"), ("time[lt]", "2025-01-03")).empty_range
        assert query(
            ("time[gt]", "2025-01-03T00:00:00Z"), ("time[lt]", "2025-01-03T00:00:00Z")
        ).empty_range
        assert not query(("time", "2025-01-09 17:47:43")).empty_range
        assert query(
            ("time[gte]", "2025-01-03T00:00:00Z"), ("time[lt]", "2025-01-03T00:00:00Z")
        ).empty_range

    @pytest.mark.parametrize(
        "value", ["yesterday", "2025-13-01", "2025-02-30", "2025-01-09 25:00:00", ""]
    )
    def test_a_malformed_date_names_the_parameter(self, value: str) -> None:
        """Docs: "malformed dates ... are CONTACT_ACTIVITIES_VALIDATION_ERROR naming the
        parameter, rather than silently ignored filters"."""
        assert field_of(refused(("time[between][end]", value))) == "time[between][end]"

    def test_the_last_representable_day_is_refused_not_a_crash(self) -> None:
        """A whole day ending after year 9999 cannot be a bound: 422, not a server error."""
        assert field_of(refused(("time[lte]", "9999-12-31"))) == "time[lte]"
        assert field_of(refused(("time", "9999-12-31"))) == "time"
        assert query(("time[gte]", "9999-12-31")).lower == TimeBound(utc(9999, 12, 31), True)


class TestListingParameters:
    def test_defaults(self) -> None:
        """Spec: per_page "The default is 25"; sort_dir default "desc"; return_count
        "Default is false"."""
        listing = parse_listing([], KEYS)
        assert listing.per_page == 25
        assert listing.return_count is False
        assert listing.count_only is False
        assert listing.query == ActivityQuery()

    def test_page_three_of_ten_skips_twenty(self) -> None:
        """Spec: "?page=3&per_page=10 ... page 1 would have included the first 10, page 2
        the second group of 10"."""
        listing = parse_listing([("page", "3"), ("per_page", "10")], KEYS)
        assert (listing.per_page, listing.query.offset) == (10, 20)

    @pytest.mark.parametrize("value", ["0", "10001", "-1", "ten", "2.5", "²", "١٢", ""])
    def test_per_page_is_1_to_10000(self, value: str) -> None:
        """Spec: "The GET /contactactivities endpoint can retrieve up to 10,000 records at a
        time"; ASCII digits only ("²" once crashed int())."""
        assert field_of(refused(("per_page", value))) == "per_page"

    def test_per_page_10000_is_allowed(self) -> None:
        assert parse_listing([("per_page", "10000")], KEYS).per_page == 10_000

    def test_return_count_alone_asks_for_the_count_only(self) -> None:
        """Spec: "?return_count=true" "will return a count of all contact activities"."""
        assert parse_listing([("return_count", "true")], KEYS).count_only
        with_filter = parse_listing([("return_count", "true"), ("action", "browse")], KEYS)
        assert with_filter.count_only
        paged = parse_listing([("return_count", "true"), ("per_page", "5")], KEYS)
        assert paged.return_count
        assert not paged.count_only
        assert field_of(refused(("return_count", "maybe"))) == "return_count"

    def test_sort(self) -> None:
        """Spec: sort_by "Column to sort by. ats"; sort_dir "Possible values: asc, desc"."""
        assert query(("sort_by", "ats"), ("sort_dir", "asc")).descending is False
        assert query(("sort_dir", "DESC")).descending is True
        assert field_of(refused(("sort_by", "a"))) == "sort_by"
        assert field_of(refused(("sort_dir", "up"))) == "sort_dir"

    def test_actions_repeat_and_identifiers_are_normalised(self) -> None:
        """Spec: action "Can be click, open, message-sent, or any user-defined actions";
        contact identifier "Possible values: email, customer ID, contact ID"."""
        q = query(
            ("action", "open"),
            ("action", "browse"),
            ("email", " MSmith@Example.com "),
            ("custID", "ID1234"),
            ("cID", "16198880000"),
        )
        assert q.names == ("open", "browse")
        assert q.identifiers == (
            Identifier("email", "msmith@example.com"),
            Identifier("custID", "ID1234"),
        )
        assert q.contact_id == "16198880000"

    def test_unknown_and_repeated_parameters_are_named(self) -> None:
        """Docs: "Unknown parameters ... are CONTACT_ACTIVITIES_VALIDATION_ERROR naming the
        parameter"."""
        assert field_of(refused(("colour", "red"))) == "colour"
        assert field_of(refused(("time[eq]", "2025-01-01"))) == "time[eq]"
        assert field_of(refused(("email", "a@example.com"), ("email", "b@example.com"))) == "email"
        assert field_of(refused(("email", "not-an-email"))) == "email"
        assert field_of(refused(("action", ""))) == "action"

    def test_a_primary_kind_of_the_account_is_an_identifier_filter(self) -> None:
        listing = parse_listing([("mobile", "+919812345678")], (*KEYS, "mobile"))
        assert [i.kind for i in listing.query.identifiers] == ["mobile"]

    def test_a_token_carries_the_query_and_other_filters_are_ignored(self) -> None:
        """Docs: "Filter parameters sent with a token are ignored (the token's own apply)"."""
        sent = ActivityQuery(names=("browse",), descending=False).continued_after(
            utc(2025, 1, 2), "0" * 24
        )
        listing = parse_listing(
            [("__paging_token", encode_query_token(sent)), ("action", "order"), ("per_page", "7")],
            KEYS,
        )
        assert listing.query == sent
        assert listing.per_page == 7

    def test_a_tampered_token_is_a_validation_error(self) -> None:
        error = refused(("__paging_token", "bm90IG91cnM"))
        assert field_of(error) == "__paging_token"


class TestExportBody:
    def test_the_body_takes_the_listing_filters(self) -> None:
        """Docs: "The body takes the GET's filters as a JSON object"."""
        export = parse_export(
            {
                "name": "january browse",
                "format": "csv",
                "action": ["browse", "order"],
                "email": "msmith@example.com",
                "time": {"between": {"start": "2025-01-01", "end": "2025-01-31"}},
                "sort_dir": "asc",
            },
            KEYS,
        )
        assert export.export_format == "csv"
        assert export.name == "january browse"
        assert export.query.names == ("browse", "order")
        assert export.query.lower == TimeBound(utc(2025, 1, 1), True)
        assert export.query.upper == TimeBound(utc(2025, 2, 1), False)
        assert export.query.descending is False

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"format": "xml"}, "format"),
            ({"per_page": 10}, "per_page"),
            ({"page": 2}, "page"),
            ({"return_count": True}, "return_count"),
            ({"time": "2025-01-01"}, "time"),
            ({"time": {"gte": "soon"}}, "time[gte]"),
            ({"colour": "red"}, "colour"),
            ({"name": 7}, "name"),
        ],
    )
    def test_invalid_values_are_named(self, body: dict[str, object], field: str) -> None:
        with pytest.raises(EventyardError) as caught:
            parse_export(body, KEYS)
        assert caught.value.code == VALIDATION
        assert field_of(caught.value) == field

    @pytest.mark.parametrize("body", [[1, 2], None, "all", 3])
    def test_a_body_that_is_not_an_object_is_an_invalid_payload(self, body: object) -> None:
        """A JSON ``null`` is not "no filters": only an empty body is (found by fuzzing)."""
        with pytest.raises(EventyardError) as caught:
            parse_export(body, KEYS)
        assert caught.value.code == "CONTACT_ACTIVITIES_INVALID_PAYLOAD"
        assert caught.value.status == 400


class TestBasicCredentials:
    def test_key_as_user_name_with_an_empty_password(self) -> None:
        """Spec: "Cordial's core APIs use https Basic Authentication (BA)"; docs: the key as
        user name and an empty password (what ``curl -u "$KEY:"`` sends)."""
        assert api_key_from_authorization(basic(b"secret-key:")) == "secret-key"
        assert api_key_from_authorization(basic(b"secret-key:").replace("Basic", "basic")) == (
            "secret-key"
        )

    def test_the_encoded_key_alone(self) -> None:
        """Spec: "you can generate an encoded API key for your account and use it for
        authorization": base64 of the key, no colon."""
        assert api_key_from_authorization(basic(b"secret-key")) == "secret-key"

    @pytest.mark.parametrize(
        "header",
        [
            None,
            "",
            "Basic",
            "Basic    ",
            "Bearer " + base64.b64encode(b"secret-key:").decode(),
            "Basic not*base64!",
            "Basic c2VjcmV0LWtleTo",  # missing padding
            "Basic " + base64.b64encode(b"\xff\xfe:").decode(),  # not UTF-8
            "Basic " + base64.b64encode(b"secret-key:password").decode(),
            "Basic " + base64.b64encode(b"secret-key:pass:word").decode(),
            "Basic " + base64.b64encode(b":").decode(),
            "Basic " + base64.b64encode(b"").decode(),
            "Basic " + base64.b64encode(b"   :").decode(),
            "Basic c2VjcmV0LWtleTo=\u00e9",  # not ASCII
        ],
    )
    def test_anything_else_is_no_key(self, header: str | None) -> None:
        """Docs: "Anything else is 401": no header, another scheme, text that is not base64,
        bytes that are not UTF-8, a non-empty password."""
        assert api_key_from_authorization(header) is None

    def test_a_unicode_key_round_trips(self) -> None:
        assert api_key_from_authorization(basic("clé-ключ:".encode())) == "clé-ключ"

    @given(st.text(min_size=1, max_size=60).filter(lambda s: ":" not in s and s.strip() == s))
    def test_any_key_without_colon_round_trips(self, key: str) -> None:
        assert api_key_from_authorization(basic(f"{key}:".encode())) == key
        assert api_key_from_authorization(basic(key.encode())) == key

    @given(st.text(max_size=80))
    def test_never_raises(self, header: str) -> None:
        api_key_from_authorization(header)
        api_key_from_authorization("Basic " + header)


class TestPagingToken:
    def test_round_trip(self) -> None:
        """Spec: "use the provided URL with the paging token to query the next batch":
        the token carries every filter and the position."""
        sent = ActivityQuery(
            names=("browse", "open"),
            identifiers=(Identifier("email", "msmith@example.com"),),
            contact_id="01a2097b2f1475d9e4d7cd02",
            lower=TimeBound(utc(2025, 1, 1), True),
            upper=TimeBound(utc(2025, 1, 4), False),
            descending=False,
            after=(utc(2025, 1, 2, 3, 4, 5, 678000), "01a2097b2f163e70ae78c63c"),
        )
        assert decode_query_token(encode_query_token(sent)) == sent
        assert decode_query_token(encode_query_token(ActivityQuery())) == ActivityQuery()

    def test_the_offset_is_not_carried(self) -> None:
        """A token is a keyset position: page-number offsets do not travel in it."""
        q = ActivityQuery(offset=20).continued_after(utc(2025, 1, 2), "a" * 24)
        assert decode_query_token(encode_query_token(q)).offset == 0

    @pytest.mark.parametrize(
        "token",
        [
            "",
            "!!!",
            base64.urlsafe_b64encode(b"[]").decode(),
            base64.urlsafe_b64encode(b'{"d": "yes"}').decode(),
            base64.urlsafe_b64encode(b'{"d": true, "n": [1]}').decode(),
            base64.urlsafe_b64encode(b'{"d": true, "c": 5}').decode(),
            base64.urlsafe_b64encode(b'{"d": true, "l": ["2025-01-01T00:00:00", true]}').decode(),
            base64.urlsafe_b64encode(b'{"d": true, "u": ["2025-01-01T00:00:00+00:00"]}').decode(),
            base64.urlsafe_b64encode(b'{"d": true, "a": ["2025-01-01T00:00:00+00:00"]}').decode(),
            base64.urlsafe_b64encode(b'{"d": true, "i": [["email"]]}').decode(),
            base64.urlsafe_b64encode(b'{"d": true, "a": ["soon", "x"]}').decode(),
            base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        ],
    )
    def test_tampered_tokens_are_refused(self, token: str) -> None:
        with pytest.raises(ValueError, match="not a paging token"):
            decode_query_token(token)

    def test_a_truncated_token_is_refused(self) -> None:
        token = encode_query_token(ActivityQuery(names=("browse",)))
        with pytest.raises(ValueError, match="not a paging token"):
            decode_query_token(token[:-5])

    @given(st.text(max_size=100))
    def test_decoding_raises_only_value_error(self, token: str) -> None:
        with contextlib.suppress(ValueError):
            decode_query_token(token)


class TestCsvCell:
    @pytest.mark.parametrize(
        ("value", "cell"),
        [
            ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
            ("+1+1", "'+1+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tcmd", "'\tcmd"),
            ("\rcmd", "'\rcmd"),
            ("browse", "browse"),
            ("a=b", "a=b"),
            ("", ""),
            (None, ""),
            (5, "5"),
            (-5, "'-5"),
            ({"k": "=1"}, '{"k":"=1"}'),
            (["=1"], '["=1"]'),
        ],
    )
    def test_formula_starts_are_escaped(self, value: object, cell: str) -> None:
        """Issue 5: "Exported CSV cells that start with =, +, -, @ are escaped against
        formula injection"; docs: also a tab or a carriage return, with ``'``."""
        assert csv_cell(value) == cell
