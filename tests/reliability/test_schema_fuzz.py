"""Schemathesis against eventyard's own OpenAPI document, on a real server, on both stores.

Issue 9: "schemathesis against eventyard's OpenAPI document (every dialect's
endpoints described there with their real request schemas): no 5xx, every
response matches the documented schema". Every operation of the document is
a test; Hypothesis draws requests from its request schema (and, in the
negative mode, requests that break it) and sends them with a valid key of
the route's kind, so the dialect's validation, translation and storage all
run. Each response must not be a 5xx, must carry a documented status and
content type, and its body must match the documented schema.

Left out: Schemathesis' ``positive_data_acceptance`` check, which expects a 2xx
for every request its schema allows. The vendors' rules go beyond what a JSON
schema can say (Netcore wants one of identity, email or mobile; an Ortto
activity must name a definition the account declared; the bulk upload's
``path`` may come in the query or the form body), so a schema-valid request
may rightly get a 400 naming the rule, which the other checks still verify.

``negative_data_rejection`` (a request breaking the schema must get a 4xx) is
left out where the vendor answers 200 with an outcome per record instead:
CleverTap ("Requests with processing errors will be returned in the API call
response": ``{"status": "fail", "unprocessed": [...]}``) and Segment ("Segment
returns a 200 response for all API requests except errors caused by large
payloads and JSON errors"; docs/dialects/segment.md) and Mixpanel's /track,
/engage and /groups ("invalid payload … 200 … ``{"status": 0, "error":
…}``"; docs/dialects/mixpanel.md) and PostHog (events "with no name, no
distinct_id ... are dropped but still get 200"). Their per-record
answers are tested in tests/api.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from eventyard.app import create_app
from eventyard.core.model import NewAccount
from eventyard.dialects.registry import create_account
from eventyard.settings import Settings
from eventyard.storage.database import Database
from tests.reliability.test_tenant_isolation import CASES, credentials
from tests.support import Server

#: Route kinds whose vendor answers a bad record with 200 and its per-record outcome.
PER_RECORD_OUTCOME = ("clevertap", "segment", "mixpanel", "posthog")
#: Examples per operation and store, each one HTTP request; a longer hunt:
#: ``EVENTYARD_FUZZ_EXAMPLES=500 ./scripts/test tests/reliability/test_schema_fuzz.py``.
EXAMPLES = int(os.environ.get("EVENTYARD_FUZZ_EXAMPLES", "40"))


@pytest.fixture(scope="module")
def fuzz_account(store: Database) -> NewAccount:
    return create_account(store, f"fuzz-{uuid.uuid4().hex[:8]}")


def _document() -> dict[str, Any]:
    """The OpenAPI document the server serves, built by the same code without a server.

    Schemathesis' lazy loading from a fixture does not run under pytest 9, so
    the operations are collected from this copy; the test checks it is the very
    document the running server serves, and sends every request to that server.
    """
    unopened = Path(tempfile.gettempdir()) / "eventyard-openapi-never-opened.db"
    app = create_app(Settings(database_url=f"sqlite:///{unopened}", run_worker=False))
    return app.openapi()


DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(DOCUMENT)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_answers_as_documented(
    case: Any, server: Server, fuzz_account: NewAccount
) -> None:
    route = CASES.get((case.method.lower(), case.path))  # None: /healthz, /readyz, /metrics
    auth = credentials(route.kind, fuzz_account) if route else {}
    if "params" in auth:
        # The Netcore bulk call takes its key in the query string; Mixpanel's token
        # travels in the records, sent as the form's ``data`` in the query.
        params = auth.pop("params")
        extra = {"apikey": params["apikey"]} if "apikey" in params else params
        case.query = {**(case.query or {}), **extra}
    if "headers" in auth:
        case.headers = {**(case.headers or {}), **auth.pop("headers")}
    if "body" in auth:  # PostHog's project API key travels in the body
        key = auth.pop("body")
        if isinstance(case.body, dict):
            case.body = {**case.body, **key}
    if "body_key" in auth:  # Amplitude's api_key: in the JSON body or the /identify form
        api_key = auth.pop("body_key")
        if isinstance(case.body, dict):
            case.body = {**case.body, "api_key": api_key}
    excluded = [positive_data_acceptance]
    if route is not None and route.kind in PER_RECORD_OUTCOME:
        excluded.append(negative_data_rejection)
    case.call_and_validate(base_url=server.base_url, excluded_checks=excluded, **auth, timeout=60)


def test_the_fuzzed_document_is_the_one_the_server_serves(server: Server) -> None:
    served = httpx.get(f"{server.base_url}/openapi.json", timeout=30)
    assert served.status_code == 200
    assert served.json() == DOCUMENT
