"""Right to erasure: remove a person's rows and every mention of them, in one transaction."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Text, cast, delete, func, or_, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement, TextClause

from eventyard.core.erasure import drop_queued_records, scrub
from eventyard.core.model import Erasure
from eventyard.storage.sql_dialect import in_values, supports_row_locks
from eventyard.storage.tables import (
    activities,
    contact_groups,
    contact_identifiers,
    contacts,
    erasures,
    idempotency_keys,
    identity_events,
    ingest_rejections,
    jobs,
    list_members,
)

#: The job kind whose payload holds queued records (services.ingest.INGEST_JOB).
_INGEST_JOB = "ingest.records"


def _json_text(value: str) -> str:
    """How ``value`` appears inside stored JSON text (quotes and control characters escaped)."""
    return orjson.dumps(value).decode()[1:-1]


class ErasureRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def person(self, account_id: str, contact_id: str) -> list[str]:
        """The contact's canonical id first, then every contact merged into it."""
        c = contacts.c
        ids = [contact_id]
        ids += self.conn.execute(
            select(c.id).where(c.account_id == account_id, c.merged_into == contact_id)
        ).scalars()
        return ids

    def erase(
        self,
        account_id: str,
        contact_ids: Sequence[str],
        *,
        erasure_id: str,
        requested_via: str,
        now: datetime,
        removed_elsewhere: dict[str, int] | None = None,
    ) -> Erasure:
        """Delete the person's rows, clean every mention of them, and record the erasure.

        The audit row keeps the ids (eventyard's own random ids) and counts,
        never an identifier, attribute or property.
        """
        sqlite = self.conn.dialect.name == "sqlite"
        if sqlite:
            # Deleted rows are overwritten with zeros instead of lingering in
            # free pages of the database file until reused.
            self.conn.exec_driver_sql("PRAGMA secure_delete = ON")
        try:
            removed = self._erase(account_id, contact_ids)
        finally:
            if sqlite:
                self.conn.exec_driver_sql("PRAGMA secure_delete = OFF")
        removed.update(removed_elsewhere or {})
        record = Erasure(
            id=erasure_id,
            account_id=account_id,
            contact_ids=tuple(contact_ids),
            requested_via=requested_via,
            removed=removed,
            erased_at=now,
        )
        self.conn.execute(
            erasures.insert().values(
                id=record.id,
                account_id=account_id,
                contact_ids=list(record.contact_ids),
                requested_via=requested_via,
                removed=removed,
                erased_at=now,
            )
        )
        return record

    def _erase(self, account_id: str, ids: Sequence[str]) -> dict[str, int]:
        c, ci = contacts.c, contact_identifiers.c
        locking = select(c.id).where(c.account_id == account_id, in_values(self.conn, c.id, ids))
        if supports_row_locks(self.conn):
            # Ingest that resolves to this person waits until the erasure commits.
            locking = locking.with_for_update()
        self.conn.execute(locking).all()
        identifiers = [
            (row.kind, row.value)
            for row in self.conn.execute(
                select(ci.kind, ci.value).where(
                    ci.account_id == account_id, in_values(self.conn, ci.contact_id, ids)
                )
            )
        ]
        values = sorted({value for _, value in identifiers}, key=len, reverse=True)
        removed = {
            "contacts": len(ids),
            "identifiers": len(identifiers),
            "activities": self._delete(activities, account_id, ids),
            "list_memberships": self._delete(list_members, account_id, ids),
            "groups": self._delete(contact_groups, account_id, ids),
            "identity_events": self._delete(identity_events, account_id, ids),
        }
        removed["identity_events_cleaned"] = self._clean_other_identity_events(
            account_id, ids, identifiers, values
        )
        removed["stored_responses_cleaned"] = self._clean_stored_responses(account_id, values)
        removed["rejections_cleaned"] = self._clean_rejections(account_id, values)
        queued, jobs_cleaned = self._clean_jobs(account_id, ids, identifiers, values)
        removed["queued_records"] = queued
        removed["jobs_cleaned"] = jobs_cleaned
        self.conn.execute(
            delete(contact_identifiers).where(
                ci.account_id == account_id, in_values(self.conn, ci.contact_id, ids)
            )
        )
        self.conn.execute(
            delete(contacts).where(c.account_id == account_id, in_values(self.conn, c.id, ids))
        )
        return removed

    def _delete(self, table: Any, account_id: str, ids: Sequence[str]) -> int:
        result = self.conn.execute(
            delete(table).where(
                table.c.account_id == account_id, in_values(self.conn, table.c.contact_id, ids)
            )
        )
        return int(result.rowcount)

    def _mentioning(self, column: Any, needles: Collection[str]) -> ColumnElement[bool]:
        """``column``'s JSON text contains one of ``needles`` (a cheap first filter)."""
        text = cast(column, Text)
        return or_(*(text.contains(_json_text(n), autoescape=True) for n in needles))

    def _clean_other_identity_events(
        self,
        account_id: str,
        ids: Sequence[str],
        identifiers: Collection[tuple[str, str]],
        values: Collection[str],
    ) -> int:
        """Identity events of other contacts that name the person (a conflict, say)."""
        ie = identity_events.c
        conditions = [self._mentioning(ie.other_contact_ids, ids)]
        if values:
            conditions += [
                self._mentioning(ie.identifiers, values),
                self._mentioning(ie.details, values),
            ]
        rows = self.conn.execute(
            select(ie.id, ie.identifiers, ie.details).where(
                ie.account_id == account_id, or_(*conditions)
            )
        ).all()
        erased = set(identifiers)
        for row in rows:
            kept = [pair for pair in row.identifiers if _identifier_pair(pair) not in erased]
            kept, _ = scrub(kept, values)
            details, _ = scrub(row.details, values)
            self.conn.execute(
                update(identity_events)
                .where(ie.id == row.id)
                .values(identifiers=kept, details=details)
            )
        return len(rows)

    def _clean_stored_responses(self, account_id: str, values: Collection[str]) -> int:
        """Idempotent replays keep their status and shape, without the person's values."""
        if not values:
            return 0
        k = idempotency_keys.c
        needles = [_json_text(v).encode() for v in values]
        matches: list[ColumnElement[bool] | TextClause]
        if self.conn.dialect.name == "postgresql":
            matches = [
                text(f"position(:needle_{i} in idempotency_keys.body) > 0").bindparams(
                    **{f"needle_{i}": needle}
                )
                for i, needle in enumerate(needles)
            ]
        else:
            matches = [func.instr(k.body, needle) > 0 for needle in needles]
        rows = self.conn.execute(
            select(k.key, k.body).where(k.account_id == account_id, or_(*matches))
        ).all()
        for row in rows:
            body = bytes(row.body)
            for needle in needles:
                body = body.replace(needle, b"[erased]")
            self.conn.execute(
                update(idempotency_keys)
                .where(k.account_id == account_id, k.key == row.key)
                .values(body=body)
            )
        return len(rows)

    def _clean_rejections(self, account_id: str, values: Collection[str]) -> int:
        if not values:
            return 0
        r = ingest_rejections.c
        rows = self.conn.execute(
            select(r.id, r.errors).where(
                r.account_id == account_id, self._mentioning(r.errors, values)
            )
        ).all()
        for row in rows:
            errors, _ = scrub(row.errors, values)
            self.conn.execute(update(ingest_rejections).where(r.id == row.id).values(errors=errors))
        return len(rows)

    def _clean_jobs(
        self,
        account_id: str,
        ids: Sequence[str],
        identifiers: Collection[tuple[str, str]],
        values: Collection[str],
    ) -> tuple[int, int]:
        """Queued records of the person go; other mentions in jobs are blanked.

        Returns (records dropped from queued batches, jobs changed).
        """
        j = jobs.c
        needles = [*values, *ids]
        conditions = [self._mentioning(j.payload, needles), self._mentioning(j.progress, needles)]
        if values:
            conditions.append(self._mentioning(j.result, values))
            conditions += [j.error.contains(v, autoescape=True) for v in values]
        rows = self.conn.execute(
            select(j.id, j.kind, j.payload, j.progress, j.result, j.error).where(
                j.account_id == account_id, or_(*conditions)
            )
        ).all()
        dropped = 0
        for row in rows:
            payload = row.payload
            if row.kind == _INGEST_JOB:
                payload, n = drop_queued_records(payload, ids, identifiers)
                dropped += n
            payload, _ = scrub(payload, values)
            progress, _ = scrub(row.progress, values)
            result, _ = scrub(row.result, values)
            error, _ = scrub(row.error, values)
            self.conn.execute(
                update(jobs)
                .where(j.id == row.id)
                .values(payload=payload, progress=progress, result=result, error=error)
            )
        return dropped, len(rows)

    def list(self, account_id: str, limit: int) -> list[Erasure]:
        e = erasures.c
        rows = self.conn.execute(
            select(erasures)
            .where(e.account_id == account_id)
            .order_by(e.erased_at.desc(), e.id.desc())
            .limit(limit)
        )
        return [
            Erasure(
                id=row.id,
                account_id=row.account_id,
                contact_ids=tuple(row.contact_ids),
                requested_via=row.requested_via,
                removed=dict(row.removed),
                erased_at=row.erased_at,
            )
            for row in rows
        ]

    def erased_since(self, account_id: str, since: datetime) -> set[str]:
        """Ids of contacts erased at or after ``since`` (a running export leaves them out)."""
        e = erasures.c
        rows = self.conn.execute(
            select(e.contact_ids).where(e.account_id == account_id, e.erased_at >= since)
        ).scalars()
        return {contact_id for ids in rows for contact_id in ids}


def _identifier_pair(entry: Any) -> tuple[Any, ...]:
    """``(kind, value)`` of an identity event's identifier: ``{"kind", "value"}`` as
    identity resolution writes it, or a ``[kind, value]`` pair."""
    if isinstance(entry, dict):
        return (entry.get("kind"), entry.get("value"))
    return tuple(entry[:2])
