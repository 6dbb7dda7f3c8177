"""The bridge from a delivered ``run_trial`` message to a finished trial.

1. Claim the WAITING trial in the database (a duplicate or late delivery finds nothing to claim).
2. Ask Optuna, over our store (:class:`~tuneboard.optimization.storage.SqlStorage`), for the
   trial's parameters: what ``Study.ask`` does for an enqueued trial, without its search for one.
   The trial it asks about is the one the claim read; the parameters are written by the
   reporter's writer, with the first batch of reports (or alone, if none comes within
   ``workers.reporting.LINGER_S``), all of them in that one transaction or none.
3. Run the objective with a :class:`~tuneboard.objective.TrialContext` whose reporter stores each
   epoch's metrics, feeds the study metric to the pruner and stops the trial when its study is
   cancelled; a heartbeat thread beats meanwhile (Optuna's own only runs inside ``optimize``).
4. Tell Optuna the outcome, judge the trial against the study's standard, and dispatch what the
   study is owed next, in one transaction under the study's row lock (the study row, then the
   trial's, as every writer locks them); the new trials' messages leave after that commit. The
   reports the writer had not started writing when the objective ended go in that transaction
   too, before the outcome; if storing them fails (other than for an outage) the trial fails
   with that error instead, without them.
   Optuna's tell runs in memory (its checks, the sampler's ``after_trial``) and its outcome is
   written in that transaction.

A trial thus costs the database one transaction to claim (which also reads the trial for the
ask), one per batch of reports but the last (the first also carries the parameters; each
carries the heartbeat and, every half second, the stop check's poll), and one to finish: a
trial shorter than ``workers.reporting.LINGER_S`` costs two. None waits on the broker while it
holds a database lock. Each is tried again while the database is unreachable, for up to
``TUNEBOARD_DB_OUTAGE_S`` (:mod:`workers.outage`), as are the reports; a longer outage fails
the trial with the database's error, and an outcome in hand is kept trying until it is
recorded.

Every failure of the trial itself (its spec, its device, its objective, its result) ends as a
FAIL with its error, never as an exception out of :func:`run_trial`: a raised task would leave a
claimed trial RUNNING until the reaper's grace period ran out.

The parts live beside this module: the reporter and its writer thread in
:mod:`workers.reporting`, the heartbeat in :mod:`workers.heartbeat`, the stop check in
:mod:`workers.stopping`, what the objective's result becomes in :mod:`workers.results`.

The objective never sees Celery or Optuna, and this module never sees Celery.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from optuna.distributions import BaseDistribution
from pydantic import ValidationError
from sqlalchemy.orm import Session

from tuneboard.artifacts import ArtifactStore, LocalStore, join_url, open_store
from tuneboard.client.optuna import encode
from tuneboard.config import Settings, get_settings
from tuneboard.db import describe_db_error, session_scope, utcnow
from tuneboard.db.models import Study, Trial
from tuneboard.objective import LATEST_CHECKPOINT, Objective, TrialContext, TrialPruned
from tuneboard.optimization.claimed import ask_claimed, optuna_study
from tuneboard.optimization.storage import SqlStorage
from tuneboard.queue import enqueue_after_commit
from tuneboard.spec import StudySpec, StudyState, TrialState
from tuneboard.studies import dispatch, verdicts
from tuneboard.studies import repository as repo
from workers import devices
from workers.checkpointing import OrderedCheckpointStore
from workers.heartbeat import Heartbeat
from workers.objectives import load_objective
from workers.outage import is_outage, ride_out
from workers.reporting import TrialReporter, UnwrittenReports
from workers.results import describe_failure, final_metrics, objective_values
from workers.stopping import STUDY_CANCELLED, StopCheck, TrialAborted

__all__ = ["LATEST_CHECKPOINT", "TIMED_OUT", "TrialRun", "run_trial"]

log = logging.getLogger(__name__)

TIMED_OUT = "budget.timeout_s reached before this trial started"


# Takes a running trial's whole system-attribute record, as stored, to write it.
SystemAttrsSink = Callable[[Mapping[str, Any]], None]


class _WorkerStorage(SqlStorage):
    """``SqlStorage`` as a worker uses it, without four of its round trips per trial:

    - the claimed trial, as the claim holds it (built for a new sampler trial, read in the
      claim's transaction otherwise), answers Optuna's first ``get_trial`` of it, the one its
      ``Trial`` is built from, and its first parameters are one update
      (``SqlStorage.remember_trial``);
    - inside :meth:`deferring_params`, the parameters the ask writes together
      (``params_together``) are kept in what it yields instead, for the reporter's writer to
      write with the trial's first reports (:meth:`SqlStorage.set_trial_params_in`);
    - the study-name lookup is answered for the studies this worker claimed (the claim read the
      id from the study row itself): Optuna makes one for every ``Study`` it builds, and a
      Hyperband pruner builds one per report and per parameter;
    - inside :meth:`holding_outcome`, this thread's tell of the running trial is kept in hand
      instead of written, for the runner to write in the transaction that judges the trial
      and dispatches the next (Optuna's tell would read the trial and write it, two more);
    - inside :meth:`running`, the running trial's system attributes are answered from the
      worker's copy: the pruner reads them at every report (Optuna's lazy ``system_attrs``),
      and while the trial runs only this worker writes them, through this storage. What the
      pruner writes (a Hyperband rung per rung reached) goes to the reporter, to be written
      with its next batch of reports, instead of a transaction of its own.
    """

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._claimed: dict[str, int] = {}
        self._held = threading.local()
        self._running: dict[int, tuple[optuna.trial.FrozenTrial, SystemAttrsSink]] = {}
        self._deferred: dict[int, dict[str, tuple[float, BaseDistribution]]] = {}

    def remember_study(self, optuna_name: str, study_id: int) -> None:
        self._claimed[optuna_name] = study_id

    @contextmanager
    def deferring_params(
        self, trial_id: int
    ) -> Iterator[dict[str, tuple[float, BaseDistribution]]]:
        """Within the block, ``set_trial_params`` of ``trial_id`` adds them to what this
        yields instead of writing them."""
        deferred: dict[str, tuple[float, BaseDistribution]] = {}
        self._deferred[trial_id] = deferred
        try:
            yield deferred
        finally:
            self._deferred.pop(trial_id, None)

    def set_trial_params(
        self, trial_id: int, params: Mapping[str, tuple[float, BaseDistribution]]
    ) -> None:
        deferred = self._deferred.get(trial_id)
        if deferred is None:
            super().set_trial_params(trial_id, params)
        else:
            deferred.update(params)

    def get_study_id_from_name(self, study_name: str) -> int:
        study_id = self._claimed.get(study_name)
        return study_id if study_id is not None else super().get_study_id_from_name(study_name)

    @contextmanager
    def holding_outcome(self, trial: optuna.trial.FrozenTrial) -> Iterator[_HeldOutcome]:
        """Within the block, ``get_trial`` of ``trial`` answers with the worker's own copy (it
        holds every parameter and intermediate value written), and ``set_trial_state_values``
        records the outcome in what this yields."""
        held = _HeldOutcome(trial)
        self._held.outcome = held
        try:
            yield held
        finally:
            self._held.outcome = None

    @contextmanager
    def running(self, trial: optuna.trial.FrozenTrial, write: SystemAttrsSink) -> Iterator[None]:
        """Within the block, ``trial``'s system attributes are read from this copy, and a change
        of them updates it and hands the whole record, as stored, to ``write``."""
        self._running[trial._trial_id] = (trial, write)
        try:
            yield
        finally:
            self._running.pop(trial._trial_id, None)

    def get_trial_system_attrs(self, trial_id: int) -> dict[str, Any]:
        running = self._running.get(trial_id)
        if running is None:
            return super().get_trial_system_attrs(trial_id)
        return dict(running[0].system_attrs)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        running = self._running.get(trial_id)
        if running is None:
            super().set_trial_system_attr(trial_id, key, value)
            return
        trial, write = running
        trial.system_attrs[key] = value
        write({name: encode(item) for name, item in trial.system_attrs.items()})

    def _holding(self, trial_id: int) -> _HeldOutcome | None:
        held: _HeldOutcome | None = getattr(self._held, "outcome", None)
        return held if held is not None and held.trial._trial_id == trial_id else None

    def get_trial(self, trial_id: int) -> optuna.trial.FrozenTrial:
        held = self._holding(trial_id)
        if held is not None:
            return held.trial
        return super().get_trial(trial_id)

    def set_trial_state_values(
        self, trial_id: int, state: optuna.trial.TrialState,
        values: Sequence[float] | None = None,
    ) -> bool:
        held = self._holding(trial_id)
        if held is None:
            return super().set_trial_state_values(trial_id, state, values)
        held.state, held.values = state, None if values is None else list(values)
        return True

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        del state["_held"], state["_running"], state["_deferred"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._held = threading.local()
        self._running, self._deferred = {}, {}


@dataclass
class _HeldOutcome:
    """What Optuna's tell decided for a trial, not yet written."""

    trial: optuna.trial.FrozenTrial
    state: optuna.trial.TrialState | None = None
    values: list[float] | None = None


