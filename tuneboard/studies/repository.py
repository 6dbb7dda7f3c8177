"""Every query on studies and trials. Services call these; routes and tasks never query."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    String,
    Text,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    text,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.orm import Session, aliased, load_only

from tuneboard.db.models import (
    TRIAL_METRICS,
    TRIALS,
    Standard,
    StandardVersion,
    Study,
    Team,
    Trial,
    TrialMetric,
)
from tuneboard.db.queries import ranked_trials
from tuneboard.spec.states import StudyState, TrialOrigin, TrialState

ACTIVE_TRIAL = TrialState.active()
ACTIVE_STUDY = StudyState.active()
# Studies per statement of ``trials_numbered_above`` (each adds a condition to it).
NUMBERED_ABOVE_CHUNK = 200


def _lockable(session: Session, stmt: Select[Any], of: Any) -> Select[Any]:
    # SQLite transactions hold the write lock already (BEGIN IMMEDIATE); PostgreSQL locks the
    # rows of ``of`` only: a joined-eager relationship is an outer join, which cannot be locked.
    return stmt if session.get_bind().dialect.name == "sqlite" else stmt.with_for_update(of=of)


def get_study(session: Session, team_id: int | None, study_id: int) -> Study | None:
    stmt = select(Study).where(Study.id == study_id)
    if team_id is not None:
        stmt = stmt.where(Study.team_id == team_id)
    return session.scalar(stmt)


def lock_study(session: Session, study_id: int, team_id: int | None = None) -> Study | None:
    """The study's row, locked until the caller's commit (None if it is not the team's)."""
    stmt = select(Study).where(Study.id == study_id)
    if team_id is not None:
        stmt = stmt.where(Study.team_id == team_id)
    return session.scalar(
        _lockable(session, stmt, Study).execution_options(populate_existing=True)
    )


def get_by_idempotency_key(session: Session, team_id: int, key: str) -> Study | None:
    return session.scalar(
        select(Study).where(Study.team_id == team_id, Study.idempotency_key == key)
    )


def list_studies(
    session: Session,
    team_id: int,
    *,
    limit: int,
    before_id: int | None = None,
    state: StudyState | None = None,
    name: str | None = None,
    standard_version_ids: Sequence[int] | None = None,
) -> list[Study]:
    """Newest first; ``before_id`` is the cursor."""
    stmt = select(Study).where(Study.team_id == team_id)
    if before_id is not None:
        stmt = stmt.where(Study.id < before_id)
    if state is not None:
        stmt = stmt.where(Study.state == state)
    if name is not None:
        stmt = stmt.where(Study.name == name)
    if standard_version_ids is not None:
        stmt = stmt.where(Study.standard_version_id.in_(standard_version_ids))
    return list(session.scalars(stmt.order_by(Study.id.desc()).limit(limit)))


class ActiveAndFailed(NamedTuple):
    active: int  # waiting or running
    failed: int  # failed and not retried
    waiting: int  # of the active ones, waiting


def _active_and_failed_statement() -> Select[int, int, int]:
    retry = aliased(Trial)
    retried = (
        select(retry.id)
        .where(retry.study_id == Trial.study_id, retry.retry_of == Trial.number)
        .exists()
    )
    return select(
        func.count().filter(Trial.state.in_(ACTIVE_TRIAL)),
        func.count().filter(Trial.state == TrialState.FAIL, ~retried),
        func.count().filter(Trial.state == TrialState.WAITING),
    ).where(
        Trial.study_id == bindparam("study_id"),
        Trial.state.in_((*ACTIVE_TRIAL, TrialState.FAIL)),
    )


# Built once: every ask, finish and dispatch counts, and building the statement (the aliased
# EXISTS and its cache key) cost ten times what running it does.
_ACTIVE_AND_FAILED = _active_and_failed_statement()


def count_active_and_failed_trials(session: Session, study_id: int) -> ActiveAndFailed:
    """What the dispatcher needs besides the study row's counter: active trials and failures (a
    failed trial that was retried is not counted: its retry is). Reads only the study's waiting,
    running and failed rows through the (study_id, state, value) index, so the cost does not
    grow with the finished trials."""
    row = session.execute(_ACTIVE_AND_FAILED, {"study_id": study_id}).one()
    return ActiveAndFailed(active=row[0], failed=row[1], waiting=row[2])


def lock_team_active_trials(session: Session, team_id: int) -> int:
    """The team's waiting and running trials, over all its studies, counted under a lock on the
    team row: the caller holds it until its commit, so two studies of one team never both take
    the team's last slot."""
    session.execute(_lockable(session, select(Team.id).where(Team.id == team_id), Team))
    stmt = (
        select(func.count())
        .select_from(Trial)
        .join(Study, Study.id == Trial.study_id)
        .where(Study.team_id == team_id, Trial.state.in_(ACTIVE_TRIAL))
    )
    return session.scalar(stmt) or 0


def get_trial(session: Session, study_id: int, number: int) -> Trial | None:
    return session.scalar(select(Trial).where(Trial.study_id == study_id, Trial.number == number))


def get_trial_by_id(session: Session, trial_id: int) -> Trial | None:
    return session.get(Trial, trial_id)


def get_trial_and_study(session: Session, trial_id: int) -> tuple[Trial, Study] | None:
    """The trial and its study in one read: what a worker's claim starts from."""
    row = session.execute(
        select(Trial, Study).join(Study, Study.id == Trial.study_id).where(Trial.id == trial_id)
    ).unique().one_or_none()
    return None if row is None else (row[0], row[1])


def list_trials(
    session: Session,
    study_id: int,
    *,
    limit: int,
    after_number: int | None = None,
    state: TrialState | None = None,
) -> list[Trial]:
    stmt = select(Trial).where(Trial.study_id == study_id)
    if after_number is not None:
        stmt = stmt.where(Trial.number > after_number)
    if state is not None:
        stmt = stmt.where(Trial.state == state)
    return list(session.scalars(stmt.order_by(Trial.number).limit(limit)))


def trial_table(session: Session, study_id: int, from_number: int = 0) -> list[Trial]:
    """Every trial of a study by number (from ``from_number`` on), loading only what a table or
    chart of them shows (not intermediate values, verdicts or attributes other than the fixed
    parameters)."""
    columns = load_only(
        Trial.number, Trial.state, Trial.origin, Trial.values, Trial.params, Trial.distributions,
        Trial.system_attrs, Trial.datetime_start, Trial.datetime_complete, Trial.epochs_run,
        Trial.attempt, Trial.retry_of, Trial.worker, Trial.device, Trial.accepted,
        raiseload=True,
    )
    stmt = select(Trial).options(columns).where(
        Trial.study_id == study_id, Trial.number >= from_number
    )
    return list(session.scalars(stmt.order_by(Trial.number)))


def trial_table_tuples(
    session: Session, study_id: int, from_number: int = 0
) -> Sequence[Sequence[Any]]:
    """What :func:`trial_table` loads, as plain rows to unpack rather than entities: the JSON
    columns (values, params, distributions, system attributes) as their stored text, and state
    and origin as their stored text rather than enums (the same values). A study of 10,000
    trials is read without building an entity, parsing a document it does not need or
    converting a value per row (most trials share one distributions text, and only a trial
    without params needs its attributes)."""
    stmt = select(
        Trial.number, type_coerce(Trial.state, String), cast(Trial.values, Text),
        cast(Trial.params, Text), cast(Trial.distributions, Text),
        cast(Trial.system_attrs, Text), Trial.datetime_start, Trial.datetime_complete,
        Trial.epochs_run, Trial.attempt, Trial.retry_of, Trial.worker, Trial.device,
        Trial.accepted, type_coerce(Trial.origin, String),
    ).where(Trial.study_id == study_id, Trial.number >= from_number)
    # Through the connection: the ORM's result machinery costs more than the rows themselves.
    return session.connection().execute(stmt.order_by(Trial.number)).all()


# The statements every worker trial makes, built once with bind parameters and run on the
# trials table rather than through the mapped class: building and running an ORM-enabled update
# costs about 0.6 ms of CPU against 0.06 ms for the same prebuilt Core statement (SQLite in
# memory, so all of it is Python). They leave the session's objects as they were: their callers
# read those no more, or read them afresh.
_CLAIM = (
    update(TRIALS)
    .where(TRIALS.c.id == bindparam("trial_id"), TRIALS.c.state == TrialState.WAITING)
    .values(state=TrialState.RUNNING, worker=bindparam("worker"), device=bindparam("device"),
            heartbeat_at=bindparam("now"), datetime_start=bindparam("start"))
)
_CLAIM_WITH_PATH = _CLAIM.values(checkpoint_path=bindparam("checkpoint_path"))
_HEARD_FROM = (
    update(TRIALS)
    .where(TRIALS.c.id == bindparam("trial_id"), TRIALS.c.state == TrialState.RUNNING)
    .values(heartbeat_at=bindparam("heartbeat_at"))
)
# The running trial's row after a batch of reports, by the columns the batch sets besides the
# heartbeat (``reported_columns``): the epochs run, Optuna's intermediate values and system
# attributes.
_REPORTED = {
    columns: _HEARD_FROM.values({name: bindparam(name) for name in columns})
    for columns in (
        tuple(name for name, wanted in (("epochs_run", steps), ("intermediate_values", values),
                                        ("system_attrs", attrs)) if wanted)
        for steps in (False, True) for values in (False, True) for attrs in (False, True)
    )
}
_INSERT_METRICS = insert(TRIAL_METRICS)


def claim_trial(
    session: Session, trial_id: int, *, worker: str, device: str, now: datetime,
    checkpoint_path: str | None = None,
) -> bool:
    """WAITING -> RUNNING, once: a duplicate or late delivery finds nothing to claim.
    ``checkpoint_path``, when given, is set in the same statement."""
    params: dict[str, Any] = {"trial_id": trial_id, "worker": worker, "device": device,
                              "now": now, "start": now}
    if checkpoint_path is not None:
        params["checkpoint_path"] = checkpoint_path
    result = session.execute(_CLAIM if checkpoint_path is None else _CLAIM_WITH_PATH, params)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def touch_heartbeat(session: Session, trial_id: int, now: datetime) -> None:
    session.execute(
        update(Trial)
        .where(Trial.id == trial_id, Trial.state == TrialState.RUNNING)
        .values(heartbeat_at=now)
    )


def stale_running_trials(session: Session, older_than: datetime, limit: int = 100) -> list[Trial]:
    return list(
        session.scalars(
            select(Trial)
            .where(Trial.state == TrialState.RUNNING, Trial.heartbeat_at < older_than,
                   Trial.lease_expires_at.is_(None))  # external trials: their lease decides
            .order_by(Trial.heartbeat_at)
            .limit(limit)
        )
    )


def undelivered_waiting_trials(
    session: Session, dispatched_before: datetime, limit: int = 500
) -> list[tuple[int, Study]]:
    """Waiting trials whose message may be lost: (trial id, its study)."""
    rows = session.execute(
        select(Trial.id, Study)
        .join(Study, Study.id == Trial.study_id)
        .where(
            Trial.state == TrialState.WAITING,
            Study.state.in_(ACTIVE_STUDY),
            Trial.dispatched_at < dispatched_before,
        )
        .order_by(Trial.id)
        .limit(limit)
    )
    return [(row[0], row[1]) for row in rows]


def mark_dispatched(session: Session, trial_ids: Sequence[int], now: datetime) -> None:
    if trial_ids:
        session.execute(update(Trial).where(Trial.id.in_(trial_ids)).values(dispatched_at=now))


def studies_to_settle(session: Session, limit: int = 200) -> list[int]:
    """Running or queued studies with no active trial: the dispatcher may owe them work."""
    active = (
        select(Trial.id)
        .where(Trial.study_id == Study.id, Trial.state.in_(ACTIVE_TRIAL))
        .exists()
    )
    return list(
        session.scalars(
            select(Study.id)
            .where(Study.state.in_(ACTIVE_STUDY), Study.spec.is_not(None), ~active)
            .limit(limit)
        )
    )


def fail_waiting_trials(session: Session, study_id: int, reason: str, now: datetime) -> int:
    result = session.execute(
        update(Trial)
        .where(Trial.study_id == study_id, Trial.state == TrialState.WAITING)
        .values(state=TrialState.FAIL, error=reason, datetime_complete=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def study_state(session: Session, study_id: int) -> StudyState | None:
    return session.scalar(select(Study.state).where(Study.id == study_id))


def trial_metrics(session: Session, trial_id: int) -> list[tuple[int, str, float | None]]:
    rows = session.execute(
        select(TrialMetric.step, TrialMetric.name, TrialMetric.value)
        .where(TrialMetric.trial_id == trial_id)
        .order_by(TrialMetric.step, TrialMetric.name)
    )
    return [(r[0], r[1], r[2]) for r in rows]


# --- reads for the API ----------------------------------------------------------------------------


def standard_version_ids(
    session: Session, team_id: int, name: str, version: int | None = None
) -> list[int]:
    """Ids of the team's standard ``name`` versions (one version when given)."""
    stmt = (
        select(StandardVersion.id)
        .join(Standard, Standard.id == StandardVersion.standard_id)
        .where(Standard.team_id == team_id, Standard.name == name)
    )
    if version is not None:
        stmt = stmt.where(StandardVersion.version == version)
    return list(session.scalars(stmt))


def trial_metrics_page(
    session: Session, trial_id: int, *, limit: int, after_step: int | None = None
) -> list[tuple[int, str, float | None]]:
    """Every metric of up to ``limit`` steps after ``after_step``, by step then name."""
    steps = select(TrialMetric.step).where(TrialMetric.trial_id == trial_id)
    if after_step is not None:
        steps = steps.where(TrialMetric.step > after_step)
    wanted = list(session.scalars(steps.distinct().order_by(TrialMetric.step).limit(limit)))
    if not wanted:
        return []
    rows = session.execute(
        select(TrialMetric.step, TrialMetric.name, TrialMetric.value)
        .where(TrialMetric.trial_id == trial_id, TrialMetric.step.between(wanted[0], wanted[-1]))
        .order_by(TrialMetric.step, TrialMetric.name)
    )
    return [(r[0], r[1], r[2]) for r in rows]


def trial_counts_in_store(session: Session) -> dict[TrialState, int]:
    """Trials per state across the whole store, every study of every team (the Prometheus
    gauge)."""
    rows = session.execute(select(Trial.state, func.count()).group_by(Trial.state))
    return {state: count for state, count in rows}


# --- workers: claim, progress, the reaper ---------------------------------------------------------


def start_study(session: Session, study_id: int, now: datetime) -> None:
    """queued -> running when its first trial starts."""
    session.execute(
        update(Study)
        .where(Study.id == study_id, Study.state == StudyState.QUEUED)
        .values(state=StudyState.RUNNING, started_at=func.coalesce(Study.started_at, now))
    )


def set_checkpoint_path(session: Session, trial_id: int, path: str) -> None:
    session.execute(update(Trial).where(Trial.id == trial_id).values(checkpoint_path=path))


def commit_without_flush(session: Session) -> None:
    """Let this transaction's commit return before PostgreSQL flushes it to disk (a no-op on
    SQLite, whose WAL commits do not flush either): for writes a server crash may lose without
    harm, such as metrics and heartbeats. Others see them at commit as usual."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))


def record_reports(
    session: Session,
    trial_id: int,
    steps: Mapping[int, Mapping[str, float]],
    now: datetime,
    *,
    replace: Collection[int] = (),
    intermediate_values: Mapping[int, float] | None = None,
    system_attrs: Mapping[str, Any] | None = None,
) -> None:
    """Steps' metrics, the epochs run and a heartbeat, in three statements whatever the number
    of steps (:func:`record_metrics`, then one update of the trial's row with
    :func:`reported_columns`)."""
    columns = reported_columns(steps, now, intermediate_values=intermediate_values,
                               system_attrs=system_attrs)
    if columns is None:
        return
    record_metrics(session, trial_id, steps, replace=replace)
    statement = _REPORTED[tuple(name for name in columns if name != "heartbeat_at")]
    session.execute(statement, {"trial_id": trial_id, **columns})


def record_metrics(
    session: Session,
    trial_id: int,
    steps: Mapping[int, Mapping[str, float]],
    *,
    replace: Collection[int] = (),
) -> None:
    """Steps' metrics: one insert, after a delete of those in ``replace``, which overwrite what
    was stored for them (a step reported again, or a resumed retry repeating the epoch its
    predecessor reported but did not save)."""
    if replace:
        session.execute(
            delete(TrialMetric).where(TrialMetric.trial_id == trial_id,
                                      TrialMetric.step.in_(list(replace)))
        )
    rows = [
        {"trial_id": trial_id, "step": step, "name": name, "value": value}
        for step, metrics in steps.items()
        for name, value in metrics.items()
    ]
    if rows:
        session.execute(_INSERT_METRICS, rows)


def reported_columns(
    steps: Mapping[int, Mapping[str, float]],
    now: datetime,
    *,
    intermediate_values: Mapping[int, float] | None = None,
    system_attrs: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The running trial's columns after a batch of reports (None: the batch sets nothing): the
    heartbeat, the epochs run, and, when given, the trial's whole Optuna record of intermediate
    values and of system attributes (its only writer is the worker running it), as stored:
    non-finite floats as strings. Ordered as ``_REPORTED``'s keys name them."""
    if not steps and system_attrs is None:
        return None
    columns: dict[str, Any] = {"heartbeat_at": now}
    if steps:
        columns["epochs_run"] = max(steps)
    if intermediate_values is not None:
        columns["intermediate_values"] = {
            str(s): v if math.isfinite(v) else str(v) for s, v in intermediate_values.items()
        }
    if system_attrs is not None:
        columns["system_attrs"] = dict(system_attrs)
    return columns


def copy_metrics(session: Session, from_trial_id: int, to_trial_id: int, before_step: int) -> int:
    """Copy the steps before ``before_step`` of one trial to another (a retry that resumed);
    returns the number of rows copied."""
    source = select(
        literal(to_trial_id), TrialMetric.step, TrialMetric.name, TrialMetric.value
    ).where(TrialMetric.trial_id == from_trial_id, TrialMetric.step < before_step)
    result = session.execute(
        insert(TrialMetric).from_select(["trial_id", "step", "name", "value"], source)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def trial_progress(
    session: Session, trial_id: int
) -> tuple[TrialState, StudyState, datetime | None] | None:
    """(trial state, study state, study started_at): what a running trial polls to stop."""
    row = session.execute(
        select(Trial.state, Study.state, Study.started_at)
        .join(Study, Study.id == Trial.study_id)
        .where(Trial.id == trial_id)
    ).first()
    return None if row is None else (row[0], row[1], row[2])


def finish_trial(
    session: Session,
    trial_id: int,
    state: TrialState,
    values: Sequence[float] | None,
    now: datetime,
    *,
    system_attrs: Mapping[str, Any] | None = None,
    error: str | None = None,
    columns: Mapping[str, Any] | None = None,
) -> bool:
    """RUNNING -> ``state`` with Optuna's ``values`` (the first as the sortable ``value``, NULL
    for NaN; non-finite floats as strings), ``system_attrs`` added and a failure's ``error``: a
    worker's tell, written in its caller's transaction. A trial no longer RUNNING (the reaper
    failed it) keeps its outcome, and False says so.

    ``columns``: more of the running trial's columns to set in the same update, such as what its
    last reports set (:func:`reported_columns`) and its first parameters. Their
    ``system_attrs``, when there, is the trial's whole record, and ``system_attrs`` is added to
    it without reading the row."""
    changes: dict[str, Any] = {**(columns or {}), "state": state, "datetime_complete": now,
                               "value": None, "values": null()}
    if error is not None:
        changes["error"] = error
    if values is not None:
        changes["values"] = [v if math.isfinite(v) else str(v) for v in values]
        changes["value"] = values[0] if values and not math.isnan(values[0]) else None
    if system_attrs:
        current = (changes["system_attrs"] if "system_attrs" in changes else
                   session.scalar(select(Trial.system_attrs).where(Trial.id == trial_id)))
        changes["system_attrs"] = {**(current or {}), **system_attrs}
    result = session.execute(  # on the table, not the mapped class: see ``_CLAIM``
        update(TRIALS)
        .where(TRIALS.c.id == trial_id, TRIALS.c.state == TrialState.RUNNING)
        .values(changes)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def fail_stale_trial(
    session: Session, trial_id: int, *, stale_before: datetime, reason: str, now: datetime
) -> bool:
    """RUNNING -> FAIL if its heartbeat is still older than ``stale_before``: of several reapers
    (or a heartbeat arriving late) exactly one outcome wins. An error the worker recorded
    before it went silent is kept: it says more than "worker lost"."""
    result = session.execute(
        update(Trial)
        .where(
            Trial.id == trial_id,
            Trial.state == TrialState.RUNNING,
            Trial.heartbeat_at < stale_before,
        )
        .values(state=TrialState.FAIL, error=func.coalesce(Trial.error, reason),
                datetime_complete=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def trials_of_origin(
    session: Session, study_id: int, origins: Collection[TrialOrigin]
) -> list[Trial]:
    """The study's trials created for any of ``origins``."""
    return list(
        session.scalars(
            select(Trial).where(Trial.study_id == study_id, Trial.origin.in_(origins))
        )
    )


# --- trial counts per state (``studies/counts.py``) ----------------------------------------


def trial_state_snapshot(
    session: Session, study_ids: Collection[int]
) -> list[Row[Any, Any, Any, Any]]:
    """The studies' trials by state in one statement (one snapshot), as rows of
    ``(study_id, state, n, trial_id)``: each finished state with its count ``n``; each
    unfinished trial with its ``trial_id``; and each study's highest trial number as ``n``, the
    only rows without a state."""
    in_studies = Trial.study_id.in_(study_ids)
    finished = (
        select(Trial.study_id, Trial.state, func.count().label("n"), null().label("trial_id"))
        .where(in_studies, Trial.state.in_(TrialState.finished()))
        .group_by(Trial.study_id, Trial.state)
    )
    unfinished = select(
        Trial.study_id, Trial.state, null().label("n"), Trial.id.label("trial_id")
    ).where(in_studies, Trial.state.in_(ACTIVE_TRIAL))
    highest = (
        select(Trial.study_id, null().label("state"), func.max(Trial.number).label("n"),
               null().label("trial_id"))
        .where(in_studies)
        .group_by(Trial.study_id)
    )
    return list(session.execute(union_all(finished, unfinished, highest)))


def trials_numbered_above(
    session: Session, numbers: Mapping[int, int]
) -> list[Row[int, int, int, TrialState]]:
    """``(study_id, number, id, state)`` of each study's trials numbered above
    ``numbers[study_id]``, in statements of ``NUMBERED_ABOVE_CHUNK`` studies."""
    items = list(numbers.items())
    rows: list[Row[int, int, int, TrialState]] = []
    for start in range(0, len(items), NUMBERED_ABOVE_CHUNK):
        newer = [
            (Trial.study_id == study_id) & (Trial.number > number)
            for study_id, number in items[start : start + NUMBERED_ABOVE_CHUNK]
        ]
        rows.extend(session.execute(
            select(Trial.study_id, Trial.number, Trial.id, Trial.state).where(or_(*newer))
        ))
    return rows


def trial_states(
    session: Session, trial_ids: Collection[int]
) -> list[Row[int, TrialState]]:
    """``(id, state)`` of those of ``trial_ids`` that still exist."""
    return list(session.execute(select(Trial.id, Trial.state).where(Trial.id.in_(trial_ids))))


# --- the stopping rule (``studies/stopping.py``) -------------------------------------------


def _judged_by_stopping(study: Study) -> list[ColumnElement[bool]]:
    """Conditions on the trials a stopping rule judges: search trials (no stability re-runs),
    numbered since the study's last extension."""
    conditions: list[ColumnElement[bool]] = [
        Trial.study_id == study.id,
        Trial.origin != TrialOrigin.STABILITY,
    ]
    if study.stopping_since is not None:
        conditions.append(Trial.number >= study.stopping_since)
    return conditions


def last_finished_judged(
    session: Session, study: Study, limit: int
) -> list[Row[int, TrialState, float | None, bool | None]]:
    """``(id, state, value, accepted)`` of the last ``limit`` finished trials the stopping rule
    judges, the most recently finished first (ties: the higher id first)."""
    return list(session.execute(
        select(Trial.id, Trial.state, Trial.value, Trial.accepted)
        .where(*_judged_by_stopping(study), Trial.state.in_(TrialState.finished()))
        .order_by(Trial.datetime_complete.desc().nulls_last(), Trial.id.desc())
        .limit(limit)
    ))


def count_complete_judged(session: Session, study: Study) -> int:
    """How many complete trials the stopping rule judges."""
    return session.scalar(
        select(func.count()).where(*_judged_by_stopping(study), Trial.state == TrialState.COMPLETE)
    ) or 0


def best_value_excluding(
    session: Session, study: Study, trial_ids: Collection[int], *, accepted_only: bool
) -> float | None:
    """The study's best value (as ``ranked_trials`` ranks, over all its trials) apart from
    ``trial_ids``; None when no other trial is ranked."""
    return session.scalar(
        ranked_trials(study.id, maximize=study.maximizes, accepted_only=accepted_only,
                      columns=(Trial.value,))
        .where(Trial.id.not_in(trial_ids))
        .limit(1)
    )
