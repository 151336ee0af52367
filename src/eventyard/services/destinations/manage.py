"""The destinations API's use cases: create, read, change, delete, replay, dead letters."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from eventyard.core.delivery import DestinationFormat
from eventyard.core.destinations import (
    DeadLetter,
    Destination,
    DestinationStats,
    parse_filter,
)
from eventyard.core.errors import EventyardError, FieldError, NotFound
from eventyard.core.ids import is_id, new_id
from eventyard.core.model import Account
from eventyard.core.timestamps import format_utc
from eventyard.services.destinations.replay import REPLAY_JOB
from eventyard.services.destinations.sealing import CredentialSealer
from eventyard.services.jobs import enqueue
from eventyard.services.ports import Store, UnitOfWork
from eventyard.services.sources import SourceRefused, check_url
from eventyard.settings import Settings

MAX_NAME_LENGTH = 200
MAX_URL_LENGTH = 2000
MAX_DEAD_LETTER_PAGE = 1000
#: The fields ``PATCH`` may change.
CHANGEABLE = ("name", "url", "credentials", "filter", "enabled")


def _invalid(field: str, reason: str) -> EventyardError:
    """The 422 for a bad field of a destination request, naming it."""
    return EventyardError("invalid_destination", reason, 422, errors=[FieldError(field, reason)])


def _name(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME_LENGTH:
        raise _invalid("name", f"name must be a non-empty string of at most {MAX_NAME_LENGTH}")
    return value.strip()


def _url(value: object, settings: Settings) -> str:
    if not isinstance(value, str) or len(value) > MAX_URL_LENGTH:
        raise _invalid("url", f"url must be a string of at most {MAX_URL_LENGTH} characters")
    try:
        check_url(value, settings, what="url")
    except SourceRefused as exc:
        raise _invalid("url", str(exc)) from exc
    return value.rstrip("/")


def _credentials(value: object, form: DestinationFormat) -> dict[str, str]:
    """Exactly the kind's credential fields, and any of its optional ones: non-empty strings."""
    fields, optional = form.credential_fields, form.optional_credential_fields
    expected = ", ".join(fields) + "".join(f", {name}?" for name in optional)
    if not isinstance(value, dict):
        raise _invalid(
            "credentials", f"credentials of a {form.kind} destination are {{{expected}}}"
        )
    unknown = sorted(set(value) - set(fields) - set(optional))
    if unknown:
        raise _invalid(f"credentials.{unknown[0]}", f"a {form.kind} destination has {expected}")
    for name in (*fields, *(n for n in optional if n in value)):
        given = value.get(name)
        if not isinstance(given, str) or not given:
            raise _invalid(f"credentials.{name}", f"credentials.{name} must be a non-empty string")
    return {name: value[name] for name in (*fields, *optional) if name in value}


def _filter(value: object) -> dict[str, list[str]]:
    try:
        return parse_filter(value)
    except ValueError as exc:
        raise _invalid("filter", str(exc)) from exc


