"""Activity exports: a durable job writes the matching activities to a file.

The file is newline-delimited JSON (one record per line) or CSV, written in
keyset batches so memory stays flat however many rows match, first to a
``.part`` file that is renamed when complete: a download never sees half a
file. A worker that dies mid-export leaves the job to be retried from the
start (the ``.part`` file is rewritten).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from eventyard.core.activity_query import ActivityQuery, decode_query_token, encode_query_token
from eventyard.core.errors import NotFound
from eventyard.core.model import Account, Job
from eventyard.services.accounts import get_account
from eventyard.services.activity_search import FoundActivity, stream_activities
from eventyard.services.jobs import JobFailed, JobRun, enqueue_job, get_job
from eventyard.services.ports import Store, UnitOfWork

EXPORT_ACTIVITIES = "exports.activities"
ExportFormat = Literal["json", "csv"]
FORMATS: tuple[ExportFormat, ...] = ("json", "csv")
SUFFIX = {"json": "ndjson", "csv": "csv"}
MEDIA_TYPE = {"json": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
#: Spreadsheet programs run a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


#: What an export field may hold: an activity's ``id``, ``contact_id`` (the
#: contact that stands for it now), ``name``, ``occurred_at``, ``received_at``
#: (ISO 8601 UTC), ``properties``, ``unsearchable``; ``identifier:<kind>``
#: (the contact's first identifier of that kind); ``identifiers`` (each of
#: the contact's identifier kinds as a field of its own, JSON only).
SOURCES = ("id", "contact_id", "name", "occurred_at", "received_at", "properties", "unsearchable")


def check_fields(fields: Sequence[tuple[str, str]]) -> None:
    for name, source in fields:
        if not name:
            raise ValueError("an export field needs a name")
        if (
            source not in SOURCES
            and source != "identifiers"
            and not source.startswith("identifier:")
        ):
            raise ValueError(f"unknown export field source {source!r}")


def render_record(found: FoundActivity, fields: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """One activity as the export's fields name it (the dialect chose the names)."""
    activity = found.activity
    record: dict[str, Any] = {}
    for name, source in fields:
        if source == "identifiers":
            for identifier in found.identifiers:
                record.setdefault(identifier.kind, identifier.value)
        elif source.startswith("identifier:"):
            kind = source.partition(":")[2]
            record[name] = next((i.value for i in found.identifiers if i.kind == kind), None)
        elif source == "contact_id":
            record[name] = found.contact_id
        elif source in ("occurred_at", "received_at"):
            moment: datetime = getattr(activity, source)
            record[name] = moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
        elif source == "unsearchable":
            if activity.unsearchable:
                record[name] = list(activity.unsearchable)
        else:
            record[name] = getattr(activity, source)
    return record


def start_activity_export(
    store: Store,
    account: Account,
    query: ActivityQuery,
    *,
    export_format: ExportFormat,
    name: str | None,
    fields: Sequence[tuple[str, str]],
    now: datetime,
) -> str:
    """Enqueue an export of the activities matching ``query``; its job id once committed.

    ``fields`` are ``(field name, source)`` pairs (see ``SOURCES``): the
    record of each activity, and for CSV the columns, in order.
    """
    check_fields(fields)
    payload = {
        "query": encode_query_token(query),
        "format": export_format,
        "name": name,
        "fields": [list(pair) for pair in fields],
    }
    return enqueue_job(store, account=account, kind=EXPORT_ACTIVITIES, payload=payload, now=now)


def export_path(export_dir: Path, job: Job) -> Path:
    """Where the finished file of an export job lives."""
    fmt = job.payload.get("format", "json")
    return export_dir / str(job.account_id) / f"{job.id}.{SUFFIX.get(fmt, 'ndjson')}"


def finished_export(
    store: Store, export_dir: Path, account: Account, job_id: str
) -> tuple[Path, Job]:
    """The file of a completed export of ``account``; ``NotFound`` otherwise."""
    job = get_job(store, account, job_id)
    if job.kind != EXPORT_ACTIVITIES:
        raise NotFound(f"No export {job_id!r}")
    path = export_path(export_dir, job)
    if job.status != "completed" or not path.is_file():
        raise NotFound(f"Export {job_id!r} has no file yet (status {job.status})")
    return path, job


