"""Delivery: claim a lane's waiting activities, send them in the destination's format, settle.

One attempt, from claim to settlement:

1. ``claim_delivery`` (one transaction) leases a delivery due again after a
   failed attempt or a dead worker, or opens a new one on a lane with
   waiting activities and no open delivery (one per lane: a contact's
   activities go in order). A new delivery's activities are fixed there.
2. The activities are read (an erased one is dropped), their contacts'
   identifiers with them, and the kind's format builds the requests. Each
   request goes out in order, with an ``Idempotency-Key`` derived from the
   destination and its activity ids, through the SSRF-guarded client
   (redirects are not followed: a 3xx dead-letters the request).
3. The answers decide, request by request: 2xx and the format's reading
   deliver; 401/403 dead-letter the request's activities; 408, 425, 429,
   5xx and connection errors stop the attempt (the rest waits, in order)
   until ``retry_wait`` has passed, ``Retry-After`` honoured; a receiver
   that refused a whole request for some of its activities
   (``resend_others``) has those dead-lettered and the rest sent again at
   once, without them. The
   settlement (one transaction) removes what was delivered or refused from
   the outbox, keeps the refusals as dead letters, and either closes the
   delivery or schedules its next attempt.

At least once: a worker that dies anywhere before the settlement commits
leaves its delivery leased; when the lease runs out another worker sends it
again, with the same delivery id and Idempotency-Keys, so a receiver that
honours them stores each request once.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx

from eventyard.core.delivery import (
    DestinationFormat,
    OutgoingActivity,
    OutgoingRequest,
    ReceiverAnswer,
)
from eventyard.core.destinations import (
    REFUSED_STATUSES,
    RETRIED_STATUSES,
    DeliveryClaim,
    Destination,
    idempotency_key,
    parse_retry_after,
    retry_wait,
)
from eventyard.services.destinations.outbox import LANES
from eventyard.services.destinations.sealing import CredentialSealer, CredentialsUnreadable
from eventyard.services.ports import Store
from eventyard.services.sources import (
    SourceRefused,
    SourceUnavailable,
    guarded_client,
)
from eventyard.settings import Settings

log = logging.getLogger("eventyard.destinations")

#: Most bytes of a receiver's answer kept with a dead letter.
MAX_ANSWER_BYTES = 4000


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Attempt:
    """What one attempt at a delivery came to."""

    delivered: list[str] = field(default_factory=list)
    dead: list[tuple[str, int | None, str, str | None]] = field(default_factory=list)
    #: Activities gone from the store since they were queued (erased, expired).
    gone: list[str] = field(default_factory=list)
    retry_after: float | None = None
    #: Why the attempt stops here and is tried again later.
    retry: str | None = None
    #: The receiver took none of a request for the sake of its refused
    #: activities: the rest go again at once, in requests without them.
    resend: bool = False
    error: str | None = None


#: ``(destination_id, outcome, count)``: ``delivered``, ``dead``, ``failed_attempt``.
OnOutcome = Callable[[str, str, int], None]
#: ``(destination_id, seconds)``: how long the delivered activities waited.
OnLag = Callable[[str, float], None]


class Deliverer:
    """Delivers for every account of the store; one instance per worker thread."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        formats: Mapping[str, DestinationFormat],
        sealer: CredentialSealer,
        *,
        worker_id: str,
        clock: Callable[[], datetime] = _utc_now,
        on_outcome: OnOutcome | None = None,
        on_lag: OnLag | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.formats = dict(formats)
        self.sealer = sealer
        self.worker_id = worker_id
        self.clock = clock
        self.on_outcome = on_outcome
        self.on_lag = on_lag
        #: How long the oldest activity of the last delivery had waited when it
        #: was sent (0 before the first): lets the delivery threads catch up.
        self.last_wait_seconds = 0.0
        self.client = guarded_client(
            settings, follow_redirects=False, timeout=settings.destination_timeout_seconds
        )

    def close(self) -> None:
        self.client.close()

    def run_once(self) -> bool:
        """Claim and attempt one delivery; whether there was one."""
        with self.store.unit_of_work() as uow:
            claim = uow.destinations.claim_delivery(
                self.worker_id,
                self.clock(),
                self.settings.destination_lease_seconds,
                LANES,
                self.settings.destination_batch_size,
                self.settings.destination_linger_seconds,
            )
            uow.commit()
        if claim is None:
            return False
        self.attempt(claim)
        return True

    def attempt(self, claim: DeliveryClaim) -> None:
        with self.store.unit_of_work(write=False) as uow:
            destination = uow.destinations.get(claim.account_id, claim.destination_id)
            items = uow.destinations.delivery_items(
                claim.account_id, claim.destination_id, claim.id
            )
            contacts = {i.activity.contact_id for i in items if i.activity is not None}
            identifiers = uow.contacts.identifiers_of(claim.account_id, contacts)
        if destination is None:
            return  # deleted meanwhile: its deliveries went with it
        outcome = Attempt()
        outgoing: list[OutgoingActivity] = []
        for item in items:
            activity = item.activity
            if activity is None:
                outcome.gone.append(item.activity_id)
                continue
            owner, idents = identifiers.get(activity.contact_id, (activity.contact_id, []))
            outgoing.append(
                OutgoingActivity(
                    id=activity.id,
                    contact_id=owner,
                    identifiers=tuple(idents),
                    name=activity.name,
                    occurred_at=activity.occurred_at,
                    received_at=activity.received_at,
                    source=activity.source,
                    dialect=activity.dialect,
                    asset_id=activity.asset_id,
                    properties=activity.properties,
                    location=activity.location,
                    value_milli=activity.value_milli,
                    context=activity.context,
                    journey_eligible=activity.journey_eligible,
                    unsearchable=activity.unsearchable,
                    resolved_by=activity.resolved_by,
                )
            )
        if outgoing:
            self._send(claim, destination, outgoing, outcome)
        waited = (self.clock() - min(i.queued_at for i in items)).total_seconds() if items else 0.0
        self.last_wait_seconds = waited
        if items and self.on_lag is not None and outcome.delivered:
            self.on_lag(destination.id, waited)
        self._settle(claim, destination, outcome, held=len(items))

    def _send(
        self,
        claim: DeliveryClaim,
        destination: Destination,
        outgoing: list[OutgoingActivity],
        outcome: Attempt,
    ) -> None:
        form = self.formats.get(destination.kind)
        if form is None:
            outcome.retry = f"this server knows no destination kind {destination.kind!r}"
            return
        try:
            credentials = self.sealer.open(destination.sealed_credentials)
        except CredentialsUnreadable as exc:
            outcome.retry = str(exc)
            return
        requests = form.build_requests(destination.url, credentials, outgoing, claim.id)
        lease_renewed = time.monotonic()
        for request in requests:
            answer = self._post(destination, request, outcome)
            if answer is None:
                return
            self._read(form, request, answer, outcome)
            if outcome.retry is not None or outcome.resend:
                return
            if time.monotonic() - lease_renewed > self.settings.destination_lease_seconds / 3:
                lease_renewed = time.monotonic()
                self._renew_lease(claim)

    def _post(
        self, destination: Destination, request: OutgoingRequest, outcome: Attempt
    ) -> ReceiverAnswer | None:
        headers = {
            **request.headers,
            "Idempotency-Key": idempotency_key(destination.id, request.activity_ids),
        }
        try:
            response = self.client.request(
                request.method, request.url, headers=headers, content=request.body
            )
        except (httpx.HTTPError, SourceRefused, SourceUnavailable) as exc:
            outcome.retry = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return None
        return ReceiverAnswer(response.status_code, dict(response.headers), response.content)

    def _read(
        self,
        form: DestinationFormat,
        request: OutgoingRequest,
        answer: ReceiverAnswer,
        outcome: Attempt,
    ) -> None:
        status = answer.status
        text = answer.body[:MAX_ANSWER_BYTES].decode(errors="replace")
        if status in RETRIED_STATUSES or status >= 500:
            outcome.retry = f"HTTP {status} from the receiver: {text[:500]}".rstrip(": ")
            outcome.retry_after = parse_retry_after(answer.headers.get("retry-after"), self.clock())
            return
        if status in REFUSED_STATUSES or 300 <= status < 400 or status < 200:
            reason = (
                f"HTTP {status}: redirects are not followed; give the final URL"
                if 300 <= status < 400
                else f"HTTP {status}: the receiver refused the credentials"
            )
            outcome.dead.extend((i, status, reason, text) for i in request.activity_ids)
            outcome.error = reason
            return
        reading = form.read_answer(request, answer)
        if reading.retry is not None:
            outcome.retry = reading.retry
            return
        resend = reading.resend_others and bool(reading.refused)
        for activity_id in request.activity_ids:
            refusal = reading.refused.get(activity_id)
            if refusal is not None:
                outcome.dead.append((activity_id, status, refusal, text))
            elif not resend:
                outcome.delivered.append(activity_id)
        if reading.refused:
            outcome.error = next(iter(reading.refused.values()))
        outcome.resend = resend

    def _renew_lease(self, claim: DeliveryClaim) -> None:
        until = self.clock() + timedelta(seconds=self.settings.destination_lease_seconds)
        with self.store.unit_of_work() as uow:
            uow.destinations.extend_lease(claim.account_id, claim.id, self.worker_id, until)
            uow.commit()

    def _settle(
        self, claim: DeliveryClaim, destination: Destination, outcome: Attempt, *, held: int
    ) -> None:
        now = self.clock()
        retry_at = None
        error = outcome.error
        if outcome.retry is not None:
            wait = retry_wait(
                claim.attempts + 1,
                self.settings.destination_retry_base_seconds,
                self.settings.destination_retry_max_seconds,
                random.random(),
                outcome.retry_after,
            )
            retry_at = now + timedelta(seconds=wait)
            error = outcome.retry
        elif outcome.resend:
            retry_at = now  # not a failure: the next attempt leaves the refused ones out
        finished = {*outcome.delivered, *outcome.gone, *(entry[0] for entry in outcome.dead)}
        with self.store.unit_of_work() as uow:
            ours = uow.destinations.settle(
                claim,
                self.worker_id,
                now,
                done=[*outcome.delivered, *outcome.gone],
                delivered=len(outcome.delivered),
                dead=outcome.dead,
                retry_at=retry_at,
                error=error,
                failed=outcome.retry is not None,
                whole=retry_at is None and len(finished) == held,
            )
            if ours:
                uow.commit()
        fields = {
            "destination_id": destination.id,
            "delivery_id": claim.id,
            "attempt": claim.attempts + 1,
            "delivered": len(outcome.delivered),
            "dead": len(outcome.dead),
        }
        if not ours:
            log.warning("delivery taken over by another worker", extra=fields)
            return
        if outcome.retry is not None and retry_at is not None:
            log.warning(
                "delivery attempt failed",
                extra={**fields, "error": outcome.retry, "retry_at": retry_at.isoformat()},
            )
        if self.on_outcome is not None:
            self.on_outcome(destination.id, "delivered", len(outcome.delivered))
            self.on_outcome(destination.id, "dead", len(outcome.dead))
            if outcome.retry is not None:
                self.on_outcome(destination.id, "failed_attempt", 1)
