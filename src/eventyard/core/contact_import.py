"""Contact CSV files: the header, each row, and what an import reports.

Pure: the caller hands in text and gets identifiers and attributes back; it
fetches, decodes and stores elsewhere (``services/imports.py``). Decisions
the Netcore bulk upload spec leaves open are in ``docs/dialects/netcore.md``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventyard.core.errors import EventyardError
from eventyard.core.identifiers import (
    EMAIL,
    MOBILE,
    Identifier,
    canonical_kind,
    is_identifier_kind,
    normalize_value,
)

#: The delimiters a file may use; the header line decides which.
DELIMITERS = (",", ";", "\t")
#: Bad rows listed by number in a job's report; the rest are only counted.
MAX_REPORTED_ERRORS = 100
#: Longest header line looked at to pick the delimiter.
MAX_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class ImportColumns:
    """What each column of a file is: an identifier kind, or an attribute name."""

    width: int
    identifiers: tuple[tuple[int, str], ...]
    attributes: tuple[tuple[int, str], ...]

    @property
    def identifier_names(self) -> list[str]:
        return [kind for _, kind in self.identifiers]


@dataclass(frozen=True, slots=True)
class ImportRow:
    """A good row: its number in the file (the header is row 1) and what it sets."""

    number: int
    identifiers: tuple[Identifier, ...]
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RowError:
    """A row skipped, and why."""

    number: int
    reason: str


@dataclass
class RowTally:
    """What every load of a file counts: its rows, the failed ones, the first errors."""

    total: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def fail(self, error: RowError) -> None:
        self.total += 1
        self.failed += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"row": error.number, "reason": error.reason})


@dataclass
class ImportTally(RowTally):
    """Counts of an import so far; every data row is created, updated or failed.

    ``rows_done`` is the number of the last row whose outcome is committed: an
    import taken over by another worker goes on after it.
    """

    created: int = 0
    updated: int = 0
    rows_done: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "created": self.created,
            "updated": self.updated,
            "failed": self.failed,
            "errors": list(self.errors),
            "rows_done": self.rows_done,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ImportTally:
        return cls(
            total=int(doc.get("total", 0)),
            created=int(doc.get("created", 0)),
            updated=int(doc.get("updated", 0)),
            failed=int(doc.get("failed", 0)),
            errors=list(doc.get("errors", [])),
            rows_done=int(doc.get("rows_done", 1)),
        )


def sniff_delimiter(header_line: str) -> str:
    """The delimiter among ``,`` ``;`` and tab that the header line uses most (``,`` on a tie).

    Only characters outside double quotes count, so a quoted ``"Last, First"``
    header does not vote for the comma.
    """
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in header_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def map_columns(header: Sequence[str], primary_kinds: Sequence[str]) -> ImportColumns:
    """The header row as columns; an ``EventyardError`` when the file cannot be imported.

    Columns named ``email``, ``mobile`` or one of the account's primary
    identifier kinds (any case: ``EMAIL``, ``Mobile``, ``identity``) hold
    identifiers; every other named column is an attribute, named as written.
    A column with an empty name is ignored.
    """
    by_lower = {kind.lower(): kind for kind in (EMAIL, MOBILE, *primary_kinds)}
    identifiers: list[tuple[int, str]] = []
    attributes: list[tuple[int, str]] = []
    seen: set[str] = set()
    for index, raw in enumerate(header):
        name = raw.strip()
        if not name:
            continue
        if name.lower() in seen:
            raise EventyardError("invalid_csv", f"the header names the column {name!r} twice")
        seen.add(name.lower())
        kind = by_lower.get(name.lower())
        if kind is not None and is_identifier_kind(canonical_kind(kind)):
            identifiers.append((index, canonical_kind(kind)))
        else:
            attributes.append((index, name))
    if not identifiers:
        wanted = ", ".join(sorted(set(by_lower.values())))
        raise EventyardError(
            "invalid_csv",
            f"the header row has no identifier column; name one of: {wanted}",
        )
    return ImportColumns(len(header), tuple(identifiers), tuple(attributes))


def read_row(number: int, cells: Sequence[str], columns: ImportColumns) -> ImportRow | RowError:
    """One data row as identifiers and attributes, or why it is skipped.

    Empty cells set nothing (the contact keeps what it had); at least one
    identifier cell must be filled and every filled one must be valid.
    """
    if len(cells) != columns.width:
        return RowError(number, f"has {len(cells)} fields where the header has {columns.width}")
    identifiers: list[Identifier] = []
    for index, kind in columns.identifiers:
        value = cells[index].strip()
        if not value:
            continue
        try:
            identifiers.append(Identifier(kind, normalize_value(kind, value)))
        except ValueError as exc:
            return RowError(number, f"{kind} {value[:100]!r} {exc}")
    if not identifiers:
        return RowError(
            number, f"no identifier: {' and '.join(columns.identifier_names)} are empty"
        )
    attributes = {name: cells[index] for index, name in columns.attributes if cells[index] != ""}
    return ImportRow(number, tuple(identifiers), attributes)


def read_rows(
    records: Iterator[list[str]], primary_kinds: Sequence[str]
) -> Iterator[ImportRow | RowError]:
    """Every data row of a parsed file (``records``: the csv module's lists), header first."""
    header = next(records, None)
    if header is None:
        raise EventyardError("invalid_csv", "the file is empty: it has no header row")
    columns = map_columns(header, primary_kinds)
    for number, cells in enumerate(records, start=2):
        if cells:  # a blank line is no row at all
            yield read_row(number, cells, columns)
