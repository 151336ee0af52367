"""The credentials API: issue, list and revoke an account's keys and tokens (admin token)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response
from starlette.concurrency import run_in_threadpool

from eventyard.api.auth import admin_account, reader_account
from eventyard.context import AppContext, get_context
from eventyard.core.credentials import CredentialKind, credential_document, issued_document
from eventyard.core.model import Account
from eventyard.http import json_response
from eventyard.services import credentials as credential_service

router = APIRouter(prefix="/api/v1", tags=["Credentials"])

_FIELDS = (
    "Each credential: `id`, `kind`, `prefix` (the secret's first characters, to recognise "
    "it by; `null` for credentials issued before prefixes were kept), `name`, `status` "
    "(`active`, `expired` or `revoked`), `created_at`, `last_used_at` (moves at most once "
    "a minute), `expires_at`, `revoked_at`; a kind whose dialect sends an id beside the "
    "secret shows it too."
)


def _kinds(ctx: AppContext) -> dict[str, CredentialKind]:
    return {k.kind: k for k in ctx.credential_kinds}


@router.post(
    "/credentials",
    status_code=201,
    summary="Issue a credential",
    description='`{"kind", "name"?, "expires_at"?}` -> 201 with the credential and its '
    "`secret`, shown in this answer only. `kind` is `admin`, `read` or a dialect's "
    "(the kinds `GET /api/v1/credentials` shows); a dialect that sends an id beside the "
    "secret also answers that id (unchanged: the account's existing one) and the secret "
    "under its own names for them. Several credentials of a kind work side by side: issue "
    "the new one, move the clients, then revoke the old one.\n\n" + _FIELDS,
)
async def create_credential(
    body: Annotated[
        dict[str, Any],
        Body(examples=[{"kind": "read", "name": "analyst", "expires_at": "2027-06-30T00:00:00Z"}]),
    ],
    account: Account = Depends(admin_account),
    ctx: AppContext = Depends(get_context),
) -> Response:
    issued = await run_in_threadpool(
        lambda: credential_service.create_credential(
            ctx.store,
            account,
            ctx.credential_kinds,
            body.get("kind"),
            name=body.get("name"),
            expires_at=body.get("expires_at"),
            now=ctx.now(),
        )
    )
    return json_response(issued_document(issued.credential, issued.kind, issued.secret), 201)


@router.get(
    "/credentials",
    summary="The account's credentials, without their secrets",
    description='`{"credentials": [...]}`, oldest first, revoked and expired ones '
    "included.\n\n" + _FIELDS,
)
async def list_credentials(
    account: Account = Depends(reader_account),
    ctx: AppContext = Depends(get_context),
) -> Response:
    found = await run_in_threadpool(credential_service.list_credentials, ctx.store, account.id)
    now, kinds = ctx.now(), _kinds(ctx)
    return json_response(
        {"credentials": [credential_document(c, kinds.get(c.kind), now) for c in found]}
    )


@router.delete(
    "/credentials/{credential_id}",
    status_code=204,
    responses={
        404: {"description": "The account has no such credential."},
        409: {"description": "`last_admin_credential`: the account's last active admin token."},
    },
    summary="Revoke a credential",
    description="The credential is refused by every server process within "
    "`2 x EVENTYARD_CREDENTIAL_CHECK_SECONDS` (2 s by default) and stays listed as "
    "`revoked`. Revoking a revoked credential changes nothing; the account's last active "
    "admin credential cannot be revoked (`409 last_admin_credential`).",
)
async def revoke_credential(
    credential_id: str,
    account: Account = Depends(admin_account),
    ctx: AppContext = Depends(get_context),
) -> Response:
    await run_in_threadpool(
        lambda: credential_service.revoke_credential(
            ctx.store,
            account.id,
            credential_id,
            now=ctx.now(),
            authenticator=ctx.authenticator,
        )
    )
    return Response(status_code=204)
