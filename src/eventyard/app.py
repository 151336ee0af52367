"""``create_app(settings)``: the one place where eventyard is wired together."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from eventyard import __version__
from eventyard.api import accounts as accounts_api
from eventyard.api import contacts as contacts_api
from eventyard.api import credentials as credentials_api
from eventyard.api import definitions as definitions_api
from eventyard.api import destinations as destinations_api
from eventyard.api import health
from eventyard.api import identity as identity_api
from eventyard.api import jobs as jobs_api
from eventyard.api import lists as lists_api
from eventyard.console import mount_console
from eventyard.context import AppContext, utc_now
from eventyard.core.account_settings import MAX_DEDUP_WINDOW_HOURS
from eventyard.core.errors import EventyardError, FieldError
from eventyard.core.ratelimit import RateLimiter
from eventyard.dialects.base import Dialect
from eventyard.dialects.registry import BUILTIN_DIALECTS, ISSUABLE_KINDS, destination_formats
from eventyard.dialects.shared import dialect_of, shared_router
from eventyard.errors import ERROR_SCHEMA, render_error
from eventyard.jobs.deliveries import DeliveryThreads
from eventyard.jobs.periodic import periodic_jobs
from eventyard.jobs.registry import HANDLERS
from eventyard.jobs.worker import Worker, WorkerThread, default_worker_id
from eventyard.observability import Metrics, RequestContextMiddleware, configure_logging
from eventyard.openapi import add_error_answers
from eventyard.services.credentials import Authenticator
from eventyard.services.group_commit import GroupCommitter
from eventyard.services.idempotency import purge_idempotency_keys
from eventyard.services.ingest_stats import (
    RejectionError,
    compact_activity_counts,
    purge_message_ids,
    rejection_errors,
)
from eventyard.services.pacing import Foreground
from eventyard.services.ports import Store
from eventyard.settings import Settings
from eventyard.storage.database import Database
from eventyard.storage.replicas import ReadReplicas

log = logging.getLogger("eventyard")

#: Statuses of a refused ingest request that the account's rejections keep:
#: bad input, too large, unprocessable. Not 401/429/503 (nothing wrong with
#: the records) and not 404/405 (no ingest route was reached).
REJECTION_STATUSES = frozenset({400, 413, 422})


def create_app(settings: Settings, store: Store | None = None) -> FastAPI:
    """Build the application; ``store`` defaults to the database in ``settings``."""
    database = store or Database.from_settings(settings)
    metrics = Metrics.create()
    # Reads that tolerate lag go to the replicas of EVENTYARD_READ_DATABASE_URL.
    read_store = (
        ReadReplicas.from_settings(
            database, settings, on_read=metrics.count_read, on_check=metrics.observe_replicas
        )
        if isinstance(database, Database)
        else None
    )
    foreground = Foreground()
    authenticator = Authenticator(
        database,
        check_seconds=settings.credential_check_seconds,
        idle_seconds=settings.auth_cache_seconds,
        on_refused=metrics.count_refusal,
    )
    # One job worker per server process unless separate `eventyard worker`s run the jobs.
    worker = (
        Worker(
            database,
            settings,
            HANDLERS,
            metrics=metrics,
            periodic=periodic_jobs(settings, utc_now()),
            foreground=foreground,
            read_store=read_store,
        )
        if settings.run_worker
        else None
    )
    formats = destination_formats()
    # Deliveries run beside the job worker, in the same processes.
    deliveries = (
        DeliveryThreads(
            database,
            settings,
            formats,
            worker_id=default_worker_id(),
            metrics=metrics,
            foreground=foreground,
        )
        if settings.run_worker and settings.destination_workers
        else None
    )
    committer = (
        GroupCommitter(
            database,
            max_records=settings.group_commit_max_records,
            max_group=settings.group_commit_max_requests,
            on_group=metrics.count_group,
        )
        if settings.group_commit
        else None
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        purger = asyncio.create_task(purge_idempotency_keys_forever(database, settings))
        rechecker = asyncio.create_task(recheck_credentials_forever(authenticator))
        if read_store is not None:
            read_store.start()
        worker_thread = None if worker is None else WorkerThread(worker)
        if worker_thread is not None:
            worker_thread.start()
        if deliveries is not None:
            deliveries.start()
        try:
            yield
        finally:
            if worker_thread is not None:
                # The job in hand is finished and settled before the store goes.
                await run_in_threadpool(worker_thread.stop)
            if deliveries is not None:
                await run_in_threadpool(deliveries.stop)
            for task in (purger, rechecker):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if committer is not None:
                # Requests already queued are stored and answered first.
                await run_in_threadpool(committer.close)
            if read_store is not None:
                read_store.dispose()
            dispose = getattr(database, "dispose", None)
            if dispose is not None:
                dispose()

    # /docs and /redoc serve their scripts from this process, not a CDN:
    # eventyard runs on networks without internet access.
    app = FastAPIOffline(
        # A client posting to ".../upload/" gets an answer, not a redirect.
        redirect_slashes=False,
        title="eventyard",
        version=__version__,
        description=(
            "Customer activity hub. Speaks the Netcore, Cordial, Ortto, CleverTap, "
            "Mixpanel, Amplitude, PostHog and Customer.io ingestion APIs and the Segment "
            "tracking protocol, and stores everything in one canonical model."
        ),
        lifespan=lifespan,
    )
    app.state.ctx = AppContext(
        settings=settings,
        wake=None if worker is None else worker.wake,
        store=database,
        metrics=metrics,
        authenticator=authenticator,
        credential_kinds=ISSUABLE_KINDS,
        rate_limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
        committer=committer,
        foreground=foreground,
        destination_formats=formats,
        read_store=read_store,
    )
    # The ingest routes come first: the router tries routes in the order they
    # were included, and a single-event request matched after the 40 routes
    # of the API and the console spent 10 % of its CPU on route lookup. No
    # dialect path is a prefix of another route's (they are vendor paths).
    owners: dict[str, Dialect] = {}
    for dialect in BUILTIN_DIALECTS:
        app.include_router(dialect.router)
        owners.update(dict.fromkeys(dialect.paths, dialect))
    # Paths several dialects post to; a request's errors answer in the shape
    # of the dialect its body was dispatched to, the path's default before.
    shared, defaults = shared_router(BUILTIN_DIALECTS)
    app.include_router(shared)
    owners.update(defaults)
    app.include_router(health.router)
    app.include_router(contacts_api.router)
    app.include_router(identity_api.router)
    app.include_router(jobs_api.router)
    app.include_router(lists_api.router)
    app.include_router(definitions_api.router)
    app.include_router(accounts_api.router)
    app.include_router(credentials_api.router)
    app.include_router(destinations_api.router)
    mount_console(app)

    def owner_of(path: str) -> Dialect | None:
        """The dialect whose error shape ``path`` answers in; ``None``: eventyard's own."""
        # "/v1/activity/upload/" is still the Netcore endpoint to its client.
        owner = owners.get(path) or owners.get(path.rstrip("/"))
        if owner is None:
            # A dialect path ending in "/" covers the paths below it (/v2/jobs/{id}).
            prefixes = (p for p in owners if p.endswith("/") and path.startswith(p))
            prefix = max(prefixes, key=len, default=None)
            owner = None if prefix is None else owners[prefix]
        return owner

    def render_for_path(path: str, exc: EventyardError) -> Response:
        owner = owner_of(path)
        return render_error(exc) if owner is None else owner.render_error(exc)

    def error_schema_of(path: str) -> dict[str, Any]:
        owner = owner_of(path)
        return ERROR_SCHEMA if owner is None else owner.error_schema

    build_openapi = app.openapi
    public = frozenset(
        (method.lower(), route.path)
        for route in health.router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            # FastAPI's builder caches the document in app.openapi_schema.
            add_error_answers(
                build_openapi(),
                error_schema=error_schema_of,
                public=public,
            )
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]

    def render(request: Request, exc: EventyardError) -> Response:
        dispatched = dialect_of(request)
        if dispatched is not None:
            return dispatched.render_error(exc)
        return render_for_path(request.url.path, exc)

    async def render_and_remember(request: Request, exc: EventyardError) -> Response:
        response = render(request, exc)
        # Bad input of an authenticated ingest request, not overload or auth.
        if response.status_code in REJECTION_STATUSES:
            errors = rejection_errors(exc.errors) or [RejectionError(None, "request", exc.message)]
            indexes = {e.index for e in errors if e.index is not None}
            await app.state.ctx.remember_rejection(
                request,
                status_code=response.status_code,
                rejected_records=exc.records if exc.records is not None else max(1, len(indexes)),
                errors=errors,
            )
        return response

    async def on_eventyard_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, EventyardError)
        return await render_and_remember(request, exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names the methods of the first route on the path; several
            # routes may share it (GET and DELETE /api/v1/contacts/{id}).
            headers["Allow"] = ", ".join(sorted(allowed_methods(request))) or headers.get(
                "Allow", ""
            )
        return render(
            request, EventyardError(code, str(exc.detail), exc.status_code, headers=headers)
        )

    def allowed_methods(request: Request) -> set[str]:
        """The methods the OpenAPI document lists for the request's path."""
        if not path_methods:
            for template, operations in app.openapi()["paths"].items():
                pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
                path_methods.append((re.compile(pattern), {m.upper() for m in operations}))
        path = request.url.path
        return {m for pattern, methods in path_methods if pattern.fullmatch(path) for m in methods}

    path_methods: list[tuple[re.Pattern[str], set[str]]] = []

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [
            FieldError(".".join(str(p) for p in err["loc"][1:]) or "request", err["msg"])
            for err in exc.errors()
        ]
        return await render_and_remember(
            request,
            EventyardError(
                "invalid_request",
                errors[0].reason if errors else "invalid request",
                400,
                errors=errors,
            ),
        )

    app.add_exception_handler(EventyardError, on_eventyard_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_middleware(
        RequestContextMiddleware,
        metrics=metrics,
        render_unexpected=lambda path: render_for_path(
            path, EventyardError("internal_error", "Internal Server Error", 500)
        ),
    )
    return app


#: Container objects allocated (net) before the youngest generation is collected.
#: A 1000-event batch allocates about 30,000 while it is parsed and translated;
#: at the default 700 it triggered some 40 collections, and every tenth of
#: those a scan of everything older.
GC_YOUNG_THRESHOLD = 50_000


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory``: settings from ``EVENTYARD_*`` variables."""
    settings = Settings()
    configure_logging(settings.log_level)
    app = create_app(settings)
    tune_garbage_collector()
    return app


def tune_garbage_collector() -> None:
    """Keep the cyclic garbage collector off the objects a server process lives with.

    Everything built at start (modules, the app, SQLAlchemy's tables and
    compiled caches) is moved out of the collector's reach (``gc.freeze``),
    and the youngest generation is collected less often. Parsing and
    translating a batch creates tens of thousands of short-lived objects;
    with the defaults the collections they trigger, and the occasional scan
    of the whole heap, cost up to a third of the CPU of parse and translate
    (10.7-11.8 instead of 11.9-20.3 ms per 1000 Netcore events, in one
    process with a server-sized heap). Over HTTP, in two alternating
    ``bench/run.py --quick`` rounds, the server's CPU per 1000 events went
    from 34.0 to 31.0 ms (Netcore, PostgreSQL) and from 76 to 64 ms (Netcore,
    SQLite), means of the rounds. Reference counting still frees almost everything at once;
    cycles are still collected, in larger rounds. Only the server's own
    process calls this (``create_app_from_env``), not a library user's.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


async def recheck_credentials_forever(authenticator: Authenticator) -> None:
    """Every ``check_seconds``, recheck the credentials this process remembers.

    On a thread of its own rather than the request threads, so that a busy
    server does not delay it (a delay would only send requests to the
    database: entries not rechecked in time are not trusted).
    """
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(1, thread_name_prefix="eventyard-credentials") as thread:
        while True:
            await asyncio.sleep(authenticator.check_seconds)
            try:
                await loop.run_in_executor(thread, authenticator.recheck)
            except Exception:
                log.exception("could not recheck credentials; requests go to the database")


async def purge_idempotency_keys_forever(store: Store, settings: Settings) -> None:
    """Every ``idempotency_purge_interval_seconds``, forget expired Idempotency-Keys and
    message ids, and fold the activity counts of finished hours.

    Every server process does it; each step is safe to run concurrently.
    """
    steps: list[tuple[str, Callable[[], int]]] = [
        (
            "purged expired idempotency keys",
            lambda: purge_idempotency_keys(store, utc_now(), settings.idempotency_ttl_seconds),
        ),
        (
            "purged expired message ids",
            lambda: purge_message_ids(store, utc_now(), timedelta(hours=MAX_DEDUP_WINDOW_HOURS)),
        ),
        ("folded activity counts", lambda: compact_activity_counts(store, utc_now())),
    ]
    while True:
        await asyncio.sleep(settings.idempotency_purge_interval_seconds)
        for done, step in steps:
            try:
                count = await run_in_threadpool(step)
            except Exception as exc:  # the database is away, or a bug: log it, try again later
                log.warning("housekeeping step failed", extra={"step": done}, exc_info=exc)
                continue
            if count:
                log.info(done, extra={"count": count})