def _moment(value: object, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise _invalid(
            field, f"{field} must be an ISO 8601 time with its offset (2026-01-31T00:00:00Z)"
        )
    return moment.astimezone(UTC)


def _format(formats: Mapping[str, DestinationFormat], kind: object) -> DestinationFormat:
    if not isinstance(kind, str) or kind not in formats:
        raise _invalid("kind", f"kind must be one of {', '.join(sorted(formats))}")
    return formats[kind]


def _body(body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _invalid("request", "the body must be a JSON object")
    return body


def create_destination(
    store: Store,
    sealer: CredentialSealer,
    formats: Mapping[str, DestinationFormat],
    settings: Settings,
    account: Account,
    body: object,
    now: datetime,
) -> tuple[Destination, str | None]:
    """Create a destination; with ``backfill_from``, also the job that queues its history.

    Activities stored from the commit on are queued for it by ingest; the
    backfill queues those that occurred from ``backfill_from`` and were
    received before it, so none is sent twice.
    """
    body = _body(body)
    unknown = sorted(set(body) - {"name", "kind", "url", "credentials", "filter", "backfill_from"})
    if unknown:
        raise _invalid(unknown[0], f"unknown field {unknown[0]!r}")
    form = _format(formats, body.get("kind"))
    name = _name(body.get("name"))
    url = _url(body.get("url"), settings)
    credentials = _credentials(body.get("credentials"), form)
    route_filter = _filter(body.get("filter"))
    backfill_from = body.get("backfill_from")
    start = None if backfill_from is None else _moment(backfill_from, "backfill_from")
    destination_id = new_id()
    sealed = sealer.seal(credentials)
    job_id = None
    with store.unit_of_work() as uow:
        uow.destinations.add(
            {
                "account_id": account.id,
                "id": destination_id,
                "name": name,
                "kind": form.kind,
                "url": url,
                "credentials": sealed,
                "filter": route_filter,
                "enabled": True,
                "created_at": now,
                "updated_at": now,
            }
        )
        if start is not None:
            job_id = _enqueue_replay(
                uow, account.id, destination_id, now, start=start, end=now, received_before=now
            )
        uow.commit()
        created = uow.destinations.get(account.id, destination_id)
    assert created is not None
    return created, job_id


def _enqueue_replay(
    uow: UnitOfWork,
    account_id: str,
    destination_id: str,
    now: datetime,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    received_before: datetime | None = None,
    dead_letters: bool = False,
) -> str:
    return enqueue(
        uow,
        account_id=account_id,
        kind=REPLAY_JOB,
        payload={
            "destination_id": destination_id,
            "from": None if start is None else format_utc(start),
            "to": None if end is None else format_utc(end),
            "received_before": None if received_before is None else format_utc(received_before),
            "dead_letters": dead_letters,
        },
        queue=f"destination-replay:{destination_id}",
        now=now,
    )


def list_destinations(store: Store, account_id: str) -> list[Destination]:
    with store.unit_of_work(write=False) as uow:
        return uow.destinations.of_account(account_id)


def _get(uow: UnitOfWork, account_id: str, destination_id: str) -> Destination:
    found = uow.destinations.get(account_id, destination_id) if is_id(destination_id) else None
    if found is None:
        raise NotFound("No such destination")
    return found


def get_destination(
    store: Store, account_id: str, destination_id: str
) -> tuple[Destination, DestinationStats]:
    """The destination and its figures; ``NotFound`` for another account's."""
    with store.unit_of_work(write=False) as uow:
        found = (
            uow.destinations.with_stats(account_id, destination_id)
            if is_id(destination_id)
            else None
        )
    if found is None:
        raise NotFound("No such destination")
    return found


def update_destination(
    store: Store,
    sealer: CredentialSealer,
    formats: Mapping[str, DestinationFormat],
    settings: Settings,
    account: Account,
    destination_id: str,
    body: object,
    now: datetime,
) -> Destination:
    """Change ``name``, ``url``, ``credentials``, ``filter`` or ``enabled`` (false pauses)."""
    body = _body(body)
    unknown = sorted(set(body) - set(CHANGEABLE))
    if unknown:
        raise _invalid(unknown[0], f"{unknown[0]!r} cannot be changed; PATCH takes {CHANGEABLE}")
    with store.unit_of_work(write=False) as uow:
        current = _get(uow, account.id, destination_id)
    values: dict[str, Any] = {"updated_at": now}
    if "name" in body:
        values["name"] = _name(body["name"])
    if "url" in body:
        values["url"] = _url(body["url"], settings)
    if "credentials" in body:
        form = _format(formats, current.kind)
        values["credentials"] = sealer.seal(_credentials(body["credentials"], form))
    if "filter" in body:
        values["filter"] = _filter(body["filter"])
    if "enabled" in body:
        if not isinstance(body["enabled"], bool):
            raise _invalid("enabled", "enabled must be true or false")
        values["enabled"] = body["enabled"]
    with store.unit_of_work() as uow:
        if not uow.destinations.update(account.id, destination_id, values):
            raise NotFound("No such destination")
        uow.commit()
        changed = uow.destinations.get(account.id, destination_id)
    assert changed is not None
    return changed


def delete_destination(store: Store, account_id: str, destination_id: str) -> None:
    """Remove it with whatever it still had to deliver and its dead letters."""
    with store.unit_of_work() as uow:
        _get(uow, account_id, destination_id)
        uow.destinations.delete(account_id, destination_id)
        uow.commit()


def replay_destination(
    store: Store, account: Account, destination_id: str, body: object, now: datetime
) -> str:
    """Enqueue the job that queues history (``from``..``to``) or the dead letters again."""
    body = _body(body)
    dead_letters = body.get("dead_letters", False)
    if not isinstance(dead_letters, bool):
        raise _invalid("dead_letters", "dead_letters must be true or false")
    start = end = None
    if not dead_letters or "from" in body:
        start = _moment(body.get("from"), "from")
        end = now if body.get("to") is None else _moment(body.get("to"), "to")
        if end <= start:
            raise _invalid("to", "to must be later than from")
    with store.unit_of_work() as uow:
        _get(uow, account.id, destination_id)
        job_id = _enqueue_replay(
            uow, account.id, destination_id, now, start=start, end=end, dead_letters=dead_letters
        )
        uow.commit()
    return job_id


def list_dead_letters(
    store: Store, account_id: str, destination_id: str, limit: int, after: str | None
) -> list[DeadLetter]:
    if not 1 <= limit <= MAX_DEAD_LETTER_PAGE:
        raise _invalid("limit", f"limit must be between 1 and {MAX_DEAD_LETTER_PAGE}")
    with store.unit_of_work(write=False) as uow:
        _get(uow, account_id, destination_id)
        return uow.destinations.dead_letters(account_id, destination_id, limit, after)


def destination_document(
    destination: Destination, stats: DestinationStats | None, now: datetime
) -> dict[str, Any]:
    """A destination as the API shows it: never its credentials."""
    body: dict[str, Any] = {
        "id": destination.id,
        "name": destination.name,
        "kind": destination.kind,
        "url": destination.url,
        "filter": dict(destination.filter),
        "enabled": destination.enabled,
        "created_at": format_utc(destination.created_at),
        "updated_at": format_utc(destination.updated_at),
        "delivered": destination.delivered,
        "failed_attempts": destination.failed_attempts,
        "last_delivery_at": None
        if destination.last_delivery_at is None
        else format_utc(destination.last_delivery_at),
        "last_error": destination.last_error,
    }
    if stats is not None:
        oldest = stats.oldest_pending_at
        body.update(
            pending=stats.pending,
            dead=stats.dead,
            lag_seconds=0.0 if oldest is None else max((now - oldest).total_seconds(), 0.0),
        )
    return body


def dead_letter_document(letter: DeadLetter) -> dict[str, Any]:
    return {
        "activity_id": letter.activity_id,
        "status": letter.status,
        "reason": letter.reason,
        "answer": letter.answer,
        "dead_at": format_utc(letter.dead_at),
    }
