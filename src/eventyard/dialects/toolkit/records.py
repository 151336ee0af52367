"""One collector for the problems of the records of a request.

Every batch dialect reports a bad record the same way: its index in the
request, the path of the field at fault (``timestamp``,
``evtData.Items.0.name``) and a message; CleverTap also gives each problem a
numeric code. A dialect renders them in its vendor's shape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from eventyard.core.errors import FieldError

#: ``fail(field, message)``: report a problem of the record being translated.
Fail = Callable[[str, str], None]


@dataclass(frozen=True, slots=True)
class RecordError:
    """One problem with one record: its index in the request, a field path, why."""

    index: int
    field: str
    message: str
    #: A dialect's own number for the kind of problem (CleverTap's ``code``).
    code: int | None = None


@dataclass(slots=True)
class RecordErrors:
    """The problems of a request's records, in the order they were found."""

    items: list[RecordError] = field(default_factory=list)

    def add(self, index: int, field: str, message: str, code: int | None = None) -> None:
        self.items.append(RecordError(index, field, message, code))

    def reporter(self, index: int) -> Fail:
        """``fail(field, message)`` for the record at ``index``."""

        def fail(field: str, message: str) -> None:
            self.items.append(RecordError(index, field, message))

        return fail

    def indexes(self) -> set[int]:
        """The indexes of the records that have at least one problem."""
        return {error.index for error in self.items}

    def field_errors(self) -> list[FieldError]:
        """The problems as the canonical error type renders them (``FieldError``)."""
        return [FieldError(error.field, error.message, error.index) for error in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[RecordError]:
        return iter(self.items)
