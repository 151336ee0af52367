"""The one error type of eventyard; each dialect renders it in its own shape."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one field of one record of a request.

    ``index`` is the record's position in the request (``None`` for a
    request-level problem); ``field`` is a dotted path inside the record.
    """

    field: str
    reason: str
    index: int | None = None


@dataclass(eq=False)
class EventyardError(Exception):
    """An expected failure: always rendered as a 4xx, never a 500."""

    code: str
    message: str
    status: int = 400
    errors: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    #: How many records the refused request held, when the refusal is about
    #: a batch whose size is known (the console counts rejected records).
    records: int | None = None

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class Unauthorized(EventyardError):
    def __init__(self, message: str = "Invalid credentials") -> None:
        super().__init__("unauthorized", message, 401)


class NotFound(EventyardError):
    def __init__(self, message: str = "Not found") -> None:
        super().__init__("not_found", message, 404)


class IdempotencyConflict(EventyardError):
    def __init__(self) -> None:
        super().__init__(
            "idempotency_key_reused",
            "This Idempotency-Key was already used with a different request body",
            409,
        )


class StoreUnavailable(EventyardError):
    """The database cannot be reached; nothing was acknowledged."""

    def __init__(self, retry_after_seconds: int = 5) -> None:
        super().__init__(
            "store_unavailable",
            "The database is unavailable; retry later",
            503,
            headers={"Retry-After": str(retry_after_seconds)},
        )


class ConcurrentUpdate(Exception):
    """Another transaction changed the contacts a plan was based on; plan again."""
