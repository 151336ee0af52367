"""How credentials are made, stored and compared."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string


def hash_secret(secret: str) -> str:
    """SHA-256 hex digest of a secret: what the database keeps instead of it."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def digests_match(stored_digest: str, presented_secret: str) -> bool:
    """Compare a presented secret with a stored digest in constant time."""
    return hmac.compare_digest(stored_digest, hash_secret(presented_secret))


def new_secret(prefix: str) -> str:
    """A random 256-bit token with a readable prefix saying what it is for."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def new_clevertap_account_id() -> str:
    """An id shaped like CleverTap's (``XXX-XXX-XXXX``); it is public, not secret."""
    alphabet = string.ascii_uppercase + string.digits
    part = "".join(secrets.choice(alphabet) for _ in range(10))
    return f"{part[:3]}-{part[3:6]}-{part[6:]}"
