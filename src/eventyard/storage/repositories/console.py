"""What the web console reads and writes: sessions, the instance secret, and the
few lookups no other repository makes (identifier search, live tail, totals)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, delete, func, or_, select, tuple_
from sqlalchemy.engine import Connection

from eventyard.core.identifiers import Identifier
from eventyard.core.lists import ContactList
from eventyard.core.model import Activity
from eventyard.storage.repositories.activities import activity_from_row
from eventyard.storage.sql_dialect import insert_ignoring_conflicts
from eventyard.storage.tables import (
    activities,
    console_sessions,
    contact_identifiers,
    contacts,
    credentials,
    instance_secrets,
    list_members,
    lists,
)

#: The highest code point: ``prefix + _TOP`` sorts after every value starting with ``prefix``.
_TOP = "\U0010ffff"


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class ConsoleRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def instance_secret(self, name: str, candidate: str, now: datetime) -> str:
        """The secret called ``name``; ``candidate`` becomes it if there is none yet.

        Insert-or-ignore then read back: every process agrees on the first one
        committed, whichever process wrote it.
        """
        self.conn.execute(
            insert_ignoring_conflicts(self.conn, instance_secrets).values(
                name=name, value=candidate, created_at=now
            )
        )
        value: str = self.conn.execute(
            select(instance_secrets.c.value).where(instance_secrets.c.name == name)
        ).scalar_one()
        return value

    def add_session(
        self,
        session_id: str,
        account_id: str,
        credential_id: str,
        csrf_token: str,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        self.conn.execute(
            console_sessions.insert().values(
                id=session_id,
                account_id=account_id,
                credential_id=credential_id,
                csrf_token=csrf_token,
                created_at=now,
                expires_at=expires_at,
            )
        )

    def get_session(self, session_id: str, now: datetime) -> tuple[str, str, str] | None:
        """``(account_id, csrf_token, credential kind)`` of a live session.

        Live: not expired, and signed in with a credential that is neither
        revoked nor expired (revoking it ends the session).
        """
        s, c = console_sessions.c, credentials.c
        row = self.conn.execute(
            select(s.account_id, s.csrf_token, c.kind)
            .join(credentials, and_(c.id == s.credential_id, c.account_id == s.account_id))
            .where(
                s.id == session_id,
                s.expires_at > now,
                c.revoked_at.is_(None),
                or_(c.expires_at.is_(None), c.expires_at > now),
            )
        ).first()
        return None if row is None else (row.account_id, row.csrf_token, row.kind)

    def delete_session(self, session_id: str) -> None:
        self.conn.execute(delete(console_sessions).where(console_sessions.c.id == session_id))

    def purge_sessions(self, now: datetime) -> int:
        """Forget expired sessions (an index range on ``expires_at``)."""
        result = self.conn.execute(
            delete(console_sessions).where(console_sessions.c.expires_at <= now)
        )
        return int(result.rowcount or 0)

    def owners_of(
        self, account_id: str, identifiers: Sequence[Identifier]
    ) -> list[tuple[Identifier, str]]:
        """The identifiers among ``identifiers`` the account has, with their contact ids."""
        if not identifiers:
            return []
        ci = contact_identifiers.c
        rows = self.conn.execute(
            select(ci.kind, ci.value, ci.contact_id)
            .where(
                ci.account_id == account_id,
                tuple_(ci.kind, ci.value).in_([(i.kind, i.value) for i in identifiers]),
            )
            .order_by(ci.kind, ci.value)
        )
        return [(Identifier(r.kind, r.value), r.contact_id) for r in rows]

    def identifiers_starting(
        self, account_id: str, kind: str, prefix: str, limit: int
    ) -> list[tuple[Identifier, str]]:
        """Up to ``limit`` identifiers of ``kind`` whose value starts with ``prefix``, in order.

        A range on the primary key (account_id, kind, value); the LIKE beside it
        keeps the answer exact under a collation that does not sort by code point.
        """
        ci = contact_identifiers.c
        rows = self.conn.execute(
            select(ci.kind, ci.value, ci.contact_id)
            .where(
                ci.account_id == account_id,
                ci.kind == kind,
                ci.value >= prefix,
                ci.value < prefix + _TOP,
                ci.value.like(_like_escaped(prefix) + "%", escape="\\"),
            )
            .order_by(ci.value)
            .limit(limit)
        )
        return [(Identifier(r.kind, r.value), r.contact_id) for r in rows]

    def lists_of_contact(self, account_id: str, contact_id: str) -> list[ContactList]:
        m, li = list_members.c, lists.c
        rows = self.conn.execute(
            select(li.id, li.name, li.created_at)
            .select_from(list_members.join(lists, lists.c.id == m.list_id))
            .where(m.account_id == account_id, m.contact_id == contact_id)
            .order_by(li.name)
        )
        return [ContactList(id=r.id, name=r.name, created_at=r.created_at) for r in rows]

    def activities_after(
        self,
        account_id: str,
        after_id: str,
        *,
        dialect: str | None,
        name: str | None,
        limit: int,
    ) -> list[Activity]:
        """The newest ``limit`` activities whose id sorts after ``after_id``, oldest first.

        Ids start with their creation time, so this is a short range of the
        primary key however many activities are stored.
        """
        a = activities.c
        stmt = select(activities).where(a.id > after_id, a.account_id == account_id)
        if dialect:
            stmt = stmt.where(a.dialect == dialect)
        if name:
            stmt = stmt.where(a.name == name)
        rows = self.conn.execute(stmt.order_by(a.id.desc()).limit(limit)).all()
        return [activity_from_row(r, r.contact_id) for r in reversed(rows)]

    def count_contacts(self, account_id: str) -> dict[str, int]:
        """Live contacts by status (``known``, ``anonymous``); merged ones are left out."""
        c = contacts.c
        rows = self.conn.execute(
            select(c.status, func.count())
            .where(c.account_id == account_id, c.merged_into.is_(None))
            .group_by(c.status)
        )
        return {r[0]: int(r[1]) for r in rows}

    def count_activities(self, account_id: str) -> int:
        """Every activity the account has stored (a scan of its index entries)."""
        count: int = self.conn.execute(
            select(func.count())
            .select_from(activities)
            .where(activities.c.account_id == account_id)
        ).scalar_one()
        return count