def run_activity_export(run: JobRun) -> dict[str, Any]:
    """The export job: stream every matching activity into the job's file."""
    job = run.job
    if job.account_id is None:
        raise JobFailed("an export belongs to an account")
    try:
        account = get_account(run.store, job.account_id)
    except NotFound as exc:
        raise JobFailed(str(exc)) from exc
    payload = job.payload
    fmt = payload.get("format")
    if fmt not in FORMATS:
        raise JobFailed(f"payload.format must be json or csv, not {fmt!r}")
    try:
        query = decode_query_token(str(payload.get("query")))
    except ValueError as exc:
        raise JobFailed(f"payload.query {exc}") from exc
    try:
        fields = [(str(name), str(source)) for name, source in payload.get("fields") or []]
        check_fields(fields)
    except (TypeError, ValueError) as exc:
        raise JobFailed(f"payload.fields: {exc}") from exc
    columns = [name for name, source in fields if source != "identifiers"]
    path = export_path(Path(run.settings.export_dir), job)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    rows = 0
    with part.open("w", encoding="utf-8", newline="") as out:
        writer = None
        if fmt == "csv":
            writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
        if writer is not None:
            writer.writeheader()
        # A replica's lag is tolerated: the export holds what was stored
        # before it started, give or take EVENTYARD_READ_MAX_LAG_SECONDS.
        for batch in stream_activities(run.reads, account, query):
            for found in batch:
                record = render_record(found, fields)
                if writer is not None:
                    writer.writerow({k: csv_cell(record.get(k)) for k in columns})
                else:
                    out.write(orjson.dumps(record).decode())
                    out.write("\n")
            rows += len(batch)
            run.heartbeat({"rows": rows})
        out.flush()
        os.fsync(out.fileno())
    # A contact erased while this export ran may have rows in it already.
    with run.store.unit_of_work(write=False) as uow:
        erased = uow.erasures.erased_since(account.id, job.started_at or job.created_at)
    if erased:
        rows -= drop_contact_rows(part, job, erased)
    part.replace(path)
    return {"rows": rows, "format": fmt, "bytes": path.stat().st_size, "name": payload.get("name")}


def drop_contact_rows(path: Path, job: Job, contact_ids: set[str]) -> int:
    """Remove the rows of ``contact_ids`` from an export file; how many went.

    Rows are matched by the export's contact id field. A file whose fields
    name no contact cannot be sorted out row by row, so it is deleted whole
    (every row counted) rather than kept with the erased person in it.
    """
    fields = [(str(name), str(source)) for name, source in job.payload.get("fields") or []]
    contact_fields = [name for name, source in fields if source == "contact_id"]
    if not contact_fields:
        with path.open(encoding="utf-8") as old:
            lines = sum(1 for _ in old)
        path.unlink()
        return lines - int(job.payload.get("format") == "csv")
    field = contact_fields[0]
    dropped = 0
    fresh = path.with_name(path.name + ".erasing")
    with (
        path.open(encoding="utf-8", newline="") as old,
        fresh.open("w", encoding="utf-8", newline="") as out,
    ):
        if job.payload.get("format") == "csv":
            reader = csv.DictReader(old)
            writer = csv.DictWriter(out, fieldnames=reader.fieldnames or [])
            writer.writeheader()
            for row in reader:
                if row.get(field) in contact_ids:
                    dropped += 1
                else:
                    writer.writerow(row)
        else:
            for line in old:
                if orjson.loads(line).get(field) in contact_ids:
                    dropped += 1
                else:
                    out.write(line)
        out.flush()
        os.fsync(out.fileno())
    fresh.replace(path)
    return dropped


def drop_contact_from_exports(
    uow: UnitOfWork, export_dir: Path, account: Account, contact_ids: set[str]
) -> int:
    """Remove the contacts' rows from every export file of ``account`` still on disk."""
    folder = export_dir / account.id
    if not folder.is_dir():
        return 0
    dropped = 0
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".ndjson", ".csv"):
            continue  # an export still being written (.part) leaves them out when it ends
        job = uow.jobs.get(account.id, path.stem)
        if job is None or job.kind != EXPORT_ACTIVITIES:
            continue
        dropped += drop_contact_rows(path, job, contact_ids)
    return dropped


def csv_cell(value: Any) -> str:
    """A CSV cell: text as is, other values as JSON; formula starts escaped with ``'``."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text
