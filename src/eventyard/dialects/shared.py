"""Vendor paths that several dialects share (``POST /batch``), dispatched on the body."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence

from fastapi import APIRouter, Depends, Request, Response

from eventyard.context import AppContext, get_context
from eventyard.core.errors import EventyardError
from eventyard.dialects.base import Dialect, SharedRoute
from eventyard.dialects.pipeline import read_inflated_body, receive

Claimant = tuple[Dialect, SharedRoute]


def shared_router(dialects: Iterable[Dialect]) -> tuple[APIRouter, dict[str, Dialect]]:
    """One route per shared path, and the dialect whose error shape each path answers in."""
    claimants: dict[str, list[Claimant]] = {}
    for dialect in dialects:
        for route in dialect.shared_routes:
            claimants.setdefault(route.path, []).append((dialect, route))
    router = APIRouter()
    defaults: dict[str, Dialect] = {}
    for path, sharing in claimants.items():
        router.add_api_route(
            path,
            _dispatch(sharing),
            methods=["POST"],
            summary=" / ".join(route.summary for _, route in sharing),
            description="\n\n".join(route.description for _, route in sharing),
            tags=[dialect.name.capitalize() for dialect, _ in sharing],
        )
        defaults[path] = sharing[-1][0]
    return router, defaults


def dialect_of(request: Request) -> Dialect | None:
    """The dialect a shared path's request was dispatched to, once it is known."""
    owner = getattr(request.state, "dialect", None)
    return owner if isinstance(owner, Dialect) else None


def _dispatch(sharing: Sequence[Claimant]) -> Callable[..., Awaitable[Response]]:
    fallback = sharing[-1]

    async def dispatch(request: Request, ctx: AppContext = Depends(get_context)) -> Response:
        limit = max(route.endpoint.body_limit(ctx) for _, route in sharing)
        try:
            body = await read_inflated_body(request, ctx, limit)
        except EventyardError as exc:
            too_large = fallback[1].endpoint.too_large
            if exc.status != 413 or too_large is None:
                raise
            raise too_large(limit, exc) from exc
        dialect, route = next(
            ((d, r) for d, r in sharing[:-1] if r.claims(request, body)), fallback
        )
        request.state.dialect = dialect
        return await receive(request, ctx, route.endpoint, body=body)

    dispatch.__name__ = "shared_" + "_".join(d.name for d, _ in sharing)
    return dispatch
