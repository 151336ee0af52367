"""How profile updates change a contact's attributes."""

from __future__ import annotations

from typing import Any

from eventyard.core.model import MergeStrategy


def is_empty(value: Any) -> bool:
    """An attribute a ``fill_empty`` update may set: missing, null or ``""``."""
    return value is None or value == ""


def apply_update(
    current: dict[str, Any],
    patch: dict[str, Any],
    strategy: MergeStrategy,
    *,
    created: bool,
) -> dict[str, Any]:
    """``current`` after ``patch`` (shallow: each key replaces the stored one).

    ``created`` says whether the contact was created by the call this update
    is part of: ``create_only`` sets attributes on such a contact only.
    """
    if strategy == "overwrite" or (strategy == "create_only" and created):
        return {**current, **patch}
    if strategy == "fill_empty":
        merged = dict(current)
        for key, value in patch.items():
            if is_empty(merged.get(key)):
                merged[key] = value
        return merged
    return current
