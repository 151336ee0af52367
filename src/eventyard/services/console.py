"""The web console's use cases: sessions, contact search, the overview's figures
and the live tail. Pages that show what the read API shows (a contact, its
timeline, its identity history, jobs) call those services directly."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from eventyard.core.credentials import ADMIN, READ
from eventyard.core.errors import NotFound
from eventyard.core.identifiers import (
    WELL_KNOWN_KINDS,
    Identifier,
    normalize_identifier,
    parse_identifier_query,
)
from eventyard.core.ids import is_id
from eventyard.core.lists import ContactList
from eventyard.core.model import Account, Activity, Contact, Job
from eventyard.services.credentials import Authenticator
from eventyard.services.imports import import_summary
from eventyard.services.ingest_stats import (
    Rejection,
    hourly_activity_counts,
    latest_rejections,
    rejected_records_since,
)
from eventyard.services.jobs import list_jobs
from eventyard.services.ports import Store

#: ``instance_secrets`` row holding the key that signs console cookies.
SIGNING_KEY_NAME = "console_signing_key"
#: The credentials that sign in to the console.
SIGN_IN_KINDS = (ADMIN.kind, READ.kind)
#: Contacts a search lists at most.
SEARCH_LIMIT = 20
#: Days of hourly counts the overview charts.
OVERVIEW_DAYS = 7
#: Event names charted one by one; the others are summed as "other".
TOP_NAMES = 5
#: Activities one poll of the live tail hands over at most (the newest ones).
TAIL_BATCH = 200


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    #: SHA-256 hex of the session token: the ``console_sessions`` row's id.
    id: str
    account: Account
    csrf_token: str
    #: The kind of credential the session signed in with (``admin`` or ``read``).
    kind: str = ADMIN.kind

    @property
    def may_write(self) -> bool:
        """Whether the session may change anything (an admin's); a read session only looks."""
        return self.kind == ADMIN.kind


class ConsoleSessions:
    """Signs, opens and ends console sessions.

    The cookie is ``<token>.<HMAC-SHA256(key, token)>``, the key an instance
    secret every server process reads from the database; the session row
    (keyed by the token's SHA-256) is what makes sign-out and expiry real.
    """

    def __init__(
        self,
        store: Store,
        lifetime: timedelta,
        clock: Callable[[], datetime],
        authenticator: Authenticator,
    ) -> None:
        self.store = store
        self.lifetime = lifetime
        self.clock = clock
        self.authenticator = authenticator
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def signing_key(self) -> bytes:
        """The instance's signing key, created by the first process that needs it."""
        with self._lock:
            if self._key is None:
                with self.store.unit_of_work() as uow:
                    value = uow.console.instance_secret(
                        SIGNING_KEY_NAME, secrets.token_hex(32), self.clock()
                    )
                    uow.commit()
                self._key = bytes.fromhex(value)
            return self._key

    def sign(self, value: str) -> str:
        return f"{value}.{self._mac(value)}"

    def unsign(self, signed: str | None) -> str | None:
        """The value of a string made by :meth:`sign`, or ``None`` if it was not."""
        if not signed:
            return None
        value, _, mac = signed.rpartition(".")
        if not value or not hmac.compare_digest(mac, self._mac(value)):
            return None
        return value

    def _mac(self, value: str) -> str:
        return hmac.new(self.signing_key(), value.encode(), hashlib.sha256).hexdigest()

    def sign_in_form_token(self, nonce: str) -> str:
        """The CSRF token of the sign-in form for the nonce in the visitor's cookie."""
        return self._mac(f"sign-in:{nonce}")

    def sign_in(self, secret: str) -> tuple[str, ConsoleSession]:
        """A new session for the account of an admin or read token: its cookie value and itself.

        Raises ``Unauthorized`` for a token that is neither. A session signed
        in with a read token shows everything and changes nothing.
        """
        found = self.authenticator.check(SIGN_IN_KINDS, secret.strip())
        token = secrets.token_urlsafe(32)
        session = ConsoleSession(
            id=_digest(token),
            account=found.account,
            csrf_token=secrets.token_urlsafe(32),
            kind=found.kind,
        )
        now = self.clock()
        with self.store.unit_of_work() as uow:
            uow.console.purge_sessions(now)
            uow.console.add_session(
                session.id,
                found.account.id,
                found.credential_id,
                session.csrf_token,
                now,
                now + self.lifetime,
            )
            uow.commit()
        return self.sign(token), session

    def open(self, cookie: str | None) -> ConsoleSession | None:
        """The live session a cookie stands for, or ``None`` (unsigned, signed out, expired)."""
        token = self.unsign(cookie)
        if token is None:
            return None
        session_id = _digest(token)
        with self.store.unit_of_work(write=False) as uow:
            found = uow.console.get_session(session_id, self.clock())
            account = None if found is None else uow.accounts.get(found[0])
        if found is None or account is None:
            return None
        return ConsoleSession(id=session_id, account=account, csrf_token=found[1], kind=found[2])

    def sign_out(self, session: ConsoleSession) -> None:
        with self.store.unit_of_work() as uow:
            uow.console.delete_session(session.id)
            uow.commit()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_matches(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


# -- contact search -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContactHit:
    contact_id: str
    #: The identifiers of the contact the search matched.
    matched: tuple[Identifier, ...]
    #: Every identifier of the contact.
    identifiers: tuple[Identifier, ...]


def search_contacts(store: Store, account: Account, text: str) -> list[ContactHit]:
    """Contacts of ``account`` that ``text`` names.

    ``text`` is matched as: a contact id; ``KIND:VALUE``; a value of any
    well-known identifier kind (normalised as that kind: e-mails lower-cased,
    mobiles without separators); and the start of an e-mail address.
    """
    text = text.strip()
    if not text:
        return []
    probes: set[Identifier] = set()
    kind, sep, value = text.partition(":")
    if sep and kind and value:
        with contextlib.suppress(ValueError):
            probes.add(parse_identifier_query(text))
    for known in WELL_KNOWN_KINDS:
        try:
            probes.add(normalize_identifier(known, text))
        except ValueError:
            continue
    with store.unit_of_work(write=False) as uow:
        found = uow.console.owners_of(account.id, sorted(probes))
        found += uow.console.identifiers_starting(account.id, "email", text.lower(), SEARCH_LIMIT)
        ids = [contact_id for _, contact_id in found]
        if is_id(text):
            ids.append(text)
        owners = uow.contacts.identifiers_of(account.id, ids)
    matched: dict[str, list[Identifier]] = defaultdict(list)
    order: list[str] = []
    if is_id(text) and text in owners:
        order.append(owners[text][0])
    for identifier, contact_id in found:
        if contact_id not in owners:
            continue
        survivor = owners[contact_id][0]
        order.append(survivor)
        if identifier not in matched[survivor]:
            matched[survivor].append(identifier)
    identifiers = dict(owners.values())
    hits: list[ContactHit] = []
    for survivor in dict.fromkeys(order):
        hits.append(
            ContactHit(
                contact_id=survivor,
                matched=tuple(matched.get(survivor, ())),
                identifiers=tuple(identifiers.get(survivor, ())),
            )
        )
    return hits[:SEARCH_LIMIT]


# -- contact page ---------------------------------------------------------


def lists_of_contact(store: Store, account: Account, contact: Contact) -> list[ContactList]:
    with store.unit_of_work(write=False) as uow:
        return uow.console.lists_of_contact(account.id, contact.id)


# -- overview -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    #: One count per hour of :attr:`Overview.hours`.
    values: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.values)


@dataclass(frozen=True, slots=True)
class Overview:
    #: The hours charted, oldest first: the last ``OVERVIEW_DAYS`` days up to the current hour.
    hours: tuple[datetime, ...]
    by_dialect: tuple[Series, ...]
    #: The ``TOP_NAMES`` most frequent event names, then "other" if any remain.
    by_name: tuple[Series, ...]
    rejected_records: int
    rejections: tuple[Rejection, ...]

    @property
    def total(self) -> int:
        return sum(s.total for s in self.by_dialect)


def overview(store: Store, account: Account, now: datetime) -> Overview:
    """Events received per hour over the last week, and the latest ingest errors."""
    current = now.replace(minute=0, second=0, microsecond=0)
    hours = tuple(current - timedelta(hours=n) for n in range(OVERVIEW_DAYS * 24 - 1, -1, -1))
    since = hours[0]
    position = {hour: i for i, hour in enumerate(hours)}
    counts = hourly_activity_counts(store, account.id, since)
    dialects: dict[str, list[int]] = defaultdict(lambda: [0] * len(hours))
    names: dict[str, list[int]] = defaultdict(lambda: [0] * len(hours))
    for row in counts:
        i = position.get(row.hour)
        if i is None:
            continue
        dialects[row.dialect][i] += row.count
        names[row.name][i] += row.count
    ranked = sorted(names, key=lambda n: (-sum(names[n]), n))
    by_name = [Series(name, tuple(names[name])) for name in ranked[:TOP_NAMES]]
    if len(ranked) > TOP_NAMES:
        rest = [sum(names[n][i] for n in ranked[TOP_NAMES:]) for i in range(len(hours))]
        by_name.append(Series("other", tuple(rest)))
    return Overview(
        hours=hours,
        by_dialect=tuple(Series(d, tuple(dialects[d])) for d in sorted(dialects)),
        by_name=tuple(by_name),
        rejected_records=rejected_records_since(store, account.id, since),
        rejections=tuple(latest_rejections(store, account.id, 20)),
    )


@dataclass(frozen=True, slots=True)
class Totals:
    known_contacts: int
    anonymous_contacts: int
    activities: int


def totals(store: Store, account: Account) -> Totals:
    """Exact counts of live contacts and stored activities (scans: loaded apart from the page)."""
    with store.unit_of_work(write=False) as uow:
        contacts = uow.console.count_contacts(account.id)
        stored = uow.console.count_activities(account.id)
    return Totals(
        known_contacts=contacts.get("known", 0),
        anonymous_contacts=contacts.get("anonymous", 0),
        activities=stored,
    )


# -- live tail ------------------------------------------------------------


def id_floor(moment: datetime) -> str:
    """The smallest id a process could have made at ``moment`` (ids start with the time)."""
    ms = int(moment.timestamp() * 1000)
    return f"{ms & ((1 << 48) - 1):012x}{0:012x}"


def tail_activities(
    store: Store,
    account: Account,
    after_id: str,
    *,
    dialect: str | None = None,
    name: str | None = None,
) -> list[Activity]:
    """The newest (at most ``TAIL_BATCH``) activities with ids after ``after_id``, oldest first."""
    if not is_id(after_id):
        raise NotFound("No such position")
    with store.unit_of_work(write=False) as uow:
        return uow.console.activities_after(
            account.id, after_id, dialect=dialect or None, name=name or None, limit=TAIL_BATCH
        )


# -- jobs -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobView:
    job: Job
    #: 0 to 100; ``None`` while a running job cannot tell how far it is.
    percent: int | None
    #: What the job counted so far (rows, created, updated, failed …).
    counts: dict[str, int]
    #: The first row errors an import reported (``{"row", "reason"}``).
    errors: tuple[dict[str, Any], ...]


def job_view(job: Job) -> JobView:
    """How far a job is and what it counted, whatever its kind."""
    summary = import_summary(job)
    doc = job.result if job.status == "completed" and job.result else job.progress or {}
    counts = {k: int(v) for k, v in doc.items() if isinstance(v, int) and k != "rows_done"}
    if summary is not None:
        counts = {k: int(summary[k]) for k in ("total", "created", "updated", "failed")}
    percent: int | None
    if job.status == "completed":
        percent = 100
    elif job.status == "queued":
        percent = 0
    elif isinstance(job.progress.get("bytes_total"), int) and job.progress["bytes_total"] > 0:
        done = int(job.progress.get("bytes_read", 0)) * 100 // int(job.progress["bytes_total"])
        percent = min(99, done)
    else:
        percent = None
    errors = tuple(summary["errors"]) if summary is not None else ()
    return JobView(job=job, percent=percent, counts=counts, errors=errors)


def account_jobs(store: Store, account: Account, limit: int = 50) -> list[JobView]:
    """The account's newest jobs with their progress."""
    return [job_view(job) for job in list_jobs(store, account, limit=limit)]
