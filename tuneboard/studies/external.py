"""External trials: a study whose trials run outside Tuneboard (``objective: {external: true}``).
Clients ask for a trial, report its steps, beat and tell how it ended, over HTTP.

What this keeps:

- **The budget holds as for workers.** An ask takes the study row's lock, hands out WAITING
  trials first (retries, stability re-runs, trials enqueued with fixed parameters), then new
  sampler trials within ``budget.n_trials`` and ``budget.max_parallel``; ``timeout_s`` and
  ``max_failed`` end the handing out. Nothing left to give is a :class:`NoTrial`: final when no
  trial of the study is still running (the study is settled then), with a time to come back
  (``retry_after_s``) while some are, because a lost one may come back as a retry or free a slot.
- **Parameters come from the study's sampler over** :class:`SqlStorage`, as for a worker: the
  trial is claimed in one transaction, and Optuna's ``Trial`` over the claimed row then samples,
  its parameters written in one transaction of their own (``suggest``). The spec's ``fixed``
  values (a standard's defaults among them) are part of every trial's parameters.
- **A step is stored once.** Reports of a trial are applied under the trial row's lock; a step
  that is stored already is skipped (a retried request changes nothing and is no error), a new
  step below the last stored one is refused. The study metric's value at each step is the trial's
  intermediate value, and the study's pruner judges it exactly as for a worker's trial, once the
  report is committed.
- **A lease, not a heartbeat thread of ours.** Asking, each report and each heartbeat set
  ``lease_expires_at`` to now + ``TUNEBOARD_LEASE_S``; the reaper fails a trial whose lease has
  passed and retries it within ``budget.max_retries`` (``workers.reaper``).
- **A tell is final.** It is checked in the caller's session, written to Optuna's fields through
  ``SqlStorage`` (whose conditional update lets exactly one tell win), then judged against the
  study's standard and the study dispatched in the caller's session. A finished trial's tell is
  a 409.

Services flush and never commit. The routes run the steps that ``SqlStorage`` writes between
(``claim`` / ``suggest``; ``check_tell`` / ``record_tell`` / ``settle_tell``) in transactions
of their own, so that no database write lock is held across Optuna's own transactions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from sqlalchemy.orm import Session

from tuneboard.db.base import utcnow
from tuneboard.db.models import Study, Trial
from tuneboard.errors import Conflict, InvalidInput, NotFound
from tuneboard.optimization.claimed import ask_claimed, optuna_study
from tuneboard.optimization.storage import SqlStorage
from tuneboard.spec import StudySpec
from tuneboard.spec.states import StudyState, TrialOrigin, TrialState
from tuneboard.studies import dispatch, verdicts
from tuneboard.studies import external_repository as ext_repo
from tuneboard.studies import repository as repo
from tuneboard.studies.external_schemas import (
    AskedTrial,
    ReportAnswer,
    StepReport,
    TellRequest,
)
from tuneboard.studies.schemas import trial_params
from tuneboard.teams import Principal

__all__ = [
    "Claim",
    "NoTrial",
    "Telling",
    "check_tell",
    "claim",
    "external_study",
    "fail_lost",
    "heartbeat",
    "lost_reason",
    "record_tell",
    "report",
    "settle_tell",
    "should_prune",
    "suggest",
]

_OPTUNA_STATE = {
    TrialState.COMPLETE: optuna.trial.TrialState.COMPLETE,
    TrialState.PRUNED: optuna.trial.TrialState.PRUNED,
    TrialState.FAIL: optuna.trial.TrialState.FAIL,
}
# The longest Retry-After of an ask that found every trial handed out while some still run.
POLL_S = 2.0
FAIL_REASON_ATTR = "fail_reason"  # Optuna's own system attribute for why a trial failed


# --- the study ------------------------------------------------------------------------------------


def external_study(
    session: Session, principal: Principal, study_id: int, *, lock: bool = False
) -> Study:
    """The team's study, if it is external: another team's is 404, a worker-run one 409. With
    ``lock``, its row is locked until the caller's commit (read once, not read then locked)."""
    study = (repo.lock_study(session, study_id, principal.team_id) if lock
             else repo.get_study(session, principal.team_id, study_id))
    if study is None:
        raise NotFound(f"study {study_id} not found")
    if not dispatch.is_external(study):
        raise Conflict(
            f"study {study_id} is not external: its trials run on Tuneboard's workers. "
            "Create it with objective: {external: true, ...} to run trials yourself.",
            {"reason": "not_external"},
        )
    return study