@lru_cache(maxsize=4)
def _storage(url: str) -> _WorkerStorage:
    # One per process (its cache of finished trials is process-wide), built after the fork.
    return _WorkerStorage(url)


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
    # The trial as the claim left it, for the ask (None: it cannot run here).
    optuna_trial: optuna.trial.FrozenTrial | None = None


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
    spans = _Spans()
    with spans("claim"):
        claim = ride_out(f"claiming trial id {trial_id}",
                         lambda: _claim(settings, trial_id, worker), limit_s=settings.db_outage_s)
    if claim is None:
        return None
    try:
        outcome, sent, kept = _run_and_finish(settings, claim, spans, keep_next)
    finally:
        # What the ask remembered of the claimed trial is spent by now, or never will be.
        _storage(settings.database_url).forget_trial(trial_id)
    log.info("trial id %s took %s", trial_id, spans)
    return TrialRun(trial_id=trial_id, state=outcome.state, queue=claim.queue, dispatched=sent,
                    kept=kept)


def _run_and_finish(
    settings: Settings, claim: _Claim, spans: _Spans, keep_next: KeepNext | None
) -> tuple[_Outcome, list[int], int | None]:
    heartbeat = Heartbeat(settings.database_url, claim.trial_id, settings.heartbeat_interval_s)
    heartbeat.start()
    try:
        outcome = _run_claimed(settings, claim, heartbeat, spans)
    finally:
        heartbeat.stop()
    # Asked before the next transaction: never wait on the broker holding a database lock.
    keep = keep_next is not None and keep_next(claim.queue)
    with spans("finish"):
        try:
            sent, kept = _finish_riding_out(settings, claim, outcome, keep)
        except Exception as exc:
            if outcome.reports is None or is_outage(exc):
                raise
            outcome = _reports_lost(outcome, exc)
            sent, kept = _finish_riding_out(settings, claim, outcome, keep)
    return outcome, sent, kept


