"""Merging, reverting a merge and splitting contacts: every table a contact lives in.

The rules are ``core.identity_operations``'s. A merge records what it moved
(the *snapshot*, kept in its identity event's ``details``) so that reverting
it is exact: the merged contact's identifiers (with their creation times),
status, attributes and timestamps, its list and group memberships, the
contacts merged into it before, and the survivor's status, attributes, lists
and group traits before the merge. Activities are not listed: they move back
by provenance (``activities.resolved_kind/resolved_value``), which also
catches those that arrived after the merge. Each step is one set-based
statement per table (a handful of rows per contact but the activities).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, literal, select, tuple_, update
from sqlalchemy.engine import Connection

from eventyard.core.errors import EventyardError, NotFound
from eventyard.core.identifiers import ANONYMOUS_KINDS, Identifier
from eventyard.core.identity import CONTACT_ID_KIND
from eventyard.core.identity_operations import undo_changes
from eventyard.core.ids import new_id
from eventyard.storage.sql_dialect import in_values, insert_ignoring_conflicts, supports_row_locks
from eventyard.storage.tables import (
    activities,
    contact_groups,
    contact_identifiers,
    contacts,
    identity_events,
    list_members,
    lists,
)

SNAPSHOT_VERSION = 1


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def lock_contacts(conn: Connection, account_id: str, ids: Iterable[str]) -> dict[str, Any]:
    """Lock the contacts' rows in id order (the order ingest locks in); their rows by id."""
    query = (
        select(contacts)
        .where(
            contacts.c.account_id == account_id, in_values(conn, contacts.c.id, sorted(set(ids)))
        )
        .order_by(contacts.c.id)
    )
    if supports_row_locks(conn):
        query = query.with_for_update()
    return {row.id: row for row in conn.execute(query).all()}


def capture_snapshot(conn: Connection, account_id: str, source: str, target: str) -> dict[str, Any]:
    """What merging ``source`` into ``target`` is about to change (rows locked by the caller)."""
    c, ci, lm, g = contacts.c, contact_identifiers.c, list_members.c, contact_groups.c
    rows = {
        row.id: row
        for row in conn.execute(
            select(contacts).where(c.account_id == account_id, c.id.in_([source, target]))
        )
    }
    merged, survivor = rows[source], rows[target]
    identifiers = [
        {"kind": r.kind, "value": r.value, "created_at": _iso(r.created_at)}
        for r in conn.execute(
            select(ci.kind, ci.value, ci.created_at)
            .where(ci.account_id == account_id, ci.contact_id == source)
            .order_by(ci.created_at, ci.kind, ci.value)
        )
    ]
    memberships: dict[str, list[Any]] = {source: [], target: []}
    for r in conn.execute(
        select(lm.contact_id, lm.list_id, lm.added_at)
        .where(lm.account_id == account_id, lm.contact_id.in_([source, target]))
        .order_by(lm.list_id)
    ):
        memberships[r.contact_id].append({"list_id": r.list_id, "added_at": _iso(r.added_at)})
    groups: dict[str, dict[str, Any]] = {source: {}, target: {}}
    for row in conn.execute(
        select(g.contact_id, g.group_id, g.traits, g.created_at, g.updated_at)
        .where(g.account_id == account_id, g.contact_id.in_([source, target]))
        .order_by(g.group_id)
    ):
        groups[row.contact_id][row.group_id] = {
            "traits": row.traits,
            "created_at": _iso(row.created_at),
            "updated_at": _iso(row.updated_at),
        }
    absorbed = sorted(
        conn.execute(
            select(c.id).where(c.account_id == account_id, c.merged_into == source)
        ).scalars()
    )
    return {
        "version": SNAPSHOT_VERSION,
        "merged": {
            "id": source,
            "status": merged.status,
            "attributes": merged.attributes,
            "created_at": _iso(merged.created_at),
            "updated_at": _iso(merged.updated_at),
            "identifiers": identifiers,
            "lists": memberships[source],
            "groups": groups[source],
            "absorbed": absorbed,
        },
        "survivor": {
            "id": target,
            "status": survivor.status,
            "attributes": survivor.attributes,
            "lists": [m["list_id"] for m in memberships[target]],
            "groups": {gid: m["traits"] for gid, m in groups[target].items()},
        },
    }


