"""The CSV rules of a contact import, the SSRF address rule and callback signatures.

Spec: ``shared/specs/netcore-bulk-contact-upload.txt``; decisions in
``docs/dialects/netcore.md`` ("The CSV file", "SSRF guard").
"""

from __future__ import annotations

import hashlib
import hmac

import pytest

from eventyard.core.contact_import import (
    ImportRow,
    ImportTally,
    RowError,
    map_columns,
    read_row,
    read_rows,
    sniff_delimiter,
)
from eventyard.core.errors import EventyardError
from eventyard.core.identifiers import Identifier
from eventyard.core.netguard import address_refusal, parse_allowlist
from eventyard.core.signatures import signature, signature_matches
from eventyard.services.imports import csv_records

PRIMARY = ("identity", "email", "mobile")


def records(data: bytes, chunk: int = 7) -> list[list[str]]:
    """``data`` parsed as the worker parses a download, in small chunks."""
    return list(csv_records(iter([data[i : i + chunk] for i in range(0, len(data), chunk)])))


class TestParsing:
    @pytest.mark.parametrize(
        ("header", "delimiter"),
        [
            ("email,name", ","),
            ("EMAIL;FIRSTNAME;CITY", ";"),
            ("email\tname", "\t"),
            ('"Last, First";email;city', ";"),
            ("email", ","),
        ],
    )
    def test_the_delimiter_is_sniffed_from_the_header(self, header: str, delimiter: str) -> None:
        assert sniff_delimiter(header) == delimiter

    def test_bom_semicolons_and_quoted_line_breaks(self) -> None:
        data = '\ufeffEMAIL;NOTE\r\na@example.com;"two\nlines; and ""quotes"""\r\n'.encode()
        assert records(data) == [
            ["EMAIL", "NOTE"],
            ["a@example.com", 'two\nlines; and "quotes"'],
        ]

    def test_a_file_that_is_not_utf8_is_refused(self) -> None:
        from eventyard.services.sources import SourceRefused

        with pytest.raises(SourceRefused, match="not UTF-8"):
            records("email,name\nz@example.com,Jürgen\n".encode("latin-1"))


class TestColumns:
    def test_identifier_columns_in_any_case_and_attributes_as_written(self) -> None:
        columns = map_columns(["EMAIL", "Mobile", "FirstName", "", "identity"], PRIMARY)
        assert columns.identifiers == ((0, "email"), (1, "mobile"), (4, "identity"))
        assert columns.attributes == ((2, "FirstName"),)

    def test_the_accounts_own_primary_kind_is_an_identifier(self) -> None:
        columns = map_columns(["custID", "plan"], ("custID", "email"))
        assert columns.identifiers == ((0, "custID"),)

    @pytest.mark.parametrize(
        ("header", "message"),
        [
            (["name", "city"], "no identifier column"),
            (["email", "EMAIL"], "names the column 'EMAIL' twice"),
        ],
    )
    def test_a_header_that_cannot_be_imported(self, header: list[str], message: str) -> None:
        with pytest.raises(EventyardError, match=message):
            map_columns(header, PRIMARY)

    def test_an_empty_file(self) -> None:
        with pytest.raises(EventyardError, match="no header row"):
            list(read_rows(iter([]), PRIMARY))


class TestRows:
    columns = map_columns(["email", "mobile", "name"], PRIMARY)

    def test_a_good_row(self) -> None:
        row = read_row(2, [" Ann@Example.com ", "+91 98450-12345", "Ann"], self.columns)
        assert row == ImportRow(
            2,
            (Identifier("email", "ann@example.com"), Identifier("mobile", "+919845012345")),
            {"name": "Ann"},
        )

    def test_empty_cells_set_nothing(self) -> None:
        row = read_row(2, ["ann@example.com", "", ""], self.columns)
        assert isinstance(row, ImportRow)
        assert row.attributes == {}

    @pytest.mark.parametrize(
        ("cells", "reason"),
        [
            (["", "", "Ann"], "no identifier: email and mobile are empty"),
            (["ann@", "", "Ann"], "email 'ann@' is not a valid e-mail address"),
            (["", "12ab", "Ann"], "mobile '12ab' must contain only digits"),
            (["ann@example.com", "Ann"], "has 2 fields where the header has 3"),
        ],
    )
    def test_bad_rows_are_skipped_with_a_reason(self, cells: list[str], reason: str) -> None:
        error = read_row(9, cells, self.columns)
        assert isinstance(error, RowError)
        assert error.number == 9
        assert error.reason.startswith(reason)

    def test_rows_are_numbered_like_a_spreadsheet_and_blank_lines_are_no_rows(self) -> None:
        parsed = read_rows(iter([["email"], ["a@example.com"], [], ["b@"]]), PRIMARY)
        numbers = [(type(r).__name__, r.number) for r in parsed]
        assert numbers == [("ImportRow", 2), ("RowError", 4)]

    def test_only_the_first_100_errors_are_listed_but_all_are_counted(self) -> None:
        tally = ImportTally()
        for n in range(150):
            tally.fail(RowError(n + 2, "bad"))
        assert (tally.total, tally.failed, len(tally.errors)) == (150, 150, 100)
        assert ImportTally.from_json(tally.to_json()) == tally


class TestAddressRule:
    @pytest.mark.parametrize(
        ("address", "kind"),
        [
            ("127.0.0.1", "loopback"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("fe80::1%eth0", "link-local"),
            ("224.0.0.1", "multicast"),
            ("0.0.0.0", "unspecified"),
            ("240.0.0.1", "address"),  # reserved (Python counts it private too)
            ("100.64.0.1", "not a public"),
            ("::ffff:a9fe:a9fe", "169.254.169.254 is a link-local"),
            ("2002:7f00:1::", "127.0.0.1 is a loopback"),  # 6to4 carrying loopback
            ("2002:a00:1::5", "10.0.0.1 is a private"),
            ("64:ff9b::7f00:1", "reserved"),  # NAT64
            ("::7f00:1", "reserved"),  # IPv4-compatible ::127.0.0.1
            ("fd00::1", "private"),
        ],
    )
    def test_non_public_addresses_are_refused(self, address: str, kind: str) -> None:
        reason = address_refusal(address)
        assert reason is not None
        assert kind in reason

    def test_public_addresses_pass(self) -> None:
        assert address_refusal("93.184.216.34") is None
        assert address_refusal("2606:2800:220:1:248:1893:25c8:1946") is None
        assert address_refusal("2002:5db8:d822::1") is None  # 6to4 of 93.184.216.34

    def test_the_allow_list_lets_chosen_networks_in(self) -> None:
        allowed = parse_allowlist(" 127.0.0.1/32 , 10.0.0.0/8,")
        assert address_refusal("127.0.0.1", allowed) is None
        assert address_refusal("10.9.9.9", allowed) is None
        assert address_refusal("127.0.0.2", allowed) is not None
        with pytest.raises(ValueError, match=r"10\.0\.0\.0/33. is not a CIDR"):
            parse_allowlist("10.0.0.0/33")


def test_the_signature_is_the_hmac_sha256_of_the_body() -> None:
    body = b'{"requestid":"x"}'
    expected = hmac.new(b"secret", body, hashlib.sha256).hexdigest()
    assert signature("secret", body) == f"sha256={expected}"
    assert signature_matches("secret", body, f"sha256={expected}")
    assert not signature_matches("other", body, f"sha256={expected}")
