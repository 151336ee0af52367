"""The format of activity backfill files, rule by rule (``core/activity_import.py``).

Each test quotes the rule of the module docstring it checks. Files are given
as their bytes, read as ``eventyard activities import`` reads them: NDJSON
split into lines by ``split_lines``, CSV parsed by the contact import's
``csv_records`` (delimiter sniffed, BOM dropped).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from eventyard.core.activity_import import (
    BackfillRow,
    read_csv_activities,
    read_json_lines,
)
from eventyard.core.contact_import import RowError
from eventyard.core.errors import EventyardError
from eventyard.core.identifiers import DEFAULT_PRIMARY_KINDS
from eventyard.services.imports import csv_records
from eventyard.services.sources import split_lines

#: An account whose primary kinds add a custom one to the defaults.
PRIMARY_KINDS = (*DEFAULT_PRIMARY_KINDS, "custID")


def read_ndjson(
    text: str, *, read_size: int = 1 << 16, primary_kinds: tuple[str, ...] = PRIMARY_KINDS
) -> list[BackfillRow | RowError]:
    """Every line of an NDJSON file, the file read ``read_size`` bytes at a time."""
    data = text.encode()
    reads = (data[i : i + read_size] for i in range(0, len(data), read_size))
    return list(read_json_lines(split_lines(reads), primary_kinds))


def read_csv(text: str) -> list[BackfillRow | RowError]:
    return list(read_csv_activities(csv_records(iter([text.encode()])), PRIMARY_KINDS))


def only(rows: list[BackfillRow | RowError]) -> BackfillRow:
    (row,) = rows
    assert isinstance(row, BackfillRow), row
    return row


def errors(rows: list[BackfillRow | RowError]) -> list[tuple[int, str]]:
    return [(row.number, row.reason) for row in rows if isinstance(row, RowError)]


def at(*parts: int, micro: int = 0) -> datetime:
    return datetime(*parts, microsecond=micro, tzinfo=UTC)  # type: ignore[misc]


class TestNdjsonShape:
    def test_an_object_per_line_with_every_field(self) -> None:
        """Rule: "NDJSON: one JSON object per line, {"name", "occurred_at", "id"?,
        "properties"?: {…}, "identifiers"?: {"email": …}}"."""
        row = only(
            read_ndjson(
                '{"name": "Order Placed", "occurred_at": "2024-05-06T07:08:09Z", "id": "o-1",'
                ' "properties": {"total": 12.5, "items": [{"sku": "A"}]},'
                ' "identifiers": {"email": "ann@example.com"}}\n'
            )
        )
        assert row == BackfillRow(
            number=1,
            identifiers=(("email", "ann@example.com"),),
            name="Order Placed",
            occurred_at=at(2024, 5, 6, 7, 8, 9),
            properties={"total": 12.5, "items": [{"sku": "A"}]},
            activity_id="o-1",
        )

    def test_id_and_properties_are_optional(self) -> None:
        """Rule: "optionally an id … and properties"."""
        row = only(read_ndjson('{"name": "Login", "occurred_at": 0, "email": "a@example.com"}'))
        assert (row.activity_id, row.properties) == (None, {})

    def test_an_integer_id_is_kept_as_text(self) -> None:
        """Rule: an ``id`` names the activity; the file may write it as a number."""
        row = only(read_ndjson('{"name": "x", "occurred_at": 0, "id": 42, "email": "a@e.com"}'))
        assert row.activity_id == "42"

    def test_properties_keep_their_nesting_and_key_order(self) -> None:
        """Rule: ``properties``: {…} is the activity's, as written."""
        row = only(
            read_ndjson(
                '{"name": "x", "occurred_at": 0, "email": "a@e.com",'
                ' "properties": {"z": 1, "a": {"y": [1, {"b": null}], "c": true}, "m": "é"}}'
            )
        )
        assert row.properties == {"z": 1, "a": {"y": [1, {"b": None}], "c": True}, "m": "é"}
        assert list(row.properties) == ["z", "a", "m"]
        assert list(row.properties["a"]) == ["y", "c"]

    def test_a_line_split_across_reads_is_one_line(self) -> None:
        """Rule: "one JSON object per line", however the file arrives."""
        text = "".join(
            f'{{"name": "n{n}", "occurred_at": {n}, "email": "p{n}@example.com"}}\n'
            for n in range(5)
        )
        rows = read_ndjson(text, read_size=7)
        assert [(r.number, r.name) for r in rows if isinstance(r, BackfillRow)] == [
            (n + 1, f"n{n}") for n in range(5)
        ]

    def test_a_file_of_one_long_line_is_one_bad_line(self) -> None:
        """Rule: "one JSON object per line". A file that is one long line (here old
        Mac line ends, CR only, 32 MB arriving 64 KiB at a time) is one bad line.
        How fast it is told is the bench's business (bench/run.py, backfill)."""
        text = '{"name": "x", "occurred_at": 0, "email": "a@e.com"}\r' * 640_000 + "\n"
        assert len(text) > 32_000_000
        rows = read_ndjson(text, read_size=64 * 1024)
        assert [(n, reason.split(":")[0]) for n, reason in errors(rows)] == [(1, "is not JSON")]

    def test_windows_line_ends_and_a_missing_last_line_end(self) -> None:
        """Rule: "one JSON object per line"; CRLF ends a line as LF does."""
        rows = read_ndjson(
            '{"name": "a", "occurred_at": 0, "email": "a@e.com"}\r\n'
            '{"name": "b", "occurred_at": 0, "email": "b@e.com"}'
        )
        assert [(r.number, r.name) for r in rows if isinstance(r, BackfillRow)] == [
            (1, "a"),
            (2, "b"),
        ]

    def test_blank_lines_are_skipped_without_shifting_line_numbers(self) -> None:
        """Rule: each "non-blank line of an NDJSON file (numbered from 1)" is an activity."""
        rows = read_ndjson(
            '\n{"name": "a", "occurred_at": 0, "email": "a@e.com"}\n'
            "   \n\r\n"
            '{"name": "", "occurred_at": 0, "email": "b@e.com"}\n'
            '{"name": "c", "occurred_at": 0, "email": "c@e.com"}\n\n'
        )
        assert [r.number for r in rows] == [2, 5, 6]
        assert errors(rows) == [(5, "name is missing or empty")]


