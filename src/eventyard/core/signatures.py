"""Signed callbacks: how a receiver checks that a callback came from eventyard.

The body is signed with HMAC-SHA256 under the account's signing secret and
the hex digest sent as ``X-Eventyard-Signature-256: sha256=<hex>`` (the
GitHub webhook convention, which many receivers already know how to check).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "X-Eventyard-Signature-256"


def new_signing_secret() -> str:
    """64 hex characters (256 bits), as migration 0005 made for existing accounts."""
    return secrets.token_hex(32)


def signature(secret: str, body: bytes) -> str:
    """The header value for ``body``: ``sha256=`` and the HMAC's hex digest."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(secret: str, body: bytes, header_value: str) -> bool:
    """Whether ``header_value`` signs ``body`` (constant-time comparison)."""
    return hmac.compare_digest(signature(secret, body), header_value)
