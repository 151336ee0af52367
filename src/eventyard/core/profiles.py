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
    is part of: ``create_only`` sets attributes on such a contact only. The
    operations (see :data:`MergeStrategy`) work key by key:

    - ``unset``: the key is removed (its value in ``patch`` is not read);
    - ``increment``: a number is added to a stored number; a stored value
      that is missing or no number is replaced by the number;
    - ``append``/``prepend``: the value (each item of a list value) is added
      at the end / the start of the stored list; a missing or null value
      counts as an empty list, any other stored value as a list of itself;
    - ``append_missing``/``prepend_missing``: the same, for the items the
      list does not hold yet;
    - ``remove``: every occurrence of the items is taken out of a stored
      list; a stored value that is not a list, or none, is left as it is.
    - ``clear``: every attribute is removed (``patch`` is not read).

    A ``patch`` value that the operation cannot use (``increment`` by a non-number)
    leaves its key as it is.
    """
    if strategy == "overwrite" or (strategy == "create_only" and created):
        return {**current, **patch}
    if strategy == "fill_empty":
        merged = dict(current)
        for key, value in patch.items():
            if is_empty(merged.get(key)):
                merged[key] = value
        return merged
    if strategy == "create_only":
        return current
    if strategy == "clear":
        return {}
    merged = dict(current)
    for key, value in patch.items():
        if strategy == "unset":
            merged.pop(key, None)
        elif strategy == "increment":
            if _is_number(value):
                stored = merged.get(key)
                merged[key] = stored + value if _is_number(stored) else value
        elif strategy == "remove" and key not in merged:
            continue  # nothing to remove from: the attribute is not made
        else:
            merged[key] = _list_operation(strategy, merged.get(key), value)
    return merged


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _list_operation(strategy: MergeStrategy, stored: Any, value: Any) -> Any:
    items = value if isinstance(value, list) else [value]
    if stored is None:
        current: list[Any] = []
    elif isinstance(stored, list):
        current = stored
    elif strategy == "remove":
        return stored
    else:
        current = [stored]
    if strategy == "remove":
        return [item for item in current if item not in items]
    if strategy in ("append_missing", "prepend_missing"):
        fresh: list[Any] = []
        for item in items:
            if item not in current and item not in fresh:
                fresh.append(item)
        items = fresh
    if strategy in ("prepend", "prepend_missing"):
        return [*items, *current]
    return [*current, *items]
