"""Operations endpoints, request ids, metrics and logs of a real server, on both databases."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from eventyard.core.model import NewAccount
from tests.support import Server, free_port, netcore_event, running_server

UPLOAD = "/v1/activity/upload"
ACCEPTED = ("eventyard_events_total", (("dialect", "netcore"), ("outcome", "accepted")))
REJECTED = ("eventyard_events_total", (("dialect", "netcore"), ("outcome", "rejected")))
SKIPPED = ("eventyard_events_total", (("dialect", "netcore"), ("outcome", "skipped")))

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def scrape(http: httpx.Client) -> Samples:
    """Every sample of ``/metrics``, keyed by name and sorted labels."""
    r = http.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def requests_total(samples: Samples, route: str, method: str, status: str) -> float:
    labels = (("method", method), ("route", route), ("status", status))
    return samples.get(("eventyard_http_requests_total", labels), 0.0)


def log_entries(server: Server) -> list[dict[str, Any]]:
    """The JSON objects among the server's log lines."""
    entries = []
    text = server.logs()
    # The server may be writing a line right now: only complete lines count.
    complete = text[: text.rfind("\n") + 1]
    for line in complete.splitlines():
        if line.startswith("{"):
            entries.append(orjson.loads(line))
    return entries


def wait_for_log(
    server: Server, matches: Callable[[dict[str, Any]], bool], timeout: float = 15
) -> dict[str, Any]:
    """The first log entry that ``matches``; the request line is written after the response."""
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in log_entries(server) if matches(e)]
        if found:
            return found[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no matching log line in:\n{server.logs()[-5000:]}")
        time.sleep(0.05)


def request_line(server: Server, request_id: str) -> dict[str, Any]:
    return wait_for_log(
        server, lambda e: e.get("msg") == "request" and e.get("request_id") == request_id
    )


def new_contact(http: httpx.Client, account: NewAccount) -> str:
    identity = f"ops-{uuid.uuid4().hex[:12]}"
    r = http.post(
        UPLOAD,
        json=[netcore_event(identity=identity)],
        headers={"api-key": account.netcore_api_key},
    )
    assert r.status_code == 200, r.text
    r = http.get(
        "/api/v1/contacts",
        params={"identifier": f"identity:{identity}"},
        headers=bearer(account.admin_token),
    )
    contact_id: str = r.json()["contacts"][0]["id"]
    return contact_id


class TestHealth:
    def test_healthz(self, http: httpx.Client) -> None:
        r = http.get("/healthz")
        assert r.status_code == 200
        assert r.json() == {"status": "ok"}

    def test_readyz_reports_the_database(self, http: httpx.Client) -> None:
        r = http.get("/readyz")
        assert r.status_code == 200, r.text
        assert r.json() == {"status": "ok", "database": "ok"}

    @pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
    def test_readyz_is_503_when_the_database_is_unreachable(
        self, tmp_path: Path, kind: str
    ) -> None:
        """docs/operations.md: "`503 {"status":"unavailable","database":"unreachable"}`
        with `Retry-After: 5`"; "every request that needs it gets **503 with
        `Retry-After: 5`**, in the error shape of its API"."""
        if kind == "postgresql":
            url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
        else:
            url = f"sqlite:///{tmp_path / 'missing-dir' / 'eventyard.db'}"
        with (
            running_server(url, tmp_path / "server.log") as server,
            httpx.Client(base_url=server.base_url, timeout=30) as http,
        ):
            assert http.get("/healthz").status_code == 200

            r = http.get("/readyz")
            assert r.status_code == 503, r.text
            assert r.json() == {"status": "unavailable", "database": "unreachable"}
            assert r.headers["Retry-After"] == "5"

            r = http.post(UPLOAD, json=[netcore_event()], headers={"api-key": "eyn_whatever"})
            assert r.status_code == 503, r.text
            body = r.json()
            assert body["status"] == "error"
            assert body["code"] == 503
            assert body["message"].startswith("Service Unavailable")
            assert r.headers["Retry-After"] == "5"

            # CleverTap's own error shape: {"status": "fail", "error": ..., "code": 503}.
            r = http.post(
                "/1/upload",
                json={"d": [{"type": "event", "identity": "x", "evtName": "E", "evtData": {}}]},
                headers={
                    "X-CleverTap-Account-Id": "ZZZ-ZZZ-ZZZZ",
                    "X-CleverTap-Passcode": "whatever",
                },
            )
            assert r.status_code == 503, r.text
            body = r.json()
            assert set(body) == {"status", "error", "code"}, body
            assert body["status"] == "fail"
            assert body["code"] == 503
            assert body["error"]
            assert r.headers["Retry-After"] == "5"

            r = http.get(
                "/api/v1/contacts",
                params={"identifier": "identity:x"},
                headers=bearer("eya_whatever"),
            )
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "store_unavailable"

            assert http.get("/metrics").status_code == 200
            assert not [e for e in log_entries(server) if e.get("status") == 500]


class TestDocs:
    def test_docs_page_is_html(self, http: httpx.Client) -> None:
        r = http.get("/docs")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        assert "swagger" in r.text.lower()
        assert "/openapi.json" in r.text

    def test_openapi_documents_the_upload_body(self, http: httpx.Client) -> None:
        r = http.get("/openapi.json")
        assert r.status_code == 200
        spec = r.json()
        upload = spec["paths"][UPLOAD]["post"]
        schema = upload["requestBody"]["content"]["application/json"]["schema"]
        variants = schema["oneOf"]
        batch = next(v for v in variants if v.get("type") == "array")
        assert batch["maxItems"] == 1000
        event = batch["items"]
        assert {"activity_name", "timestamp", "activity_source", "activity_params"} <= set(
            event["required"]
        )
        assert {"identity", "email", "mobile", "anonid"} <= set(event["properties"])

    def test_every_operation_documents_its_errors_in_its_dialects_shape(
        self, http: httpx.Client
    ) -> None:
        """A client generated from the document learns the answers it will get: no
        FastAPI 422 that is never sent, and each error body in the owner's shape."""
        paths = http.get("/openapi.json").json()["paths"]

        def error_schema(path: str, method: str, status: str) -> dict[str, Any]:
            answer = paths[path][method]["responses"][status]
            schema: dict[str, Any] = answer["content"]["application/json"]["schema"]
            return schema

        assert set(error_schema(UPLOAD, "post", "400")["required"]) == {
            "status",
            "code",
            "message",
        }
        assert "errorKey" in error_schema("/v2/contactactivities", "post", "422")["required"]
        assert "success" in error_schema("/v1/track", "post", "401")["required"]
        assert error_schema("/api/v1/lists", "post", "409")["required"] == ["error"]
        for operations in paths.values():
            for operation in operations.values():
                assert "HTTPValidationError" not in str(operation["responses"])
        assert "Retry-After" in paths[UPLOAD]["post"]["responses"]["503"]["headers"]

    @pytest.mark.parametrize(
        ("path", "allow"),
        [("/api/v1/contacts/x", "DELETE, GET"), ("/api/v1/lists", "GET, POST")],
    )
    def test_405_names_every_method_of_the_path(
        self, http: httpx.Client, path: str, allow: str
    ) -> None:
        """RFC 9110: a 405 "MUST generate an Allow header field ... containing a list of
        the target resource's currently supported methods", not those of one route."""
        r = http.request("PATCH", path)
        assert r.status_code == 405
        assert r.headers["Allow"] == allow

    def test_openapi_documents_the_canonical_api(self, http: httpx.Client) -> None:
        paths = http.get("/openapi.json").json()["paths"]
        for path in (
            "/api/v1/contacts",
            "/api/v1/contacts/{contact_id}",
            "/api/v1/contacts/{contact_id}/activities",
            "/api/v1/contacts/{contact_id}/identity-events",
            "/healthz",
            "/readyz",
            "/metrics",
        ):
            assert "get" in paths.get(path, {}), path

        def params(path: str) -> dict[str, dict[str, Any]]:
            return {p["name"]: p for p in paths[path]["get"].get("parameters", [])}

        assert params("/api/v1/contacts")["identifier"]["required"] is True
        assert {"contact_id", "limit", "cursor"} <= set(
            params("/api/v1/contacts/{contact_id}/activities")
        )


class TestRequestIds:
    @pytest.fixture
    def requests(
        self, http: httpx.Client, account: NewAccount
    ) -> list[Callable[[dict[str, str]], httpx.Response]]:
        contact_id = new_contact(http, account)
        admin = bearer(account.admin_token)
        key = {"api-key": account.netcore_api_key}
        return [
            lambda h: http.get("/healthz", headers=h),
            lambda h: http.get("/readyz", headers=h),
            lambda h: http.get("/metrics", headers=h),
            lambda h: http.get("/docs", headers=h),
            lambda h: http.get("/openapi.json", headers=h),
            lambda h: http.get("/no/such/route", headers=h),
            lambda h: http.delete("/healthz", headers=h),
            lambda h: http.post(UPLOAD, json=[netcore_event()], headers={**h, **key}),
            lambda h: http.post(UPLOAD, json=[netcore_event()], headers=h),
            lambda h: http.post(UPLOAD, content=b"{not json", headers={**h, **key}),
            lambda h: http.get(f"/api/v1/contacts/{contact_id}", headers={**h, **admin}),
            lambda h: http.get(f"/api/v1/contacts/{contact_id}", headers=h),
            lambda h: http.get("/api/v1/contacts/unknown", headers={**h, **admin}),
            lambda h: http.get("/api/v1/contacts?identifier=bad", headers={**h, **admin}),
        ]

    def test_every_response_has_a_fresh_request_id(
        self, requests: list[Callable[[dict[str, str]], httpx.Response]]
    ) -> None:
        ids = []
        for send in requests:
            r = send({})
            assert r.headers.get("X-Request-ID"), (r.request.url, r.status_code)
            ids.append(r.headers["X-Request-ID"])
        assert len(set(ids)) == len(ids)

    def test_incoming_request_id_is_echoed(
        self, requests: list[Callable[[dict[str, str]], httpx.Response]]
    ) -> None:
        for send in requests:
            request_id = f"client-{uuid.uuid4()}"
            r = send({"X-Request-ID": request_id})
            assert r.headers["X-Request-ID"] == request_id, (r.request.url, r.status_code)

    def test_overlong_request_id_is_replaced(self, http: httpx.Client) -> None:
        """An id is logged with every line: a client cannot make it arbitrarily long."""
        r = http.get("/healthz", headers={"X-Request-ID": "x" * 1000})
        assert r.status_code == 200
        assert r.headers["X-Request-ID"]
        assert r.headers["X-Request-ID"] != "x" * 1000
        assert len(r.headers["X-Request-ID"]) <= 64

    def test_request_line_is_json_with_the_request_id(
        self, http: httpx.Client, server: Server, account: NewAccount
    ) -> None:
        contact_id = new_contact(http, account)
        echoed = f"trace-{uuid.uuid4()}"
        r = http.get(
            f"/api/v1/contacts/{contact_id}",
            headers={**bearer(account.admin_token), "X-Request-ID": echoed},
        )
        assert r.status_code == 200
        line = request_line(server, echoed)
        assert line["method"] == "GET"
        assert line["path"] == f"/api/v1/contacts/{contact_id}"
        assert line["route"] == "/api/v1/contacts/{contact_id}"
        assert line["status"] == 200
        assert line["level"] == "info"

        r = http.get("/no/such/route")
        generated = r.headers["X-Request-ID"]
        line = request_line(server, generated)
        assert line["status"] == 404
        assert line["path"] == "/no/such/route"

    def test_every_log_line_is_json(
        self, http: httpx.Client, server: Server, account: NewAccount
    ) -> None:
        """Operators ship the log to a JSON pipeline: one object per line, nothing else."""
        new_contact(http, account)
        http.get("/api/v1/contacts/unknown", headers=bearer(account.admin_token))
        http.get("/api/v1/contacts?identifier=bad", headers=bearer(account.admin_token))
        http.post(UPLOAD, json=[netcore_event(timestamp="x")])
        last = http.get("/healthz").headers["X-Request-ID"]
        request_line(server, last)
        text = server.logs()
        # Only complete lines: the server may be writing the next one right now.
        for line in text[: text.rfind("\n") + 1].splitlines():
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                pytest.fail(f"not a JSON log line: {line!r}")
            assert isinstance(entry, dict), line
            assert {"ts", "level", "logger", "msg"} <= set(entry), line

    def test_every_request_line_carries_a_request_id(
        self, http: httpx.Client, server: Server, account: NewAccount
    ) -> None:
        new_contact(http, account)
        last = http.get("/healthz").headers["X-Request-ID"]
        request_line(server, last)
        lines = [e for e in log_entries(server) if e.get("msg") == "request"]
        assert len(lines) >= 4
        for line in lines:
            assert line.get("request_id"), line
            assert {"ts", "level", "method", "path", "route", "status"} <= set(line), line


class TestCredentialsStayOutOfLogs:
    def test_no_credential_reaches_the_logs(
        self, http: httpx.Client, server: Server, account: NewAccount
    ) -> None:
        """docs/operations.md: "headers (`api-key`, `Authorization`) and bodies are never
        logged, and the logged path has no query string (some vendor APIs put keys
        there)"; docs/dialects/netcore.md: "The key is only accepted in the header (not
        in the query string), and it never reaches the logs"."""
        contact_id = new_contact(http, account)
        fake_admin = f"eya_{uuid.uuid4().hex}"
        fake_netcore = f"eyn_{uuid.uuid4().hex}"
        secrets = [
            account.admin_token,
            account.netcore_api_key,
            account.cordial_api_key,
            account.ortto_api_key,
            account.clevertap_passcode,
            fake_admin,
            fake_netcore,
        ]
        admin = account.admin_token
        netcore = account.netcore_api_key
        sends: list[tuple[str, str, dict[str, Any]]] = [
            ("POST", UPLOAD, {"json": [netcore_event()], "headers": {"api-key": netcore}}),
            ("POST", f"{UPLOAD}?api-key={netcore}", {"json": [netcore_event()]}),
            ("POST", f"{UPLOAD}?api-key={netcore}", {"json": [netcore_event(timestamp="x")]}),
            ("POST", UPLOAD, {"json": [netcore_event()], "headers": {"api-key": fake_netcore}}),
            ("POST", UPLOAD, {"json": [netcore_event()], "headers": {"api-key": admin}}),
            ("GET", f"/api/v1/contacts/{contact_id}", {"headers": bearer(admin)}),
            ("GET", f"/api/v1/contacts/{contact_id}?access_token={admin}", {}),
            ("GET", f"/api/v1/contacts/{contact_id}?token={admin}", {"headers": bearer(admin)}),
            (
                "GET",
                f"/api/v1/contacts/{contact_id}/activities?limit=oops&api-key={admin}",
                {"headers": bearer(admin)},
            ),
            ("GET", f"/api/v1/contacts?identifier=bad&token={admin}", {"headers": bearer(admin)}),
            ("GET", "/api/v1/contacts/unknown", {"headers": bearer(fake_admin)}),
            ("GET", "/api/v1/contacts/unknown", {"headers": bearer(netcore)}),
            ("GET", f"/nowhere?api_key={netcore}", {"headers": {"api-key": netcore}}),
            (
                "POST",
                "/v2/contactactivities",
                {"auth": (account.cordial_api_key, ""), "json": {}},
            ),
            (
                "POST",
                "/v1/activities/create",
                {"headers": {"X-Api-Key": account.ortto_api_key}, "json": {}},
            ),
            (
                "POST",
                "/1/upload",
                {
                    "headers": {
                        "X-CleverTap-Account-Id": account.clevertap_account_id,
                        "X-CleverTap-Passcode": account.clevertap_passcode,
                    },
                    "json": {"d": []},
                },
            ),
        ]
        for method, url, kwargs in sends:
            request_id = f"leak-{uuid.uuid4()}"
            headers = {**kwargs.pop("headers", {}), "X-Request-ID": request_id}
            r = http.request(method, url, headers=headers, **kwargs)
            assert r.status_code < 500, (url, r.text)
            if url.startswith(f"{UPLOAD}?"):
                # "The key is only accepted in the header (not in the query string)".
                assert r.status_code == 401, (url, r.text)
                assert r.json()["message"] == "Unauthorized | Invalid API Key"
            line = request_line(server, request_id)
            assert "?" not in line["path"], line

        logs = server.logs()
        for secret in secrets:
            assert secret not in logs
            # Neither a recognisable part of it.
            assert secret[4:20] not in logs


class TestMetrics:
    def test_events_accepted_counts_exactly_the_events_stored(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        before = scrape(http)
        key = {"api-key": account.netcore_api_key}
        for size in (7, 1, 3):
            events = [netcore_event(identity=f"m-{uuid.uuid4().hex}") for _ in range(size)]
            assert http.post(UPLOAD, json=events, headers=key).status_code == 200
        r = http.post(UPLOAD, json=netcore_event(), headers=key)  # a bare object is one event
        assert r.status_code == 200, r.text
        after = scrape(http)

        assert after[ACCEPTED] - before.get(ACCEPTED, 0.0) == 12
        assert after.get(REJECTED, 0.0) == before.get(REJECTED, 0.0)
        delta = requests_total(after, UPLOAD, "POST", "200") - requests_total(
            before, UPLOAD, "POST", "200"
        )
        assert delta == 4

    def test_rejected_batch_is_counted_as_rejected(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        before = scrape(http)
        r = http.post(
            UPLOAD,
            json=[netcore_event(), netcore_event(activity_name=None)],
            headers={"api-key": account.netcore_api_key},
        )
        assert r.status_code == 400, r.text
        after = scrape(http)

        # Nothing of the batch was stored, so both of its events count as rejected.
        assert after[REJECTED] - before.get(REJECTED, 0.0) == 2
        assert after.get(ACCEPTED, 0.0) == before.get(ACCEPTED, 0.0)
        delta = requests_total(after, UPLOAD, "POST", "400") - requests_total(
            before, UPLOAD, "POST", "400"
        )
        assert delta == 1

    def test_idempotent_replay_is_not_counted_again(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        headers = {"api-key": account.netcore_api_key, "Idempotency-Key": uuid.uuid4().hex}
        events = [netcore_event(identity=f"m-{uuid.uuid4().hex}") for _ in range(5)]
        before = scrape(http)
        first = http.post(UPLOAD, json=events, headers=headers)
        replay = http.post(UPLOAD, json=events, headers=headers)
        after = scrape(http)

        assert first.status_code == replay.status_code == 200
        assert replay.headers.get("Idempotent-Replayed") == "true"
        assert after[ACCEPTED] - before.get(ACCEPTED, 0.0) == 5

    def test_skipped_events_are_counted(self, http: httpx.Client, account: NewAccount) -> None:
        before = scrape(http)
        r = http.post(
            UPLOAD,
            json=[netcore_event(), netcore_event(activity_params={"items": []})],
            headers={"api-key": account.netcore_api_key},
        )
        assert r.status_code == 200, r.text
        after = scrape(http)

        assert after[ACCEPTED] - before.get(ACCEPTED, 0.0) == 1
        assert after[SKIPPED] - before.get(SKIPPED, 0.0) == 1

    def test_request_metrics_use_the_route_template(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        first, second = new_contact(http, account), new_contact(http, account)
        template = "/api/v1/contacts/{contact_id}"
        before = scrape(http)
        for contact_id in (first, second, first):
            r = http.get(f"/api/v1/contacts/{contact_id}", headers=bearer(account.admin_token))
            assert r.status_code == 200
        r = http.get(f"/api/v1/contacts/{first}/activities", headers=bearer(account.admin_token))
        assert r.status_code == 200
        r = http.get("/api/v1/contacts/unknown", headers=bearer(account.admin_token))
        assert r.status_code == 404
        after = scrape(http)

        assert (
            requests_total(after, template, "GET", "200")
            - requests_total(before, template, "GET", "200")
            == 3
        )
        assert (
            requests_total(after, template, "GET", "404")
            - requests_total(before, template, "GET", "404")
            == 1
        )
        activities = f"{template}/activities"
        assert (
            requests_total(after, activities, "GET", "200")
            - requests_total(before, activities, "GET", "200")
            == 1
        )
        routes = {dict(labels).get("route") for _, labels in after}
        assert not any(first in (r or "") or second in (r or "") for r in routes)
        assert "unknown" not in routes
        assert first not in http.get("/metrics").text

    def test_unmatched_paths_share_one_label(self, http: httpx.Client) -> None:
        """docs/operations.md: "`route` is the route template ..., or `unmatched` for
        unknown paths, so the label set stays small whatever clients send"."""
        probes = [f"/probe/{uuid.uuid4().hex}" for _ in range(3)]
        before = scrape(http)
        for path in probes:
            assert http.get(path).status_code == 404
        after = scrape(http)

        delta = requests_total(after, "unmatched", "GET", "404") - requests_total(
            before, "unmatched", "GET", "404"
        )
        assert delta == len(probes)
        text = http.get("/metrics").text
        for path in probes:
            assert path not in text