class TestEncodings:
    def test_a_byte_order_mark_before_the_first_line_is_ignored(self) -> None:
        """Rule: "A byte order mark before the first line is ignored" (as in CSV files,
        which editors on Windows save with one)."""
        rows = list(
            read_json_lines(
                iter([b'\xef\xbb\xbf{"name": "x", "occurred_at": 0, "email": "a@e.com"}']),
                PRIMARY_KINDS,
            )
        )
        assert only(rows).name == "x"

    def test_null_properties_are_none(self) -> None:
        """Rule: ``"properties": null`` is none."""
        row = only(
            read_ndjson('{"name": "x", "occurred_at": 0, "email": "a@e.com", "properties": null}')
        )
        assert row.properties == {}


class TestIdentifiers:
    def test_nested_identifiers_of_any_kind(self) -> None:
        """Rule: ``"identifiers"?: {"email": …}``: an object of kind: value, every kind."""
        row = only(
            read_ndjson(
                '{"name": "x", "occurred_at": 0, "identifiers":'
                ' {"email": "a@example.com", "anonid": "anon-1", "loyalty_no": "L7"}}'
            )
        )
        assert row.identifiers == (
            ("email", "a@example.com"),
            ("anonid", "anon-1"),
            ("loyalty_no", "L7"),
        )

    def test_nested_well_known_kinds_in_any_case(self) -> None:
        """Rule: identifiers name kinds; the well-known ones match whatever their case."""
        row = only(
            read_ndjson(
                '{"name": "x", "occurred_at": 0, "identifiers":'
                ' {"EMAIL": "a@example.com", "AnonID": "z", "custid": "C1"}}'
            )
        )
        assert row.identifiers == (("email", "a@example.com"), ("anonid", "z"), ("custID", "C1"))

    def test_top_level_fields_named_by_their_kind(self) -> None:
        """Rule: "identifiers may also be top-level fields named by their kind
        ("email": …)": e-mail, mobile and the account's primary kinds, in any case."""
        row = only(
            read_ndjson(
                '{"name": "x", "occurred_at": 0, "Email": "a@example.com",'
                ' "MOBILE": "+91 98450 12345", "identity": "u-1", "CUSTID": "C1"}'
            )
        )
        assert row.identifiers == (
            ("email", "a@example.com"),
            ("mobile", "+919845012345"),
            ("identity", "u-1"),
            ("custID", "C1"),
        )

    def test_anonymous_history_names_its_anonid_at_the_top_level(self) -> None:
        """Rule: "``email``, ``mobile``, ``anonid`` and the account's primary kinds may
        also be top-level fields": a web visitor's history loads as it was exported."""
        row = only(read_ndjson('{"name": "Visit", "occurred_at": 0, "AnonId": "v-9"}'))
        assert row.identifiers == (("anonid", "v-9"),)
        csv_row = only(read_csv("name,occurred_at,anonid\nVisit,2025-01-01,v-9\n"))
        assert csv_row.identifiers == (("anonid", "v-9"),)
        assert csv_row.properties == {}

    def test_top_level_and_nested_identifiers_together(self) -> None:
        """Rule: both spellings name identifiers of the one contact; a pair named
        twice counts once."""
        row = only(
            read_ndjson(
                '{"name": "x", "occurred_at": 0, "email": "A@example.com",'
                ' "identifiers": {"email": "a@example.com", "anonid": "z"}}'
            )
        )
        assert row.identifiers == (("email", "a@example.com"), ("anonid", "z"))

    def test_email_is_lower_cased_and_trimmed(self) -> None:
        """Rule: identifiers are normalised as ingest normalises them."""
        row = only(read_ndjson('{"name": "x", "occurred_at": 0, "email": " Ann@Example.COM "}'))
        assert row.identifiers == (("email", "ann@example.com"),)

    @pytest.mark.parametrize(
        ("raw", "stored"),
        [
            ('"+1 (555) 123-4567"', "+15551234567"),
            ('"98450.12345"', "9845012345"),
            ("919845012345", "919845012345"),
        ],
    )
    def test_mobile_separators_are_dropped(self, raw: str, stored: str) -> None:
        """Rule: mobiles keep digits and a leading '+'; spaces, dashes, dots and
        parentheses are dropped; a number is read as its digits."""
        row = only(read_ndjson(f'{{"name": "x", "occurred_at": 0, "mobile": {raw}}}'))
        assert row.identifiers == (("mobile", stored),)

    def test_empty_and_null_identifiers_are_left_out(self) -> None:
        """Rule: a contact is named by the identifiers that have a value."""
        row = only(
            read_ndjson(
                '{"name": "x", "occurred_at": 0, "email": "", "mobile": null,'
                ' "identifiers": {"identity": "u-1"}}'
            )
        )
        assert row.identifiers == (("identity", "u-1"),)


