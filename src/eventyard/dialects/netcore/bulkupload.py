"""``POST /apiv2?type=contact&activity=bulkupload``: Netcore's bulk contact upload.

Spec: ``shared/specs/netcore-bulk-contact-upload.txt``. The parameters come in
the query string (the spec's sample request) or in an
``application/x-www-form-urlencoded`` body (its ``Content-Type`` header and
"Body Parameter" column); each is taken from the query string, else the
body. Decisions the spec leaves open: ``docs/dialects/netcore.md``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from eventyard.context import AppContext, get_context
from eventyard.core.errors import EventyardError, FieldError, Unauthorized
from eventyard.dialects.netcore.translate import DIALECT
from eventyard.http import json_response, read_body
from eventyard.services.imports import ImportRequest, submit_import

PATH = "/apiv2"
#: The form body holds a few short parameters; anything larger is not one.
MAX_FORM_BYTES = 64 * 1024
router = APIRouter(tags=["Netcore"])


def _missing(name: str) -> EventyardError:
    return EventyardError(
        "missing_parameter",
        f"Missing Parameter - {name}",
        400,
        errors=[FieldError(name, f"{name} is required")],
    )


def import_request(params: dict[str, str]) -> ImportRequest:
    """The bulk upload parameters as an import request, or the 400 naming what is wrong."""
    kind = params.get("type", "").strip()
    if not kind:
        raise _missing("type")
    if kind != "contact":
        raise EventyardError(
            "unknown_type", f"Unknown type {kind!r}: this endpoint serves type=contact", 400
        )
    activity = params.get("activity", "").strip()
    if not activity:
        raise _missing("activity")
    if activity != "bulkupload":
        raise EventyardError(
            "unknown_activity",
            f"Unknown activity {activity!r}: type=contact serves activity=bulkupload",
            400,
        )
    path = params.get("path", "").strip()
    if not path:
        raise _missing("path")
    raw_list = params.get("listid", "").strip()
    list_id = None
    if raw_list:
        if not raw_list.isdigit() or not raw_list.isascii() or len(raw_list) > 18:
            raise EventyardError(
                "invalid_listid",
                f"listid must be a list's integer id, not {raw_list[:50]!r}",
                400,
                errors=[FieldError("listid", "must be an integer")],
            )
        list_id = int(raw_list)
    return ImportRequest(
        source=path,
        list_id=list_id,
        notify_email=params.get("notifyemail", "").strip() or None,
        callback=params.get("callback", "").strip() or None,
    )


#: Parameters the query string or the form body may carry ("path" is required in one).
_FORM_FIELDS: dict[str, Any] = {
    "path": {"type": "string", "description": "http(s):// or s3:// URL of the CSV file."},
    "listid": {"type": "string", "description": "Integer id of a list to add contacts to."},
    "notifyemail": {"type": "string", "description": "Whom to e-mail when the import ends."},
    "callback": {"type": "string", "description": "URL the signed job report is posted to."},
}


@router.post(
    PATH,
    summary="Add Bulk Contact through File Upload (Netcore)",
    description=(
        "Query: `type=contact&activity=bulkupload&apikey=…`; `path` (http(s) or s3 URL of "
        "a CSV file), optional `listid`, `notifyemail` and `callback` in the query string or "
        "an `application/x-www-form-urlencoded` body. Answers "
        '`{"requestid": "…", "result": "Success"}` once the import job is durable; follow '
        "it at `GET /api/v1/jobs/{requestid}`."
    ),
    openapi_extra={
        "parameters": [
            {"name": "type", "in": "query", "required": True, "schema": {"const": "contact"}},
            {
                "name": "activity",
                "in": "query",
                "required": True,
                "schema": {"const": "bulkupload"},
            },
            {"name": "apikey", "in": "query", "required": True, "schema": {"type": "string"}},
            *(
                {"name": name, "in": "query", "required": False, "schema": schema}
                for name, schema in _FORM_FIELDS.items()
            ),
        ],
        "requestBody": {
            "required": False,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "properties": _FORM_FIELDS}
                }
            },
        },
        "responses": {
            "200": {
                "description": "The import job is durable.",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["requestid", "result"],
                            "properties": {
                                "requestid": {"type": "string"},
                                "result": {"const": "Success"},
                            },
                        }
                    }
                },
            }
        },
    },
)
async def bulk_upload(request: Request, ctx: AppContext = Depends(get_context)) -> Response:
    params = dict(request.query_params)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        body = await read_body(
            request,
            max_bytes=MAX_FORM_BYTES,
            timeout_seconds=ctx.settings.body_timeout_seconds,
        )
        for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            params.setdefault(key, value)
    try:
        account = await ctx.authenticate(DIALECT, params.get("apikey"))
    except Unauthorized as exc:
        raise EventyardError("unauthorized", "Invalid API Key", 401) from exc
    ctx.limit_rate(DIALECT, account.id)
    ctx.note_ingest(request, DIALECT, account.id)
    wanted = import_request(params)
    job_id = await run_in_threadpool(
        lambda: submit_import(ctx.store, ctx.settings, account, wanted, now=ctx.now())
    )
    if ctx.wake is not None:
        ctx.wake()
    return json_response({"requestid": job_id, "result": "Success"})
