"""The schema as SQLAlchemy Core tables. Migrations are the only way it changes."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from eventyard.storage.types import UTCDateTime, json_type

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = String(24)


def _contact_fk() -> ForeignKeyConstraint:
    """A row of a contact, removed with it: ``(account_id, contact_id)`` -> contacts."""
    return ForeignKeyConstraint(
        ["account_id", "contact_id"], ["contacts.account_id", "contacts.id"], ondelete="CASCADE"
    )


accounts = Table(
    "accounts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("settings", json_type(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # Key for the HMAC signatures of outgoing callbacks; kept in clear text
    # because signing needs it (shown to the account's admin).
    Column("signing_secret", String(64)),
)

# One row per credential. Secrets are stored as SHA-256 digests: they are
# random 32-byte tokens, so a fast hash is enough and allows an indexed lookup;
# the digest found is then compared again in constant time. A revoked or
# expired credential keeps its row (the console and the API list it).
credentials = Table(
    "credentials",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(32), nullable=False),
    # The secret's first characters, to recognise it by (NULL: issued before
    # credentials had one).
    Column("prefix", String(32)),
    Column("name", String(200)),
    # Sent beside the secret by some dialects (CleverTap's account id).
    Column("public_id", String(64)),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # Written at most once a minute per credential, by each process's
    # credential check rather than by the request that used it.
    Column("last_used_at", UTCDateTime()),
    Column("expires_at", UTCDateTime()),
    Column("revoked_at", UTCDateTime()),
    UniqueConstraint("secret_hash"),
    Index(None, "account_id", "kind"),
)

# Every table holding account data has a primary key that starts with
# ``account_id`` and references contacts by ``(account_id, contact_id)``: the
# schema can be distributed by account (docs/scaling.md, "Distribution by
# account"; tests/integration/test_distribution_keys.py).
contacts = Table(
    "contacts",
    metadata,
    Column("id", ID, nullable=False),
    Column("account_id", ID, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attributes", json_type(), nullable=False),
    # Set when an anonymous contact was merged into another; such a contact
    # owns no identifiers any more and is never returned by the read API.
    Column("merged_into", ID),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("account_id", "id"),
    # Contacts are looked up and joined by id alone too.
    Index(None, "id"),
    Index(None, "account_id", "created_at"),
    Index(
        None,
        "merged_into",
        postgresql_where=text("merged_into IS NOT NULL"),
        sqlite_where=text("merged_into IS NOT NULL"),
    ),
)

contact_identifiers = Table(
    "contact_identifiers",
    metadata,
    Column("account_id", ID, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("value", String(512), nullable=False),
    Column("contact_id", ID, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("account_id", "kind", "value"),
    _contact_fk(),
    Index(None, "contact_id"),
)

# On PostgreSQL range-partitioned by month of ``occurred_at``
# (storage/partitions.py), which makes the primary key ``(account_id, id,
# occurred_at)`` there; on SQLite it is ``(account_id, id)``. Either way ``id``
# is unique.
activities = Table(
    "activities",
    metadata,
    Column("id", ID, nullable=False),
    Column("account_id", ID, nullable=False),
    Column("contact_id", ID, nullable=False),
    Column("name", String(255), nullable=False),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("source", String(32), nullable=False),
    Column("dialect", String(32), nullable=False),
    Column("asset_id", String(255)),
    Column("journey_eligible", Boolean(), nullable=False),
    Column("properties", json_type(), nullable=False),
    Column("dedup_key", String(255)),
    # Where the activity happened, as the client described it (Ortto
    # ``location``: source_ip, custom place, postal address). No geolocation.
    Column("location", json_type()),
    # The conversion value in thousandths of the currency unit (Ortto
    # ``int::v``: 5000 is 5.00); exact, so sums never drift.
    Column("value_milli", BigInteger()),
    # Property keys whose value's type differs from the type first recognised
    # for that key of this activity name (Cordial: "that new data will not be
    # searchable"); None when every value has its recognised type.
    Column("unsearchable", json_type()),
    # What the sending library said about the circumstances (Segment
    # ``context``, ``integrations``, ``_metadata``), kept as sent.
    Column("context", json_type()),
    # Provenance: the identifier that resolved the activity to its contact
    # (core.identity.resolving_identifier), or ``@contact`` and the contact id
    # the record named. Reverting a merge and splitting a contact move
    # activities by it. NULL only for a record that named nothing.
    Column("resolved_kind", String(40)),
    Column("resolved_value", String(512)),
    PrimaryKeyConstraint("account_id", "id"),
    Index(None, "account_id", "contact_id", "occurred_at", "id"),
    Index(None, "account_id", "occurred_at", "id"),
    Index(None, "account_id", "name", "occurred_at", "id"),
    # Includes ``occurred_at`` because a partitioned table's unique indexes
    # must contain the partition key; every dedup key is derived from the
    # activity's timestamp, so this refuses the same duplicates.
    Index(
        "uq_activities_account_id_dedup_key",
        "account_id",
        "dedup_key",
        "occurred_at",
        unique=True,
        postgresql_where=text("dedup_key IS NOT NULL"),
        sqlite_where=text("dedup_key IS NOT NULL"),
    ),
)

# The identity audit: every conversion, merge, conflict, revert and split,
# newest last. A merge's ``details.snapshot`` holds what it moved (the merged
# contact's identifiers, attributes and memberships, the survivor's attributes
# before), which is what reverting it restores.
identity_events = Table(
    "identity_events",
    metadata,
    Column("id", ID, nullable=False),
    Column("account_id", ID, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("contact_id", ID, nullable=False),
    Column("other_contact_ids", json_type(), nullable=False),
    Column("identifiers", json_type(), nullable=False),
    Column("details", json_type(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("account_id", "id"),
    Index(None, "account_id", "contact_id"),
)

# The event type registry: names and property keys each account has used.
event_types = Table(
    "event_types",
    metadata,
    Column("account_id", ID, nullable=False),
    Column("name", String(255), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("account_id", "name"),
)

event_type_properties = Table(
    "event_type_properties",
    metadata,
    Column("account_id", ID, nullable=False),
    Column("event_name", String(255), nullable=False),
    Column("property", String(255), nullable=False),
    # The type first seen for this property of this event (``string``,
    # ``integer``, ``number``, ``boolean``, ``object``, ``array``); None where
    # the dialect does not recognise types.
    Column("value_type", String(16)),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("account_id", "event_name", "property"),
)

# Declared activity definitions (Ortto): the attribute fields an activity may
# carry and their types, ``{"str:cm:product-name": "str", "int::v": "int"}``.
activity_definitions = Table(
    "activity_definitions",
    metadata,
    Column("account_id", ID, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("activity_id", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("fields", json_type(), nullable=False),
    # True when the first activity using it created it (account setting).
    Column("auto_created", Boolean(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("account_id", "activity_id"),
)

# Durable background work. A worker claims a row by setting its lease; a
# lease that runs out (the worker died) lets another worker take the job
# again. Jobs sharing a ``queue`` run one at a time, in id order.
jobs = Table(
    "jobs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id", ondelete="CASCADE")),
    Column("kind", String(64), nullable=False),
    Column("queue", String(128)),
    Column("status", String(16), nullable=False),
    Column("payload", json_type(), nullable=False),
    Column("progress", json_type(), nullable=False),
    Column("result", json_type()),
    Column("error", String(2000)),
    Column("attempts", Integer(), nullable=False),
    Column("max_attempts", Integer(), nullable=False),
    Column("run_after", UTCDateTime(), nullable=False),
    Column("lease_owner", String(128)),
    Column("lease_expires_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("started_at", UTCDateTime()),
    Column("finished_at", UTCDateTime()),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index(None, "status", "run_after"),
    Index(None, "queue", "id"),
    Index(None, "account_id", "created_at"),
)

# Contact lists (Netcore ``listid``): integer ids, unique names per account.
lists = Table(
    "lists",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("account_id", ID, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("account_id", "name"),
)

list_members = Table(
    "list_members",
    metadata,
    Column("list_id", Integer(), ForeignKey("lists.id", ondelete="CASCADE"), nullable=False),
    Column("contact_id", ID, nullable=False),
    Column("account_id", ID, nullable=False),
    Column("added_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("account_id", "list_id", "contact_id"),
    _contact_fk(),
    Index(None, "contact_id"),
)

# Events received per hour, by dialect and activity name: what the console's
# overview charts without scanning activities. Each ingest transaction adds
# its own rows (insert only, so concurrent batches never wait for one counter
# row); maintenance folds the rows of past hours into one per key.
activity_counts = Table(
    "activity_counts",
    metadata,
    Column("id", ID, nullable=False),
    Column("account_id", ID, nullable=False),
    Column("hour", UTCDateTime(), nullable=False),
    Column("dialect", String(32), nullable=False),
    Column("name", String(255), nullable=False),
    Column("count", BigInteger(), nullable=False),
    PrimaryKeyConstraint("account_id", "id"),
    Index(None, "account_id", "hour"),
)

# Requests (or records of a partly accepted batch) a dialect refused, for an
# account it could authenticate: what the console shows as ingest errors.
# ``errors`` keeps the first few ``{"index", "field", "message"}``.
ingest_rejections = Table(
    "ingest_rejections",
    metadata,
    Column("id", ID, nullable=False),
    Column("account_id", ID, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("dialect", String(32), nullable=False),
    Column("route", String(200), nullable=False),
    Column("status_code", Integer(), nullable=False),
    Column("rejected_records", Integer(), nullable=False),
    Column("errors", json_type(), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("account_id", "id"),
    Index(None, "account_id", "received_at"),
)

# Message ids already stored (Segment ``messageId``): the dedup key that does
# not depend on the activity's timestamp, which a retried message may change
# (``sentAt`` moves). Rows older than the account's dedup window are purged.
message_ids = Table(
    "message_ids",
    metadata,
    Column("account_id", ID, nullable=False),
    Column("message_id", String(255), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("account_id", "message_id"),
    Index(None, "received_at"),
)

# Group membership (Segment ``group``): a contact belongs to a group, which
# carries traits of its own.
contact_groups = Table(
    "contact_groups",
    metadata,
    Column("account_id", ID, nullable=False),
    Column("contact_id", ID, nullable=False),
    Column("group_id", String(255), nullable=False),
    Column("traits", json_type(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("account_id", "contact_id", "group_id"),
    _contact_fk(),
    Index(None, "contact_id"),
    Index(None, "account_id", "group_id"),
)

# Signed-in console sessions. The cookie carries a random token signed with
# the instance secret; the row (keyed by the token's SHA-256) makes sign-out
# and expiry real on every server process.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    # The credential the session signed in with: its kind says what the
    # session may do, and revoking it ends the session.
    Column("credential_id", ID),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Index(None, "account_id"),
    Index(None, "expires_at"),
)

# Secrets of this installation shared by every process (the console's cookie
# signing key), created once on first use.
instance_secrets = Table(
    "instance_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(128), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("account_id", ID, nullable=False),
    Column("key", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("status_code", Integer(), nullable=False),
    Column("media_type", String(100), nullable=False),
    Column("body", LargeBinary(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("account_id", "key"),
    Index(None, "created_at"),
)

__all__ = [
    "accounts",
    "activities",
    "activity_counts",
    "activity_definitions",
    "console_sessions",
    "contact_groups",
    "contact_identifiers",
    "contacts",
    "credentials",
    "destination_dead_letters",
    "destination_deliveries",
    "destination_outbox",
    "destinations",
    "event_type_properties",
    "event_types",
    "idempotency_keys",
    "identity_events",
    "ingest_rejections",
    "instance_secrets",
    "jobs",
    "list_members",
    "lists",
    "message_ids",
    "metadata",
]

# Contacts erased on request (right to erasure): what was removed, never who.
# ``contact_ids`` are eventyard's own random ids; no identifier, attribute or
# property of the erased contact is kept here or anywhere else.
erasures = Table(
    "erasures",
    metadata,
    Column("id", ID, nullable=False),
    Column("account_id", ID, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("contact_ids", json_type(), nullable=False),
    Column("requested_via", String(16), nullable=False),
    Column("removed", json_type(), nullable=False),
    Column("erased_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("account_id", "id"),
    Index(None, "account_id", "erased_at"),
)

# Where an account's activities are delivered (services/destinations). The
# credentials are encrypted (Fernet) with EVENTYARD_SECRET_KEY or the
# instance's own key; ``delivered`` and ``failed_attempts`` are running counts.
destinations = Table(
    "destinations",
    metadata,
    Column("account_id", ID, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("id", ID, nullable=False),
    Column("name", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("credentials", Text(), nullable=False),
    Column("filter", json_type(), nullable=False),
    Column("enabled", Boolean(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("delivered", BigInteger(), nullable=False),
    Column("failed_attempts", BigInteger(), nullable=False),
    Column("last_delivery_at", UTCDateTime()),
    Column("last_error", String(2000)),
    PrimaryKeyConstraint("account_id", "id"),
)

# The transactional outbox: one row per activity waiting for a destination,
# written in the transaction that stores the activity (ids only; the activity
# is read when it is delivered). ``lane`` is a hash of the contact: a lane's
# rows go one delivery at a time, in order. ``delivery_id`` is set when a
# delivery claims the row, and the row goes when the delivery settles it.
destination_outbox = Table(
    "destination_outbox",
    metadata,
    Column("account_id", ID, nullable=False),
    Column("destination_id", ID, nullable=False),
    Column("activity_id", ID, nullable=False),
    # The activity's partition key on PostgreSQL: the join finds its row at once.
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("lane", Integer(), nullable=False),
    # History sent again (replay, backfill): after the lane's live rows.
    Column("replay", Boolean(), nullable=False),
    Column("queued_at", UTCDateTime(), nullable=False),
    Column("delivery_id", ID),
    PrimaryKeyConstraint("account_id", "destination_id", "activity_id"),
    ForeignKeyConstraint(
        ["account_id", "destination_id"],
        ["destinations.account_id", "destinations.id"],
        name="fk_destination_outbox_destination",
        ondelete="CASCADE",
    ),
    Index(
        "ix_destination_outbox_lane",
        "account_id",
        "destination_id",
        "lane",
        "replay",
        "activity_id",
    ),
    Index("ix_destination_outbox_delivery", "account_id", "destination_id", "delivery_id"),
)

# A claimed batch of one lane: its outbox rows are fixed when it is claimed,
# so every attempt sends the same activities with the same delivery id. One
# open delivery per lane keeps a contact's activities in order.
destination_deliveries = Table(
    "destination_deliveries",
    metadata,
    Column("account_id", ID, nullable=False),
    Column("id", ID, nullable=False),
    Column("destination_id", ID, nullable=False),
    Column("lane", Integer(), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("lease_owner", String(200)),
    Column("lease_expires_at", UTCDateTime()),
    Column("last_error", String(2000)),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("account_id", "id"),
    UniqueConstraint("account_id", "destination_id", "lane", name="uq_destination_deliveries_lane"),
    ForeignKeyConstraint(
        ["account_id", "destination_id"],
        ["destinations.account_id", "destinations.id"],
        name="fk_destination_deliveries_destination",
        ondelete="CASCADE",
    ),
    Index(None, "next_attempt_at"),
)

# Activities a destination refused for good, with the receiver's answer.
destination_dead_letters = Table(
    "destination_dead_letters",
    metadata,
    Column("account_id", ID, nullable=False),
    Column("destination_id", ID, nullable=False),
    Column("activity_id", ID, nullable=False),
    Column("status", Integer()),
    Column("reason", String(2000), nullable=False),
    Column("answer", Text()),
    Column("dead_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("account_id", "destination_id", "activity_id"),
    ForeignKeyConstraint(
        ["account_id", "destination_id"],
        ["destinations.account_id", "destinations.id"],
        name="fk_destination_dead_letters_destination",
        ondelete="CASCADE",
    ),
    Index("ix_destination_dead_letters_dead_at", "account_id", "destination_id", "dead_at"),
)
