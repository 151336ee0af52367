"""The authenticated account and its settings, in the canonical API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response
from starlette.concurrency import run_in_threadpool

from eventyard.api.auth import admin_account, caller
from eventyard.context import AppContext, get_context
from eventyard.core.account_settings import effective_settings, settings_document
from eventyard.core.credentials import ADMIN
from eventyard.core.model import Account
from eventyard.http import iso_utc, json_response
from eventyard.services import accounts as account_service
from eventyard.services.credentials import Authenticated

router = APIRouter(prefix="/api/v1", tags=["Account"])


@router.get(
    "/account",
    summary="The token's account, settings with defaults",
    description="`signing_secret` (the key of the HMAC signatures on the account's "
    "callbacks) is shown to an admin token only.",
)
async def get_account(
    found: Authenticated = Depends(caller),
    ctx: AppContext = Depends(get_context),
) -> Response:
    # Read again rather than trust the credential check's copy, which may be older.
    current = await run_in_threadpool(account_service.get_account, ctx.store, found.account.id)
    document: dict[str, Any] = {
        "id": current.id,
        "name": current.name,
        "created_at": iso_utc(current.created_at),
    }
    if found.kind == ADMIN.kind:
        document["signing_secret"] = current.signing_secret
    document["settings"] = settings_document(effective_settings(current.settings))
    return json_response(document)


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
        account_service.update_account_settings, ctx.store, account, patch, ctx.authenticator
    )
    return json_response(settings_document(effective_settings(updated.settings)))
