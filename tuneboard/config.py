"""One Settings object, read from ``TUNEBOARD_*`` environment variables.

Defaults are the embedded ones: SQLite and kombu's SQLAlchemy transport under
``TUNEBOARD_HOME`` (default ``./.tuneboard/``), so a laptop needs no servers.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from limits import parse_many
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# What TUNEBOARD_ARTIFACT_URL may name besides a plain directory.
ARTIFACT_SCHEMES = ("file", "s3")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TUNEBOARD_", extra="ignore")

    home: Path = Path(".tuneboard")
    database_url: str = ""
    broker_url: str = ""
    environment: str = Field(default="local", pattern="^(local|production|test)$")

    heartbeat_interval_s: float = Field(default=10.0, gt=0)
    grace_period_s: float = Field(default=60.0, gt=0)
    reaper_interval_s: float = Field(default=15.0, gt=0)
    # How long a running trial waits for an unreachable database before it fails.
    db_outage_s: float = Field(default=60.0, ge=0)
    # An external trial (run by a client over HTTP) is lost when it neither reports nor beats
    # for this long; each report or heartbeat extends its lease by as much.
    lease_s: float = Field(default=60.0, gt=0)
    # Redis redelivers an unacknowledged task after this; it must outlast any trial.
    visibility_timeout_s: int = Field(default=7 * 24 * 3600, gt=0)
    broker_polling_interval_s: float = Field(default=0.05, gt=0)
    # What a request may spend on the broker: a connect or a publish past this fails, is logged,
    # and leaves the trial to the reaper. After a failure the API stops trying for
    # ``broker_publish_backoff_s``, so a broker that is down costs later requests nothing.
    broker_publish_timeout_s: float = Field(default=1.0, gt=0, le=30)
    broker_publish_backoff_s: float = Field(default=5.0, ge=0)

    # Rate limits (``limits`` notation: "600/minute", several separated by ";"). Per API key, per
    # client address, and per address for requests whose key is missing or wrong.
    rate_limit_per_key: str = "600/minute"
    rate_limit_per_address: str = "1200/minute"
    rate_limit_auth_failures: str = "10/minute"
    # Where the counters live: memory:// (one process) or redis://... shared by every API
    # process; by default the broker's Redis when the broker is Redis, else memory.
    rate_limit_storage_url: str = ""
    # Per-team caps: trials running at once (0: no cap), studies created per hour.
    max_running_trials_per_team: int = Field(default=0, ge=0)
    max_studies_per_hour: int = Field(default=0, ge=0)

    max_body_bytes: int = 1024 * 1024
    max_page_size: int = 500
    sqlite_busy_timeout_ms: int = 30_000

    # Each process's pool on PostgreSQL: it opens connections as its threads need them and holds
    # at most db_pool_size + db_max_overflow (keeping db_pool_size open when idle). A worker
    # process uses three at most (the trial, its report writer, its heartbeat); the API one per
    # request in flight, waiting for a free one beyond the cap.
    db_pool_size: int = Field(default=4, ge=1)
    db_max_overflow: int = Field(default=4, ge=0)
    # True behind PgBouncer in transaction mode without prepared-statement tracking (before 1.21,
    # or max_prepared_statements = 0): a statement psycopg prepared on one server connection
    # would be missing on the next, so psycopg prepares none.
    db_pgbouncer: bool = False

    # Where checkpoints are kept: a local directory (by default TUNEBOARD_HOME/checkpoints) or
    # s3://bucket/prefix, shared by every worker host so that a retry resumes anywhere.
    artifact_url: str = ""
    # The S3 endpoint (MinIO, ...); empty: AWS_ENDPOINT_URL, else AWS itself.
    artifact_s3_endpoint: str = ""

    @field_validator("rate_limit_per_key", "rate_limit_per_address", "rate_limit_auth_failures")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError as err:
            raise ValueError(f"{value!r} is not a rate limit such as '600/minute': {err}") from err
        return value

    @field_validator("artifact_url")
    @classmethod
    def _artifact_url(cls, value: str) -> str:
        scheme, sep, rest = value.partition("://")
        if sep and (scheme not in ARTIFACT_SCHEMES or not rest.strip("/")):
            raise ValueError(
                f"{value!r} is neither a directory nor s3://bucket/prefix "
                f"(schemes: {', '.join(ARTIFACT_SCHEMES)})"
            )
        return value

    @model_validator(mode="after")
    def _fill_embedded_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.home / 'tuneboard.db').resolve()}"
        if not self.broker_url:
            self.broker_url = f"sqla+sqlite:///{(self.home / 'broker.db').resolve()}"
        if not self.rate_limit_storage_url:
            redis_broker = self.broker_url.startswith(("redis://", "rediss://"))
            self.rate_limit_storage_url = self.broker_url if redis_broker else "memory://"
        if not self.artifact_url:
            self.artifact_url = str(self.checkpoint_root)
        if self.environment == "production" and self.database_url.startswith("sqlite"):
            raise ValueError("production needs TUNEBOARD_DATABASE_URL pointing at PostgreSQL")
        if self.heartbeat_interval_s >= self.grace_period_s:
            raise ValueError("TUNEBOARD_GRACE_PERIOD_S must exceed TUNEBOARD_HEARTBEAT_INTERVAL_S")
        return self

    @property
    def checkpoint_root(self) -> Path:
        return (self.home / "checkpoints").resolve()

    @property
    def api_key_file(self) -> Path:
        return self.home / "api-key"


@lru_cache
def get_settings() -> Settings:
    return Settings()
