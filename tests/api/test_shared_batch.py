"""``POST /batch``: Amplitude's Batch Event Upload and PostHog's batch capture share the path.

Amplitude's SDK in batch mode posts ``{"api_key", "events": [...]}`` to
``/batch``; PostHog's SDKs post ``{"api_key", "batch": [...]}`` (plain, gzip
or lz64) to ``/batch`` and ``/batch/``. eventyard reads the body once and
hands it to the dialect whose shape it has (docs/operations.md, "a path
several dialects share"): Amplitude's when it holds ``events``, PostHog's
otherwise. Whatever goes wrong before the body is claimed answers in
PostHog's shape (the path's default); once claimed, in the claimant's.
Both databases, a real server; what was stored is read back through
``/api/v1``.
"""

from __future__ import annotations

import gzip
import uuid
from typing import Any

import httpx
import orjson

from eventyard.core.model import NewAccount
from tests.support import admin, find_contact

POSTHOG_ERROR_KEYS = {"type", "code", "detail", "attr"}


def person() -> str:
    return f"shared-{uuid.uuid4().hex[:12]}"


def stored(http: httpx.Client, account: NewAccount, identifier: str) -> list[dict[str, Any]]:
    found = find_contact(http, account, identifier)
    assert found is not None, identifier
    r = http.get(f"/api/v1/contacts/{found['id']}/activities", headers=admin(account))
    assert r.status_code == 200, r.text
    return list(r.json()["activities"])


def amplitude_body(account: NewAccount, user: str, **event: Any) -> dict[str, Any]:
    return {
        "api_key": account.amplitude_api_key,
        "events": [{"user_id": user, "event_type": "Shared Path", **event}],
    }


def posthog_body(account: NewAccount, user: str) -> dict[str, Any]:
    return {
        "api_key": account.posthog_api_key,
        "batch": [{"event": "Shared Path", "distinct_id": user, "properties": {"n": 1}}],
    }


class TestDispatch:
    def test_an_amplitude_batch_is_stored_as_amplitude(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        user = person()
        r = http.post("/batch", json=amplitude_body(account, user))
        assert r.status_code == 200, r.text
        assert r.json()["code"] == 200  # Amplitude's answer, not PostHog's {"status": 1}
        [activity] = stored(http, account, f"identity:{user}")
        assert (activity["name"], activity["dialect"]) == ("Shared Path", "amplitude")

    def test_a_posthog_batch_is_stored_as_posthog_on_both_spellings(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        for path in ("/batch", "/batch/"):
            user = person()
            r = http.post(path, json=posthog_body(account, user))
            assert (r.status_code, r.json()) == (200, {"status": 1}), r.text
            [activity] = stored(http, account, f"identity:{user}")
            assert (activity["name"], activity["dialect"]) == ("Shared Path", "posthog")

    def test_gzip_bodies_are_claimed_after_inflating(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Both SDKs may gzip (``Content-Encoding: gzip``): the claim looks at the inflated body."""
        amplitude_user, posthog_user = person(), person()
        for body in (amplitude_body(account, amplitude_user), posthog_body(account, posthog_user)):
            r = http.post(
                "/batch",
                content=gzip.compress(orjson.dumps(body)),
                headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
            )
            assert r.status_code == 200, r.text
        assert stored(http, account, f"identity:{amplitude_user}")[0]["dialect"] == "amplitude"
        assert stored(http, account, f"identity:{posthog_user}")[0]["dialect"] == "posthog"


class TestErrorShapes:
    def test_a_claimed_amplitude_body_answers_errors_in_amplitudes_shape(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Amplitude: ``events_with_invalid_fields`` names the bad event by index."""
        body = amplitude_body(account, person(), time="yesterday")
        r = http.post("/batch", json=body)
        assert r.status_code == 400, r.text
        answer = r.json()
        assert answer["code"] == 400
        assert answer["events_with_invalid_fields"] == {"time": [0]}

    def test_an_unknown_amplitude_key_is_amplitudes_refusal(self, http: httpx.Client) -> None:
        r = http.post("/batch", json={"api_key": "nope", "events": [{"user_id": "u"}]})
        assert r.status_code == 400, r.text
        assert r.json()["error"].startswith("Invalid API key")

    def test_a_body_nobody_claims_answers_in_posthogs_shape(self, http: httpx.Client) -> None:
        r = http.post("/batch", json={"hello": "world"})
        assert 400 <= r.status_code < 500, r.text
        assert set(r.json()) == POSTHOG_ERROR_KEYS

    def test_a_wrong_method_answers_in_posthogs_shape(self, http: httpx.Client) -> None:
        r = http.get("/batch")
        assert r.status_code == 405, r.text
        assert set(r.json()) == POSTHOG_ERROR_KEYS

    def test_a_body_over_every_sharers_limit_is_posthogs_413(self, http: httpx.Client) -> None:
        """Amplitude's batch limit is 20 MB and PostHog's 20 MB: a bigger body is refused
        before it is read, so before anyone claims it."""
        r = http.post(
            "/batch",
            content=b"{" + b" " * (21 * 1024 * 1024) + b"}",
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 413, r.text
        assert set(r.json()) == POSTHOG_ERROR_KEYS
