"""Every dialect's write endpoint runs the one pipeline of docs/operations.md.

The same request behaviours hold whatever the dialect: a gzip body is
inflated, an ``Idempotency-Key`` replays the first answer and refuses
another body, a wrong credential is a 401 before anything is stored. One
entry in ``tests/reliability/dialects.py`` brings a new dialect under
these tests.
"""

from __future__ import annotations

import gzip
import uuid
from collections import Counter

import httpx
import orjson
import pytest

from eventyard.core.model import NewAccount
from eventyard.storage.database import Database
from tests.reliability.dialects import DIALECTS, Dialect, Request, markers, stored_markers

pytestmark = pytest.mark.parametrize("dialect", DIALECTS, ids=[d.name for d in DIALECTS])


def send_raw(http: httpx.Client, request: Request, body: bytes, **headers: str) -> httpx.Response:
    return http.request(
        request.method,
        request.path,
        content=body,
        headers={**request.headers, "Content-Type": "application/json", **headers},
        auth=request.auth,
    )


def batch_of(
    dialect: Dialect, account: NewAccount, http: httpx.Client
) -> tuple[Request, list[str]]:
    dialect.prepare(http, account)
    sent = markers(uuid.uuid4().hex[:8], min(3, dialect.batch_size), 2)
    return dialect.batch(account, sent), sent


def test_a_gzip_body_is_inflated_and_stored(
    dialect: Dialect, http: httpx.Client, account: NewAccount, store: Database
) -> None:
    request, sent = batch_of(dialect, account, http)
    body = gzip.compress(orjson.dumps(request.json))

    r = send_raw(http, request, body, **{"Content-Encoding": "gzip"})

    assert dialect.accepted(r), r.text
    assert Counter(stored_markers(store, account.account.id, dialect)) == Counter(sent)


def test_an_unknown_content_encoding_is_415_and_stores_nothing(
    dialect: Dialect, http: httpx.Client, account: NewAccount, store: Database
) -> None:
    request, _ = batch_of(dialect, account, http)

    r = send_raw(http, request, orjson.dumps(request.json), **{"Content-Encoding": "br"})

    assert r.status_code == 415, r.text
    assert "gzip" in r.text
    assert stored_markers(store, account.account.id, dialect) == []


def test_an_idempotency_key_replays_the_first_answer_and_stores_once(
    dialect: Dialect, http: httpx.Client, account: NewAccount, store: Database
) -> None:
    request, sent = batch_of(dialect, account, http)
    key = f"retry-{uuid.uuid4()}"

    first = request.send(http, **{"Idempotency-Key": key})
    again = request.send(http, **{"Idempotency-Key": key})

    assert dialect.accepted(first), first.text
    assert again.status_code == first.status_code
    assert again.content == first.content
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert Counter(stored_markers(store, account.account.id, dialect)) == Counter(sent)


def test_an_idempotency_key_with_another_body_is_409(
    dialect: Dialect, http: httpx.Client, account: NewAccount, store: Database
) -> None:
    request, sent = batch_of(dialect, account, http)
    other, _ = batch_of(dialect, account, http)
    key = f"reused-{uuid.uuid4()}"

    assert dialect.accepted(request.send(http, **{"Idempotency-Key": key}))
    r = other.send(http, **{"Idempotency-Key": key})

    assert r.status_code == 409, r.text
    assert Counter(stored_markers(store, account.account.id, dialect)) == Counter(sent)


def test_a_wrong_credential_is_401_and_stores_nothing(
    dialect: Dialect, http: httpx.Client, account: NewAccount, store: Database
) -> None:
    request, _ = batch_of(dialect, account, http)
    wrong = {k: "wrong-secret" for k in request.headers if k != "X-CleverTap-Account-Id"}
    auth = ("wrong-secret", "") if request.auth is not None else None
    body = request.json
    if isinstance(body, dict) and "api_key" in body:  # a key in the body (Amplitude, PostHog)
        body = {**body, "api_key": "wrong-secret"}
    forged = Request(request.method, request.path, {**request.headers, **wrong}, body, auth)

    r = forged.send(http)

    assert r.status_code == dialect.unauthorized_status, r.text
    assert stored_markers(store, account.account.id, dialect) == []
