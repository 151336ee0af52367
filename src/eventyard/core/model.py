"""The canonical records every dialect translates to and from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from eventyard.core.account_settings import (
    DEFAULT_AUTO_CREATE_DEFINITIONS,
    DEFAULT_DEDUP_WINDOW_HOURS,
    DEFAULT_ORTTO_MERGE_STRATEGY,
    DEFAULT_RETENTION_DAYS,
)
from eventyard.core.identifiers import DEFAULT_PRIMARY_KINDS, Identifier

ContactStatus = Literal["known", "anonymous"]
#: How a profile update treats a contact that already exists: ``overwrite``
#: every given attribute, ``fill_empty`` only attributes it lacks (missing,
#: null or ""), or ``create_only``: attributes are set on a contact the update
#: creates and an existing contact is left as it is. The others change each
#: given attribute by its value (``core.profiles.apply_update`` says how):
#: ``unset`` removes it, ``increment`` adds a number to it, ``append`` /
#: ``prepend`` add values to its list, ``append_missing`` /
#: ``prepend_missing`` only the values it lacks, ``remove`` takes values out;
#: ``clear`` removes every attribute the contact has.
MergeStrategy = Literal[
    "overwrite",
    "fill_empty",
    "create_only",
    "unset",
    "increment",
    "append",
    "prepend",
    "append_missing",
    "prepend_missing",
    "remove",
    "clear",
]
JobStatus = Literal["queued", "running", "completed", "failed"]

#: Activities older than this when received do not trigger journeys (Netcore:
#: "If timestamp passed ... is more than 24hrs old, it wont trigger a journey").
JOURNEY_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class ContactHint:
    """A contact id a client names directly (CleverTap ``objectId``, Ortto ``person_id``).

    When the account has a contact with this id the record goes to it (to the
    contact that absorbed it, after a merge). Otherwise ``fallback``, an
    ordinary identifier, is used instead; without a fallback the record is
    rejected as naming an unknown contact.
    """

    contact_id: str
    fallback: Identifier | None = None


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
    contact_hint: ContactHint | None = None
    #: Where it happened, as the client described it (never geolocated).
    location: dict[str, Any] | None = None
    #: Conversion value in thousandths of the currency unit (5000 is 5.00).
    value_milli: int | None = None
    #: What the sending library said about the circumstances (Segment
    #: ``context``, ``integrations``, ``_metadata``), kept as sent.
    context: dict[str, Any] | None = None
    #: The client's id of the message (Segment ``messageId``): a second
    #: message with the same id within the account's dedup window is dropped,
    #: whatever its timestamp.
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class ProfileUpdate:
    """Attributes to merge into a contact (shallow: each key replaces the stored one).

    The contact is found or created from ``identifiers``/``contact_hint`` like
    an activity's. A ``None`` value is stored as null, not a deletion.
    """

    identifiers: tuple[Identifier, ...]
    attributes: dict[str, Any]
    dialect: str
    contact_hint: ContactHint | None = None
    strategy: MergeStrategy = "overwrite"
    #: As :attr:`NewActivity.message_id`.
    message_id: str | None = None
    #: An alias's earlier id (Segment ``previousId``), among ``identifiers`` as
    #: an anonymous id: stored as a user id (``identity``) instead when a
    #: contact already has that user id, or an earlier record of the batch
    #: names it. Settled inside the write transaction.
    alias_of: str | None = None
    #: Identifiers of a person the client asks to merge into this update's
    #: contact (Customer.io ``merge_customers``, Mixpanel ``$merge``, PostHog
    #: ``$merge_dangerously``): their owner is merged into it, known or not,
    #: as by ``POST /api/v1/contacts/{id}/merge`` (revertible, audited); those
    #: nobody owns are given to it.
    absorbs: tuple[Identifier, ...] = ()


@dataclass(frozen=True, slots=True)
class GroupMembership:
    """The contact found from ``identifiers`` belongs to ``group_id`` (Segment ``group``).

    ``traits`` are the group's; they are merged into what the membership
    already holds (each key replaces the stored one).
    """

    identifiers: tuple[Identifier, ...]
    group_id: str
    traits: dict[str, Any]
    dialect: str
    contact_hint: ContactHint | None = None
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class EventTypeLimits:
    """Per-account limits of the event type registry, as a dialect's vendor sets them.

    ``reserved_names`` are the vendor's system events: they count against
    ``max_types`` although clients never send them.
    """

    max_types: int
    max_properties_per_type: int
    reserved_names: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class IngestRules:
    """Rules a dialect's vendor applies to activities beyond the registry limits.

    ``require_definitions``: an activity needs a declared definition (Ortto
    "ensure the activity definition exists") and may only carry its fields;
    accounts may let a first use create the definition. ``daily_limit``: at
    most this many activities of one name per contact in 24 hours (Ortto: 50).
    """

    require_definitions: bool = False
    daily_limit: int | None = None
    #: Recognise each property's type on first use per activity name and flag
    #: later values of another type as not searchable (Cordial: "If a
    #: different data type is passed to an already recognized property, that
    #: new data will not be searchable").
    recognize_types: bool = False


@dataclass(frozen=True, slots=True)
class RecordRejection:
    """A record the service refused while storing the others."""

    index: int  # position in the records handed to the service
    #: "event_type_limit" | "event_property_limit" | "unknown_contact" |
    #: "undefined_activity" | "undefined_field" | "daily_limit"
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class RecordsOutcome:
    """What ``ingest_records`` did with each record."""

    stored_activities: int
    updated_profiles: int
    rejected: list[RecordRejection]
    #: The contact of each record, ``None`` for a rejected one.
    contact_ids: list[str | None]
    dry_run: bool = False
    #: Contacts this call created (the others named existing contacts).
    created_contacts: frozenset[str] = frozenset()
    #: The job that will store the records this call queued, if any.
    job_id: str | None = None


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    name: str
    settings: dict[str, Any]
    created_at: datetime
    #: Key of the HMAC signatures on the account's outgoing callbacks (shown to its admin).
    signing_secret: str | None = None

    @property
    def primary_kinds(self) -> tuple[str, ...]:
        """Identifier kinds in the order that settles a conflict between contacts."""
        configured = self.settings.get("primary_kinds")
        if configured:
            return tuple(str(kind) for kind in configured)
        return DEFAULT_PRIMARY_KINDS

    # The settings below are checked when they are set (core/account_settings.py);
    # an account that never set one gets the default.

    @property
    def auto_create_definitions(self) -> bool:
        """Whether an unknown Ortto activity_id creates its definition on first use."""
        return bool(self.settings.get("auto_create_definitions", DEFAULT_AUTO_CREATE_DEFINITIONS))

    @property
    def ortto_merge_strategy(self) -> int:
        """Ortto ``merge_strategy`` when a request has none: 1 append, 2 overwrite, 3 ignore."""
        return int(self.settings.get("ortto_merge_strategy") or DEFAULT_ORTTO_MERGE_STRATEGY)

    @property
    def retention_days(self) -> int:
        """How many days the account's activities are kept."""
        return int(self.settings.get("retention_days") or DEFAULT_RETENTION_DAYS)

    @property
    def dedup_window_hours(self) -> int:
        """How long a message id (Segment ``messageId``) refuses a second message."""
        return int(self.settings.get("dedup_window_hours") or DEFAULT_DEDUP_WINDOW_HOURS)


