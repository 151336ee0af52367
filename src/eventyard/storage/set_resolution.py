"""Set-based identity resolution on PostgreSQL: the common cases of a batch in SQL.

``core.identity.plan_resolution`` states the rules and stays their
reference. Looking up every identifier of a 1000-event batch, building its
``Identifier`` objects and planning event by event cost 20 to 33 ms of
Python per 1000 Netcore-shaped events (cProfile: about a third each in the
lookup, the plan and the writes). Here the batch's (event, kind, value)
triples are staged into a temporary table with one statement (one JSON
text), PostgreSQL classifies and writes them, and the contact of each event
comes back as one JSON array: 3.5 ms of Python for the same batches.

The cases done here, which together are nearly all real traffic:

* **owned**: every identifier the event names that has an owner belongs to
  one contact, which is known or the event names only anonymous kinds;
  the event goes to it, and any identifiers nobody owns yet are attached to
  it, provided every event of the batch naming them has that same owner;
* **new**: nobody owns any identifier of the event; events that share
  unowned identifiers form a group that must have an identifier in common
  to all of its events (the *anchor*: each event's most named identifier,
  ties broken by kind and value), and then each group is one new contact,
  known if any of its events names a known kind.

These are exactly the entries for which the planner, applied in input
order, creates one contact per group and attaches without converting,
merging or recording anything. The other entries (two owners, an anonymous
owner meeting a known identifier, groups without a common identifier), and
every entry sharing an identifier or an owner with one of them, are *rare*:
:func:`start_bulk_resolution` lists them, the caller plans them with the
planner, and :meth:`BulkResolution.finish` writes the rest. The two parts
share neither identifiers nor contacts, so the order in which they are
decided does not change what either decides. A batch with an entry without
identifiers, or with pinned contacts, goes to the planner whole.

Concurrent batches creating the same contacts wait for each other instead
of failing: the unowned identifiers are locked with transaction-level
advisory locks on their hashes, in sorted order, then looked up again. A
batch that waited finds the other batch's committed contacts, classifies
again (still holding the locks, so nobody else can create them meanwhile)
and goes on (up to :data:`MAX_IDENTIFIER_LOCKS` new identifiers a batch;
beyond, a lost race is retried as before). The planner's writer takes
:func:`lock_new_identifiers` too, before its row locks, so both paths lock
in the same order: identifier hashes, then contact rows. ``ON CONFLICT DO
NOTHING`` with a count stays as the last guard; if it ever fires, the
caller's retry loop handles it as before (``ConcurrentUpdate``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import orjson
from psycopg import Connection, Cursor
from psycopg.rows import TupleRow

from eventyard.core.errors import ConcurrentUpdate
from eventyard.core.identifiers import ANONYMOUS_KINDS, Identifier
from eventyard.core.ids import new_id

#: At most this many identifier locks per batch. Every advisory lock takes a
#: slot of PostgreSQL's shared lock table (max_locks_per_transaction x
#: max_connections: 6,400 by default), and a batch creating thousands of
#: contacts (a first import) would exhaust it with a few of its kind. Above
#: this a batch takes no identifier locks: the unique index and the count
#: check still keep one contact per identifier, and the loser of a race
#: tries again, as every batch did before these locks.
MAX_IDENTIFIER_LOCKS = 512

# Temporary tables live as long as the connection; ON COMMIT DELETE ROWS
# empties them at every commit, and the DELETE at the start of a batch
# empties them between the batches of one transaction (group commit).
_CREATE = """
CREATE TEMP TABLE IF NOT EXISTS identity_input (
    slot int4 NOT NULL, kind text NOT NULL, value text NOT NULL,
    owner text, owner_status text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS identity_slots (
    slot int4 NOT NULL, n_owners int4 NOT NULL, owner text, owner_status text,
    has_known bool NOT NULL, has_new bool NOT NULL,
    anchor_kind text, anchor_value text, rare bool NOT NULL DEFAULT false
) ON COMMIT DELETE ROWS;
DELETE FROM identity_input;
DELETE FROM identity_slots
"""

# One row per distinct (event, identifier), with its owner if it has one.
# The triples come as one JSON text: psycopg dumps a list into an array
# parameter element by element in Python (2.75 ms of CPU for a batch's three
# arrays of 2,340), orjson writes the same in 0.1 ms.
# Identifiers always name a live contact (a merge moves them to the survivor).
# OFFSET 0 keeps the lookup a probe of the primary key per staged row: joined
# instead, the planner may hash every identifier of the account (seen at
# 9,600 identifiers: 18 ms instead of 3), and the staging table has no
# statistics to stop it.
_STAGE = """
INSERT INTO identity_input (slot, kind, value, owner, owner_status)
SELECT t.slot, t.kind, t.value, o.contact_id, o.status
FROM (
    SELECT DISTINCT (e ->> 0)::int4 AS slot, e ->> 1 AS kind, e ->> 2 AS value
    FROM json_array_elements(%(entries)s::json) AS e
) AS t
LEFT JOIN LATERAL (
    SELECT ci.contact_id, c.status
    FROM contact_identifiers AS ci JOIN contacts AS c ON c.id = ci.contact_id
    WHERE ci.account_id = %(account)s AND ci.kind = t.kind AND ci.value = t.value
    OFFSET 0
) AS o ON true
"""

# One row per event: how many owners, which (when one), whether it names a
# known kind or an identifier nobody owns, and its anchor when it has no owner.
_CLASSIFY = """
WITH named AS (
    SELECT kind, value, count(*) AS events FROM identity_input GROUP BY kind, value
), anchors AS (
    SELECT DISTINCT ON (i.slot) i.slot, i.kind, i.value
    FROM identity_input AS i JOIN named AS n USING (kind, value)
    WHERE i.owner IS NULL
    ORDER BY i.slot, n.events DESC, i.kind, i.value
)
INSERT INTO identity_slots
    (slot, n_owners, owner, owner_status, has_known, has_new, anchor_kind, anchor_value)
SELECT s.slot, s.n_owners, s.owner, s.owner_status, s.has_known, s.has_new,
       CASE WHEN s.n_owners = 0 THEN a.kind END, CASE WHEN s.n_owners = 0 THEN a.value END
FROM (
    SELECT slot, count(DISTINCT owner) AS n_owners, min(owner) AS owner,
           min(owner_status) AS owner_status,
           bool_or(kind <> ALL(%(anonymous)s::text[])) AS has_known,
           bool_or(owner IS NULL) AS has_new
    FROM identity_input GROUP BY slot
) AS s
LEFT JOIN anchors AS a USING (slot)
"""

# Events outside the common cases, and those naming an unowned identifier
# that does not fit them (named by events of several owners, or of several
# groups, or by events with and without owners).
_MARK_RARE = """
UPDATE identity_slots SET rare = true
WHERE n_owners > 1
   OR (n_owners = 1 AND owner_status = 'anonymous' AND has_known)
   OR (n_owners = 1 AND owner_status <> ALL('{known,anonymous}'::text[]))
   OR slot IN (
        SELECT i.slot FROM identity_input AS i
        JOIN (
            SELECT i.kind, i.value
            FROM identity_input AS i JOIN identity_slots AS s USING (slot)
            WHERE i.owner IS NULL
            GROUP BY i.kind, i.value
            HAVING NOT (
                (bool_and(s.n_owners = 1) AND count(DISTINCT s.owner) = 1)
                OR (bool_and(s.n_owners = 0)
                    AND count(DISTINCT (s.anchor_kind, s.anchor_value)) = 1)
            )
        ) AS misfit USING (kind, value)
   )
"""

# Events that share an identifier or an owner with a rare event go to the
# planner with it, so that what the planner decides (a merge, a conversion,
# a new contact) cannot change what the set-based part decided. Repeated
# until nothing changes (once or twice: rare events are few).
_SPREAD_RARE_BY_IDENTIFIER = """
UPDATE identity_slots AS s SET rare = true
WHERE NOT s.rare AND s.slot IN (
    SELECT i.slot FROM identity_input AS i
    JOIN identity_input AS j USING (kind, value)
    JOIN identity_slots AS r ON r.slot = j.slot AND r.rare
)
"""

_SPREAD_RARE_BY_OWNER = """
UPDATE identity_slots AS s SET rare = true
WHERE NOT s.rare AND s.slot IN (
    SELECT i.slot FROM identity_input AS i
    JOIN identity_input AS j ON j.owner = i.owner
    JOIN identity_slots AS r ON r.slot = j.slot AND r.rare
)
"""

_RARE_SLOTS = "SELECT slot FROM identity_slots WHERE rare ORDER BY slot"

_NEW_GROUPS = """
SELECT anchor_kind, anchor_value, bool_or(has_known)
FROM identity_slots WHERE n_owners = 0 AND NOT rare
GROUP BY anchor_kind, anchor_value
ORDER BY min(slot)
"""

# The lock of an identifier is its 64-bit hash: two identifiers share a lock
# (and wait for each other needlessly) about never.
_LOCK_STAGED = """
SELECT count(*) FROM (
    SELECT pg_advisory_xact_lock(k) FROM (
        SELECT DISTINCT hashtextextended(%(account)s || chr(31) || kind || chr(31) || value, 0) AS k
        FROM identity_input WHERE owner IS NULL ORDER BY k
    ) AS keys
) AS locks
"""

_LOCK_GIVEN = """
SELECT count(*) FROM (
    SELECT pg_advisory_xact_lock(k) FROM (
        SELECT DISTINCT
            hashtextextended(%(account)s || chr(31) || u.kind || chr(31) || u.value, 0) AS k
        FROM unnest(%(kinds)s::text[], %(values)s::text[]) AS u(kind, value) ORDER BY k
    ) AS keys
) AS locks
"""

# After waiting: the owners of the identifiers that had none, one probe each.
_LOOK_AGAIN = """
UPDATE identity_input AS i SET (owner, owner_status) = (
    SELECT ci.contact_id, c.status
    FROM contact_identifiers AS ci JOIN contacts AS c ON c.id = ci.contact_id
    WHERE ci.account_id = %(account)s AND ci.kind = i.kind AND ci.value = i.value
)
WHERE i.owner IS NULL
"""

_TAKEN_MEANWHILE = """
SELECT count(*) FROM identity_input AS i
CROSS JOIN LATERAL (
    SELECT 1 FROM contact_identifiers AS ci
    WHERE ci.account_id = %(account)s AND ci.kind = i.kind AND ci.value = i.value
    OFFSET 0
) AS taken
WHERE i.owner IS NULL
"""

# Owners that gain identifiers or whose attributes the caller changes, and
# the contacts the planner's part changes (``extra``): locked in one pass in
# id order (as the planner's writer does); the first still live with the
# status they were classified with (the planner's writer checks its own).
# The ids to lock drive the join: with ``id IN (…) OR id = ANY(…)`` the
# planner scanned the whole contacts table.
_LOCK_OWNERS = """
WITH owners AS (
    SELECT DISTINCT owner, owner_status FROM identity_slots
    WHERE n_owners = 1 AND NOT rare AND (has_new OR slot = ANY(%(locked)s::int4[]))
), wanted AS (
    SELECT owner AS id, owner_status AS status FROM owners
    UNION ALL
    SELECT e.id, NULL FROM unnest(%(extra)s::text[]) AS e(id)
    WHERE e.id NOT IN (SELECT owner FROM owners)
)
SELECT count(*) FILTER (WHERE NOT live), count(*) FILTER (WHERE checked),
       (SELECT count(*) FROM owners)
FROM (
    SELECT x.status IS NOT NULL AS checked,
           x.status IS NULL OR (c.merged_into IS NULL AND c.status = x.status) AS live
    FROM wanted AS x
    JOIN contacts AS c ON c.id = x.id
    ORDER BY c.id
    FOR UPDATE OF c
) AS locked
"""

_NEW_CONTACTS = """
INSERT INTO contacts (id, account_id, status, attributes, merged_into, created_at, updated_at)
SELECT n.id, %(account)s, CASE WHEN n.known THEN 'known' ELSE 'anonymous' END, '{}',
       NULL, %(now)s, %(now)s
FROM unnest(%(ids)s::text[], %(known)s::bool[]) AS n(id, known)
"""

_ATTACH = """
INSERT INTO contact_identifiers (account_id, kind, value, contact_id, created_at)
SELECT DISTINCT ON (i.kind, i.value) %(account)s, i.kind, i.value, coalesce(s.owner, n.id), %(now)s
FROM identity_input AS i
JOIN identity_slots AS s USING (slot)
LEFT JOIN unnest(%(ids)s::text[], %(anchor_kinds)s::text[], %(anchor_values)s::text[])
    AS n(id, anchor_kind, anchor_value)
    ON s.n_owners = 0 AND n.anchor_kind = s.anchor_kind AND n.anchor_value = s.anchor_value
WHERE i.owner IS NULL AND NOT s.rare
ORDER BY i.kind, i.value
ON CONFLICT DO NOTHING
"""

_NEW_IDENTIFIER_COUNT = """
SELECT count(*) FROM (SELECT DISTINCT kind, value FROM identity_input WHERE owner IS NULL) AS n
"""

_ATTACH_COUNT = """
SELECT count(*) FROM (
    SELECT DISTINCT i.kind, i.value FROM identity_input AS i JOIN identity_slots AS s USING (slot)
    WHERE i.owner IS NULL AND NOT s.rare
) AS n
"""

_TOUCH_OWNERS = """
UPDATE contacts SET updated_at = %(now)s
WHERE id IN (SELECT owner FROM identity_slots WHERE n_owners = 1 AND has_new AND NOT rare)
"""

# One JSON array in entry order: decoding it costs less than reading 1000 rows.
_CONTACT_OF = """
SELECT json_agg(CASE WHEN NOT s.rare THEN coalesce(s.owner, n.id) END ORDER BY s.slot)::text
FROM identity_slots AS s
LEFT JOIN unnest(%(ids)s::text[], %(anchor_kinds)s::text[], %(anchor_values)s::text[])
    AS n(id, anchor_kind, anchor_value)
    ON s.n_owners = 0 AND n.anchor_kind = s.anchor_kind AND n.anchor_value = s.anchor_value
"""


class BulkResolution:
    """A batch staged and classified; :meth:`finish` writes its common cases.

    Between the two the caller plans the entries listed in ``rare`` with the
    planner, and passes the contacts that plan changes to :meth:`finish`,
    which locks them together with its own, in one sorted pass.
    """

    def __init__(self, conn: Connection, account_id: str, size: int, rare: list[int]) -> None:
        self._conn = conn
        self._account_id = account_id
        self._size = size
        #: The entries the planner must resolve, in order.
        self.rare = rare

    def finish(
        self, now: datetime, locked: Sequence[int] = (), extra_locks: Iterable[str] = ()
    ) -> tuple[list[str | None], set[str]]:
        """Write the common cases; their contact per entry (``None`` for a rare one) and
        the contacts created. ``ConcurrentUpdate`` if an owner changed meanwhile."""
        with self._conn.cursor() as cursor:
            cursor.execute(_LOCK_OWNERS, {"locked": list(locked), "extra": sorted(extra_locks)})
            row = cursor.fetchone()
            assert row is not None
            changed, checked, expected = row
            if changed or checked != expected:
                raise ConcurrentUpdate()

            cursor.execute(_NEW_GROUPS)
            groups = cursor.fetchall()
            ids = [new_id() for _ in groups]
            group_ids = {
                "ids": ids,
                "anchor_kinds": [g[0] for g in groups],
                "anchor_values": [g[1] for g in groups],
            }
            account = self._account_id
            if ids:
                known = [g[2] for g in groups]
                cursor.execute(
                    _NEW_CONTACTS, {"account": account, "now": now, "ids": ids, "known": known}
                )
            wanted = _fetch_count(cursor, _ATTACH_COUNT, {})
            if wanted:
                cursor.execute(_ATTACH, {"account": account, "now": now, **group_ids})
                if cursor.rowcount != wanted:
                    raise ConcurrentUpdate()
                cursor.execute(_TOUCH_OWNERS, {"now": now})
            cursor.execute(_CONTACT_OF, group_ids)
            row = cursor.fetchone()
            assert row is not None
            contact_ids: list[str | None] = orjson.loads(row[0])
        if len(contact_ids) != self._size:
            raise AssertionError("every entry of the batch has a row")
        return contact_ids, set(ids)


def start_bulk_resolution(
    conn: Connection, account_id: str, batch: Sequence[Sequence[Identifier]]
) -> BulkResolution | None:
    """Stage and classify ``batch``, and lock the identifiers it creates.

    ``None`` (before anything is locked) when the planner should take the
    whole batch: an entry without identifiers, or rare entries in a batch
    creating more identifiers than it may lock.
    """
    if not all(batch):
        return None  # an entry without identifiers: a contact of its own, the planner's
    entries = [
        (slot, identifier.kind, identifier.value)
        for slot, identifiers in enumerate(batch)
        for identifier in identifiers
    ]
    staged: dict[str, object] = {"account": account_id, "entries": orjson.dumps(entries).decode()}
    with conn.cursor() as cursor:
        cursor.execute(_CREATE)
        rare = _classify(cursor, staged)
        new = _fetch_count(cursor, _NEW_IDENTIFIER_COUNT, {})
        if new > MAX_IDENTIFIER_LOCKS and rare:
            # The planner's part would lock its own after the rows this part locks.
            return None
        if 0 < new <= MAX_IDENTIFIER_LOCKS:
            _fetch_count(cursor, _LOCK_STAGED, {"account": account_id})
            if _fetch_count(cursor, _TAKEN_MEANWHILE, {"account": account_id}):
                # A concurrent batch created some of them while this one waited:
                # look again. The locks are held, so the new answer stands.
                cursor.execute(_LOOK_AGAIN, {"account": account_id})
                cursor.execute("DELETE FROM identity_slots")
                rare = _classify_staged(cursor)
                _fetch_count(cursor, _LOCK_STAGED, {"account": account_id})
                if _fetch_count(cursor, _TAKEN_MEANWHILE, {"account": account_id}):
                    raise ConcurrentUpdate()
    return BulkResolution(conn, account_id, len(batch), rare)


def lock_new_identifiers(
    cursor: Cursor[TupleRow], account_id: str, new: Sequence[Identifier]
) -> None:
    """Wait for, then hold to the end of the transaction, the locks of identifiers to create.

    None beyond :data:`MAX_IDENTIFIER_LOCKS` (see there).
    """
    if 0 < len(new) <= MAX_IDENTIFIER_LOCKS:
        cursor.execute(
            _LOCK_GIVEN,
            {
                "account": account_id,
                "kinds": [i.kind for i in new],
                "values": [i.value for i in new],
            },
        )


def _classify(cursor: Cursor[TupleRow], staged: dict[str, object]) -> list[int]:
    """Stage and classify the batch; the entries the planner must resolve."""
    cursor.execute(_STAGE, staged)
    return _classify_staged(cursor)


def _classify_staged(cursor: Cursor[TupleRow]) -> list[int]:
    cursor.execute(_CLASSIFY, {"anonymous": sorted(ANONYMOUS_KINDS)})
    cursor.execute(_MARK_RARE)
    if cursor.rowcount:
        spreading = True
        while spreading:
            cursor.execute(_SPREAD_RARE_BY_IDENTIFIER)
            spreading = cursor.rowcount > 0
            cursor.execute(_SPREAD_RARE_BY_OWNER)
            spreading = spreading or cursor.rowcount > 0
    cursor.execute(_RARE_SLOTS)
    return [slot for (slot,) in cursor.fetchall()]


def _fetch_count(cursor: Cursor[TupleRow], query: str, params: dict[str, object]) -> int:
    cursor.execute(query, params)
    row = cursor.fetchone()
    assert row is not None
    return int(row[0])
