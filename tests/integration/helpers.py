"""What the storage-level integration tests share: activities to ingest, and the stored result.

They call the ingest service directly, at a fixed ``NOW``, and read the
tables back, so a test checks what was stored, not only what was answered.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
from sqlalchemy import Column, Engine, Table, event, func, select

from eventyard.core.identifiers import normalize_identifier
from eventyard.core.model import Account, IngestOutcome, NewActivity, StoredResponse
from eventyard.dialects.registry import create_account
from eventyard.services.ingest import IdempotencyRequest, ingest_activities
from eventyard.storage.database import Database
from eventyard.storage.tables import activities, contacts, identity_events

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def activity(name: str, *, dedup_key: str | None = None, **identifiers: str) -> NewActivity:
    """A minute-old activity naming ``identifiers`` (kind=raw value), normalised as dialects do."""
    return NewActivity(
        identifiers=tuple(normalize_identifier(k, v) for k, v in identifiers.items()),
        name=name,
        occurred_at=NOW - timedelta(minutes=1),
        source="web",
        dialect="netcore",
        properties={},
        dedup_key=dedup_key,
    )


def respond_with_contact_ids(outcome: IngestOutcome) -> StoredResponse:
    """A response holding the contact each activity went to, in order."""
    return StoredResponse(200, orjson.dumps({"contact_ids": outcome.contact_ids}))


def ingest(
    store: Database,
    account: Account,
    batch: Sequence[NewActivity],
    idempotency: IdempotencyRequest | None = None,
) -> StoredResponse:
    """Ingest one batch at ``NOW``; read the contacts it went to with ``contact_ids``."""
    return ingest_activities(
        store,
        account,
        batch,
        now=NOW,
        respond=respond_with_contact_ids,
        idempotency=idempotency,
    )


def contact_ids(response: StoredResponse) -> list[str]:
    ids: list[str] = orjson.loads(response.body)["contact_ids"]
    return ids


def new_account(store: Database, prefix: str, settings: dict[str, Any] | None = None) -> Account:
    """An account of its own named ``<prefix>-<random>``: tenants are isolated."""
    return create_account(store, f"{prefix}-{uuid.uuid4().hex[:8]}", settings).account


def count(store: Database, table: Table, account: Account) -> int:
    """The account's rows in ``table``."""
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(table).where(table.c.account_id == account.id)
            ).scalar_one()
        )


def contact_rows(store: Database, account: Account) -> list[Any]:
    """Every contact of the account, merged ones included, by id."""
    with store.engine.connect() as conn:
        return list(
            conn.execute(
                select(contacts.c.id, contacts.c.status, contacts.c.merged_into)
                .where(contacts.c.account_id == account.id)
                .order_by(contacts.c.id)
            )
        )


def activity_owners(store: Database, account: Account) -> list[str]:
    """The contact id of every stored activity of the account."""
    return column_of(store, account, activities.c.contact_id)


def stored_names(store: Database, account: Account) -> list[str]:
    """The names of the account's stored activities, sorted."""
    return sorted(column_of(store, account, activities.c.name))


def audit_kinds(store: Database, account: Account) -> list[str]:
    """The kinds of the account's identity audit entries, oldest first."""
    return column_of(
        store, account, identity_events.c.kind, identity_events.c.created_at, identity_events.c.id
    )


def column_of(
    store: Database, account: Account, column: Column[Any], *order_by: Column[Any]
) -> list[Any]:
    """``column`` of the account's rows in the column's table, in ``order_by`` order if given."""
    query = select(column).where(column.table.c.account_id == account.id).order_by(*order_by)
    with store.engine.connect() as conn:
        return list(conn.execute(query).scalars())


@contextmanager
def counting_statements(engine: Engine) -> Iterator[list[str]]:
    """Every statement sent to the database; an executemany counts once.

    PostgreSQL ``COPY`` goes straight to psycopg, past SQLAlchemy's events, so
    while counting, pooled PostgreSQL connections hand out a cursor that also
    records each ``COPY`` it starts. It changes nothing else.
    """
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    listeners: list[tuple[str, Any]] = [("before_cursor_execute", record)]
    if engine.dialect.name == "postgresql":

        class CopyRecordingCursor(psycopg.Cursor[Any]):
            def copy(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
                statements.append(str(statement))
                return super().copy(statement, *args, **kwargs)

        factories: dict[int, Any] = {}

        def on_checkout(dbapi_connection: Any, *_args: Any) -> None:
            factories[id(dbapi_connection)] = dbapi_connection.cursor_factory
            dbapi_connection.cursor_factory = CopyRecordingCursor

        def on_checkin(dbapi_connection: Any, *_args: Any) -> None:
            if id(dbapi_connection) in factories:
                dbapi_connection.cursor_factory = factories.pop(id(dbapi_connection))

        listeners += [("checkout", on_checkout), ("checkin", on_checkin)]
    for name, fn in listeners:
        event.listen(engine, name, fn)
    try:
        yield statements
    finally:
        for name, fn in listeners:
            event.remove(engine, name, fn)
