"""Activity definitions of the canonical API: the Ortto activities an account declares."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from eventyard.api.auth import admin_account, reader_account
from eventyard.context import AppContext, get_context
from eventyard.core.errors import EventyardError, FieldError
from eventyard.core.model import Account, ActivityDefinition
from eventyard.http import iso_utc, json_response
from eventyard.services import definitions as definition_service

router = APIRouter(prefix="/api/v1", tags=["Activity definitions"])

_FIELDS = Field(
    description="Field id (type:namespace:field) to its type, the id's prefix",
    examples=[{"str:cm:product-name": "str", "int::v": "int"}],
)


class NewDefinitionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    activity_id: str = Field(description="act:cm:<name>", examples=["act:cm:product-purchase"])
    name: str = Field(description="A name for people, 1 to 255 characters")
    fields: dict[str, str] = _FIELDS


class ReplacementBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    activity_id: str | None = Field(None, description="If given, the id of the path")
    name: str
    fields: dict[str, str] = _FIELDS


def definition_json(definition: ActivityDefinition) -> dict[str, Any]:
    return {
        "activity_id": definition.activity_id,
        "name": definition.name,
        "fields": definition.fields,
        "auto_created": definition.auto_created,
        "created_at": iso_utc(definition.created_at),
        "updated_at": iso_utc(definition.updated_at),
    }


@router.post(
    "/activity-definitions",
    status_code=201,
    responses={409: {"description": "The account has a definition with that id already."}},
    summary="Declare an activity definition",
)
async def create_definition(
    body: NewDefinitionBody,
    account: Account = Depends(admin_account),
    ctx: AppContext = Depends(get_context),
) -> Response:
    created = await run_in_threadpool(
        definition_service.create_definition,
        ctx.store,
        account,
        body.activity_id,
        body.name,
        body.fields,
        ctx.now(),
    )
    return json_response(definition_json(created), 201)


@router.get("/activity-definitions", summary="The account's activity definitions")
async def list_definitions(
    account: Account = Depends(reader_account),
    ctx: AppContext = Depends(get_context),
) -> Response:
    found = await run_in_threadpool(definition_service.list_definitions, ctx.store, account)
    return json_response({"activity_definitions": [definition_json(d) for d in found]})


# Activity ids hold colons (act:cm:purchase); the path accepts them as they
# are or percent-encoded (act%3Acm%3Apurchase).
@router.get("/activity-definitions/{activity_id}", summary="One activity definition")
async def get_definition(
    activity_id: str,
    account: Account = Depends(reader_account),
    ctx: AppContext = Depends(get_context),
) -> Response:
    found = await run_in_threadpool(
        definition_service.get_definition, ctx.store, account, activity_id
    )
    return json_response(definition_json(found))


@router.put("/activity-definitions/{activity_id}", summary="Replace a definition's name and fields")
async def replace_definition(
    activity_id: str,
    body: ReplacementBody,
    account: Account = Depends(admin_account),
    ctx: AppContext = Depends(get_context),
) -> Response:
    if body.activity_id is not None and body.activity_id != activity_id:
        reason = f"activity_id {body.activity_id!r} differs from the path's {activity_id!r}"
        raise EventyardError(
            "invalid_definition", reason, errors=[FieldError("activity_id", reason)]
        )
    replaced = await run_in_threadpool(
        definition_service.replace_definition,
        ctx.store,
        account,
        activity_id,
        body.name,
        body.fields,
        ctx.now(),
    )
    return json_response(definition_json(replaced))


@router.delete(
    "/activity-definitions/{activity_id}", status_code=204, summary="Remove a definition"
)
async def delete_definition(
    activity_id: str,
    account: Account = Depends(admin_account),
    ctx: AppContext = Depends(get_context),
) -> Response:
    await run_in_threadpool(definition_service.delete_definition, ctx.store, account, activity_id)
    return Response(status_code=204)
