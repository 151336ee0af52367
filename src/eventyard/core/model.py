"""The canonical records every dialect translates to and from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from eventyard.core.identifiers import DEFAULT_PRIMARY_KINDS, Identifier

ContactStatus = Literal["known", "anonymous"]

#: Activities older than this when received do not trigger journeys (Netcore:
#: "If timestamp passed ... is more than 24hrs old, it wont trigger a journey").
JOURNEY_WINDOW = timedelta(hours=24)

#: The credential kinds an account holds, one per dialect plus the admin token.
CREDENTIAL_KINDS = ("admin", "netcore", "cordial", "ortto", "clevertap")


@dataclass(frozen=True, slots=True)
class NewActivity:
    """One activity as a dialect hands it to the ingest service."""

    identifiers: tuple[Identifier, ...]
    name: str
    occurred_at: datetime
    source: str
    dialect: str
    properties: dict[str, Any]
    asset_id: str | None = None
    dedup_key: str | None = None


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    name: str
    settings: dict[str, Any]
    created_at: datetime

    @property
    def primary_kinds(self) -> tuple[str, ...]:
        """Identifier kinds in the order that settles a conflict between contacts."""
        configured = self.settings.get("primary_kinds")
        if configured:
            return tuple(str(kind) for kind in configured)
        return DEFAULT_PRIMARY_KINDS


@dataclass(frozen=True, slots=True)
class Contact:
    id: str
    status: ContactStatus
    identifiers: tuple[Identifier, ...]
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Activity:
    id: str
    contact_id: str
    name: str
    occurred_at: datetime
    received_at: datetime
    source: str
    dialect: str
    asset_id: str | None
    journey_eligible: bool
    properties: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ActivityPage:
    activities: list[Activity]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What one ingest call stored."""

    stored: int
    duplicates: int = 0
    skipped: int = 0
    contacts_created: int = 0
    contact_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A response as it was first sent, kept for idempotent replays."""

    status_code: int
    body: bytes
    media_type: str = "application/json"
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class NewAccount:
    """An account and its credentials in clear text, shown once at creation."""

    account: Account
    admin_token: str
    netcore_api_key: str
    cordial_api_key: str
    ortto_api_key: str
    clevertap_account_id: str
    clevertap_passcode: str
