"""ISO 8601 timestamps: reading the variants dialects accept, printing UTC with a ``Z``
(:func:`format_utc`, eventyard's one formatter, which lives in ``core``).

:func:`parse_iso_datetime` is the one reader. What the dialects accept
differs, so the differences are parameters, each dialect choosing its own:

- ``lower_z``: a lower-case ``z`` as the zone (RFC 3339 allows it; Python's
  parser does not). Netcore and Cordial accept it; Segment and Ortto do not.
- ``loose_date``: a one- or two-digit month and day (``2015-2-02``, from
  Segment's own batch example). Only Segment.
- ``naive``: a date-time without a zone is UTC (``"utc"``: Netcore, Cordial,
  Segment) or refused (``"refuse"``: Ortto, "with a time zone").

Rules about the shape of the text stay with their dialect: Netcore first
checks the text against the forms its page lists, Cordial reads a bare date
(``2025-01-09``) as that day's midnight, and each refuses a non-string in its own words.

Every refusal is a ``ValueError`` that says which it is, and each dialect
words its own message: :class:`NotADateTime`, :class:`NoTimeZone`, or
:class:`OutOfRange` (valid with its offset, but before year 1 or after 9999
in UTC: ``0001-01-01T00:00:00+01:00``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal

from eventyard.core.timestamps import format_utc

__all__ = ["NoTimeZone", "NotADateTime", "OutOfRange", "format_utc", "parse_iso_datetime"]

_LOOSE_DATE = re.compile(r"\A(\d{4})-(\d{1,2})-(\d{1,2})(.*)\Z", re.S)
#: Two ASCII digits of month and day: what :data:`_LOOSE_DATE` would write back
#: unchanged (it also reads other Unicode digits, which it writes in ASCII).
_STRICT_DATE = re.compile(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}")


class NotADateTime(ValueError):
    """The text is no ISO 8601 date-time the dialect accepts."""


class NoTimeZone(ValueError):
    """A date-time without a zone where the dialect requires one."""


class OutOfRange(ValueError):
    """A date-time that UTC cannot hold (before year 1 or after 9999 once its offset is applied)."""


def parse_iso_datetime(
    text: str,
    *,
    lower_z: bool = False,
    loose_date: bool = False,
    naive: Literal["utc", "refuse"] = "utc",
) -> datetime:
    """``text`` (already stripped, if the dialect strips) as an aware datetime in UTC."""
    if loose_date and not _STRICT_DATE.match(text):
        loose = _LOOSE_DATE.match(text)
        if loose:
            year, month, day, rest = loose.groups()
            text = f"{year}-{int(month):02d}-{int(day):02d}{rest}"
    if lower_z:
        text = text.replace("z", "Z")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise NotADateTime(text) from exc
    if moment.tzinfo is None:
        if naive == "refuse":
            raise NoTimeZone(text)
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:
        raise OutOfRange(text) from exc