def _spec(study: Study) -> StudySpec:
    spec = study.spec_model
    assert spec is not None  # external studies have one
    return spec


def _should_stop(study: Study, now: datetime) -> bool:
    """What a running trial's client hears as ``should_stop``: the study was cancelled, ended,
    or ran out of ``budget.timeout_s``."""
    return not study.state.takes_trials() or dispatch.timed_out(study, now)


# --- ask ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    trial_id: int
    number: int
    attempt: int
    retry_of: int | None
    # The trial as Optuna sees it, as the claim holds it (read in its transaction, or built for
    # a trial it inserted): its ``Trial`` is built from it (``SqlStorage.remember_trial``)
    # rather than from a read of its own.
    frozen: optuna.trial.FrozenTrial


@dataclass(frozen=True)
class Claim:
    """Trials an ask claimed (RUNNING, leased to the client); ``suggest`` gives them params."""

    study_id: int
    optuna_name: str
    spec: StudySpec
    lease_expires_at: datetime
    trials: list[Claimed]


@dataclass(frozen=True)
class NoTrial:
    """Why an ask got no trial. ``retry_after_s`` None: the study will give no more (it is
    finished, or is settled now); a number: trials are still running, ask again then."""

    reason: str
    message: str
    retry_after_s: int | None = None
    study_state: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def claim(
    session: Session, storage: SqlStorage, principal: Principal, study_id: int, *, count: int,
    lease_s: float, now: datetime | None = None,
) -> Claim | NoTrial:
    """Claim up to ``count`` trials for a client: waiting ones first, then new sampler trials
    within the budget. Flushes, never commits.

    A new trial is inserted RUNNING and leased, numbered from the locked study row, and the
    study's changes (its counters, queued -> running) go in one update with it: an ask of a
    new trial is the lock, the count, that update and the insert."""
    now = now or utcnow()
    study = external_study(session, principal, study_id, lock=True)
    spec = _spec(study)
    budget = spec.budget
    if not study.state.takes_trials():
        return NoTrial("study_finished", f"study {study.id} is {study.state}; it gives no more "
                       "trials", study_state=study.state)
    counts = repo.count_active_and_failed_trials(session, study.id)
    stop = _stop_message(dispatch.stop_reason(session, study, spec, counts, now), spec,
                         counts.failed)
    lease_until = now + timedelta(seconds=lease_s)
    if stop is None:
        taken = ext_repo.waiting_trials(session, study.id, count) if counts.waiting else []
        waiting = len(taken)
        ext_repo.claim_for_client(session, [t.id for t in taken], now=now,
                                  lease_until=lease_until)
        remaining = budget.n_trials - study.sampler_trials
        free = budget.max_parallel - counts.active
        new = min(count - len(taken), remaining, free)
        if taken or new > 0:
            _start(study, now)
        if new > 0:
            study.sampler_trials += new
            leased: dict[str, Any] = {
                "system_attrs": {}, "state": TrialState.RUNNING, "worker": ext_repo.CLIENT,
                "device": None, "heartbeat_at": now, "datetime_start": now,
                "lease_expires_at": lease_until,
            }
            taken += dispatch.add_trials(session, study, TrialOrigin.SAMPLER,
                                         [dict(leased) for _ in range(new)], now=now,
                                         locked=True)
        if taken:
            conn = session.connection()
            return Claim(
                study_id=study.id, optuna_name=study.optuna_name, spec=spec,
                lease_expires_at=lease_until,
                trials=[Claimed(t.id, t.number, t.attempt, t.retry_of,
                                storage.get_trial_in(conn, t.id) if i < waiting else
                                storage.started_trial(t.id, t.number, now))
                        for i, t in enumerate(taken)],
            )
        running = counts.active
        if running:
            until = ext_repo.earliest_lease_end(session, study.id)
            if remaining > 0:
                wait_s = 1.0
                reason = ("max_parallel", f"budget.max_parallel={budget.max_parallel} trials "
                          "are running; ask again when one has ended")
            else:
                # A retry can come only once a lease has passed, but the study is settled as
                # soon as the last trial ends: come back by then, or within POLL_S.
                lease_left = (until - now).total_seconds() if until is not None else lease_s
                wait_s = min(lease_left, POLL_S)
                reason = ("budget_handed_out", f"all budget.n_trials={budget.n_trials} trials "
                          f"have been handed out and {running} still run; one that is lost "
                          "comes back as a retry")
            return NoTrial(*reason, retry_after_s=max(1, math.ceil(wait_s)),
                           study_state=study.state, details={"running": running})
    elif counts.active:
        return NoTrial(*stop, study_state=study.state, details={"running": counts.active})
    dispatch.plan(session, study.id, now)  # settles the study: nothing is running
    if stop is None:
        stop = ("budget_spent", f"all budget.n_trials={budget.n_trials} trials have run")
    return NoTrial(*stop, study_state=study.state)


