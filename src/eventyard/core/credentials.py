"""What a credential is, how its secret is made and kept, and what makes it refused."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventyard.core.timestamps import format_utc


def hash_secret(secret: str) -> str:
    """SHA-256 hex digest of a secret: what the database keeps instead of it."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def new_secret(prefix: str) -> str:
    """A random 256-bit token with a readable prefix saying what it is for."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


@dataclass(frozen=True, slots=True)
class CredentialKind:
    """A kind of credential every account holds, declared by whoever checks it.

    ``kind`` is what the store keeps (``admin``, or a dialect's name);
    ``secret_name`` is how ``accounts create --json`` prints the secret, made
    with :func:`new_secret` and ``prefix``. A kind with a public id beside
    its secret (a pair of headers) names it ``public_id_name`` and makes it
    with ``new_public_id``. The credentials API answers with the secret as
    ``secret``, and also under ``secret_field`` and the public id under
    ``public_id_field`` where the dialect's own words differ (CleverTap's
    ``account_id`` and ``passcode``).
    """

    kind: str
    secret_name: str
    prefix: str
    public_id_name: str | None = None
    new_public_id: Callable[[], str] | None = None
    public_id_field: str | None = None
    secret_field: str | None = None


#: The account's own API and console.
ADMIN = CredentialKind("admin", "admin_token", "eya")


#: A token for the account's own API and console that may only read.
READ = CredentialKind("read", "read_token", "eyr")

#: How many characters of a secret are kept in clear as its ``prefix``: the
#: kind's prefix, the underscore and 8 random characters (48 bits of the
#: 256), enough to tell an account's keys apart and far from enough to guess
#: the rest.
PREFIX_LENGTH = 8


def secret_prefix(secret: str) -> str:
    """The non-secret beginning of ``secret`` a credential is recognised by."""
    head, sep, rest = secret.partition("_")
    return f"{head}{sep}{rest[:PREFIX_LENGTH]}" if sep else secret[:PREFIX_LENGTH]


@dataclass(frozen=True, slots=True)
class Credential:
    """One credential of an account as the store keeps it (never its secret).

    ``prefix`` is ``None`` for credentials issued before credentials had one
    (their secret was never stored, so it cannot be recovered).
    """

    id: str
    account_id: str
    kind: str
    prefix: str | None
    name: str | None
    public_id: str | None
    created_at: datetime
    last_used_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def refusal(self, now: datetime) -> str | None:
        """Why the credential opens nothing at ``now`` (``revoked``, ``expired``), or ``None``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return None


def credential_document(
    credential: Credential, kind: CredentialKind | None, now: datetime
) -> dict[str, Any]:
    """The credential as the credentials API and ``credentials list --json`` show it.

    ``status`` is ``active``, ``revoked`` or ``expired`` at ``now``; a kind
    with a public id shows it under its ``public_id_field``.
    """
    document: dict[str, Any] = {
        "id": credential.id,
        "kind": credential.kind,
        "prefix": credential.prefix,
        "name": credential.name,
        "status": credential.refusal(now) or "active",
        "created_at": format_utc(credential.created_at),
        "last_used_at": _moment(credential.last_used_at),
        "expires_at": _moment(credential.expires_at),
        "revoked_at": _moment(credential.revoked_at),
    }
    if kind is not None and kind.public_id_field is not None:
        document[kind.public_id_field] = credential.public_id
    return document


def issued_document(credential: Credential, kind: CredentialKind, secret: str) -> dict[str, Any]:
    """A credential just issued, with its ``secret`` (and the kind's own names for it)."""
    document = credential_document(credential, kind, credential.created_at)
    for unset in ("status", "last_used_at", "revoked_at"):
        del document[unset]
    document["secret"] = secret
    if kind.secret_field is not None:
        document[kind.secret_field] = secret
    return document


def _moment(value: datetime | None) -> str | None:
    return None if value is None else format_utc(value)
