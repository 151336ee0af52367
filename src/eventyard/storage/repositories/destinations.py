"""Destinations, their outbox, deliveries and dead letters (services/destinations)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from eventyard.core.destinations import (
    DeadLetter,
    DeliveryClaim,
    DeliveryItem,
    Destination,
    DestinationStats,
    Route,
)
from eventyard.core.ids import new_id
from eventyard.storage.repositories.activities import ACTIVITY_COLUMNS, activities_from_values
from eventyard.storage.sql_dialect import (
    in_values,
    insert_ignoring_conflicts,
    insert_rows,
    supports_row_locks,
)
from eventyard.storage.tables import (
    activities,
    destination_dead_letters,
    destination_deliveries,
    destination_outbox,
    destinations,
)


def _destination(row: Any) -> Destination:
    return Destination(
        id=row.id,
        account_id=row.account_id,
        name=row.name,
        kind=row.kind,
        url=row.url,
        sealed_credentials=row.credentials,
        filter=row.filter,
        enabled=row.enabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
        delivered=row.delivered,
        failed_attempts=row.failed_attempts,
        last_delivery_at=row.last_delivery_at,
        last_error=row.last_error,
    )


class DestinationRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- the destinations themselves -------------------------------------------------------

    def add(self, row: Mapping[str, Any]) -> None:
        self.conn.execute(insert(destinations).values(delivered=0, failed_attempts=0, **dict(row)))

    def get(self, account_id: str, destination_id: str) -> Destination | None:
        d = destinations.c
        row = self.conn.execute(
            select(destinations).where(d.account_id == account_id, d.id == destination_id)
        ).first()
        return None if row is None else _destination(row)

    def of_account(self, account_id: str) -> list[Destination]:
        d = destinations.c
        rows = self.conn.execute(
            select(destinations).where(d.account_id == account_id).order_by(d.id)
        )
        return [_destination(r) for r in rows]

    def update(self, account_id: str, destination_id: str, values: Mapping[str, Any]) -> bool:
        d = destinations.c
        result = self.conn.execute(
            update(destinations)
            .where(d.account_id == account_id, d.id == destination_id)
            .values(**dict(values))
        )
        return bool(result.rowcount == 1)

    def delete(self, account_id: str, destination_id: str) -> bool:
        """Remove it with its outbox, deliveries and dead letters."""
        for table in (destination_outbox, destination_deliveries, destination_dead_letters):
            self.conn.execute(
                delete(table).where(
                    table.c.account_id == account_id, table.c.destination_id == destination_id
                )
            )
        d = destinations.c
        result = self.conn.execute(
            delete(destinations).where(d.account_id == account_id, d.id == destination_id)
        )
        return bool(result.rowcount == 1)

    def routes(self, account_id: str) -> list[Route]:
        """The account's destinations and their filters (one primary-key range).

        Paused ones included: a pause holds deliveries back, it drops nothing.
        """
        d = destinations.c
        rows = self.conn.execute(select(d.id, d.filter).where(d.account_id == account_id))
        return [Route(r.id, r.filter or {}) for r in rows]

    def with_stats(
        self, account_id: str, destination_id: str
    ) -> tuple[Destination, DestinationStats] | None:
        """The destination and its figures, read in one statement.

        One statement is one snapshot in PostgreSQL: read one after the other,
        a settlement committing in between showed its outbox rows gone but
        not yet counted as delivered (``pending`` 0 with ``delivered`` short).
        """
        d, o, dl = destinations.c, destination_outbox.c, destination_dead_letters.c
        queued = and_(o.account_id == account_id, o.destination_id == destination_id)
        row = self.conn.execute(
            select(
                destinations,
                select(func.count()).where(queued).scalar_subquery().label("pending"),
                select(func.min(o.queued_at)).where(queued).scalar_subquery().label("oldest"),
                select(func.count())
                .where(dl.account_id == account_id, dl.destination_id == destination_id)
                .scalar_subquery()
                .label("dead"),
            ).where(d.account_id == account_id, d.id == destination_id)
        ).first()
        if row is None:
            return None
        stats = DestinationStats(
            pending=int(row.pending), dead=int(row.dead), oldest_pending_at=row.oldest
        )
        return _destination(row), stats

    def dead_letters(
        self, account_id: str, destination_id: str, limit: int, after: str | None
    ) -> list[DeadLetter]:
        dl = destination_dead_letters.c
        query = select(destination_dead_letters).where(
            dl.account_id == account_id, dl.destination_id == destination_id
        )
        if after is not None:
            query = query.where(dl.activity_id > after)
        rows = self.conn.execute(query.order_by(dl.activity_id).limit(limit))
        return [DeadLetter(r.activity_id, r.status, r.reason, r.answer, r.dead_at) for r in rows]

    # -- the outbox ------------------------------------------------------------------------

    def enqueue(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Queue fresh activities (ids nobody queued yet): COPY on PostgreSQL."""
        insert_rows(self.conn, destination_outbox, [dict(r) for r in rows])

    def enqueue_again(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Queue stored activities again; those still waiting are left as they are."""
        if rows:
            self.conn.execute(
                insert_ignoring_conflicts(self.conn, destination_outbox), [dict(r) for r in rows]
            )

    def history(
        self,
        account_id: str,
        start: datetime,
        end: datetime,
        received_before: datetime | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Any]:
        """Activities that occurred in ``[start, end)``, by (occurred_at, id), after ``after``."""
        a = activities.c
        query = select(a.id, a.contact_id, a.occurred_at, a.name, a.dialect, a.source).where(
            a.account_id == account_id, a.occurred_at >= start, a.occurred_at < end
        )
        if received_before is not None:
            query = query.where(a.received_at < received_before)
        if after is not None:
            when, last_id = after
            query = query.where(
                or_(a.occurred_at > when, and_(a.occurred_at == when, a.id > last_id))
            )
        return list(self.conn.execute(query.order_by(a.occurred_at, a.id).limit(limit)))

    def take_dead_letters(self, account_id: str, destination_id: str, limit: int) -> list[Any]:
        """Remove up to ``limit`` dead letters; the activities (id, contact, when) still stored."""
        dl = destination_dead_letters.c
        ids = list(
            self.conn.execute(
                select(dl.activity_id)
                .where(dl.account_id == account_id, dl.destination_id == destination_id)
                .order_by(dl.activity_id)
                .limit(limit)
            ).scalars()
        )
        if not ids:
            return []
        self.conn.execute(
            delete(destination_dead_letters).where(
                dl.account_id == account_id,
                dl.destination_id == destination_id,
                in_values(self.conn, dl.activity_id, ids),
            )
        )
        a = activities.c
        found = self.conn.execute(
            select(a.id, a.contact_id, a.occurred_at).where(
                a.account_id == account_id, in_values(self.conn, a.id, ids)
            )
        )
        # An erased activity's dead letter goes without a replay.
        return list(found)

    # -- deliveries ------------------------------------------------------------------------

    def claim_delivery(
        self,
        worker_id: str,
        now: datetime,
        lease_seconds: float,
        lanes: int,
        batch: int,
        linger_seconds: float = 0.0,
    ) -> DeliveryClaim | None:
        """A delivery to attempt now, leased to ``worker_id``: one due again, or a new one.

        A delivery is due when its ``next_attempt_at`` has come and no live
        lease holds it (its worker settled it for a retry, or died). A new
        delivery takes up to ``batch`` waiting rows of a lane without an
        open delivery, once the lane has ``batch`` rows or its oldest has
        waited ``linger_seconds``; the lane's unique constraint lets one
        claimer win.
        """
        lease_until = now + timedelta(seconds=lease_seconds)
        claim = self._claim_due(worker_id, now, lease_until)
        if claim is not None:
            return claim
        ripe = now - timedelta(seconds=linger_seconds)
        return self._claim_new(worker_id, now, lease_until, lanes, batch, ripe)

    def _claim_due(
        self, worker_id: str, now: datetime, lease_until: datetime
    ) -> DeliveryClaim | None:
        dv, d = destination_deliveries.c, destinations.c
        query = (
            select(dv.account_id, dv.id, dv.destination_id, dv.lane, dv.attempts)
            .join(
                destinations,
                and_(d.account_id == dv.account_id, d.id == dv.destination_id),
            )
            .where(
                dv.next_attempt_at <= now,
                or_(dv.lease_expires_at.is_(None), dv.lease_expires_at < now),
                d.enabled.is_(True),
            )
            .order_by(dv.next_attempt_at)
            .limit(1)
        )
        if supports_row_locks(self.conn):
            query = query.with_for_update(skip_locked=True, of=destination_deliveries)
        row = self.conn.execute(query).first()
        if row is None:
            return None
        self.conn.execute(
            update(destination_deliveries)
            .where(dv.account_id == row.account_id, dv.id == row.id)
            .values(lease_owner=worker_id, lease_expires_at=lease_until)
        )
        return DeliveryClaim(row.account_id, row.id, row.destination_id, row.lane, row.attempts)

    def _claim_new(
        self,
        worker_id: str,
        now: datetime,
        lease_until: datetime,
        lanes: int,
        batch: int,
        ripe: datetime,
    ) -> DeliveryClaim | None:
        d, dv, o = destinations.c, destination_deliveries.c, destination_outbox.c
        enabled = list(self.conn.execute(select(d.account_id, d.id).where(d.enabled.is_(True))))
        if not enabled:
            return None
        busy = {
            (r.account_id, r.destination_id, r.lane)
            for r in self.conn.execute(select(dv.account_id, dv.destination_id, dv.lane))
        }
        # Shuffled: concurrent workers start on different lanes, and no
        # destination waits behind another's backlog.
        pairs = [(acc, dest, lane) for acc, dest in enabled for lane in range(lanes)]
        random.shuffle(pairs)
        for account_id, destination_id, lane in pairs:
            if (account_id, destination_id, lane) in busy:
                continue
            in_lane = and_(
                o.account_id == account_id,
                o.destination_id == destination_id,
                o.lane == lane,
                o.delivery_id.is_(None),
            )
            in_order = (o.replay, o.activity_id)
            # A lane short of a full batch waits until its first row has
            # lingered: under load deliveries grow to full batches instead of
            # going out a few rows at a time. Both looks stop at one row.
            first = self.conn.execute(
                select(o.queued_at).where(in_lane).order_by(*in_order).limit(1)
            ).first()
            if first is None:
                continue
            if first.queued_at > ripe:
                full = self.conn.execute(
                    select(o.activity_id)
                    .where(in_lane)
                    .order_by(*in_order)
                    .offset(batch - 1)
                    .limit(1)
                ).first()
                if full is None:
                    continue
            ids = list(
                self.conn.execute(
                    select(o.activity_id).where(in_lane).order_by(*in_order).limit(batch)
                ).scalars()
            )
            delivery_id = new_id()
            created = self.conn.execute(
                insert_ignoring_conflicts(self.conn, destination_deliveries)
                .values(
                    account_id=account_id,
                    id=delivery_id,
                    destination_id=destination_id,
                    lane=lane,
                    attempts=0,
                    next_attempt_at=now,
                    lease_owner=worker_id,
                    lease_expires_at=lease_until,
                    created_at=now,
                )
                .returning(dv.id)
            ).first()
            if created is None:
                continue  # another worker opened this lane's delivery first
            self.conn.execute(
                update(destination_outbox)
                .where(
                    o.account_id == account_id,
                    o.destination_id == destination_id,
                    in_values(self.conn, o.activity_id, ids),
                    o.delivery_id.is_(None),
                )
                .values(delivery_id=delivery_id)
            )
            return DeliveryClaim(account_id, delivery_id, destination_id, lane, 0)
        return None

    def delivery_items(
        self, account_id: str, destination_id: str, delivery_id: str
    ) -> list[DeliveryItem]:
        """The delivery's activities in lane order, read from the activities table.

        Two statements: the outbox rows, then the activities by id within
        their time range. As one join, PostgreSQL read the account's
        activities in every monthly partition for each delivery.
        """
        o, a = destination_outbox.c, activities.c
        queued = self.conn.execute(
            select(o.activity_id, o.queued_at, o.occurred_at)
            .where(
                o.account_id == account_id,
                o.destination_id == destination_id,
                o.delivery_id == delivery_id,
            )
            .order_by(o.replay, o.activity_id)
        ).all()
        if not queued:
            return []
        occurred = [when for _, _, when in queued]
        rows = self.conn.execute(
            select(*ACTIVITY_COLUMNS).where(
                a.account_id == account_id,
                in_values(self.conn, a.id, [activity_id for activity_id, _, _ in queued]),
                a.occurred_at >= min(occurred),
                a.occurred_at <= max(occurred),
            )
        ).all()  # one fetch of every row: iterating a result fetches row by row
        found = {activity.id: activity for activity in activities_from_values(rows)}
        return [
            DeliveryItem(activity_id, found.get(activity_id), queued_at)
            for activity_id, queued_at, _ in queued
        ]

    def extend_lease(
        self, account_id: str, delivery_id: str, worker_id: str, lease_until: datetime
    ) -> bool:
        dv = destination_deliveries.c
        result = self.conn.execute(
            update(destination_deliveries)
            .where(dv.account_id == account_id, dv.id == delivery_id, dv.lease_owner == worker_id)
            .values(lease_expires_at=lease_until)
        )
        return bool(result.rowcount == 1)

    def settle(
        self,
        claim: DeliveryClaim,
        worker_id: str,
        now: datetime,
        *,
        done: Iterable[str],
        delivered: int,
        dead: Sequence[tuple[str, int | None, str, str | None]],
        retry_at: datetime | None,
        error: str | None,
        failed: bool = True,
        whole: bool = False,
    ) -> bool:
        """Record an attempt; ``False`` (nothing written) when the lease went to another worker.

        ``done`` (delivered, dead or erased) leave the outbox; ``dead`` are
        ``(activity_id, status, reason, answer)``. With ``retry_at`` the
        delivery waits until then with the rest (``failed``: the attempt
        counts as a failed one); without, it closes. ``whole``: ``done`` and
        ``dead`` are every activity the delivery holds.
        """
        dv, o, dl, d = (
            destination_deliveries.c,
            destination_outbox.c,
            destination_dead_letters.c,
            destinations.c,
        )
        own = and_(
            dv.account_id == claim.account_id, dv.id == claim.id, dv.lease_owner == worker_id
        )
        if retry_at is not None:
            result = self.conn.execute(
                update(destination_deliveries)
                .where(own)
                .values(
                    attempts=dv.attempts + 1 if failed else dv.attempts,
                    next_attempt_at=retry_at,
                    lease_owner=None,
                    lease_expires_at=None,
                    last_error=None if error is None else error[:2000],
                )
            )
        else:
            result = self.conn.execute(delete(destination_deliveries).where(own))
        if result.rowcount != 1:
            return False
        finished = sorted(set(done) | {entry[0] for entry in dead})
        mine = and_(o.account_id == claim.account_id, o.destination_id == claim.destination_id)
        if whole:
            # Every row of the delivery finished: found by its index, no id list.
            self.conn.execute(delete(destination_outbox).where(mine, o.delivery_id == claim.id))
        elif finished:
            self.conn.execute(
                delete(destination_outbox).where(
                    mine, in_values(self.conn, o.activity_id, finished)
                )
            )
        if retry_at is None and not whole:
            # Anything left (there should be nothing) waits for the lane's next delivery.
            self.conn.execute(
                update(destination_outbox)
                .where(mine, o.delivery_id == claim.id)
                .values(delivery_id=None)
            )
        if dead:
            dead_ids = [entry[0] for entry in dead]
            self.conn.execute(
                delete(destination_dead_letters).where(
                    dl.account_id == claim.account_id,
                    dl.destination_id == claim.destination_id,
                    in_values(self.conn, dl.activity_id, dead_ids),
                )
            )
            self.conn.execute(
                insert(destination_dead_letters),
                [
                    {
                        "account_id": claim.account_id,
                        "destination_id": claim.destination_id,
                        "activity_id": activity_id,
                        "status": status,
                        "reason": reason[:2000],
                        "answer": answer,
                        "dead_at": now,
                    }
                    for activity_id, status, reason, answer in dead
                ],
            )
        values: dict[str, Any] = {}
        if delivered:
            values.update(delivered=d.delivered + delivered, last_delivery_at=now)
        if retry_at is not None and failed:
            values["failed_attempts"] = d.failed_attempts + 1
        if error is not None:
            values["last_error"] = error[:2000]
        if values:
            self.conn.execute(
                update(destinations)
                .where(d.account_id == claim.account_id, d.id == claim.destination_id)
                .values(**values)
            )
        return True
