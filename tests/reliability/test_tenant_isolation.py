"""Every route of the OpenAPI document, called with another account's credentials.

Issue 9: "every canonical API route and every dialect route tested for
cross-tenant access with another account's credentials (expect 401/404,
never data)". A victim account holds a contact with a secret attribute,
activities, a list, an activity definition, an export and an import job.
An intruder account then calls every route with its own valid credentials
of the route's kind, naming the victim's ids and identifiers; and every
route once without credentials. No answer may carry the victim's contact
id, secret or job ids, and the victim's data is unchanged afterwards.

``test_every_route_of_the_openapi_document_has_a_case`` keeps the table
complete: a route added without a case here fails it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from eventyard.core.model import NewAccount
from eventyard.dialects.registry import create_account
from eventyard.storage.database import Database
from tests.support import admin, find_contact

#: Routes anyone may call: no account's data behind them.
PUBLIC = {("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics")}


@dataclass
class Victim:
    account: NewAccount
    email: str
    secret: str
    contact_id: str
    list_id: int
    export_job: str
    definition: str
    #: The id of the victim's Netcore key.
    credential: str
    #: The id of the victim's webhook destination.
    destination: str
    #: The identity event of a merge into the victim's contact.
    merge_event: str

    def ids(self) -> dict[str, str]:
        return {
            "contact_id": self.contact_id,
            "list_id": str(self.list_id),
            "job_id": self.export_job,
            "activity_id": self.definition,
            "credential_id": self.credential,
            "destination_id": self.destination,
            "event_id": self.merge_event,
            # Customer.io names a contact by its id as cio_<id>.
            "identifier": f"cio_{self.contact_id}",
            "device_id": "victim-device",
        }

    def secrets(self) -> list[str]:
        """What no answer to another account may contain."""
        return [
            self.secret,
            self.contact_id,
            self.export_job,
            self.account.account.id,
            self.credential,
            self.destination,
        ]


def credentials(kind: str, account: NewAccount) -> dict[str, Any]:
    """``httpx`` keyword arguments authenticating ``account`` the way ``kind`` does."""
    if kind == "admin":
        return {"headers": admin(account)}
    if kind == "netcore":
        return {"headers": {"api-key": account.netcore_api_key}}
    if kind == "apiv2":
        return {
            "params": {
                "type": "contact",
                "activity": "bulkupload",
                "apikey": account.netcore_api_key,
            }
        }
    if kind == "clevertap":
        return {
            "headers": {
                "X-CleverTap-Account-Id": account.clevertap_account_id,
                "X-CleverTap-Passcode": account.clevertap_passcode,
            }
        }
    if kind == "ortto":
        return {"headers": {"X-Api-Key": account.ortto_api_key}}
    if kind == "cordial":
        return {"auth": (account.cordial_api_key, "")}
    if kind == "segment":
        return {"auth": (account.segment_write_key, "")}
    if kind == "mixpanel":
        # The project token travels inside each record: a form ``data`` in the query,
        # one record that is an event (/track) and a profile update (/engage) at once.
        token = account.mixpanel_project_token
        record = {
            "event": "Intrude",
            "properties": {"token": token, "distinct_id": "intruder"},
            "$token": token,
            "$distinct_id": "intruder",
            "$set": {"intruded": True},
        }
        return {"params": {"data": json.dumps([record])}}
    if kind == "mixpanel_import":
        return {"auth": (account.mixpanel_api_secret, "")}
    if kind == "customerio":
        return {"auth": (account.customerio_site_id, account.customerio_api_key)}
    if kind == "amplitude":
        # Travels in the body: ``call`` puts it there as ``api_key``.
        return {"body_key": account.amplitude_api_key}
    if kind == "posthog":
        # The project API key travels in the body: ``call`` merges ``body`` into it.
        return {"body": {"api_key": account.posthog_api_key}}
    raise AssertionError(kind)


@dataclass(frozen=True)
class Case:
    """How to call one route as the intruder; ``body`` and ``params`` may name the victim."""

    kind: str
    body: Callable[[Victim], Any] | None = None
    params: Callable[[Victim], dict[str, str]] | None = None
    data: Callable[[Victim], dict[str, str]] | None = None
    #: Statuses the intruder may get (a 2xx only where it acts on its own account).
    allowed: tuple[int, ...] = (401, 404)
    #: What a request without a valid credential of the route's kind gets (Amplitude's
    #: key travels in the body, and a missing or unknown one is its 400).
    refused: tuple[int, ...] = (401,)


def _netcore(v: Victim) -> Any:
    return [
        {
            "asset_id": "x",
            "activity_name": "Intrude",
            "timestamp": "2026-01-01T00:00:00Z",
            "identity": v.email,
            "activity_source": "web",
            "activity_params": {"email": v.email},
        }
    ]


def _mixpanel_import(v: Victim) -> dict[str, Any]:
    properties = {"distinct_id": v.email, "time": 1767225600, "$insert_id": uuid.uuid4().hex}
    return {"event": "Intrude", "properties": properties}


def _webhook(name: str) -> dict[str, Any]:
    """A destination to a host that does not resolve here: nothing is ever delivered."""
    return {
        "name": name,
        "kind": "webhook",
        "url": "https://hooks.invalid/eventyard",
        "credentials": {"secret": "victim-webhook-secret"},
    }


OWN_WRITE = (200, 202)
CASES: dict[tuple[str, str], Case] = {
    ("get", "/api/v1/contacts"): Case(
        "admin", params=lambda v: {"identifier": f"identity:{v.email}"}, allowed=(200,)
    ),
    ("get", "/api/v1/contacts/{contact_id}"): Case("admin"),
    ("delete", "/api/v1/contacts/{contact_id}"): Case("admin"),
    ("get", "/api/v1/contacts/{contact_id}/activities"): Case("admin"),
    ("get", "/api/v1/contacts/{contact_id}/identity-events"): Case("admin"),
    # The victim's contact in the path, or named in the body by the intruder's own.
    ("post", "/api/v1/contacts/{contact_id}/merge"): Case(
        "admin", body=lambda v: {"contact_id": v.contact_id}
    ),
    ("post", "/api/v1/contacts/{contact_id}/split"): Case(
        "admin", body=lambda v: {"identifiers": [f"identity:{v.email}"]}
    ),
    ("post", "/api/v1/identity-events/{event_id}/revert"): Case("admin"),
    ("get", "/api/v1/erasures"): Case("admin", allowed=(200,)),
    ("get", "/api/v1/jobs/{job_id}"): Case("admin"),
    ("get", "/api/v1/jobs"): Case("admin", allowed=(200,)),
    ("get", "/api/v1/lists"): Case("admin", allowed=(200,)),
    ("post", "/api/v1/lists"): Case(
        "admin", body=lambda v: {"name": "Newsletter"}, allowed=(200, 201)
    ),
    ("get", "/api/v1/lists/{list_id}"): Case("admin"),
    ("get", "/api/v1/lists/{list_id}/contacts"): Case("admin"),
    ("get", "/api/v1/activity-definitions"): Case("admin", allowed=(200,)),
    ("post", "/api/v1/activity-definitions"): Case(
        "admin",
        body=lambda v: {"activity_id": v.definition + "-own", "name": "Mine", "fields": {}},
        allowed=(200, 201),
    ),
    ("get", "/api/v1/activity-definitions/{activity_id}"): Case("admin"),
    ("put", "/api/v1/activity-definitions/{activity_id}"): Case(
        "admin", body=lambda v: {"name": "Taken over", "fields": {}}
    ),
    ("delete", "/api/v1/activity-definitions/{activity_id}"): Case("admin"),
    ("get", "/api/v1/account"): Case("admin", allowed=(200,)),
    ("get", "/api/v1/credentials"): Case("admin", allowed=(200,)),
    ("post", "/api/v1/credentials"): Case(
        "admin", body=lambda v: {"kind": "netcore"}, allowed=(201,)
    ),
    ("delete", "/api/v1/credentials/{credential_id}"): Case("admin"),
    ("get", "/api/v1/destinations"): Case("admin", allowed=(200,)),
    ("post", "/api/v1/destinations"): Case("admin", body=lambda v: _webhook("own"), allowed=(201,)),
    ("get", "/api/v1/destinations/{destination_id}"): Case("admin"),
    ("patch", "/api/v1/destinations/{destination_id}"): Case(
        "admin", body=lambda v: {"enabled": False}
    ),
    ("delete", "/api/v1/destinations/{destination_id}"): Case("admin"),
    ("post", "/api/v1/destinations/{destination_id}/replay"): Case(
        "admin", body=lambda v: {"dead_letters": True}
    ),
    ("get", "/api/v1/destinations/{destination_id}/dead-letters"): Case("admin"),
    ("patch", "/api/v1/account/settings"): Case(
        "admin", body=lambda v: {"auto_create_definitions": True}, allowed=(200,)
    ),
    ("post", "/v1/activity/upload"): Case("netcore", body=_netcore, allowed=OWN_WRITE),
    # A loopback file is refused (SSRF guard) after the key is checked: no job.
    ("post", "/apiv2"): Case(
        "apiv2", data=lambda v: {"path": "http://127.0.0.1:9/c.csv"}, allowed=(400,)
    ),
    ("post", "/1/upload"): Case(
        "clevertap",
        body=lambda v: {
            "d": [{"identity": v.email, "ts": 1767225600, "type": "event", "evtName": "Intrude"}]
        },
        allowed=OWN_WRITE,
    ),
    ("post", "/v1/activities/create"): Case(
        "ortto",
        body=lambda v: {
            "activities": [
                {
                    "activity_id": v.definition,
                    "fields": {"str::email": v.email},
                    "merge_by": ["str::email"],
                }
            ]
        },
        allowed=(200, 400),  # the intruder's account has no such definition: refused
    ),
    ("get", "/v2/contactactivities"): Case(
        "cordial", params=lambda v: {"email": v.email}, allowed=(200,)
    ),
    ("post", "/v2/contactactivities"): Case(
        "cordial", body=lambda v: {"email": v.email, "a": "intrude"}, allowed=OWN_WRITE
    ),
    ("post", "/v2/contactactivityexport"): Case(
        "cordial", body=lambda v: {"format": "json"}, allowed=OWN_WRITE
    ),
    ("get", "/v2/jobs/{job_id}"): Case("cordial"),
    ("get", "/v2/contactactivityexport/{job_id}/download"): Case("cordial"),
    **{
        ("post", f"/v1/{call}"): Case(
            "segment",
            body=lambda v, call=call: {
                "userId": v.email,
                **({"event": "Intrude"} if call == "track" else {}),
                **({"groupId": "g1"} if call == "group" else {}),
                **({"previousId": v.email} if call == "alias" else {}),
            },
            allowed=(200,),
        )
        for call in ("identify", "track", "page", "screen", "group", "alias")
    },
    ("post", "/v1/batch"): Case(
        "segment",
        body=lambda v: {"batch": [{"type": "track", "userId": v.email, "event": "Intrude"}]},
        allowed=(200,),
    ),
    # /track, /engage, /groups: the token is in the records, which name the intruder's
    # own user; /groups refuses every update (200, "0").
    **{
        (method, f"/{path}"): Case("mixpanel", allowed=(200,))
        for method in ("get", "post")
        for path in ("track", "engage", "groups")
    },
    **{
        (method, "/import"): Case(
            "mixpanel_import",
            body=(lambda v: [_mixpanel_import(v)]) if method == "post" else None,
            params=(lambda v: {"data": json.dumps(_mixpanel_import(v))})
            if method == "get"
            else None,
            allowed=(200,),
        )
        for method in ("get", "post")
    },
    # Customer.io: cio_<the victim's contact id> names no contact of the intruder's
    # account, so the record is dropped (200 {}) and a deletion erases nothing.
    ("put", "/api/v1/customers/{identifier}"): Case(
        "customerio", body=lambda v: {"email": v.email, "plan": "intruder"}, allowed=(200,)
    ),
    ("delete", "/api/v1/customers/{identifier}"): Case(
        "customerio", body=lambda v: {}, allowed=(200,)
    ),
    ("post", "/api/v1/customers/{identifier}/events"): Case(
        "customerio", body=lambda v: {"name": "Intrude"}, allowed=(200,)
    ),
    ("put", "/api/v1/customers/{identifier}/devices"): Case(
        "customerio",
        body=lambda v: {"device": {"id": "t", "platform": "ios"}},
        allowed=(200,),
    ),
    ("delete", "/api/v1/customers/{identifier}/devices/{device_id}"): Case(
        "customerio", body=lambda v: {}, allowed=(200,)
    ),
    ("post", "/api/v1/customers/{identifier}/suppress"): Case(
        "customerio", body=lambda v: {}, allowed=(200,)
    ),
    ("post", "/api/v1/customers/{identifier}/unsuppress"): Case(
        "customerio", body=lambda v: {}, allowed=(200,)
    ),
    ("post", "/api/v1/events"): Case(
        "customerio", body=lambda v: {"name": "Intrude", "anonymous_id": v.email}, allowed=(200,)
    ),
    ("post", "/api/v1/merge_customers"): Case(
        "customerio",
        body=lambda v: {"primary": {"cio_id": v.contact_id}, "secondary": {"email": v.email}},
        allowed=(200,),
    ),
    ("post", "/api/v2/entity"): Case(
        "customerio",
        body=lambda v: {
            "type": "person",
            "identifiers": {"cio_id": v.contact_id},
            "action": "delete",
        },
        allowed=(200,),
    ),
    ("post", "/api/v2/batch"): Case(
        "customerio",
        body=lambda v: {
            "batch": [
                {"type": "person", "identifiers": {"cio_id": v.contact_id}, "action": "delete"},
                {
                    "type": "person",
                    "identifiers": {"cio_id": v.contact_id},
                    "action": "event",
                    "name": "Intrude",
                },
            ]
        },
        allowed=(207,),  # the event names no contact of the intruder's: refused by index
    ),
    **{
        ("post", path): Case(
            "amplitude",
            body=lambda v: {"events": [{"user_id": v.email, "event_type": "Intrude"}]},
            allowed=(200,),
            refused=(400,),
        )
        for path in ("/2/httpapi", "/batch")
    },
    ("post", "/identify"): Case(
        "amplitude",
        data=lambda v: {
            "identification": json.dumps({"user_id": v.email, "user_properties": {"note": "x"}})
        },
        allowed=(200,),
        refused=(400,),
    ),
    **{
        ("post", path): Case(
            "posthog",
            body=lambda v: {
                "batch": [{"event": "Intrude", "distinct_id": v.email, "$set": {"x": 1}}]
            },
            allowed=(200,),
        )
        # /batch is Amplitude's case above: a path shared by body, one case per path.
        for path in (
            "/batch/",
            "/capture",
            "/capture/",
            "/e",
            "/e/",
            "/i/v0/e",
            "/i/v0/e/",
        )
    },
}


@pytest.fixture
def victim(http: httpx.Client, account: NewAccount, database_url: str) -> Victim:
    token = uuid.uuid4().hex[:10]
    email, secret = f"victim.{token}@tenants.example.com", f"secret-{token}"
    r = http.post(
        "/v1/activity/upload",
        json=[
            {
                "asset_id": "x",
                "activity_name": "Purchase",
                "timestamp": "2026-01-01T00:00:00Z",
                "identity": email,
                "activity_source": "web",
                "activity_params": {"email": email, "note": secret},
            }
        ],
        headers={"api-key": account.netcore_api_key},
    )
    assert r.status_code == 200, r.text
    contact = find_contact(http, account, f"identity:{email}")
    assert contact is not None
    # A visitor known by a cookie, then merged into the victim: an identity event.
    for names in ({"anonid": f"cookie-{token}"}, {"anonid": f"cookie-{token}", "identity": email}):
        event = {
            "asset_id": "x",
            "activity_name": "Visit",
            "timestamp": "2026-01-01T00:00:00Z",
            "activity_source": "web",
            "activity_params": {},
            **names,
        }
        r = http.post(
            "/v1/activity/upload", json=[event], headers={"api-key": account.netcore_api_key}
        )
        assert r.status_code == 200, r.text
    r = http.get(f"/api/v1/contacts/{contact['id']}/identity-events", headers=admin(account))
    merge_event = next(e["id"] for e in r.json()["identity_events"] if e["kind"] == "merged")
    r = http.post("/api/v1/lists", json={"name": f"vip {token}"}, headers=admin(account))
    assert r.status_code in (200, 201), r.text
    list_id = int(r.json()["id"])
    definition = f"act:cm:victim-{token}"
    r = http.post(
        "/api/v1/activity-definitions",
        json={"activity_id": definition, "name": "Victim's", "fields": {}},
        headers=admin(account),
    )
    assert r.status_code in (200, 201), r.text
    r = http.post(
        "/v2/contactactivityexport", json={"format": "json"}, auth=(account.cordial_api_key, "")
    )
    assert r.status_code == 202, r.text
    export_job = r.json()["jobID"]
    r = http.get("/api/v1/credentials", headers=admin(account))
    credential = next(c["id"] for c in r.json()["credentials"] if c["kind"] == "netcore")
    r = http.post("/api/v1/destinations", json=_webhook("victim's"), headers=admin(account))
    assert r.status_code == 201, r.text
    destination = r.json()["id"]
    return Victim(
        account,
        email,
        secret,
        contact["id"],
        list_id,
        export_job,
        definition,
        credential,
        destination,
        merge_event,
    )


def call(
    http: httpx.Client, method: str, path: str, case: Case, victim: Victim, auth: dict[str, Any]
) -> httpx.Response:
    url = path.format(**victim.ids())
    params = {**(case.params(victim) if case.params else {}), **auth.pop("params", {})}
    body = case.body(victim) if case.body else None
    data = case.data(victim) if case.data else None
    key = auth.pop("body_key", None)
    if key is not None:
        body = {**body, "api_key": key} if isinstance(body, dict) else body
        data = {**data, "api_key": key} if data is not None else None
    if isinstance(body, dict):
        body = {**body, **auth.pop("body", {})}
    auth.pop("body", None)
    return http.request(
        method.upper(),
        url,
        json=body,
        data=data,
        params=params or None,
        **auth,
    )


def test_every_route_of_the_openapi_document_has_a_case(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    routes = {(m, p) for p, ops in document["paths"].items() for m in ops}
    assert routes - PUBLIC == set(CASES), {
        "without a case": sorted(routes - PUBLIC - set(CASES)),
        "no longer routes": sorted(set(CASES) - routes),
    }


def test_another_accounts_credentials_never_reach_the_victims_data(
    http: httpx.Client, store: Database, victim: Victim
) -> None:
    intruder = create_account(store, f"intruder-{uuid.uuid4().hex[:6]}")
    before = http.get(
        f"/api/v1/contacts/{victim.contact_id}/activities", headers=admin(victim.account)
    ).json()
    wrong = []
    for (method, path), case in CASES.items():
        r = call(http, method, path, case, victim, credentials(case.kind, intruder))
        leaked = [s for s in victim.secrets() if s in r.text or s in str(r.headers)]
        if r.status_code not in case.allowed or leaked:
            wrong.append((method, path, r.status_code, leaked, r.text[:200]))
    assert not wrong, wrong

    # Nothing of the victim changed: contact, activities, list, definition, jobs.
    r = http.get(f"/api/v1/contacts/{victim.contact_id}/activities", headers=admin(victim.account))
    assert r.json() == before
    assert find_contact(http, victim.account, f"identity:{victim.email}")["id"] == victim.contact_id
    r = http.get(f"/api/v1/activity-definitions/{victim.definition}", headers=admin(victim.account))
    assert r.status_code == 200
    assert r.json()["name"] == "Victim's"
    r = http.get(f"/api/v1/jobs/{victim.export_job}", headers=admin(victim.account))
    assert r.status_code == 200


def test_every_private_route_without_credentials_is_401(http: httpx.Client, victim: Victim) -> None:
    wrong = []
    for (method, path), case in CASES.items():
        r = call(http, method, path, case, victim, {})
        if r.status_code not in case.refused or any(s in r.text for s in victim.secrets()):
            wrong.append((method, path, r.status_code, r.text[:200]))
    assert not wrong, wrong


def test_a_key_of_another_dialect_is_refused_on_every_dialect_route(
    http: httpx.Client, victim: Victim
) -> None:
    """A valid key of the same account, but of another dialect, opens nothing."""
    wrong = []
    for (method, path), case in CASES.items():
        if case.kind == "admin":
            continue
        other = "cordial" if case.kind != "cordial" else "segment"
        auth = credentials(other, victim.account)
        if case.kind == "apiv2":
            auth["params"] = {"type": "contact", "activity": "bulkupload", "apikey": "x"}
        r = call(http, method, path, case, victim, auth)
        if r.status_code not in case.refused:
            wrong.append((method, path, r.status_code, r.text[:200]))
    assert not wrong, wrong