def _start(study: Study, now: datetime) -> None:
    """queued -> running as its first trial is handed out (the caller holds the row's lock)."""
    if study.state is StudyState.QUEUED:
        study.state = StudyState.RUNNING
        study.started_at = study.started_at or now


def _stop_message(
    reason: str | None, spec: StudySpec, failed: int
) -> tuple[str, str] | None:
    if reason is None:
        return None
    if reason == "timeout":
        return "timed_out", f"budget.timeout_s ({spec.budget.timeout_s:g} s) has run out"
    if reason == "max_failed":
        return "max_failed", (f"{failed} trials failed, more than budget.max_failed="
                              f"{spec.budget.max_failed}")
    return "stopped", f"the study stopped: {reason}"


def suggest(storage: SqlStorage, claimed: Claim) -> list[AskedTrial]:
    """Each claimed trial's parameters from the study's sampler (what a worker does with a trial
    it claimed), written by ``SqlStorage`` in a transaction of their own."""
    spec = claimed.spec
    asked = []
    for item in claimed.trials:
        storage.remember_trial(item.frozen, claimed.study_id)
        try:
            with storage.study_known(claimed.optuna_name, claimed.study_id):
                study = optuna_study(storage, claimed.optuna_name, spec, item.number)
                _, params = ask_claimed(storage, study, item.trial_id, spec)
        finally:
            storage.forget_trial(item.trial_id)
        asked.append(AskedTrial(number=item.number, params=params,
                                lease_expires_at=claimed.lease_expires_at,
                                attempt=item.attempt, retry_of=item.retry_of))
    return asked


# --- report and heartbeat -------------------------------------------------------------------------


def _running_trial(session: Session, study: Study, number: int) -> Trial:
    trial = ext_repo.lock_trial(session, study.id, number)
    if trial is None:
        raise NotFound(f"trial {number} of study {study.id} not found")
    if trial.state == TrialState.WAITING:
        raise Conflict(f"trial {number} has not been handed out; ask for it first",
                       {"state": trial.state})
    if trial.state.is_finished():
        raise Conflict(f"trial {number} is already {trial.state}"
                       + (f": {trial.error}" if trial.error else ""),
                       {"state": trial.state, "error": trial.error})
    return trial


def _check_names(spec: StudySpec, names: Sequence[str], where: str) -> None:
    known = spec.objective.reports
    if known is None:
        return
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InvalidInput(
            f"{where}.{unknown[0]}: not a metric of this study",
            [{"field": f"{where}.{name}",
              "reason": f"unknown metric {name!r}; the study's objective reports "
                        f"{', '.join(known)}"} for name in unknown],
        )


@dataclass(frozen=True)
class Reported:
    """Steps ``report`` stored, for ``should_prune`` to judge once they are committed."""

    study_id: int
    trial_id: int
    number: int
    optuna_name: str
    spec: StudySpec
    intermediate: dict[int, float]
    should_stop: bool
    # The trial as the pruner sees it (None: there is nothing to judge), read in the report's
    # transaction rather than in one of its own after the commit.
    trial: optuna.trial.FrozenTrial | None = None


