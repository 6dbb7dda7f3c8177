"""The bridge from a delivered ``run_trial`` message to a finished trial.

1. Claim the WAITING trial in the database (a duplicate or late delivery finds nothing to claim).
2. Ask Optuna, over our store (:class:`~tuneboard.optimization.storage.SqlStorage`), for the
   trial's parameters: what ``Study.ask`` does for an enqueued trial, without its search for one.
3. Run the objective with a :class:`~tuneboard.objective.TrialContext` whose reporter stores each
   epoch's metrics, feeds the study metric to the pruner and stops the trial when its study is
   cancelled; a heartbeat thread beats meanwhile (Optuna's own only runs inside ``optimize``).
4. Tell Optuna the outcome, judge the trial against the study's standard, and dispatch what the
   study is owed next; the new trials' messages leave after that commit.

Claiming, telling and dispatching are separate transactions, and none waits on the broker while
it holds a database lock. Each is tried again while the database is unreachable, for up to
``TUNEBOARD_DB_OUTAGE_S`` (:mod:`workers.outage`), as are the reports; a longer outage fails the
trial with the database's error, and an outcome in hand is kept trying until it is recorded.

Every failure of the trial itself (its spec, its device, its objective, its result) ends as a
FAIL with its error, never as an exception out of :func:`run_trial`: a raised task would leave a
claimed trial RUNNING until the reaper's grace period ran out.

The parts live beside this module: the reporter and its writer thread in
:mod:`workers.reporting`, the heartbeat in :mod:`workers.heartbeat`, the stop check in
:mod:`workers.stopping`, what the objective's result becomes in :mod:`workers.results`.

The objective never sees Celery or Optuna, and this module never sees Celery.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from pydantic import ValidationError

from tuneboard.artifacts import ArtifactStore, LocalStore, join_url, open_store
from tuneboard.config import Settings, get_settings
from tuneboard.db import session_scope, utcnow
from tuneboard.db.models import Study
from tuneboard.objective import LATEST_CHECKPOINT, Objective, TrialContext, TrialPruned
from tuneboard.optimization import make_pruner, make_sampler, suggest_params
from tuneboard.optimization.storage import SqlStorage
from tuneboard.queue import enqueue_after_commit
from tuneboard.spec import StudySpec, StudyState, TrialState
from tuneboard.studies import dispatch, verdicts
from tuneboard.studies import repository as repo
from workers import devices
from workers.heartbeat import Heartbeat
from workers.objectives import load_objective
from workers.outage import ride_out
from workers.reporting import TrialReporter
from workers.results import describe_failure, final_metrics, objective_values
from workers.stopping import STUDY_CANCELLED, StopCheck, TrialAborted

__all__ = ["LATEST_CHECKPOINT", "TIMED_OUT", "TrialRun", "run_trial"]

log = logging.getLogger(__name__)

TIMED_OUT = "budget.timeout_s reached before this trial started"


@lru_cache(maxsize=4)
def _storage(url: str) -> SqlStorage:
    # One per process (its cache of finished trials is process-wide), built after the fork.
    return SqlStorage(url)


@lru_cache(maxsize=64)
def _objective(builtin: str | None, entrypoint: str | None) -> Objective:
    # Scanning installed entry points costs milliseconds per trial; what is installed only
    # changes with a worker restart.
    return load_objective({"builtin": builtin, "entrypoint": entrypoint})


@dataclass(frozen=True)
class _Claim:
    """A trial this worker now runs, and what running it needs from its study. ``setup_error``:
    why it cannot run here (its spec is missing or no longer valid, its device is absent); the
    trial then fails with it."""

    trial_id: int
    study_id: int
    number: int
    optuna_name: str
    spec: StudySpec | None
    queue: str
    seed: int
    device: str
    setup_error: Exception | None
    checkpoints: ArtifactStore
    checkpoint_dir: Path
    retried_trial_id: int | None
    judged: bool


@dataclass(frozen=True)
class TrialRun:
    """What running a trial did: its final state, the trials the study was then owed and that
    were sent to ``queue`` (after the commit that created them), and the one kept to run here."""

    trial_id: int
    state: TrialState
    queue: str
    dispatched: list[int]
    kept: int | None = None


KeepNext = Callable[[str], bool]


def run_trial(
    trial_id: int,
    *,
    worker: str,
    settings: Settings | None = None,
    keep_next: KeepNext | None = None,
) -> TrialRun | None:
    """Run trial ``trial_id`` if it is still waiting; None when there was nothing to run.

    ``keep_next(queue)`` true: of the trials the study is owed next, the first is not sent to
    ``queue`` but returned as ``kept``, for the caller to run at once (if the caller dies first,
    the reaper sends it). The others are sent as usual.
    """
    settings = settings or get_settings()
    claim = ride_out(f"claiming trial id {trial_id}",
                     lambda: _claim(settings, trial_id, worker), limit_s=settings.db_outage_s)
    if claim is None:
        return None
    heartbeat = Heartbeat(settings.database_url, trial_id, settings.heartbeat_interval_s)
    heartbeat.start()
    try:
        state, metrics = _run_claimed(settings, claim)
    finally:
        heartbeat.stop()
    queue = claim.queue
    # Asked before the next transaction: never wait on the broker holding a database lock.
    keep = keep_next is not None and keep_next(queue)
    sent, kept = ride_out(f"dispatching after trial id {trial_id}",
                          lambda: _judge_and_dispatch(settings, claim, metrics, keep),
                          limit_s=settings.db_outage_s)
    return TrialRun(trial_id=trial_id, state=state, queue=queue, dispatched=sent, kept=kept)


def _claim(settings: Settings, trial_id: int, worker: str) -> _Claim | None:
    with session_scope(settings.database_url) as session:
        trial = repo.get_trial_by_id(session, trial_id)
        if trial is None:
            log.warning("trial id %s does not exist; message dropped", trial_id)
            return None
        if trial.state != TrialState.WAITING:
            log.info("trial id %s is %s: a duplicate or late delivery, nothing to do",
                     trial_id, trial.state)
            return None
        study = session.get(Study, trial.study_id)
        assert study is not None
        spec, setup_error = _typed_spec(study)
        device = "cpu"
        if spec is not None:
            try:
                device = devices.select_device(spec.resources.device)
            except RuntimeError as err:
                setup_error = err
        now = utcnow()
        if dispatch.timed_out(study, now):
            repo.lock_study(session, study.id)  # the study row before its trials, as everywhere
            repo.fail_waiting_trials(session, study.id, TIMED_OUT, now)
            log.info("study %s ran out of budget.timeout_s; trial id %s not started",
                     study.id, trial_id)
            return None
        if not repo.claim_trial(session, trial_id, worker=worker,
                                device=devices.describe_device(device), now=now):
            log.info("trial id %s was claimed by another worker", trial_id)
            return None
        retried = (
            repo.get_trial(session, study.id, trial.retry_of)
            if trial.retry_of is not None else None
        )
        # A retry keeps its lost attempt's checkpoints, to resume from them.
        where = (str(study.id), str(trial.retry_of if trial.retry_of is not None else trial.number))
        checkpoint_url = trial.checkpoint_path or join_url(settings.artifact_url, *where)
        repo.set_checkpoint_path(session, trial_id, checkpoint_url)
        try:
            checkpoints = open_store(checkpoint_url, s3_endpoint=settings.artifact_s3_endpoint)
        except ImportError as err:  # an object store without fsspec/s3fs installed
            checkpoints, setup_error = LocalStore(settings.checkpoint_root.joinpath(*where)), err
        # Files an objective writes itself: the store's directory, or one of this host's.
        checkpoint_dir = (checkpoints.root if isinstance(checkpoints, LocalStore)
                          else settings.checkpoint_root.joinpath(*where))
        log.info("trial %s/%d (attempt %d) claimed by %s on %s", study.id, trial.number,
                 trial.attempt, worker, device)
        queued = study.state == StudyState.QUEUED
        claim = _Claim(
            trial_id=trial_id,
            study_id=study.id,
            number=trial.number,
            optuna_name=study.optuna_name,
            spec=spec,
            queue=dispatch.queue_of(study),
            seed=int(trial.seed or 0),
            device=device,
            setup_error=setup_error,
            checkpoints=checkpoints,
            checkpoint_dir=checkpoint_dir,
            retried_trial_id=retried.id if retried is not None else None,
            judged=study.standard_version_id is not None,
        )
    if queued:
        # A transaction of its own: locking the study while holding the trial could deadlock
        # with a cancel, which locks the study and then the waiting trials.
        with session_scope(settings.database_url) as session:
            repo.start_study(session, claim.study_id, utcnow())
    return claim


def _typed_spec(study: Study) -> tuple[StudySpec | None, Exception | None]:
    try:
        spec = study.spec_model
    except ValidationError as exc:
        return None, exc
    if spec is None:
        return None, ValueError("the study has no spec: it was created through Optuna's API")
    return spec, None


def _run_claimed(settings: Settings, claim: _Claim) -> tuple[TrialState, dict[str, float]]:
    """Ask, run and tell; every failure of the trial itself becomes a FAIL with its error."""
    url = settings.database_url
    outage_s = settings.db_outage_s
    storage = _storage(url)
    reporter: TrialReporter | None = None
    trial: optuna.trial.Trial | None = None
    study: optuna.Study | None = None
    try:
        if claim.setup_error is not None:
            raise claim.setup_error
        spec = claim.spec
        assert spec is not None
        stop = StopCheck(url, claim.trial_id, spec.budget.timeout_s)
        study, trial, params = ride_out(f"asking for trial id {claim.trial_id}",
                                        lambda: _ask(storage, claim, spec), limit_s=outage_s)
        reporter = TrialReporter(
            url, storage, trial, claim.trial_id, claim.retried_trial_id,
            None if spec.is_multi_objective else spec.metrics[0], stop, outage_s=outage_s,
        )
        ctx = _context(spec, claim, params, reporter, stop)
        objective = _objective(spec.objective.builtin, spec.objective.entrypoint)
        _seed_everything(claim.seed)
        try:
            result = objective(ctx)
        finally:
            reporter.close()  # every report stored before the trial is told finished
        if stop.cancelled:
            raise TrialAborted(STUDY_CANCELLED.message)
        values = objective_values(result, spec.metrics)
        final = {**reporter.last_metrics, **final_metrics(result, spec.metrics)}
        _tell(storage, claim, study, trial, final, values=values)
        log.info("trial %s/%d complete: %s", claim.study_id, claim.number, values)
        return TrialState.COMPLETE, final
    except (TrialPruned, optuna.TrialPruned):
        assert study is not None and trial is not None and reporter is not None
        _tell(storage, claim, study, trial, reporter.last_metrics,
              state=optuna.trial.TrialState.PRUNED)
        log.info("trial %s/%d pruned", claim.study_id, claim.number)
        return TrialState.PRUNED, reporter.last_metrics
    except Exception as exc:
        error = describe_failure(exc)
        log.info("trial %s/%d failed: %s", claim.study_id, claim.number, error.splitlines()[0])
        last_metrics = reporter.last_metrics if reporter else {}
        # Kept trying until the database answers: given up, the failure would be recorded by
        # the reaper as a lost worker instead of what it was.
        ride_out(f"recording the failure of trial id {claim.trial_id}",
                 lambda: _record_failure(storage, claim, study, trial, error, last_metrics),
                 limit_s=None)
        return TrialState.FAIL, last_metrics


def _ask(
    storage: SqlStorage, claim: _Claim, spec: StudySpec
) -> tuple[optuna.Study, optuna.trial.Trial, dict[str, Any]]:
    """The study, the trial and its parameters; asked again after an outage, it finds the
    parameters already stored and returns them."""
    study = optuna.load_study(
        study_name=claim.optuna_name,
        storage=storage,
        sampler=make_sampler(spec.sampler, spec.search_space,
                             n_objectives=len(spec.metrics), trial_seed_offset=claim.number,
                             search=spec.search),
        pruner=make_pruner(spec.pruner, max_steps=spec.objective.max_epochs),
    )
    # Study.ask for an enqueued trial: the Trial applies system_attrs["fixed_params"] and
    # calls sampler.before_trial itself.
    trial = optuna.trial.Trial(study, claim.trial_id)
    return study, trial, {**suggest_params(trial, spec.search_space), **spec.fixed}


def _tell(
    storage: SqlStorage,
    claim: _Claim,
    study: optuna.Study,
    trial: optuna.trial.Trial,
    metrics: dict[str, float],
    *,
    values: list[float] | None = None,
    state: optuna.trial.TrialState | None = None,
) -> None:
    """Record the final metrics and tell Optuna the outcome. The outcome is in hand, so it is
    kept trying until the database answers, however long the outage; a retry after a tell
    that did land finds the trial finished and skips it."""

    def tell() -> None:
        _record_final_metrics(storage, claim, metrics)
        study.tell(trial, values, state=state, skip_if_finished=True)

    ride_out(f"the result of trial id {claim.trial_id}", tell, limit_s=None)


def _record_failure(
    storage: SqlStorage,
    claim: _Claim,
    study: optuna.Study | None,
    trial: optuna.trial.Trial | None,
    error: str,
    metrics: dict[str, float],
) -> None:
    with session_scope(storage.url) as session:
        repo.record_trial_error(session, claim.trial_id, error)
    if study is not None and trial is not None:
        if storage.get_trial(claim.trial_id).state.is_finished():
            return  # a try before an outage landed, or the reaper already failed the trial
        storage.set_trial_system_attr(claim.trial_id, "fail_reason", error)
        _record_final_metrics(storage, claim, metrics)
        study.tell(trial, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
    elif storage.get_trial(claim.trial_id).state == optuna.trial.TrialState.RUNNING:
        storage.set_trial_state_values(claim.trial_id, optuna.trial.TrialState.FAIL)


def _record_final_metrics(storage: SqlStorage, claim: _Claim, metrics: dict[str, float]) -> None:
    """What the verdict records on the trial, written while it still runs: a finished trial's
    Optuna fields never change (processes cache them), so the verdict rewrites the same value."""
    if claim.judged:
        storage.set_trial_system_attr(claim.trial_id, verdicts.FINAL_METRICS_ATTR,
                                      verdicts.encode_metrics(metrics))


def _context(
    spec: StudySpec,
    claim: _Claim,
    params: dict[str, Any],
    reporter: TrialReporter,
    stop: StopCheck,
) -> TrialContext:
    dumped = spec.model_dump(mode="json")
    resume_from = (
        claim.checkpoints.fetch(LATEST_CHECKPOINT, claim.checkpoint_dir)
        if claim.retried_trial_id is not None else None
    )
    return TrialContext(
        params=params,
        device=claim.device,
        checkpoint_dir=claim.checkpoint_dir,
        checkpoints=claim.checkpoints,
        config={
            "objective": dumped["objective"],
            "early_stopping": dumped["early_stopping"],
            "callbacks": dumped["callbacks"],
        },
        seed=claim.seed,
        trial_number=claim.number,
        reporter=reporter,
        stop_requested=stop,
        resume_from=resume_from,
        reports_flusher=reporter.flush,
    )


def _judge_and_dispatch(
    settings: Settings, claim: _Claim, metrics: dict[str, float], keep: bool
) -> tuple[list[int], int | None]:
    """Judge the finished trial against the study's standard, then dispatch what is owed:
    ``dispatch.dispatch``, less the trial kept to run here if ``keep``."""
    with session_scope(settings.database_url) as session:
        # The study row before any trial row, the one lock order of every writer: judging
        # writes the trial, and a stability re-run or the dispatch below locks the study.
        repo.lock_study(session, claim.study_id)
        if claim.judged:
            trial = repo.get_trial_by_id(session, claim.trial_id)
            if trial is not None:
                verdicts.judge(session, trial, metrics)
        owed = dispatch.plan(session, claim.study_id)
        kept = None
        if owed and keep:
            kept, owed = owed[0][0], owed[1:]
        enqueue_after_commit(session, owed)
    return [trial_id for trial_id, _ in owed], kept


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
