"""The bridge from a delivered ``run_trial`` message to a finished trial.

1. Claim the WAITING trial in the database (a duplicate or late delivery finds nothing to claim).
2. Ask Optuna, over our store (:class:`~tuneboard.optimization.storage.SqlStorage`), for the
   trial's parameters: what ``Study.ask`` does for an enqueued trial, without its search for one.
3. Run the objective with a :class:`~tuneboard.objective.TrialContext` whose reporter stores each
   epoch's metrics, feeds the study metric to the pruner and stops the trial when its study is
   cancelled; a heartbeat thread beats meanwhile (Optuna's own only runs inside ``optimize``).
4. Tell Optuna the outcome, judge the trial against the study's standard, and dispatch what the
   study is owed next; the new trials' messages leave after that commit.

The objective never sees Celery or Optuna, and this module never sees Celery.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from optuna.trial import TrialState

from tuneboard.config import Settings, get_settings
from tuneboard.db import session_scope, utcnow
from tuneboard.db.models import Study
from tuneboard.objective import Objective, TrialContext, TrialPruned
from tuneboard.optimization import make_pruner, make_sampler, suggest_params
from tuneboard.optimization.storage import SqlStorage
from tuneboard.queue import enqueue_after_commit
from tuneboard.studies import dispatch, verdicts
from tuneboard.studies import repository as repo
from tuneboard.studies.schemas import StudySpec
from workers import devices
from workers.objectives import load_objective

__all__ = ["LATEST_CHECKPOINT", "TrialAborted", "TrialRun", "run_trial"]

log = logging.getLogger(__name__)

# What a checkpointing objective writes under ``ctx.checkpoint_dir`` (the built-in trainer's
# ModelCheckpoint does); a retry resumes from it.
LATEST_CHECKPOINT = "latest.pt"
STOP_POLL_INTERVAL_S = 1.0
ERROR_MAX_CHARS = 4000
TRACEBACK_TAIL_LINES = 12
CANCELLED = "study cancelled"
TIMED_OUT = "budget.timeout_s reached before this trial started"


class TrialAborted(Exception):
    """The trial must stop at once: its study was cancelled, or the reaper already gave it up."""


class ObjectiveResultError(ValueError):
    """The objective returned something that is not the study's metric value(s)."""


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
    trial_id: int
    study_id: int
    number: int
    optuna_name: str
    spec: dict[str, Any]
    seed: int
    device: str
    device_error: str | None
    checkpoint_dir: Path
    retried_trial_id: int | None
    judged: bool


@dataclass(frozen=True)
class TrialRun:
    """What running a trial did: its final state, the trials the study was then owed and that
    were sent to ``queue`` (after the commit that created them), and the one kept to run here."""

    trial_id: int
    state: str
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
    claim = _claim(settings, trial_id, worker)
    if claim is None:
        return None
    heartbeat = _Heartbeat(settings.database_url, trial_id, settings.heartbeat_interval_s)
    heartbeat.start()
    try:
        state, final_metrics = _run_claimed(settings, claim)
    finally:
        heartbeat.stop()
    queue = dispatch.queue_of(claim.spec)
    # Asked before the settling transaction: never wait on the broker holding a database lock.
    keep = keep_next is not None and keep_next(queue)
    sent, kept = _settle(settings, claim, final_metrics, keep)
    return TrialRun(trial_id=trial_id, state=state, queue=queue, dispatched=sent, kept=kept)


def _claim(settings: Settings, trial_id: int, worker: str) -> _Claim | None:
    with session_scope(settings.database_url) as session:
        trial = repo.get_trial_by_id(session, trial_id)
        if trial is None:
            log.warning("trial id %s does not exist; message dropped", trial_id)
            return None
        if trial.state != "waiting":
            log.info("trial id %s is %s: a duplicate or late delivery, nothing to do",
                     trial_id, trial.state)
            return None
        study = session.get(Study, trial.study_id)
        assert study is not None
        spec = dict(study.spec or {})
        device, device_error = "cpu", None
        try:
            device = devices.select_device((spec.get("resources") or {}).get("device"))
        except RuntimeError as err:
            device_error = str(err)
        now = utcnow()
        if dispatch.timed_out(study, now):
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
        checkpoint_dir = trial.checkpoint_path or str(
            settings.checkpoint_root / str(study.id) / str(
                trial.retry_of if trial.retry_of is not None else trial.number
            )
        )
        repo.set_checkpoint_path(session, trial_id, checkpoint_dir)
        log.info("trial %s/%d (attempt %d) claimed by %s on %s", study.id, trial.number,
                 trial.attempt, worker, device)
        queued = study.state == "queued"
        claim = _Claim(
            trial_id=trial_id,
            study_id=study.id,
            number=trial.number,
            optuna_name=study.optuna_name,
            spec=spec,
            seed=int(trial.seed or 0),
            device=device,
            device_error=device_error,
            checkpoint_dir=Path(checkpoint_dir),
            retried_trial_id=retried.id if retried is not None else None,
            judged=study.standard_version_id is not None,
        )
    if queued:
        # A transaction of its own: locking the study while holding the trial could deadlock
        # with a cancel, which locks the study and then the waiting trials.
        with session_scope(settings.database_url) as session:
            repo.start_study(session, claim.study_id, utcnow())
    return claim


