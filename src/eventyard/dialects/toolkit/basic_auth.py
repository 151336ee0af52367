"""Reading an ``Authorization`` header: its scheme, and a Basic credential's user and password.

What a dialect makes of them (a write key, an API key, which password is
allowed, what an unreadable header means) is the dialect's own rule.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Authorization:
    """An ``Authorization`` header: the scheme in lower case and the credential, stripped."""

    scheme: str
    credential: str


@dataclass(frozen=True, slots=True)
class BasicCredential:
    user: str
    #: ``None`` when the decoded credential has no colon at all.
    password: str | None


def split_authorization(header: str | None) -> Authorization | None:
    """The scheme and credential of ``header``; ``None`` when it is absent or blank."""
    if header is None or not header.strip():
        return None
    scheme, _, credential = header.strip().partition(" ")
    return Authorization(scheme.lower(), credential.strip())


def decode_basic(credential: str) -> BasicCredential:
    """``user:password`` of a Basic credential; ``ValueError`` when it is not base64 of UTF-8."""
    try:
        decoded = base64.b64decode(credential.encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise ValueError("the Basic credential is not base64 of UTF-8 text") from exc
    user, colon, password = decoded.partition(":")
    return BasicCredential(user, password if colon else None)