def report(
    session: Session, storage: SqlStorage, principal: Principal, study_id: int, number: int,
    steps: Sequence[StepReport], *, lease_s: float,
) -> Reported:
    """Store the steps not stored yet and extend the lease. Flushes only; the pruner is asked
    after the commit (``should_prune``), never while this session holds the trial's lock."""
    now = utcnow()
    study = external_study(session, principal, study_id)
    spec = _spec(study)
    trial = _running_trial(session, study, number)
    for i, item in enumerate(steps):
        _check_names(spec, list(item.metrics), f"{i}.metrics" if len(steps) > 1 else "metrics")
        if i and item.step <= steps[i - 1].step:
            raise InvalidInput.at(f"{i}.step", f"steps of one report must increase; {item.step} "
                                  f"follows {steps[i - 1].step}")
    stored = ext_repo.stored_steps(session, trial.id, [s.step for s in steps])
    fresh = [s for s in steps if s.step not in stored]
    last = ext_repo.last_step(session, trial.id) if fresh else None
    if fresh and last is not None and fresh[0].step < last:
        raise InvalidInput.at(
            "step", f"step {fresh[0].step} goes backwards: step {last} is stored already "
                    "(a step reported again is ignored, a new one must come after the last)")
    metric = None if spec.is_multi_objective else spec.metrics[0]
    intermediate = {int(k): float(v) for k, v in (trial.intermediate_values or {}).items()}
    new_values = {s.step: s.metrics[metric] for s in fresh if metric in s.metrics}
    intermediate.update(new_values)
    if fresh:
        repo.record_reports(session, trial.id, {s.step: s.metrics for s in fresh}, now,
                            intermediate_values=intermediate if new_values else None)
    ext_repo.extend_lease(session, trial.id, now=now, until=now + timedelta(seconds=lease_s))
    judged = intermediate if metric is not None else {}
    return Reported(study_id=study.id, trial_id=trial.id, number=trial.number,
                    optuna_name=study.optuna_name, spec=spec, intermediate=judged,
                    should_stop=_should_stop(study, now),
                    trial=storage.get_trial_in(session.connection(), trial.id) if judged else None)


def should_prune(storage: SqlStorage, reported: Reported) -> ReportAnswer:
    """The study's pruner on the trial as ``report`` left it, as ``Trial.should_prune`` asks it
    (a multi-objective study is never pruned). The pruner reads the study's trials through
    ``SqlStorage`` after the report's commit: a request that held its session's connection
    while it waited for one of the storage's would, with enough of them at once, leave the pool
    with none to give."""
    stored = reported.trial
    if stored is None or not reported.intermediate:
        return ReportAnswer(should_prune=False, should_stop=reported.should_stop)
    frozen = optuna.trial.FrozenTrial(
        number=stored.number, state=stored.state, value=None, values=None,
        datetime_start=stored.datetime_start, datetime_complete=None, params=stored.params,
        distributions=stored.distributions, user_attrs=stored.user_attrs,
        system_attrs=stored.system_attrs, intermediate_values=reported.intermediate,
        trial_id=stored._trial_id,
    )
    # Hyperband builds a Study per bracket: it looks the name up too.
    with storage.study_known(reported.optuna_name, reported.study_id):
        ostudy = optuna_study(storage, reported.optuna_name, reported.spec, reported.number)
        prune = bool(ostudy.pruner.prune(ostudy, frozen))
    return ReportAnswer(should_prune=prune, should_stop=reported.should_stop)


def heartbeat(
    session: Session, principal: Principal, study_id: int, number: int, *, lease_s: float
) -> tuple[datetime, bool]:
    """Extend the trial's lease; returns (its new end, whether the trial should stop)."""
    now = utcnow()
    study = external_study(session, principal, study_id)
    trial = _running_trial(session, study, number)
    until = now + timedelta(seconds=lease_s)
    ext_repo.extend_lease(session, trial.id, now=now, until=until)
    return until, _should_stop(study, now)


# --- tell -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Telling:
    """A checked tell, for ``record_tell`` and ``settle_tell``."""

    study_id: int
    trial_id: int
    number: int
    optuna_name: str
    spec: StudySpec
    state: TrialState
    values: list[float] | None
    final_metrics: dict[str, float]
    error: str | None
    judged: bool


