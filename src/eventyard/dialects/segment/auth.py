"""Where a request's write key comes from: the Authorization header or the body.

Segment: "Choose between writeKey authentication, basic authentication and
OAuth": the write key as the Basic user name with an empty password, a
``writeKey`` field in the body, or (OAuth) "the access token in the
Authorization header as a Bearer token along with your project's write key
in the payload". eventyard has no OAuth server: a Bearer credential is taken
as the write key itself unless the body names one.
"""

from __future__ import annotations

from dataclasses import dataclass

from eventyard.dialects.toolkit.basic_auth import decode_basic, split_authorization


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
    authorization = split_authorization(header)
    if authorization is None:
        return None
    scheme, credential = authorization.scheme, authorization.credential
    if scheme == "bearer" and credential:
        return HeaderCredential(bearer=credential)
    if scheme != "basic" or not credential:
        raise ValueError("Authorization must be Basic (the write key as user name) or Bearer")
    try:
        basic = decode_basic(credential)
    except ValueError as exc:
        raise ValueError("the Basic credential is not base64 of 'writeKey:'") from exc
    key = basic.user.strip()
    if not key:
        raise ValueError("the Basic credential has no user name (the write key)")
    return HeaderCredential(basic_key=key)
