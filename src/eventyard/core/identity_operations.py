"""Identity operations a person asks for: merge two contacts, revert a merge, split a contact.

The rules:

* **merge** ``other`` into ``survivor`` (both may be known: a person
  decided): every identifier, activity, list and group membership of
  ``other`` goes to the survivor; attributes are combined key by key, the
  survivor's values winning unless ``prefer="other"``
  (:func:`merge_attributes`); in a group both belong to, the survivor's
  traits win. ``other`` keeps its id, marked merged into the survivor.
* **revert** a merge (made by hand or by identity resolution): the merged
  contact comes back with its id, the identifiers it held (those the
  survivor still holds), the activities resolved through them (provenance,
  including those that arrived after the merge), its memberships and its
  attributes as they were at the merge. The survivor loses the list and
  group memberships it gained through the merge, and each attribute (or
  group trait) the merge changed goes back to its value before the merge
  *unless it changed again since*: a later write wins (:func:`undo_changes`).
  A merge is reverted at most once; only a merge can be reverted; a merge
  whose survivor was merged into another contact since is reverted after
  that later merge.
* **split** names identifiers of one contact: they, and the activities
  resolved through them, move to a new contact; nothing else moves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from eventyard.core.errors import EventyardError, FieldError
from eventyard.core.identifiers import Identifier, parse_identifier_query

Prefer = Literal["survivor", "other"]

#: Stands for "no value" in a change: the key was absent.
_ABSENT = object()


@dataclass(frozen=True, slots=True)
class MergePreview:
    """What merging ``other`` into ``survivor`` moves (a dry run's answer)."""

    survivor_id: str
    other_id: str
    identifiers: int
    activities: int
    lists: int
    groups: int
    #: ``key -> (survivor's value before, value after)``; ``None`` stands for absent.
    attributes: dict[str, tuple[Any, Any]] = field(default_factory=dict)


def public_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """An identity event as people see it: a merge's snapshot stays inside, and
    ``revertible`` says whether the merge can still be reverted."""
    details = event["details"]
    return {
        **event,
        "details": {k: v for k, v in details.items() if k != "snapshot"},
        "revertible": event["kind"] == "merged"
        and "snapshot" in details
        and "reverted_by" not in details,
    }


def merge_attributes(
    survivor: Mapping[str, Any], other: Mapping[str, Any], prefer: Prefer = "survivor"
) -> dict[str, Any]:
    """The survivor's attributes after the merge: the union, the preferred side winning."""
    if prefer == "other":
        return {**survivor, **other}
    return {**other, **survivor}


def changed_attributes(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> dict[str, tuple[Any, Any]]:
    """``key -> (before, after)`` for every key whose value the change set, altered or removed."""
    changed: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key, _ABSENT), after.get(key, _ABSENT)
        if old is _ABSENT or new is _ABSENT or old != new:
            changed[key] = (
                None if old is _ABSENT else old,
                None if new is _ABSENT else new,
            )
    return changed


def undo_changes(
    before: Mapping[str, Any], after: Mapping[str, Any], current: Mapping[str, Any]
) -> dict[str, Any]:
    """``current`` with the change ``before -> after`` undone where nothing changed it since.

    For each key the change touched: when its current value (or absence)
    is still the one the change left, it goes back to ``before`` (removed
    if it was absent); otherwise a later write set it and it stays.
    """
    undone = dict(current)
    for key in set(before) | set(after):
        old, new = before.get(key, _ABSENT), after.get(key, _ABSENT)
        if old is not _ABSENT and new is not _ABSENT and old == new:
            continue
        now = current.get(key, _ABSENT)
        if (now is _ABSENT and new is _ABSENT) or (now is not _ABSENT and now == new):
            if old is _ABSENT:
                undone.pop(key, None)
            else:
                undone[key] = old
    return undone


def parse_prefer(value: Any) -> Prefer:
    if value is None or value == "survivor":
        return "survivor"
    if value == "other":
        return "other"
    raise EventyardError(
        "invalid_prefer",
        'prefer must be "other" (or left out: the survivor\'s values win)',
        422,
        errors=[FieldError("prefer", 'must be "other" or "survivor"')],
    )


def parse_split_identifiers(values: Any) -> list[Identifier]:
    """``["KIND:VALUE", ...]`` as identifiers (normalised); 422 naming the bad entry."""
    if not isinstance(values, list) or not values:
        raise EventyardError(
            "invalid_identifiers",
            'identifiers must be a non-empty list of "KIND:VALUE" strings',
            422,
            errors=[FieldError("identifiers", "must be a non-empty list")],
        )
    parsed: list[Identifier] = []
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise _bad_identifier(index, 'must be a "KIND:VALUE" string')
        try:
            parsed.append(parse_identifier_query(value))
        except ValueError as exc:
            raise _bad_identifier(index, f"identifier {exc}") from exc
    return list(dict.fromkeys(parsed))


def _bad_identifier(index: int, message: str) -> EventyardError:
    return EventyardError(
        "invalid_identifiers",
        f"identifiers[{index}] {message}",
        422,
        errors=[FieldError(f"identifiers[{index}]", message)],
    )


def check_split(held: Sequence[Identifier], named: Sequence[Identifier]) -> None:
    """A split names identifiers the contact holds, and leaves it at least one."""
    owned = set(held)
    for index, ident in enumerate(named):
        if ident not in owned:
            raise EventyardError(
                "not_an_identifier_of_contact",
                f"identifiers[{index}] ({ident}) is not an identifier of this contact",
                422,
                errors=[
                    FieldError(f"identifiers[{index}]", "is not an identifier of this contact")
                ],
            )
    if owned <= set(named):
        raise EventyardError(
            "split_takes_everything",
            "A split must leave the contact at least one identifier",
            422,
            errors=[FieldError("identifiers", "names every identifier of the contact")],
        )
