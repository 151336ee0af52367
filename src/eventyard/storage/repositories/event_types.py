from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Connection

from eventyard.core.registry import RegistryState
from eventyard.storage.sql_dialect import in_values, insert_ignoring_conflicts, supports_row_locks
from eventyard.storage.tables import event_type_properties, event_types


class KnownTypes:
    """The property types this process saw committed, per account and event name.

    A recognised type never changes (first use wins) and leaves only with
    its account, so a batch whose every property is known here needs no
    statement at all: on PostgreSQL that spares a group commit three round
    trips (14 % of its thread's time in the single-event profile). Only what
    a committed transaction read or wrote is remembered (see
    :meth:`EventTypeRepository.recognize_types`).
    """

    def __init__(self) -> None:
        self._types: dict[tuple[str, str], dict[str, str]] = {}
        self._lock = threading.Lock()

    def look_up(
        self, account_id: str, usage: dict[str, dict[str, str]]
    ) -> dict[str, dict[str, str]] | None:
        """The known type of every property of ``usage``, or ``None`` if one is not known."""
        found: dict[str, dict[str, str]] = {}
        for name, props in usage.items():
            known = self._types.get((account_id, name))
            if known is None:
                return None
            try:
                found[name] = {prop: known[prop] for prop in props}
            except KeyError:
                return None
        return found

    def remember(self, account_id: str, recognised: dict[str, dict[str, str]]) -> None:
        with self._lock:
            for name, props in recognised.items():
                known = dict(self._types.get((account_id, name), {}))
                known.update(props)
                self._types[(account_id, name)] = known


class EventTypeRepository:
    def __init__(
        self,
        conn: Connection,
        known: KnownTypes | None = None,
        after_commit: list[Callable[[], None]] | None = None,
    ) -> None:
        self.conn = conn
        # What this process knows is committed, and what to add to it once
        # this transaction commits (the unit of work runs ``after_commit``).
        self.known = known
        self.after_commit = after_commit

    def load(self, account_id: str, names: Sequence[str]) -> RegistryState:
        """The account's type count and the registered keys of ``names`` (three queries)."""
        et, ep = event_types.c, event_type_properties.c
        count = self.conn.execute(
            select(func.count()).select_from(event_types).where(et.account_id == account_id)
        ).scalar_one()
        wanted = sorted(set(names))
        known = self.conn.execute(
            select(et.name).where(
                et.account_id == account_id, in_values(self.conn, et.name, wanted)
            )
        ).scalars()
        state = RegistryState(type_count=int(count), properties={name: set() for name in known})
        rows = self.conn.execute(
            select(ep.event_name, ep.property).where(
                ep.account_id == account_id, in_values(self.conn, ep.event_name, wanted)
            )
        )
        for name, prop in rows:
            state.properties.setdefault(name, set()).add(prop)
        return state

    def add(
        self,
        account_id: str,
        names: Sequence[str],
        properties: Sequence[tuple[str, str]],
        now: datetime,
    ) -> None:
        if names:
            self.conn.execute(
                insert_ignoring_conflicts(self.conn, event_types),
                [{"account_id": account_id, "name": n, "created_at": now} for n in sorted(names)],
            )
        if properties:
            self.conn.execute(
                insert_ignoring_conflicts(self.conn, event_type_properties),
                [
                    {"account_id": account_id, "event_name": n, "property": p, "created_at": now}
                    for n, p in sorted(properties)
                ],
            )

    def recognize_types(
        self, account_id: str, usage: dict[str, dict[str, str]], now: datetime
    ) -> dict[str, dict[str, str]]:
        """Record the first type seen of each ``{event: {property: type}}``; return the types.

        A type already recognised is kept (first use wins, also between
        concurrent writers); a property another dialect registered without a
        type gets this one. Returns the recognised type of every property named.
        """
        names = sorted(usage)
        if not names:
            return {}
        if self.known is not None:
            cached = self.known.look_up(account_id, usage)
            if cached is not None:
                return cached
        self.add(account_id, names, [], now)
        ep = event_type_properties.c
        rows = [
            {
                "account_id": account_id,
                "event_name": name,
                "property": prop,
                "value_type": kind,
                "created_at": now,
            }
            for name in names
            for prop, kind in sorted(usage[name].items())
        ]
        if rows:
            self.conn.execute(insert_ignoring_conflicts(self.conn, event_type_properties), rows)
        recognised: dict[str, dict[str, str]] = {name: {} for name in names}
        untyped = []
        found = self.conn.execute(
            select(ep.event_name, ep.property, ep.value_type).where(
                ep.account_id == account_id, in_values(self.conn, ep.event_name, names)
            )
        )
        for name, prop, kind in found:
            if prop not in usage[name]:
                continue
            if kind is None:
                kind = usage[name][prop]
                untyped.append({"n": name, "p": prop, "t": kind})
            recognised[name][prop] = kind
        if untyped:
            self.conn.execute(
                update(event_type_properties)
                .where(
                    ep.account_id == account_id,
                    ep.event_name == bindparam("n"),
                    ep.property == bindparam("p"),
                    ep.value_type.is_(None),
                )
                .values(value_type=bindparam("t")),
                untyped,
            )
        known, after_commit = self.known, self.after_commit
        if known is not None and after_commit is not None:
            after_commit.append(lambda: known.remember(account_id, recognised))
        return recognised

    def take_registry_turn(self, account_id: str) -> None:
        """Hold the account's registry lock to the end of the transaction (PostgreSQL).

        Two batches that each see room for one more event type must not both
        take it; SQLite writers already go one at a time.
        """
        if supports_row_locks(self.conn):
            digest = hashlib.sha256(f"event-types:{account_id}".encode()).digest()
            self.conn.execute(
                select(func.pg_advisory_xact_lock(int.from_bytes(digest[:8], "big", signed=True)))
            )
