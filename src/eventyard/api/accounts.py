"""The authenticated account and its settings, in the canonical API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response
from starlette.concurrency import run_in_threadpool

from eventyard.api.auth import admin_account
from eventyard.context import AppContext, get_context
from eventyard.core.account_settings import effective_settings, settings_document
from eventyard.core.model import Account
from eventyard.http import iso_utc, json_response
from eventyard.services import accounts as account_service

router = APIRouter(prefix="/api/v1", tags=["Account"])


@router.get("/account", summary="The account of the admin token, settings with defaults")
async def get_account(
    account: Account = Depends(admin_account),
    ctx: AppContext = Depends(get_context),
) -> Response:
    # Read again rather than trust the credential cache, which may be older.
    current = await run_in_threadpool(account_service.get_account, ctx.store, account.id)
    return json_response(
        {
            "id": current.id,
            "name": current.name,
            "created_at": iso_utc(current.created_at),
            # The key of the HMAC signatures on this account's callbacks.
            "signing_secret": current.signing_secret,
            "settings": settings_document(effective_settings(current.settings)),
        }
    )


@router.patch(
    "/account/settings",
    summary="Change settings (JSON merge patch: null restores a default)",
)
async def update_settings(
    patch: Annotated[
        dict[str, Any],
        Body(examples=[{"auto_create_definitions": True, "retention_days": None}]),
    ],
    account: Account = Depends(admin_account),
    ctx: AppContext = Depends(get_context),
) -> Response:
    updated = await run_in_threadpool(
        account_service.update_account_settings, ctx.store, account, patch, ctx.credentials
    )
    return json_response(settings_document(effective_settings(updated.settings)))