def _claim(settings: Settings, trial_id: int, worker: str) -> _Claim | None:
    with session_scope(settings.database_url) as session:
        found = repo.get_trial_and_study(session, trial_id)
        if found is None:
            log.warning("trial id %s does not exist; message dropped", trial_id)
            return None
        trial, study = found
        if trial.state != TrialState.WAITING:
            log.info("trial id %s is %s: a duplicate or late delivery, nothing to do",
                     trial_id, trial.state)
            return None
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
        # A retry keeps its lost attempt's checkpoints, to resume from them.
        where = (str(study.id), str(trial.retry_of if trial.retry_of is not None else trial.number))
        checkpoint_url = trial.checkpoint_path or join_url(settings.artifact_url, *where)
        if not repo.claim_trial(session, trial_id, worker=worker,
                                device=devices.describe_device(device), now=now,
                                checkpoint_path=checkpoint_url):
            log.info("trial id %s was claimed by another worker", trial_id)
            return None
        retried = (
            repo.get_trial(session, study.id, trial.retry_of)
            if trial.retry_of is not None else None
        )
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
        optuna_trial = None if setup_error is not None else _started(
            _storage(settings.database_url), session, trial, now)
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
            optuna_trial=optuna_trial,
        )
    if queued:
        # A transaction of its own: locking the study while holding the trial could deadlock
        # with a cancel, which locks the study and then the waiting trials.
        with session_scope(settings.database_url) as session:
            repo.start_study(session, claim.study_id, utcnow())
    return claim


