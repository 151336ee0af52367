"""Contact imports from CSV files: submit one, run it as a job, report how it went.

One import is one ``contacts.import`` job. Its worker streams the file
(``services/sources.py``), parses it row by row and stores good rows in
chunks of ``EVENTYARD_IMPORT_CHUNK_ROWS``, set-based through staging tables
with ingest's identity rules (``services/bulk_resolution.py``). Each chunk
commits together with the job's progress (counts, first errors, the last row
done), so a worker that dies mid-file leaves a consistent checkpoint and the
worker that takes the job over goes on after it: no row is counted twice.
At the end the completion and the notification jobs (a signed callback, an
e-mail) commit in one transaction.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from eventyard.core.contact_import import (
    MAX_HEADER_BYTES,
    ImportRow,
    ImportTally,
    RowError,
    read_rows,
    sniff_delimiter,
)
from eventyard.core.errors import EventyardError
from eventyard.core.identifiers import normalize_email
from eventyard.core.model import Account, Job, ProfileUpdate
from eventyard.services.bulk_resolution import resolve_chunk
from eventyard.services.ingest import store_records
from eventyard.services.jobs import JobFailed, JobRun, LeaseLost, enqueue
from eventyard.services.pacing import give_way
from eventyard.services.ports import Store, UnitOfWork
from eventyard.services.sources import (
    Download,
    SourceRefused,
    SourceUnavailable,
    check_source,
    check_url,
    chunks_after,
    open_source,
    read_ahead,
)
from eventyard.settings import Settings

CONTACT_IMPORT_JOB = "contacts.import"
CALLBACK_JOB = "contacts.import.callback"
EMAIL_JOB = "contacts.import.email"
IMPORT_MAX_ATTEMPTS = 3
#: With the default backoff base (2 s): 4 s, 8 s … about 8.5 minutes in all.
CALLBACK_MAX_ATTEMPTS = 8
EMAIL_MAX_ATTEMPTS = 5
#: What the stored profile updates name as their dialect.
IMPORT_DIALECT = "csv_import"


@dataclass(frozen=True, slots=True)
class ImportRequest:
    """What a client asked for: the file, the list to join, whom to tell at the end."""

    source: str
    list_id: int | None = None
    notify_email: str | None = None
    callback: str | None = None


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def submit_import(
    store: Store, settings: Settings, account: Account, request: ImportRequest, *, now: datetime
) -> str:
    """Check the request and enqueue the import job; its id, once committed.

    400 for a path that may not be read (kind, shape, an SSRF-refused host),
    a malformed callback URL or e-mail, an e-mail without an SMTP server in
    the settings, and a ``list_id`` that names no list of the account.
    """
    try:
        check_source(request.source, settings, local_files=settings.import_local_files)
    except SourceRefused as exc:
        raise EventyardError("invalid_path", str(exc), 400) from exc
    if request.callback is not None:
        try:
            check_url(request.callback, settings, what="callback")
        except SourceRefused as exc:
            raise EventyardError("invalid_callback", str(exc), 400) from exc
    notify_email = None
    if request.notify_email is not None:
        try:
            notify_email = normalize_email(request.notify_email)
        except ValueError as exc:
            raise EventyardError(
                "invalid_notifyemail", f"notifyemail {request.notify_email!r} {exc}", 400
            ) from exc
        if not settings.smtp_host:
            raise EventyardError(
                "invalid_notifyemail",
                "notifyemail cannot be honoured: this server has no SMTP server "
                "(EVENTYARD_SMTP_HOST)",
                400,
            )
    with store.unit_of_work() as uow:
        if request.list_id is not None and uow.lists.get(account.id, request.list_id) is None:
            raise EventyardError(
                "unknown_list", f"listid {request.list_id} names no list of this account", 400
            )
        job_id = enqueue(
            uow,
            account_id=account.id,
            kind=CONTACT_IMPORT_JOB,
            payload={
                "source": request.source,
                "list_id": request.list_id,
                "notify_email": notify_email,
                "callback": request.callback,
                "submitted_at": iso_utc(now),
            },
            max_attempts=IMPORT_MAX_ATTEMPTS,
            now=now,
        )
        uow.commit()
    return job_id


# --- reading the file ---------------------------------------------------------


class _ChunkReader(io.RawIOBase):
    """Chunks of bytes as a file object, for ``io.TextIOWrapper``."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._left = chunk
        size = min(len(buffer), len(self._left))
        buffer[:size] = self._left[:size]
        self._left = self._left[size:]
        return size


