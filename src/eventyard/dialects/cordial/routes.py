"""Cordial contact activities: ``POST``/``GET /v2/contactactivities``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from eventyard.context import AppContext, get_context
from eventyard.core.activity_query import encode_query_token
from eventyard.core.errors import EventyardError, Unauthorized
from eventyard.core.model import Account, RecordsOutcome, StoredResponse
from eventyard.core.payload import JsonBody, decode_json
from eventyard.dialects.cordial.errors import VALIDATION_ERROR, cordial_error
from eventyard.dialects.cordial.translate import (
    DIALECT,
    MAX_BODY_BYTES,
    MAX_PER_PAGE,
    PAGING_TOKEN,
    RULES,
    api_key_from_authorization,
    contact_keys,
    export_fields,
    parse_export,
    parse_listing,
    record_json,
    translate_activity,
)
from eventyard.dialects.pipeline import (
    Arrival,
    Credential,
    IngestEndpoint,
    Report,
    Submission,
    receive,
)
from eventyard.http import (
    iso_utc,
    read_body,
)
from eventyard.services.activity_search import count_activities, search_activities
from eventyard.services.exports import (
    EXPORT_ACTIVITIES,
    MEDIA_TYPE,
    SUFFIX,
    ExportFormat,
    finished_export,
    start_activity_export,
)
from eventyard.services.jobs import get_job

PATH = "/v2/contactactivities"
router = APIRouter(
    tags=["Cordial"],
    responses={
        422: {
            "description": "A field breaks Cordial's rules: errorKey names the rule "
            "(CONTACT_ACTIVITIES_VALIDATION_ERROR, INCORRECT_ACTION_NAME …)."
        }
    },
)

_ACTIVITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["a"],
    "maxProperties": 6,
    "properties": {
        "a": {"type": "string", "maxLength": 40, "example": "browse"},
        "email": {"type": "string", "example": "msmith@example.com"},
        "custID": {"type": "string"},
        "cID": {"type": "string"},
        "ats": {"type": "string", "example": "2025-01-09 17:47:43"},
        "properties": {"type": "object", "maxProperties": 1000},
    },
    "additionalProperties": {"type": "string", "description": "an account's identifier key"},
}


def read_credential(request: Request) -> Credential:
    """The Cordial API key of the request's HTTP Basic credentials, or 401."""
    header = request.headers.get("authorization")
    if not header:
        raise EventyardError("unauthorized", "Missing Authorization header (HTTP Basic)", 401)
    key = api_key_from_authorization(header)
    if key is None:
        raise EventyardError(
            "unauthorized",
            "Authorization must be HTTP Basic with the API key as user name and an empty password",
            401,
        )
    return Credential(DIALECT, key)


def invalid_credential() -> EventyardError:
    return EventyardError("unauthorized", "Invalid API key", 401)


async def cordial_account(request: Request, ctx: AppContext) -> Account:
    """The account of the request's Basic credentials (the Cordial API key), or 401."""
    credential = read_credential(request)
    try:
        account = await ctx.authenticate(DIALECT, credential.secret)
    except Unauthorized as exc:
        raise invalid_credential() from exc
    ctx.limit_rate(DIALECT, account.id)
    return account


@router.post(
    PATH,
    summary="Create a contact activity (Cordial)",
    description=(
        "Creates one contact activity for the contact named by a primary or secondary "
        "identifier key. HTTP Basic with the API key as user name authenticates."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _ACTIVITY_SCHEMA}},
        }
    },
)
async def create_activity(request: Request, ctx: AppContext = Depends(get_context)) -> Response:
    return await receive(request, ctx, ENDPOINT)


@dataclass(eq=False)
class Create(Submission):
    """One activity: answered with its contact's ``cID`` once stored."""

    stripped: Sequence[str] = ()

    def respond(self, outcome: RecordsOutcome | None) -> StoredResponse:
        assert outcome is not None  # one valid activity is always stored
        if outcome.rejected:
            raise cordial_error(VALIDATION_ERROR, outcome.rejected[0].message, "cID")
        content: dict[str, Any] = {"success": True, "cID": outcome.contact_ids[0]}
        if self.stripped:
            content["strippedProperties"] = list(self.stripped)
        return StoredResponse(status_code=200, body=orjson.dumps(content))

    def report(self) -> Report:
        return Report({"accepted": 1})