def _started(
    storage: SqlStorage, session: Session, trial: Trial, now: datetime
) -> optuna.trial.FrozenTrial:
    """The claimed trial as Optuna's ask reads it. A sampler's new trial holds nothing yet (no
    parameters, attributes or values), so it is known without reading it back; a retry, a
    re-run or a warm start carries its fixed parameters in its attributes, and is read in the
    claim's transaction."""
    if not (trial.params or trial.system_attrs or trial.user_attrs or trial.intermediate_values
            or trial.values):
        return storage.started_trial(trial.id, trial.number, now)
    return storage.get_trial_in(session.connection(), trial.id)


def _finish_riding_out(
    settings: Settings, claim: _Claim, outcome: _Outcome, keep: bool
) -> tuple[list[int], int | None]:
    # An outcome in hand is kept trying however long the outage: given up, the reaper would
    # record the trial as lost instead of what it did.
    return ride_out(f"the result of trial id {claim.trial_id}",
                    lambda: _finish(settings, claim, outcome, keep), limit_s=None)


def _reports_lost(outcome: _Outcome, exc: Exception) -> _Outcome:
    """The trial fails with why its last reports could not be stored, as it would had the
    writer failed to store them."""
    log.error("storing the last reports of a trial failed: %s", describe_db_error(exc))
    failure = RuntimeError(f"storing the trial's reports failed: {describe_db_error(exc)}")
    failure.__cause__ = exc
    error = describe_failure(failure)
    return dataclasses.replace(
        outcome, state=TrialState.FAIL, values=None, reports=None, error=error,
        system_attrs={**outcome.system_attrs, "fail_reason": error},
    )


def _typed_spec(study: Study) -> tuple[StudySpec | None, Exception | None]:
    try:
        spec = study.spec_model
    except ValidationError as exc:
        return None, exc
    if spec is None:
        return None, ValueError("the study has no spec: it was created through Optuna's API")
    return spec, None


class _Spans(dict[str, float]):
    """Milliseconds of each part of a trial's run, logged at its end: where a trial's time goes
    outside its objective (``bench/service_pruning.py`` reads them from the worker's log)."""

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self[name] = self.get(name, 0.0) + 1000 * (time.perf_counter() - start)

    def __str__(self) -> str:
        return " ".join(f"{name}={ms:.1f}ms" for name, ms in self.items())


@dataclass(frozen=True)
class _Outcome:
    """How a trial ended: the Optuna outcome (``values`` under ``state``) that :func:`_finish`
    writes beside the verdict and the dispatch."""

    state: TrialState
    metrics: dict[str, float]
    values: list[float] | None = None
    system_attrs: dict[str, Any] = dataclasses.field(default_factory=dict)
    error: str | None = None
    # What the reporter's writer handed over, written in the finish's transaction.
    reports: UnwrittenReports | None = None


