"""What erasing a contact does to the data that mentions it, without touching storage.

Erasure removes the person's rows outright; these functions clean what only
mentions the person inside other records: a stored response, a rejection's
reason, a queued batch, an identity event of another contact.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

#: What an erased value is replaced with where the record around it stays.
ERASED = "[erased]"


def scrub(value: Any, needles: Collection[str]) -> tuple[Any, int]:
    """``value`` with every occurrence of each needle inside its strings replaced.

    Walks dicts (keys too) and lists; returns the cleaned copy and how many
    strings changed.
    """
    if isinstance(value, str):
        cleaned = value
        for needle in needles:
            if needle and needle in cleaned:
                cleaned = cleaned.replace(needle, ERASED)
        return cleaned, int(cleaned != value)
    if isinstance(value, list):
        changed = 0
        items = []
        for item in value:
            item, n = scrub(item, needles)
            items.append(item)
            changed += n
        return items, changed
    if isinstance(value, dict):
        changed = 0
        entries = {}
        for key, item in value.items():
            key, k = scrub(key, needles)
            item, n = scrub(item, needles)
            entries[key] = item
            changed += k + n
        return entries, changed
    return value, 0


def mentions(value: Any, needles: Collection[str]) -> bool:
    return scrub(value, needles)[1] > 0


def drop_queued_records(
    payload: dict[str, Any], contact_ids: Collection[str], identifiers: Collection[tuple[str, str]]
) -> tuple[dict[str, Any], int]:
    """A queued ingest batch without the records of the erased person.

    A record belongs to the person when it names one of ``identifiers`` or
    points at one of ``contact_ids``. Records grouped with a dropped record
    (an activity and the profile update it carries) are dropped with it, so
    no half of a group is stored later.
    """
    records: list[dict[str, Any]] = list(payload.get("records") or [])
    groups: list[int] | None = payload.get("groups")
    labels: list[str] | None = payload.get("labels")

    def belongs(record: dict[str, Any]) -> bool:
        named = {(str(kind), str(value)) for kind, value in _pairs(record.get("identifiers"))}
        hint = record.get("contact_hint") or {}
        fallback = hint.get("fallback")
        if fallback:
            named.add((str(fallback[0]), str(fallback[1])))
        return bool(named & set(identifiers)) or hint.get("contact_id") in contact_ids

    doomed = {i for i, record in enumerate(records) if belongs(record)}
    if groups is not None:
        doomed_groups = {groups[i] for i in doomed}
        doomed |= {i for i, group in enumerate(groups) if group in doomed_groups}
    if not doomed:
        return payload, 0
    keep = [i for i in range(len(records)) if i not in doomed]
    cleaned = dict(payload)
    cleaned["records"] = [records[i] for i in keep]
    if groups is not None:
        cleaned["groups"] = [groups[i] for i in keep]
    if labels is not None:
        cleaned["labels"] = [labels[i] for i in keep]
    return cleaned, len(doomed)


def _pairs(raw: Any) -> Iterable[tuple[Any, Any]]:
    """Identifiers as a queued record stores them: ``[[kind, value], …]``."""
    return ((item[0], item[1]) for item in raw or () if len(item) == 2)
