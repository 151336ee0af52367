"""Declaring, reading and removing an account's activity definitions.

Ortto: "ensure the activity definition exists" before sending activities. The
Ortto dialect checks activities against these definitions while ingesting
(services/ingest/admission.py); this module is what administrators use to manage them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from eventyard.core.definitions import validate_definition
from eventyard.core.errors import EventyardError, NotFound
from eventyard.core.model import Account, ActivityDefinition
from eventyard.services.ports import Store


def create_definition(
    store: Store,
    account: Account,
    activity_id: object,
    name: object,
    fields: object,
    now: datetime | None = None,
) -> ActivityDefinition:
    """Declare a new definition; 400 when it breaks the rules, 409 when its id exists."""
    spec = validate_definition(activity_id, name, fields)
    moment = now or datetime.now(UTC)
    definition = ActivityDefinition(
        activity_id=spec.activity_id,
        name=spec.name,
        fields=spec.fields,
        auto_created=False,
        created_at=moment,
        updated_at=moment,
    )
    with store.unit_of_work() as uow:
        if not uow.definitions.create(account.id, definition):
            raise EventyardError(
                "definition_exists",
                f"activity definition {spec.activity_id} exists already; "
                "replace or delete it instead",
                409,
            )
        uow.commit()
    return definition


def list_definitions(store: Store, account: Account) -> list[ActivityDefinition]:
    """The account's definitions, by activity id."""
    with store.unit_of_work(write=False) as uow:
        return uow.definitions.list(account.id)


def get_definition(store: Store, account: Account, activity_id: str) -> ActivityDefinition:
    """The definition, or ``NotFound`` (also when only another account has it)."""
    with store.unit_of_work(write=False) as uow:
        definition = uow.definitions.get(account.id, activity_id)
    if definition is None:
        raise _not_found(activity_id)
    return definition


def replace_definition(
    store: Store,
    account: Account,
    activity_id: str,
    name: object,
    fields: object,
    now: datetime | None = None,
) -> ActivityDefinition:
    """Give an existing definition a new name and fields; ``NotFound`` when there is none.

    Its ``created_at`` and ``auto_created`` stay: they say how it came to be.
    """
    spec = validate_definition(activity_id, name, fields)
    with store.unit_of_work() as uow:
        current = uow.definitions.get(account.id, spec.activity_id)
        if current is None:
            raise _not_found(activity_id)
        replaced = ActivityDefinition(
            activity_id=spec.activity_id,
            name=spec.name,
            fields=spec.fields,
            auto_created=current.auto_created,
            created_at=current.created_at,
            updated_at=now or datetime.now(UTC),
        )
        if not uow.definitions.replace(account.id, replaced):
            raise _not_found(activity_id)  # deleted in between (PostgreSQL)
        uow.commit()
    return replaced


def delete_definition(store: Store, account: Account, activity_id: str) -> None:
    """Remove a definition; ``NotFound`` when there is none. Stored activities stay."""
    with store.unit_of_work() as uow:
        if not uow.definitions.delete(account.id, activity_id):
            raise _not_found(activity_id)
        uow.commit()


def _not_found(activity_id: str) -> NotFound:
    return NotFound(f"No activity definition {activity_id!r}")