def _run_claimed(
    settings: Settings, claim: _Claim, heartbeat: Heartbeat, spans: _Spans
) -> _Outcome:
    """Ask, run and decide the outcome; every failure of the trial itself becomes a FAIL with
    its error, recorded here."""
    url = settings.database_url
    outage_s = settings.db_outage_s
    storage = _storage(url)
    reporter: TrialReporter | None = None
    unwritten: UnwrittenReports | None = None
    trial: optuna.trial.Trial | None = None
    study: optuna.Study | None = None
    try:
        if claim.setup_error is not None:
            raise claim.setup_error
        spec = claim.spec
        assert spec is not None
        stop = StopCheck(url, claim.trial_id, spec.budget.timeout_s)
        with spans("ask"):
            study, trial, params, suggested = ride_out(
                f"asking for trial id {claim.trial_id}", lambda: _ask(storage, claim, spec),
                limit_s=outage_s)
        reporter = TrialReporter(
            url, storage, trial, claim.trial_id, claim.retried_trial_id,
            None if spec.is_multi_objective else spec.metrics[0], stop, outage_s=outage_s,
            on_written=heartbeat.carried, params=suggested,
        )
        checkpoints = OrderedCheckpointStore(claim.checkpoints, reporter.flush)
        ctx = _context(spec, claim, params, reporter, stop, checkpoints)
        objective = _objective(spec.objective.builtin, spec.objective.entrypoint)
        _seed_everything(claim.seed)
        try:
            with (spans("objective"),
                  storage.running(trial._cached_frozen_trial, reporter.put_system_attrs)):
                result = objective(ctx)
        finally:
            spans.update({f"objective.{name}": 1000 * s for name, s in ctx.spans.items()})
            with spans("reports_close"):
                # Every checkpoint and report stored before the trial is told finished.
                try:
                    checkpoints.close()
                finally:
                    unwritten = reporter.hand_over()
        if stop.cancelled:
            raise TrialAborted(STUDY_CANCELLED.message)
        values = objective_values(result, spec.metrics)
        final = {**reporter.last_metrics, **final_metrics(result, spec.metrics)}
        log.info("trial %s/%d complete: %s", claim.study_id, claim.number, values)
        outcome = _tell(storage, claim, study, trial, final, values=values)
    except (TrialPruned, optuna.TrialPruned):
        assert study is not None and trial is not None and reporter is not None
        log.info("trial %s/%d pruned", claim.study_id, claim.number)
        outcome = _tell(storage, claim, study, trial, reporter.last_metrics,
                        state=optuna.trial.TrialState.PRUNED)
    except Exception as exc:
        error = describe_failure(exc)
        log.info("trial %s/%d failed: %s", claim.study_id, claim.number, error.splitlines()[0])
        outcome = _failed(storage, claim, study, trial, error,
                          reporter.last_metrics if reporter else {})
    return outcome if unwritten is None else dataclasses.replace(outcome, reports=unwritten)


def _ask(
    storage: _WorkerStorage, claim: _Claim, spec: StudySpec
) -> tuple[optuna.Study, optuna.trial.Trial, dict[str, Any],
           dict[str, tuple[float, BaseDistribution]]]:
    """The study, the trial, its parameters, and the suggestions for the reporter to write
    (nothing is written here: asked again after an outage, it asks afresh)."""
    storage.remember_study(claim.optuna_name, claim.study_id)
    if claim.optuna_trial is not None:
        # A copy: a retried ask must not find the suggestions of the one before.
        storage.remember_trial(copy.deepcopy(claim.optuna_trial), claim.study_id)
    study = optuna_study(storage, claim.optuna_name, spec, claim.number)
    with storage.deferring_params(claim.trial_id) as suggested:
        trial, params = ask_claimed(storage, study, claim.trial_id, spec)
    return study, trial, params, dict(suggested)


def _tell(
    storage: _WorkerStorage,
    claim: _Claim,
    study: optuna.Study,
    trial: optuna.trial.Trial,
    metrics: dict[str, float],
    *,
    values: list[float] | None = None,
    state: optuna.trial.TrialState | None = None,
) -> _Outcome:
    """Optuna's tell (its checks, the sampler's ``after_trial``), with the outcome held for
    :func:`_finish` to write instead of written here. The worker's copy of the trial is what
    Optuna's tell reads: the reporter and the parameters' suggestions keep it current."""
    attrs = _final_metrics_attrs(claim, metrics)
    frozen = trial._cached_frozen_trial
    # The sampler's constraints (``after_trial``) read the final metrics from the trial.
    frozen.system_attrs.update(attrs)
    with storage.holding_outcome(frozen) as held:
        study.tell(trial, values, state=state)
    assert held.state is not None
    return _Outcome(TrialState(held.state.name.lower()), metrics, values=held.values,
                    system_attrs=attrs)


