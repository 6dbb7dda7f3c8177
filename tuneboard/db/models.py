"""The schema: one set of tables for teams, standards, studies, trials, metrics and audit.

Trial rows carry what Optuna's samplers need (params, distributions, values, attributes,
intermediate values) as JSON on the row, so one indexed read returns a whole trial. Per-epoch
metrics live in ``trial_metrics``: many named metrics per step, read only for curves.
Non-finite floats inside JSON are stored as the strings "nan", "inf", "-inf".
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

import orjson
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
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates
from sqlalchemy.types import TypeEngine

from tuneboard.db.base import Base, JSONDoc, StrEnumString, in_check, utcnow
from tuneboard.spec import Direction, StudySpec
from tuneboard.spec.states import StudyState, TrialOrigin, TrialState

ROLES = ("viewer", "member", "maintainer", "admin")
STANDARD_STATUSES = ("active", "deprecated")


# Optuna's own data (attributes, params, values) must round-trip exactly, as in Optuna's
# RDBStorage: JSONB would reorder params and print 1e308 as an integer, so it is plain JSON.
OptunaJSON = JSON()


class _Directions(TypeDecorator[list[Direction]]):
    """Each objective's direction as a JSON list of names; rows load them as ``Direction``."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(JSONB() if dialect.name == "postgresql" else JSON())

    def process_bind_param(
        self, value: Iterable[Direction | str] | None, dialect: Dialect
    ) -> list[str] | None:
        return None if value is None else [Direction(d).value for d in value]

    def process_result_value(self, value: list[str] | None, dialect: Dialect) -> list[Direction]:
        return [Direction(d) for d in value or []]


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint(in_check("role", ROLES), name="role"),)

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
        CheckConstraint(in_check("status", STANDARD_STATUSES), name="status"),
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
        CheckConstraint(in_check("state", StudyState), name="state"),
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
    directions: Mapped[list[Direction]] = mapped_column(_Directions)
    state: Mapped[StudyState] = mapped_column(
        StrEnumString(StudyState), default=StudyState.RUNNING
    )
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
    # Why the study ended before its budget was spent (a ``stopping`` rule, the timeout).
    stop_reason: Mapped[str | None] = mapped_column(Text)
    # The study this one was cloned from (``POST /studies/{id}/clone``). A plain id, as
    # ``trials.retry_of`` is: deleting the parent (through Optuna's API) leaves the number.
    parent_id: Mapped[int | None] = mapped_column(Integer)
    # Set by an extension: the stopping rules judge only trials numbered from here on.
    stopping_since: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)

    standard_version: Mapped[StandardVersion | None] = relationship(lazy="joined")

    @validates("state")
    def _state(self, _key: str, value: str) -> StudyState:
        # A state set from a string is held as the enum, as a loaded one is.
        return StudyState(value)

    @property
    def maximizes(self) -> bool:
        """Whether the first objective, the one every ranking uses, is maximised."""
        return bool(self.directions) and self.directions[0] == Direction.MAXIMIZE

    @property
    def spec_model(self) -> StudySpec | None:
        """The typed spec; None for a study created through Optuna's own API, which has none.

        Validated once per row instance and kept while ``spec`` holds the same document (a JSON
        column is replaced, never changed in place, so a new document means a new validation).
        Across row instances, the process keeps the model by the document's canonical JSON
        (a few microseconds to serialise): each request and each trial reads the study afresh,
        and validating the spec cost a quarter of a millisecond every time. The model is
        shared, so it is never changed in place; nothing changes a spec model once built.
        """
        if self.spec is None:
            return None
        cached: tuple[dict[str, Any], StudySpec] | None = vars(self).get("_spec_model")
        if cached is None or cached[0] is not self.spec:
            cached = (self.spec, _validated_spec(self.spec))
            self._spec_model = cached
        return cached[1]


# The validated spec by its document's canonical JSON, newest last; see ``Study.spec_model``.
_SPECS: OrderedDict[bytes, StudySpec] = OrderedDict()
_SPECS_KEPT = 256
_specs_lock = threading.Lock()


def _validated_spec(document: dict[str, Any]) -> StudySpec:
    try:
        key = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # not a JSON document (yet): nothing to key it by
        return StudySpec.model_validate(document)
    with _specs_lock:
        spec = _SPECS.get(key)
        if spec is not None:
            _SPECS.move_to_end(key)
            return spec
    spec = StudySpec.model_validate(document)
    with _specs_lock:
        _SPECS[key] = spec
        if len(_SPECS) > _SPECS_KEPT:
            _SPECS.popitem(last=False)
    return spec


