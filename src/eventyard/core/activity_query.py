"""Searching an account's activities: filters, order and keyset continuation.

One query model serves every listing of activities across contacts (Cordial
``GET /v2/contactactivities``, its exports): the filters are a conjunction,
the order is ``(occurred_at, id)`` ascending or descending, and a listing
continues after the last ``(occurred_at, id)`` it returned, so pages stay
stable while new activities arrive.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from eventyard.core.identifiers import Identifier


@dataclass(frozen=True, slots=True)
class TimeBound:
    moment: datetime
    inclusive: bool


@dataclass(frozen=True, slots=True)
class ActivityQuery:
    """Which activities of an account to list, and in which order."""

    #: Activity names to keep (any of them); empty keeps every name.
    names: tuple[str, ...] = ()
    #: Keep the activities of the contact these identifiers name (all must
    #: name the same contact); empty keeps every contact.
    identifiers: tuple[Identifier, ...] = ()
    #: A contact id (the contact's own id, or what it was merged into).
    contact_id: str | None = None
    lower: TimeBound | None = None
    upper: TimeBound | None = None
    descending: bool = True
    #: Continue after this ``(occurred_at, id)`` in the query's order.
    after: tuple[datetime, str] | None = None
    #: Records to skip first (page-number paging); keyset paging uses ``after``.
    offset: int = 0

    def continued_after(self, occurred_at: datetime, activity_id: str) -> ActivityQuery:
        return replace(self, after=(occurred_at, activity_id), offset=0)

    @property
    def empty_range(self) -> bool:
        """True when the time bounds exclude every moment (nothing can match)."""
        if self.lower is None or self.upper is None:
            return False
        if self.lower.moment < self.upper.moment:
            return False
        same = self.lower.moment == self.upper.moment
        return not (same and self.lower.inclusive and self.upper.inclusive)


def encode_query_token(query: ActivityQuery) -> str:
    """An opaque token that carries the query's filters and continuation."""
    doc: dict[str, Any] = {"d": query.descending}
    if query.names:
        doc["n"] = list(query.names)
    if query.identifiers:
        doc["i"] = [[i.kind, i.value] for i in query.identifiers]
    if query.contact_id is not None:
        doc["c"] = query.contact_id
    for key, bound in (("l", query.lower), ("u", query.upper)):
        if bound is not None:
            doc[key] = [bound.moment.isoformat(), bound.inclusive]
    if query.after is not None:
        doc["a"] = [query.after[0].isoformat(), query.after[1]]
    raw = orjson.dumps(doc)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_query_token(token: str) -> ActivityQuery:
    """Inverse of :func:`encode_query_token`; ``ValueError`` when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        doc = orjson.loads(raw)
        if not isinstance(doc, dict) or not isinstance(doc.get("d"), bool):
            raise ValueError
        names = tuple(_strings(doc.get("n", [])))
        identifiers = tuple(
            Identifier(kind, value)
            for kind, value in (_pair(item) for item in _list(doc.get("i", [])))
        )
        contact_id = doc.get("c")
        if contact_id is not None and not isinstance(contact_id, str):
            raise ValueError
        bounds: list[TimeBound | None] = []
        for key in ("l", "u"):
            item = doc.get(key)
            if item is None:
                bounds.append(None)
                continue
            moment, inclusive = _list(item)
            if not isinstance(inclusive, bool):
                raise ValueError
            bounds.append(TimeBound(_moment(moment), inclusive))
        after = None
        if "a" in doc:
            moment, activity_id = _pair(doc["a"])
            after = (_moment(moment), activity_id)
        return ActivityQuery(
            names=names,
            identifiers=identifiers,
            contact_id=contact_id,
            lower=bounds[0],
            upper=bounds[1],
            descending=doc["d"],
            after=after,
        )
    except (ValueError, TypeError, OverflowError, orjson.JSONDecodeError) as exc:
        raise ValueError("is not a paging token this API returned") from exc


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError
    return value


def _strings(value: Any) -> list[str]:
    items = _list(value)
    if not all(isinstance(item, str) for item in items):
        raise ValueError
    return items


def _pair(value: Any) -> tuple[str, str]:
    items = _strings(value)
    if len(items) != 2:
        raise ValueError
    return items[0], items[1]


def _moment(text: Any) -> datetime:
    if not isinstance(text, str):
        raise ValueError
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError
    return moment.astimezone(UTC)
