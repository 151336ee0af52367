from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, bindparam, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from eventyard.core.errors import ConcurrentUpdate
from eventyard.core.identifiers import Identifier, sort_key
from eventyard.core.identity import ContactRef, IdentityEvent, ResolutionPlan
from eventyard.core.identity_operations import merge_attributes
from eventyard.core.ids import new_id
from eventyard.core.model import Contact
from eventyard.storage.repositories.identity_operations import fold_contact
from eventyard.storage.set_resolution import (
    BulkResolution,
    lock_new_identifiers,
    start_bulk_resolution,
)
from eventyard.storage.sql_dialect import (
    in_values,
    insert_ignoring_conflicts,
    insert_rows,
    supports_row_locks,
    unnest_rows,
)
from eventyard.storage.tables import (
    contact_identifiers,
    contacts,
    identity_events,
)
from eventyard.storage.types import UTCDateTime


class ContactRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def find_owners(
        self, account_id: str, identifiers: Iterable[Identifier]
    ) -> dict[Identifier, ContactRef]:
        """Owners of the given identifiers, in one query for the whole batch."""
        wanted = sorted(set(identifiers), key=sort_key)
        if not wanted:
            return {}
        ci = contact_identifiers.c
        query = select(ci.kind, ci.value, ci.contact_id, contacts.c.status).join(
            contacts, contacts.c.id == ci.contact_id
        )
        if self.conn.dialect.name == "postgresql":
            pairs = unnest_rows(
                "wanted", {"kind": [i.kind for i in wanted], "value": [i.value for i in wanted]}
            )
            query = query.join(pairs, and_(ci.kind == pairs.c.kind, ci.value == pairs.c.value))
            query = query.where(ci.account_id == account_id)
        else:
            by_kind: dict[str, list[str]] = defaultdict(list)
            for ident in wanted:
                by_kind[ident.kind].append(ident.value)
            query = query.where(
                ci.account_id == account_id,
                or_(*(and_(ci.kind == k, ci.value.in_(v)) for k, v in by_kind.items())),
            )
        # Unpacking a row costs far less than reading its columns by name.
        return {
            Identifier(kind, value): ContactRef(contact_id, status)
            for kind, value, contact_id, status in self.conn.execute(query)
        }

    def start_bulk_resolution(
        self, account_id: str, batch: Sequence[Sequence[Identifier]]
    ) -> BulkResolution | None:
        """Stage and classify a batch for set-based resolution, or ``None`` for the planner.

        PostgreSQL only (storage/set_resolution.py); SQLite answers ``None``:
        its planner path is already fast and its writers take turns anyway.
        """
        if self.conn.dialect.name != "postgresql":
            return None
        raw = self.conn.connection.driver_connection
        assert raw is not None
        return start_bulk_resolution(raw, account_id, batch)

    def live_contacts(self, account_id: str, contact_ids: Iterable[str]) -> dict[str, ContactRef]:
        """For each id of this account, the contact that now stands for it (one query).

        A merged contact stands for the contact that absorbed it; unknown ids
        and other accounts' ids are left out.
        """
        wanted = sorted(set(contact_ids))
        if not wanted:
            return {}
        survivor = contacts.alias("survivor")
        rows = self.conn.execute(
            select(contacts.c.id, contacts.c.status, survivor.c.id, survivor.c.status)
            .outerjoin(survivor, survivor.c.id == contacts.c.merged_into)
            .where(
                contacts.c.account_id == account_id,
                in_values(self.conn, contacts.c.id, wanted),
            )
        ).all()
        return {
            asked: ContactRef(merged_id, merged_status) if merged_id else ContactRef(asked, status)
            for asked, status, merged_id, merged_status in rows
        }

    def attributes_of(
        self, account_id: str, contact_ids: Iterable[str]
    ) -> dict[str, dict[str, Any]]:
        """The attributes of each live contact (rows locked by the caller)."""
        ids = sorted(set(contact_ids))
        if not ids:
            return {}
        return dict(
            self.conn.execute(
                select(contacts.c.id, contacts.c.attributes).where(
                    contacts.c.account_id == account_id, in_values(self.conn, contacts.c.id, ids)
                )
            ).all()
        )

    def set_attributes(
        self, account_id: str, attributes: dict[str, dict[str, Any]], now: datetime
    ) -> None:
        """Replace each contact's attributes, one statement for all."""
        if not attributes:
            return
        self.conn.execute(
            update(contacts)
            .where(contacts.c.account_id == account_id, contacts.c.id == bindparam("contact_id"))
            .values(attributes=bindparam("new_attributes"), updated_at=now),
            [{"contact_id": cid, "new_attributes": attributes[cid]} for cid in sorted(attributes)],
        )

    def apply_resolution(
        self,
        account_id: str,
        plan: ResolutionPlan,
        now: datetime,
        also_lock: Iterable[str] = (),
    ) -> None:
        """Write a plan with set-based statements; ``ConcurrentUpdate`` if it lost a race.

        ``also_lock``: existing contacts the caller changes afterwards in the
        same transaction (attributes), locked together with the plan's own in
        one sorted pass so that writers never lock in different orders.
        """
        if plan.new_identifiers and self.conn.dialect.name == "postgresql":
            # Before any row lock, as the set-based path does: same order, no deadlock.
            raw = self.conn.connection.driver_connection
            assert raw is not None
            with raw.cursor() as cursor:
                lock_new_identifiers(cursor, account_id, sorted(plan.new_identifiers, key=sort_key))
        self._lock_live(
            plan.touched_existing | (set(also_lock) - set(plan.new_contacts)), plan.assumed
        )
        insert_rows(
            self.conn,
            contacts,
            [
                {
                    "id": cid,
                    "account_id": account_id,
                    "status": status,
                    "attributes": {},
                    "merged_into": None,
                    "created_at": now,
                    "updated_at": now,
                }
                for cid, status in plan.new_contacts.items()
            ],
        )
        if plan.new_identifiers:
            inserted = self._insert_identifiers(account_id, plan.new_identifiers, now)
            if inserted != len(plan.new_identifiers):
                raise ConcurrentUpdate()
        snapshots = {
            source: self._merge(account_id, source, target, now)
            for source, target in plan.merges.items()
        }
        changed = set(plan.conversions) | set(plan.merges.values())
        changed |= {c for c in plan.new_identifiers.values() if c not in plan.new_contacts}
        if plan.conversions:
            self.conn.execute(
                update(contacts)
                .where(in_values(self.conn, contacts.c.id, sorted(plan.conversions)))
                .values(status="known")
            )
        if changed:
            self.conn.execute(
                update(contacts)
                .where(in_values(self.conn, contacts.c.id, sorted(changed)))
                .values(updated_at=now)
            )
        insert_rows(
            self.conn,
            identity_events,
            [
                {
                    "id": new_id(),
                    "account_id": account_id,
                    "kind": event.kind,
                    "contact_id": event.contact_id,
                    "other_contact_ids": list(event.other_contact_ids),
                    "identifiers": [{"kind": i.kind, "value": i.value} for i in event.identifiers],
                    "details": _with_snapshot(event, snapshots),
                    "created_at": now,
                }
                for event in plan.audit
            ],
        )

    def _insert_identifiers(
        self, account_id: str, owners: dict[Identifier, str], now: datetime
    ) -> int:
        """Insert identifiers nobody owns yet; returns how many this transaction got.

        Sorted, so concurrent writers take the index locks in the same order.
        Fewer than asked means another transaction took some first.
        """
        ci = contact_identifiers.c
        ordered = sorted(owners.items(), key=lambda item: sort_key(item[0]))
        if self.conn.dialect.name == "postgresql":
            rows = unnest_rows(
                "new_identifiers",
                {
                    "kind": [i.kind for i, _ in ordered],
                    "value": [i.value for i, _ in ordered],
                    "contact_id": [c for _, c in ordered],
                },
            )
            stmt = (
                postgresql.insert(contact_identifiers)
                .from_select(
                    ["account_id", "kind", "value", "contact_id", "created_at"],
                    select(
                        literal(account_id, String()),
                        rows.c.kind,
                        rows.c.value,
                        rows.c.contact_id,
                        literal(now, UTCDateTime()),
                    ).order_by(rows.c.kind, rows.c.value),
                )
                .on_conflict_do_nothing()
                .returning(ci.kind)
            )
            return len(self.conn.execute(stmt).all())
        stmt = insert_ignoring_conflicts(self.conn, contact_identifiers).returning(ci.kind)
        params = [
            {
                "account_id": account_id,
                "kind": i.kind,
                "value": i.value,
                "contact_id": c,
                "created_at": now,
            }
            for i, c in ordered
        ]
        return len(self.conn.execute(stmt, params).all())

    def share_identity_operations(self, account_id: str) -> None:
        """Hold, to the end of the transaction, a share of the account's identity
        operations lock: a merge, revert or split waits for this transaction and
        this one waits for it (``hold_identity_operations``).

        Taken first by every writer that resolves identifiers, so that what it
        reads afterwards includes the operation's result: an event arriving
        during a merge lands on the contact that owns its identifier after it.
        One statement per batch on PostgreSQL; SQLite's writers take turns anyway.
        """
        if supports_row_locks(self.conn):
            self.conn.execute(
                select(func.pg_advisory_xact_lock_shared(_operations_key(account_id)))
            )

    def hold_identity_operations(self, account_id: str) -> None:
        """Wait for the account's writers in flight, then keep new ones out to the
        end of the transaction (an identity operation: merge, revert, split)."""
        if supports_row_locks(self.conn):
            self.conn.execute(select(func.pg_advisory_xact_lock(_operations_key(account_id))))

    def take_identity_turn(self, account_id: str) -> None:
        """Wait until no other transaction holds the account's identity turn, then hold it.

        PostgreSQL: a transaction-level advisory lock, released at commit or
        rollback. SQLite needs nothing: its writers already take turns.
        """
        if supports_row_locks(self.conn):
            key = int.from_bytes(
                hashlib.sha256(account_id.encode()).digest()[:8], "big", signed=True
            )
            self.conn.execute(select(func.pg_advisory_xact_lock(key)))

    def _lock_live(self, contact_ids: set[str], assumed: Mapping[str, str]) -> None:
        """Lock the existing contacts a plan changes; ``ConcurrentUpdate`` if one changed.

        Changed means merged away, or with another status than the plan
        assumed (an anonymous contact converted by a concurrent writer must
        not then be merged as if it were still anonymous).
        """
        if not contact_ids:
            return
        query = (
            select(contacts.c.id, contacts.c.status)
            .where(
                in_values(self.conn, contacts.c.id, sorted(contact_ids)),
                contacts.c.merged_into.is_(None),
            )
            .order_by(contacts.c.id)
        )
        if supports_row_locks(self.conn):
            query = query.with_for_update()
        live = dict(self.conn.execute(query).all())
        if set(live) != contact_ids or any(
            cid in assumed and assumed[cid] != status for cid, status in live.items()
        ):
            raise ConcurrentUpdate()

    def _merge(self, account_id: str, source: str, target: str, now: datetime) -> dict[str, Any]:
        """Fold the anonymous contact ``source`` into ``target`` (rare: a few statements);
        the snapshot that reverting the merge restores.

        Identifiers, activities and memberships move; attributes the target
        lacks are taken from the source (the target's own values win).
        """
        attributes = self.attributes_of(account_id, [source, target])
        after = merge_attributes(attributes.get(target, {}), attributes.get(source, {}))
        return fold_contact(self.conn, account_id, source, target, after, now)

    def find_by_identifier(self, account_id: str, identifier: Identifier) -> list[Contact]:
        ci = contact_identifiers.c
        contact_id = self.conn.execute(
            select(ci.contact_id).where(
                ci.account_id == account_id,
                ci.kind == identifier.kind,
                ci.value == identifier.value,
            )
        ).scalar_one_or_none()
        if contact_id is None:
            return []
        contact = self.get(account_id, contact_id)
        return [] if contact is None else [contact]

    def identifiers_of(
        self, account_id: str, contact_ids: Iterable[str]
    ) -> dict[str, tuple[str, list[Identifier]]]:
        """For each contact id, the contact that now stands for it and its identifiers.

        Two queries for any number of ids; unknown ids are left out.
        """
        live = self.live_contacts(account_id, contact_ids)
        owners = sorted({ref.id for ref in live.values()})
        if not owners:
            return {}
        ci = contact_identifiers.c
        found: dict[str, list[Identifier]] = defaultdict(list)
        rows = self.conn.execute(
            select(ci.contact_id, ci.kind, ci.value)
            .where(ci.account_id == account_id, in_values(self.conn, ci.contact_id, owners))
            .order_by(ci.contact_id, ci.created_at, ci.kind)
        ).all()
        for contact_id, kind, value in rows:
            found[contact_id].append(Identifier(kind, value))
        return {cid: (ref.id, found.get(ref.id, [])) for cid, ref in live.items()}

    def get(self, account_id: str, contact_id: str) -> Contact | None:
        """The contact, following a merge to the contact that absorbed it."""
        row = self.conn.execute(
            select(contacts).where(contacts.c.account_id == account_id, contacts.c.id == contact_id)
        ).first()
        if row is not None and row.merged_into is not None:
            row = self.conn.execute(
                select(contacts).where(
                    contacts.c.account_id == account_id, contacts.c.id == row.merged_into
                )
            ).first()
        if row is None:
            return None
        idents = self.conn.execute(
            select(contact_identifiers.c.kind, contact_identifiers.c.value)
            .where(contact_identifiers.c.contact_id == row.id)
            .order_by(contact_identifiers.c.created_at, contact_identifiers.c.kind)
        )
        return Contact(
            id=row.id,
            status=row.status,
            identifiers=tuple(Identifier(r.kind, r.value) for r in idents),
            attributes=row.attributes,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    def identity_events(self, account_id: str, contact_id: str) -> list[dict[str, Any]]:
        ie = identity_events.c
        rows = self.conn.execute(
            select(identity_events)
            .where(ie.account_id == account_id, ie.contact_id == contact_id)
            .order_by(ie.created_at, ie.id)
        )
        return [
            {
                "id": r.id,
                "kind": r.kind,
                "contact_id": r.contact_id,
                "other_contact_ids": r.other_contact_ids,
                "identifiers": r.identifiers,
                "details": r.details,
                "created_at": r.created_at,
            }
            for r in rows
        ]


def _operations_key(account_id: str) -> int:
    """The advisory lock key of the account's identity operations (not its identity turn)."""
    digest = hashlib.sha256(b"identity-operations:" + account_id.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _with_snapshot(event: IdentityEvent, snapshots: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """A merge's details carry what it moved (for a revert); other events' as planned."""
    if event.kind != "merged" or not event.other_contact_ids:
        return event.details
    snapshot = snapshots.get(event.other_contact_ids[0])
    return event.details if snapshot is None else {**event.details, "snapshot": snapshot}