def parse_body(body: bytes) -> JsonBody:
    """The JSON of a POST body; ``CONTACT_ACTIVITIES_INVALID_PAYLOAD`` when it is none."""
    if not body.strip():
        raise cordial_error("CONTACT_ACTIVITIES_INVALID_PAYLOAD", "the body is empty")
    try:
        return decode_json(body)
    except ValueError as exc:
        raise cordial_error(
            "CONTACT_ACTIVITIES_INVALID_PAYLOAD", f"the body is not valid JSON: {exc}"
        ) from exc


def translate_body(payload: JsonBody, arrival: Arrival) -> Create:
    translation = translate_activity(
        payload.value,
        keys=contact_keys(arrival.account.primary_kinds),
        now=arrival.now,
        check_unstorable=payload.suspicious,
    )
    return Create([translation.activity], rules=RULES, stripped=translation.stripped)


ENDPOINT = IngestEndpoint(
    dialect=DIALECT,
    read_credential=read_credential,
    invalid_credential=invalid_credential,
    parse=parse_body,
    translate=translate_body,
    max_body_bytes=MAX_BODY_BYTES,
)


@router.get(
    PATH,
    summary="List contact activities (Cordial)",
    description=(
        "Filters: `time[lt|gt|lte|gte]`, `time[between][start]`, `time[between][end]`, "
        "`action`, a contact identifier (`email`, `custID`, `cID`); `sort_by=ats`, "
        f"`sort_dir`, `page`, `per_page` (default 25, at most {MAX_PER_PAGE}), "
        "`return_count`. When more records exist the first element is "
        '`{"paging": {"token", "next"}}`; `__paging_token` continues the listing.'
    ),
)
async def list_activities(request: Request, ctx: AppContext = Depends(get_context)) -> Response:
    account = await cordial_account(request, ctx)
    keys = contact_keys(account.primary_kinds)
    listing = parse_listing(list(request.query_params.multi_items()), keys)
    if listing.count_only:
        total = await run_in_threadpool(count_activities, ctx.reads, account, listing.query)
        return _json({"count": total}, {"X-Total-Count": str(total)})
    page = await run_in_threadpool(
        lambda: search_activities(
            ctx.reads,
            account,
            listing.query,
            listing.per_page,
            with_total=listing.return_count,
        )
    )
    records: list[dict[str, Any]] = []
    if page.next_query is not None:
        token = encode_query_token(page.next_query)
        params = {
            "per_page": listing.per_page,
            "return_count": "true" if listing.return_count else "false",
            PAGING_TOKEN: token,
        }
        next_url = str(request.url.replace(query=urlencode(params)))
        records.append({"paging": {"token": token, "next": next_url}})
    records.extend(record_json(f.activity, f.contact_id, f.identifiers) for f in page.items)
    headers = {"X-Total-Count": str(page.total)} if page.total is not None else None
    return _json(records, headers)


