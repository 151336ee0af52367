"""Opaque keyset cursors for newest-first activity pages."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson


def encode_cursor(occurred_at: datetime, activity_id: str) -> str:
    """A cursor that continues after the activity ``(occurred_at, activity_id)``."""
    raw = orjson.dumps([occurred_at.isoformat(), activity_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Inverse of :func:`encode_cursor`; ``ValueError`` when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, activity_id = orjson.loads(raw)
        moment = datetime.fromisoformat(when)
        if moment.tzinfo is None or not isinstance(activity_id, str):
            raise ValueError
        # Outside the representable range in UTC (a crafted cursor): refused here.
        moment = moment.astimezone(UTC)
    except (ValueError, TypeError, OverflowError, orjson.JSONDecodeError) as exc:
        raise ValueError("cursor is not one this API returned") from exc
    return moment, activity_id
