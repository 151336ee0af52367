"""How profile updates change a contact's attributes."""

from __future__ import annotations

from collections.abc import Callable
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
    if strategy in _LIST_OPERATIONS:
        merged = dict(current)
        for key, value in patch.items():
            if strategy == "remove" and key not in merged:
                continue  # nothing to take a value out of
            merged[key] = _LIST_OPERATIONS[strategy](merged.get(key), value)
        return merged
    if strategy == "unset":
        return {key: value for key, value in current.items() if key not in patch}
    if strategy == "clear":
        return {}
    return current


def _increment(current: Any, amount: Any) -> Any:
    """A number plus ``amount``; a missing or non-numeric attribute counts as 0."""
    if not _is_number(current):
        return amount
    return current + amount


def _append(current: Any, value: Any) -> list[Any]:
    """The list with ``value`` at its end; a single value becomes a list holding it."""
    return [*_as_list(current), value]


def _union(current: Any, values: Any) -> list[Any]:
    """The list with each of ``values`` it lacks added at its end, in order."""
    merged = _as_list(current)
    for value in values if isinstance(values, list) else [values]:
        if value not in merged:
            merged.append(value)
    return merged


def _remove(current: Any, value: Any) -> Any:
    """The list without ``value`` (every occurrence); anything else is left as it is."""
    if not isinstance(current, list):
        return current
    return [item for item in current if item != value]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_LIST_OPERATIONS: dict[str, Callable[[Any, Any], Any]] = {
    "increment": _increment,
    "append": _append,
    "union": _union,
    "remove": _remove,
}
