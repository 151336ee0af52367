"""Console pages and the few data requests their scripts make.

Every route but the sign-in form needs a signed-in session; a page without
one redirects to the sign-in form, a data request answers 401. Everything a
route reads is read for the session's account only.

A route that changes anything takes its session from :func:`writer_session`
(a page) or :func:`writer_form` (a form it receives): a session signed in
with a read token is answered 403 there, before the route runs; a form
without the session's CSRF token too. Sign-in and sign-out are the only
forms outside that rule.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from eventyard.context import AppContext, get_context
from eventyard.core.credentials import Credential, issued_document
from eventyard.core.errors import EventyardError, FieldError, NotFound, Unauthorized
from eventyard.core.identity_operations import MergePreview, public_event
from eventyard.core.ids import is_id
from eventyard.core.model import Activity
from eventyard.http import iso_utc
from eventyard.services import console as console_service
from eventyard.services import contacts as contact_service
from eventyard.services import credentials as credential_service
from eventyard.services import identity_operations as identity_service
from eventyard.services.console import ConsoleSession, ConsoleSessions, csrf_matches

router = APIRouter(prefix="/console", include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

#: The session cookie: ``<token>.<signature>``, HttpOnly, SameSite=Strict.
SESSION_COOKIE = "eventyard_console"
#: The sign-in form's CSRF nonce, set with the form.
SIGN_IN_COOKIE = "eventyard_console_sign_in"
#: Activities per timeline page (the read API's cursor continues it).
TIMELINE_PAGE = 50
#: How often the live tail looks for new activities.
TAIL_POLL_SECONDS = 0.5
#: How far back each poll looks again, for activities committed after younger ones.
TAIL_LOOKBACK = timedelta(seconds=5)
#: A tail stream ends after this long; the browser reconnects where it left off.
TAIL_STREAM_SECONDS = 30.0
#: A comment line this often keeps proxies from closing a quiet stream.
TAIL_KEEPALIVE_SECONDS = 15.0


class SignInRequired(Exception):
    """A page was asked for without a live session."""


async def on_sign_in_required(request: Request, exc: Exception) -> Response:
    return RedirectResponse("/console/sign-in", status_code=303)


class Refused(Exception):
    """The session may not send this: answered 403 with the page ``template``."""

    def __init__(self, template: str, session: ConsoleSession) -> None:
        super().__init__(template)
        self.template = template
        self.session = session


async def on_refused(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, Refused):
        raise exc
    return _render(request, exc.template, exc.session, {}, status_code=403)


def _sessions(request: Request) -> ConsoleSessions:
    sessions: ConsoleSessions = request.app.state.console_sessions
    return sessions


async def _open_session(request: Request) -> ConsoleSession | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    return await run_in_threadpool(_sessions(request).open, cookie)


async def page_session(request: Request) -> ConsoleSession:
    """The signed-in session of a page request; redirects to the sign-in form without one."""
    session = await _open_session(request)
    if session is None:
        raise SignInRequired()
    return session


async def data_session(request: Request) -> ConsoleSession:
    """The signed-in session of a script's request; 401 without one."""
    session = await _open_session(request)
    if session is None:
        raise EventyardError("unauthorized", "Sign in to the console first", 401)
    return session


async def writer_session(session: ConsoleSession = Depends(page_session)) -> ConsoleSession:
    """The session of a request that changes something, or of the page leading to one.

    A session signed in with a read token is refused: 403, the read-only page.
    """
    if not session.may_write:
        raise Refused("read_only.html", session)
    return session


@dataclass(frozen=True, slots=True)
class WriterForm:
    """A form a session that may write sent from a console page."""

    session: ConsoleSession
    fields: dict[str, str]


async def writer_form(
    request: Request, session: ConsoleSession = Depends(writer_session)
) -> WriterForm:
    """The fields of a form that changes something; every such route takes them from here.

    Refused with 403 for a read session (:func:`writer_session`) and for a
    form without the session's CSRF token (the expired-form page).
    """
    fields = await _form(request)
    if not csrf_matches(session.csrf_token, fields.get("csrf_token")):
        raise Refused("csrf.html", session)
    return WriterForm(session, fields)