def _run_claimed(settings: Settings, claim: _Claim) -> tuple[str, dict[str, float]]:
    """Ask, run and tell; every failure of the trial itself becomes a FAIL with its error."""
    url = settings.database_url
    storage = _storage(url)
    stop = _StopCheck(url, claim)
    reporter: _Reporter | None = None
    trial: optuna.trial.Trial | None = None
    study: optuna.Study | None = None
    try:
        if claim.device_error is not None:
            raise RuntimeError(claim.device_error)
        spec = StudySpec.model_validate(claim.spec)
        study = optuna.load_study(
            study_name=claim.optuna_name,
            storage=storage,
            sampler=make_sampler(spec.sampler, spec.search_space,
                                 n_objectives=len(spec.metrics), trial_seed_offset=claim.number),
            pruner=make_pruner(spec.pruner, max_steps=spec.objective.max_epochs),
        )
        # Study.ask for an enqueued trial: the Trial applies system_attrs["fixed_params"] and
        # calls sampler.before_trial itself.
        trial = optuna.trial.Trial(study, claim.trial_id)
        params = {**suggest_params(trial, spec.search_space), **spec.fixed}
        reporter = _Reporter(url, storage, trial, claim,
                             None if spec.is_multi_objective else spec.metrics[0], stop)
        ctx = _context(spec, claim, params, reporter, stop)
        objective = _objective(spec.objective.builtin, spec.objective.entrypoint)
        _seed_everything(claim.seed)
        try:
            result = objective(ctx)
        finally:
            reporter.close()  # every report stored before the trial is told finished
        if stop.reason == CANCELLED:
            raise TrialAborted(CANCELLED)
        values = _values(result, spec.metrics)
        final = {**reporter.last_metrics, **_numeric(result, spec.metrics)}
        _record_final_metrics(storage, claim, final)
        study.tell(trial, values, skip_if_finished=True)
        log.info("trial %s/%d complete: %s", claim.study_id, claim.number, values)
        return "complete", final
    except (TrialPruned, optuna.TrialPruned):
        assert study is not None and trial is not None and reporter is not None
        _record_final_metrics(storage, claim, reporter.last_metrics)
        study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)
        log.info("trial %s/%d pruned", claim.study_id, claim.number)
        return "pruned", reporter.last_metrics
    except Exception as exc:
        error = _describe(exc)
        log.info("trial %s/%d failed: %s", claim.study_id, claim.number, error.splitlines()[0])
        with session_scope(url) as session:
            repo.record_trial_error(session, claim.trial_id, error)
        last_metrics = reporter.last_metrics if reporter else {}
        if study is not None and trial is not None:
            storage.set_trial_system_attr(claim.trial_id, "fail_reason", error)
            _record_final_metrics(storage, claim, last_metrics)
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        elif storage.get_trial(claim.trial_id).state == TrialState.RUNNING:
            storage.set_trial_state_values(claim.trial_id, TrialState.FAIL)
        return "fail", last_metrics


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
    reporter: _Reporter,
    stop: _StopCheck,
) -> TrialContext:
    dumped = spec.model_dump(mode="json")
    latest = claim.checkpoint_dir / LATEST_CHECKPOINT
    resume = claim.retried_trial_id is not None and latest.is_file()
    return TrialContext(
        params=params,
        device=claim.device,
        checkpoint_dir=claim.checkpoint_dir,
        config={
            "objective": dumped["objective"],
            "early_stopping": dumped["early_stopping"],
            "callbacks": dumped["callbacks"],
        },
        seed=claim.seed,
        trial_number=claim.number,
        reporter=reporter,
        stop_requested=stop,
        resume_from=latest if resume else None,
        reports_flusher=reporter.flush,
    )


def _settle(
    settings: Settings, claim: _Claim, final_metrics: dict[str, float], keep: bool
) -> tuple[list[int], int | None]:
    """Judge the finished trial against the study's standard, then dispatch what is owed:
    ``dispatch.dispatch``, less the trial kept to run here if ``keep``."""
    with session_scope(settings.database_url) as session:
        if claim.judged:
            trial = repo.get_trial_by_id(session, claim.trial_id)
            if trial is not None:
                verdicts.judge(session, trial, final_metrics)
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


