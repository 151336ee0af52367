"""Set-based identity resolution on PostgreSQL: the common cases of a batch in SQL.

``core.identity.plan_resolution`` states the rules and stays their
reference. Looking up every identifier of a 1000-event batch, building its
``Identifier`` objects and planning event by event cost about 33 ms of
Python per 1000 Netcore-shaped events (cProfile: a third each in the
lookup, the plan and the writes). Here the batch's (event, kind, value)
triples are staged into a temporary table in one array statement, and
PostgreSQL classifies and writes them; Python only builds three flat arrays
and reads back one contact id per event.

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

These are exactly the batches for which the planner, applied in input
order, creates one contact per group and attaches without converting,
merging or recording anything. Anything else (two owners, an anonymous
owner meeting a known identifier, groups without a common identifier, an
event without identifiers, pinned contacts) makes :func:`resolve_batch`
answer ``None`` before it has written anything, and the caller plans the
batch with the planner.

Concurrent batches creating the same contacts wait for each other instead
of failing: the unowned identifiers are locked with transaction-level
advisory locks on their hashes, in sorted order, then looked up again. A
batch that waited finds the other batch's committed contacts, classifies
again (still holding the locks, so nobody else can create them meanwhile)
and goes on (up to :data:`MAX_IDENTIFIER_LOCKS` new identifiers a batch;
beyond, a lost race is retried as before). The planner's writer takes
:func:`lock_new_identifiers` too, before its row locks, so both paths lock
in the same order: identifier hashes, then contact rows. ``ON CONFLICT DO NOTHING`` with a
count stays as the last guard; if it ever fires the caller's retry loop
handles it as before (``ConcurrentUpdate``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from psycopg import Cursor
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
    anchor_kind text, anchor_value text
) ON COMMIT DELETE ROWS;
DELETE FROM identity_input;
DELETE FROM identity_slots
"""

# One row per distinct (event, identifier), with its owner if it has one.
# Identifiers always name a live contact (a merge moves them to the survivor).
# OFFSET 0 keeps the lookup a probe of the primary key per staged row: joined
# instead, the planner may hash every identifier of the account (seen at
# 9,600 identifiers: 18 ms instead of 3), and the staging table has no
# statistics to stop it.
_STAGE = """
INSERT INTO identity_input (slot, kind, value, owner, owner_status)
SELECT t.slot, t.kind, t.value, o.contact_id, o.status
FROM (
    SELECT DISTINCT u.slot, u.kind, u.value
    FROM unnest(%(slots)s::int4[], %(kinds)s::text[], %(values)s::text[]) AS u(slot, kind, value)
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

# How many events and unowned identifiers fall outside the common cases.
_RARE = """
SELECT
    (SELECT count(*) FROM identity_slots
     WHERE n_owners > 1
        OR (n_owners = 1 AND owner_status = 'anonymous' AND has_known)
        OR (n_owners = 1 AND owner_status <> ALL('{known,anonymous}'::text[])))
  + (SELECT count(*) FROM (
        SELECT 1 FROM identity_input AS i JOIN identity_slots AS s USING (slot)
        WHERE i.owner IS NULL
        GROUP BY i.kind, i.value
        HAVING NOT (
            (bool_and(s.n_owners = 1) AND count(DISTINCT s.owner) = 1)
            OR (bool_and(s.n_owners = 0)
                AND count(DISTINCT (s.anchor_kind, s.anchor_value)) = 1)
        )
     ) AS bad)
"""

_NEW_GROUPS = """
SELECT anchor_kind, anchor_value, bool_or(has_known)
FROM identity_slots WHERE n_owners = 0
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

_TAKEN_MEANWHILE = """
SELECT count(*) FROM identity_input AS i
CROSS JOIN LATERAL (
    SELECT 1 FROM contact_identifiers AS ci
    WHERE ci.account_id = %(account)s AND ci.kind = i.kind AND ci.value = i.value
    OFFSET 0
) AS taken
WHERE i.owner IS NULL
"""

# Owners that gain identifiers or whose attributes the caller changes: locked
# in id order (as the planner's writer does) and still live with the status
# they were classified with.
_LOCK_OWNERS = """
SELECT count(*) FILTER (WHERE live), count(*), (
    SELECT count(DISTINCT owner) FROM identity_slots
    WHERE n_owners = 1 AND (has_new OR slot = ANY(%(locked)s::int4[]))
) FROM (
    SELECT c.merged_into IS NULL AND c.status = w.owner_status AS live
    FROM contacts AS c
    JOIN (
        SELECT DISTINCT owner, owner_status FROM identity_slots
        WHERE n_owners = 1 AND (has_new OR slot = ANY(%(locked)s::int4[]))
    ) AS w ON c.id = w.owner
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
WHERE i.owner IS NULL
ORDER BY i.kind, i.value
ON CONFLICT DO NOTHING
"""