async def _form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (the console's only form encoding)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {key: values[0] for key, values in parse_qs(body, max_num_fields=20).items()}


def _render(
    request: Request,
    name: str,
    session: ConsoleSession | None,
    context: dict[str, Any],
    status_code: int = 200,
) -> Response:
    return templates.TemplateResponse(
        request,
        name,
        {"session": session, "path": request.url.path, **context},
        status_code=status_code,
        headers={"Cache-Control": "no-store"},
    )


def _not_found(request: Request, session: ConsoleSession, what: str) -> Response:
    return _render(request, "not_found.html", session, {"what": what}, status_code=404)


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


# -- sign-in and sign-out -------------------------------------------------


@router.get("/sign-in")
async def sign_in_form(request: Request) -> Response:
    return await _sign_in_page(request, error=None)


async def _sign_in_page(request: Request, error: str | None) -> Response:
    nonce = secrets.token_urlsafe(24)
    token = await run_in_threadpool(_sessions(request).sign_in_form_token, nonce)
    response = _render(
        request,
        "sign_in.html",
        None,
        {"csrf_token": token, "error": error},
        status_code=200 if error is None else 401,
    )
    _set_cookie(request, response, SIGN_IN_COOKIE, nonce, 3600)
    return response


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    form = await _form(request)
    sessions = _sessions(request)
    nonce = request.cookies.get(SIGN_IN_COOKIE, "")
    expected = await run_in_threadpool(sessions.sign_in_form_token, nonce)
    if not nonce or not csrf_matches(expected, form.get("csrf_token")):
        return _csrf_refused(request)
    try:
        cookie, _session = await run_in_threadpool(sessions.sign_in, form.get("token", ""))
    except Unauthorized:
        return await _sign_in_page(
            request, error="That is not an admin or read token of any account."
        )
    response = RedirectResponse("/console", status_code=303)
    max_age = int(sessions.lifetime.total_seconds())
    _set_cookie(request, response, SESSION_COOKIE, cookie, max_age)
    response.delete_cookie(SIGN_IN_COOKIE, path="/console")
    return response


@router.post("/sign-out")
async def sign_out(request: Request, session: ConsoleSession = Depends(page_session)) -> Response:
    form = await _form(request)
    if not csrf_matches(session.csrf_token, form.get("csrf_token")):
        return _csrf_refused(request)
    await run_in_threadpool(_sessions(request).sign_out, session)
    response = RedirectResponse("/console/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/console")
    return response


def _csrf_refused(request: Request) -> Response:
    return _render(request, "csrf.html", None, {}, status_code=403)


# -- overview -------------------------------------------------------------


@router.get("")
async def overview(
    request: Request,
    session: ConsoleSession = Depends(page_session),
    ctx: AppContext = Depends(get_context),
) -> Response:
    view = await run_in_threadpool(console_service.overview, ctx.reads, session.account, ctx.now())
    chart = {
        "hours": [int(hour.timestamp()) for hour in view.hours],
        "by_dialect": [{"label": s.label, "values": s.values} for s in view.by_dialect],
        "by_name": [{"label": s.label, "values": s.values} for s in view.by_name],
        "total": view.total,
    }
    return _render(
        request,
        "overview.html",
        session,
        # "<" escaped: an event name cannot close the <script> element carrying the JSON.
        {"view": view, "chart_json": orjson.dumps(chart).decode().replace("<", "\\u003c")},
    )


@router.get("/overview/totals")
async def overview_totals(
    request: Request,
    session: ConsoleSession = Depends(data_session),
    ctx: AppContext = Depends(get_context),
) -> Response:
    totals = await run_in_threadpool(console_service.totals, ctx.reads, session.account)
    return _render(request, "_totals.html", session, {"totals": totals})


# -- contacts -------------------------------------------------------------


@router.get("/contacts")
async def search(
    request: Request,
    q: str = Query("", max_length=600),
    session: ConsoleSession = Depends(page_session),
    ctx: AppContext = Depends(get_context),
) -> Response:
    hits = await run_in_threadpool(console_service.search_contacts, ctx.reads, session.account, q)
    return _render(request, "contacts.html", session, {"q": q, "hits": hits})


@router.get("/contacts/{contact_id}")
async def contact_page(
    request: Request,
    contact_id: str,
    cursor: str | None = Query(None, max_length=200),
    session: ConsoleSession = Depends(page_session),
    ctx: AppContext = Depends(get_context),
) -> Response:
    account = session.account

    def load() -> dict[str, Any]:
        reads = ctx.reads
        contact = contact_service.get_contact(reads, account, contact_id)
        return {
            "contact": contact,
            "lists": console_service.lists_of_contact(reads, account, contact),
            "history": [
                public_event(e)
                for e in contact_service.identity_history(reads, account, contact.id)
            ],
            "page": contact_service.list_activities(
                reads, account, contact.id, TIMELINE_PAGE, cursor
            ),
            "cursor": cursor,
        }

    try:
        context = await run_in_threadpool(load)
    except NotFound:
        return _not_found(request, session, "contact")
    except EventyardError as exc:  # a cursor that is not one
        if exc.code != "invalid_cursor":
            raise
        return _not_found(request, session, "timeline page")
    context["attributes_json"] = _pretty(context["contact"].attributes)
    return _render(request, "contact.html", session, context)


@router.get("/contacts/{contact_id}/merge")
async def merge_preview(
    request: Request,
    contact_id: str,
    other: str = Query("", max_length=100),
    session: ConsoleSession = Depends(writer_session),
    ctx: AppContext = Depends(get_context),
) -> Response:
    """What merging the contact ``other`` into this one would move, with the confirm button."""
    other = other.strip()
    try:
        preview, _ = await run_in_threadpool(
            lambda: identity_service.merge_contacts(
                ctx.store,
                session.account,
                contact_id,
                other,
                actor=_console_actor(session),
                now=ctx.now(),
                dry_run=True,
            )
        )
    except EventyardError as exc:
        return _merge_page(request, session, contact_id, other, None, exc)
    return _merge_page(request, session, contact_id, other, preview, None)


@router.post("/contacts/{contact_id}/merge")
async def merge_contact(
    request: Request,
    contact_id: str,
    writer: WriterForm = Depends(writer_form),
    ctx: AppContext = Depends(get_context),
) -> Response:
    session, other = writer.session, writer.fields.get("other", "").strip()
    try:
        preview, _ = await run_in_threadpool(
            lambda: identity_service.merge_contacts(
                ctx.store,
                session.account,
                contact_id,
                other,
                actor=_console_actor(session),
                now=ctx.now(),
            )
        )
    except EventyardError as exc:
        return _merge_page(request, session, contact_id, other, None, exc)
    return RedirectResponse(f"/console/contacts/{preview.survivor_id}", status_code=303)


@router.post("/identity-events/{event_id}/revert")
async def revert_merge(
    request: Request,
    event_id: str,
    writer: WriterForm = Depends(writer_form),
    ctx: AppContext = Depends(get_context),
) -> Response:
    """Undo a merge from the identity history; back to the survivor's page."""
    session = writer.session
    try:
        event = await run_in_threadpool(
            lambda: identity_service.revert_merge(
                ctx.store, session.account, event_id, actor=_console_actor(session), now=ctx.now()
            )
        )
    except NotFound:
        return _not_found(request, session, "identity event")
    except EventyardError as exc:
        return _render(
            request, "revert_refused.html", session, {"error": exc}, status_code=exc.status
        )
    return RedirectResponse(f"/console/contacts/{event['contact_id']}", status_code=303)


def _console_actor(session: ConsoleSession) -> dict[str, Any]:
    return {"via": "console"}


def _merge_page(
    request: Request,
    session: ConsoleSession,
    contact_id: str,
    other: str,
    preview: MergePreview | None,
    error: EventyardError | None,
) -> Response:
    return _render(
        request,
        "merge.html",
        session,
        {"contact_id": contact_id, "other": other, "preview": preview, "error": error},
        status_code=200 if error is None else error.status,
    )


@router.get("/contacts/{contact_id}/timeline")
async def timeline_fragment(
    request: Request,
    contact_id: str,
    cursor: str | None = Query(None, max_length=200),
    session: ConsoleSession = Depends(data_session),
    ctx: AppContext = Depends(get_context),
) -> Response:
    """The next page of a contact's timeline, as HTML the contact page appends."""
    page = await run_in_threadpool(
        contact_service.list_activities,
        ctx.reads,
        session.account,
        contact_id,
        TIMELINE_PAGE,
        cursor,
    )
    return _render(request, "_timeline.html", session, {"page": page, "contact_id": contact_id})


# -- jobs -----------------------------------------------------------------


@router.get("/jobs")
async def jobs_page(
    request: Request,
    session: ConsoleSession = Depends(page_session),
    ctx: AppContext = Depends(get_context),
) -> Response:
    jobs = await run_in_threadpool(console_service.account_jobs, ctx.store, session.account)
    return _render(request, "jobs.html", session, {"jobs": jobs})


@router.get("/jobs/rows")
async def jobs_rows(
    request: Request,
    session: ConsoleSession = Depends(data_session),
    ctx: AppContext = Depends(get_context),
) -> Response:
    """The jobs table's rows, which the jobs page fetches again while it is open."""
    jobs = await run_in_threadpool(console_service.account_jobs, ctx.store, session.account)
    return _render(request, "_job_rows.html", session, {"jobs": jobs})


# -- credentials ----------------------------------------------------------

#: What the create form calls each field a refusal names.
CREDENTIAL_FIELD_LABELS = {"kind": "Kind", "name": "Name", "expires_at": "Expires (UTC)"}


@router.get("/credentials")
async def credentials_page(
    request: Request,
    session: ConsoleSession = Depends(page_session),
    ctx: AppContext = Depends(get_context),
) -> Response:
    return await _credentials_page(request, session, ctx)


async def _credentials_page(
    request: Request,
    session: ConsoleSession,
    ctx: AppContext,
    *,
    form: dict[str, str] | None = None,
    error: FieldError | None = None,
    status_code: int = 200,
) -> Response:
    """The account's credentials, newest first; for an admin, the create form (``form``
    as sent, with the ``error`` it was refused for)."""
    found = await run_in_threadpool(
        credential_service.list_credentials, ctx.store, session.account.id
    )
    now = ctx.now()
    rows = [(credential, credential.refusal(now) or "active") for credential in reversed(found)]
    return _render(
        request,
        "credentials.html",
        session,
        {
            "rows": rows,
            "kinds": [kind.kind for kind in ctx.credential_kinds],
            "form": form or {},
            "error": error,
            "error_label": None if error is None else CREDENTIAL_FIELD_LABELS.get(error.field),
        },
        status_code=status_code,
    )


@router.post("/credentials")
async def create_credential(
    request: Request,
    writer: WriterForm = Depends(writer_form),
    ctx: AppContext = Depends(get_context),
) -> Response:
    """Issue a credential and show its secret, this once (the page is not cached)."""
    fields, session = writer.fields, writer.session
    try:
        expires_at = _utc_expiry(fields.get("expires_at"))
        issued = await run_in_threadpool(
            lambda: credential_service.create_credential(
                ctx.store,
                session.account,
                ctx.credential_kinds,
                fields.get("kind"),
                name=fields.get("name"),
                expires_at=expires_at,
                now=ctx.now(),
            )
        )
    except EventyardError as exc:
        if not exc.errors:
            raise
        return await _credentials_page(
            request, session, ctx, form=fields, error=exc.errors[0], status_code=exc.status
        )
    document = issued_document(issued.credential, issued.kind, issued.secret)
    return _render(
        request,
        "credential_issued.html",
        session,
        {"document": document, "kind": issued.kind},
        status_code=201,
    )


def _utc_expiry(value: str | None) -> datetime | None:
    """The create form's expiry: a ``datetime-local`` value, read as UTC (``None``: never)."""
    if not value or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        reason = "expires_at must be a date and time, such as 2027-01-31T09:30"
        raise EventyardError(
            "invalid_credential", reason, 400, errors=[FieldError("expires_at", reason)]
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@router.get("/credentials/{credential_id}/revoke")
async def revoke_credential_form(
    request: Request,
    credential_id: str,
    session: ConsoleSession = Depends(writer_session),
    ctx: AppContext = Depends(get_context),
) -> Response:
    """Ask before revoking: the revocation cannot be undone."""
    credential = await _find_credential(ctx, session, credential_id)
    if credential is None:
        return _not_found(request, session, "credential")
    return _revoke_page(request, session, ctx, credential, error=None)


@router.post("/credentials/{credential_id}/revoke")
async def revoke_credential(
    request: Request,
    credential_id: str,
    writer: WriterForm = Depends(writer_form),
    ctx: AppContext = Depends(get_context),
) -> Response:
    session = writer.session
    try:
        await run_in_threadpool(
            lambda: credential_service.revoke_credential(
                ctx.store,
                session.account.id,
                credential_id,
                now=ctx.now(),
                authenticator=ctx.authenticator,
            )
        )
    except NotFound:
        return _not_found(request, session, "credential")
    except EventyardError as exc:
        if exc.code != "last_admin_credential":
            raise
        credential = await _find_credential(ctx, session, credential_id)
        if credential is None:  # gone meanwhile: credentials are never deleted
            return _not_found(request, session, "credential")
        return _revoke_page(request, session, ctx, credential, error=exc.message, status_code=409)
    return RedirectResponse("/console/credentials", status_code=303)


async def _find_credential(
    ctx: AppContext, session: ConsoleSession, credential_id: str
) -> Credential | None:
    found = await run_in_threadpool(
        credential_service.list_credentials, ctx.store, session.account.id
    )
    return next((c for c in found if c.id == credential_id), None)


def _revoke_page(
    request: Request,
    session: ConsoleSession,
    ctx: AppContext,
    credential: Credential,
    *,
    error: str | None,
    status_code: int = 200,
) -> Response:
    return _render(
        request,
        "revoke.html",
        session,
        {
            "credential": credential,
            "status": credential.refusal(ctx.now()) or "active",
            # The longest a process answers from memory after a revocation.
            "within_seconds": ctx.authenticator.trusted_for,
            "error": error,
        },
        status_code=status_code,
    )


# -- live tail ------------------------------------------------------------


@router.get("/tail")
async def tail_page(
    request: Request,
    dialect: str = Query("", max_length=32),
    name: str = Query("", max_length=255),
    session: ConsoleSession = Depends(page_session),
) -> Response:
    stream = "/console/tail/stream?" + urlencode({"dialect": dialect, "name": name})
    return _render(
        request, "tail.html", session, {"dialect": dialect, "name": name, "stream": stream}
    )


@router.get("/tail/stream")
async def tail_stream(
    request: Request,
    dialect: str = Query("", max_length=32),
    name: str = Query("", max_length=255),
    session: ConsoleSession = Depends(data_session),
    ctx: AppContext = Depends(get_context),
) -> Response:
    """Server-sent events: each activity of the account as it arrives.

    Polls in the thread pool every ``TAIL_POLL_SECONDS`` with a connection
    taken from the pool and given back at once: an idle stream holds none.
    """
    resume = request.headers.get("last-event-id", "")
    start = resume if is_id(resume) else console_service.id_floor(ctx.now())
    account = session.account

    async def events() -> AsyncIterator[str]:
        yield "retry: 1000\n\n"
        seen: set[str] = set()
        deadline = time.monotonic() + TAIL_STREAM_SECONDS
        last_sent = time.monotonic()
        floor = start
        while time.monotonic() < deadline:
            if await request.is_disconnected():
                return
            floor = max(start, console_service.id_floor(ctx.now() - TAIL_LOOKBACK))
            found = await run_in_threadpool(
                console_service.tail_activities,
                ctx.store,
                account,
                floor,
                dialect=dialect,
                name=name,
            )
            seen = {seen_id for seen_id in seen if seen_id > floor}
            for activity in found:
                if activity.id in seen:
                    continue
                seen.add(activity.id)
                last_sent = time.monotonic()
                yield f"id: {activity.id}\nevent: activity\ndata: {_tail_json(activity)}\n\n"
            if time.monotonic() - last_sent > TAIL_KEEPALIVE_SECONDS:
                last_sent = time.monotonic()
                yield ": keep-alive\n\n"
            await asyncio.sleep(TAIL_POLL_SECONDS)
        # The browser reconnects with this id and is sent what came after it
        # (some again: the page drops those it already shows).
        yield f"id: {floor}\nevent: position\ndata: {{}}\n\n"

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _tail_json(activity: Activity) -> str:
    return orjson.dumps(
        {
            "id": activity.id,
            "name": activity.name,
            "dialect": activity.dialect,
            "source": activity.source,
            "contact_id": activity.contact_id,
            "occurred_at": iso_utc(activity.occurred_at),
            "received_at": iso_utc(activity.received_at),
            "properties": activity.properties,
        }
    ).decode()


def _pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


templates.env.filters["pretty"] = _pretty
templates.env.filters["iso"] = lambda moment: "" if moment is None else iso_utc(moment)
templates.env.globals["datetime"] = datetime
