"""Identity resolution of large chunks (imports, backfills) through staging tables.

A chunk of an import is tens of thousands of rows. Its identifiers are
written into a temporary table with one ``COPY`` (SQLite: one
``executemany``), their owners are looked up with one join, and the
database classifies every row at once, with the cases and the reasoning of
``storage/set_resolution.py`` (which does the same for API batches on
PostgreSQL), in statements both databases run:

* **owned**: every identifier of the row that has an owner belongs to one
  live contact, known, or anonymous when the row names only anonymous kinds;
  identifiers nobody owns yet are attached to it, provided every row of the
  chunk naming them has that same owner;
* **new**: nobody owns any identifier of the row; rows sharing unowned
  identifiers form a group that must have an identifier in common (the
  *anchor*: each row's most named identifier, ties broken by kind and
  value), and each group is one new contact, known if a row names a known
  kind.

Rows outside these cases, and rows sharing an identifier or an owner with
one of them, are *rare*: the caller resolves them with the planner
(``core.identity``), in the same transaction. The two parts share neither
identifiers nor contacts, so the order in which they are decided does not
change what either decides.

The caller computes what it writes besides the identity (a contact's
attributes, an activity's owner) from :attr:`StagedChunk.simple` and hands
it back to :meth:`StagedChunk.write`. On PostgreSQL the owners are locked in
id order first and checked to be live with the status they were classified
with; an identifier a concurrent writer created meanwhile makes the
``INSERT … ON CONFLICT DO NOTHING`` fall short of its count. Either raises
``ConcurrentUpdate`` and the caller stages the chunk again in a new
savepoint. No advisory lock is taken per identifier: a chunk creates more
than the shared lock table could hold (``set_resolution.MAX_IDENTIFIER_LOCKS``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from psycopg.errors import UniqueViolation
from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from eventyard.core.errors import ConcurrentUpdate
from eventyard.core.identifiers import ANONYMOUS_KINDS
from eventyard.storage.sql_dialect import copy_rows, supports_row_locks
from eventyard.storage.tables import activities, contact_identifiers, contacts, list_members
from eventyard.storage.types import UTCDateTime

# Temporary tables live as long as the connection. PostgreSQL empties them
# at every commit; the DELETEs at the start of a chunk empty them between
# the attempts of one transaction (and on SQLite, between transactions).
_TABLES = {
    "staged_identifiers": "slot INTEGER NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL, "
    "owner TEXT, owner_status TEXT",
    "staged_slots": "slot INTEGER NOT NULL, n_owners INTEGER NOT NULL, owner TEXT, "
    "owner_status TEXT, has_known INTEGER NOT NULL, has_new INTEGER NOT NULL, "
    "anchor_kind TEXT, anchor_value TEXT, rare INTEGER NOT NULL DEFAULT 0",
    "staged_attributes": "contact_id TEXT NOT NULL, attributes TEXT NOT NULL",
}
# SQLite joins through indexes only (it has no hash join): without these the
# lookup and the classification compare every staged row with every other.
# Each is built once its column holds its values (one sort, instead of an
# index updated row by row), so SQLite drops and makes its staging tables
# again for every chunk. PostgreSQL hashes the temporary tables instead, and
# indexes would only slow the COPY into them.
_SQLITE_INDEXES_AFTER_COPY = (
    "CREATE INDEX temp.staged_identifiers_kind ON staged_identifiers (kind, value)",
    "CREATE INDEX temp.staged_identifiers_slot ON staged_identifiers (slot)",
)
_SQLITE_INDEXES_AFTER_LOOKUP = (
    "CREATE INDEX temp.staged_identifiers_owner ON staged_identifiers (owner)",
)
_SQLITE_INDEXES_AFTER_CLASSIFY = (
    "CREATE UNIQUE INDEX temp.staged_slots_slot ON staged_slots (slot)",
    "CREATE INDEX temp.staged_slots_owner ON staged_slots (owner)",
)

# The owner of each staged identifier, if it has one (identifiers always name
# a live contact: a merge moves them to the survivor).
_LOOK_UP = {
    # One primary-key probe per distinct staged identifier, whatever the
    # statistics say: the LIMIT keeps PostgreSQL from flattening the lateral
    # into a join it may hash. Measured on a 10 M-line backfill into an
    # account of 1.2 M identifiers never analyzed (autovacuum off): the plain
    # join scanned all of the account's identifiers for every chunk, 0.56 s
    # per chunk and growing with the account; the probes take 0.02 ms each.
    "postgresql": text("""