def _failed(
    storage: _WorkerStorage,
    claim: _Claim,
    study: optuna.Study | None,
    trial: optuna.trial.Trial | None,
    error: str,
    metrics: dict[str, float],
) -> _Outcome:
    """A FAIL with its error, held for :func:`_finish` like any other outcome: the failure, the
    verdict and the dispatch land in one transaction, so a study never shows its last trial
    ended while the study itself is not yet settled. Optuna's tell runs when the ask got as far
    as a trial (the sampler's ``after_trial`` sees the failure); a tell that fails itself still
    leaves the FAIL to write."""
    attrs = {"fail_reason": error, **_final_metrics_attrs(claim, metrics)}
    if study is not None and trial is not None:
        try:
            told = _tell(storage, claim, study, trial, metrics,
                         state=optuna.trial.TrialState.FAIL)
            return dataclasses.replace(told, error=error, system_attrs={**told.system_attrs,
                                                                         **attrs})
        except Exception:
            log.exception("trial id %s: Optuna's tell of its failure failed", claim.trial_id)
    return _Outcome(TrialState.FAIL, metrics, system_attrs=attrs, error=error)


def _final_metrics_attrs(claim: _Claim, metrics: dict[str, float]) -> dict[str, Any]:
    """What the verdict records on the trial, written with its outcome: a finished trial's
    Optuna fields never change (processes cache them), so the verdict rewrites the same value."""
    if not claim.judged:
        return {}
    return {verdicts.FINAL_METRICS_ATTR: verdicts.encode_metrics(metrics)}


def _context(
    spec: StudySpec,
    claim: _Claim,
    params: dict[str, Any],
    reporter: TrialReporter,
    stop: StopCheck,
    checkpoints: OrderedCheckpointStore,
) -> TrialContext:
    dumped = spec.model_dump(mode="json", include={"objective", "early_stopping", "callbacks"})
    resume_from = (
        claim.checkpoints.fetch(LATEST_CHECKPOINT, claim.checkpoint_dir)
        if claim.retried_trial_id is not None else None
    )
    return TrialContext(
        params=params,
        device=claim.device,
        checkpoint_dir=claim.checkpoint_dir,
        checkpoints=checkpoints,
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


def _finish(
    settings: Settings, claim: _Claim, outcome: _Outcome, keep: bool
) -> tuple[list[int], int | None]:
    """One transaction: the reports handed over, the trial's outcome, its verdict against the
    study's standard, and what the study is owed next (``dispatch.plan``), less the trial kept
    to run here if ``keep``. A trial the reaper failed meanwhile keeps the reaper's outcome."""
    with session_scope(settings.database_url) as session:
        # The study row before any trial row, the one lock order of every writer: the outcome
        # and the verdict write the trial, a stability re-run and the dispatch lock the study.
        study = repo.lock_study(session, claim.study_id)
        # The last reports' update of the trial's row goes in the outcome's.
        columns = outcome.reports.write(session) if outcome.reports is not None else {}
        repo.finish_trial(session, claim.trial_id, outcome.state, outcome.values, utcnow(),
                          system_attrs=outcome.system_attrs, error=outcome.error,
                          columns=columns)
        if claim.judged:
            trial = repo.get_trial_by_id(session, claim.trial_id)
            if trial is not None and trial.state.is_finished():
                verdicts.judge(session, trial, outcome.metrics)
        # Without a verdict nothing above changed the study row: the dispatch plans on the row
        # as locked here. A verdict may have started stability re-runs (an update of the row of
        # its own), and then the dispatch reads the row again.
        owed = dispatch.plan(session, claim.study_id, locked=None if claim.judged else study)
        kept = None
        if owed and keep:
            kept, owed = owed[0][0], owed[1:]
        enqueue_after_commit(session, owed)
    return [trial_id for trial_id, _ in owed], kept


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    # ``torch.manual_seed`` also queues a seed for every accelerator backend this build knows,
    # each capturing the call's traceback while the backend is not initialised: about 1 ms per
    # trial in a pool process, for backends a host without them never starts. The CPU's
    # generator, and CUDA's where there is one, are what a trial here can draw from.
    torch.random.default_generator.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
