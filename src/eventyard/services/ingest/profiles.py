"""Profile updates: a contact's attributes changed by its records, in order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from eventyard.core.model import (
    Account,
    ProfileUpdate,
)
from eventyard.core.profiles import apply_update
from eventyard.services.ports import UnitOfWork


def apply_profile_updates(
    uow: UnitOfWork,
    account: Account,
    updates: Sequence[tuple[str, ProfileUpdate]],
    created: set[str],
    now: datetime,
) -> None:
    """Apply each update to its contact in order, following its merge strategy."""
    if not updates:
        return
    current = uow.contacts.attributes_of(account.id, {owner for owner, _ in updates})
    changed: dict[str, dict[str, Any]] = {}
    for owner, update in updates:
        before = changed.get(owner, current.get(owner))
        if before is None:
            continue  # merged away meanwhile; its survivor was locked instead
        after = apply_update(before, update.attributes, update.strategy, created=owner in created)
        if after is not before:
            changed[owner] = after
    uow.contacts.set_attributes(account.id, changed, now)