UPDATE staged_identifiers SET owner = f.contact_id, owner_status = f.status
FROM (
    SELECT s.kind, s.value, o.contact_id, o.status
    FROM (SELECT DISTINCT kind, value FROM staged_identifiers) AS s
    CROSS JOIN LATERAL (
        SELECT ci.contact_id, c.status
        FROM contact_identifiers AS ci JOIN contacts AS c ON c.id = ci.contact_id
        WHERE ci.account_id = :account AND ci.kind = s.kind AND ci.value = s.value
        LIMIT 1
    ) AS o
) AS f
WHERE f.kind = staged_identifiers.kind AND f.value = staged_identifiers.value
"""),
    # SQLite's planner probes the primary key of the joined tables by itself.
    "sqlite": text("""
UPDATE staged_identifiers SET owner = ci.contact_id, owner_status = c.status
FROM contact_identifiers AS ci JOIN contacts AS c ON c.id = ci.contact_id
WHERE ci.account_id = :account AND ci.kind = staged_identifiers.kind
  AND ci.value = staged_identifiers.value
"""),
}

# One row per slot: how many owners, which (when one), whether it names a
# known kind or an identifier nobody owns, and its anchor when it has no owner.
_CLASSIFY = text("""
WITH named AS (
    SELECT kind, value, count(*) AS events FROM staged_identifiers GROUP BY kind, value
), anchors AS (
    SELECT i.slot, i.kind, i.value,
           row_number() OVER (PARTITION BY i.slot ORDER BY n.events DESC, i.kind, i.value) AS r
    FROM staged_identifiers AS i JOIN named AS n ON n.kind = i.kind AND n.value = i.value
    WHERE i.owner IS NULL
), per_slot AS (
    SELECT slot, count(DISTINCT owner) AS n_owners, min(owner) AS owner,
           min(owner_status) AS owner_status,
           max(CASE WHEN kind IN :anonymous THEN 0 ELSE 1 END) AS has_known,
           max(CASE WHEN owner IS NULL THEN 1 ELSE 0 END) AS has_new
    FROM staged_identifiers GROUP BY slot
)
INSERT INTO staged_slots
    (slot, n_owners, owner, owner_status, has_known, has_new, anchor_kind, anchor_value)
SELECT s.slot, s.n_owners, s.owner, s.owner_status, s.has_known, s.has_new,
       CASE WHEN s.n_owners = 0 THEN a.kind END, CASE WHEN s.n_owners = 0 THEN a.value END
FROM per_slot AS s LEFT JOIN anchors AS a ON a.slot = s.slot AND a.r = 1
""").bindparams(bindparam("anonymous", expanding=True))

# Rows outside the common cases, and those naming an unowned identifier that
# does not fit them (named by rows of several owners, or of several groups,
# or by rows with and without owners). Kinds hold no "|": kind || '|' ||
# value names one identifier.
_MARK_RARE = text("""
UPDATE staged_slots SET rare = 1
WHERE n_owners > 1
   OR (n_owners = 1 AND owner_status = 'anonymous' AND has_known = 1)
   OR (n_owners = 1 AND owner_status NOT IN ('known', 'anonymous'))
   OR slot IN (
        SELECT i.slot FROM staged_identifiers AS i
        JOIN (
            SELECT i.kind, i.value
            FROM staged_identifiers AS i JOIN staged_slots AS s ON s.slot = i.slot
            WHERE i.owner IS NULL
            GROUP BY i.kind, i.value
            HAVING NOT (
                (min(s.n_owners) = 1 AND max(s.n_owners) = 1 AND count(DISTINCT s.owner) = 1)
                OR (max(s.n_owners) = 0
                    AND count(DISTINCT s.anchor_kind || '|' || s.anchor_value) = 1)
            )
        ) AS misfit ON misfit.kind = i.kind AND misfit.value = i.value
   )
""")

# Rows sharing an identifier or an owner with a rare row go to the planner
# with it, so that what the planner decides (a merge, a conversion, a new
# contact) cannot change what the set-based part decided. Repeated until
# nothing changes (once or twice: rare rows are few).
_SPREAD_RARE = (
    text("""
