"""The destinations API: where the account's activities are delivered (admin token)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response
from starlette.concurrency import run_in_threadpool

from eventyard.api.auth import admin_account, reader_account
from eventyard.context import AppContext, get_context
from eventyard.core.model import Account
from eventyard.http import json_response
from eventyard.services.destinations import manage

router = APIRouter(prefix="/api/v1", tags=["Destinations"])

_FIELDS = (
    "A destination: `id`, `name`, `kind`, `url`, `filter`, `enabled`, `created_at`, "
    "`updated_at`, `delivered` (activities delivered so far), `failed_attempts` (delivery "
    "attempts that failed and were retried), `last_delivery_at`, `last_error`; one "
    "destination also has `pending` (activities waiting), `dead` (its dead letters) and "
    "`lag_seconds` (how long the oldest waiting activity has waited). Its credentials "
    "are never shown. See docs/destinations.md."
)
_404: dict[int | str, dict[str, Any]] = {
    404: {"description": "The account has no such destination."}
}
_422: dict[int | str, dict[str, Any]] = {
    422: {"description": "A value the route cannot take; the body names the field."}
}
_404_422 = {**_404, **_422}


@router.post(
    "/destinations",
    status_code=201,
    responses=_422,
    summary="Create a destination",
    description='`{"name", "kind", "url", "credentials", "filter"?, "backfill_from"?}` -> '
    "201 with the destination, and `backfill_job_id` when `backfill_from` asks for the "
    "activities that occurred since then to be delivered too. From the creation on, every "
    'stored activity that passes `filter` (`{"dialects", "names", "sources"}`, each '
    "optional) is delivered. A `url` the SSRF guard refuses, credentials that are not "
    "those of the kind, or a bad filter are 422s naming the field.\n\n" + _FIELDS,
)
async def create_destination(
    body: Annotated[
        dict[str, Any],
        Body(
            examples=[
                {
                    "name": "warehouse",
                    "kind": "webhook",
                    "url": "https://hooks.example.com/eventyard",
                    "credentials": {"secret": "a-long-random-secret"},
                    "filter": {"names": ["Purchase"]},
                }
            ]
        ),
    ],
    account: Account = Depends(admin_account),
    ctx: AppContext = Depends(get_context),
) -> Response:
    created, job_id = await run_in_threadpool(
        manage.create_destination,
        ctx.store,
        ctx.credential_sealer(),
        ctx.destination_formats,
        ctx.settings,
        account,
        body,
        ctx.now(),
    )
    if job_id is not None and ctx.wake is not None:
        ctx.wake()
    document = manage.destination_document(created, None, ctx.now())
    document["backfill_job_id"] = job_id
    return json_response(document, 201)


@router.get(
    "/destinations",
    summary="The account's destinations",
    description='`{"destinations": [...]}`, oldest first.\n\n' + _FIELDS,
)
async def list_destinations(
    account: Account = Depends(reader_account),
    ctx: AppContext = Depends(get_context),
) -> Response:
    found = await run_in_threadpool(manage.list_destinations, ctx.store, account.id)
    now = ctx.now()
    return json_response(
        {"destinations": [manage.destination_document(d, None, now) for d in found]}
    )


@router.get(
    "/destinations/{destination_id}",
    responses=_404,
    summary="A destination and how its deliveries go",
    description=_FIELDS,
)
async def get_destination(
    destination_id: str,
    account: Account = Depends(reader_account),
    ctx: AppContext = Depends(get_context),
) -> Response:
    found, stats = await run_in_threadpool(
        manage.get_destination, ctx.store, account.id, destination_id
    )
    return json_response(manage.destination_document(found, stats, ctx.now()))


@router.patch(
    "/destinations/{destination_id}",
    responses=_404_422,
    summary="Change a destination",
    description="Any of `name`, `url`, `credentials`, `filter` and `enabled`; "
    '`"enabled": false` pauses deliveries (activities still queue), `true` resumes them. '
    "New credentials apply to the next attempt, retries included.\n\n" + _FIELDS,
)
async def update_destination(
    destination_id: str,
    body: Annotated[dict[str, Any], Body(examples=[{"enabled": False}])],
    account: Account = Depends(admin_account),
    ctx: AppContext = Depends(get_context),
) -> Response:
    changed = await run_in_threadpool(
        manage.update_destination,
        ctx.store,
        ctx.credential_sealer(),
        ctx.destination_formats,
        ctx.settings,
        account,
        destination_id,
        body,
        ctx.now(),
    )
    return json_response(manage.destination_document(changed, None, ctx.now()))


@router.delete(
    "/destinations/{destination_id}",
    status_code=204,
    responses=_404,
    summary="Delete a destination",
    description="Its waiting activities and dead letters go with it.",
)
async def delete_destination(
    destination_id: str,
    account: Account = Depends(admin_account),
    ctx: AppContext = Depends(get_context),
) -> Response:
    await run_in_threadpool(manage.delete_destination, ctx.store, account.id, destination_id)
    return Response(status_code=204)


@router.post(
    "/destinations/{destination_id}/replay",
    status_code=202,
    responses=_404_422,
    summary="Deliver stored history, or the dead letters, again",
    description='`{"from", "to"?, "dead_letters"?: true}` -> 202 `{"job_id"}`. Queues the '
    "activities that occurred from `from` (inclusive) to `to` (exclusive, default now) and "
    "pass the filter, or with `dead_letters` the destination's dead letters, for delivery "
    "through the same path as live ones, after the live activities waiting (a replay "
    "never holds live deliveries back). Follow it with `GET /api/v1/jobs/{job_id}`.",
)
async def replay_destination(
    destination_id: str,
    body: Annotated[
        dict[str, Any],
        Body(examples=[{"from": "2026-11-01T00:00:00Z"}, {"dead_letters": True}]),
    ],
    account: Account = Depends(admin_account),
    ctx: AppContext = Depends(get_context),
) -> Response:
    job_id = await run_in_threadpool(
        manage.replay_destination, ctx.store, account, destination_id, body, ctx.now()
    )
    if ctx.wake is not None:
        ctx.wake()
    return json_response({"job_id": job_id}, 202)


@router.get(
    "/destinations/{destination_id}/dead-letters",
    responses=_404_422,
    summary="Activities the destination refused for good",
    description='`{"dead_letters": [{"activity_id", "status", "reason", "answer", '
    '"dead_at"}], "next_after"}`: by activity id; pass `next_after` as `after` for the '
    "next page.",
)
async def list_dead_letters(
    destination_id: str,
    limit: int = Query(100, description="Most dead letters per page (1-1000)."),
    after: str | None = Query(None, description="The `next_after` of the previous page."),
    account: Account = Depends(reader_account),
    ctx: AppContext = Depends(get_context),
) -> Response:
    letters = await run_in_threadpool(
        manage.list_dead_letters, ctx.store, account.id, destination_id, limit, after
    )
    return json_response(
        {
            "dead_letters": [manage.dead_letter_document(d) for d in letters],
            "next_after": letters[-1].activity_id if len(letters) == limit else None,
        }
    )
