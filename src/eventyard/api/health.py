"""Liveness, readiness and metrics."""

from __future__ import annotations

import math
from typing import Any

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
    description=(
        "200 with `database: ok` when the primary answers; with read replicas "
        "(`EVENTYARD_READ_DATABASE_URL`) also `replicas`: each one's `name`, `state` "
        "(`ok`, `lagging`, `down`, `unknown` before the first check) and `lag_seconds` as "
        "last checked. A replica down or lagging leaves the process ready: its reads go "
        "to the primary."
    ),
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
    body: dict[str, Any] = {"status": "ok", "database": "ok"}
    if ctx.read_store is not None:
        # A replica down or lagging does not make the process unready: its
        # reads go to the primary. As of the last check, not measured now.
        body["replicas"] = [
            {
                "name": status.name,
                "state": status.state,
                "lag_seconds": None
                if status.lag_seconds is None or not math.isfinite(status.lag_seconds)
                else round(status.lag_seconds, 3),
            }
            for status in ctx.replica_statuses()
        ]
    return json_response(body)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(ctx: AppContext = Depends(get_context)) -> Response:
    return Response(ctx.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