def fold_contact(
    conn: Connection,
    account_id: str,
    source: str,
    target: str,
    attributes: Mapping[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """Merge ``source`` into ``target`` (rows locked by the caller); the snapshot.

    ``attributes``: the target's attributes after the merge. Identifiers,
    activities, list and group memberships move; in a group both belong to,
    the target's traits win. The target becomes known if the source was.
    """
    snapshot = capture_snapshot(conn, account_id, source, target)
    c, ci = contacts.c, contact_identifiers.c
    conn.execute(
        update(contact_identifiers)
        .where(ci.account_id == account_id, ci.contact_id == source)
        .values(contact_id=target)
    )
    # account_id first: the (account_id, contact_id, …) index finds the rows.
    conn.execute(
        update(activities)
        .where(activities.c.account_id == account_id, activities.c.contact_id == source)
        .values(contact_id=target)
    )
    survivor = snapshot["survivor"]
    values: dict[str, Any] = {"updated_at": now}
    if dict(attributes) != survivor["attributes"]:
        values["attributes"] = dict(attributes)
    if snapshot["merged"]["status"] == "known" and survivor["status"] == "anonymous":
        values["status"] = "known"
    conn.execute(update(contacts).where(c.id == target).values(**values))
    _move_memberships(conn, account_id, source, target, now)
    # Earlier merges into ``source`` now point straight at ``target``.
    conn.execute(
        update(contacts)
        .where(c.account_id == account_id, (c.id == source) | (c.merged_into == source))
        .values(merged_into=target, status="merged", updated_at=now)
    )
    survivor["attributes_after"] = dict(attributes)
    survivor["groups_after"] = {
        gid: {**snapshot["merged"]["groups"][gid]["traits"], **traits}
        for gid, traits in survivor["groups"].items()
        if gid in snapshot["merged"]["groups"]
    }
    return snapshot


def _move_memberships(
    conn: Connection, account_id: str, source: str, target: str, now: datetime
) -> None:
    """The source's lists and groups become the target's; in a group both belong to,
    traits the target lacks are taken from the source (its own values win)."""
    lm, g = list_members.c, contact_groups.c
    moving = select(lm.list_id, literal(target), lm.account_id, lm.added_at).where(
        lm.account_id == account_id, lm.contact_id == source
    )
    conn.execute(
        insert_ignoring_conflicts(conn, list_members).from_select(
            ["list_id", "contact_id", "account_id", "added_at"], moving
        )
    )
    conn.execute(delete(list_members).where(lm.account_id == account_id, lm.contact_id == source))
    groups = conn.execute(
        select(g.contact_id, g.group_id, g.traits, g.created_at).where(
            g.account_id == account_id, g.contact_id.in_([source, target])
        )
    ).all()
    held = {row.group_id: row.traits for row in groups if row.contact_id == target}
    for row in groups:
        if row.contact_id != source:
            continue
        if row.group_id in held:
            conn.execute(
                update(contact_groups)
                .where(
                    g.account_id == account_id, g.contact_id == target, g.group_id == row.group_id
                )
                .values(traits={**row.traits, **held[row.group_id]}, updated_at=now)
            )
        else:
            conn.execute(
                contact_groups.insert().values(
                    account_id=account_id,
                    contact_id=target,
                    group_id=row.group_id,
                    traits=row.traits,
                    created_at=row.created_at,
                    updated_at=now,
                )
            )
    conn.execute(delete(contact_groups).where(g.account_id == account_id, g.contact_id == source))


class IdentityOperationRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def lock(self, account_id: str, contact_ids: Iterable[str]) -> dict[str, str | None]:
        """Lock the contacts (id order); ``id -> merged_into`` of those that exist."""
        return {
            cid: row.merged_into
            for cid, row in lock_contacts(self.conn, account_id, contact_ids).items()
        }

    def preview_merge(self, account_id: str, source: str) -> dict[str, int]:
        """How many identifiers, activities, lists and groups merging ``source`` moves."""
        conn = self.conn

        def count(table: Any) -> int:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(table)
                    .where(table.c.account_id == account_id, table.c.contact_id == source)
                ).scalar_one()
            )

        return {
            "identifiers": count(contact_identifiers),
            "activities": count(activities),
            "lists": count(list_members),
            "groups": count(contact_groups),
        }

    def merge(
        self,
        account_id: str,
        source: str,
        target: str,
        attributes: Mapping[str, Any],
        now: datetime,
    ) -> dict[str, Any]:
        """Merge ``source`` into ``target`` (both locked); the snapshot."""
        return fold_contact(self.conn, account_id, source, target, attributes, now)

    def record_event(
        self,
        account_id: str,
        *,
        kind: str,
        contact_id: str,
        other_contact_ids: Sequence[str],
        identifiers: Sequence[Mapping[str, Any]],
        details: Mapping[str, Any],
        now: datetime,
    ) -> dict[str, Any]:
        """Add a row to the identity audit; the row as the read API lists it."""
        row = {
            "id": new_id(),
            "account_id": account_id,
            "kind": kind,
            "contact_id": contact_id,
            "other_contact_ids": list(other_contact_ids),
            "identifiers": [{"kind": i["kind"], "value": i["value"]} for i in identifiers],
            "details": dict(details),
            "created_at": now,
        }
        self.conn.execute(identity_events.insert().values(**row))
        del row["account_id"]
        return row

    def event(self, account_id: str, event_id: str, *, lock: bool = False) -> dict[str, Any]:
        """One identity event of the account; ``NotFound`` otherwise (other tenants too)."""
        ie = identity_events.c
        query = select(identity_events).where(ie.account_id == account_id, ie.id == event_id)
        if lock and supports_row_locks(self.conn):
            query = query.with_for_update()
        row = self.conn.execute(query).first()
        if row is None:
            raise NotFound("No such identity event")
        return {
            "id": row.id,
            "kind": row.kind,
            "contact_id": row.contact_id,
            "other_contact_ids": row.other_contact_ids,
            "identifiers": row.identifiers,
            "details": row.details,
            "created_at": row.created_at,
        }

    def set_event_details(self, account_id: str, event_id: str, details: Mapping[str, Any]) -> None:
        ie = identity_events.c
        self.conn.execute(
            update(identity_events)
            .where(ie.account_id == account_id, ie.id == event_id)
            .values(details=dict(details))
        )

    def revert_merge(
        self, account_id: str, snapshot: Mapping[str, Any], now: datetime
    ) -> dict[str, int]:
        """Undo the merge ``snapshot`` describes (core.identity_operations); what moved back.

        409 when the merged contact is gone (erased) or no longer merged into
        the survivor, or when the survivor was merged into another contact since.
        """
        conn = self.conn
        merged, survivor = snapshot["merged"], snapshot["survivor"]
        source, target = merged["id"], survivor["id"]
        rows = lock_contacts(conn, account_id, [source, target])
        if source not in rows or target not in rows:
            raise EventyardError(
                "contact_gone", "A contact of this merge was erased since: nothing to revert", 409
            )
        if rows[target].merged_into is not None:
            raise EventyardError(
                "survivor_merged_since",
                f"Contact {target} was merged into {rows[target].merged_into} since: "
                "revert that merge first",
                409,
            )
        if rows[source].merged_into != target:
            raise EventyardError(
                "not_merged", f"Contact {source} is no longer merged into {target}", 409
            )
        c, ci, a = contacts.c, contact_identifiers.c, activities.c
        pairs = [(i["kind"], i["value"]) for i in merged["identifiers"]]
        moved_identifiers = 0
        if pairs:
            moved_identifiers = conn.execute(
                update(contact_identifiers)
                .where(
                    ci.account_id == account_id,
                    ci.contact_id == target,
                    tuple_(ci.kind, ci.value).in_(pairs),
                )
                .values(contact_id=source)
            ).rowcount
        through = pairs + [(CONTACT_ID_KIND, cid) for cid in [source, *merged["absorbed"]]]
        moved_activities = conn.execute(
            update(activities)
            .where(
                a.account_id == account_id,
                a.contact_id == target,
                tuple_(a.resolved_kind, a.resolved_value).in_(through),
            )
            .values(contact_id=source)
        ).rowcount
        conn.execute(
            update(contacts)
            .where(c.account_id == account_id, c.id == source)
            .values(
                status=merged["status"],
                attributes=merged["attributes"],
                merged_into=None,
                updated_at=now,
            )
        )
        if merged["absorbed"]:
            conn.execute(
                update(contacts)
                .where(
                    c.account_id == account_id,
                    in_values(conn, c.id, merged["absorbed"]),
                    c.merged_into == target,
                )
                .values(merged_into=source)
            )
        self._restore_lists(account_id, merged, survivor)
        self._restore_groups(account_id, merged, survivor, now)
        current = rows[target]
        values: dict[str, Any] = {
            "attributes": undo_changes(
                survivor["attributes"], survivor["attributes_after"], current.attributes
            ),
            "updated_at": now,
        }
        if survivor["status"] == "anonymous" and not self._holds_known(account_id, target):
            values["status"] = "anonymous"
        conn.execute(update(contacts).where(c.id == target).values(**values))
        return {
            "identifiers": int(moved_identifiers),
            "activities": int(moved_activities),
            "lists": len(merged["lists"]),
            "groups": len(merged["groups"]),
        }

    def _restore_lists(
        self, account_id: str, merged: Mapping[str, Any], survivor: Mapping[str, Any]
    ) -> None:
        conn, lm = self.conn, list_members.c
        source, target = merged["id"], survivor["id"]
        ids = [m["list_id"] for m in merged["lists"]]
        if not ids:
            return
        # Lists deleted since stay deleted.
        existing = set(
            conn.execute(
                select(lists.c.id).where(lists.c.account_id == account_id, lists.c.id.in_(ids))
            ).scalars()
        )
        rows = [
            {
                "list_id": m["list_id"],
                "contact_id": source,
                "account_id": account_id,
                "added_at": _moment(m["added_at"]),
            }
            for m in merged["lists"]
            if m["list_id"] in existing
        ]
        if rows:
            conn.execute(insert_ignoring_conflicts(conn, list_members), rows)
        gained = sorted(set(ids) - set(survivor["lists"]))
        if gained:
            conn.execute(
                delete(list_members).where(
                    lm.account_id == account_id, lm.contact_id == target, lm.list_id.in_(gained)
                )
            )

    def _restore_groups(
        self,
        account_id: str,
        merged: Mapping[str, Any],
        survivor: Mapping[str, Any],
        now: datetime,
    ) -> None:
        conn, g = self.conn, contact_groups.c
        source, target = merged["id"], survivor["id"]
        groups: Mapping[str, Any] = merged["groups"]
        if not groups:
            return
        conn.execute(
            insert_ignoring_conflicts(conn, contact_groups),
            [
                {
                    "account_id": account_id,
                    "contact_id": source,
                    "group_id": gid,
                    "traits": m["traits"],
                    "created_at": _moment(m["created_at"]),
                    "updated_at": _moment(m["updated_at"]),
                }
                for gid, m in sorted(groups.items())
            ],
        )
        gained = sorted(set(groups) - set(survivor["groups"]))
        if gained:
            conn.execute(
                delete(contact_groups).where(
                    g.account_id == account_id, g.contact_id == target, g.group_id.in_(gained)
                )
            )
        shared = sorted(set(groups) & set(survivor["groups"]))
        if not shared:
            return
        current = dict(
            conn.execute(
                select(g.group_id, g.traits).where(
                    g.account_id == account_id, g.contact_id == target, g.group_id.in_(shared)
                )
            ).all()
        )
        for gid in shared:
            if gid not in current:
                continue
            traits = undo_changes(
                survivor["groups"][gid], survivor["groups_after"][gid], current[gid]
            )
            if traits != current[gid]:
                conn.execute(
                    update(contact_groups)
                    .where(g.account_id == account_id, g.contact_id == target, g.group_id == gid)
                    .values(traits=traits, updated_at=now)
                )

    def _holds_known(self, account_id: str, contact_id: str) -> bool:
        ci = contact_identifiers.c
        kinds = self.conn.execute(
            select(ci.kind).where(ci.account_id == account_id, ci.contact_id == contact_id)
        ).scalars()
        return any(kind not in ANONYMOUS_KINDS for kind in kinds)

    def attach(
        self, account_id: str, contact_id: str, identifiers: Sequence[Identifier], now: datetime
    ) -> int:
        """Give ``contact_id`` the identifiers nobody owns (one a concurrent writer took
        meanwhile stays its); how many it got."""
        rows = [
            {
                "account_id": account_id,
                "kind": i.kind,
                "value": i.value,
                "contact_id": contact_id,
                "created_at": now,
            }
            for i in sorted(set(identifiers))
        ]
        if not rows:
            return 0
        result = self.conn.execute(insert_ignoring_conflicts(self.conn, contact_identifiers), rows)
        if any(i.kind not in ANONYMOUS_KINDS for i in identifiers):
            self.conn.execute(
                update(contacts)
                .where(contacts.c.id == contact_id, contacts.c.status == "anonymous")
                .values(status="known", updated_at=now)
            )
        return int(result.rowcount)

    def split(
        self,
        account_id: str,
        contact_id: str,
        identifiers: Sequence[Identifier],
        now: datetime,
    ) -> tuple[str, dict[str, int]]:
        """Move ``identifiers`` (held by the locked ``contact_id``) and the activities
        resolved through them to a new contact; its id and what moved."""
        conn = self.conn
        c, ci, a = contacts.c, contact_identifiers.c, activities.c
        new = new_id()
        known = any(i.kind not in ANONYMOUS_KINDS for i in identifiers)
        conn.execute(
            contacts.insert().values(
                id=new,
                account_id=account_id,
                status="known" if known else "anonymous",
                attributes={},
                merged_into=None,
                created_at=now,
                updated_at=now,
            )
        )
        pairs = [(i.kind, i.value) for i in identifiers]
        moved_identifiers = conn.execute(
            update(contact_identifiers)
            .where(
                ci.account_id == account_id,
                ci.contact_id == contact_id,
                tuple_(ci.kind, ci.value).in_(pairs),
            )
            .values(contact_id=new)
        ).rowcount
        moved_activities = conn.execute(
            update(activities)
            .where(
                a.account_id == account_id,
                a.contact_id == contact_id,
                tuple_(a.resolved_kind, a.resolved_value).in_(pairs),
            )
            .values(contact_id=new)
        ).rowcount
        values: dict[str, Any] = {"updated_at": now}
        if not self._holds_known(account_id, contact_id):
            values["status"] = "anonymous"
        conn.execute(update(contacts).where(c.id == contact_id).values(**values))
        return new, {"identifiers": int(moved_identifiers), "activities": int(moved_activities)}
