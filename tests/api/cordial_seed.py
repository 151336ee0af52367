"""What the Cordial listing and export tests share: Basic auth, contacts made
through POST, and activities stored straight through the storage layer.

Reserved actions (``open``, ``click`` …) cannot be POSTed ("Reserved actions
cannot be added via the POST method"), and tens of thousands of activities
would take minutes over HTTP, so tests write those rows the way ingest does
(``services/ingest/records.py`` ``activity_row``) in a few multi-row statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from eventyard.core.ids import new_id
from eventyard.core.model import NewAccount
from eventyard.storage.database import Database

LIST = "/v2/contactactivities"
EXPORT = "/v2/contactactivityexport"
#: Rows per INSERT when seeding.
SEED_BATCH = 10_000


def auth(account: NewAccount) -> tuple[str, str]:
    """HTTP Basic: the Cordial API key as user name, an empty password."""
    return (account.cordial_api_key, "")


def at(text: str) -> datetime:
    """An aware UTC datetime from ISO 8601 text (``Z`` allowed)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def post_activity(
    http: httpx.Client,
    account: NewAccount,
    a: str = "browse",
    *,
    ats: str | None = None,
    properties: dict[str, Any] | None = None,
    **identifiers: str,
) -> str:
    """POST one activity (``email`` by default); the contact id (``cID``) it went to."""
    body: dict[str, Any] = {"a": a, **(identifiers or {"email": "msmith@example.com"})}
    if ats is not None:
        body["ats"] = ats
    if properties is not None:
        body["properties"] = properties
    r = http.post(LIST, json=body, auth=auth(account))
    assert r.status_code == 200, r.text
    contact_id: str = r.json()["cID"]
    return contact_id


def seed(
    store: Database,
    account: NewAccount,
    contact_id: str,
    activities: Sequence[tuple[str, datetime] | tuple[str, datetime, dict[str, Any]]],
) -> list[str]:
    """Store ``(name, occurred_at[, properties])`` activities of a contact; their ids, in order."""
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = [
        {
            "id": new_id(),
            "account_id": account.account.id,
            "contact_id": contact_id,
            "name": item[0],
            "occurred_at": item[1],
            "received_at": now,
            "source": "api",
            "dialect": "cordial",
            "journey_eligible": False,
            "dedup_key": None,
            "properties": item[2] if len(item) > 2 else {},
        }
        for item in activities
    ]
    for start in range(0, len(rows), SEED_BATCH):
        with store.unit_of_work() as uow:
            uow.activities.insert(rows[start : start + SEED_BATCH])
            uow.commit()
    return [str(row["id"]) for row in rows]


def listing(
    http: httpx.Client, account: NewAccount, params: Any = None, *, url: str = LIST
) -> list[dict[str, Any]]:
    """A GET's JSON array (a paging object first when there is more); it must answer 200."""
    r = http.get(url, params=params, auth=auth(account))
    assert r.status_code == 200, r.text
    body: list[dict[str, Any]] = r.json()
    return body


def records(body: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The activity records of a GET's answer, without its paging object."""
    return [item for item in body if "paging" not in item]


def every_record(
    http: httpx.Client, account: NewAccount, params: Any = None
) -> list[dict[str, Any]]:
    """Every record of a listing, following the ``next`` links as given."""
    found: list[dict[str, Any]] = []
    body = listing(http, account, params)
    while True:
        found.extend(records(body))
        if not body or "paging" not in body[0]:
            return found
        body = listing(http, account, url=body[0]["paging"]["next"])
