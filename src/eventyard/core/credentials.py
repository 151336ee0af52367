"""How credentials are made, stored and compared."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass


def hash_secret(secret: str) -> str:
    """SHA-256 hex digest of a secret: what the database keeps instead of it."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def digests_match(stored_digest: str, presented_secret: str) -> bool:
    """Compare a presented secret with a stored digest in constant time."""
    return hmac.compare_digest(stored_digest, hash_secret(presented_secret))


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
    with ``new_public_id``.
    """

    kind: str
    secret_name: str
    prefix: str
    public_id_name: str | None = None
    new_public_id: Callable[[], str] | None = None


#: The account's own API and console.
ADMIN = CredentialKind("admin", "admin_token", "eya")