@dataclass(frozen=True, slots=True)
class Contact:
    id: str
    status: ContactStatus
    identifiers: tuple[Identifier, ...]
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ActivityDefinition:
    """An activity an account declared, with its attribute fields and their types.

    ``fields`` maps a field id (``str:cm:product-name``, ``int::v``) to its
    type (``str``, ``int``, ``bol``, ``dtz``, ``obj``).
    """

    activity_id: str
    name: str
    fields: dict[str, str]
    auto_created: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Job:
    """A durable piece of background work and what became of it."""

    id: str
    account_id: str | None
    kind: str
    queue: str | None
    status: JobStatus
    payload: dict[str, Any]
    progress: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    attempts: int
    max_attempts: int
    run_after: datetime
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None


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
    location: dict[str, Any] | None = None
    value_milli: int | None = None
    #: Property keys whose value's type differs from the type first recognised
    #: for that key of this activity name; stored, but not searchable.
    unsearchable: tuple[str, ...] = ()
    context: dict[str, Any] | None = None
    #: Provenance: the identifier that resolved the activity to its contact
    #: (``core.identity.resolving_identifier``).
    resolved_by: Identifier | None = None


@dataclass(frozen=True, slots=True)
class ContactGroup:
    """A group a contact belongs to, with the group's traits."""

    group_id: str
    traits: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Erasure:
    """The audit record of a contact erased on request: what was removed, never who.

    ``contact_ids`` are eventyard's random ids of the erased person (the
    contact and every contact merged into it); ``removed`` counts what went,
    by kind (``activities``, ``identifiers``, ``export_rows`` …).
    """

    id: str
    account_id: str
    contact_ids: tuple[str, ...]
    requested_via: str
    removed: dict[str, int]
    erased_at: datetime


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
    """An account and its credentials in clear text, shown once at creation.

    ``secrets`` names each one as ``accounts create --json`` prints it
    (``admin_token``, and each dialect's, such as ``netcore_api_key``); they
    read as attributes too (``created.netcore_api_key``).
    """

    account: Account
    secrets: Mapping[str, str]

    @property
    def admin_token(self) -> str:
        return self.secrets["admin_token"]

    def __getattr__(self, name: str) -> str:
        try:
            return self.secrets[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass(frozen=True)
class ReplicaStatus:
    """A read replica as last checked: ``ok`` (serves reads), ``lagging`` (further
    behind than allowed), ``down`` (unreachable) or ``unknown`` (not checked yet)."""

    name: str
    state: str
    lag_seconds: float | None
