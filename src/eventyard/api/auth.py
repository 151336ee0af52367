"""``Authorization: Bearer <admin token>`` for the canonical API."""

from __future__ import annotations

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from eventyard.context import AppContext, get_context
from eventyard.core.errors import EventyardError, Unauthorized
from eventyard.core.model import Account
from eventyard.services.accounts import authenticate


async def admin_account(request: Request, ctx: AppContext = Depends(get_context)) -> Account:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise EventyardError(
            "unauthorized",
            "Send Authorization: Bearer <admin token>",
            401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        return await run_in_threadpool(
            authenticate, ctx.store, "admin", token.strip(), None, ctx.credentials
        )
    except Unauthorized as exc:
        raise EventyardError(
            "unauthorized", "Invalid admin token", 401, headers={"WWW-Authenticate": "Bearer"}
        ) from exc