def csv_records(chunks: Iterator[bytes]) -> Iterator[list[str]]:
    """The records of a CSV file given as chunks, in bounded memory.

    UTF-8 with or without a byte order mark; the delimiter (``,`` ``;`` or
    tab) is sniffed from the header line; quoted fields may hold delimiters,
    quotes (doubled) and line breaks.
    """
    head: list[bytes] = []
    size = 0
    for chunk in chunks:
        head.append(chunk)
        size += len(chunk)
        if b"\n" in chunk or size >= MAX_HEADER_BYTES:
            break
    first_line = b"".join(head).split(b"\n", 1)[0]
    header_text = codecs.getincrementaldecoder("utf-8-sig")("replace").decode(first_line)
    delimiter = sniff_delimiter(header_text)
    raw = _ChunkReader(itertools.chain(head, chunks))
    text = io.TextIOWrapper(io.BufferedReader(raw, 1 << 16), encoding="utf-8-sig", newline="")
    reader = csv.reader(text, delimiter=delimiter)
    try:
        yield from reader
    except UnicodeDecodeError as exc:
        raise SourceRefused(
            f"the file is not UTF-8 text (near record {reader.line_num + 1}): {exc.reason}"
        ) from exc
    except csv.Error as exc:
        raise SourceRefused(f"the CSV cannot be read at line {reader.line_num}: {exc}") from exc


# --- storing rows ---------------------------------------------------------------


def store_rows(
    uow: UnitOfWork,
    account: Account,
    rows: list[ImportRow],
    list_id: int | None,
    tally: ImportTally,
    now: datetime,
) -> None:
    """Upsert ``rows`` in ``uow`` (set-based) and count them into ``tally``.

    A row counts as ``created`` when it created its contact, ``updated``
    otherwise (a later row for a contact an earlier one created included).
    Rows for one contact apply in file order, so the last value wins. The
    common rows go through staging tables (``services/bulk_resolution.py``),
    the rare ones (a conversion, a merge, a conflict) through ingest's own
    path, in the same transaction.
    """
    if not rows:
        return
    chunk = resolve_chunk(
        uow,
        account,
        [[(i.kind, i.value) for i in row.identifiers] for row in rows],
        now,
        attributes=[row.attributes for row in rows],
        list_id=list_id,
    )
    failed: dict[int, str] = {}
    if chunk.rare:
        rare = [rows[slot] for slot in chunk.rare]
        updates = [
            ProfileUpdate(row.identifiers, row.attributes, dialect=IMPORT_DIALECT) for row in rare
        ]
        outcome = store_records(uow, account, updates, now=now)
        refused = {r.index: r.message for r in outcome.rejected}
        seen: set[str] = set()
        for index, (slot, contact_id) in enumerate(
            zip(chunk.rare, outcome.contact_ids, strict=True)
        ):
            if contact_id is None:
                failed[slot] = refused.get(index, "not stored")
                continue
            chunk.contact_of[slot] = contact_id
            if contact_id in outcome.created_contacts and contact_id not in seen:
                chunk.creating.add(slot)
            seen.add(contact_id)
        if list_id is not None:
            members = {chunk.contact_of[slot] for slot in chunk.rare} - {None}
            uow.lists.add_members(account.id, list_id, cast(set[str], members), now)
    for slot, row in enumerate(rows):
        if slot in failed:
            tally.fail(RowError(row.number, failed[slot]))
            continue
        tally.total += 1
        if slot in chunk.creating:
            tally.created += 1
        else:
            tally.updated += 1


Checkpoint = Callable[[UnitOfWork, ImportTally, Download], None]


def import_rows(
    store: Store,
    settings: Settings,
    account: Account,
    source: str,
    list_id: int | None,
    tally: ImportTally,
    *,
    local_files: bool,
    clock: Callable[[], datetime],
    checkpoint: Checkpoint | None = None,
    on_batch: Callable[[ImportTally, Download], None] | None = None,
    pace: Callable[[float], object] | None = None,
) -> None:
    """Import the rows of ``source`` after ``tally.rows_done`` into ``account``.

    ``tally`` is brought up to date after each committed batch (so after a
    failure it says what is stored). ``checkpoint`` runs inside each batch's
    transaction (the job saves its progress there); ``on_batch`` after each
    commit (the CLI moves its progress bar); ``pace`` after each chunk with
    the seconds it took (the job gives way to the API there).
    """
    with open_source(source, settings, local_files=local_files) as download:

        def flush(chunk: list[ImportRow | RowError]) -> None:
            after = ImportTally.from_json(tally.to_json())
            good: list[ImportRow] = []
            for item in chunk:
                if isinstance(item, RowError):
                    after.fail(item)
                else:
                    good.append(item)
            if chunk:
                after.rows_done = chunk[-1].number
            with store.unit_of_work() as uow:
                store_rows(uow, account, good, list_id, after, clock())
                if checkpoint is not None:
                    checkpoint(uow, after, download)
                uow.commit()
            tally.__dict__.update(after.__dict__)
            if on_batch is not None:
                on_batch(tally, download)

        rows = read_rows(csv_records(download.chunks), account.primary_kinds)
        # The next chunk is read and parsed while this one is written: the
        # parser's Python runs while the database works on the chunk.
        chunks = read_ahead(chunks_after(rows, tally.rows_done, settings.import_chunk_rows))
        try:
            with closing(chunks):
                for chunk in chunks:
                    started = time.monotonic()
                    flush(chunk)
                    if pace is not None:
                        pace(time.monotonic() - started)
        except EventyardError as exc:  # the header cannot be imported
            raise SourceRefused(exc.message) from exc
        if tally.rows_done == 1:  # an empty file: its outcome is committed all the same
            flush([])