class TestOccurredAt:
    @pytest.mark.parametrize(
        ("raw", "moment"),
        [
            ('"2024-05-06T07:08:09"', at(2024, 5, 6, 7, 8, 9)),
            ('"2024-05-06 07:08:09.250"', at(2024, 5, 6, 7, 8, 9, micro=250_000)),
            ('"2024-05-06"', at(2024, 5, 6)),
            ('"2024-05-06T07:08:09Z"', at(2024, 5, 6, 7, 8, 9)),
            ('"2024-05-06T09:08:09+02:00"', at(2024, 5, 6, 7, 8, 9)),
            ('"2024-05-06T01:38:09.123456-05:30"', at(2024, 5, 6, 7, 8, 9, micro=123_456)),
        ],
    )
    def test_iso_8601_without_an_offset_is_utc(self, raw: str, moment: datetime) -> None:
        """Rule: "occurred_at is ISO 8601 (without an offset it is UTC)"."""
        row = only(read_ndjson(f'{{"name": "x", "occurred_at": {raw}, "email": "a@e.com"}}'))
        assert row.occurred_at == moment
        assert row.occurred_at.utcoffset() == timedelta(0)

    @pytest.mark.parametrize(
        ("raw", "moment"),
        [
            ("1715000000", at(2024, 5, 6, 12, 53, 20)),
            ("1715000000.25", at(2024, 5, 6, 12, 53, 20, micro=250_000)),
            ("0", at(1970, 1, 1)),
            ("-86400", at(1969, 12, 31)),
            # The last number read as seconds, and the first read as milliseconds.
            ("99999999999", at(5138, 11, 16, 9, 46, 39)),
            ("100000000000", at(1973, 3, 3, 9, 46, 40)),
            ("1715000000123", at(2024, 5, 6, 12, 53, 20, micro=123_000)),
            ("1715000000999", at(2024, 5, 6, 12, 53, 20, micro=999_000)),
        ],
    )
    def test_unix_seconds_or_milliseconds(self, raw: str, moment: datetime) -> None:
        """Rule: "or, in NDJSON, a number of Unix seconds (milliseconds from 10^11 on)"."""
        row = only(read_ndjson(f'{{"name": "x", "occurred_at": {raw}, "email": "a@e.com"}}'))
        assert row.occurred_at == moment

    def test_every_millisecond_is_exact(self) -> None:
        """Rule: milliseconds from 10^11 on; no float rounding moves one."""
        start = 1_715_000_000_000
        text = "".join(
            f'{{"name": "x", "occurred_at": {start + n}, "email": "a@e.com"}}\n'
            for n in range(1000)
        )
        moments = [r.occurred_at for r in read_ndjson(text) if isinstance(r, BackfillRow)]
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        assert moments == [epoch + timedelta(milliseconds=start + n) for n in range(1000)]

    def test_a_number_in_a_csv_file_is_no_time(self) -> None:
        """Rule: a number of Unix seconds is read "in NDJSON"; CSV cells are text."""
        rows = read_csv("name,occurred_at,email\nx,1715000000,a@e.com\n")
        assert errors(rows) == [(2, "occurred_at '1715000000' is not an ISO 8601 date-time")]


