"""Mixpanel's official SDKs, from PyPI and npm, against a real eventyard server over HTTPS.

PyPI ``mixpanel`` (the ``test`` extra) and npm ``mixpanel`` (installed into a
temporary folder once per session) are used as shipped. Both speak HTTPS
only (the Python ``Consumer`` builds ``https://{api_host}/track``; the Node
SDK refuses its API secret over http), so the server serves TLS with a
certificate made for the test, and each SDK trusts its CA through the
standard setting: ``REQUESTS_CA_BUNDLE`` (requests) and
``NODE_EXTRA_CA_CERTS`` (Node). Only the host is changed: ``api_host`` and
``host``. Everything is read back through eventyard's read API.

Issue 22, done when: "tests install its official SDK from PyPI … and … from
npm …, drive it against a real eventyard server with only the host (or base
URL) changed, and read the result back through ``/api/v1``: every call type
the SDK offers, a flush of 1,000 events, identify and alias, and a contact
first seen through Netcore receiving the events of the same person."
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mixpanel import BufferedConsumer, Consumer, Mixpanel, MixpanelException
from mixpanel.credentials import ServiceAccountCredentials

from eventyard.core.model import NewAccount
from tests.support import (
    Server,
    activities_of,
    identifier_pairs,
    identity_events,
    npm_install,
    read_contact,
    running_server,
    tls_files,
    upload_netcore_event,
)

BULK = 1000
CLIENT_SCRIPT = Path(__file__).with_name("mixpanel_client.js")
NPM_PACKAGE = "mixpanel@0.24.0"


@pytest.fixture(scope="module")
def tls_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """eventyard serving HTTPS with a certificate signed by a CA made for the test."""
    folder = tmp_path_factory.mktemp("mixpanel-tls")
    with running_server(database_url, folder / "server.log", tls=tls_files(folder)) as srv:
        yield srv


@pytest.fixture
def http(tls_server: Server) -> Iterator[httpx.Client]:
    assert tls_server.ca is not None
    trust = ssl.create_default_context(cafile=str(tls_server.ca))
    with httpx.Client(base_url=tls_server.base_url, verify=trust, timeout=30) as client:
        yield client


@pytest.fixture
def trusted(tls_server: Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """The server's ``host:port``, with requests trusting its CA (``REQUESTS_CA_BUNDLE``)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_server.ca))
    return tls_server.base_url.removeprefix("https://")


def uid(prefix: str = "sdk") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --- the Python SDK ------------------------------------------------------


