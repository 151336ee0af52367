"""Credentials: issuing, listing and revoking them, and checking them on every request.

An account holds any number of credentials of each kind (the admin token, a
read-only token, each dialect's key); each is a row with an id, a non-secret
prefix, an optional name and expiry, its last use and its revocation. The
secret is shown once, when it is issued; the store keeps its SHA-256 digest.

Checking a credential, the promise: a credential revoked or expired is
refused by every server process within ``2 * check_seconds`` of the
revocation's commit (2 s by default), while a valid one is answered on the
event loop without a database round trip.

The mechanism (:class:`Authenticator`, one per process):

- A credential checked against the database is remembered under its digest
  (never the secret) with the account it opens, its expiry and when the
  database last said it was live. A request presenting it is answered from
  memory while that was less than ``2 * check_seconds`` ago and its expiry
  has not passed.
- Every ``check_seconds`` a task of the process asks the database which of
  the remembered credentials are still live, one query per 500 of them,
  and forgets the others. The answer also carries each account as stored,
  so a settings change reaches every process in the same time.
- If that task falls behind (a stalled thread, a lost database), entries
  older than ``2 * check_seconds`` are not trusted: the request goes to the
  database, which is the worst case a revocation waits for.
- Uses are noted in memory and written to ``last_used_at`` by the same task,
  at most once per :data:`LAST_USED_EVERY` per credential, never by the
  request that used it.

Refusals (unknown, revoked, expired) are reported to ``on_refused`` with the
kind asked for (or the kind found), so that they are counted by kind.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from eventyard.core.credentials import (
    ADMIN,
    Credential,
    CredentialKind,
    hash_secret,
    new_secret,
    secret_prefix,
)
from eventyard.core.errors import EventyardError, FieldError, NotFound, Unauthorized
from eventyard.core.ids import is_id, new_id
from eventyard.core.model import Account
from eventyard.services.ports import Store, UnitOfWork

#: ``last_used_at`` moves at most this often per credential.
LAST_USED_EVERY = timedelta(minutes=1)
#: The longest name a credential may carry.
MAX_NAME_LENGTH = 200


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Authenticated:
    """Who a request is: the account, and the credential (id and kind) that opened it."""

    account: Account
    credential_id: str
    kind: str


@dataclass(frozen=True, slots=True)
class IssuedCredential:
    """A credential just issued, with its secret in clear text (shown this once).

    ``shown`` names the secret (and the public id, for a kind with one) as
    the kind declares them for ``accounts create --json`` (``netcore_api_key``).
    """

    credential: Credential
    secret: str
    kind: CredentialKind

    @property
    def shown(self) -> dict[str, str]:
        shown = {self.kind.secret_name: self.secret}
        if self.kind.public_id_name is not None and self.credential.public_id is not None:
            shown[self.kind.public_id_name] = self.credential.public_id
        return shown


def issue_credential(
    uow: UnitOfWork,
    account_id: str,
    kind: CredentialKind,
    now: datetime,
    *,
    name: str | None = None,
    expires_at: datetime | None = None,
) -> IssuedCredential:
    """Add a credential of ``kind`` to the account in ``uow``'s transaction.

    A kind with a public id (CleverTap's account id) keeps the one the
    account's credentials of that kind already share, so that clients only
    change the secret.
    """
    secret = new_secret(kind.prefix)
    public_id = None
    if kind.new_public_id is not None:
        public_id = uow.credentials.public_id_of(account_id, kind.kind) or kind.new_public_id()
    credential = Credential(
        id=new_id(),
        account_id=account_id,
        kind=kind.kind,
        prefix=secret_prefix(secret),
        name=name,
        public_id=public_id,
        created_at=now,
        expires_at=expires_at,
    )
    uow.credentials.add([(credential, hash_secret(secret))])
    return IssuedCredential(credential, secret, kind)


def create_credential(
    store: Store,
    account: Account,
    kinds: Sequence[CredentialKind],
    kind: object,
    *,
    name: object = None,
    expires_at: object = None,
    now: datetime | None = None,
) -> IssuedCredential:
    """Issue a credential of the kind named ``kind`` (one of ``kinds``) for the account.

    ``name`` is an optional label; ``expires_at`` an optional time in the
    future (timezone-aware). Bad values are 400s naming the field.
    """
    now = now or utc_now()
    by_name = {k.kind: k for k in kinds}
    if not isinstance(kind, str) or kind not in by_name:
        raise _invalid("kind", f"kind must be one of {', '.join(sorted(by_name))}")
    if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME_LENGTH):
        raise _invalid("name", f"name must be a string of at most {MAX_NAME_LENGTH} characters")
    if expires_at is not None:
        expires_at = _aware_moment(expires_at)
        if expires_at <= now:
            raise _invalid("expires_at", "expires_at must be in the future")
    with store.unit_of_work() as uow:
        issued = issue_credential(
            uow,
            account.id,
            by_name[kind],
            now,
            name=(name.strip() or None) if isinstance(name, str) else None,
            expires_at=expires_at,
        )
        uow.commit()
    return issued


def _invalid(field: str, reason: str) -> EventyardError:
    """The 400 for a bad field of a credential request, naming it."""
    return EventyardError("invalid_credential", reason, 400, errors=[FieldError(field, reason)])


def _aware_moment(value: object) -> datetime:
    """An ISO 8601 time with its offset (or an aware ``datetime``), in UTC; else a 400."""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    except ValueError:
        moment = None
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise _invalid(
            "expires_at",
            "expires_at must be an ISO 8601 time with its offset, such as 2027-01-31T00:00:00Z",
        )
    return moment.astimezone(UTC)


def list_credentials(store: Store, account_id: str) -> list[Credential]:
    """The account's credentials, oldest first, revoked and expired ones included."""
    with store.unit_of_work(write=False) as uow:
        return uow.credentials.list(account_id)


def revoke_credential(
    store: Store,
    account_id: str,
    credential_id: str,
    *,
    now: datetime | None = None,
    authenticator: Authenticator | None = None,
) -> Credential:
    """Revoke one of the account's credentials; the credential as it was.

    Revoking a revoked credential changes nothing. The account's last
    active admin credential is not revoked (409 ``last_admin_credential``):
    the account's row is locked meanwhile, so two concurrent revocations
    cannot take the last two. ``authenticator`` (this process's) forgets
    the credential at once; other processes within their check interval.
    """
    now = now or utc_now()
    with store.unit_of_work() as uow:
        found = uow.credentials.get(account_id, credential_id) if is_id(credential_id) else None
        if found is None or uow.accounts.get(account_id, for_update=True) is None:
            raise NotFound("No such credential")
        if (
            found.kind == ADMIN.kind
            and found.refusal(now) is None
            and uow.credentials.count_active(account_id, ADMIN.kind, now) <= 1
        ):
            raise EventyardError(
                "last_admin_credential",
                "This is the account's last active admin credential: "
                "create another before revoking it",
                409,
            )
        uow.credentials.revoke(account_id, credential_id, now)
        uow.commit()
    if authenticator is not None:
        authenticator.forget(credential_id=credential_id)
    return found


@dataclass(slots=True)
class _Entry:
    found: Authenticated
    expires_at: datetime | None
    #: When the database last said the credential was live (the process clock).
    checked_at: float
    #: When a request last presented it (the process clock).
    used_at: float
    #: A use not yet written to ``last_used_at``.
    pending_use: datetime | None
    #: When this process last wrote ``last_used_at`` (the process clock).
    recorded_at: float


class Authenticator:
    """Checks credentials for one process; see the module docstring for the promise.

    ``idle_seconds`` is how long a credential no request presents stays
    remembered (0: never answered from memory); ``max_entries`` bounds the
    memory (the rare overflow forgets everything).
    """

    def __init__(
        self,
        store: Store,
        *,
        check_seconds: float = 1.0,
        idle_seconds: float = 30.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utc_now,
        on_refused: Callable[[str, str], None] | None = None,
    ) -> None:
        self.store = store
        self.check_seconds = check_seconds
        self.idle_seconds = idle_seconds
        self.max_entries = max_entries
        self.clock = clock
        self.now = now
        self.on_refused = on_refused
        self._entries: dict[tuple[str, str | None], _Entry] = {}
        self._lock = threading.Lock()

    @property
    def trusted_for(self) -> float:
        """How long after the database's last word a remembered credential is trusted."""
        return 2 * self.check_seconds

    def cached(
        self, kinds: Sequence[str], secret: str | None, public_id: str | None = None
    ) -> Authenticated | None:
        """The credential's account if this process checked it lately, else ``None``.

        Cheap enough for the event loop: a digest and a dictionary look-up.
        """
        if not secret or self.idle_seconds <= 0:
            return None
        key = (hash_secret(secret), public_id)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.found.kind not in kinds:
                return None
            t = self.clock()
            if t - entry.checked_at > self.trusted_for:
                return None
            now = self.now()
            if entry.expires_at is not None and entry.expires_at <= now:
                del self._entries[key]
                return None
            entry.used_at, entry.pending_use = t, now
            return entry.found

    def check(
        self, kinds: Sequence[str], secret: str | None, public_id: str | None = None
    ) -> Authenticated:
        """The credential's account from the database, or ``Unauthorized``.

        The look-up goes through the digest's index; the digest found is
        compared again with ``hmac.compare_digest`` so that no comparison
        leaks timing.
        """
        if not secret:
            raise Unauthorized("Missing credentials")
        digest = hash_secret(secret)
        t, now = self.clock(), self.now()
        with self.store.unit_of_work(write=False) as uow:
            found = uow.credentials.find(kinds, digest, public_id)
        if found is None or not hmac.compare_digest(found[2], digest):
            self._refused(kinds[0], "unknown")
            raise Unauthorized("Invalid credentials")
        account, credential, _ = found
        reason = credential.refusal(now)
        if reason is not None:
            self._refused(credential.kind, reason)
            raise Unauthorized("Invalid credentials")
        result = Authenticated(account, credential.id, credential.kind)
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # rare; cheaper than tracking age order
            self._entries[(digest, public_id)] = _Entry(
                found=result,
                expires_at=credential.expires_at,
                checked_at=t,
                used_at=t,
                pending_use=now,
                recorded_at=-float("inf"),
            )
        return result

    def recheck(self) -> None:
        """Ask the database which remembered credentials are live; write their last uses.

        Forgets the dead ones and those idle for ``idle_seconds``; refreshes
        the accounts of the others.
        """
        t0, now = self.clock(), self.now()
        every = LAST_USED_EVERY.total_seconds()
        uses: dict[str, datetime] = {}
        with self._lock:
            for key, entry in list(self._entries.items()):
                cid = entry.found.credential_id
                if entry.pending_use is not None and t0 - entry.recorded_at >= every:
                    uses[cid] = max(entry.pending_use, uses.get(cid, entry.pending_use))
                if t0 - entry.used_at > self.idle_seconds:
                    del self._entries[key]
            asked = {e.found.credential_id for e in self._entries.values()}
        if asked:
            with self.store.unit_of_work(write=False) as uow:
                live = uow.credentials.live(asked, now)
                accounts = uow.accounts.get_many(live.values())
            with self._lock:
                for key, entry in list(self._entries.items()):
                    cid = entry.found.credential_id
                    if cid not in asked:
                        continue  # checked after the question was asked
                    account = accounts.get(live.get(cid, ""))
                    if account is None:
                        del self._entries[key]
                    else:
                        entry.checked_at = max(entry.checked_at, t0)
                        entry.found = replace(entry.found, account=account)
        if uses:
            with self.store.unit_of_work() as uow:
                uow.credentials.record_use(uses, LAST_USED_EVERY)
                uow.commit()
            with self._lock:
                for entry in self._entries.values():
                    written = uses.get(entry.found.credential_id)
                    if written is not None:
                        entry.recorded_at = t0
                        if entry.pending_use is not None and entry.pending_use <= written:
                            entry.pending_use = None

    def forget(self, *, account_id: str | None = None, credential_id: str | None = None) -> None:
        """Forget the account's (or the credential's) entries; with neither, every entry.

        Only this process's memory: other processes follow within their check.
        """
        with self._lock:
            if account_id is None and credential_id is None:
                self._entries.clear()
                return
            for key, entry in list(self._entries.items()):
                if (
                    entry.found.account.id == account_id
                    or entry.found.credential_id == credential_id
                ):
                    del self._entries[key]

    def _refused(self, kind: str, reason: str) -> None:
        if self.on_refused is not None:
            self.on_refused(kind, reason)


def authenticate(
    store: Store, kind: str, secret: str | None, public_id: str | None = None
) -> Account:
    """The account a credential of ``kind`` opens, asked of the database now; or ``Unauthorized``.

    For one-off checks (the command line); a server process keeps an
    :class:`Authenticator`.
    """
    return Authenticator(store, idle_seconds=0).check((kind,), secret, public_id).account
