"""The canonical lists API: contact lists (Netcore ``listid``) and their members."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response
from starlette.concurrency import run_in_threadpool

from eventyard.api.auth import admin_account, reader_account
from eventyard.api.contacts import contact_json
from eventyard.context import AppContext, get_context
from eventyard.core.lists import ContactList
from eventyard.core.model import Account
from eventyard.http import iso_utc, json_response
from eventyard.services import lists as list_service

router = APIRouter(prefix="/api/v1", tags=["Lists"])


def list_json(contact_list: ContactList) -> dict[str, Any]:
    return {
        "id": contact_list.id,
        "name": contact_list.name,
        "created_at": iso_utc(contact_list.created_at),
        "members": contact_list.members,
    }


@router.post(
    "/lists",
    status_code=201,
    responses={409: {"description": "The account has a list of that name already."}},
    summary="Create a list",
    description='`{"name": "…"}` -> 201 with the list and its integer `id`, the `listid` '
    "a Netcore bulk upload names. A name the account already uses is 409.",
)
async def create_list(
    body: Annotated[dict[str, Any], Body(examples=[{"name": "Newsletter"}])],
    account: Account = Depends(admin_account),
    ctx: AppContext = Depends(get_context),
) -> Response:
    created = await run_in_threadpool(
        list_service.create_list, ctx.store, account, body.get("name")
    )
    return json_response(list_json(created), 201)


@router.get("/lists", summary="The account's lists with their member counts")
async def list_lists(
    account: Account = Depends(reader_account),
    ctx: AppContext = Depends(get_context),
) -> Response:
    found = await run_in_threadpool(list_service.list_lists, ctx.store, account)
    return json_response({"lists": [list_json(c) for c in found]})


@router.get("/lists/{list_id}", summary="One list")
async def get_list(
    list_id: int,
    account: Account = Depends(reader_account),
    ctx: AppContext = Depends(get_context),
) -> Response:
    found = await run_in_threadpool(list_service.get_list, ctx.store, account, list_id)
    return json_response(list_json(found))


@router.get("/lists/{list_id}/contacts", summary="A list's contacts by id, a page at a time")
async def list_contacts(
    list_id: int,
    limit: int = Query(100, description="Page size, 1 to 1000"),
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
    account: Account = Depends(reader_account),
    ctx: AppContext = Depends(get_context),
) -> Response:
    members, next_cursor = await run_in_threadpool(
        list_service.list_members, ctx.store, account, list_id, limit, cursor
    )
    return json_response(
        {"contacts": [contact_json(c) for c in members], "next_cursor": next_cursor}
    )