def _json(body: Any, headers: dict[str, str] | None = None, status: int = 200) -> Response:
    return Response(
        content=orjson.dumps(body),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


EXPORT_PATH = "/v2/contactactivityexport"
JOBS_PATH = "/v2/jobs"
#: Job statuses as Cordial's jobs API names them.
JOB_STATUS = {
    "queued": "pending",
    "running": "processing",
    "completed": "complete",
    "failed": "failed",
}


@router.post(
    EXPORT_PATH,
    summary="Export contact activities (Cordial)",
    description=(
        "Starts an asynchronous export of the contact activities matching the same "
        "filters as the GET (as a JSON object: `action`, `email`/`custID`/`cID`, "
        "`time: {lt, gt, lte, gte, between: {start, end}}`, `sort_dir`), written as "
        "newline-delimited JSON (`format: json`, the default) or CSV (`format: csv`). "
        "Follow it with `GET /v2/jobs/{id}`; download the file from its `downloadUrls`."
    ),
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string", "maxLength": 200},
                            "format": {"type": "string", "enum": ["json", "csv"]},
                            "action": {"type": "string"},
                            "email": {"type": "string"},
                            "time": {"type": "object"},
                            # Empty, like absent, is the default order (desc), as
                            # on the listing's query string.
                            "sort_dir": {"type": "string", "enum": ["asc", "desc", ""]},
                        },
                    }
                }
            }
        },
        "responses": {
            "202": {
                "description": "The export job is durable; follow it at statusUrl.",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["success", "jobID", "statusUrl"],
                            "properties": {
                                "success": {"const": True},
                                "jobID": {"type": "string"},
                                "statusUrl": {"type": "string"},
                            },
                        }
                    }
                },
            }
        },
    },
    status_code=202,
)
async def create_export(request: Request, ctx: AppContext = Depends(get_context)) -> Response:
    account = await cordial_account(request, ctx)
    body = await read_body(
        request, max_bytes=MAX_BODY_BYTES, timeout_seconds=ctx.settings.body_timeout_seconds
    )
    payload: Any = {}  # an empty body asks for every activity
    if body.strip():
        try:
            payload = decode_json(body).value
        except ValueError as exc:
            raise cordial_error(
                "CONTACT_ACTIVITIES_INVALID_PAYLOAD", f"the body is not valid JSON: {exc}"
            ) from exc
    keys = contact_keys(account.primary_kinds)
    export = parse_export(payload, keys)
    fmt: ExportFormat = "csv" if export.export_format == "csv" else "json"
    job_id = await run_in_threadpool(
        lambda: start_activity_export(
            ctx.store,
            account,
            export.query,
            export_format=fmt,
            name=export.name,
            fields=export_fields(keys, fmt),
            now=ctx.now(),
        )
    )
    if ctx.wake is not None:
        ctx.wake()
    status_url = str(request.url.replace(path=f"{JOBS_PATH}/{job_id}", query=""))
    return _json({"success": True, "jobID": job_id, "statusUrl": status_url}, status=202)


@router.get(
    JOBS_PATH + "/{job_id}",
    summary="Get a job (Cordial)",
    description=(
        "An export job: `status` `pending`, `processing`, `complete` or `failed`, the "
        "record count and, once complete, `downloadUrls`."
    ),
)
async def get_cordial_job(
    job_id: str, request: Request, ctx: AppContext = Depends(get_context)
) -> Response:
    account = await cordial_account(request, ctx)
    job = await run_in_threadpool(get_job, ctx.store, account, job_id)
    body: dict[str, Any] = {
        "_id": job.id,
        "name": job.payload.get("name") if isinstance(job.payload, dict) else None,
        "type": "export" if job.kind == EXPORT_ACTIVITIES else job.kind,
        "status": JOB_STATUS[job.status],
        "createdAt": iso_utc(job.created_at),
        "startedAt": None if job.started_at is None else iso_utc(job.started_at),
        "finishedAt": None if job.finished_at is None else iso_utc(job.finished_at),
        "attempts": job.attempts,
    }
    rows = (job.result or job.progress or {}).get("rows")
    body["totalRecords"] = rows
    if job.status == "completed" and job.kind == EXPORT_ACTIVITIES:
        url = request.url.replace(path=f"{EXPORT_PATH}/{job.id}/download", query="")
        body["downloadUrls"] = [str(url)]
        body["format"] = (job.result or {}).get("format")
        body["bytes"] = (job.result or {}).get("bytes")
    if job.error:
        body["error"] = job.error
    return _json(body)


@router.get(
    EXPORT_PATH + "/{job_id}/download",
    summary="Download a finished export (Cordial)",
    description="The export's file; the same Basic credentials as the API.",
)
async def download_export(
    job_id: str, request: Request, ctx: AppContext = Depends(get_context)
) -> Response:
    account = await cordial_account(request, ctx)
    path, job = await run_in_threadpool(
        finished_export, ctx.store, Path(ctx.settings.export_dir), account, job_id
    )
    fmt = job.payload.get("format", "json")
    return FileResponse(
        path,
        media_type=MEDIA_TYPE.get(fmt, "application/octet-stream"),
        filename=f"contactactivities-{job.id}.{SUFFIX.get(fmt, 'ndjson')}",
    )
