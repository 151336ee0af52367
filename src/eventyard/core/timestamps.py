"""How eventyard prints a moment: ISO 8601 in UTC with a ``Z``.

One formatter for every API, page, export and dialect (dialects reach it
through ``dialects.toolkit.timestamps``, next to the one ISO 8601 reader).
"""

from __future__ import annotations

from datetime import UTC, datetime


def format_utc(moment: datetime) -> str:
    """``2016-07-12T11:17:48Z``: ``moment`` in UTC, ``+00:00`` written as ``Z``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
