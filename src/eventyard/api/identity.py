"""Identity operations: merge two contacts (with a dry run), revert a merge, split a contact."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response
from starlette.concurrency import run_in_threadpool

from eventyard.api.auth import admin_caller
from eventyard.context import AppContext, get_context
from eventyard.core.errors import EventyardError
from eventyard.core.identity_operations import (
    MergePreview,
    parse_prefer,
    parse_split_identifiers,
    public_event,
)
from eventyard.http import iso_utc, json_response
from eventyard.services import identity_operations as operations
from eventyard.services.credentials import Authenticated

router = APIRouter(prefix="/api/v1", tags=["Identity"])


def identity_event_json(event: dict[str, Any]) -> dict[str, Any]:
    """An identity event as the API shows it: the merge snapshot stays inside."""
    return {**public_event(event), "created_at": iso_utc(event["created_at"])}


def preview_json(preview: MergePreview) -> dict[str, Any]:
    return {
        "contact_id": preview.survivor_id,
        "merged_contact_id": preview.other_id,
        "identifiers": preview.identifiers,
        "activities": preview.activities,
        "lists": preview.lists,
        "groups": preview.groups,
        "attributes": {
            key: {"from": old, "to": new} for key, (old, new) in preview.attributes.items()
        },
    }


def _actor(found: Authenticated) -> dict[str, Any]:
    return {"via": "api", "credential_id": found.credential_id}


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise EventyardError("invalid_body", "The body must be a JSON object", 422)
    return body


_MERGE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "The account has no such contact (either of the two)."},
    409: {"description": "A contact of the merge changed under it (merged or erased)."},
    422: {"description": "`merge_into_itself`, or a body that names no other contact."},
}
_REVERT_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "The account has no such identity event."},
    409: {
        "description": "`already_reverted`, `survivor_merged_since` or `contact_gone`: "
        "the merge can no longer be undone as recorded."
    },
    422: {"description": "`not_a_merge` or `not_revertible` (recorded without a snapshot)."},
}
_SPLIT_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "The account has no such contact."},
    409: {"description": "The contact changed under the split (merged or erased)."},
    422: {
        "description": "An identifier the contact does not hold, all of its identifiers, "
        "or a body that names none."
    },
}


@router.post(
    "/contacts/{contact_id}/merge",
    responses=_MERGE_ERRORS,
    summary="Merge another contact into this one (dry_run=1: preview only)",
    description='`{"contact_id": OTHER, "prefer"?: "other"}` merges OTHER into this contact: '
    "its identifiers, activities, list and group memberships move here; attributes are "
    "combined key by key, this contact's values winning unless `prefer` is `other`. "
    'Answers `{"dry_run", "moved", "identity_event"}`: `moved` counts identifiers, '
    "activities, lists and groups and lists the attributes that change "
    '(`{"key": {"from", "to"}}`). With `?dry_run=1` nothing changes and `identity_event` '
    "is null. 404 for an unknown id or another account's; 422 for a contact merged into "
    "itself. Admin token only.",
)
async def merge_contact(
    contact_id: str,
    body: Annotated[dict[str, Any], Body(examples=[{"contact_id": "0HB5K0ZJ3VQ0X1M5Q8T4N2P6"}])],
    dry_run: bool = Query(False, description="1: answer what would move, change nothing"),
    found: Authenticated = Depends(admin_caller),
    ctx: AppContext = Depends(get_context),
) -> Response:
    body = _object(body)
    prefer = parse_prefer(body.get("prefer"))
    preview, event = await run_in_threadpool(
        lambda: operations.merge_contacts(
            ctx.store,
            found.account,
            contact_id,
            body.get("contact_id"),
            prefer=prefer,
            actor=_actor(found),
            now=ctx.now(),
            dry_run=dry_run,
        )
    )
    return json_response(
        {
            "dry_run": dry_run,
            "moved": preview_json(preview),
            "identity_event": None if event is None else identity_event_json(event),
        }
    )


@router.post(
    "/identity-events/{event_id}/revert",
    responses=_REVERT_ERRORS,
    summary="Revert a merge (made by hand or by identity resolution)",
    description="The merged contact comes back with its id, its identifiers, the activities "
    "resolved through them (those that arrived after the merge too), its memberships and "
    "attributes as they were at the merge; the survivor's attributes the merge changed go "
    "back unless written again since. Answers the `reverted` identity event. 404 for an "
    "unknown event or another account's; 409 for a merge already reverted (or made "
    "impossible to undo by a later merge of the survivor or an erasure); 422 for an event "
    "that is not a merge. Admin token only.",
)
async def revert_identity_event(
    event_id: str,
    found: Authenticated = Depends(admin_caller),
    ctx: AppContext = Depends(get_context),
) -> Response:
    event = await run_in_threadpool(
        lambda: operations.revert_merge(
            ctx.store, found.account, event_id, actor=_actor(found), now=ctx.now()
        )
    )
    return json_response({"identity_event": identity_event_json(event)})


@router.post(
    "/contacts/{contact_id}/split",
    responses=_SPLIT_ERRORS,
    summary="Move some identifiers of a contact, and their activities, to a new contact",
    description='`{"identifiers": ["KIND:VALUE", ...]}`: those identifiers and the activities '
    "resolved through them (provenance) move to a new contact; nothing else moves. Answers "
    '`{"contact_id": NEW, "identity_event"}` (201). 404 for an unknown contact; 422 for an '
    "identifier the contact does not hold, or one that would leave it none. Admin token only.",
)
async def split_contact(
    contact_id: str,
    body: Annotated[dict[str, Any], Body(examples=[{"identifiers": ["email:old@example.com"]}])],
    found: Authenticated = Depends(admin_caller),
    ctx: AppContext = Depends(get_context),
) -> Response:
    identifiers = parse_split_identifiers(_object(body).get("identifiers"))
    new_id, event = await run_in_threadpool(
        lambda: operations.split_contact(
            ctx.store,
            found.account,
            contact_id,
            identifiers,
            actor=_actor(found),
            now=ctx.now(),
        )
    )
    return json_response({"contact_id": new_id, "identity_event": identity_event_json(event)}, 201)