def _values(result: Any, metrics: Sequence[str]) -> list[float]:
    """The study metric value(s) out of what the objective returned."""
    if isinstance(result, Mapping):
        missing = [m for m in metrics if m not in result]
        if missing:
            raise ObjectiveResultError(
                f"the objective returned {', '.join(map(str, result)) or 'no metrics'} "
                f"but not the study metric {', '.join(missing)}"
            )
        raw = [result[m] for m in metrics]
    elif isinstance(result, Sequence) and not isinstance(result, str | bytes):
        raw = list(result)
    else:
        raw = [result]
    if len(raw) != len(metrics):
        raise ObjectiveResultError(
            f"the objective returned {len(raw)} value(s) for {len(metrics)} metric(s) "
            f"({', '.join(metrics)})"
        )
    values: list[float] = []
    for name, value in zip(metrics, raw, strict=True):
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise ObjectiveResultError(f"the objective returned {value!r} for {name}; "
                                       "expected a number")
        if not math.isfinite(float(value)):
            raise ObjectiveResultError(f"the objective returned {float(value)} for {name}")
        values.append(float(value))
    return values


def _numeric(result: Any, metrics: Sequence[str]) -> dict[str, float]:
    """The objective's final metrics as floats (a bare value is the study metric's)."""
    if isinstance(result, Mapping):
        return {str(k): float(v) for k, v in result.items()
                if isinstance(v, int | float | np.number) and not isinstance(v, bool)}
    if len(metrics) == 1 and isinstance(result, int | float | np.number):
        return {metrics[0]: float(result)}
    return {}


def _describe(exc: BaseException) -> str:
    """``Type: message`` and the tail of the traceback: what a trial's ``error`` shows."""
    if isinstance(exc, TrialAborted):
        return str(exc)
    head = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, ObjectiveResultError):
        return head
    lines = "".join(traceback.format_exception(exc)).rstrip().splitlines()
    tail = "\n".join(lines[-TRACEBACK_TAIL_LINES:])
    text = f"{head}\n\n{tail}"
    return text if len(text) <= ERROR_MAX_CHARS else text[: ERROR_MAX_CHARS - 3] + "..."


class _StopCheck:
    """``ctx.should_stop``: true once the study was cancelled, finished or out of time, or the
    trial is no longer running (the reaper gave it up). Polls the database at most once a second."""

    def __init__(self, url: str, claim: _Claim) -> None:
        self.url = url
        self.claim = claim
        self.timeout_s = ((claim.spec.get("budget") or {}).get("timeout_s"))
        self.reason: str | None = None
        # The claim has just seen the study active: the first poll can wait its turn.
        self._polled_at = time.monotonic()

    def __call__(self) -> bool:
        if self.reason is not None:
            return True
        now = time.monotonic()
        if now - self._polled_at < STOP_POLL_INTERVAL_S:
            return False
        self._polled_at = now
        with session_scope(self.url) as session:
            progress = repo.trial_progress(session, self.claim.trial_id)
        self.reason = _stop_reason(progress, self.timeout_s, utcnow())
        return self.reason is not None

    @property
    def abort(self) -> bool:
        """Stop without finishing the step: the result would be thrown away anyway."""
        return self.reason is not None and self.reason != "timeout"


def _stop_reason(
    progress: tuple[str, str, datetime | None] | None, timeout_s: float | None, now: datetime
) -> str | None:
    if progress is None:
        return "trial deleted"
    trial_state, study_state, started_at = progress
    if study_state == "cancelled":
        return CANCELLED
    if trial_state != "running":
        return f"trial is {trial_state}: the reaper gave it up"
    if study_state not in dispatch.ACTIVE_STUDY_STATES:
        return f"study {study_state}"
    if timeout_s and started_at is not None and (now - started_at).total_seconds() >= timeout_s:
        return "timeout"
    return None