UPDATE staged_slots SET rare = 1
WHERE rare = 0 AND slot IN (
    SELECT i.slot FROM staged_identifiers AS i
    JOIN staged_identifiers AS j ON j.kind = i.kind AND j.value = i.value
    JOIN staged_slots AS r ON r.slot = j.slot AND r.rare = 1
)
"""),
    text("""
UPDATE staged_slots SET rare = 1
WHERE rare = 0 AND owner IN (
    SELECT i.owner FROM staged_identifiers AS i
    JOIN staged_slots AS r ON r.slot = i.slot AND r.rare = 1
    WHERE i.owner IS NOT NULL
)
"""),
)

_RARE = text("SELECT slot FROM staged_slots WHERE rare = 1 ORDER BY slot")

# Each common row: its owner, or the first slot of its new group and whether
# that group is known.
_SIMPLE = text("""
SELECT s.slot, s.owner, g.first_slot, g.known
FROM staged_slots AS s
LEFT JOIN (
    SELECT anchor_kind, anchor_value, min(slot) AS first_slot, max(has_known) AS known
    FROM staged_slots WHERE n_owners = 0 AND rare = 0
    GROUP BY anchor_kind, anchor_value
) AS g ON s.n_owners = 0 AND g.anchor_kind = s.anchor_kind AND g.anchor_value = s.anchor_value
WHERE s.rare = 0
ORDER BY s.slot
""")

# The owners the caller changes, locked in id order (as every writer locks),
# counted only while still live with the status they were classified with.
_LOCK_OWNERS = text("""
SELECT count(*) FROM (
    SELECT c.id FROM contacts AS c
    JOIN (
        SELECT DISTINCT owner, owner_status FROM staged_slots
        WHERE n_owners = 1 AND rare = 0 AND (has_new = 1 OR :every = 1)
    ) AS o ON c.id = o.owner
    WHERE c.merged_into IS NULL AND c.status = o.owner_status
    ORDER BY c.id
    FOR UPDATE OF c
) AS locked
""")

_OWNERS_TO_LOCK = text("""
SELECT count(DISTINCT owner) FROM staged_slots
WHERE n_owners = 1 AND rare = 0 AND (has_new = 1 OR :every = 1)
""")

# Identifiers nobody owned, named by rows of one owner: attached to it. (Those
# of new contacts come from the caller, who knows them.)
_ATTACH = text("""
INSERT INTO contact_identifiers (account_id, kind, value, contact_id, created_at)
SELECT DISTINCT :account, i.kind, i.value, s.owner, :now
FROM staged_identifiers AS i JOIN staged_slots AS s ON s.slot = i.slot
WHERE i.owner IS NULL AND s.n_owners = 1 AND s.rare = 0
ON CONFLICT DO NOTHING
""").bindparams(bindparam("now", type_=UTCDateTime()))

_ATTACH_COUNT = text("""
SELECT count(DISTINCT i.kind || '|' || i.value)
FROM staged_identifiers AS i JOIN staged_slots AS s ON s.slot = i.slot
WHERE i.owner IS NULL AND s.n_owners = 1 AND s.rare = 0
""")

_TOUCH_OWNERS = text("""
UPDATE contacts SET updated_at = :now
WHERE id IN (SELECT owner FROM staged_slots WHERE n_owners = 1 AND has_new = 1 AND rare = 0)
""").bindparams(bindparam("now", type_=UTCDateTime()))

_SET_ATTRIBUTES = {
    # The column is json (not jsonb, to keep the client's key order): from text by a cast.
    "postgresql": text("""
UPDATE contacts SET attributes = a.attributes::json, updated_at = :now
FROM staged_attributes AS a WHERE contacts.id = a.contact_id
"""),
    "sqlite": text("""