_NEW_IDENTIFIER_COUNT = """
SELECT count(*) FROM (SELECT DISTINCT kind, value FROM identity_input WHERE owner IS NULL) AS n
"""

_TOUCH_OWNERS = """
UPDATE contacts SET updated_at = %(now)s
WHERE id IN (SELECT owner FROM identity_slots WHERE n_owners = 1 AND has_new)
"""

_CONTACT_OF = """
SELECT coalesce(s.owner, n.id)
FROM identity_slots AS s
LEFT JOIN unnest(%(ids)s::text[], %(anchor_kinds)s::text[], %(anchor_values)s::text[])
    AS n(id, anchor_kind, anchor_value)
    ON s.n_owners = 0 AND n.anchor_kind = s.anchor_kind AND n.anchor_value = s.anchor_value
ORDER BY s.slot
"""


def resolve_batch(
    cursor: Cursor[TupleRow],
    account_id: str,
    batch: Sequence[Sequence[Identifier]],
    now: datetime,
    locked: Sequence[int] = (),
) -> tuple[list[str], set[str]] | None:
    """The contact of each entry and the contacts created, or ``None`` for the planner.

    ``None`` comes before anything is written or locked. ``locked``: entries
    whose contacts stay locked to the end of the transaction.
    ``ConcurrentUpdate`` when a concurrent writer changed an owner under us.
    """
    slots: list[int] = []
    kinds: list[str] = []
    values: list[str] = []
    for slot, identifiers in enumerate(batch):
        if not identifiers:
            return None  # a contact of its own, which only the planner makes
        for identifier in identifiers:
            slots.append(slot)
            kinds.append(identifier.kind)
            values.append(identifier.value)
    staged: dict[str, object] = {
        "account": account_id,
        "slots": slots,
        "kinds": kinds,
        "values": values,
    }
    cursor.execute(_CREATE)
    if not _classify(cursor, staged):
        return None
    if 0 < _fetch_count(cursor, _NEW_IDENTIFIER_COUNT, {}) <= MAX_IDENTIFIER_LOCKS:
        _fetch_count(cursor, _LOCK_STAGED, {"account": account_id})
        if _fetch_count(cursor, _TAKEN_MEANWHILE, {"account": account_id}):
            # A concurrent batch created some of them while this one waited:
            # look again. The locks are held, so the new answer stands.
            cursor.execute("DELETE FROM identity_input; DELETE FROM identity_slots")
            if not _classify(cursor, staged):
                raise ConcurrentUpdate()  # now a rare case: the planner, from scratch
            _fetch_count(cursor, _LOCK_STAGED, {"account": account_id})
            if _fetch_count(cursor, _TAKEN_MEANWHILE, {"account": account_id}):
                raise ConcurrentUpdate()

    cursor.execute(_LOCK_OWNERS, {"locked": list(locked)})
    row = cursor.fetchone()
    assert row is not None
    live, found, expected = row
    if live != found or found != expected:
        raise ConcurrentUpdate()

    cursor.execute(_NEW_GROUPS)
    groups = cursor.fetchall()
    ids = [new_id() for _ in groups]
    group_ids = {
        "ids": ids,
        "anchor_kinds": [g[0] for g in groups],
        "anchor_values": [g[1] for g in groups],
    }
    if ids:
        cursor.execute(
            _NEW_CONTACTS,
            {"account": account_id, "now": now, "ids": ids, "known": [g[2] for g in groups]},
        )
    wanted = _fetch_count(cursor, _NEW_IDENTIFIER_COUNT, {})
    if wanted:
        cursor.execute(_ATTACH, {"account": account_id, "now": now, **group_ids})
        if cursor.rowcount != wanted:
            raise ConcurrentUpdate()
        cursor.execute(_TOUCH_OWNERS, {"now": now})
    cursor.execute(_CONTACT_OF, group_ids)
    contact_ids = [contact_id for (contact_id,) in cursor.fetchall()]
    if len(contact_ids) != len(batch):
        raise AssertionError("every entry of the batch has a contact")
    return contact_ids, set(ids)


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


def _classify(cursor: Cursor[TupleRow], staged: dict[str, object]) -> bool:
    """Stage and classify the batch; whether every entry is a common case."""
    cursor.execute(_STAGE, staged)
    cursor.execute(_CLASSIFY, {"anonymous": sorted(ANONYMOUS_KINDS)})
    return _fetch_count(cursor, _RARE, {}) == 0


def _fetch_count(cursor: Cursor[TupleRow], query: str, params: dict[str, object]) -> int:
    cursor.execute(query, params)
    row = cursor.fetchone()
    assert row is not None
    return int(row[0])
