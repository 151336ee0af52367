"""The canonical read API: contacts, their activities and identity history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from starlette.concurrency import run_in_threadpool

from eventyard.api.auth import admin_account, reader_account
from eventyard.api.identity import identity_event_json
from eventyard.context import AppContext, get_context
from eventyard.core.activity_document import activity_json
from eventyard.core.errors import EventyardError, FieldError
from eventyard.core.identifiers import parse_identifier_query
from eventyard.core.model import Account, Contact, ContactGroup, Erasure
from eventyard.http import iso_utc, json_response
from eventyard.services import contacts as contact_service
from eventyard.services import erasure as erasure_service

router = APIRouter(prefix="/api/v1", tags=["Contacts"])


def contact_json(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.id,
        "status": contact.status,
        "identifiers": [{"kind": i.kind, "value": i.value} for i in contact.identifiers],
        "attributes": contact.attributes,
        "created_at": iso_utc(contact.created_at),
        "updated_at": iso_utc(contact.updated_at),
    }


def group_json(group: ContactGroup) -> dict[str, Any]:
    return {
        "group_id": group.group_id,
        "traits": group.traits,
        "created_at": iso_utc(group.created_at),
        "updated_at": iso_utc(group.updated_at),
    }


@router.get("/contacts", summary="Find contacts by identifier")
async def find_contacts(
    identifier: str = Query(description="KIND:VALUE, for example email:jane@example.com"),
    account: Account = Depends(reader_account),
    ctx: AppContext = Depends(get_context),
) -> Response:
    try:
        ident = parse_identifier_query(identifier)
    except ValueError as exc:
        raise EventyardError(
            "invalid_identifier",
            f"identifier {exc}",
            errors=[FieldError("identifier", f"identifier {exc}")],
        ) from exc
    found = await run_in_threadpool(contact_service.find_contacts, ctx.reads, account, ident)
    return json_response({"contacts": [contact_json(c) for c in found]})


@router.get("/contacts/{contact_id}", summary="Get one contact")
async def get_contact(
    contact_id: str,
    account: Account = Depends(reader_account),
    ctx: AppContext = Depends(get_context),
) -> Response:
    contact = await run_in_threadpool(contact_service.get_contact, ctx.reads, account, contact_id)
    groups = await run_in_threadpool(contact_service.contact_groups, ctx.reads, account, contact.id)
    return json_response({**contact_json(contact), "groups": [group_json(g) for g in groups]})


@router.get("/contacts/{contact_id}/activities", summary="A contact's activities, newest first")
async def list_activities(
    contact_id: str,
    limit: int = Query(50, description="Page size, 1 to 1000"),
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
    account: Account = Depends(reader_account),
    ctx: AppContext = Depends(get_context),
) -> Response:
    page = await run_in_threadpool(
        contact_service.list_activities, ctx.reads, account, contact_id, limit, cursor
    )
    return json_response(
        {"activities": [activity_json(a) for a in page.activities], "next_cursor": page.next_cursor}
    )


@router.get(
    "/contacts/{contact_id}/identity-events",
    summary="Conversions, merges and conflicts that involved a contact",
)
async def identity_events(
    contact_id: str,
    account: Account = Depends(reader_account),
    ctx: AppContext = Depends(get_context),
) -> Response:
    events = await run_in_threadpool(
        contact_service.identity_history, ctx.reads, account, contact_id
    )
    return json_response({"identity_events": [identity_event_json(e) for e in events]})


def erasure_json(erasure: Erasure) -> dict[str, Any]:
    return {
        "id": erasure.id,
        "contact_ids": list(erasure.contact_ids),
        "requested_via": erasure.requested_via,
        "removed": erasure.removed,
        "erased_at": iso_utc(erasure.erased_at),
    }


@router.delete(
    "/contacts/{contact_id}",
    summary="Erase a contact and everything held about them (right to erasure)",
    description=(
        "Removes the contact (and every contact merged into it), its identifiers, "
        "activities, list and group memberships and identity history; blanks its values "
        "where other records mention them; drops its records from queued batches and its "
        "rows from export files not yet downloaded. Answers the audit record, which holds "
        "ids and counts only. 404 for an unknown contact or another account's."
    ),
)
async def erase_contact(
    contact_id: str,
    account: Account = Depends(admin_account),
    ctx: AppContext = Depends(get_context),
) -> Response:
    erasure = await run_in_threadpool(
        erasure_service.erase_contact,
        ctx.store,
        account,
        contact_id,
        requested_via="api",
        now=ctx.now(),
        export_dir=Path(ctx.settings.export_dir),
    )
    return json_response(erasure_json(erasure))


@router.get("/erasures", summary="Contacts erased on request: the audit record, newest first")
async def list_erasures(
    limit: int = Query(100, ge=1, le=1000, description="How many, 1 to 1000"),
    account: Account = Depends(reader_account),
    ctx: AppContext = Depends(get_context),
) -> Response:
    found = await run_in_threadpool(erasure_service.list_erasures, ctx.store, account, limit)
    return json_response({"erasures": [erasure_json(e) for e in found]})