UPDATE contacts SET attributes = a.attributes, updated_at = :now
FROM staged_attributes AS a WHERE contacts.id = a.contact_id
"""),
}

# The owners join the list (those already members stay as they were); the
# new contacts come from the caller.
_OWNERS_JOIN_LIST = text("""
INSERT INTO list_members (list_id, contact_id, account_id, added_at)
SELECT DISTINCT :list_id, owner, :account, :now
FROM staged_slots WHERE n_owners = 1 AND rare = 0
ON CONFLICT DO NOTHING
""").bindparams(bindparam("now", type_=UTCDateTime()))


@dataclass(frozen=True, slots=True)
class SimpleRow:
    """A row of the common cases: its owner, or the new group it opens or joins."""

    slot: int
    owner: str | None
    #: For a row without owner: the first slot of its group (the group's key).
    first_slot: int | None
    #: For a row without owner: whether its group names a known kind.
    known: bool


class StagedChunk:
    """A chunk staged and classified; the caller resolves ``rare``, then calls :meth:`write`."""

    def __init__(self, conn: Connection, account_id: str) -> None:
        self._conn = conn
        self._account_id = account_id
        self.rare: list[int] = [slot for (slot,) in conn.execute(_RARE)]
        self.simple: list[SimpleRow] = [
            SimpleRow(slot, owner, first_slot, bool(known))
            for slot, owner, first_slot, known in conn.execute(_SIMPLE)
        ]

    def lock_owners(self, *, every: bool) -> None:
        """Lock the owners that gain identifiers (``every``: all owners) in id order.

        ``ConcurrentUpdate`` if one was merged away or changed status since
        the lookup. SQLite: nothing to lock (its writers take turns).
        """
        if not supports_row_locks(self._conn):
            return
        params = {"every": int(every)}
        expected = self._conn.execute(_OWNERS_TO_LOCK, params).scalar_one()
        if expected and self._conn.execute(_LOCK_OWNERS, params).scalar_one() != expected:
            raise ConcurrentUpdate()

    def write(
        self,
        now: datetime,
        new_contacts: Sequence[tuple[str, str, Mapping[str, Any]]],
        new_identifiers: Mapping[tuple[str, str], str],
        attributes: Mapping[str, Mapping[str, Any]],
        list_id: int | None = None,
    ) -> None:
        """Create the new contacts with their identifiers, attach owners' new identifiers,
        set owners' attributes.

        ``new_contacts``: ``(id, status, attributes)``; ``new_identifiers``:
        the contact of each identifier of the new contacts' rows;
        ``attributes``: the new attributes of owners (their ``updated_at``
        moves too); ``list_id``: a list every contact of the common rows
        joins. ``ConcurrentUpdate`` if a concurrent writer created one of the
        identifiers meanwhile.
        """
        conn = self._conn
        account = self._account_id
        if new_contacts:
            # Fresh ids, and identifiers nobody owned at the lookup: straight in
            # by COPY, without the join and sort of an INSERT … SELECT.
            copy_rows(
                conn,
                contacts,
                ("id", "account_id", "status", "attributes", "created_at", "updated_at"),
                [(cid, account, status, attrs, now, now) for cid, status, attrs in new_contacts],
            )
            try:
                with conn.begin_nested():
                    copy_rows(
                        conn,
                        contact_identifiers,
                        ("account_id", "kind", "value", "contact_id", "created_at"),
                        [(account, k, v, cid, now) for (k, v), cid in new_identifiers.items()],
                    )
            # A concurrent writer created one meanwhile (COPY runs on the driver's
            # own cursor: PostgreSQL's error comes unwrapped).
            except (IntegrityError, UniqueViolation) as exc:
                raise ConcurrentUpdate() from exc
            if list_id is not None:
                copy_rows(
                    conn,
                    list_members,
                    ("list_id", "contact_id", "account_id", "added_at"),
                    [(list_id, cid, account, now) for cid, _, _ in new_contacts],
                )
        wanted = conn.execute(_ATTACH_COUNT).scalar_one()
        if wanted:
            inserted = conn.execute(_ATTACH, {"account": account, "now": now}).rowcount
            if inserted != wanted:
                raise ConcurrentUpdate()
            conn.execute(_TOUCH_OWNERS, {"now": now})
        if attributes:
            copy_rows(
                conn,
                "staged_attributes",
                ("contact_id", "attributes"),
                [(cid, orjson.dumps(attrs).decode()) for cid, attrs in attributes.items()],
            )
            statement = _SET_ATTRIBUTES[conn.dialect.name].bindparams(
                bindparam("now", type_=UTCDateTime())
            )
            conn.execute(statement, {"now": now})
        if list_id is not None:
            conn.execute(_OWNERS_JOIN_LIST, {"list_id": list_id, "account": account, "now": now})


#: The columns of an activity a backfill writes (the others stay NULL); the
#: dedup key last.
ACTIVITY_COLUMNS = (
    "id",
    "account_id",
    "contact_id",
    "name",
    "occurred_at",
    "received_at",
    "source",
    "dialect",
    "journey_eligible",
    "properties",
    "resolved_kind",
    "resolved_value",
    "dedup_key",
)
_STAGED_ACTIVITIES = {
    "postgresql": "CREATE TEMP TABLE IF NOT EXISTS staged_activities "
    "(LIKE activities) ON COMMIT DELETE ROWS",
    "sqlite": "CREATE TEMP TABLE IF NOT EXISTS staged_activities AS "
    "SELECT * FROM main.activities WHERE 0",
}
_COLUMN_LIST = ", ".join(ACTIVITY_COLUMNS)
# Rows whose dedup key (with its time) the account already holds, or that an
# earlier row of the chunk names, are left out.
_INSERT_STAGED_ACTIVITIES = text(
    f"INSERT INTO activities ({_COLUMN_LIST}) "  # noqa: S608 (our own column names)
    f"SELECT {_COLUMN_LIST} FROM staged_activities WHERE true "
    "ON CONFLICT DO NOTHING RETURNING id"
)


class StagingRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def insert_activities(self, rows: Sequence[Sequence[Any]]) -> set[str]:
        """Insert activities (tuples in :data:`ACTIVITY_COLUMNS` order); the ids stored.

        Without dedup keys straight in by COPY; with them through a staging
        table and one ``INSERT … SELECT … ON CONFLICT DO NOTHING``.
        """
        conn = self.conn
        if all(row[-1] is None for row in rows):
            copy_rows(conn, activities, ACTIVITY_COLUMNS, rows)
            return {row[0] for row in rows}
        conn.exec_driver_sql(_STAGED_ACTIVITIES[conn.dialect.name])
        conn.exec_driver_sql("DELETE FROM staged_activities")
        copy_rows(conn, activities, ACTIVITY_COLUMNS, rows, into="staged_activities")
        return set(conn.execute(_INSERT_STAGED_ACTIVITIES).scalars())

    def stage_identities(
        self, account_id: str, batch: Sequence[Sequence[tuple[str, str]]]
    ) -> StagedChunk:
        """Stage ``batch`` (the (kind, value) pairs of each slot, each slot naming at
        least one, no pair twice in a slot) and classify it."""
        conn = self.conn
        postgres = conn.dialect.name == "postgresql"

        def index(statements: Sequence[str]) -> None:
            if not postgres:
                for statement in statements:
                    conn.exec_driver_sql(statement)

        for name, columns in _TABLES.items():
            if postgres:
                conn.exec_driver_sql(
                    f"CREATE TEMP TABLE IF NOT EXISTS {name} ({columns}) ON COMMIT DELETE ROWS"
                )
                conn.exec_driver_sql(f"DELETE FROM {name}")  # noqa: S608 (our own names)
            else:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{name}")
                conn.exec_driver_sql(f"CREATE TEMP TABLE {name} ({columns})")
        copy_rows(
            conn,
            "staged_identifiers",
            ("slot", "kind", "value"),
            [(slot, kind, value) for slot, pairs in enumerate(batch) for kind, value in pairs],
        )
        index(_SQLITE_INDEXES_AFTER_COPY)
        if postgres:
            # Temporary tables have no statistics of their own: without them the
            # lookup may hash the account's every identifier instead of probing.
            conn.exec_driver_sql("ANALYZE staged_identifiers")
        conn.execute(_LOOK_UP[conn.dialect.name], {"account": account_id})
        index(_SQLITE_INDEXES_AFTER_LOOKUP)
        conn.execute(_CLASSIFY, {"anonymous": sorted(ANONYMOUS_KINDS)})
        index(_SQLITE_INDEXES_AFTER_CLASSIFY)
        if conn.execute(_MARK_RARE).rowcount:
            spreading = True
            while spreading:
                spreading = False
                for statement in _SPREAD_RARE:
                    spreading = conn.execute(statement).rowcount > 0 or spreading
        return StagedChunk(conn, account_id)