class TestErrors:
    """Rule: each line is "an activity, or why it is skipped": its number and the field."""

    @pytest.mark.parametrize(
        ("line", "reason"),
        [
            ('{"occurred_at": 0, "email": "a@e.com"}', "name is missing or empty"),
            ('{"name": "  ", "occurred_at": 0, "email": "a@e.com"}', "name is missing or empty"),
            ('{"name": 7, "occurred_at": 0, "email": "a@e.com"}', "name is missing or empty"),
            (
                '{"name": "' + "n" * 256 + '", "occurred_at": 0, "email": "a@e.com"}',
                "name is longer than 255 characters",
            ),
            ('{"name": "x", "email": "a@e.com"}', "occurred_at is missing"),
            (
                '{"name": "x", "occurred_at": "yesterday", "email": "a@e.com"}',
                "occurred_at 'yesterday' is not an ISO 8601 date-time",
            ),
            (
                '{"name": "x", "occurred_at": "2024-13-01", "email": "a@e.com"}',
                "occurred_at '2024-13-01' is not an ISO 8601 date-time",
            ),
            (
                '{"name": "x", "occurred_at": "1715000000", "email": "a@e.com"}',
                "occurred_at '1715000000' is not an ISO 8601 date-time",
            ),
            (
                '{"name": "x", "occurred_at": true, "email": "a@e.com"}',
                "occurred_at must be an ISO 8601 date-time or a number of Unix seconds",
            ),
            (
                '{"name": "x", "occurred_at": 1e20, "email": "a@e.com"}',
                "occurred_at 1e+20 is out of range",
            ),
            (
                '{"name": "x", "occurred_at": 0}',
                "no identifier: name the contact by email, mobile or another kind",
            ),
            (
                '{"name": "x", "occurred_at": 0, "email": "", "identifiers": {}}',
                "no identifier: name the contact by email, mobile or another kind",
            ),
            (
                '{"name": "x", "occurred_at": 0, "email": "ann@"}',
                "email 'ann@' is not a valid e-mail address",
            ),
            (
                '{"name": "x", "occurred_at": 0, "identifiers": {"mobile": "call me"}}',
                "mobile 'call me' must contain only digits, with an optional leading '+'",
            ),
            (
                '{"name": "x", "occurred_at": 0, "identifiers": {"identity": "   "}}',
                "identity '   ' must not be empty",
            ),
            (
                '{"name": "x", "occurred_at": 0, "email": ["a@e.com"]}',
                "email must be a string",
            ),
            (
                '{"name": "x", "occurred_at": 0, "identifiers": {"no kind": "v"}}',
                "identifiers.no kind is no identifier kind",
            ),
            (
                '{"name": "x", "occurred_at": 0, "identifiers": ["email", "a@e.com"]}',
                "identifiers must be an object of kind: value",
            ),
            (
                '{"name": "x", "occurred_at": 0, "email": "a@e.com", "id": 1.5}',
                "id must be a string or an integer",
            ),
            (
                '{"name": "x", "occurred_at": 0, "email": "a@e.com", "id": "' + "i" * 201 + '"}',
                "id is longer than 200 characters",
            ),
            (
                '{"name": "x", "occurred_at": 0, "email": "a@e.com", "properties": [1]}',
                "properties must be an object",
            ),
            (
                '{"name": "x", "occurred_at": 0, "email": "a@e.com", "properties": "{}"}',
                "properties must be an object",
            ),
            ('["x", 0, "a@e.com"]', "is not a JSON object"),
            ('"just text"', "is not a JSON object"),
        ],
    )
    def test_a_bad_line_is_skipped_with_its_number_and_field(self, line: str, reason: str) -> None:
        good = '{"name": "ok", "occurred_at": 0, "email": "ok@example.com"}'
        rows = read_ndjson(f"{good}\n{good}\n{line}\n{good}\n")
        assert errors(rows) == [(3, reason)]
        assert [r.number for r in rows if isinstance(r, BackfillRow)] == [1, 2, 4]

    def test_a_line_that_is_not_json(self) -> None:
        """Rule: "NDJSON: one JSON object per line"."""
        rows = read_ndjson(
            '{"name": "ok", "occurred_at": 0, "email": "ok@example.com"}\n'
            '{"name": "x", "occurred_at": 0,\n'
            "name=x\n"
        )
        assert [(n, reason.split(":")[0]) for n, reason in errors(rows)] == [
            (2, "is not JSON"),
            (3, "is not JSON"),
        ]