# --- the jobs -------------------------------------------------------------------


def progress_json(tally: ImportTally, download: Download | None) -> dict[str, Any]:
    doc = tally.to_json()
    if download is not None:
        doc.update(bytes_read=download.read, bytes_total=download.size)
    return doc


def run_import_job(run: JobRun) -> dict[str, Any]:
    """The ``contacts.import`` handler: import, then notify, exactly once.

    A refused or unreadable file fails the job at once; a network or database
    trouble is retried (going on after the last committed batch). Either way
    a job that ends ``failed`` still notifies the callback and the e-mail,
    with ``status: "failed"`` and the error.
    """
    job = run.job
    payload = job.payload
    with run.store.unit_of_work(write=False) as uow:
        account = uow.accounts.get(job.account_id) if job.account_id else None
        gone = (
            payload.get("list_id") is not None
            and account is not None
            and uow.lists.get(account.id, payload["list_id"]) is None
        )
    if account is None:
        raise JobFailed(f"account {job.account_id} no longer exists")
    tally = ImportTally.from_json(job.progress) if job.progress else ImportTally()
    if gone:
        message = f"list {payload['list_id']} no longer exists"
        notify_end(run, account, "failed", tally, message)
        raise JobFailed(message)

    def checkpoint(uow: UnitOfWork, after: ImportTally, download: Download) -> None:
        if not uow.jobs.heartbeat(
            job.id, run.worker_id, run.now(), run.lease_seconds, progress_json(after, download)
        ):
            raise LeaseLost(f"job {job.id} is no longer worker {run.worker_id}'s")

    try:
        import_rows(
            run.store,
            run.settings,
            account,
            payload["source"],
            payload.get("list_id"),
            tally,
            local_files=run.settings.import_local_files,
            clock=run.now,
            checkpoint=checkpoint,
            pace=lambda worked: give_way(run.foreground, worked, run.settings.import_busy_share),
        )
    except LeaseLost:
        raise
    except SourceRefused as exc:
        notify_end(run, account, "failed", tally, str(exc))
        raise JobFailed(str(exc)) from exc
    except Exception as exc:
        if job.attempts >= job.max_attempts:
            message = str(exc) if isinstance(exc, SourceUnavailable) else f"{exc!r}"
            notify_end(run, account, "failed", tally, message)
        raise
    result = tally.to_json()
    with run.store.unit_of_work() as uow:
        finished = enqueue_notifications(uow, run, account, "completed", tally, None)
        run.complete_in(uow, {**result, "list_id": payload.get("list_id"), **finished})
        uow.commit()
    return result


def notify_end(
    run: JobRun, account: Account, status: str, tally: ImportTally, error: str | None
) -> None:
    """Queue the notifications of an import that ends now, in a transaction of their own."""
    with run.store.unit_of_work() as uow:
        enqueue_notifications(uow, run, account, status, tally, error)
        uow.commit()


def import_report(
    job_id: str,
    status: str,
    list_id: int | None,
    tally: ImportTally,
    finished_at: datetime,
    error: str | None,
) -> dict[str, Any]:
    """The callback body (and what the e-mail says)."""
    report: dict[str, Any] = {
        "requestid": job_id,
        "status": status,
        "listid": list_id,
        "total": tally.total,
        "created": tally.created,
        "updated": tally.updated,
        "failed": tally.failed,
        "errors": tally.errors,
        "finished_at": iso_utc(finished_at),
    }
    if error is not None:
        report["error"] = error
    return report


def enqueue_notifications(
    uow: UnitOfWork,
    run: JobRun,
    account: Account,
    status: str,
    tally: ImportTally,
    error: str | None,
) -> dict[str, Any]:
    """Queue the callback and e-mail jobs the import asked for; their ids by name."""
    job = run.job
    payload = job.payload
    now = run.now()
    report = import_report(job.id, status, payload.get("list_id"), tally, now, error)
    ids: dict[str, Any] = {"finished_at": report["finished_at"]}
    if payload.get("callback"):
        ids["callback_job"] = enqueue(
            uow,
            account_id=account.id,
            kind=CALLBACK_JOB,
            payload={"url": payload["callback"], "body": report},
            max_attempts=CALLBACK_MAX_ATTEMPTS,
            now=now,
        )
    if payload.get("notify_email"):
        ids["email_job"] = enqueue(
            uow,
            account_id=account.id,
            kind=EMAIL_JOB,
            payload={"to": payload["notify_email"], "source": payload["source"], "report": report},
            max_attempts=EMAIL_MAX_ATTEMPTS,
            now=now,
        )
    return ids


def import_summary(job: Job) -> dict[str, Any] | None:
    """For an import job, its counts and first errors so far (``None`` for other kinds)."""
    if job.kind != CONTACT_IMPORT_JOB:
        return None
    tally = ImportTally.from_json(job.result or job.progress or {})
    doc = tally.to_json()
    del doc["rows_done"]
    return doc
