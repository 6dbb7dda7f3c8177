"""One Settings object, read from ``TUNEBOARD_*`` environment variables.

Defaults are the embedded ones: SQLite and kombu's SQLAlchemy transport under
``TUNEBOARD_HOME`` (default ``./.tuneboard/``), so a laptop needs no servers.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TUNEBOARD_", extra="ignore")

    home: Path = Path(".tuneboard")
    database_url: str = ""
    broker_url: str = ""
    environment: str = Field(default="local", pattern="^(local|production|test)$")

    heartbeat_interval_s: float = Field(default=10.0, gt=0)
    grace_period_s: float = Field(default=60.0, gt=0)
    reaper_interval_s: float = Field(default=15.0, gt=0)
    # Redis redelivers an unacknowledged task after this; it must outlast any trial.
    visibility_timeout_s: int = Field(default=7 * 24 * 3600, gt=0)
    broker_polling_interval_s: float = Field(default=0.05, gt=0)

    max_body_bytes: int = 1024 * 1024
    max_page_size: int = 500
    sqlite_busy_timeout_ms: int = 30_000

    @model_validator(mode="after")
    def _fill_embedded_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.home / 'tuneboard.db').resolve()}"
        if not self.broker_url:
            self.broker_url = f"sqla+sqlite:///{(self.home / 'broker.db').resolve()}"
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