class TestPythonSdk:
    def test_every_call_type(self, http: httpx.Client, account: NewAccount, trusted: str) -> None:
        """``track``, ``import_data`` (legacy API secret), ``merge`` (service account),
        every ``people_*`` call, and the ``group_*`` calls, refused as documented."""
        mp = Mixpanel(account.mixpanel_project_token, consumer=Consumer(api_host=trusted))
        user, other = uid(), uid()
        mp.track(user, "Signed Up", {"plan": "pro", "nested": {"a": [1, 2]}})
        month_ago = int(time.time()) - 30 * 86400
        mp.import_data(
            None, user, "Old Purchase", month_ago, {"sku": "X1"},
            api_secret=account.mixpanel_api_secret,
        )  # fmt: skip
        mp.people_set(user, {"$email": "Sdk@Example.com", "plan": "pro", "gone": 1})
        mp.people_set_once(user, {"plan": "free", "first_seen": "today"})
        mp.people_increment(user, {"logins": 2})
        mp.people_increment(user, {"logins": 1})
        mp.people_append(user, {"tags": "a"})
        mp.people_union(user, {"tags": ["a", "b"]})
        mp.people_remove(user, {"tags": "a"})
        mp.people_unset(user, ["gone"])
        mp.people_track_charge(user, 9.5, {"sku": "X1"})
        mp.people_set(other, {"doomed": True})
        mp.people_delete(other)

        found = read_contact(http, account, f"identity:{user}")
        attributes = found["attributes"]
        assert attributes["plan"] == "pro"
        assert attributes["first_seen"] == "today"
        assert attributes["logins"] == 3
        assert attributes["tags"] == ["b"]
        assert "gone" not in attributes
        assert attributes["$transactions"][0]["$amount"] == 9.5
        assert ("email", "sdk@example.com") in identifier_pairs(found)
        mp.people_clear_charges(user)
        assert "$transactions" not in read_contact(http, account, f"identity:{user}")["attributes"]
        assert read_contact(http, account, f"identity:{other}")["attributes"] == {}

        stored = {a["name"]: a for a in activities_of(http, account, f"identity:{user}")}
        assert set(stored) == {"Signed Up", "Old Purchase"}
        assert stored["Signed Up"]["source"] == "python"
        assert stored["Signed Up"]["properties"]["nested"] == {"a": [1, 2]}
        assert stored["Old Purchase"]["properties"]["sku"] == "X1"

        # merge(): /import with a service account (Basic username:secret, ?project_id=).
        anon = uid("anon")
        mp.track(f"$device:{anon}", "Browse", {"$device_id": anon})
        service = ServiceAccountCredentials("sa-user", account.mixpanel_api_secret, "1")
        merger = Mixpanel(
            account.mixpanel_project_token,
            consumer=Consumer(api_host=trusted, credentials=service),
        )
        merger.merge(None, user, f"$device:{anon}")
        merged = read_contact(http, account, f"identity:{user}")
        assert ("anonid", anon) in identifier_pairs(merged)
        assert [e["kind"] for e in identity_events(http, account, merged["id"])] == ["merged"]

        # Group profiles are not contacts: each update is refused in Mixpanel's shape.
        for call in (
            lambda: mp.group_set("company", "acme", {"size": 10}),
            lambda: mp.group_set_once("company", "acme", {"size": 10}),
            lambda: mp.group_union("company", "acme", {"tags": ["x"]}),
            lambda: mp.group_remove("company", "acme", {"tags": "x"}),
            lambda: mp.group_unset("company", "acme", ["size"]),
            lambda: mp.group_delete("company", "acme"),
        ):
            with pytest.raises(MixpanelException, match="group company=acme"):
                call()

    def test_identify_and_alias(
        self, http: httpx.Client, account: NewAccount, trusted: str
    ) -> None:
        """``$identify`` and ``$create_alias`` sent with ``track``: the SDK's ``alias()``
        "always uses a fresh default Consumer()", i.e. api.mixpanel.com, whatever host
        it was given, so it cannot be pointed anywhere (docs/dialects/mixpanel.md)."""
        mp = Mixpanel(account.mixpanel_project_token, consumer=Consumer(api_host=trusted))
        anon, user, alias = uid("anon"), uid(), uid("alias")
        mp.track(anon, "Landing", {"$device_id": anon})
        mp.track(user, "$identify", {"$identified_id": user, "$anon_id": anon})
        mp.track(user, "$create_alias", {"alias": alias})
        mp.track(alias, "Purchase")
        found = read_contact(http, account, f"identity:{user}")
        assert identifier_pairs(found) == {
            ("identity", user),
            ("anonid", anon),
            ("identity", alias),
        }
        names = sorted(a["name"] for a in activities_of(http, account, f"identity:{alias}"))
        assert names == ["Landing", "Purchase"]

    def test_a_buffered_flush_of_1000_events(
        self, http: httpx.Client, account: NewAccount, trusted: str
    ) -> None:
        """``BufferedConsumer`` "sends ``data=[obj,obj,...]`` (JSON array, ≤ 50 per flush)"."""
        consumer = BufferedConsumer(api_host=trusted, max_size=50)
        mp = Mixpanel(account.mixpanel_project_token, consumer=consumer)
        user = uid()
        for i in range(BULK):
            mp.track(user, "Bulk", {"i": i})
        consumer.flush()
        stored = activities_of(http, account, f"identity:{user}")
        assert sorted(a["properties"]["i"] for a in stored) == list(range(BULK))

    def test_a_contact_first_seen_through_netcore(
        self, http: httpx.Client, account: NewAccount, trusted: str
    ) -> None:
        user = uid()
        upload_netcore_event(http, account, user)
        first = read_contact(http, account, f"identity:{user}")
        mp = Mixpanel(account.mixpanel_project_token, consumer=Consumer(api_host=trusted))
        mp.track(user, "Checkout", {"total": 12})
        mp.people_set(user, {"tier": "gold"})
        after = read_contact(http, account, f"identity:{user}")
        assert after["id"] == first["id"]
        assert after["attributes"]["tier"] == "gold"
        dialects = sorted(a["dialect"] for a in activities_of(http, account, f"identity:{user}"))
        assert dialects == ["mixpanel", "netcore"]


# --- the Node SDK ----------------------------------------------------------


