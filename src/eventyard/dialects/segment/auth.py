"""Where a request's write key comes from: the Authorization header or the body.

Segment: "Choose between writeKey authentication, basic authentication and
OAuth": the write key as the Basic user name with an empty password, a
``writeKey`` field in the body, or (OAuth) "the access token in the
Authorization header as a Bearer token along with your project's write key
in the payload". eventyard has no OAuth server: a Bearer credential is taken
as the write key itself unless the body names one.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HeaderCredential:
    """The write key of a Basic header, or the token of a Bearer header."""

    basic_key: str | None = None
    bearer: str | None = None


def credential_from_authorization(header: str | None) -> HeaderCredential | None:
    """What an ``Authorization`` header holds; ``None`` when it is absent.

    ``ValueError`` when it is present but unreadable (another scheme, bad
    base64, no user name). Basic: the user name is the write key ("taking a
    Segment source Write Key, 'abc123', as the username, adding a colon, and
    then the password field is left empty"); without a colon the whole
    credential is the key ("encoding the write key without a colon might
    work due to backward compatibility"). A password is ignored.
    """
    if header is None or not header.strip():
        return None
    scheme, _, credential = header.strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() == "bearer" and credential:
        return HeaderCredential(bearer=credential)
    if scheme.lower() != "basic" or not credential:
        raise ValueError("Authorization must be Basic (the write key as user name) or Bearer")
    try:
        decoded = base64.b64decode(credential.encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise ValueError("the Basic credential is not base64 of 'writeKey:'") from exc
    key = decoded.partition(":")[0].strip()
    if not key:
        raise ValueError("the Basic credential has no user name (the write key)")
    return HeaderCredential(basic_key=key)
