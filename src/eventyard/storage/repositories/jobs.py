"""Durable jobs: claiming with leases, in-order queues, and settling what became of them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, literal, or_, select, update
from sqlalchemy.engine import Connection

from eventyard.core.model import Job, JobStatus
from eventyard.storage.sql_dialect import in_values, supports_row_locks
from eventyard.storage.tables import jobs
from eventyard.storage.types import UTCDateTime

#: A job in one of these states holds back the later jobs of its queue.
_ACTIVE = ("queued", "running")


def _job(row: Any) -> Job:
    return Job(
        id=row.id,
        account_id=row.account_id,
        kind=row.kind,
        queue=row.queue,
        status=row.status,
        payload=row.payload,
        progress=row.progress,
        result=row.result,
        error=row.error,
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        run_after=row.run_after,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        updated_at=row.updated_at,
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
    )


class JobRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert new jobs (one statement for all of them); rows name every column."""
        if rows:
            self.conn.execute(insert(jobs), list(rows))

    def claim(
        self, worker_id: str, now: datetime, lease_seconds: float, kinds: Sequence[str] | None
    ) -> Job | None:
        """Take the oldest job that may run now, for ``lease_seconds``; ``None`` if there is none.

        A job may run when it is queued and due, or when it is running under a
        lease that expired (its worker died). A job with a ``queue`` waits until
        no earlier job of that queue (smaller id) is queued or running, so one
        queue's jobs run one at a time, in order. Only jobs of ``kinds`` are
        considered (every kind when ``None``).

        PostgreSQL: the row is locked with ``FOR UPDATE SKIP LOCKED``, so
        concurrent claimers each get a different job without waiting; a job
        another transaction is claiming looks still queued to them and so holds
        back its queue. SQLite: the write transaction holds the database's
        write lock (``BEGIN IMMEDIATE``), so claims happen one at a time.
        """
        if kinds is not None and not kinds:
            return None
        j = jobs.c
        # The head of each queue: its oldest job still queued or running. Only
        # a head may run. Found in one pass over the active jobs, so a long
        # backlog in one queue costs a claim a scan, not one per waiting job.
        active = jobs.alias("active")
        heads = (
            select(func.min(active.c.id))
            .where(active.c.status.in_(_ACTIVE), active.c.queue.is_not(None))
            .group_by(active.c.queue)
        )
        query = (
            select(j.id)
            .where(
                or_(
                    and_(j.status == "queued", j.run_after <= now),
                    and_(j.status == "running", j.lease_expires_at < now),
                ),
                or_(j.queue.is_(None), j.id.in_(heads)),
            )
            .order_by(j.id)
            .limit(1)
        )
        if kinds is not None:
            query = query.where(in_values(self.conn, j.kind, kinds))
        if supports_row_locks(self.conn):
            query = query.with_for_update(skip_locked=True, of=jobs)
        job_id = self.conn.execute(query).scalar()
        if job_id is None:
            return None
        row = self.conn.execute(
            update(jobs)
            .where(j.id == job_id)
            .values(
                status="running",
                lease_owner=worker_id,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                attempts=j.attempts + 1,
                started_at=func.coalesce(j.started_at, literal(now, UTCDateTime())),
                updated_at=now,
            )
            .returning(*jobs.c)
        ).one()
        return _job(row)

    def heartbeat(
        self,
        job_id: str,
        worker_id: str,
        now: datetime,
        lease_seconds: float,
        progress: dict[str, Any] | None = None,
    ) -> bool:
        """Extend the lease (and save ``progress``); ``False`` if the job is no longer ours."""
        values: dict[str, Any] = {
            "lease_expires_at": now + timedelta(seconds=lease_seconds),
            "updated_at": now,
        }
        if progress is not None:
            values["progress"] = progress
        return self._update_own(job_id, worker_id, values)

    def finish(
        self,
        job_id: str,
        worker_id: str,
        status: JobStatus,
        result: dict[str, Any] | None,
        error: str | None,
        now: datetime,
    ) -> bool:
        """Settle the job as ``status``; ``False`` (and nothing changed) if it is no longer ours."""
        return self._update_own(
            job_id,
            worker_id,
            {
                "status": status,
                "result": result,
                "error": error,
                "finished_at": now,
                "lease_owner": None,
                "lease_expires_at": None,
                "updated_at": now,
            },
        )

    def release_for_retry(
        self, job_id: str, worker_id: str, run_after: datetime, error: str, now: datetime
    ) -> bool:
        """Queue the job again, to run from ``run_after``; ``False`` if it is no longer ours."""
        return self._update_own(
            job_id,
            worker_id,
            {
                "status": "queued",
                "run_after": run_after,
                "error": error,
                "lease_owner": None,
                "lease_expires_at": None,
                "updated_at": now,
            },
        )

    def get(self, account_id: str | None, job_id: str) -> Job | None:
        """The job, if it belongs to ``account_id``; ``None`` looks in every account (operators)."""
        query = select(jobs).where(jobs.c.id == job_id)
        if account_id is not None:
            query = query.where(jobs.c.account_id == account_id)
        row = self.conn.execute(query).first()
        return None if row is None else _job(row)

    def list(self, account_id: str | None, kind: str | None = None, limit: int = 50) -> list[Job]:
        """The newest ``limit`` jobs of ``account_id`` (of every account when ``None``)."""
        query = select(jobs)
        if account_id is not None:
            query = query.where(jobs.c.account_id == account_id)
        if kind is not None:
            query = query.where(jobs.c.kind == kind)
        rows = self.conn.execute(query.order_by(jobs.c.id.desc()).limit(limit))
        return [_job(r) for r in rows]

    def _update_own(self, job_id: str, worker_id: str, values: dict[str, Any]) -> bool:
        """Apply ``values`` to the job only while ``worker_id`` holds its lease.

        On PostgreSQL, a worker reclaiming the job at the same moment locks
        the row first or waits for this update; either way exactly one of them
        still finds the lease its own.
        """
        j = jobs.c
        result = self.conn.execute(
            update(jobs)
            .where(j.id == job_id, j.lease_owner == worker_id, j.status == "running")
            .values(**values)
        )
        return bool(result.rowcount == 1)