@dataclass
class _Reporter:
    """``ctx.report``: hands each step to a :class:`_ReportWriter` (all its metrics, the study
    metric's intermediate value, the epochs run, a heartbeat) and asks Optuna's pruner, without
    waiting for the database. A retry that resumed from a checkpoint first inherits the steps
    its predecessor ran before it."""

    url: str
    storage: SqlStorage
    trial: optuna.trial.Trial
    claim: _Claim
    metric: str | None
    stop: _StopCheck
    last_metrics: dict[str, float] = field(default_factory=dict)
    _intermediate: dict[int, float] = field(default_factory=dict)
    _max_step: int = -1
    _writer: _ReportWriter | None = None

    def __call__(self, step: int, metrics: Mapping[str, float]) -> None:
        step = int(step)
        values = {str(k): float(v) for k, v in metrics.items()}
        inherit = self._max_step < 0 and self.claim.retried_trial_id is not None and step > 1
        inherited = self._inherited_intermediates(step) if inherit else {}
        new: dict[int, float] = {}
        if self.metric is not None:
            new = {**inherited, **({step: values[self.metric]} if self.metric in values else {})}
            self._intermediate.update(new)
        if self._writer is None:
            self._writer = _ReportWriter(self.url, self.claim)
        self._writer.put(
            step, values,
            replace=step <= self._max_step,
            copy_before=step if inherit else None,
            intermediate_values=dict(self._intermediate) if new else None,
        )
        for s, v in new.items():
            _remember_intermediate(self.trial, s, v)
        self._max_step = max(self._max_step, step)
        self.last_metrics = values
        if self.stop() and self.stop.abort:
            raise TrialAborted(self.stop.reason)
        if step in new and self.trial.should_prune():
            raise TrialPruned(f"pruned at step {step}")

    def flush(self) -> None:
        """Wait until every report so far is stored (the trainer calls it before a checkpoint)."""
        if self._writer is not None:
            self._writer.drain()

    def close(self) -> None:
        """Wait until every report is stored; raises if storing one failed."""
        if self._writer is not None:
            self._writer.close()

    def _inherited_intermediates(self, before_step: int) -> dict[int, float]:
        assert self.claim.retried_trial_id is not None
        source = self.storage.get_trial(self.claim.retried_trial_id)
        return {s: v for s, v in source.intermediate_values.items() if s < before_step}


@dataclass
class _Batch:
    steps: dict[int, dict[str, float]] = field(default_factory=dict)
    replace: set[int] = field(default_factory=set)
    copy_before: int | None = None
    intermediate_values: dict[int, float] | None = None


class _ReportWriter:
    """Stores reports from a thread of its own, one transaction for whatever accumulated while
    the previous one ran, so that a fast objective does not wait for a commit per step. The
    pruner needs no wait either: it reads this trial's steps from Optuna's in-memory trial."""

    def __init__(self, url: str, claim: _Claim) -> None:
        self.url = url
        self.claim = claim
        self._batch = _Batch()
        self._queued = 0
        self._written = 0
        self._closed = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"reports-{claim.trial_id}")
        self._thread.start()

    def put(
        self,
        step: int,
        metrics: dict[str, float],
        *,
        replace: bool,
        copy_before: int | None,
        intermediate_values: dict[int, float] | None,
    ) -> None:
        with self._cond:
            self._raise_failure()
            batch = self._batch
            batch.steps[step] = {**batch.steps.get(step, {}), **metrics}
            if replace:
                batch.replace.add(step)
            if copy_before is not None:
                batch.copy_before = copy_before
            if intermediate_values is not None:
                batch.intermediate_values = intermediate_values
            self._queued += 1
            self._cond.notify_all()

    def drain(self) -> None:
        """Wait until everything put so far is committed; raises if storing failed."""
        with self._cond:
            target = self._queued
            while self._written < target and self._error is None:
                self._cond.wait()
            self._raise_failure()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
        self._raise_failure()

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"storing the trial's reports failed: {self._error}") from (
                self._error
            )

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._batch.steps and not self._closed:
                    self._cond.wait()
                if not self._batch.steps:
                    return
                batch, self._batch = self._batch, _Batch()
                covered = self._queued
            try:
                self._write(batch)
                with self._cond:
                    self._written = covered
                    self._cond.notify_all()
            except BaseException as exc:
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()
                log.exception("storing reports of trial id %s failed", self.claim.trial_id)
                return

    def _write(self, batch: _Batch) -> None:
        with session_scope(self.url) as session:
            repo.commit_without_flush(session)
            if batch.copy_before is not None and self.claim.retried_trial_id is not None:
                repo.copy_metrics(session, self.claim.retried_trial_id, self.claim.trial_id,
                                  batch.copy_before)
            repo.record_reports(
                session, self.claim.trial_id, batch.steps, utcnow(),
                replace=batch.replace, intermediate_values=batch.intermediate_values,
            )


def _remember_intermediate(trial: optuna.trial.Trial, step: int, value: float) -> None:
    # What ``Trial.report`` does after its own storage write, so that ``should_prune`` sees the
    # step; ours went into the report's transaction instead, one commit per step instead of two.
    trial._cached_frozen_trial.intermediate_values[step] = value


class _Heartbeat:
    """Beats every ``interval_s`` while the trial runs, in a thread of its own."""

    def __init__(self, url: str, trial_id: int, interval_s: float) -> None:
        self.url = url
        self.trial_id = trial_id
        self.interval_s = interval_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{trial_id}",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=self.interval_s + 5)

    def _run(self) -> None:
        while not self._stopped.wait(self.interval_s):
            try:
                with session_scope(self.url) as session:
                    repo.commit_without_flush(session)
                    repo.touch_heartbeat(session, self.trial_id, utcnow())
            except Exception:  # a missed beat is retried at the next; the grace period covers it
                log.exception("heartbeat of trial id %s failed", self.trial_id)