@pytest.fixture(scope="session")
def mixpanel_modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``node_modules`` holding the real ``mixpanel`` package, installed once."""
    folder = tmp_path_factory.mktemp("mixpanel-npm")
    return npm_install(folder, NPM_PACKAGE, "Mixpanel npm SDK")


def run_node(
    modules: Path, server: Server, account: NewAccount, calls: list[Any], tmp_path: Path
) -> list[Any]:
    """Run ``calls`` ([method path, args...]) through the Node SDK; each call's error or null."""
    calls_file = tmp_path / "calls.json"
    calls_file.write_text(json.dumps(calls))
    run = subprocess.run(
        [
            "node",
            str(CLIENT_SCRIPT),
            str(modules),
            server.base_url.removeprefix("https://"),
            account.mixpanel_project_token,
            account.mixpanel_api_secret,
            str(calls_file),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NODE_EXTRA_CA_CERTS": str(server.ca)},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    results: list[Any] = json.loads(run.stdout)
    return results


class TestNodeSdk:
    def test_every_call_type_identify_and_alias(
        self,
        http: httpx.Client,
        account: NewAccount,
        tls_server: Server,
        mixpanel_modules: Path,
        tmp_path: Path,
    ) -> None:
        """The Node SDK's single calls go as ``GET ?data=<base64>&verbose=0`` and want a
        bare ``1``; its batches as a ``data=<base64>`` form; its API secret as Basic."""
        user, other, anon, alias = uid(), uid(), uid("anon"), uid("alias")
        month_ago_ms = (int(time.time()) - 30 * 86400) * 1000
        batch_properties = {"distinct_id": user, "time": month_ago_ms, "$insert_id": uid("in")}
        calls: list[Any] = [
            ["track", "Signed Up", {"distinct_id": user, "plan": "pro"}],
            ["import", "Old Purchase", month_ago_ms, {"distinct_id": user, "sku": "N1"}],
            ["import_batch", [{"event": "Batch Import", "properties": batch_properties}]],
            ["people.set", user, {"$email": "node@example.com", "plan": "pro", "gone": 1}],
            ["people.set_once", user, {"plan": "free", "first_seen": "today"}],
            ["people.increment", user, {"logins": 3}],
            ["people.append", user, {"tags": "a"}],
            ["people.union", user, {"tags": ["a", "b"]}],
            ["people.remove", user, {"tags": "a"}],
            ["people.unset", user, ["gone"]],
            ["people.track_charge", user, 5, {"sku": "N1"}],
            ["people.set", other, {"doomed": True}],
            ["people.delete_user", other],
            ["track", "Landing", {"distinct_id": anon, "$device_id": anon}],
            ["track", "$identify", {"distinct_id": user, "$identified_id": user, "$anon_id": anon}],
            ["alias", user, alias],
            ["track", "Purchase", {"distinct_id": alias}],
            ["groups.set", "company", "acme", {"size": 10}],
            ["groups.delete_group", "company", "acme"],
        ]
        results = run_node(mixpanel_modules, tls_server, account, calls, tmp_path)
        assert results[:-2] == [None] * (len(calls) - 2), results
        # Group updates are refused; without verbose the SDK sees the bare "0".
        assert results[-2:] == ["Mixpanel Server Error: 0"] * 2

        found = read_contact(http, account, f"identity:{user}")
        attributes = found["attributes"]
        assert attributes["plan"] == "pro"
        assert attributes["first_seen"] == "today"
        assert attributes["logins"] == 3
        assert attributes["tags"] == ["b"]
        assert "gone" not in attributes
        assert attributes["$transactions"][0]["$amount"] == 5
        assert identifier_pairs(found) == {
            ("identity", user),
            ("email", "node@example.com"),
            ("anonid", anon),
            ("identity", alias),
        }
        assert read_contact(http, account, f"identity:{other}")["attributes"] == {}
        stored = {a["name"]: a for a in activities_of(http, account, f"identity:{alias}")}
        assert set(stored) == {"Signed Up", "Old Purchase", "Batch Import", "Landing", "Purchase"}
        assert stored["Signed Up"]["source"] == "node"
        assert stored["Old Purchase"]["occurred_at"].startswith(
            time.strftime("%Y-%m-%d", time.gmtime(month_ago_ms / 1000))
        )

    def test_a_track_batch_of_1000_and_a_netcore_contact(
        self,
        http: httpx.Client,
        account: NewAccount,
        tls_server: Server,
        mixpanel_modules: Path,
        tmp_path: Path,
    ) -> None:
        """``track_batch`` "sends events in batches" of 50 (``data=<base64>`` forms)."""
        user = uid()
        upload_netcore_event(http, account, user)
        first = read_contact(http, account, f"identity:{user}")
        events = [
            {"event": "Bulk", "properties": {"distinct_id": user, "i": i}} for i in range(BULK)
        ]
        calls = [["track_batch", events]]
        results = run_node(mixpanel_modules, tls_server, account, calls, tmp_path)
        assert results == [None]
        stored = activities_of(http, account, f"identity:{user}")
        assert read_contact(http, account, f"identity:{user}")["id"] == first["id"]
        bulk = sorted(a["properties"]["i"] for a in stored if a["dialect"] == "mixpanel")
        assert bulk == list(range(BULK))
        assert [a["dialect"] for a in stored].count("netcore") == 1
