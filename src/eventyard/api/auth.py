"""``Authorization: Bearer <token>`` for the canonical API: an admin or a read-only token.

A route that changes anything depends on :func:`admin_account`; one that
only reads depends on :func:`reader_account`. A read token on a writing
route is a 403 (it is a valid credential that may not do this), an unknown,
revoked or expired token a 401.
"""

from __future__ import annotations

from fastapi import Depends, Request

from eventyard.context import AppContext, get_context
from eventyard.core.credentials import ADMIN, READ
from eventyard.core.errors import EventyardError, Unauthorized
from eventyard.core.model import Account
from eventyard.services.credentials import Authenticated

#: The kinds a bearer token of the canonical API may be.
BEARER_KINDS = (ADMIN.kind, READ.kind)


async def caller(request: Request, ctx: AppContext = Depends(get_context)) -> Authenticated:
    """The account and credential of the request's bearer token (admin or read), or 401."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise EventyardError(
            "unauthorized",
            "Send Authorization: Bearer <admin or read token>",
            401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        return await ctx.identify(BEARER_KINDS, token.strip())
    except Unauthorized as exc:
        raise EventyardError(
            "unauthorized", "Invalid token", 401, headers={"WWW-Authenticate": "Bearer"}
        ) from exc


async def admin_account(found: Authenticated = Depends(caller)) -> Account:
    """The account of an admin token; 403 for a read token."""
    if found.kind != ADMIN.kind:
        raise EventyardError(
            "forbidden", "This token may only read: send an admin token to change anything", 403
        )
    return found.account


async def admin_caller(found: Authenticated = Depends(caller)) -> Authenticated:
    """The account and credential of an admin token (who acts); 403 for a read token."""
    await admin_account(found)
    return found


async def reader_account(found: Authenticated = Depends(caller)) -> Account:
    """The account of an admin or a read token."""
    return found.account
