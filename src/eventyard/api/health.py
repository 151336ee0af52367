"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from eventyard.context import AppContext, get_context
from eventyard.core.errors import StoreUnavailable
from eventyard.http import json_response

router = APIRouter(tags=["Operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get(
    "/readyz",
    summary="The process can reach its database",
    responses={
        503: {
            "description": "The database is unreachable.",
            "headers": {"Retry-After": {"schema": {"type": "string"}}},
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "status": {"const": "unavailable"},
                            "database": {"const": "unreachable"},
                        },
                    }
                }
            },
        }
    },
)
async def readyz(ctx: AppContext = Depends(get_context)) -> Response:
    try:
        await run_in_threadpool(ctx.store.ping)
    except StoreUnavailable:
        return json_response(
            {"status": "unavailable", "database": "unreachable"}, 503, {"Retry-After": "5"}
        )
    return json_response({"status": "ok", "database": "ok"})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(ctx: AppContext = Depends(get_context)) -> Response:
    return Response(ctx.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
