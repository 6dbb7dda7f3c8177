"""The schema: one set of tables for teams, standards, studies, trials, metrics and audit.

Trial rows carry what Optuna's samplers need (params, distributions, values, attributes,
intermediate values) as JSON on the row, so one indexed read returns a whole trial. Per-epoch
metrics live in ``trial_metrics``: many named metrics per step, read only for curves.
Non-finite floats inside JSON are stored as the strings "nan", "inf", "-inf".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tuneboard.db.base import Base, utcnow

ROLES = ("viewer", "member", "maintainer", "admin")
STUDY_STATES = ("queued", "running", "completed", "cancelled", "failed")
TRIAL_STATES = ("waiting", "running", "complete", "pruned", "fail")
# Why a trial exists: drawn by the sampler within the budget, enqueued by a person, a retry of
# a trial whose worker was lost, or a re-run with another seed for a stability criterion.
TRIAL_ORIGINS = ("sampler", "manual", "retry", "stability", "optuna")
FINISHED_TRIAL_STATES = ("complete", "pruned", "fail")
STANDARD_STATUSES = ("active", "deprecated")


# Optuna's own data (attributes, params, values) must round-trip exactly, as in Optuna's
# RDBStorage: JSONB would reorder params and print 1e308 as an integer, so it is plain JSON.
OptunaJSON = JSON()


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    role: Mapped[str] = mapped_column(String(20))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)

    team: Mapped[Team] = relationship(lazy="joined")


class Standard(Base):
    __tablename__ = "standards"
    __table_args__ = (UniqueConstraint("team_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class StandardVersion(Base):
    """An immutable version of a standard; only ``status`` ever changes (to deprecated)."""

    __tablename__ = "standard_versions"
    __table_args__ = (
        UniqueConstraint("standard_id", "version"),
        CheckConstraint(_in("status", STANDARD_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    standard_id: Mapped[int] = mapped_column(ForeignKey("standards.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(20), default="active")
    author: Mapped[str] = mapped_column(String(200))
    changelog: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    standard: Mapped[Standard] = relationship(lazy="joined")


class Study(Base):
    __tablename__ = "studies"
    __table_args__ = (
        UniqueConstraint("team_id", "idempotency_key"),
        CheckConstraint(_in("state", STUDY_STATES), name="state"),
        Index(None, "team_id", "state", "id"),
        Index(None, "team_id", "name"),
        # Ids are never reused (SQLite would reuse max+1): caches key finished trials by id.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    # ``name`` is the team's name for the study and may repeat; ``optuna_name`` is Optuna's
    # study_name, unique in the store.
    name: Mapped[str] = mapped_column(String(255))
    optuna_name: Mapped[str] = mapped_column(String(512), unique=True)
    directions: Mapped[list[Any]]
    state: Mapped[str] = mapped_column(String(20), default="running")
    spec: Mapped[dict[str, Any] | None]
    spec_hash: Mapped[str | None] = mapped_column(String(64))
    standard_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("standard_versions.id", ondelete="SET NULL")
    )
    override_reason: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    user_attrs: Mapped[dict[str, Any]] = mapped_column(OptunaJSON, default=dict)
    system_attrs: Mapped[dict[str, Any]] = mapped_column(OptunaJSON, default=dict)
    next_trial_number: Mapped[int] = mapped_column(Integer, default=0)
    # Trials the sampler was asked for within budget.n_trials (kept by the dispatcher under
    # the study lock, so the budget check need not count the study's trials).
    sampler_trials: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)

    standard_version: Mapped[StandardVersion | None] = relationship(lazy="joined")


class Trial(Base):
    __tablename__ = "trials"
    __table_args__ = (
        UniqueConstraint("study_id", "number"),
        CheckConstraint(_in("state", TRIAL_STATES), name="state"),
        CheckConstraint(_in("origin", TRIAL_ORIGINS), name="origin"),
        Index(None, "study_id", "state", "value"),
        Index(None, "state", "heartbeat_at"),
        Index(
            "ix_trials_retries",
            "study_id",
            "retry_of",
            postgresql_where=text("retry_of IS NOT NULL"),
            sqlite_where=text("retry_of IS NOT NULL"),
        ),
        # The accepted-only leaderboard, ranked without scanning rejected trials. The predicate
        # is spelled as each dialect renders a bare boolean column, so the planners match it.
        Index(
            "ix_trials_accepted_leaderboard",
            "study_id",
            "value",
            postgresql_where=text("state = 'complete' AND accepted"),
            sqlite_where=text("state = 'complete' AND accepted = 1"),
        ),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20))
    # First objective value as a sortable column (NULL for NaN); ``values`` holds them all.
    value: Mapped[float | None] = mapped_column(Float)
    values: Mapped[list[Any] | None] = mapped_column(OptunaJSON)
    params: Mapped[dict[str, Any]] = mapped_column(OptunaJSON, default=dict)
    distributions: Mapped[dict[str, Any]] = mapped_column(OptunaJSON, default=dict)
    intermediate_values: Mapped[dict[str, Any]] = mapped_column(OptunaJSON, default=dict)
    user_attrs: Mapped[dict[str, Any]] = mapped_column(OptunaJSON, default=dict)
    system_attrs: Mapped[dict[str, Any]] = mapped_column(OptunaJSON, default=dict)
    datetime_start: Mapped[datetime | None] = mapped_column(DateTime)
    datetime_complete: Mapped[datetime | None] = mapped_column(DateTime)

    origin: Mapped[str] = mapped_column(String(20), default="optuna")
    seed: Mapped[int | None] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    retry_of: Mapped[int | None] = mapped_column(Integer)
    worker: Mapped[str | None] = mapped_column(String(255))
    device: Mapped[str | None] = mapped_column(String(50))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime)
    error: Mapped[str | None] = mapped_column(Text)
    epochs_run: Mapped[int] = mapped_column(Integer, default=0)
    checkpoint_path: Mapped[str | None] = mapped_column(String(1024))
    accepted: Mapped[bool | None] = mapped_column(Boolean)
    verdict: Mapped[dict[str, Any] | None]


class TrialMetric(Base):
    __tablename__ = "trial_metrics"

    trial_id: Mapped[int] = mapped_column(
        ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True
    )
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[float | None] = mapped_column(Float)


class AuditEntry(Base):
    """Append-only: rows are inserted, never updated or deleted by the application."""

    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "team_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    object_type: Mapped[str] = mapped_column(String(50))
    object_id: Mapped[str] = mapped_column(String(200))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
