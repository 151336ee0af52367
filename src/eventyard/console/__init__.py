"""The web console at ``/console``: server-rendered pages for an account's admin."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from eventyard.console.routes import (
    Refused,
    SignInRequired,
    on_refused,
    on_sign_in_required,
    router,
)
from eventyard.console.security import ConsoleHeadersMiddleware
from eventyard.context import AppContext
from eventyard.services.console import ConsoleSessions

STATIC_DIR = Path(__file__).parent / "static"


def mount_console(app: FastAPI) -> None:
    """Serve the console from ``app`` (whose ``state.ctx`` must be set)."""
    ctx: AppContext = app.state.ctx
    app.state.console_sessions = ConsoleSessions(
        ctx.store,
        timedelta(hours=ctx.settings.console_session_hours),
        ctx.now,
        ctx.authenticator,
    )
    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    app.add_exception_handler(SignInRequired, on_sign_in_required)
    app.add_exception_handler(Refused, on_refused)
    app.add_middleware(ConsoleHeadersMiddleware)