class TestCsv:
    def test_a_header_row_then_an_activity_per_row(self) -> None:
        """Rule: "CSV: a header row; columns name, occurred_at, id and those named by an
        identifier kind mean what they do in NDJSON, every other column is a property
        (text, empty cells left out)"."""
        rows = read_csv(
            "name,occurred_at,id,email,mobile,city,total\r\n"
            "Order Placed,2024-05-06T07:08:09,o-1,Ann@Example.com,,Pune,12.50\r\n"
            "Login,2024-05-06T09:08:09+02:00,,,+91 98450-12345,,\r\n"
        )
        assert rows == [
            BackfillRow(
                2,
                (("email", "ann@example.com"),),
                "Order Placed",
                at(2024, 5, 6, 7, 8, 9),
                {"city": "Pune", "total": "12.50"},
                "o-1",
            ),
            BackfillRow(3, (("mobile", "+919845012345"),), "Login", at(2024, 5, 6, 7, 8, 9), {}),
        ]

    def test_column_names_in_any_case_and_properties_in_header_order(self) -> None:
        """Rule: columns ``name``, ``occurred_at``, ``id`` and the identifier kinds are
        recognised whatever their case; properties keep their header's spelling."""
        row = only(
            read_csv(
                "Plan;NAME;Occurred_At;ID;EMAIL;CustID;Identity;Zip\n"
                "gold;Upgrade;2024-01-01;9;a@e.com;C1;u-1;411001\n"
            )
        )
        assert row.name == "Upgrade"
        assert row.activity_id == "9"
        assert row.identifiers == (("email", "a@e.com"), ("custID", "C1"), ("identity", "u-1"))
        assert list(row.properties.items()) == [("Plan", "gold"), ("Zip", "411001")]

    def test_quoted_cells_and_rows_numbered_as_a_spreadsheet_does(self) -> None:
        """Rule: "a header row" is row 1; a quoted line break does not start a row,
        a blank line is skipped but keeps its number."""
        rows = read_csv(
            "\ufeffname,occurred_at,email,note\n"
            'x,2024-01-01,a@e.com,"two\nlines, and a comma"\n'
            "\n"
            "x,2024-01-01,ann@,n\n"
            "x,2024-01-01,b@e.com,n\n"
        )
        assert [r.number for r in rows] == [2, 4, 5]
        first = rows[0]
        assert isinstance(first, BackfillRow)
        assert first.properties == {"note": "two\nlines, and a comma"}
        assert errors(rows) == [(4, "email 'ann@' is not a valid e-mail address")]

    def test_a_row_of_the_wrong_width(self) -> None:
        """Rule: every row has the header's columns."""
        rows = read_csv(
            "name,occurred_at,email,city\n"
            "x,2024-01-01,a@e.com\n"
            "x,2024-01-01,a@e.com,Pune,extra\n"
            "x,2024-01-01,a@e.com,Pune\n"
        )
        assert errors(rows) == [
            (2, "has 3 fields where the header has 4"),
            (3, "has 5 fields where the header has 4"),
        ]
        assert [r.number for r in rows if isinstance(r, BackfillRow)] == [4]

    def test_row_errors_name_their_field(self) -> None:
        """Rule: a row is an activity, or why it is skipped."""
        rows = read_csv(
            "name,occurred_at,email\n"
            ",2024-01-01,a@e.com\n"
            "x,,a@e.com\n"
            "x,soon,a@e.com\n"
            "x,2024-01-01,\n"
        )
        assert errors(rows) == [
            (2, "name is missing or empty"),
            (3, "occurred_at is missing"),
            (4, "occurred_at 'soon' is not an ISO 8601 date-time"),
            (5, "no identifier: name the contact by email, mobile or another kind"),
        ]

    @pytest.mark.parametrize(
        ("header", "message"),
        [
            ("occurred_at,email", "the header row has no name column"),
            ("name,email,when", "the header row has no occurred_at column"),
            (
                "name,occurred_at,city",
                "the header row has no identifier column; "
                "name one of: anonid, custID, email, identity, mobile",
            ),
            ("", "the file is empty: it has no header row"),
        ],
    )
    def test_a_header_without_a_required_column_refuses_the_file(
        self, header: str, message: str
    ) -> None:
        """Rule: the header names ``name``, ``occurred_at`` and an identifier kind."""
        with pytest.raises(EventyardError) as raised:
            read_csv(f"{header}\nx,2024-01-01,a@e.com\n" if header else "")
        assert raised.value.code == "invalid_csv"
        assert raised.value.message == message


def test_a_time_zone_offset_is_kept_as_the_same_instant() -> None:
    """Rule: "occurred_at is ISO 8601": an offset names the instant, stored in UTC."""
    row = only(
        read_ndjson('{"name": "x", "occurred_at": "2024-05-06T12:00:00+05:30", "email": "a@e.com"}')
    )
    assert row.occurred_at == datetime(2024, 5, 6, 12, tzinfo=timezone(timedelta(hours=5.5)))
    assert row.occurred_at.tzinfo == UTC
