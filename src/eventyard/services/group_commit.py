"""Group commit: concurrent small ingest requests share one transaction and one fsync.

A request of a few records spends most of its time waiting for its commit
to reach the disk. The :class:`GroupCommitter` of a process collects the
requests that arrive while a commit is in flight and stores them together
in the next transaction, in arrival order; each caller is answered only
after that transaction has committed. Requests of one account and rules
are stored as one batch (one claim of all their Idempotency-Keys, one
resolution of all their contacts, one insert, one completion of the keys),
so the statements of a group do not grow with its requests; a request whose
outcome needs a call of its own (see :func:`mergeable`), or a batch that
fails, falls back to one savepoint per request. No
timer is involved: the next group forms while the previous one's commit
runs, so a lone request is stored at once and a busy server makes larger
groups.

Each request gets the outcome it would have had alone, stored one after
the other:

- Its records see those of the requests before it in the group (a contact
  two requests create is one contact, a message id the first claims is a
  repeat for the second, an Idempotency-Key used twice is replayed).
- An error the request's own records or answer raise (a refused Cordial
  activity, an Idempotency-Key conflict) rolls back its savepoint only and
  is its answer; the others are stored.
- Any other exception of a member (one its records meet only in the
  database) rolls back its savepoint; the member is run again alone after
  the group's commit, and gets whatever that gives.
- When the group's transaction cannot commit, every member is run again
  alone; when the store is unavailable every member gets the 503.

A member run again calls its ``respond`` again: renderers must not
accumulate state between calls (the last call's response is the answer).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import cast

from eventyard.core.commands import Record
from eventyard.core.errors import EventyardError, StoreUnavailable
from eventyard.core.model import NewActivity, ProfileUpdate, RecordsOutcome, StoredResponse
from eventyard.services.idempotency import ClaimResult, IdempotencyRequest, complete_keys
from eventyard.services.idempotency import claim_keys as claim_idempotency_keys
from eventyard.services.ingest import (
    IngestRequest,
    ingest_request,
    store_records,
    store_request,
)
from eventyard.services.ports import Store, UnitOfWork

log = logging.getLogger("eventyard")


@dataclass(frozen=True, slots=True, eq=False)
class _Member:
    request: IngestRequest
    answer: Future[StoredResponse]


class GroupCommitter:
    """Stores concurrent ingest requests of one process in shared transactions.

    One thread per committer (started on the first request) runs the
    groups; callers wait on the :class:`~concurrent.futures.Future` that
    :meth:`submit` returns. ``max_records`` is the largest request (records
    stored now plus records queued) that joins a group; larger ones amortise
    their own commit and are better stored alone. ``max_group`` bounds the
    requests of one transaction. ``on_group`` is told the size of every group
    committed (a metric).
    """

    def __init__(
        self,
        store: Store,
        *,
        max_records: int,
        max_group: int,
        on_group: Callable[[int], None] | None = None,
    ) -> None:
        self._store = store
        self.max_records = max_records
        self.max_group = max_group
        self._on_group = on_group
        self._pending: list[_Member] = []
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def accepts(self, request: IngestRequest) -> bool:
        """Whether ``request`` is small enough to join a group (a dry run never does)."""
        if request.dry_run:
            return False
        size = len(request.records)
        if request.deferred is not None:
            size += len(request.deferred.records)
        return size <= self.max_records

    def submit(self, request: IngestRequest) -> Future[StoredResponse]:
        """Queue ``request`` for the next group; the future has its response once committed.

        A future cancelled before its group starts is dropped unstored (its
        caller is gone and nobody was told it was stored).
        """
        answer: Future[StoredResponse] = Future()
        with self._changed:
            if self._closed:
                raise StoreUnavailable()
            self._pending.append(_Member(request, answer))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="eventyard-group-commit", daemon=True
                )
                self._thread.start()
            self._changed.notify()
        return answer

    def close(self) -> None:
        """Store what is queued, then stop the thread (a later request starts it again).

        Requests submitted while it closes get 503 with Retry-After.
        """
        with self._changed:
            self._closed = True
            self._changed.notify()
            thread = self._thread
        if thread is not None:
            thread.join()
        with self._changed:
            self._thread = None
            self._closed = False

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._pending and not self._closed:
                    self._changed.wait()
                if not self._pending:
                    return
                taken = self._pending[: self.max_group]
                del self._pending[: self.max_group]
            # A member whose caller went away before its group started is dropped.
            group = [m for m in taken if m.answer.set_running_or_notify_cancel()]
            if not group:
                continue
            try:
                self._commit_group(group)
            except BaseException as exc:  # never leave a caller waiting
                log.exception("group commit failed")
                for member in group:
                    if not member.answer.done():
                        member.answer.set_exception(exc)

    def _commit_group(self, group: list[_Member]) -> None:
        if len(group) == 1:
            self._run_alone(group[0])
            if self._on_group is not None:
                self._on_group(1)
            return
        answers: list[tuple[_Member, StoredResponse | EventyardError]] = []
        again: list[_Member] = []
        try:
            with self._store.unit_of_work() as uow:
                merged, single = partition(group)
                for part in merged:
                    done = store_merged(uow, part, again)
                    if done is None:
                        single.extend(part)  # split: each request in a savepoint of its own
                    else:
                        answers.extend(done)
                single.sort(key=group.index)
                for member in single:
                    answers.extend(store_member(uow, member, again))
                uow.commit()
        except StoreUnavailable as exc:
            for member in group:
                member.answer.set_exception(exc)
            return
        except Exception:
            log.warning("a group commit failed; storing its requests one by one", exc_info=True)
            for member in group:
                self._run_alone(member)
            return
        if self._on_group is not None:
            self._on_group(len(group))
        for member, answer in answers:
            if isinstance(answer, EventyardError):
                member.answer.set_exception(answer)
            else:
                member.answer.set_result(answer)
        for member in again:
            self._run_alone(member)

    def _run_alone(self, member: _Member) -> None:
        try:
            response = ingest_request(self._store, member.request)
        except Exception as exc:
            member.answer.set_exception(exc)
        else:
            member.answer.set_result(response)


Answers = list[tuple[_Member, StoredResponse | EventyardError]]


def store_member(uow: UnitOfWork, member: _Member, again: list[_Member]) -> Answers:
    """Store one request in a savepoint of its own; a failure rolls back only that."""
    try:
        with uow.savepoint():
            response, keep = store_request(uow, member.request)
            if not keep:
                raise _Discard(response)
    except _Discard as discard:
        return [(member, discard.response)]
    except EventyardError as exc:
        return [(member, exc)]
    except Exception:
        again.append(member)
        return []
    return [(member, response)]


def mergeable(request: IngestRequest) -> bool:
    """Whether ``request``'s records can be stored in one batch with others' and split back.

    Not when its outcome depends on being a call of its own: activities
    with a dedup key (which of two equal ones is stored is not reported per
    record) and ``create_only`` profile updates (they apply only to contacts
    created by the same call). Nor queued records.
    """
    if request.deferred is not None and request.deferred.records:
        return False
    for record in request.records:
        if isinstance(record, NewActivity) and record.dedup_key is not None:
            return False
        if isinstance(record, ProfileUpdate) and record.strategy == "create_only":
            return False
    return True


def partition(group: Sequence[_Member]) -> tuple[list[list[_Member]], list[_Member]]:
    """The mergeable members by account and rules (in order), and the others."""
    merged: list[list[_Member]] = []
    single: list[_Member] = []
    for member in group:
        request = member.request
        if not mergeable(request):
            single.append(member)
            continue
        for part in merged:
            first = part[0].request
            if (
                first.account == request.account
                and first.rules == request.rules
                and first.event_limits == request.event_limits
            ):
                part.append(member)
                break
        else:
            merged.append([member])
    return merged, single


def store_merged(uow: UnitOfWork, part: list[_Member], again: list[_Member]) -> Answers | None:
    """Store the records of ``part`` as one batch in a savepoint, and answer each member.

    Set-based: a handful of statements for the whole part instead of a
    handful per request. Each member's outcome is its slice of the batch's
    (the batch resolves and dedups in order, as the requests one after the
    other would). ``None`` when a member's answer failed (its renderer
    refused it, or the batch met an error): the savepoint is rolled back and
    the caller stores the members one by one.
    """
    if len(part) == 1:
        return None
    answers: Answers = []
    later: list[_Member] = []
    try:
        with uow.savepoint():
            storing = claim_keys(uow, part, answers, later)
            if storing:
                answers.extend(store_batch(uow, storing))
    except Exception:
        return None
    again.extend(later)
    return answers


def claim_keys(
    uow: UnitOfWork, part: list[_Member], answers: Answers, again: list[_Member]
) -> list[_Member]:
    """Claim the members' Idempotency-Keys in one statement; the members that still have work.

    A replay is answered with the stored response, a conflict with its 409;
    a key a member before it in ``part`` uses is left for after the commit,
    when it will be replayed or refused.
    """
    claiming: list[_Member] = []
    keys: set[str] = set()
    for member in part:
        idempotency = member.request.idempotency
        if idempotency is None:
            continue
        if idempotency.key in keys:
            again.append(member)
            continue
        keys.add(idempotency.key)
        claiming.append(member)
    results: dict[int, ClaimResult] = {}
    if claiming:
        claimed = claim_idempotency_keys(
            uow,
            part[0].request.account.id,
            [cast(IdempotencyRequest, m.request.idempotency) for m in claiming],
            # One statement claims them all: at the latest arrival's time.
            max(m.request.now for m in claiming),
        )
        results = {id(m): r for m, r in zip(claiming, claimed, strict=True)}
    storing: list[_Member] = []
    for member in part:
        if member.request.idempotency is None:
            storing.append(member)
            continue
        if id(member) not in results:
            continue  # a key used before it in the part: run again after the commit
        result = results[id(member)]
        if result is None:
            storing.append(member)
        else:
            answers.append((member, result))
    return storing


def store_batch(uow: UnitOfWork, members: list[_Member]) -> Answers:
    """One :func:`store_records` for every member's records; each member's response."""
    first = members[0].request
    records: list[Record] = []
    groups: list[int] = []
    bounds: list[tuple[int, int]] = []
    for member in members:
        request = member.request
        start = len(records)
        records.extend(request.records)
        # Record groups stay within their request: numbered after the ones before.
        base = max(groups, default=-1) + 1
        if request.groups is None:
            groups.extend(range(base, base + len(request.records)))
        else:
            groups.extend(base + g for g in request.groups)
        bounds.append((start, len(records)))
    outcome = store_records(
        uow,
        first.account,
        records,
        # The latest arrival: what was received is stored by one statement.
        now=max(m.request.now for m in members),
        event_limits=first.event_limits,
        rules=first.rules,
        groups=groups,
    )
    slices = [slice_outcome(outcome, records, start, end) for start, end in bounds]
    if sum(s.stored_activities for s in slices) != outcome.stored_activities:
        raise RuntimeError("the batch stored activities no request accounts for")
    answers: Answers = []
    kept: list[tuple[IdempotencyRequest, StoredResponse]] = []
    for member, part in zip(members, slices, strict=True):
        request = member.request
        response = request.respond(part)
        if request.idempotency is not None:
            kept.append((request.idempotency, response))
        answers.append((member, response))
    if kept:
        complete_keys(uow, first.account.id, kept)
    return answers


def slice_outcome(
    outcome: RecordsOutcome, records: Sequence[Record], start: int, end: int
) -> RecordsOutcome:
    """The outcome of ``records[start:end]`` as if they had been stored by a call of their own.

    A contact the batch created counts as created by the first request that
    names it; the later ones found it, as they would have one after the other.
    """
    contact_ids = outcome.contact_ids[start:end]
    first_named: dict[str, int] = {}
    for index, contact_id in enumerate(outcome.contact_ids):
        if contact_id is not None:
            first_named.setdefault(contact_id, index)
    stored = updated = 0
    for record, contact_id in zip(records[start:end], contact_ids, strict=True):
        if contact_id is None:
            continue
        if isinstance(record, NewActivity):
            stored += 1
        elif isinstance(record, ProfileUpdate):
            updated += 1
    return RecordsOutcome(
        stored_activities=stored,
        updated_profiles=updated,
        rejected=[
            replace(r, index=r.index - start) for r in outcome.rejected if start <= r.index < end
        ],
        contact_ids=contact_ids,
        created_contacts=frozenset(
            c for c in outcome.created_contacts if start <= first_named.get(c, -1) < end
        ),
    )


class _Discard(Exception):
    """Rolls back a member's savepoint that must leave nothing (a replay)."""

    def __init__(self, response: StoredResponse) -> None:
        super().__init__("discarded")
        self.response = response
