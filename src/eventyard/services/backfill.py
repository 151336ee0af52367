"""Activity backfills: a file of historical activities, loaded in chunks through staging.

``eventyard activities import`` streams the file (a local path, an http(s)
or s3 URL: ``services/sources.py``), parses it (``core/activity_import.py``)
a chunk ahead in a thread, and stores each chunk of
``EVENTYARD_IMPORT_CHUNK_ROWS`` rows in one transaction:

1. the distinct identifier sets of the chunk are resolved set-based through
   staging tables (``services/bulk_resolution.py``), the rare ones by the
   planner, creating the contacts nobody has yet, with ingest's rules;
2. the activities go in by ``COPY`` (through a staging table and
   ``INSERT … ON CONFLICT DO NOTHING`` when they carry an ``id``, so that
   a file loaded twice stores each of them once), with ``source`` "import",
   the ``dialect`` the operator names, and ``journey_eligible`` false:
   history starts no journey.

Each committed chunk moves ``BackfillTally.rows_done``; a backfill that
stops part way says where, and ``--after-row`` goes on from there.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import datetime
from typing import Any, Literal

from eventyard.core.activity_import import (
    BackfillRow,
    BackfillTally,
    read_csv_activities,
    read_json_lines,
)
from eventyard.core.contact_import import RowError
from eventyard.core.errors import EventyardError
from eventyard.core.identifiers import Identifier
from eventyard.core.identity import primary_rank, resolving_identifier
from eventyard.core.ids import new_id
from eventyard.core.model import Account
from eventyard.services.bulk_resolution import resolve_chunk
from eventyard.services.imports import csv_records
from eventyard.services.ports import Store, UnitOfWork
from eventyard.services.resolution import resolve_contacts
from eventyard.services.sources import (
    Download,
    SourceRefused,
    chunks_after,
    open_source,
    read_ahead,
    split_lines,
)
from eventyard.settings import Settings

BackfillFormat = Literal["ndjson", "csv"]
#: What a backfilled activity names as its source.
BACKFILL_SOURCE = "import"
#: The prefix of the dedup key of an activity with an ``id``.
DEDUP_PREFIX = "import:"


def format_of(source: str) -> BackfillFormat:
    """The format a file's name says: ``.csv`` is CSV, anything else NDJSON."""
    path = source.split("?", 1)[0].lower()
    return "csv" if path.endswith((".csv", ".csv.gz")) else "ndjson"


def import_activities(
    store: Store,
    settings: Settings,
    account: Account,
    source: str,
    dialect: str,
    tally: BackfillTally,
    *,
    file_format: BackfillFormat,
    local_files: bool,
    clock: Callable[[], datetime],
    on_chunk: Callable[[BackfillTally, Download], None] | None = None,
) -> None:
    """Load the activities of ``source`` after line ``tally.rows_done`` into ``account``.

    ``tally`` is brought up to date after each committed chunk (so after a
    failure it says what is stored); ``on_chunk`` runs after each commit.
    """
    with open_source(source, settings, local_files=local_files) as download:
        rows: Iterator[BackfillRow | RowError]
        if file_format == "csv":
            rows = read_csv_activities(csv_records(download.chunks), account.primary_kinds)
        else:
            rows = read_json_lines(split_lines(download.chunks), account.primary_kinds)
        chunks = read_ahead(chunks_after(rows, tally.rows_done, settings.import_chunk_rows))
        try:
            with closing(chunks):
                for chunk in chunks:
                    with store.unit_of_work() as uow:
                        stored, repeated, created = store_activities(
                            uow,
                            account,
                            [row for row in chunk if isinstance(row, BackfillRow)],
                            dialect,
                            clock(),
                        )
                        uow.commit()
                    for row in chunk:
                        if isinstance(row, RowError):
                            tally.fail(row)
                    tally.total += stored + repeated
                    tally.stored += stored
                    tally.repeated += repeated
                    tally.contacts_created += created
                    tally.rows_done = chunk[-1].number
                    if on_chunk is not None:
                        on_chunk(tally, download)
        except EventyardError as exc:  # the header cannot be read
            raise SourceRefused(exc.message) from exc


def store_activities(
    uow: UnitOfWork, account: Account, rows: list[BackfillRow], dialect: str, now: datetime
) -> tuple[int, int, int]:
    """Resolve and store ``rows`` in ``uow``: (stored, repeats left out, contacts created)."""
    if not rows:
        return 0, 0, 0
    # Many activities name the same person: each distinct set of identifiers
    # is resolved once.
    slot_of: dict[tuple[tuple[str, str], ...], int] = {}
    for row in rows:
        slot_of.setdefault(row.identifiers, len(slot_of))
    batch = list(slot_of)
    chunk = resolve_chunk(uow, account, batch, now)
    created = len(chunk.creating)
    if chunk.rare:
        rare = [tuple(Identifier(kind, value) for kind, value in batch[s]) for s in chunk.rare]
        owners, new = resolve_contacts(uow, account, rare, now)
        for slot, owner in zip(chunk.rare, owners, strict=True):
            chunk.contact_of[slot] = owner
        created += len(new)
    contact_of = chunk.contact_of
    # Provenance, once per distinct set of identifiers (core.identity).
    rank = primary_rank(account.primary_kinds)
    resolved = [
        resolving_identifier([Identifier(kind, value) for kind, value in pairs], rank)
        for pairs in batch
    ]
    activities: list[tuple[Any, ...]] = [
        (
            new_id(),
            account.id,
            contact_of[slot_of[row.identifiers]],
            row.name,
            row.occurred_at,
            now,
            BACKFILL_SOURCE,
            dialect,
            False,
            row.properties,
            *_provenance(resolved[slot_of[row.identifiers]]),
            None if row.activity_id is None else DEDUP_PREFIX + row.activity_id,
        )
        for row in rows
    ]
    stored = uow.staging.insert_activities(activities)
    hour = now.replace(minute=0, second=0, microsecond=0)
    uow.ingest_stats.add_counts(
        account.id, Counter((hour, dialect, a[3]) for a in activities if a[0] in stored)
    )
    return len(stored), len(rows) - len(stored), created


def _provenance(identifier: Identifier | None) -> tuple[str | None, str | None]:
    return (None, None) if identifier is None else (identifier.kind, identifier.value)
