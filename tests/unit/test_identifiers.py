"""Identifier normalisation: what makes two spellings the same customer.

DESIGN.md: "a set of **identifiers** ``(kind, value)``, unique per account ...
Emails lower-cased, phones normalised."
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventyard.core.identifiers import (
    MAX_VALUE_LENGTH,
    Identifier,
    identifier_error,
    normalize_email,
    normalize_identifier,
    normalize_mobile,
    parse_identifier_query,
)

CANONICAL_MOBILE = re.compile(r"\A\+?[0-9]{3,20}\Z")


class TestEmail:
    """ "Emails lower-cased": one mailbox is one customer however it is typed."""

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("jane@example.com", "jane@example.com"),
            ("Jane.Doe@Example.COM", "jane.doe@example.com"),
            ("  jane@example.com  ", "jane@example.com"),
            ("\tJANE+promo@Mail.Example.co.uk\n", "jane+promo@mail.example.co.uk"),
        ],
    )
    def test_lower_cases_and_trims(self, raw: str, expected: str) -> None:
        assert normalize_identifier("email", raw) == Identifier("email", expected)

    @pytest.mark.parametrize(
        "raw",
        [
            "",
            "   ",
            "jane",
            "jane@",
            "@example.com",
            "jane@example",
            "jane@@example.com",
            "jane@exa@mple.com",
            "jane doe@example.com",
            "jane@example.com.",
            "jane@example .com",
        ],
    )
    def test_rejects_malformed_addresses_with_a_reason(self, raw: str) -> None:
        with pytest.raises(ValueError, match=r"^is not a valid e-mail address$"):
            normalize_identifier("email", raw)

    def test_the_reason_names_the_field_when_reported(self) -> None:
        """Core errors carry "a precise message naming the record and field"."""
        with pytest.raises(ValueError, match="e-mail") as info:
            normalize_email("not-an-email")
        error = identifier_error(3, "email", info.value)
        assert (error.index, error.field) == (3, "email")
        assert error.reason == "email is not a valid e-mail address"

    @given(
        local=st.from_regex(r"\A[A-Za-z0-9._%+-]{1,20}\Z"),
        domain=st.from_regex(r"\A[A-Za-z0-9-]{1,15}\.[A-Za-z]{2,6}\Z"),
        pad=st.sampled_from(["", " ", "\t", "  \n"]),
    )
    def test_normalising_is_idempotent_and_case_blind(
        self, local: str, domain: str, pad: str
    ) -> None:
        once = normalize_email(f"{pad}{local}@{domain}{pad}")
        assert normalize_email(once) == once
        assert once == once.lower().strip()
        assert normalize_email(f"{local.upper()}@{domain.upper()}") == once


class TestMobile:
    """ "phones normalised": digits with an optional leading ``+``."""

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("3525252568", "3525252568"),
            ("+91 98450 12345", "+919845012345"),
            ("+1 (555) 123-4567", "+15551234567"),
            ("555.123.4567", "5551234567"),
            ("  +44-20-7946-0958  ", "+442079460958"),
            ("(0) 98-45.01 23", "098450123"),
        ],
    )
    def test_drops_spaces_dashes_dots_and_parentheses(self, raw: str, expected: str) -> None:
        assert normalize_identifier("mobile", raw) == Identifier("mobile", expected)

    def test_same_number_typed_differently_is_one_identifier(self) -> None:
        spellings = ["+91 98450 12345", "+91-98450-12345", "+91.98450.12345", "+91(98450)12345"]
        assert {normalize_mobile(s) for s in spellings} == {"+919845012345"}

    @pytest.mark.parametrize(
        "raw",
        [
            "98450-CALL-ME",
            "call me",
            "12345x678",
            "+",
            "",
            "   ",
            "++919845012345",
            "91+9845012345",
            "9845012345+",
            "98450/12345",
            "\u0663\u0665\u0662\u0665\u0662\u0665\u0662\u0665\u0666\u0668",  # Arabic-Indic digits
        ],
    )
    def test_rejects_anything_but_digits_and_a_leading_plus(self, raw: str) -> None:
        with pytest.raises(ValueError, match="only digits"):
            normalize_identifier("mobile", raw)

    @pytest.mark.parametrize("raw", ["12", "+12", "1-2", "1" * 21, "+" + "9" * 21])
    def test_rejects_too_short_or_too_long_numbers(self, raw: str) -> None:
        with pytest.raises(ValueError, match="between 3 and 20 digits"):
            normalize_identifier("mobile", raw)

    @pytest.mark.parametrize("raw", ["123", "+123", "1" * 20, "+" + "9" * 20])
    def test_accepts_the_length_boundaries(self, raw: str) -> None:
        assert normalize_mobile(raw) == raw

    @given(
        digits=st.from_regex(r"\A[0-9]{3,20}\Z"),
        plus=st.booleans(),
        separators=st.lists(st.sampled_from([" ", "-", ".", "(", ")"]), max_size=25),
    )
    def test_separators_never_change_the_number(
        self, digits: str, plus: bool, separators: list[str]
    ) -> None:
        spaced = "".join(
            d + (separators[i] if i < len(separators) else "") for i, d in enumerate(digits)
        )
        expected = ("+" if plus else "") + digits
        result = normalize_mobile(("+" if plus else "") + spaced)
        assert result == expected
        assert CANONICAL_MOBILE.match(result)
        assert normalize_mobile(result) == result


class TestOtherKinds:
    """identity, anonid, custID, ... are opaque: trimmed, never re-cased."""

    @pytest.mark.parametrize(
        ("kind", "raw", "expected"),
        [
            ("identity", "  CUSTOMER_ID ", "CUSTOMER_ID"),
            ("identity", "Jane@Example.com", "Jane@Example.com"),
            ("anonid", "\tcookie-AbC-123\n", "cookie-AbC-123"),
            ("custID", " 42 ", "42"),
            ("FBID", "10158", "10158"),
        ],
    )
    def test_trimmed_but_case_kept(self, kind: str, raw: str, expected: str) -> None:
        assert normalize_identifier(kind, raw) == Identifier(kind, expected)

    @pytest.mark.parametrize("kind", ["identity", "anonid", "custID"])
    @pytest.mark.parametrize("raw", ["", " ", "\t\n"])
    def test_empty_values_are_rejected(self, kind: str, raw: str) -> None:
        with pytest.raises(ValueError, match="must not be empty"):
            normalize_identifier(kind, raw)

    def test_values_longer_than_the_limit_are_rejected(self) -> None:
        assert normalize_identifier("identity", "x" * MAX_VALUE_LENGTH).value == "x" * 512
        with pytest.raises(ValueError, match=f"at most {MAX_VALUE_LENGTH} characters"):
            normalize_identifier("identity", "x" * (MAX_VALUE_LENGTH + 1))

    @pytest.mark.parametrize("kind", ["identity", "email", "mobile", "anonid"])
    def test_the_nul_character_is_rejected(self, kind: str) -> None:
        """PostgreSQL text cannot hold U+0000; SQLite could, so refuse it everywhere."""
        with pytest.raises(ValueError, match="must not contain the character"):
            normalize_identifier(kind, "abc\x00@x.io")

    @pytest.mark.parametrize("kind", ["", "1st", "has space", "e-mail", "x" * 41, "email "])
    def test_malformed_kinds_are_rejected(self, kind: str) -> None:
        with pytest.raises(ValueError, match="unknown identifier kind"):
            normalize_identifier(kind, "value")


class TestParseIdentifierQuery:
    """The read API names a contact as ``KIND:VALUE``, normalised like stored values."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("email: Jane@Example.COM ", Identifier("email", "jane@example.com")),
            ("mobile:+91 98450-12345", Identifier("mobile", "+919845012345")),
            ("identity:CUSTOMER_ID", Identifier("identity", "CUSTOMER_ID")),
            ("anonid:cookie-1", Identifier("anonid", "cookie-1")),
            ("identity:urn:shop:42", Identifier("identity", "urn:shop:42")),
        ],
    )
    def test_parses_and_normalises(self, text: str, expected: Identifier) -> None:
        assert parse_identifier_query(text) == expected

    @pytest.mark.parametrize("text", ["jane@example.com", "", "identity"])
    def test_requires_the_kind_prefix(self, text: str) -> None:
        with pytest.raises(ValueError, match="KIND:VALUE"):
            parse_identifier_query(text)

    @pytest.mark.parametrize(
        ("text", "reason"),
        [
            ("email:", "not a valid e-mail address"),
            ("email:nobody", "not a valid e-mail address"),
            ("mobile:call-me", "only digits"),
            ("identity:  ", "must not be empty"),
            (":value", "unknown identifier kind"),
        ],
    )
    def test_rejects_bad_values_with_the_reason(self, text: str, reason: str) -> None:
        with pytest.raises(ValueError, match=reason):
            parse_identifier_query(text)

    @given(
        ident=st.one_of(
            st.builds(
                lambda v: normalize_identifier("identity", v),
                st.text(
                    st.characters(codec="utf-8", exclude_characters="\x00"),
                    min_size=1,
                    max_size=40,
                ).filter(lambda s: s.strip()),
            ),
            st.builds(
                lambda v: normalize_identifier("mobile", v), st.from_regex(r"\A\+?[0-9]{3,20}\Z")
            ),
        )
    )
    def test_str_of_an_identifier_parses_back_to_it(self, ident: Identifier) -> None:
        assert str(ident) == f"{ident.kind}:{ident.value}"
        assert parse_identifier_query(str(ident)) == ident