class Trial(Base):
    __tablename__ = "trials"
    __table_args__ = (
        UniqueConstraint("study_id", "number"),
        CheckConstraint(in_check("state", TrialState), name="state"),
        CheckConstraint(in_check("origin", TrialOrigin), name="origin"),
        Index(None, "study_id", "state", "value"),
        Index(None, "state", "heartbeat_at"),
        Index(None, "state", "lease_expires_at"),
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
            postgresql_where=text(f"state = '{TrialState.COMPLETE}' AND accepted"),
            sqlite_where=text(f"state = '{TrialState.COMPLETE}' AND accepted = 1"),
        ),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[TrialState] = mapped_column(StrEnumString(TrialState))
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

    origin: Mapped[TrialOrigin] = mapped_column(
        StrEnumString(TrialOrigin), default=TrialOrigin.OPTUNA
    )
    seed: Mapped[int | None] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    retry_of: Mapped[int | None] = mapped_column(Integer)
    worker: Mapped[str | None] = mapped_column(String(255))
    device: Mapped[str | None] = mapped_column(String(50))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Set for a trial of an external study, run by a client over HTTP: the reaper fails it once
    # this passes with no report or heartbeat. NULL for trials our workers run (their
    # ``heartbeat_at`` and the grace period decide).
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime)
    error: Mapped[str | None] = mapped_column(Text)
    epochs_run: Mapped[int] = mapped_column(Integer, default=0)
    checkpoint_path: Mapped[str | None] = mapped_column(String(1024))
    accepted: Mapped[bool | None] = mapped_column(Boolean)
    verdict: Mapped[dict[str, Any] | None]

    @validates("state")
    def _state(self, _key: str, value: str) -> TrialState:
        # A state set from a string is held as the enum, as a loaded one is.
        return TrialState(value)

    @validates("origin")
    def _origin(self, _key: str, value: str) -> TrialOrigin:
        return TrialOrigin(value)


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


# --- Webhooks: a team's registered receivers, and the outbox of what each is owed. ---


class DeliveryState(StrEnum):
    PENDING = "pending"  # owed: sent when ``next_attempt_at`` comes
    DELIVERED = "delivered"  # the receiver answered 2xx; never sent again
    FAILED = "failed"  # given up (attempts spent, or the webhook was deleted)


class Webhook(Base):
    __tablename__ = "webhooks"
    __table_args__ = (Index(None, "team_id", "id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSONDoc)
    # Kept as written: the dispatcher signs every body with it (HMAC needs the secret itself).
    secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class WebhookDelivery(Base):
    """One event owed to one webhook, written in the transaction of the fact it reports."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # An event is recorded once per webhook, however often the fact is seen again.
        UniqueConstraint("webhook_id", "event_id"),
        CheckConstraint(in_check("state", DeliveryState), name="state"),
        Index(None, "webhook_id", "id"),
        Index(None, "state", "next_attempt_at"),
        # Receivers may key on the delivery id: ids are never reused (SQLite would reuse max+1).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(50))
    event_id: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]]
    state: Mapped[DeliveryState] = mapped_column(
        StrEnumString(DeliveryState), default=DeliveryState.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    webhook: Mapped[Webhook] = relationship(lazy="joined")

    @validates("state")
    def _state(self, _key: str, value: str) -> DeliveryState:
        return DeliveryState(value)


# --- Notes: what people write about a study or one of its trials. ---

NOTE_MAX_LENGTH = 10_000


class Note(Base):
    """A note on a study (``trial_id`` NULL) or on one of its trials. Notes are only added."""

    __tablename__ = "notes"
    __table_args__ = (
        CheckConstraint(f"length(body) BETWEEN 1 AND {NOTE_MAX_LENGTH}", name="body_length"),
        Index(None, "study_id", "id"),
        Index(None, "trial_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    trial_id: Mapped[int | None] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"))
    # Who wrote it, as the audit log names actors ("key:<id>").
    author: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


# --- Ensembles: a study's best trials, their predictions averaged. ---


class EnsembleState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"

    def is_finished(self) -> bool:
        return self in (EnsembleState.COMPLETE, EnsembleState.FAILED)


class Ensemble(Base):
    """An ensemble of a study's top-K trials, evaluated by a worker on the study's validation
    split. ``members`` (trial numbers, best first) are chosen when it is asked for."""

    __tablename__ = "ensembles"
    __table_args__ = (
        CheckConstraint(in_check("state", EnsembleState), name="state"),
        CheckConstraint("k >= 2", name="k"),
        Index(None, "study_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    k: Mapped[int] = mapped_column(Integer)
    members: Mapped[list[Any]]
    # The study metric it is judged by, and each member's own value of it on the same split.
    metric: Mapped[str] = mapped_column(String(200))
    state: Mapped[EnsembleState] = mapped_column(
        StrEnumString(EnsembleState), default=EnsembleState.PENDING
    )
    value: Mapped[float | None] = mapped_column(Float)
    best_single_value: Mapped[float | None] = mapped_column(Float)
    # value - best_single_value: positive is better for a maximised metric, negative for a
    # minimised one.
    gain: Mapped[float | None] = mapped_column(Float)
    member_values: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    # Set when a standard's ensemble criterion asked for it (``standards.acceptance``).
    verdict: Mapped[dict[str, Any] | None]
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)

    @validates("state")
    def _state(self, _key: str, value: str) -> EnsembleState:
        return EnsembleState(value)


# The mapped tables as Core ``Table`` objects (a mapped class's ``__table__`` is typed as a bare
# ``FromClause``), for statements built once and run on the tables: the storage's, and the
# repositories' hot paths.
STUDIES = cast(Table, Study.__table__)
TRIALS = cast(Table, Trial.__table__)
TRIAL_METRICS = cast(Table, TrialMetric.__table__)
TEAMS = cast(Table, Team.__table__)
API_KEYS = cast(Table, ApiKey.__table__)
