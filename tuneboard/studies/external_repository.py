"""The queries behind external trials (``tuneboard.studies.external``): trials a client runs
and holds by a lease (``trials.lease_expires_at``)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.orm import Session

from tuneboard.db.models import TRIALS, Trial, TrialMetric
from tuneboard.spec.states import TrialState

# What the ``worker`` column shows for a trial that a client runs.
CLIENT = "client"


def _locked(session: Session, stmt: Select[Any]) -> Select[Any]:
    # SQLite write transactions hold the database lock already (BEGIN IMMEDIATE).
    if session.get_bind().dialect.name != "sqlite":
        stmt = stmt.with_for_update(of=Trial)
    return stmt.execution_options(populate_existing=True)


def lock_trial(session: Session, study_id: int, number: int) -> Trial | None:
    """The trial, locked until the commit: a client's reports, heartbeats and tell of one trial
    are applied one at a time, so a retried request sees what the first one stored."""
    stmt = select(Trial).where(Trial.study_id == study_id, Trial.number == number)
    return session.scalar(_locked(session, stmt))


def waiting_trials(session: Session, study_id: int, limit: int) -> list[Trial]:
    """The study's WAITING trials, oldest first: retries, stability re-runs and trials enqueued
    with fixed parameters, which an ask hands out before it samples new ones."""
    stmt = (
        select(Trial)
        .where(Trial.study_id == study_id, Trial.state == TrialState.WAITING)
        .order_by(Trial.number)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def claim_for_client(
    session: Session, trial_ids: Sequence[int], *, now: datetime, lease_until: datetime
) -> int:
    """WAITING -> RUNNING for a client, with its first lease; returns the trials claimed."""
    if not trial_ids:
        return 0
    result = session.execute(
        update(Trial)
        .where(Trial.id.in_(trial_ids), Trial.state == TrialState.WAITING)
        .values(state=TrialState.RUNNING, worker=CLIENT, device=None, heartbeat_at=now,
                datetime_start=now, lease_expires_at=lease_until)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# Every report and heartbeat extends a lease: built once, on the table (see
# ``repository._CLAIM``).
_EXTEND_LEASE = (
    update(TRIALS)
    .where(TRIALS.c.id == bindparam("trial_id"), TRIALS.c.state == TrialState.RUNNING)
    .values(heartbeat_at=bindparam("now"), lease_expires_at=bindparam("until"))
)


def extend_lease(session: Session, trial_id: int, *, now: datetime, until: datetime) -> bool:
    """A report or heartbeat of a RUNNING trial: its lease runs to ``until``."""
    result = session.execute(_EXTEND_LEASE, {"trial_id": trial_id, "now": now, "until": until})
    return bool(result.rowcount)  # type: ignore[attr-defined]


def stored_steps(session: Session, trial_id: int, steps: Collection[int]) -> set[int]:
    """Which of ``steps`` the trial has metrics for already."""
    if not steps:
        return set()
    rows = session.scalars(
        select(TrialMetric.step)
        .where(TrialMetric.trial_id == trial_id, TrialMetric.step.in_(list(steps)))
        .distinct()
    )
    return set(rows)


def last_step(session: Session, trial_id: int) -> int | None:
    return session.scalar(
        select(func.max(TrialMetric.step)).where(TrialMetric.trial_id == trial_id)
    )


def earliest_lease_end(session: Session, study_id: int) -> datetime | None:
    """When the first running external trial of the study loses its lease if it stays silent."""
    return session.scalar(
        select(func.min(Trial.lease_expires_at)).where(
            Trial.study_id == study_id, Trial.state == TrialState.RUNNING
        )
    )


def expired_leases(session: Session, now: datetime, limit: int = 100) -> list[tuple[int, int]]:
    """(trial id, study id) of RUNNING trials whose lease has passed, the oldest first."""
    rows = session.execute(
        select(Trial.id, Trial.study_id)
        .where(Trial.state == TrialState.RUNNING, Trial.lease_expires_at < now)
        .order_by(Trial.lease_expires_at)
        .limit(limit)
    )
    return [(row[0], row[1]) for row in rows]


def fail_expired_lease(session: Session, trial_id: int, *, now: datetime, reason: str) -> bool:
    """RUNNING -> FAIL if its lease has still passed: of several reapers, or a report arriving
    at the same moment, exactly one outcome wins."""
    result = session.execute(
        update(Trial)
        .where(Trial.id == trial_id, Trial.state == TrialState.RUNNING,
               Trial.lease_expires_at < now)
        .values(state=TrialState.FAIL, error=reason, datetime_complete=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def record_error(session: Session, trial_id: int, error: str) -> None:
    """The error text a client told for its failed trial."""
    session.execute(
        update(Trial).where(Trial.id == trial_id).values(error=error)
        .execution_options(synchronize_session=False)
    )


def metrics_at_step(session: Session, trial_id: int, step: int) -> list[tuple[str, float | None]]:
    rows = session.execute(
        select(TrialMetric.name, TrialMetric.value).where(
            TrialMetric.trial_id == trial_id, TrialMetric.step == step
        )
    )
    return [(row[0], row[1]) for row in rows]