def check_tell(
    session: Session, principal: Principal, study_id: int, number: int, body: TellRequest
) -> Telling:
    """Check a tell against the trial and the study; changes nothing."""
    study = external_study(session, principal, study_id)
    spec = _spec(study)
    trial = _running_trial(session, study, number)
    if body.params is not None:
        _check_params_unchanged({**trial_params(trial), **spec.fixed}, body.params)
    metrics = dict(body.metrics or {})
    _check_names(spec, list(metrics), "metrics")
    state = TrialState(body.state)
    values: list[float] | None = None
    if state == TrialState.COMPLETE:
        values = _values(spec, body)
        metrics = {**dict(zip(spec.metrics, values, strict=True)), **metrics}
    last = ext_repo.last_step(session, trial.id)
    reported = {name: value for name, value in ext_repo.metrics_at_step(session, trial.id, last)
                if value is not None} if last is not None else {}
    error = body.error
    if state == TrialState.FAIL and not error:
        error = "the client told the trial failed"
    return Telling(
        study_id=study.id, trial_id=trial.id, number=trial.number,
        optuna_name=study.optuna_name, spec=spec, state=state, values=values,
        final_metrics={**reported, **metrics}, error=error,
        judged=study.standard_version_id is not None,
    )


def _check_params_unchanged(handed: Mapping[str, Any], given: Mapping[str, Any]) -> None:
    problems = [
        {"field": f"params.{name}",
         "reason": (f"the trial was handed {name}={handed[name]!r}; a tell cannot change it"
                    if name in handed else f"the trial has no parameter {name!r}")}
        for name, value in given.items()
        if name not in handed or not _same(value, handed[name])
    ]
    if problems:
        raise InvalidInput(f"{problems[0]['field']}: {problems[0]['reason']}", problems)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
    return bool(a == b)


def _values(spec: StudySpec, body: TellRequest) -> list[float]:
    if body.values is not None:
        values = body.values if isinstance(body.values, list) else [body.values]
        if len(values) != len(spec.metrics):
            raise InvalidInput.at(
                "values", f"give {len(spec.metrics)} value(s), one per objective "
                          f"({', '.join(spec.metrics)}); got {len(values)}")
        return [float(v) for v in values]
    missing = [m for m in spec.metrics if m not in (body.metrics or {})]
    if missing:
        raise InvalidInput.at(
            "metrics" if body.metrics is not None else "values",
            f"a complete trial needs the study metric {', '.join(missing)}: give values or "
            "metrics that include it")
    assert body.metrics is not None
    return [float(body.metrics[m]) for m in spec.metrics]


def record_tell(storage: SqlStorage, telling: Telling) -> None:
    """Tell Optuna the outcome over ``SqlStorage`` (its own transactions). A trial finished
    meanwhile (another tell, the reaper) is a 409."""
    try:
        if telling.judged:
            storage.set_trial_system_attr(telling.trial_id, verdicts.FINAL_METRICS_ATTR,
                                          verdicts.encode_metrics(telling.final_metrics))
        if telling.error is not None:
            storage.set_trial_system_attr(telling.trial_id, FAIL_REASON_ATTR, telling.error)
        with storage.study_known(telling.optuna_name, telling.study_id,
                                 {telling.number: telling.trial_id}):
            study = optuna_study(storage, telling.optuna_name, telling.spec, telling.number)
            study.tell(telling.number, telling.values, state=_OPTUNA_STATE[telling.state])
    except (UpdateFinishedTrialError, ValueError) as err:
        current = storage.get_trial(telling.trial_id).state
        if not current.is_finished():
            raise
        raise Conflict(f"trial {telling.number} is already {current.name.lower()}",
                       {"state": current.name.lower()}) from err


def settle_tell(session: Session, telling: Telling) -> Trial:
    """After ``record_tell``: the error text, the verdict, and what the study is owed (or its
    completion). Flushes only."""
    if telling.error is not None:
        ext_repo.record_error(session, telling.trial_id, telling.error)
    trial = repo.get_trial_by_id(session, telling.trial_id)
    assert trial is not None
    if telling.judged:
        verdicts.judge(session, trial, telling.final_metrics)
    dispatch.dispatch(session, telling.study_id)
    session.flush()
    session.refresh(trial)
    return trial


# --- the reaper -----------------------------------------------------------------------------------


def lost_reason(trial: Trial, now: datetime) -> str:
    last = trial.heartbeat_at or trial.datetime_start or now
    return f"client lost: no report for {(now - last).total_seconds():.0f} s"


def fail_lost(session: Session, trial_id: int, now: datetime) -> Trial | None:
    """Fail the trial if its lease has passed (still, under the caller's study lock); returns
    it failed, or None when a report or tell got there first."""
    trial = repo.get_trial_by_id(session, trial_id)
    if trial is None or not ext_repo.fail_expired_lease(
        session, trial_id, now=now, reason=lost_reason(trial, now)
    ):
        return None
    session.refresh(trial)
    return trial
