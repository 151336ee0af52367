"""Activity backfill files: each line or row as an activity, or why it is skipped.

Pure: the caller hands in parsed lines (NDJSON) or records (CSV) and gets
rows back; it fetches and stores elsewhere (``services/backfill.py``).

An activity names its contact by identifiers, its ``name`` and when it
``occurred_at``; optionally an ``id`` (a second activity with the same id
and time is stored once, so a file may be loaded again) and ``properties``.

* NDJSON: one JSON object per line, ``{"name", "occurred_at", "id"?,
  "properties"?: {…}, "identifiers"?: {"email": …}}``; ``identifiers`` may
  name any kind, and ``email``, ``mobile``, ``anonid`` and the account's
  primary kinds may also be top-level fields (``"email": …``), as an
  activity export with the ``identifiers`` field writes them. A byte order
  mark before the first line is ignored; ``"properties": null`` is none.
* CSV: a header row; columns ``name``, ``occurred_at``, ``id`` and those
  named by an identifier kind mean what they do in NDJSON, every other
  column is a property (text, empty cells left out).

``occurred_at`` is ISO 8601 (without an offset it is UTC) or, in NDJSON, a
number of Unix seconds (milliseconds from 10^11 on).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from eventyard.core.contact_import import RowError, RowTally
from eventyard.core.errors import EventyardError
from eventyard.core.identifiers import (
    ANONID,
    EMAIL,
    MOBILE,
    canonical_kind,
    is_identifier_kind,
    normalize_value,
)

#: The longest activity name the schema holds.
MAX_NAME_LENGTH = 255
#: The longest ``id``.
MAX_ID_LENGTH = 200
#: From here on a numeric ``occurred_at`` counts milliseconds (10^11 s is the year 5138).
MILLISECONDS_FROM = 10**11
#: Columns with a meaning of their own in a CSV file.
RESERVED = ("name", "occurred_at", "id")


@dataclass(frozen=True, slots=True)
class BackfillRow:
    """A good line or row: its number in the file and the activity it holds."""

    number: int
    identifiers: tuple[tuple[str, str], ...]
    name: str
    occurred_at: datetime
    properties: dict[str, Any]
    activity_id: str | None = None


@dataclass
class BackfillTally(RowTally):
    """Counts of a backfill so far; every line is stored, a repeat, or failed.

    ``rows_done`` is the number of the last line or row whose outcome is
    committed: a backfill started again with ``--after-row`` goes on after it.
    """

    stored: int = 0
    repeated: int = 0
    contacts_created: int = 0
    rows_done: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "stored": self.stored,
            "repeated": self.repeated,
            "failed": self.failed,
            "contacts_created": self.contacts_created,
            "errors": list(self.errors),
            "rows_done": self.rows_done,
        }


def identifier_kinds(primary_kinds: Sequence[str]) -> dict[str, str]:
    """The identifier kinds a file may name as fields of their own, by lower-case name:
    ``email``, ``mobile``, ``anonid`` (anonymous history) and the account's primary kinds."""
    return {kind.lower(): kind for kind in (EMAIL, MOBILE, ANONID, *primary_kinds)}


