"""Idempotency-Keys on every write path: claim the key before the work, keep the answer after.

A request that carries an ``Idempotency-Key`` claims it in the transaction
that stores its records, and the response it is about to get is kept with
the key in that same transaction, so the key and the records commit or
vanish together. A retry of the same request (same route and body) gets
the kept response again and stores nothing; the key sent with another
request is a 409 (:class:`IdempotencyConflict`).

A request stored alone claims its key with :func:`claim_key`; requests that
share a transaction (a group commit) claim all their keys with one
:func:`claim_keys`, and complete them with one :func:`complete_keys`: a
statement to claim and one to complete, however many requests there are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from eventyard.core.errors import IdempotencyConflict
from eventyard.core.model import StoredResponse
from eventyard.services.ports import Store, UnitOfWork


@dataclass(frozen=True, slots=True)
class IdempotencyRequest:
    """An ``Idempotency-Key`` and the fingerprint of the request it came with."""

    key: str
    fingerprint: str
    ttl_seconds: int

    @classmethod
    def for_request(cls, key: str, route: str, body: bytes, ttl_seconds: int) -> IdempotencyRequest:
        digest = hashlib.sha256(route.encode() + b"\0" + body).hexdigest()
        return cls(key=key, fingerprint=digest, ttl_seconds=ttl_seconds)


#: What a claim tells its request: ``None`` do the work, a response to send
#: again (a replay), or the conflict to answer with.
ClaimResult = StoredResponse | IdempotencyConflict | None


def claim_keys(
    uow: UnitOfWork, account_id: str, requests: Sequence[IdempotencyRequest], now: datetime
) -> list[ClaimResult]:
    """Claim the keys of ``requests`` (distinct keys, one account) in one go; one result each."""
    states = uow.idempotency.claim_many(
        account_id, [(r.key, r.fingerprint, r.ttl_seconds) for r in requests], now
    )
    results: list[ClaimResult] = []
    for request in requests:
        state, previous = states[request.key]
        if state == "conflict":
            results.append(IdempotencyConflict())
        else:
            results.append(previous)
    return results


def claim_key(
    uow: UnitOfWork, account_id: str, request: IdempotencyRequest, now: datetime
) -> StoredResponse | None:
    """Claim one key: ``None`` when the work is to be done, the kept response for a replay.

    Raises :class:`IdempotencyConflict` when the key came with another request.
    """
    (result,) = claim_keys(uow, account_id, [request], now)
    if isinstance(result, IdempotencyConflict):
        raise result
    return result


def complete_keys(
    uow: UnitOfWork,
    account_id: str,
    answered: Sequence[tuple[IdempotencyRequest, StoredResponse]],
) -> None:
    """Keep each response with the key its request claimed in this transaction."""
    uow.idempotency.complete_many(
        account_id, [(request.key, response) for request, response in answered]
    )


def complete_key(
    uow: UnitOfWork, account_id: str, request: IdempotencyRequest, response: StoredResponse
) -> None:
    """Keep ``response`` with the key ``request`` claimed in this transaction."""
    complete_keys(uow, account_id, [(request, response)])


#: Expired Idempotency-Keys deleted per transaction by the purge.
PURGE_BATCH = 10_000


def purge_idempotency_keys(store: Store, now: datetime, ttl_seconds: int) -> int:
    """Forget Idempotency-Keys older than their lifetime; returns how many went."""
    purged = 0
    while True:
        with store.unit_of_work() as uow:
            batch = uow.idempotency.purge_expired(
                now - timedelta(seconds=ttl_seconds), limit=PURGE_BATCH
            )
            uow.commit()
        purged += batch
        if batch < PURGE_BATCH:
            return purged
