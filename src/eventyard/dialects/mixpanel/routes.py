"""Mixpanel's ingestion API: ``/track``, ``/engage``, ``/groups`` and ``/import``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Depends, Request, Response

from eventyard.context import AppContext, get_context
from eventyard.core.errors import EventyardError
from eventyard.core.model import RecordsOutcome, StoredResponse
from eventyard.dialects.mixpanel.errors import mixpanel_error, unauthorized
from eventyard.dialects.mixpanel.schemas import openapi_extra
from eventyard.dialects.mixpanel.translate import (
    DIALECT,
    MAX_BODY_BYTES,
    SECRET_KIND,
    TOKEN_KIND,
    TOKEN_PREFIX,
    Context,
    Endpoint,
    Incoming,
    Translation,
    first_token,
    parse_body,
    translate_records,
)
from eventyard.dialects.pipeline import (
    Arrival,
    Credential,
    IngestEndpoint,
    Report,
    Submission,
    read_inflated_body,
    receive,
)
from eventyard.dialects.toolkit.basic_auth import decode_basic, split_authorization
from eventyard.dialects.toolkit.records import RecordError
from eventyard.services.ingest_stats import RejectionError

PATHS = ("/track", "/engage", "/groups", "/import")
#: Set on a ``status: 1`` answer that refused some records, so that a curl user sees it.
REJECTED_HEADER = "X-Eventyard-Rejected-Records"
#: At most this many problems are spelled out in one ``error`` text.
MAX_LISTED = 20
Style = Literal["track", "strict", "lenient"]

router = APIRouter(tags=["Mixpanel"])


@dataclass(eq=False)
class Answer(Submission):
    """A request's records, answered in the shape its endpoint and flags ask for.

    ``track``: ``1``/``0`` or, with ``verbose=1``, ``{"status": 1, "error":
    null}``; status 1 when at least one record was stored ("1 means at least
    one object valid"). ``strict``: ``/import``'s ``{"code": 200,
    "num_records_imported": n, "status": "OK"}``, or its 400 with
    ``failed_records`` by index. ``lenient`` (``strict=0``): the 200 alone.
    """

    translation: Translation = field(default_factory=Translation)
    style: Style = "track"
    verbose: bool = False
    problems: list[RecordError] = field(default_factory=list)

    def respond(self, outcome: RecordsOutcome | None) -> StoredResponse:
        # A group commit may render a request twice: the last rendering counts.
        positions = self.translation.positions
        refused = [
            RecordError(positions[r.index], "", r.message)
            for r in (outcome.rejected if outcome is not None else ())
        ]
        self.problems = [*self.translation.errors, *refused]
        failed = self.failed
        if self.style == "track":
            ok = self.translation.total > len(failed)
            if not self.verbose:
                return StoredResponse(200, b"1" if ok else b"0", media_type="text/plain")
            verbose = {"status": 1 if ok else 0, "error": None if ok else self._error_text()}
            return StoredResponse(200, orjson.dumps(verbose))
        imported = self.translation.total - len(failed) - len(self.translation.skipped)
        if not failed or self.style == "lenient":
            success = {"code": 200, "num_records_imported": imported, "status": "OK"}
            return StoredResponse(200, orjson.dumps(success))
        insert_ids = self.translation.insert_ids
        body: dict[str, Any] = {
            "code": 400,
            "error": "some data points in the request failed validation",
            "status": "Bad Request",
            "num_records_imported": imported,
            "failed_records": [
                {
                    "index": p.index,
                    "insert_id": insert_ids.get(p.index),
                    "field": p.field,
                    "message": p.message,
                }
                for p in self.problems
            ],
        }
        return StoredResponse(400, orjson.dumps(body))

    @property
    def failed(self) -> set[int]:
        return {problem.index for problem in self.problems}

    def _error_text(self) -> str:
        if not self.problems:
            return "data, missing or empty"
        listed = [
            f"record {p.index}: {p.message}"
            if not p.field
            else f"record {p.index} {p.field}: {p.message}"
            for p in self.problems[:MAX_LISTED]
        ]
        more = len(self.problems) - MAX_LISTED
        return "; ".join(listed) + (f"; and {more} more" if more > 0 else "")

    def report(self) -> Report:
        failed, skipped = len(self.failed), len(self.translation.skipped)
        return Report(
            {
                "accepted": self.translation.total - failed - skipped,
                "rejected": failed,
                "skipped": skipped,
            },
            [RejectionError(p.index, p.field, p.message) for p in self.problems],
        )

    def headers(self, stored: StoredResponse) -> dict[str, str]:
        failed = len(self.failed)
        return {REJECTED_HEADER: str(failed)} if failed and self.style == "track" else {}


# --- credentials ---------------------------------------------------------


def no_header_credential(request: Request) -> Credential | None:
    """/track, /engage, /groups: the token travels inside each record."""
    return None


def body_token(endpoint: Endpoint) -> Callable[[Incoming, Request, Credential | None], Credential]:
    def credential(parsed: Incoming, request: Request, header: Credential | None) -> Credential:
        """The token of the first record naming one; the others must name the same."""
        token = first_token(parsed.objects, endpoint)
        if token is None:
            raise unauthorized("token, missing or empty")
        return Credential(TOKEN_KIND, token)

    return credential


def import_credential(request: Request) -> Credential:
    """/import: HTTP Basic, "service account + ``project_id``, or project secret, or project
    token".

    With ``project_id`` in the query and a password, the password is the
    secret (eventyard has no service accounts: the account's API secret
    plays the service account's secret, whatever its user name; the account
    is the project, so ``project_id`` chooses nothing). Otherwise the user
    name is the API secret, or the project token ("If project_id is not
    specified, the request will be authenticated using the provided token").
    """
    authorization = split_authorization(request.headers.get("authorization"))
    if authorization is None:
        raise unauthorized(
            "Missing credentials: send HTTP Basic with the project's API secret as user name"
        )
    if authorization.scheme != "basic":
        raise unauthorized("Authorization must be Basic (the API secret as user name)")
    try:
        basic = decode_basic(authorization.credential)
    except ValueError as exc:
        raise unauthorized(str(exc)) from exc
    if request.query_params.get("project_id") and basic.password:
        return Credential(SECRET_KIND, basic.password)
    user = basic.user.strip()
    if not user:
        raise unauthorized("the Basic credential has no user name (the API secret)")
    kind = TOKEN_KIND if user.startswith(TOKEN_PREFIX + "_") else SECRET_KIND
    return Credential(kind, user)


def invalid_credential() -> EventyardError:
    return unauthorized("Invalid credentials")


def too_large(limit: int, exc: EventyardError) -> EventyardError:
    """The 413 as Mixpanel words it: "request exceeds max limit of … bytes"."""
    refusal = mixpanel_error(
        f"request exceeds max limit of {limit} bytes", status=413, code="payload_too_large"
    )
    refusal.headers.update(exc.headers)  # Connection: close, so the rest is never read
    return refusal


# --- translation ---------------------------------------------------------


def _flag(parsed: Incoming, request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return value if value is not None else parsed.fields.get(name)


def translator(endpoint: Endpoint) -> Callable[[Incoming, Arrival], Answer]:
    return lambda parsed, arrival: translate(endpoint, parsed, arrival)


def translate(endpoint: Endpoint, parsed: Incoming, arrival: Arrival) -> Answer:
    request = arrival.request
    verbose = _flag(parsed, request, "verbose") == "1"
    strict_flag = _flag(parsed, request, "strict")
    style: Style = "track"
    if endpoint == "import" and not (parsed.form and strict_flag is None):
        # The SDKs' form-encoded /import is answered like /track ("{"error": null,
        # "status": 1}", mixpanel-python#88); a JSON body gets the strict answer
        # unless it asks for strict=0 (the OpenAPI's default is "1").
        style = "lenient" if strict_flag == "0" else "strict"
    if not parsed.objects:
        raise mixpanel_error("data, missing or empty", field="data")
    translation = translate_records(
        parsed.objects,
        Context(
            endpoint,
            arrival.now,
            None if endpoint == "import" else arrival.credential.secret,
            suspicious=parsed.suspicious,
            strict=style == "strict",
        ),
    )
    return Answer(translation.records, translation=translation, style=style, verbose=verbose)


def _ingest_endpoint(endpoint: Endpoint) -> IngestEndpoint[Incoming]:
    if endpoint == "import":
        return IngestEndpoint(
            dialect=DIALECT,
            read_credential=import_credential,
            invalid_credential=invalid_credential,
            parse=parse_body,
            translate=translator(endpoint),
            max_body_bytes=MAX_BODY_BYTES,
            too_large=too_large,
        )
    return IngestEndpoint(
        dialect=DIALECT,
        read_credential=no_header_credential,
        invalid_credential=invalid_credential,
        parse=parse_body,
        translate=translator(endpoint),
        max_body_bytes=MAX_BODY_BYTES,
        body_credential=body_token(endpoint),
        too_large=too_large,
    )


async def _read_body(request: Request, ctx: AppContext, ingest: IngestEndpoint[Incoming]) -> bytes:
    limit = ingest.body_limit(ctx)
    try:
        return await read_inflated_body(request, ctx, limit)
    except EventyardError as exc:
        if exc.status != 413:
            raise
        raise too_large(limit, exc) from exc


def _route(endpoint: Endpoint) -> Callable[[Request, AppContext], Awaitable[Response]]:
    ingest = _ingest_endpoint(endpoint)

    async def route(request: Request, ctx: AppContext = Depends(get_context)) -> Response:
        # GET (the Node SDK's single calls, pixel integrations): the form is the query.
        body = request.url.query.encode() if request.method == "GET" else None
        if body is None and endpoint != "import":
            # The token travels in the body: it is read before anything is checked
            # anyway. An empty body may leave ``data`` in the query (legacy HTTP spec).
            body = await _read_body(request, ctx, ingest)
            if not body.strip() and "data" in request.query_params:
                body = request.url.query.encode()
        return await receive(request, ctx, ingest, body=body)

    route.__name__ = f"mixpanel_{endpoint}"
    return route


_FORMS = (
    "The body is JSON (an array of records, one record, or NDJSON on /import), or a form "
    "whose `data` field holds that JSON as text or base64 (GET: `data` in the query); "
    "gzip is accepted. At most 2000 records and 10 MB. "
)
_TRACK_ANSWER = (
    'Answers `1` (or with `verbose=1` `{"status": 1, "error": null}`) when at least one '
    'record was stored, `0` (`{"status": 0, "error": "…"}`) naming each refused record '
    "otherwise; refused records also show in the account's ingest rejections. "
)
_DESCRIPTIONS: dict[Endpoint, tuple[str, str]] = {
    "track": (
        "Track events (Mixpanel)",
        "Events, each with `event` and `properties` holding the project token (`token`), "
        "`distinct_id`/`$user_id`/`$device_id`, `time` and `$insert_id`; events older than "
        "5 days are skipped, as Mixpanel does. `$identify` and `$create_alias` link ids. "
        + _FORMS
        + _TRACK_ANSWER,
    ),
    "engage": (
        "Update user profiles (Mixpanel)",
        "Profile updates with `$token`, `$distinct_id` and one or more of `$set`, "
        "`$set_once`, `$add`, `$append`, `$union`, `$remove`, `$unset`, `$delete`. "
        + _FORMS
        + _TRACK_ANSWER,
    ),
    "groups": (
        "Update group profiles (Mixpanel)",
        "Group profile updates are refused one by one (groups are not contacts); see the "
        "Mixpanel dialect page. " + _FORMS + _TRACK_ANSWER,
    ),
    "import": (
        "Import events (Mixpanel)",
        "Historical and server-side events, authenticated with HTTP Basic (the API secret "
        "as user name, or a service account's secret with `project_id`). Each event needs "
        "`time`, `distinct_id` and `$insert_id`. " + _FORMS + 'Answers `{"code": 200, '
        '"num_records_imported": n, "status": "OK"}`, or 400 with `failed_records` by index '
        "(the valid events are stored); a form body is answered like /track.",
    ),
}

for _endpoint, (_summary, _description) in _DESCRIPTIONS.items():
    for _method in ("POST", "GET"):
        router.add_api_route(
            f"/{_endpoint}",
            _route(_endpoint),
            methods=[_method],
            operation_id=f"mixpanel_{_endpoint}_{_method.lower()}",
            summary=_summary if _method == "POST" else f"{_summary}, the form in the query",
            description=_description,
            openapi_extra=openapi_extra(_endpoint, _method),
        )
    # mixpanel-browser posts to "/track/?ip=1&_=…": "Route … with and without trailing
    # slash" (a redirect would lose a browser's cross-origin POST).
    router.add_api_route(
        f"/{_endpoint}/",
        _route(_endpoint),
        methods=["POST", "GET"],
        include_in_schema=False,
    )

__all__ = ["PATHS", "router"]
