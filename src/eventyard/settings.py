"""Configuration: ``EVENTYARD_*`` environment variables, nothing else.

Every field has a description; ``docs/settings.md`` lists them all and a test
fails when one is missing there.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from eventyard.core.netguard import parse_allowlist


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EVENTYARD_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./eventyard.db",
        description=(
            "Where data lives. The default is a SQLite file ./eventyard.db; a "
            "postgresql://user@host:port/db URL selects PostgreSQL."
        ),
    )
    host: str = Field(default="127.0.0.1", description="Address `eventyard serve` listens on.")
    port: int = Field(
        default=8080, ge=1, le=65535, description="Port `eventyard serve` listens on."
    )
    workers: int = Field(
        default=0,
        ge=0,
        description=(
            "Server processes `eventyard serve` starts; `0` lets it choose for the machine "
            "and name the count and why in its first log line."
        ),
    )
    db_pool_size: int = Field(
        default=10, ge=1, description="Database connections kept open per server process."
    )
    db_connect_timeout_seconds: int = Field(
        default=5,
        ge=1,
        description=(
            "How long to wait for a new PostgreSQL connection before answering 503 "
            "with Retry-After."
        ),
    )
    db_pool_timeout_seconds: float = Field(
        default=10,
        gt=0,
        description=(
            "How long a request waits for a free pooled connection before answering 503 "
            "with Retry-After."
        ),
    )
    database_prepared_statements: bool = Field(
        default=True,
        description=(
            "Whether PostgreSQL connections prepare the statements they run often (psycopg "
            "does after 5 runs). Turn it off behind a pooler in transaction mode that does "
            "not track prepared statements (PgBouncer before 1.21, or without "
            "max_prepared_statements)."
        ),
    )
    read_database_url: str = Field(
        default="",
        description=(
            "PostgreSQL read replicas (one URL or several, comma-separated) that serve the "
            "reads which tolerate a replica's lag: the read API, listings, exports and the "
            "console. Empty: every read goes to database_url. Not for SQLite."
        ),
    )
    read_max_lag_seconds: float = Field(
        default=5.0,
        gt=0,
        description=(
            "How far behind the primary a read replica may be and still serve reads; a "
            "replica further behind, or down, is skipped for the primary until it catches up."
        ),
    )
    read_check_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How often each server process checks its read replicas' state and lag.",
    )
    group_commit: bool = Field(
        default=True,
        description=(
            "Whether concurrent small ingest requests of a server process share one "
            "transaction (one commit, one fsync); each is answered only after that commit."
        ),
    )
    group_commit_max_records: int = Field(
        default=10,
        ge=1,
        description=(
            "Largest request, in records, that joins a group commit; larger ones commit alone."
        ),
    )
    group_commit_max_requests: int = Field(
        default=200,
        ge=1,
        description="Most requests stored in one group commit.",
    )
    sqlite_synchronous: Literal["FULL", "NORMAL"] = Field(
        default="FULL",
        description=(
            "SQLite synchronous mode. FULL (default) makes every acknowledged write survive "
            "a power cut; NORMAL is faster but may lose the last commits on power loss."
        ),
    )
    sqlite_busy_timeout_ms: int = Field(
        default=30_000,
        ge=0,
        description="How long a SQLite writer waits for the write lock before answering 503.",
    )
    max_body_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        description="Largest request body accepted on ingest endpoints; larger bodies get 413.",
    )
    body_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Time allowed to receive a whole request body; slower clients get 408.",
    )
    idempotency_ttl_seconds: int = Field(
        default=24 * 3600,
        ge=1,
        description="How long an Idempotency-Key and its first response are remembered.",
    )
    idempotency_purge_interval_seconds: float = Field(
        default=600,
        gt=0,
        description="How often each server process deletes expired Idempotency-Keys.",
    )
    auth_cache_seconds: float = Field(
        default=30,
        ge=0,
        description=(
            "How long each server process remembers a credential no request has presented; "
            "while remembered (and rechecked every credential_check_seconds) it is answered "
            "without a database round trip. 0 checks the database on every request."
        ),
    )
    credential_check_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description=(
            "How often each server process asks the database whether the credentials it "
            "remembers are still live (and their accounts' settings). A revoked or expired "
            "credential is refused by every process within twice this."
        ),
    )
    rate_limit_per_second: float = Field(
        default=100,
        ge=0,
        description=(
            "Requests per second each API key may make on average on any dialect's endpoints, "
            "counted per server process; more get 429 with Retry-After. 0 turns the limit off."
        ),
    )
    rate_limit_burst: int = Field(
        default=500,
        ge=1,
        description="Requests an API key may make at once before rate_limit_per_second applies.",
    )
    run_worker: bool = Field(
        default=True,
        description=(
            "Whether each server process also runs one background job worker. Turn it off "
            "(`eventyard serve --no-worker`) when separate `eventyard worker` processes run "
            "the jobs."
        ),
    )
    worker_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description=(
            "How often an idle job worker looks for due jobs; a job enqueued by the same "
            "process wakes its worker at once."
        ),
    )
    job_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description=(
            "How long a claimed job stays a worker's without a heartbeat (sent every third "
            "of it); after that another worker takes the job over."
        ),
    )
    job_retry_base_seconds: float = Field(
        default=2.0,
        gt=0,
        description=(
            "Base of the exponential backoff of a failing job: after its n-th failed "
            "attempt it waits this times 2^n seconds (at most an hour) before the next."
        ),
    )
    export_dir: str = Field(
        default="./eventyard-exports",
        description=(
            "Directory where export jobs write their files (one folder per account). "
            "API servers and workers must see the same directory."
        ),
    )
    retention_interval_seconds: float = Field(
        default=3600,
        gt=0,
        description=(
            "How often the job workers purge activities older than their account's "
            "retention (and create the coming months' partitions on PostgreSQL); across "
            "processes the purge job is enqueued about once per interval."
        ),
    )
    url_allowlist: str = Field(
        default="",
        description=(
            "Comma-separated CIDR networks (127.0.0.1/32,10.0.0.0/8) that CSV paths and "
            "callbacks may reach although they are loopback, private or link-local; empty "
            "allows public addresses only."
        ),
    )
    import_max_bytes: int = Field(
        default=1024**3,
        ge=1,
        description="Largest CSV file a contact import reads; a larger one fails the import.",
    )
    import_chunk_rows: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description=(
            "Rows of a contact import or activity backfill written per transaction: each "
            "chunk commits with the job's progress, and a resumed job goes on after it."
        ),
    )
    import_busy_share: float = Field(
        default=0.3,
        gt=0,
        le=1,
        description=(
            "While the server receives ingest requests, the share of time a contact import "
            "or backfill run by the server's own job worker may take: after each chunk it "
            "pauses for the rest. 1 never pauses."
        ),
    )
    fetch_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Connect and read timeout of CSV downloads and callbacks: the longest wait for "
            "a connection or for the next bytes."
        ),
    )
    import_local_files: bool = Field(
        default=False,
        description=(
            "Whether a bulk upload `path` may name a file on the server (an absolute path "
            "or file:// URL). The CLI's `contacts import` always may."
        ),
    )
    s3_endpoint_url: str = Field(
        default="",
        description=(
            "S3 endpoint for s3:// paths (an S3-compatible store); empty uses AWS. "
            "Credentials come from the usual AWS_* variables."
        ),
    )
    smtp_host: str = Field(
        default="",
        description="SMTP server for notification e-mails; empty refuses `notifyemail`.",
    )
    smtp_port: int = Field(default=25, ge=1, le=65535, description="Port of the SMTP server.")
    smtp_username: str = Field(
        default="", description="SMTP login user; empty sends without logging in."
    )
    smtp_password: str = Field(default="", description="SMTP login password.")
    smtp_starttls: bool = Field(
        default=False, description="Whether to upgrade the SMTP connection with STARTTLS."
    )
    smtp_from: str = Field(
        default="eventyard@localhost", description="From address of notification e-mails."
    )
    console_session_hours: float = Field(
        default=12,
        gt=0,
        description=(
            "How long a web console sign-in lasts; after it the console asks for the "
            "admin token again."
        ),
    )
    secret_key: str = Field(
        default="",
        description=(
            "Key that encrypts destination credentials at rest (any long random string; "
            "several, comma-separated, decrypt and the first encrypts, to rotate it). Empty: "
            "the instance keeps a key of its own in its database (instance_secrets)."
        ),
    )
    destination_workers: int = Field(
        default=2,
        ge=0,
        description=(
            "Delivery threads per process that runs workers (each server process with "
            "EVENTYARD_RUN_WORKER, each `eventyard worker`); each delivers one lane at a "
            "time. 0 delivers nothing in that process."
        ),
    )
    destination_batch_size: int = Field(
        default=1000,
        ge=1,
        le=10_000,
        description=(
            "Most activities one delivery takes from a lane; the destination's kind splits "
            "them into requests within its receiver's own limits."
        ),
    )
    destination_linger_seconds: float = Field(
        default=1.0,
        ge=0,
        description=(
            "How long a lane's waiting activities may wait for a full batch before a "
            "delivery takes them: under load deliveries carry full batches."
        ),
    )
    destination_busy_share: float = Field(
        default=0.3,
        gt=0,
        le=1,
        description=(
            "While the server process receives ingest requests, the share of time each of "
            "its delivery threads may take: after a delivery it pauses for the rest, so that "
            "acknowledging ingest comes first. A delivery whose oldest activity waited "
            "destination_catch_up_seconds or more never pauses. 1 never pauses; "
            "`eventyard worker` processes never pause."
        ),
    )
    destination_catch_up_seconds: float = Field(
        default=5.0,
        ge=0,
        description=(
            "Deliveries whose oldest activity has waited this long go at full speed even "
            "while the server receives ingest (see destination_busy_share): what bounds "
            "the lag of a destination under sustained ingest."
        ),
    )
    destination_lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description=(
            "How long a delivery stays its worker's while it is being sent; a worker that "
            "died is replaced after that (the delivery is sent again, with the same "
            "Idempotency-Key)."
        ),
    )
    destination_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Connect and read timeout of one request to a destination.",
    )
    destination_retry_base_seconds: float = Field(
        default=1.0,
        gt=0,
        description=(
            "Wait after a delivery's first failed attempt; it doubles after each further "
            "one (with jitter), up to destination_retry_max_seconds."
        ),
    )
    destination_retry_max_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Longest wait between two attempts of a failing delivery (Retry-After aside).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Lowest level of the JSON log lines written to stderr."
    )

    @model_validator(mode="after")
    def _replicas_are_postgresql(self) -> Settings:
        """Read replicas are PostgreSQL streaming replicas of a PostgreSQL primary."""
        if not self.read_database_url.strip():
            return self
        if not self.database_url.startswith(("postgresql", "postgres")):
            raise ValueError(
                "read_database_url (EVENTYARD_READ_DATABASE_URL) needs a PostgreSQL "
                "database_url: SQLite has no read replicas"
            )
        for url in self.read_database_url.split(","):
            if url.strip() and not url.strip().startswith(("postgresql", "postgres")):
                raise ValueError(
                    f"read_database_url: {url.strip().split('@')[-1]!r} is not a postgresql:// URL"
                )
        return self

    @field_validator("url_allowlist")
    @classmethod
    def _allowlist_is_cidr(cls, value: str) -> str:
        """A typo in the allow-list stops the server at startup, not the first import."""
        parse_allowlist(value)  # ValueError names the bad entry
        return value
