"""Identifier kinds and how their values are normalised."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from eventyard.core.errors import FieldError

IDENTITY = "identity"
EMAIL = "email"
MOBILE = "mobile"
ANONID = "anonid"

#: Identifier kinds the dialects use, in their canonical spelling.
WELL_KNOWN_KINDS = (IDENTITY, EMAIL, MOBILE, ANONID, "custID", "cID", "FBID", "GPID", "objectId")
_CANONICAL_KIND = {kind.lower(): kind for kind in WELL_KNOWN_KINDS}

#: Kinds that make a contact "known"; a contact with only ``anonid`` is anonymous.
ANONYMOUS_KINDS = frozenset({ANONID})
#: The default order in which a conflict between known contacts is settled.
DEFAULT_PRIMARY_KINDS = (IDENTITY, EMAIL, MOBILE)

MAX_VALUE_LENGTH = 512
_EMAIL_RE = re.compile(r"\A[^@\s]+@[^@\s]+\.[^@\s.]+\Z")
_MOBILE_SEPARATORS = re.compile(r"[\s\-().]")
_KIND_RE = re.compile(r"\A[A-Za-z][A-Za-z0-9_]{0,39}\Z")


@dataclass(frozen=True, slots=True, order=True)
class Identifier:
    """A (kind, value) pair that names a contact; unique per account."""

    kind: str
    value: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


def sort_key(identifier: Identifier) -> tuple[str, str]:
    """The order of ``Identifier``, as a plain tuple: sorting by it compares in C."""
    return identifier.kind, identifier.value


def is_identifier_kind(kind: str) -> bool:
    """Whether ``kind`` can name identifiers: a letter, then letters, digits or ``_``."""
    return bool(_KIND_RE.match(kind))


def canonical_kind(kind: str) -> str:
    """A well-known kind in its canonical spelling, whatever its case (``EMAIL`` -> ``email``)."""
    return _CANONICAL_KIND.get(kind.lower(), kind)


def normalize_email(raw: str) -> str:
    """Trim and lower-case an e-mail address; raise ``ValueError`` if malformed."""
    value = raw.strip().lower()
    if not _EMAIL_RE.match(value):
        raise ValueError("is not a valid e-mail address")
    return value


def normalize_mobile(raw: str) -> str:
    """Reduce a phone number to digits with an optional leading ``+``.

    Spaces, dashes, dots and parentheses are dropped; anything else is an error.
    """
    value = _MOBILE_SEPARATORS.sub("", raw.strip())
    plus = value.startswith("+")
    digits = value[1:] if plus else value
    if not digits.isdigit() or not digits.isascii():
        raise ValueError("must contain only digits, with an optional leading '+'")
    if not 3 <= len(digits) <= 20:
        raise ValueError("must have between 3 and 20 digits")
    return f"+{digits}" if plus else digits


@lru_cache(maxsize=32768)
def normalize_identifier(kind: str, raw: str) -> Identifier:
    """Return the identifier in canonical form; ``ValueError`` says what is wrong.

    Cached: a batch names each contact many times, and batches name the same
    contacts again (an ``Identifier`` is immutable, so sharing one is safe;
    a ``ValueError`` is not cached and is raised again each time).
    """
    if not is_identifier_kind(kind):
        raise ValueError(f"unknown identifier kind {kind!r}")
    return Identifier(kind, normalize_value(kind, raw))


def normalize_value(kind: str, raw: str) -> str:
    """The canonical form of a value of ``kind`` (a valid kind); ``ValueError`` if none.

    Not cached: for files whose every value is new (a contact import), where
    a cache only costs.
    """
    if "\x00" in raw:
        raise ValueError("must not contain the character \\u0000")
    if kind == EMAIL:
        value = normalize_email(raw)
    elif kind == MOBILE:
        value = normalize_mobile(raw)
    else:
        value = raw.strip()
        if not value:
            raise ValueError("must not be empty")
    if len(value) > MAX_VALUE_LENGTH:
        raise ValueError(f"must be at most {MAX_VALUE_LENGTH} characters")
    return value


def parse_identifier_query(text: str) -> Identifier:
    """Parse ``KIND:VALUE`` (as used by the read API) into a normalised identifier."""
    kind, sep, raw = text.partition(":")
    if not sep:
        raise ValueError("must have the form KIND:VALUE")
    # People type EMAIL:… or custid:…; well-known kinds match in any case.
    kind = canonical_kind(kind.strip())
    return normalize_identifier(kind, raw)


def identifier_error(index: int | None, field: str, exc: ValueError) -> FieldError:
    return FieldError(field=field, reason=f"{field} {exc}", index=index)
