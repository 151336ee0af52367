"""Admission: which records the account's rules let in, decided before they are stored.

The event-type registry's limits (CleverTap), declared activity definitions
(Ortto), a daily limit per contact and activity name, and Cordial's type
recognition, which keeps values of another type but marks them unsearchable.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from eventyard.core.commands import Record
from eventyard.core.definitions import (
    DefinitionSpec,
    check_attributes,
    definition_from_attributes,
)
from eventyard.core.errors import EventyardError
from eventyard.core.model import (
    Account,
    EventTypeLimits,
    NewActivity,
    RecordRejection,
)
from eventyard.core.registry import admit_event_types, mistyped, property_types
from eventyard.services.ports import UnitOfWork

#: The window of ``IngestRules.daily_limit``.
DAILY_WINDOW = timedelta(hours=24)


def admit_to_registry(
    uow: UnitOfWork,
    account: Account,
    records: Sequence[Record],
    limits: EventTypeLimits,
    now: datetime,
) -> list[RecordRejection]:
    """Register the batch's event types and keys within ``limits``; refuse what exceeds them.

    Batches that only use known types and keys take no lock. One that adds
    something takes the account's registry turn and decides again on what
    is registered then, so concurrent batches never overshoot a limit.
    """
    usage = [
        (index, r.name, list(r.properties))
        for index, r in enumerate(records)
        if isinstance(r, NewActivity)
    ]
    if not usage:
        return []
    names = [name for _, name, _ in usage]
    admission = admit_event_types(usage, uow.event_types.load(account.id, names), limits)
    if admission.changes_registry:
        uow.event_types.take_registry_turn(account.id)
        admission = admit_event_types(usage, uow.event_types.load(account.id, names), limits)
        uow.event_types.add(account.id, admission.new_types, admission.new_properties, now)
    return admission.rejections


def admit_to_definitions(
    uow: UnitOfWork,
    account: Account,
    records: Sequence[Record],
    rejected: dict[int, RecordRejection],
    now: datetime,
) -> list[RecordRejection]:
    """Refuse activities without a definition, or with fields their definition lacks.

    An account that allows it gets a definition created from the first
    activity that uses an unknown id (concurrent first uses agree on one).
    """
    activities = [
        (index, r)
        for index, r in enumerate(records)
        if isinstance(r, NewActivity) and index not in rejected
    ]
    if not activities:
        return []
    names = {r.name for _, r in activities}
    known = uow.definitions.get_many(account.id, names)
    missing = names - set(known)
    unfit: dict[str, str] = {}
    if missing and account.auto_create_definitions:
        specs: dict[str, DefinitionSpec] = {}
        # First uses that cannot become a definition (more than 100 attributes).
        for _, r in activities:
            if r.name not in missing or r.name in specs or r.name in unfit:
                continue
            try:
                specs[r.name] = definition_from_attributes(r.name, r.properties)
            except EventyardError as exc:
                unfit[r.name] = exc.message
        uow.definitions.add_missing(account.id, list(specs.values()), now)
        known = uow.definitions.get_many(account.id, names)
    rejections = []
    for index, record in activities:
        if record.name not in known and record.name in unfit:
            rejections.append(
                RecordRejection(
                    index,
                    "undefined_activity",
                    f"activity_id {record.name!r} has no activity definition and this "
                    f"activity cannot create one: {unfit[record.name]}",
                )
            )
            continue
        definition = known.get(record.name)
        if definition is None:
            rejections.append(
                RecordRejection(
                    index,
                    "undefined_activity",
                    f"activity_id {record.name!r} has no activity definition; create it first",
                )
            )
            continue
        problems = check_attributes(definition, list(record.properties))
        if problems:
            field_id, reason = problems[0]
            rejections.append(RecordRejection(index, "undefined_field", f"{field_id}: {reason}"))
    return rejections


def enforce_daily_limit(
    uow: UnitOfWork,
    account: Account,
    records: Sequence[Record],
    owner_of: dict[int, str],
    limit: int,
    now: datetime,
) -> list[RecordRejection]:
    """Refuse activities beyond ``limit`` per name per contact in the last 24 hours.

    The contacts are locked by now, so concurrent batches for one contact
    count one after the other and never overshoot together.
    """
    activities = [
        (index, owner, records[index])
        for index, owner in owner_of.items()
        if isinstance(records[index], NewActivity)
    ]
    if not activities:
        return []
    counts = uow.activities.count_received_since(
        account.id,
        {owner for _, owner, _ in activities},
        {cast(NewActivity, record).name for _, _, record in activities},
        now - DAILY_WINDOW,
    )
    rejections = []
    for index, owner, record in activities:
        name = cast(NewActivity, record).name
        seen = counts.get((owner, name), 0)
        if seen >= limit:
            rejections.append(
                RecordRejection(
                    index,
                    "daily_limit",
                    f"contact {owner} already has {limit} {name!r} activities in the last "
                    "24 hours, the most allowed",
                )
            )
            continue
        counts[(owner, name)] = seen + 1
    return rejections


def flag_unsearchable(
    uow: UnitOfWork, account: Account, rows: list[dict[str, Any]], now: datetime
) -> None:
    """Recognise the rows' property types and mark values of another type unsearchable."""
    usage: dict[str, dict[str, str]] = {}
    for row in rows:
        seen = usage.setdefault(row["name"], {})
        for key, kind in property_types(row["properties"]).items():
            seen.setdefault(key, kind)
    recognised = uow.event_types.recognize_types(account.id, usage, now)
    for row in rows:
        row["unsearchable"] = mistyped(row["properties"], recognised[row["name"]]) or None