def parse_occurred_at(value: Any) -> datetime:
    """``occurred_at`` as an aware UTC datetime; ``ValueError`` says what is wrong."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("must be an ISO 8601 date-time or a number of Unix seconds")
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{value[:60]!r} is not an ISO 8601 date-time") from None
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise ValueError(f"{value[:60]!r} is out of range") from None
    seconds = value / 1000 if abs(value) >= MILLISECONDS_FROM else value
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"{value} is out of range") from None


def build_row(
    number: int,
    name: Any,
    occurred_at: Any,
    activity_id: Any,
    raw_identifiers: Sequence[tuple[str, Any]],
    properties: dict[str, Any],
) -> BackfillRow | RowError:
    """The activity of line ``number`` from its parts, or why it is skipped."""
    if not isinstance(name, str) or not name.strip():
        return RowError(number, "name is missing or empty")
    if len(name) > MAX_NAME_LENGTH:
        return RowError(number, f"name is longer than {MAX_NAME_LENGTH} characters")
    if occurred_at is None or occurred_at == "":
        return RowError(number, "occurred_at is missing")
    try:
        moment = parse_occurred_at(occurred_at)
    except ValueError as exc:
        return RowError(number, f"occurred_at {exc}")
    if activity_id is not None and activity_id != "":
        if isinstance(activity_id, bool) or not isinstance(activity_id, str | int):
            return RowError(number, "id must be a string or an integer")
        activity_id = str(activity_id)
        if len(activity_id) > MAX_ID_LENGTH:
            return RowError(number, f"id is longer than {MAX_ID_LENGTH} characters")
    else:
        activity_id = None
    identifiers: dict[tuple[str, str], None] = {}
    for kind, raw in raw_identifiers:
        if raw is None or raw == "":
            continue
        if not isinstance(raw, str | int) or isinstance(raw, bool):
            return RowError(number, f"{kind} must be a string")
        try:
            identifiers[(kind, normalize_value(kind, str(raw)))] = None
        except ValueError as exc:
            return RowError(number, f"{kind} {str(raw)[:100]!r} {exc}")
    if not identifiers:
        return RowError(number, "no identifier: name the contact by email, mobile or another kind")
    return BackfillRow(number, tuple(identifiers), name, moment, properties, activity_id)


def read_json_lines(
    lines: Iterator[bytes], primary_kinds: Sequence[str]
) -> Iterator[BackfillRow | RowError]:
    """Each non-blank line of an NDJSON file (numbered from 1) as an activity."""
    kinds = identifier_kinds(primary_kinds)
    for number, line in enumerate(lines, start=1):
        if number == 1:
            line = line.removeprefix(b"\xef\xbb\xbf")
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield RowError(number, f"is not JSON: {exc}")
            continue
        if not isinstance(doc, dict):
            yield RowError(number, "is not a JSON object")
            continue
        nested = doc.get("identifiers")
        if nested is not None and not isinstance(nested, dict):
            yield RowError(number, "identifiers must be an object of kind: value")
            continue
        raw = [(kinds[key.lower()], value) for key, value in doc.items() if key.lower() in kinds]
        unknown = [key for key in nested or {} if not is_identifier_kind(canonical_kind(key))]
        if unknown:
            yield RowError(number, f"identifiers.{unknown[0][:40]} is no identifier kind")
            continue
        raw.extend((canonical_kind(key), value) for key, value in (nested or {}).items())
        properties = doc.get("properties") or {}
        if not isinstance(properties, dict):
            yield RowError(number, "properties must be an object")
            continue
        yield build_row(
            number, doc.get("name"), doc.get("occurred_at"), doc.get("id"), raw, properties
        )


def read_csv_activities(
    records: Iterator[list[str]], primary_kinds: Sequence[str]
) -> Iterator[BackfillRow | RowError]:
    """Each data row of a CSV file (the header is row 1) as an activity."""
    header = next(records, None)
    if header is None:
        raise EventyardError("invalid_csv", "the file is empty: it has no header row")
    kinds = identifier_kinds(primary_kinds)
    names = [cell.strip() for cell in header]
    lowered = [name.lower() for name in names]
    for required in ("name", "occurred_at"):
        if required not in lowered:
            raise EventyardError("invalid_csv", f"the header row has no {required} column")
    idents = [(i, canonical_kind(kinds[n])) for i, n in enumerate(lowered) if n in kinds]
    if not idents:
        wanted = ", ".join(sorted(set(kinds.values())))
        raise EventyardError(
            "invalid_csv", f"the header row has no identifier column; name one of: {wanted}"
        )
    taken = {i for i, _ in idents} | {lowered.index(r) for r in RESERVED if r in lowered}
    props = [(i, names[i]) for i in range(len(names)) if i not in taken and names[i]]
    at = {r: lowered.index(r) for r in RESERVED if r in lowered}
    width = len(header)
    for number, cells in enumerate(records, start=2):
        if not cells:
            continue
        if len(cells) != width:
            yield RowError(number, f"has {len(cells)} fields where the header has {width}")
            continue
        yield build_row(
            number,
            cells[at["name"]],
            cells[at["occurred_at"]],
            cells[at["id"]] if "id" in at else None,
            [(kind, cells[i].strip()) for i, kind in idents],
            {name: cells[i] for i, name in props if cells[i] != ""},
        )
